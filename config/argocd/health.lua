-- Argo CD health check for the Santokit kinds (group santokit.io): Project, Environment,
-- Connection, Release, InfraHost. It reads the same conditions kstatus (Flux) reads, so both
-- tools agree: observedGeneration behind → Progressing; Stalled=True → Degraded;
-- Reconciling=True → Progressing; Ready=True → Healthy; Ready=False → Degraded.
-- A Connection whose database is not reachable (Reachable=False) is Degraded, with the reason.
-- Written for Argo CD's Lua 5.1 VM (gopher-lua); `obj` is the live object.
local hs = { status = "Progressing", message = "waiting for the Santokit operator" }

local function find(conditions, type)
  for _, c in ipairs(conditions or {}) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.status == nil then
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "waiting for the operator to observe generation " .. generation
  return hs
end

local conditions = obj.status.conditions
local stalled = find(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

if obj.kind == "Connection" then
  local reachable = find(conditions, "Reachable")
  if reachable ~= nil and reachable.status == "False" then
    hs.status = "Degraded"
    hs.message = describe(reachable)
    return hs
  end
end

local reconciling = find(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
  return hs
end

local ready = find(conditions, "Ready")
if ready == nil then
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
else
  hs.message = describe(ready)
end
return hs
