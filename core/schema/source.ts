import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node } from 'yaml';
import type { FieldError } from '../errors.ts';

/**
 * One YAML source file with what it takes to point at any of its values: errors found in the
 * parsed data are reported with the file, line and column of the key or value they concern.
 */

export type Segment = string | number;

export interface SourceDoc {
  readonly path: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Parses text into a YAML document that remembers positions; never throws. */
export function readSource(path: string, text: string): SourceDoc {
  const lines = new LineCounter();
  // uniqueKeys is checked by `firstDuplicateKey` instead: the parser's own check is quadratic in
  // the size of a mapping, and a schema of 10,000 tables is one mapping.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false, strict: true });
  return { path, doc, lines };
}

/** The first key that repeats within one mapping, with its position; undefined when none does. */
export function firstDuplicateKey(source: SourceDoc): { key: string; position: Position } | undefined {
  let found: { key: string; position: Position } | undefined;
  visit(source.doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (seen.has(key)) {
          found = { key, position: positionOf(source, pair.key.range?.[0] ?? 0) };
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found;
}

/** Positions of the keys of the mapping at a path, by key: one pass, for lookups by the thousand. */
export function keyPositions(source: SourceDoc, path: readonly Segment[]): Map<string, Position> {
  let node: unknown = source.doc.contents;
  for (const seg of path) {
    if (!isMap(node)) return new Map();
    node = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg))?.value;
  }
  const out = new Map<string, Position>();
  if (!isMap(node)) return out;
  for (const pair of node.items) {
    if (isScalar(pair.key) && pair.key.range) out.set(String(pair.key.value), positionOf(source, pair.key.range[0]));
  }
  return out;
}

export function positionOf(source: SourceDoc, offset: number): Position {
  const { line, col } = source.lines.linePos(offset);
  return { line: Math.max(line, 1), column: Math.max(col, 1) };
}

/**
 * The position of the value (or, with `at: 'key'`, of the key) at a path; when the path goes further
 * than the document, the deepest node that exists.
 */
export function locate(source: SourceDoc, path: readonly Segment[], at: 'key' | 'value' = 'value'): Position {
  let node: unknown = source.doc.contents;
  let found: Node | undefined = isNodeWithRange(node) ? node : undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(source.doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const last = i === path.length - 1;
      if ((last && at === 'key') || pair.value === null || pair.value === undefined) {
        if (isNodeWithRange(pair.key)) found = pair.key;
        if (last || pair.value === null || pair.value === undefined) break;
      }
      node = pair.value;
      // `key:` with nothing after it: point at the key, not at the empty spot after the colon
      if (isScalar(node) && node.value === null && node.range !== undefined && node.range !== null && node.range[0] === node.range[1]) {
        if (isNodeWithRange(pair.key)) found = pair.key;
        break;
      }
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)];
      if (item === undefined) break;
      node = item;
    } else {
      break;
    }
    if (isNodeWithRange(node)) found = node;
  }
  return positionOf(source, found?.range?.[0] ?? 0);
}

function isNodeWithRange(node: unknown): node is Node {
  return typeof node === 'object' && node !== null && 'range' in node && Array.isArray((node as Node).range);
}

/** `tables.users.columns.email`, `tables.users.indexes[0].columns[1]` */
export function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** A located problem in one file. */
export function fieldError(source: SourceDoc, path: readonly Segment[], message: string, at: 'key' | 'value' = 'value'): FieldError {
  const { line, column } = locate(source, path, at);
  const where = formatPath(path);
  return { path: source.path, line, column, message: where === '' ? message : `${where}: ${message}` };
}

export function compareFieldErrors(a: FieldError, b: FieldError): number {
  if (a.path !== b.path) return a.path < b.path ? -1 : 1;
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
}
