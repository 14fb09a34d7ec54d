import { isSantokitError, type SantokitError } from '../core/errors.ts';
import { redactSecrets } from '../core/redact.ts';

/** Writes a line to stdout. Command output goes to stdout; diagnostics to stderr. */
export function println(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain, stable table: columns padded with two spaces, no colour, no timestamps unless asked. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Prints an error for a person (or as JSON) on stderr and returns the exit code. */
export function reportError(err: unknown, json: boolean): number {
  const e: SantokitError | undefined = isSantokitError(err) ? err : undefined;
  const message = redactSecrets(e ? e.message : err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err));
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: { code: e?.reason ?? 'InternalError', message, ...(e?.hint ? { hint: e.hint } : {}) } })}\n`);
  } else {
    process.stderr.write(`stk: ${message}\n`);
    if (e?.hint) process.stderr.write(`hint: ${e.hint}\n`);
    if (!e) process.stderr.write('This is a bug in stk; please report it with the output above.\n');
  }
  return e?.exitCode ?? 3;
}
