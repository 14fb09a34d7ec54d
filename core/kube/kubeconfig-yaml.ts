/**
 * A reader for the YAML that kubeconfig files are written in (by kubectl, kind, cloud CLIs,
 * hack/cluster.sh): block mappings and sequences (also the compact `key:\n- item` form), plain,
 * single- and double-quoted scalars on one line, `{}` and `[]`, comments, and JSON. It exists so
 * that `stk` does not load the YAML library (a quarter of a megabyte of code to compile and run)
 * for every command. Anything else — anchors and aliases, tags, block and multi-line scalars,
 * non-empty flow collections, several documents, directives, tabs in indentation, duplicate keys —
 * is not read: the answer is `undefined` and the caller parses the text with the YAML library.
 * What it does read it reads as the YAML library does (YAML 1.2, core schema); the property test
 * beside it compares the two.
 */

interface Line {
  readonly indent: number;
  /** the line without indentation or trailing comment; quoted scalars are kept whole */
  readonly text: string;
}

/** Thrown inside the reader when the text is outside the subset. */
class OutsideSubset extends Error {}

const outside = (): never => {
  throw new OutsideSubset();
};

/** The value of a YAML text in the subset, or undefined when the text is outside it. */
export function parseKubeconfigYaml(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return undefined;
    }
  }
  try {
    const lines = toLines(text);
    if (lines.length === 0) return null;
    const reader = new BlockReader(lines);
    const value = reader.node(-1);
    if (!reader.done) outside();
    return value;
  } catch (err) {
    if (err instanceof OutsideSubset) return undefined;
    throw err;
  }
}

function toLines(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let indent = 0;
    while (raw[indent] === ' ') indent++;
    const rest = raw.slice(indent);
    if (rest.startsWith('\t') || rest.trim() === '') {
      if (rest.trim() !== '') outside();
      continue;
    }
    if (rest.startsWith('#')) continue;
    if (indent === 0 && (rest.startsWith('---') || rest.startsWith('...') || rest.startsWith('%'))) outside();
    lines.push({ indent, text: withoutComment(rest) });
  }
  return lines;
}

/** Cuts a trailing ` # comment` outside quotes; a line whose quotes do not close is outside the subset. */
function withoutComment(text: string): string {
  if (!text.includes('#') && !text.includes('"') && !text.includes("'")) return text.trimEnd();
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote === '"') {
      if (c === '\\') i++;
      else if (c === '"') quote = undefined;
    } else if (quote === "'") {
      if (c === "'" && text[i + 1] === "'") i++;
      else if (c === "'") quote = undefined;
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s:\-[{,]/.test(text[i - 1]!))) {
      quote = c;
    } else if (c === '#' && i > 0 && /\s/.test(text[i - 1]!)) {
      return text.slice(0, i).trimEnd();
    }
  }
  if (quote !== undefined) outside();
  return text.trimEnd();
}

const PLAIN_KEY = /^([A-Za-z0-9_./@$-][A-Za-z0-9_./@$ -]*?)[ ]*:(?: +|$)/;
const QUOTED_KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')[ ]*:(?: +|$)/;

class BlockReader {
  private i = 0;
  private readonly lines: Line[];

  constructor(lines: Line[]) {
    this.lines = lines;
  }

  get done(): boolean {
    return this.i >= this.lines.length;
  }

  private peek(): Line | undefined {
    return this.lines[this.i];
  }

  /** The node that starts at the current line, indented more than `parent`. */
  node(parent: number): unknown {
    const line = this.peek();
    if (!line || line.indent <= parent) return null;
    if (isItem(line.text)) return this.sequence(line.indent);
    if (keyOf(line.text)) return this.mapping(line.indent);
    // A lone scalar: only as a whole document or a sequence item's own line.
    this.i++;
    const value = scalar(line.text);
    const next = this.peek();
    if (next && next.indent > parent && next.indent >= line.indent) outside(); // a multi-line scalar
    return value;
  }

