import { describe, expect, it } from 'vitest';
import { ObjectTooLargeError, ValidationError } from '../errors.ts';
import { errorFromResponse } from './client.ts';

/**
 * The size refusals as the API server words them (v1.34; tests/release/large-release.test.ts
 * meets each of them on the real server) become one ObjectTooLargeError; nothing else does.
 */
const status = (code: number, message: string, reason = 'Invalid') => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
const sent = { kind: 'Release', name: 'rel-0123456789abcdef', namespace: 'stk-demo', bytes: 1_800_000 };

describe('size refusals', () => {
  it.each([
    ['etcd', 500, 'etcdserver: request is too large', "etcd's request limit (--max-request-bytes, 1.5 MiB unless the cluster sets it)"],
    ['the API server writing to etcd', 500, 'rpc error: code = ResourceExhausted desc = trying to send message larger than max (2097724 vs. 2097152)', "the API server's limit for one write to etcd is 2.00 MiB (2097152 bytes)"],
    ['the request body', 413, 'Request entity too large: limit is 3145728', "the API server's request body limit is 3.00 MiB (3145728 bytes)"],
    ['a ConfigMap', 422, 'ConfigMap "x" is invalid: []: Too long: may not be more than 1048576 bytes', "the limit of the object's data is 1.00 MiB (1048576 bytes)"],
    ['annotations', 422, 'ConfigMap "x" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes', 'the limit of all annotations of an object is 256.0 KiB (262144 bytes)'],
    ['annotations, older wording', 422, 'ConfigMap "x" is invalid: metadata.annotations: Too long: must have at most 262144 bytes', 'the limit of all annotations of an object is 256.0 KiB (262144 bytes)'],
  ])('%s: names the object, the size sent and the limit, not the server\'s words', (_what, code, message, limit) => {
    const err = errorFromResponse(code, status(code, message), 'POST', '/apis/santokit.io/v1alpha1/namespaces/stk-demo/releases', sent);
    expect(err).toBeInstanceOf(ObjectTooLargeError);
    expect(err.message).toBe(`Release rel-0123456789abcdef in namespace stk-demo is too large for the cluster: 1.72 MiB (1800000 bytes) sent; ${limit}`);
    expect(err.hint).toBeTruthy();
    expect(err.exitCode).toBe(2);
    expect(err.retryable).toBe(false);
  });

  it('one field over its maxLength stays a validation error', () => {
    const err = errorFromResponse(422, status(422, 'Release.santokit.io "r" is invalid: spec.repo: Too long: may not be more than 2048 bytes'), 'POST', '/x', sent);
    expect(err).toBeInstanceOf(ValidationError);
  });

  it('without a body it names the request', () => {
    const err = errorFromResponse(413, status(413, 'Request entity too large: limit is 3145728', 'RequestEntityTooLarge'), 'PATCH', '/api/v1/namespaces/a/configmaps/b');
    expect(err.message).toBe("the object of PATCH /api/v1/namespaces/a/configmaps/b is too large for the cluster: the API server's request body limit is 3.00 MiB (3145728 bytes)");
  });
});
