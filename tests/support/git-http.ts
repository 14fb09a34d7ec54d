import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { simpleGit } from 'simple-git';

/**
 * Git's smart HTTP protocol on loopback, the way a Git host serves it: a small Node server hands
 * every request to `git http-backend` (CGI) over bare repositories in one directory. Tests push with
 * file:// (no auth to fake) and GitOps controllers clone and fetch over http://127.0.0.1:<port>/.
 */
export interface GitHttpServer {
  /** the directory holding the bare repositories (`<name>.git`) */
  readonly root: string;
  readonly port: number;
  /** creates an empty bare repository `<name>.git` (HEAD on main) */
  createBareRepo(name: string): Promise<BareRepo>;
  close(): Promise<void>;
}

export interface BareRepo {
  /** path of the bare repository: push to it with a plain path or file:// URL */
  readonly dir: string;
  /** the URL a controller clones */
  readonly url: string;
}

export async function startGitHttpServer(options: { root?: string } = {}): Promise<GitHttpServer> {
  const root = options.root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'stk-git-http-'));
  const backend = await gitExecPath().then((dir) => path.join(dir, 'git-http-backend'));
  const server = http.createServer((req, res) => serve(backend, root, req, res));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    root,
    port,
    async createBareRepo(name) {
      const dir = path.join(root, `${name}.git`);
      await simpleGit().raw(['init', '--bare', '--initial-branch=main', dir]);
      return { dir, url: `http://127.0.0.1:${port}/${name}.git` };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function gitExecPath(): Promise<string> {
  return (await simpleGit().raw(['--exec-path'])).trim();
}

/** Runs one request through `git http-backend` (RFC 3875 CGI) and relays its answer. */
function serve(backend: string, root: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: root,
    // Serve every repository under the root (no git-daemon-export-ok files). Pushes over HTTP
    // would need an authenticated user (REMOTE_USER); tests push with file:// instead.
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
    // http-backend inflates gzip request bodies itself, and speaks protocol v2 when asked.
    ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
    ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
  };
  const child = spawn(backend, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('error', (err) => fail(res, `git http-backend did not start: ${err.message}`));
  child.stdin.on('error', () => {});
  req.pipe(child.stdin);

  let head = Buffer.alloc(0);
  let headersSent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const split = headerEnd(head);
    if (!split) return;
    const { status, headers } = parseCgiHeaders(head.subarray(0, split.at).toString('latin1'));
    res.writeHead(status, headers);
    headersSent = true;
    const body = head.subarray(split.at + split.length);
    if (body.length > 0) res.write(body);
  });
  child.on('close', (code) => {
    if (!headersSent) return fail(res, `git http-backend exited with ${code}: ${stderr.trim()}`);
    res.end();
  });
}

function headerEnd(buf: Buffer): { at: number; length: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { at: crlf, length: 4 };
  if (lf >= 0) return { at: lf, length: 2 };
  return undefined;
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers };
}

function fail(res: http.ServerResponse, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(500, { 'Content-Type': 'text/plain' });
  res.end(`${message}\n`);
}
