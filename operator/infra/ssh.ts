import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { ValidationError } from '../../core/errors.ts';
import { HostKeyMismatchError, SshUnavailableError } from './errors.ts';

/**
 * A small SSH layer on `ssh2` (never a shelled-out `ssh`): connect with a deadline, record the
 * host key fingerprint seen (and refuse a changed one), run commands one at a time with optional
 * stdin and a timeout. Nothing here logs; callers decide what is safe to log.
 */

const { Client, utils } = ssh2;

export interface SshTarget {
  readonly host: string;
  /** default 22 */
  readonly port?: number;
  /** default root (what DigitalOcean installs keys for) */
  readonly username?: string;
  /** private key, OpenSSH or PEM format */
  readonly privateKey: string;
  /** a fingerprint recorded earlier (`SHA256:…`); a host presenting another key is refused */
  readonly expectedHostKey?: string;
}

export interface ExecResult {
  /** null when the command did not report an exit status (connection lost, killed by a signal) */
  readonly exitCode: number | null;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface ExecOptions {
  /** written to the command's stdin, which is then closed; stdin is closed at once without it */
  readonly stdin?: string;
  /** default 10 minutes */
  readonly timeoutMs?: number;
}

export interface SshSession {
  /** `SHA256:<base64>` of the host key presented on connect, as `ssh-keygen -l` prints it */
  readonly hostKeyFingerprint: string;
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  close(): void;
}

export interface ConnectOptions {
  /** handshake and authentication; default 15 s */
  readonly timeoutMs?: number;
}

/** At most this much of each output stream is kept (the tail), so a chatty install cannot exhaust memory. */
const MAX_OUTPUT = 64 * 1024;

/** The OpenSSH-style SHA-256 fingerprint of a public key blob: `SHA256:` + unpadded base64. */
export function hostKeyFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Checks that `privateKey` parses as an unencrypted SSH private key; throws ValidationError (never quoting the key). */
export function assertUsablePrivateKey(privateKey: string): void {
  const parsed = privateKey.trim() === '' ? new Error('empty') : utils.parseKey(privateKey);
  if (parsed instanceof Error || (Array.isArray(parsed) ? parsed[0] === undefined : false)) {
    throw new ValidationError('the SSH private key cannot be parsed (expected an unencrypted OpenSSH or PEM private key)', [], { reason: 'SshKeyInvalid' });
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || !key.isPrivateKey()) {
    throw new ValidationError('the SSH key given is not a private key', [], { reason: 'SshKeyInvalid' });
  }
}

/**
 * Generates an Ed25519 key pair: OpenSSH private key and `ssh-ed25519 AAAA… comment` public key.
 * The key comes from node:crypto and is written in OpenSSH's format here: ssh2's own generator
 * strips leading zero bytes from the 32-byte public key, so about one key in 256 came out
 * malformed (unusable for bootstrap, `config_invalid`).
 */
export function generateSshKeyPair(comment: string): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return ed25519KeyPair(Buffer.from(jwk.d ?? '', 'base64url'), comment);
}

/** The OpenSSH encoding of the Ed25519 key with this 32-byte seed (exported for tests). */
export function ed25519KeyPair(seed: Buffer, comment: string, checkint: number = randomBytes(4).readUInt32BE(0)): { privateKey: string; publicKey: string } {
  if (seed.length !== 32) throw new ValidationError('an Ed25519 seed is 32 bytes');
  // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410), to let node:crypto derive the public half.
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const pub = Buffer.from(createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' }).x ?? '', 'base64url');
  const str = (b: Buffer | string): Buffer => {
    const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    return Buffer.concat([len, buf]);
  };
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  const publicBlob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  let section = Buffer.concat([u32(checkint), u32(checkint), str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str(comment)]);
  const padding = (8 - (section.length % 8)) % 8;
  section = Buffer.concat([section, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), str('none'), str('none'), str(Buffer.alloc(0)), u32(1), str(publicBlob), str(section)]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')}${comment === '' ? '' : ` ${comment}`}`,
  };
}

/** Resolves true when a TCP connection to host:port opens within `timeoutMs`; never rejects. */
export function probeTcp(host: string, port: number, timeoutMs: number): Promise<{ open: boolean; error?: string }> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (result: { open: boolean; error?: string }): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ open: false, error: 'timed out' }), timeoutMs);
    socket.once('connect', () => done({ open: true }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ open: false, error: err.code ?? err.name }));
  });
}

