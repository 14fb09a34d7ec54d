/**
 * A large, realistic application schema for scale tests and benchmarks, deterministic from a seed:
 * `tables` tables of 20 columns each (an id and 19 more, of every type, with varied names), a few
 * NOT NULL, unique and defaulted columns, an index or two on most tables and a foreign key to an
 * earlier table on about a third of them; and a permission policy over every `policyEvery`-th
 * table. Split into files of at most 500 tables, as a team would keep them.
 */

const NOUNS = ['account', 'invoice', 'order', 'shipment', 'product', 'customer', 'ticket', 'payment', 'review', 'session', 'campaign', 'warehouse', 'supplier', 'contract', 'asset', 'report', 'device', 'message', 'project', 'task'];
const QUALIFIERS = ['item', 'line', 'event', 'note', 'history', 'link', 'tag', 'audit', 'state', 'detail', 'rate', 'price', 'share', 'quota'];
const COLUMN_WORDS = ['name', 'title', 'label', 'code', 'status', 'amount', 'total', 'count', 'score', 'weight', 'ratio', 'starts_at', 'ends_at', 'created_by', 'region', 'currency', 'payload', 'metadata', 'flag', 'enabled', 'notes', 'email', 'phone', 'city', 'zip', 'country', 'level', 'rank', 'version', 'checksum', 'priority', 'color', 'size', 'source', 'channel'];
const TYPES = ['string', 'int', 'bigint', 'float', '"decimal(12,2)"', 'boolean', 'json', 'timestamp', 'bytes', 'string', 'string', 'int'];

/** mulberry32: a small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LargeSchema {
  /** `schema/app-<n>.yaml` → text */
  files: Record<string, string>;
  /** `config/permissions.yaml` text */
  permissions: string;
  /** every table name, in declaration order */
  tables: string[];
}

export function largeSchema(tables: number, options: { seed?: number; policyEvery?: number } = {}): LargeSchema {
  const random = prng(options.seed ?? 17);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const names: string[] = [];
  const files: Record<string, string> = {};
  let lines: string[] = [];
  const flush = () => {
    if (lines.length === 0) return;
    files[`schema/app-${String(Object.keys(files).length).padStart(3, '0')}.yaml`] = `version: 1\ntables:\n${lines.join('\n')}\n`;
    lines = [];
  };
  for (let t = 0; t < tables; t++) {
    const name = `${pick(NOUNS)}_${pick(QUALIFIERS)}_${String(t).padStart(5, '0')}`;
    names.push(name);
    lines.push(`  ${name}:`, `    id: { generate: ${t % 7 === 0 ? 'uuid_v7' : 'ulid'} }`, '    columns:');
    const used = new Set<string>();
    const columns: string[] = [];
    for (let c = 0; c < 19; c++) {
      let column = pick(COLUMN_WORDS);
      if (used.has(column)) column = `${column}_${c}`;
      used.add(column);
      columns.push(column);
      const type = c === 18 && t > 0 && t % 3 === 0 ? 'string' : pick(TYPES);
      const extra: string[] = [];
      if (c === 0) extra.push('nullable: false');
      if (c === 1 && t % 4 === 0) extra.push('unique: true');
      if (c === 2 && type === 'int') extra.push('default: 0');
      // a third of the tables point at an earlier table
      if (c === 18 && t > 0 && t % 3 === 0) extra.push(`references: { table: ${names[Math.floor(random() * t)]}, onDelete: ${pick(['cascade', 'restrict', 'set_null'])} }`);
      lines.push(`      ${column}: { type: ${type}${extra.length ? `, ${extra.join(', ')}` : ''} }`);
    }
    const indexes = [`      - { columns: [${columns[0]}] }`];
    if (t % 2 === 0) indexes.push(`      - { columns: [${columns[3]}, ${columns[4]}] }`);
    lines.push('    indexes:', ...indexes);
    if ((t + 1) % 500 === 0) flush();
  }
  flush();
  const every = options.policyEvery ?? 2;
  const policy = ['tables:'];
  names.forEach((name, i) => {
    if (i % every !== 0) return;
    policy.push(`  ${name}:`, '    select:', '      - roles: [reader, admin]', '        columns: ["*"]', '    insert:', '      - roles: [admin]');
  });
  return { files, permissions: `${policy.join('\n')}\n`, tables: names };
}
