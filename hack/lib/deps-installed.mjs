// Exit 0 when node_modules holds exactly the versions package-lock.json pins (hack/setup.sh then
// skips `npm ci`); exit 1 naming the first difference. Reads npm's record of what it installed
// (node_modules/.package-lock.json) and each package's own package.json.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file) => JSON.parse(readFileSync(path.join(root, file), 'utf8'));
const lock = read('package-lock.json');
const pkg = read('package.json');
const fail = (why) => {
  console.error(`setup: ${why}`);
  process.exit(1);
};
const rootEntry = lock.packages?.[''] ?? {};
for (const field of ['dependencies', 'devDependencies']) {
  if (JSON.stringify(rootEntry[field] ?? {}) !== JSON.stringify(pkg[field] ?? {})) fail(`package-lock.json does not match package.json's ${field}`);
}
for (const [where, entry] of Object.entries(lock.packages ?? {})) {
  if (where === '' || entry.link) continue;
  const manifest = path.join(root, where, 'package.json');
  if (!existsSync(manifest)) {
    if (entry.optional) continue; // another platform's optional binary
    fail(`${where} is not installed`);
  }
  const installed = JSON.parse(readFileSync(manifest, 'utf8')).version;
  if (installed !== entry.version) fail(`${where} is ${installed}, package-lock.json pins ${entry.version}`);
}
