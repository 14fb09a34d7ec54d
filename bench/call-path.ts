/**
 * The data plane's per-call work without the network: parse the body, plan it against a release
 * (permission rule with an owner condition), build the statement text. Prints nanoseconds per call
 * of each step, so changes to the hot path can be compared on a busy machine (the figures of a
 * tight loop, not of a server: read them as a ratio before/after).
 *
 *   node bench/call-path.ts [iterations]
 */
import { performance } from 'node:perf_hooks';
import type postgres from 'postgres';
import { compilePermissions } from '../core/permissions/policy.ts';
import { declareSchema, parseSchemaFiles } from '../core/schema/index.ts';
import { parseCallBody } from '../operator/bridge/call.ts';
import { statementOf } from '../operator/bridge/execute.ts';
import { planCall } from '../operator/bridge/plan.ts';
import { compileServedRelease } from '../operator/bridge/served-release.ts';

const iterations = Number(process.argv[2] ?? 200_000);
const schema = declareSchema(
  parseSchemaFiles([{ path: 'schema/app.yaml', text: 'version: 1\ntables:\n  items:\n    id: { generate: ulid }\n    columns:\n      owner_id: { type: string, nullable: false }\n      name: { type: string }\n      n: { type: int }\n' }]),
);
const permissions = compilePermissions({ path: 'config/permissions.yaml', text: "tables:\n  items:\n    select:\n      - roles: [reader]\n        columns: [id, name, n]\n        condition: 'resource.owner_id == request.auth.sub'\n" }, schema);
const release = compileServedRelease('rel-bench', schema, permissions);
const caller = { sub: 'ak0123456789abcdef', roles: ['reader'] };
const bodies = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ path: 'db/items/select', params: { where: { id: `item-${String(i).padStart(6, '0')}` } } }));
const sql = {} as postgres.Sql;

function time(what: string, step: (i: number) => unknown): void {
  for (let i = 0; i < iterations / 10; i++) step(i); // warm-up
  const start = performance.now();
  let sink = 0;
  for (let i = 0; i < iterations; i++) sink += step(i) === undefined ? 0 : 1;
  const ns = ((performance.now() - start) * 1e6) / iterations;
  console.log(`${what.padEnd(36)} ${ns.toFixed(0).padStart(6)} ns${sink < 0 ? '' : ''}`);
}

const parsed = bodies.map(parseCallBody);
const plans = parsed.map((r) => planCall(release, r, caller));
time('parse body', (i) => parseCallBody(bodies[i % 1000]!));
time('plan', (i) => planCall(release, parsed[i % 1000]!, caller));
time('statement', (i) => statementOf(sql, plans[i % 1000]!));
time('parse + plan + statement', (i) => statementOf(sql, planCall(release, parseCallBody(bodies[i % 1000]!), caller)));
