import { randomBytes } from 'node:crypto';
import { Annotations, Kinds, type Environment, type ReleaseRequest, type RequestOutcome } from '../core/api/resources.ts';
import { ConflictError, NotFoundError, UnavailableError, type SantokitError } from '../core/errors.ts';
import type { KubeClient, KubeObject } from '../core/kube/client.ts';
import { waitForObject } from '../core/kube/wait.ts';
import { whoAmI } from './identity.ts';

type Env = Environment & KubeObject;

/**
 * Asks an Environment to run a request (apply, plan, promote, rollback) and waits for the operator's
 * answer in `status.lastRequest`. When the request moves the pointer, `spec.release` is set in the
 * same patch; if the operator refuses, it is put back, so a refused request leaves nothing changed.
 */
export async function requestEnvironmentChange(
  client: KubeClient,
  namespace: string,
  envName: string,
  request: Omit<ReleaseRequest, 'id'>,
  options: { setDesired: boolean; timeoutMs: number },
): Promise<{ outcome: RequestOutcome; env: Env }> {
  const id = randomBytes(8).toString('hex');
  // Recorded in the Environment's history: who moved the pointer.
  const by = (await whoAmI(client).catch(() => undefined))?.username;
  const full: ReleaseRequest = { id, ...request, ...(by ? { by } : {}) };
  let previousDesired: string | undefined;
  // The operator writes status all the time, so the resourceVersion precondition may lose a race: read again and retry.
  for (let attempt = 0; ; attempt++) {
    const env = await client.find<Env>(Kinds.Environment, envName, namespace);
    if (!env) throw new NotFoundError(`environment ${envName} does not exist in namespace ${namespace}`, { hint: 'list them with `stk env list`' });
    previousDesired = env.spec.release;
    try {
      await client.patch(Kinds.Environment, envName, namespace, {
        metadata: { resourceVersion: env.metadata.resourceVersion, annotations: { [Annotations.request]: JSON.stringify(full) } },
        ...(options.setDesired ? { spec: { release: request.release } } : {}),
      });
      break;
    } catch (err) {
      if (!(err instanceof ConflictError && err.retryable) || attempt >= 5) throw err;
    }
  }
  const answered = await waitForObject<Env>(client, Kinds.Environment, envName, namespace, (e) => e?.status?.lastRequest?.id === id, {
    timeoutMs: options.timeoutMs,
    what: `the operator to ${request.action} ${request.release} in environment ${envName} (is the operator running?)`,
  });
  const outcome = answered!.status!.lastRequest!;
  if (outcome.outcome === 'Failed' && options.setDesired) {
    // Put the desired pointer back unless someone changed it meanwhile (the operator writes status
    // all the time, so a lost resourceVersion race is retried).
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = await client.get<Env>(Kinds.Environment, envName, namespace);
      if (now.spec.release !== request.release || now.status?.currentRelease === request.release) break;
      const restored = await client
        .patch(Kinds.Environment, envName, namespace, { metadata: { resourceVersion: now.metadata.resourceVersion }, spec: { release: previousDesired ?? null } })
        .then(() => true, (err: unknown) => !(err instanceof ConflictError && err.retryable));
      if (restored) break;
    }
  }
  return { outcome, env: answered! };
}

/** The error a failed outcome stands for: a refused gate exits 2, a dependency that failed exits 3. */
export function outcomeError(outcome: RequestOutcome): SantokitError {
  const message = `${outcome.action} of ${outcome.release} failed (${outcome.reason ?? 'unknown'}): ${outcome.message ?? ''}`.trim();
  if (outcome.retryable) return new UnavailableError(message, { reason: outcome.reason ?? 'Unavailable', retryable: false });
  if (outcome.reason === 'ReleaseNotFound' || outcome.reason === 'ReleaseNotInHistory') return new NotFoundError(message, { reason: outcome.reason });
  return new ConflictError(message, { reason: outcome.reason ?? 'Conflict' });
}
