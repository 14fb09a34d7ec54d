import type { EditKind } from './generator.ts';
import { OracleFailure } from './harness.ts';

/**
 * A short, stable class for a failure, so the soak run can count failures per class and a named
 * case can say which class it stands for: the stage, the SQLSTATE, and Postgres' message (or the
 * oracle's finding) with names and values taken out.
 */
export function failureClass(err: unknown): string {
  if (!(err instanceof OracleFailure)) return `crash: ${err instanceof Error ? err.name : typeof err}`;
  const generic = (text: string): string =>
    text
      .split('\n')[0]!
      .replace(/"[^"]*"/g, '"…"')
      .replace(/\b\d+\b/g, 'N')
      .slice(0, 140);
  if (err.stage !== 'oracle') return `${err.stage} ${err.sqlState ?? ''} ${generic(err.detail)}`.replace(/\s+/g, ' ').trim();
  const parts: string[] = [];
  if (err.detail.includes('re-planning v2 is not empty')) parts.push('replan');
  if (err.detail.includes('hands out')) parts.push('identity');
  if (err.detail.includes('data lost')) parts.push('data');
  if (err.detail.includes('drift against v2')) parts.push('drift');
  if (err.detail.includes('differs from a fresh build')) parts.push(err.detail.includes('catalog snapshot') ? 'snapshot' : 'dump');
  if (err.detail.startsWith('pg_dump (batched)')) parts.push('dump (batched pg_dump)');
  // what differs, in kinds: "fresh only: hand-made index", "migrated only: sequence" …
  const kinds = new Set<string>();
  for (const line of err.detail.split('\n')) {
    const m = /^\s+(migrated only|fresh only):\s+(\S+)(.*)$/.exec(line);
    if (!m) continue;
    const rest = m[3] ?? '';
    const what = /^(column|constraint|index|sequence|relation)$/.test(m[2] ?? '') ? (m[2] as string) : 'line';
    kinds.add(`${m[1]}: ${/hand_/.test(rest) || /hand_/.test(m[2] ?? '') ? 'hand-made ' : ''}${what}`);
  }
  return `oracle ${parts.join('+')}${kinds.size > 0 ? ` [${[...kinds].sort().join(', ')}]` : ''}`;
}

/** Counts of outcomes and failure classes of a batch of pairs. */
export class OracleStats {
  applied = 0;
  refused = 0;
  noop = 0;
  failed = 0;
  steps = 0;
  readonly edits = new Map<EditKind, number>();
  readonly failures = new Map<string, { count: number; first: string }>();

  recordEdits(kinds: readonly EditKind[]): void {
    for (const k of kinds) this.edits.set(k, (this.edits.get(k) ?? 0) + 1);
  }

  recordFailure(err: unknown, example: string): void {
    this.failed++;
    const cls = failureClass(err);
    const entry = this.failures.get(cls);
    if (entry) entry.count++;
    else this.failures.set(cls, { count: 1, first: example });
  }

  summary(): string {
    const edits = [...this.edits.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
    const lines = [`outcomes: ${this.applied} applied (${this.noop} with an empty plan, ${this.steps} steps), ${this.refused} refused at plan time, ${this.failed} failed`, `edits that changed something: ${edits || 'none'}`];
    for (const [cls, { count }] of [...this.failures.entries()].sort((a, b) => b[1].count - a[1].count)) lines.push(`  ${String(count).padStart(4)} × ${cls}`);
    return lines.join('\n');
  }
}