/**
 * Opens an SSH session. Throws HostKeyMismatchError when the host presents a key other than
 * `expectedHostKey`, SshUnavailableError for anything else (refused, timeout, auth failure).
 */
export function connectSsh(target: SshTarget, options: ConnectOptions = {}): Promise<SshSession> {
  const port = target.port ?? 22;
  const username = target.username ?? 'root';
  const timeoutMs = options.timeoutMs ?? 15_000;
  const where = `${username}@${target.host}:${port}`;

  return new Promise<SshSession>((resolve, reject) => {
    const client = new Client();
    let fingerprint: string | undefined;
    let mismatch: HostKeyMismatchError | undefined;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      reject(err);
    };
    const timer = setTimeout(() => fail(new SshUnavailableError(`SSH to ${where}: no session within ${timeoutMs} ms`)), timeoutMs);

    client.on('ready', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(new Session(client, fingerprint ?? ''));
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (mismatch !== undefined) return fail(mismatch);
      const level = err.level === 'client-authentication' ? 'authentication failed' : ((err as NodeJS.ErrnoException).code ?? err.message);
      fail(new SshUnavailableError(`SSH to ${where}: ${level}`));
    });
    client.on('close', () => fail(mismatch ?? new SshUnavailableError(`SSH to ${where}: connection closed during the handshake`)));

    try {
      client.connect({
        host: target.host,
        port,
        username,
        privateKey: target.privateKey,
        readyTimeout: timeoutMs,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer): boolean => {
          fingerprint = hostKeyFingerprint(key);
          if (target.expectedHostKey !== undefined && target.expectedHostKey !== '' && target.expectedHostKey !== fingerprint) {
            mismatch = new HostKeyMismatchError(target.expectedHostKey, fingerprint);
            return false;
          }
          return true;
        },
      });
    } catch {
      // ssh2 throws synchronously on an unparsable key; its message is not quoted (it may echo input).
      fail(new ValidationError('the SSH private key cannot be used', [], { reason: 'SshKeyInvalid' }));
    }
  });
}

class Session implements SshSession {
  readonly #client: InstanceType<typeof Client>;
  readonly hostKeyFingerprint: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(client: InstanceType<typeof Client>, fingerprint: string) {
    this.#client = client;
    this.hostKeyFingerprint = fingerprint;
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    // One command at a time: bootstrap is a sequence, and interleaved output helps nobody.
    const run = this.#queue.then(() => this.#exec(command, options));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.#client.end();
  }

  #exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    return new Promise<ExecResult>((resolve) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let finished = false;
      let channel: ClientChannel | undefined;
      const finish = (exitCode: number | null, signal: string | undefined): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.#client.removeListener('close', onClientClose);
        resolve({ exitCode, signal, stdout, stderr, timedOut });
      };
      const onClientClose = (): void => finish(null, undefined);
      this.#client.once('close', onClientClose);
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          channel?.signal('KILL');
        } catch {
          // the server may not support signals; closing the channel is enough
        }
        channel?.close();
        finish(null, undefined);
      }, timeoutMs);

      try {
        this.#client.exec(command, (err, stream) => {
          if (err !== undefined && err !== null) {
            stderr = `could not start the command: ${err.message}`;
            finish(null, undefined);
            return;
          }
          channel = stream;
          stream.on('data', (chunk: Buffer) => {
            stdout = keepTail(stdout + chunk.toString('utf8'));
          });
          stream.stderr.on('data', (chunk: Buffer) => {
            stderr = keepTail(stderr + chunk.toString('utf8'));
          });
          stream.on('close', (code: number | null | undefined, signal: string | undefined) => {
            finish(typeof code === 'number' ? code : null, signal ?? undefined);
          });
          if (options.stdin !== undefined) stream.write(options.stdin);
          stream.end();
        });
      } catch (err) {
        stderr = `could not start the command: ${err instanceof Error ? err.message : String(err)}`;
        finish(null, undefined);
      }
    });
  }
}

function keepTail(text: string): string {
  return text.length > MAX_OUTPUT ? text.slice(text.length - MAX_OUTPUT) : text;
}
