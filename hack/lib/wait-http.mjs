// Waits until a URL answers an expected status (hack/demo.sh). Sends the API key from a file when
// given, so the key never appears on a command line.
// Usage: node hack/lib/wait-http.mjs <url> <status> <timeout seconds> [API key file] [POST body]
import { readFileSync } from 'node:fs';

const [url, status, timeout, keyFile, body] = process.argv.slice(2);
const deadline = Date.now() + Number(timeout) * 1000;
const headers = { 'content-type': 'application/json' };
if (keyFile) headers['x-santokit-api-key'] = JSON.parse(readFileSync(keyFile, 'utf8')).apiKey;
let last = 'no answer';
while (Date.now() < deadline) {
  try {
    const res = await fetch(url, body === undefined ? { headers } : { method: 'POST', headers, body });
    last = `${res.status} ${(await res.text()).slice(0, 200)}`;
    if (res.status === Number(status)) process.exit(0);
  } catch (err) {
    last = err.cause?.code ?? err.message;
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}
console.error(`demo: ${url} did not answer ${status} within ${timeout}s (last: ${last})`);
process.exit(1);
