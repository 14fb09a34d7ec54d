import type { KindInfo } from '../api/resources.ts';
import { UnavailableError } from '../errors.ts';
import { KubeClient, type KubeObject } from './client.ts';

/**
 * Waits until `done(obj)` holds for one object, following a watch (not polling) and restarting
 * it if the stream ends. `done` may throw to stop waiting with an error (a terminal condition).
 */
export async function waitForObject<T extends KubeObject>(
  client: KubeClient,
  kind: KindInfo,
  name: string,
  namespace: string | undefined,
  done: (obj: T | undefined) => boolean,
  options: { timeoutMs: number; what: string },
): Promise<T | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await client.find<T>(kind, name, namespace);
    if (done(last)) return last;
    const result = await new Promise<{ matched: boolean; obj?: T; error?: unknown }>((resolve) => {
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (r: { matched: boolean; obj?: T; error?: unknown }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        controller?.abort();
        resolve(r);
      };
      const timer = setTimeout(() => finish({ matched: false }), Math.max(0, deadline - Date.now()));
      client
        .watch(
          KubeClient.path(kind, namespace),
          { fieldSelector: `metadata.name=${name}`, resourceVersion: last?.metadata.resourceVersion, allowWatchBookmarks: false },
          (type, obj) => {
            if (type === 'ERROR') return finish({ matched: false });
            const current = type === 'DELETED' ? undefined : (obj as T);
            last = current;
            try {
              if (done(current)) finish({ matched: true, ...(current ? { obj: current } : {}) });
            } catch (error) {
              finish({ matched: false, error });
            }
          },
          () => finish({ matched: false }),
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (error: unknown) => finish({ matched: false, error }),
        );
    });
    if (result.error) throw result.error;
    if (result.matched) return result.obj;
  }
  throw new UnavailableError(`timed out after ${Math.round(options.timeoutMs / 1000)}s waiting for ${options.what}`, { reason: 'Timeout', retryable: false });
}
