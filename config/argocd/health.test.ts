import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';

/**
 * The Argo CD health check (health.lua) run by a real Lua interpreter (Debian's lua5.4) against
 * sample objects in the shape the operator writes, with the cases of health_test.yaml.
 */

const dir = import.meta.dirname;
const script = fs.readFileSync(path.join(dir, 'health.lua'), 'utf8');
const cases = (YAML.parse(fs.readFileSync(path.join(dir, 'health_test.yaml'), 'utf8')) as { tests: Array<{ healthStatus: { status: string; message: string }; inputPath: string }> }).tests;

/** A JSON value as a Lua literal; null becomes an absent field, as in Argo CD. */
function toLua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return `"${[...value].map((ch) => (/[\\"]/.test(ch) ? `\\${ch}` : ch < ' ' ? `\\${ch.charCodeAt(0)}` : ch)).join('')}"`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  return `{${Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `[${toLua(k)}] = ${toLua(v)}`)
    .join(', ')}}`;
}

/** Runs health.lua with `obj` set, as Argo CD does, and returns what it answered. */
function health(obj: unknown): { status: string; message: string } {
  const harness = `obj = ${toLua(obj)}
local hs = assert(load(${toLua(script)}))()
io.write(hs.status, "\\n", hs.message or "")`;
  const out = execFileSync('lua5.4', ['-'], { input: harness, encoding: 'utf8' });
  const [status = '', ...message] = out.split('\n');
  return { status, message: message.join('\n') };
}

describe('Argo CD health check for santokit.io kinds', () => {
  it.each(cases.map((c) => [c.inputPath, c] as const))('%s', (inputPath, c) => {
    const obj = YAML.parse(fs.readFileSync(path.join(dir, inputPath), 'utf8'));
    expect(health(obj)).toEqual(c.healthStatus);
  });

  it('every kind has a sample, and the Ready condition of a new generation is not trusted', () => {
    const kinds = new Set(cases.map((c) => (YAML.parse(fs.readFileSync(path.join(dir, c.inputPath), 'utf8')) as { kind: string }).kind));
    expect([...kinds].sort()).toEqual(['Connection', 'Environment', 'InfraHost', 'Project', 'Release']);
    const ready = YAML.parse(fs.readFileSync(path.join(dir, 'testdata/release-served.yaml'), 'utf8')) as { metadata: { generation: number } };
    ready.metadata.generation = 2;
    expect(health(ready).status).toBe('Progressing');
  });

  it('argocd-cm.yaml carries health.lua verbatim for each of the five kinds', () => {
    const cm = YAML.parse(fs.readFileSync(path.join(dir, 'argocd-cm.yaml'), 'utf8')) as { data: Record<string, string> };
    expect(Object.keys(cm.data).sort()).toEqual(['Connection', 'Environment', 'InfraHost', 'Project', 'Release'].map((k) => `resource.customizations.health.santokit.io_${k}`));
    for (const value of Object.values(cm.data)) expect(value).toBe(script);
  });
});
