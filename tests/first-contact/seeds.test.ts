import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExit, freePort, repoRoot, stk, uniqueName, type RunResult } from '../support/cluster.ts';

/**
 * The seeds (../shared/seeds/, the documents Santokit was specified from) are the user's manual:
 * every `stk …` command line written in them must be accepted by `stk`'s command line parser.
 * Read from the seeds' files on every run, never from a copied list, so a seed that changes is
 * checked as it now reads. Each line runs as a user would type it, placeholders filled, against a
 * kubeconfig whose API server refuses connections: parsing is what is checked here, and a command
 * that parses then fails fast at its first request (exit 3), or earlier on input (exit 1).
 */
const seedsDir = process.env.SANTOKIT_SEEDS_DIR ?? path.resolve(repoRoot, '../shared/seeds');

/**
 * Lines `stk` still refuses, each with why. The test fails when one of them starts to parse, so
 * that this list is emptied as soon as it can be.
 */
// Seed lines stk is known to refuse; empty now. A line listed here that stk accepts fails the test, so the list stays honest.
const expectedRefusals: ReadonlyArray<{ line: RegExp; why: string }> = [];

interface SeedLine {
  file: string;
  text: string;
}

/** Every inline code span that starts with `stk `, in every seed file. */
function seedLines(): SeedLine[] {
  const out: SeedLine[] = [];
  for (const file of readdirSync(seedsDir).filter((f) => f.endsWith('.md')).sort()) {
    for (const m of readFileSync(path.join(seedsDir, file), 'utf8').matchAll(/`(stk [^`\n]+)`/g)) out.push({ file, text: m[1]!.trim() });
  }
  return out;
}

/**
 * Prose, not a command line: an ellipsis stands for "the rest as above" (`stk apikey create ...`),
 * and a slash joins several command names (`stk project/env/connections/apply`).
 */
function isProse(text: string): boolean {
  return /\.\.\.|…/.test(text) || /^stk [a-z]+\//.test(text);
}

let dir: string;
let kubeconfig: string;
let hubUrl: string;
const project = uniqueName('seeds');

function fill(text: string): string {
  const values: Record<string, string> = {
    project,
    env: 'dev',
    hubUrl,
    ref: 'abc1234',
    db_url: 'postgres://app:secret@127.0.0.1:5432/app',
    '...': 'postgres://app:secret@127.0.0.1:5432/app',
    'role1,role2,...': 'member,author',
    name: 'web',
    keyId: 'key-0123456789ab',
    releaseId: 'rel-0123456789abcdef',
    previousReleaseId: 'rel-fedcba9876543210',
  };
  return text.replace(/<([^>]+)>/g, (_, key: string) => values[key] ?? 'x1');
}

/** Commander's own refusals start with "error:"; stk's errors start with "stk:". */
const refusal = (res: RunResult): string | undefined => (/^error: /m.test(res.stderr) ? res.stderr.split('\n').find((l) => l.startsWith('error: ')) : undefined);

/**
 * Runs a line; commander checks required options and arguments before unknown ones, so a
 * missing one is filled with a placeholder and the line runs again: what is left is whether
 * every word the seed wrote is known.
 */
async function parseOutcome(args: string[]): Promise<{ res: RunResult; refused?: string }> {
  for (let round = 0; ; round++) {
    const res = await stk(args, { kubeconfig, cwd: dir });
    const refused = refusal(res);
    const missingOption = /^error: required option '(--[a-z-]+)/m.exec(res.stderr)?.[1];
    const missingArgument = /^error: missing required argument/m.test(res.stderr);
    if (round < 4 && missingOption) args = [...args, missingOption, 'x1'];
    else if (round < 4 && missingArgument) args = [...args, 'x1'];
    else return refused ? { res, refused } : { res };
  }
}

describe('every stk command line in the seeds', () => {
  beforeAll(async () => {
    expect(existsSync(seedsDir), `the seeds are not at ${seedsDir}; set SANTOKIT_SEEDS_DIR`).toBe(true);
    dir = mkdtempSync(path.join(tmpdir(), 'stk-seeds-'));
    // An API server address where nothing listens: every request fails at once with exit 3.
    hubUrl = `https://127.0.0.1:${await freePort()}`;
    kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n  - name: hub\n    cluster:\n      server: ${hubUrl}\n      insecure-skip-tls-verify: true\nusers:\n  - name: u\n    user:\n      token: not-a-real-token\ncontexts:\n  - name: hub-context\n    context: { cluster: hub, user: u }\ncurrent-context: hub-context\n`,
    );
    // Lines written "with the context" (컨텍스트 사용) rely on it: set it as flow 01 does.
    expectExit(await stk(['context', 'set', '--project', project, '--env', 'dev', '--connection', 'main'], { kubeconfig, cwd: dir }));
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('are found in the seeds, the forms issue 21 names among them', () => {
    const texts = seedLines().map((l) => l.text);
    expect(texts.length).toBeGreaterThan(30);
    expect(texts).toContain('stk release show --release-id <releaseId>');
    expect(texts).toContain('stk context set --hub <hubUrl> --project <project> --env dev --connection main');
  });

  it('none is refused as an unknown command or option', { timeout: 300_000 }, async () => {
    const lines = [...new Map(seedLines().filter((l) => !isProse(l.text)).map((l) => [l.text, l])).values()];
    const results: Array<{ line: SeedLine; filled: string; refused?: string; res: RunResult }> = [];
    // Four at a time: each is a short-lived process.
    for (let i = 0; i < lines.length; i += 4) {
      results.push(
        ...(await Promise.all(
          lines.slice(i, i + 4).map(async (line) => {
            const filled = fill(line.text);
            const { res, refused } = await parseOutcome(filled.split(/\s+/).slice(1));
            return { line, filled, res, ...(refused ? { refused } : {}) };
          }),
        )),
      );
    }
    const unexpected = results.filter((r) => r.refused && !expectedRefusals.some((e) => e.line.test(r.filled)));
    expect(unexpected.map((r) => `${r.line.file}: ${r.filled}\n  ${r.refused}`), 'seed command lines that stk refuses').toEqual([]);
    const nowAccepted = expectedRefusals.filter((e) => results.some((r) => e.line.test(r.filled) && !r.refused));
    expect(nowAccepted.map((e) => `${e.line} (${e.why})`), 'accepted now: remove these from expectedRefusals').toEqual([]);
    // Parsed lines went on to run: they fail at the unreachable API server (3) or on input (1), never crash.
    for (const r of results.filter((x) => !x.refused)) {
      expect([0, 1, 2, 3], `${r.filled}\n${r.res.stderr}`).toContain(r.res.code);
      expect(r.res.stderr, r.filled).not.toMatch(/This is a bug in stk|TypeError|ReferenceError/);
    }
  });

  it('--hub maps to the kubeconfig context of that API server, or names a context', async () => {
    // Given a kubeconfig with one context whose cluster is at hubUrl
    const cwd = mkdtempSync(path.join(tmpdir(), 'stk-hub-'));
    try {
      // When the seed's flow 01 line runs with the server URL
      expectExit(await stk(['context', 'set', '--hub', `${hubUrl}/`, '--project', project, '--env', 'dev', '--connection', 'main'], { kubeconfig, cwd }));
      // Then the context file holds that kubeconfig context, and the connection as the default one
      const saved = JSON.parse(readFileSync(path.join(cwd, '.stk/context.json'), 'utf8'));
      expect(saved).toEqual({ project, env: 'dev', connection: 'main', kubeContext: 'hub-context' });
      // A context name is taken as is; an unknown one and a server no context points at are refused, saying what to pass
      expectExit(await stk(['context', 'set', '--hub', 'hub-context'], { kubeconfig, cwd }));
      const unknownName = await stk(['context', 'set', '--hub', 'elsewhere'], { kubeconfig, cwd });
      expectExit(unknownName, 1);
      expect(unknownName.stderr).toContain('no kubeconfig context is named "elsewhere"');
      const unknownUrl = await stk(['context', 'set', '--hub', 'https://10.0.0.1:6443'], { kubeconfig, cwd });
      expectExit(unknownUrl, 1);
      expect(unknownUrl.stderr).toMatch(/no kubeconfig context points at the API server https:\/\/10\.0\.0\.1:6443[\s\S]*hint: .*--hub <context name>/);
      expect(JSON.parse(readFileSync(path.join(cwd, '.stk/context.json'), 'utf8')).kubeContext).toBe('hub-context');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
