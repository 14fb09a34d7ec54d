import type { Argument, Command, Help, Option } from 'commander';

/**
 * The CLI reference (docs/cli-reference.md) rendered from the commander definitions, so the page
 * says exactly what `stk --help` says. Pure: no terminal width, no version, no clock.
 */

/** How to rewrite docs/cli-reference.md; named in the page and in the test that guards it. */
export const regenerateCommand = 'npm run build && npm run docs:cli';

/** Renders the whole reference as Markdown: global options, exit codes, then every command. */
export function renderCliReference(program: Command, exitCodes: ReadonlyArray<{ code: number; meaning: string }>): string {
  const help = program.createHelp();
  const leaves = allCommands(program, help);
  const out: string[] = [
    `# \`${program.name()}\` command reference`,
    '',
    `<!-- Generated from the commander definitions (cli/program.ts) by cli/reference.ts. Do not edit; run \`${regenerateCommand}\`. -->`,
    '',
    `${inline(program.description())}.`,
    '',
    `Usage: \`${help.commandUsage(program)}\`. Every command also takes \`-h, --help\`; \`${program.name()} help <command>\` prints the same.`,
    '',
    '## Global options',
    '',
    'These go before or after the command name and apply to every command.',
    '',
    ...optionList(program, help),
    '',
    '## Exit codes',
    '',
    '| code | meaning |',
    '|---|---|',
    ...exitCodes.map((e) => `| ${e.code} | ${cell(e.meaning)} |`),
    '',
    '## Commands',
    '',
    ...leaves.map((c) => `- [\`${path(c)}\`](#${anchor(c)}): ${inline(firstSentence(c.description()))}`),
    '',
  ];
  for (const cmd of leaves) out.push(...commandSection(cmd, help));
  return `${out.join('\n').trimEnd()}\n`;
}

/** Every command below the root, depth first in definition order; groups before their subcommands. */
function allCommands(cmd: Command, help: Help): Command[] {
  return subcommands(cmd, help).flatMap((c) => [c, ...allCommands(c, help)]);
}

/** Visible subcommands, without commander's implicit `help` command. */
function subcommands(cmd: Command, help: Help): Command[] {
  return help.visibleCommands(cmd).filter((c) => cmd.commands.includes(c));
}

function commandSection(cmd: Command, help: Help): string[] {
  const level = '#'.repeat(Math.min(2 + depth(cmd), 4));
  const children = subcommands(cmd, help);
  const lines = [`${level} \`${path(cmd)}\``, '', `${inline(cmd.description())}`, ''];
  if (children.length > 0) {
    lines.push('Subcommands:', '', ...children.map((c) => `- [\`${path(c)}\`](#${anchor(c)}): ${inline(firstSentence(c.description()))}`), '');
    if (ownOptions(cmd, help).length === 0) return lines;
  }
  lines.push(`Usage: \`${help.commandUsage(cmd)}\``, '');
  const args = cmd.registeredArguments;
  if (args.length > 0) lines.push('Arguments:', '', ...args.map((a) => `- \`${argumentTerm(a)}\`: ${describe(inline(a.description), argumentFacts(a))}`), '');
  const options = optionList(cmd, help);
  if (options.length > 0) lines.push('Options:', '', ...options, '');
  return lines;
}

function ownOptions(cmd: Command, help: Help): Option[] {
  return help.visibleOptions(cmd).filter((o) => cmd.options.includes(o));
}

function optionList(cmd: Command, help: Help): string[] {
  return ownOptions(cmd, help).map((o) => `- \`${o.flags}\`: ${describe(inline(o.description), optionFacts(o))}`);
}

/** What commander adds in parentheses in `--help`: required, choices, default, environment variable. */
function optionFacts(o: Option): string[] {
  const facts: string[] = [];
  if (o.mandatory) facts.push('required');
  if (o.argChoices) facts.push(`one of ${o.argChoices.map((c) => `\`${c}\``).join(', ')}`);
  const takesValue = o.required || o.optional;
  if (o.defaultValue !== undefined && (takesValue || (o.isBoolean() && typeof o.defaultValue === 'boolean'))) {
    facts.push(`default \`${o.defaultValueDescription ?? String(o.defaultValue)}\``);
  }
  if (o.envVar) facts.push(`env \`${o.envVar}\``);
  return facts;
}

function argumentFacts(a: Argument): string[] {
  // `<name>` already says required; an optional argument says so in words.
  const facts: string[] = a.required ? [] : ['optional'];
  if (a.argChoices) facts.push(`one of ${a.argChoices.map((c) => `\`${c}\``).join(', ')}`);
  if (a.defaultValue !== undefined) facts.push(`default \`${a.defaultValueDescription ?? String(a.defaultValue)}\``);
  return facts;
}

function argumentTerm(a: Argument): string {
  const name = `${a.name()}${a.variadic ? '...' : ''}`;
  return a.required ? `<${name}>` : `[${name}]`;
}

function describe(text: string, facts: string[]): string {
  if (facts.length === 0) return text;
  return text ? `${text} (${facts.join('; ')})` : `(${facts.join('; ')})`;
}

function path(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function depth(cmd: Command): number {
  let d = 0;
  for (let c = cmd.parent; c?.parent; c = c.parent) d++;
  return d;
}

/** The GitHub heading anchor of a command's section (its heading is the command path in code). */
function anchor(cmd: Command): string {
  return path(cmd).toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}

function firstSentence(text: string): string {
  const cut = text.search(/[:;(]/);
  const head = cut > 0 ? text.slice(0, cut) : text;
  // Never cut inside a code span.
  return (head.split('`').length % 2 === 1 ? head : text).trim();
}

/**
 * Prose from a description, safe in Markdown: a word holding a `<placeholder>` outside code spans
 * becomes code (raw, `<…>` would be read as an HTML tag); other text is left as written.
 */
function inline(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/[^\s()]*<[^<>\s]+>[^\s(),;]*/g, (m) => `\`${m}\``)))
    .join('');
}

function cell(text: string): string {
  return inline(text).replace(/\|/g, '\\|');
}
