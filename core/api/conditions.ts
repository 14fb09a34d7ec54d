import type { CommonStatus, Condition, ConditionStatus } from './resources.ts';

/**
 * Conditions in the Flux / kstatus style: `Ready` always present, `Reconciling` and `Stalled`
 * only while abnormal-true, `observedGeneration` on each condition, and `lastTransitionTime`
 * changed only when the status really changes.
 */

export const ConditionType = {
  Ready: 'Ready',
  Reconciling: 'Reconciling',
  Stalled: 'Stalled',
} as const;

/** Named reasons (CamelCase), shared by operator and CLI. */
export const Reason = {
  Progressing: 'Progressing',
  Succeeded: 'Succeeded',
  NamespaceCreated: 'NamespaceCreated',
  NamespaceConflict: 'NamespaceConflict',
  ProjectNotFound: 'ProjectNotFound',
  ProjectNotReady: 'ProjectNotReady',
  ProjectMismatch: 'ProjectMismatch',
  ReconcileError: 'ReconcileError',
  ValidationFailed: 'ValidationFailed',
} as const;

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function findCondition(status: CommonStatus | undefined, type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

export function isConditionTrue(status: CommonStatus | undefined, type: string): boolean {
  return findCondition(status, type)?.status === 'True';
}

/** Returns the new conditions list with `input` set; the transition time moves only on a status change. */
export function setCondition(conditions: readonly Condition[] | undefined, input: ConditionInput, generation: number | undefined, now: Date = new Date()): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const old = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: truncate(input.message),
    lastTransitionTime: old && old.status === input.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return sortConditions(list);
}

export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

/** Ready=True, and Reconciling/Stalled removed. */
export function markReady(conditions: readonly Condition[] | undefined, reason: string, message: string, generation: number | undefined): Condition[] {
  const ready = setCondition(conditions, { type: ConditionType.Ready, status: 'True', reason, message }, generation);
  return removeCondition(removeCondition(ready, ConditionType.Reconciling), ConditionType.Stalled);
}

/** Work in progress: Ready=Unknown (or False), Reconciling=True, Stalled removed. */
export function markReconciling(conditions: readonly Condition[] | undefined, reason: string, message: string, generation: number | undefined): Condition[] {
  const readyNow = conditions?.find((c) => c.type === ConditionType.Ready);
  const readyStatus: ConditionStatus = readyNow?.status === 'False' ? 'False' : 'Unknown';
  let out = setCondition(conditions, { type: ConditionType.Ready, status: readyStatus, reason, message }, generation);
  out = setCondition(out, { type: ConditionType.Reconciling, status: 'True', reason, message }, generation);
  return removeCondition(out, ConditionType.Stalled);
}

/** A terminal failure the user must fix: Ready=False, Stalled=True, Reconciling removed. */
export function markStalled(conditions: readonly Condition[] | undefined, reason: string, message: string, generation: number | undefined): Condition[] {
  let out = setCondition(conditions, { type: ConditionType.Ready, status: 'False', reason, message }, generation);
  out = setCondition(out, { type: ConditionType.Stalled, status: 'True', reason, message }, generation);
  return removeCondition(out, ConditionType.Reconciling);
}

/** A failure that will be retried: Ready=False, Reconciling=True. */
export function markRetrying(conditions: readonly Condition[] | undefined, reason: string, message: string, generation: number | undefined): Condition[] {
  let out = setCondition(conditions, { type: ConditionType.Ready, status: 'False', reason, message }, generation);
  out = setCondition(out, { type: ConditionType.Reconciling, status: 'True', reason, message }, generation);
  return removeCondition(out, ConditionType.Stalled);
}

const order = [ConditionType.Ready, ConditionType.Reconciling, ConditionType.Stalled] as string[];
function sortConditions(list: Condition[]): Condition[] {
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length);
  return list.sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type));
}

function truncate(message: string): string {
  return message.length > 32_000 ? `${message.slice(0, 32_000)}…` : message;
}
