import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseKubeconfigYaml } from './kubeconfig-yaml.ts';

/** What the YAML library makes of a text, or 'error'. */
function library(text: string): unknown {
  try {
    return parse(text);
  } catch {
    return 'error';
  }
}

const kubectlWritten = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=
    server: https://127.0.0.1:6443
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    namespace: "team-a" # a comment
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {}
users:
- name: kind-kind
  user:
    client-certificate: /home/me/.kube/client.crt
    client-key: 'C:\\keys\\it''s.key'
    insecure-skip-tls-verify: true
`;

describe('parseKubeconfigYaml', () => {
  it('reads a kubeconfig as kubectl writes it, as the YAML library does', () => {
    const value = parseKubeconfigYaml(kubectlWritten);
    expect(value).toEqual(parse(kubectlWritten));
    expect(value).toMatchObject({ 'current-context': 'kind-kind', users: [{ user: { 'client-key': "C:\\keys\\it's.key", 'insecure-skip-tls-verify': true } }] });
  });

  it('reads the indented-sequence style and JSON', () => {
    const indented = stringify(parse(kubectlWritten), { indentSeq: true, indent: 4 });
    expect(parseKubeconfigYaml(indented)).toEqual(parse(kubectlWritten));
    expect(parseKubeconfigYaml(JSON.stringify(parse(kubectlWritten)))).toEqual(parse(kubectlWritten));
  });

  it('leaves what it does not read to the YAML library (undefined)', () => {
    for (const text of [
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: |\n  text\n',
      'a: >\n  text\n',
      'a: plain\n  continued\n',
      'a: {b: 1}\n',
      'a: [1, 2]\n',
      '---\na: 1\n',
      'a: 1\na: 2\n',
      'a:\n\t- 1\n',
      'a: "open\n',
      'a: 1.5\n',
      'a: 0x1f\n',
    ]) {
      expect(parseKubeconfigYaml(text), JSON.stringify(text)).toBeUndefined();
    }
  });

  it('agrees with the YAML library on every text it reads (generated kubeconfig-shaped documents, every string style)', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('true', 'False', 'null', '~', '', ' ', '12', '-3', '007', '1e3', 'a: b', 'a #b', '#x', "it's", '"q"', '- x', 'x:', 'https://h:1/p', '\\', '\t', 'ü ✓'),
    );
    const leaf = fc.oneof(text, fc.boolean(), fc.integer(), fc.constant(null));
    const key = fc.oneof(fc.constantFrom('name', 'server', 'token', 'user', 'cluster', 'current-context', 'client-key-data'), fc.string({ minLength: 1, maxLength: 8 }));
    const { tree } = fc.letrec<{ tree: unknown; node: unknown }>((tie) => ({
      tree: fc.dictionary(key, tie('node'), { maxKeys: 5 }),
      node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(key, tie('node'), { maxKeys: 4 })),
    }));
    const options = fc.record({
      indentSeq: fc.boolean(),
      indent: fc.constantFrom(2, 3, 4),
      defaultStringType: fc.constantFrom('PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE'),
      defaultKeyType: fc.constantFrom(null, 'PLAIN', 'QUOTE_DOUBLE'),
      lineWidth: fc.constantFrom(0, 20, 80),
    } as const);
    const read = { total: 0, ours: 0 };
    fc.assert(
      fc.property(tree, options, (doc, opts) => {
        const yamlText = stringify(doc, opts as unknown as Parameters<typeof stringify>[1]);
        read.total++;
        const ours = parseKubeconfigYaml(yamlText);
        if (ours !== undefined) {
          read.ours++;
          expect(ours).toEqual(library(yamlText));
        }
      }),
      { numRuns: 400 },
    );
    // Most of these documents are in the subset: the comparison is not vacuous.
    expect(read.ours / read.total).toBeGreaterThan(0.5);
  });

  it('never reads a text differently from the YAML library (generated line soup)', () => {
    const piece = fc.constantFrom('a', 'b: 1', 'c:', '- ', '-', '"x: y"', "'z'", ' # c', '#', ': ', '{}', '[]', 'true', 'k: v', '  ', '\t', 'x y', '- k: v', "'a''b'", '"\\u00e9"', '"\\q"', '&a', '*a', '|', '?');
    const soup = { total: 0, ours: 0 };
    const line = fc.tuple(fc.integer({ min: 0, max: 6 }), fc.array(piece, { minLength: 1, maxLength: 3 })).map(([indent, parts]) => ' '.repeat(indent) + parts.join(''));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 8 }), (lines) => {
        const text = `${lines.join('\n')}\n`;
        const ours = parseKubeconfigYaml(text);
        soup.total++;
        if (ours !== undefined) {
          soup.ours++;
          expect(ours, JSON.stringify(text)).toEqual(library(text));
        }
      }),
      { numRuns: 3000 },
    );
    expect(soup.ours / soup.total).toBeGreaterThan(0.05);
  });
});
