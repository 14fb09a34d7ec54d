import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from './program.ts';
import { commandNameOf, topLevelCommands } from './start.ts';

describe('cli/start.ts', () => {
  it('knows every top-level command of the full program, in its order and with its description', () => {
    // Given the full program (every module loaded) and the table `stk` starts from
    const full = buildProgram().commands.map((c) => ({ name: c.name(), description: c.description() }));
    // Then they list the same commands, the same way: `stk --help` reads the same either way
    expect(topLevelCommands.map((c) => ({ name: c.name, description: c.description }))).toEqual(full);
  });

  it('loads, for each command, the module that defines it', async () => {
    for (const entry of topLevelCommands) {
      const fresh = new Command('stk');
      (await entry.load())(fresh);
      expect(fresh.commands.map((c) => c.name()), entry.name).toContain(entry.name);
    }
  });

  it('finds the command name after global options, and after `help`', () => {
    expect(commandNameOf(['env', 'list'])).toBe('env');
    expect(commandNameOf(['--kubeconfig', '/k', '--context', 'c', 'release', 'list'])).toBe('release');
    expect(commandNameOf(['--json', '--kubeconfig=/k', 'login'])).toBe('login');
    expect(commandNameOf(['help', 'apikey'])).toBe('apikey');
    expect(commandNameOf(['--help'])).toBeUndefined();
    expect(commandNameOf([])).toBeUndefined();
  });
});
