import { eventually, runCommand, uniqueName } from './cluster.ts';

/**
 * A command in a real terminal: a tmux session of its own server (socket), read with
 * capture-pane. When the command ends the pane prints `STK_EXITED=<code>` and stays open.
 */
export interface Terminal {
  /** sends keys (tmux names: `Down`, `Enter`, `q` …) */
  send(...keys: string[]): Promise<void>;
  /** what the pane shows now */
  screen(): Promise<string>;
  /** polls the screen until `test` holds; the error shows the last screen and `context()` */
  waitFor(test: (text: string) => boolean, what: string, options?: { timeoutMs?: number; context?: () => string }): Promise<string>;
  close(): Promise<void>;
}

export async function startTerminal(options: { argv: string[]; width: number; height: number; cwd?: string; joinWrapped?: boolean }): Promise<Terminal> {
  const socket = uniqueName('stk-tmux');
  const tmux = (...args: string[]) => runCommand('tmux', ['-L', socket, ...args], { timeoutMs: 10_000 });
  const command = options.argv.map((a) => `'${a}'`).join(' ');
  const started = await tmux(
    'new-session', '-d', '-x', String(options.width), '-y', String(options.height), ...(options.cwd ? ['-c', options.cwd] : []), '-s', 'main',
    `${command}; echo STK_EXITED=$?; sleep 120`,
  );
  if (started.code !== 0) throw new Error(`tmux did not start: ${started.stderr}`);
  const screen = async () => (await tmux('capture-pane', '-p', ...(options.joinWrapped ? ['-J'] : []), '-t', 'main')).stdout;
  return {
    async send(...keys) {
      await tmux('send-keys', '-t', 'main', ...keys);
    },
    screen,
    async waitFor(test, what, { timeoutMs = 30_000, context } = {}) {
      let last = '';
      try {
        return await eventually(
          async () => {
            last = await screen();
            return test(last) ? last : undefined;
          },
          { timeoutMs, intervalMs: 150, what },
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- screen ---\n${last}${context ? `\n--- context ---\n${context()}` : ''}`);
      }
    },
    async close() {
      await tmux('kill-server');
    },
  };
}
