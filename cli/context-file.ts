import fs from 'node:fs';
import path from 'node:path';
import { ValidationError } from '../core/errors.ts';

/** The CLI context kept in `.stk/context.json` at the root of the repository (or the current directory). */
export interface StkContext {
  project?: string;
  env?: string;
  connection?: string;
  kubeContext?: string;
}

const keys = ['project', 'env', 'connection', 'kubeContext'] as const;

/** The directory that holds `.stk/`: the nearest ancestor with `.git` or `.stk`, else the current directory. */
export function contextRoot(cwd: string = process.cwd()): string {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, '.stk')) || fs.existsSync(path.join(dir, '.git'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(cwd);
  }
}

export function contextPath(cwd?: string): string {
  return path.join(contextRoot(cwd), '.stk', 'context.json');
}

export function readContext(cwd?: string): StkContext {
  const file = contextPath(cwd);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`${file} is not valid JSON: ${(err as Error).message}`, [], { hint: 'fix it or run `stk context clear`' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ValidationError(`${file} must hold a JSON object`, [], { hint: 'run `stk context clear`' });
  const out: StkContext = {};
  for (const k of keys) {
    const v = (parsed as Record<string, unknown>)[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

export function writeContext(context: StkContext, cwd?: string): string {
  const file = contextPath(cwd);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const ordered = Object.fromEntries(keys.filter((k) => context[k] !== undefined).map((k) => [k, context[k]]));
  // Written beside it and renamed over it: a concurrent `stk` reads the old context or the new one, never half of one.
  const temp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temp, `${JSON.stringify(ordered, null, 2)}\n`);
    fs.renameSync(temp, file);
  } finally {
    fs.rmSync(temp, { force: true });
  }
  return file;
}

export function clearContext(cwd?: string): boolean {
  const file = contextPath(cwd);
  if (!fs.existsSync(file)) return false;
  fs.rmSync(file);
  return true;
}