  private sequence(indent: number): unknown[] {
    const items: unknown[] = [];
    for (let line = this.peek(); line && line.indent === indent && isItem(line.text); line = this.peek()) {
      const rest = line.text.slice(1).replace(/^ +/, '');
      if (rest === '') {
        this.i++;
        items.push(this.node(indent));
        continue;
      }
      // `- key: value` opens a mapping whose keys line up with `key`; `- - x` a nested sequence.
      this.lines[this.i] = { indent: indent + (line.text.length - rest.length), text: rest };
      items.push(this.node(indent));
    }
    return items;
  }

  private mapping(indent: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    for (let line = this.peek(); line && line.indent === indent; line = this.peek()) {
      const key = keyOf(line.text);
      if (key === undefined) outside();
      const { name, rest } = key!;
      if (Object.hasOwn(map, name) || name === '__proto__') outside();
      this.i++;
      let value: unknown;
      if (rest === '') {
        const next = this.peek();
        // `key:` then `- item` at the same indentation: the compact form of a sequence value.
        value = next && next.indent === indent && isItem(next.text) ? this.sequence(indent) : this.node(indent);
      } else {
        value = scalar(rest);
        const next = this.peek();
        if (next && next.indent > indent) outside(); // a multi-line plain scalar, or worse
      }
      map[name] = value;
    }
    const after = this.peek();
    if (after && after.indent > indent) outside();
    return map;
  }
}

function isItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

function keyOf(text: string): { name: string; rest: string } | undefined {
  const quoted = QUOTED_KEY.exec(text);
  if (quoted) return { name: String(quotedScalar(quoted[1]!)), rest: text.slice(quoted[0].length) };
  const plain = PLAIN_KEY.exec(text);
  if (!plain) return undefined;
  const name = plain[1]!;
  // Keys are read as the text they are; one that would resolve to another type is left to the YAML library.
  if (typeof plainScalar(name) !== 'string' || name.startsWith('-') || name.endsWith(' ')) outside();
  return { name, rest: text.slice(plain[0].length) };
}

/** One scalar on one line (the text has no comment any more). */
function scalar(text: string): unknown {
  if (text === '{}') return {};
  if (text === '[]') return [];
  const first = text[0]!;
  if (first === '"' || first === "'") return quotedScalar(text);
  if ('&*!|>{[]},%@`?'.includes(first)) outside();
  if (first === '-' && (text === '-' || text[1] === ' ')) outside();
  if (/: |:$|\t/.test(text)) outside();
  return plainScalar(text);
}

function quotedScalar(text: string): string {
  if (text[0] === "'") {
    const m = /^'((?:[^']|'')*)'$/.exec(text);
    if (!m) outside();
    return m![1]!.replace(/''/g, "'");
  }
  const m = /^"((?:[^"\\]|\\.)*)"$/.exec(text);
  if (!m) outside();
  return m![1]!.replace(/\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)/g, (_, e: string) => {
    switch (e[0]) {
      case 'x':
      case 'u':
      case 'U':
        return String.fromCodePoint(parseInt(e.slice(1), 16));
      case 'n':
        return '\n';
      case 't':
      case '\t':
        return '\t';
      case 'r':
        return '\r';
      case '"':
      case '\\':
      case '/':
      case ' ':
        return e;
      case '0':
        return '\0';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'v':
        return '\v';
      case 'a':
        return '\x07';
      case 'e':
        return '\x1b';
      case 'N':
        return '\u0085';
      case '_':
        return '\u00a0';
      case 'L':
        return '\u2028';
      case 'P':
        return '\u2029';
      default:
        return outside();
    }
  });
}

/** A plain scalar resolved by the YAML 1.2 core schema. */
function plainScalar(text: string): unknown {
  // Most values start with a letter no YAML type starts with: no pattern to try.
  if (!/^[-+.~0-9nNtTfF]/.test(text)) return text;
  if (/^(?:~|null|Null|NULL)$/.test(text)) return null;
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?[0-9]+$/.test(text)) {
    const n = Number(text);
    // Past the safe integers the YAML library's answer depends on its options: leave it to it.
    if (!Number.isSafeInteger(n)) outside();
    return n;
  }
  if (/^0o[0-7]+$/.test(text) || /^0x[0-9a-fA-F]+$/.test(text)) outside();
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(text)) outside();
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(text) || /^\.(?:nan|NaN|NAN)$/.test(text)) outside();
  return text;
}
