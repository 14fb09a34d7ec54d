// `POST /call` for hack/demo.sh: prints the request and the data plane's answer.
// Usage: node hack/lib/demo-call.mjs <data-plane URL> <API key file | -> <path> [params JSON]
// The key is read from a file (the demo keeps it in the state directory, mode 0600) so that it
// never appears on a command line; "-" sends no key. Exit 0 whatever the answer; 1 when the data
// plane cannot be reached.
import { readFileSync } from 'node:fs';

const [url, keyFile, path, params = '{}'] = process.argv.slice(2);
const headers = { 'content-type': 'application/json' };
if (keyFile !== '-') headers['x-santokit-api-key'] = JSON.parse(readFileSync(keyFile, 'utf8')).apiKey;
const body = JSON.stringify({ path, params: JSON.parse(params) });
console.log(`$ curl -s ${url}/call -H "X-Santokit-Api-Key: $KEY" -d '${body}'`);
try {
  const res = await fetch(`${url}/call`, { method: 'POST', headers, body });
  console.log(`  → ${res.status} ${await res.text()}`);
} catch (err) {
  console.error(`demo: the data plane at ${url} did not answer: ${err.cause?.code ?? err.message}`);
  process.exit(1);
}
