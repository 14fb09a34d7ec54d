/**
 * Secret scrubbing for free text (error messages, logs, events). Structured fields are redacted
 * by the logger's paths; this catches secrets that slipped into a string, such as a driver error
 * that quotes a connection URL.
 */

const patterns: ReadonlyArray<[RegExp, string]> = [
  // scheme://user:password@host → scheme://user:***@host
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]+@/gi, '$1***@'],
  // password=... in libpq key/value strings or query strings
  [/(password\s*=\s*)('[^']*'|[^\s&;]+)/gi, '$1***'],
  [/\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, '$1***'],
  [/\bdop_v1_[a-f0-9]{16,}\b/g, '***'],
  [/\btskey-[a-z]+-[A-Za-z0-9-]{6,}\b/g, '***'],
  // API keys (stk_ak<16 hex>_<secret>); not the data plane's role names (stk_dp_<24 hex>), which are no secret
  [/\bstk_(?!dp_[0-9a-f]{24}\b)[A-Za-z0-9_-]{16,}\b/g, '***'],
  // GitHub tokens: classic and fine-grained personal, OAuth, app and refresh tokens
  [/\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/g, '***'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '***'],
];

/** Replaces anything that looks like a credential in `text` with `***`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [re, replacement] of patterns) out = out.replace(re, replacement);
  return out;
}

/** Field names whose values are never logged, whatever object they sit in. */
export const secretFieldNames = [
  'password',
  'dbUrl',
  'databaseUrl',
  'url',
  'token',
  'apiKey',
  'authorization',
  'privateKey',
  'authKey',
  'secret',
  'sealed',
] as const;
