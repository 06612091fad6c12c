import { parseArgs } from 'node:util';
import { CliError } from './errors.js';

/** An option a command accepts: `--name value`, `--flag`, or repeatable. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** One line for --help; `VALUE` names the argument. */
  help: string;
  value?: string;
}

/** A subcommand's grammar and help, from which parsing and `--help` both come. */
export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** Names of positional arguments, in order; `?` suffix = optional. */
  positionals: string[];
  examples: string[];
  exitCodes: string[];
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: Record<string, string | undefined>;
}

/**
 * Parse argv for one command. Unknown flags, missing values and extra
 * arguments become CliError('USAGE') that say which and point at --help.
 */
export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = {
      type: o.type,
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short ? { short: o.short } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new CliError('USAGE', `stella signals ${spec.name}: ${msg}`, {
      hint: `run 'stella signals ${spec.name} --help'`,
    });
  }
  const values = parsed.values as Parsed['values'];
  if (values.help) return { values, positionals: {} };
  const positionals: Record<string, string | undefined> = {};
  const names = spec.positionals;
  if (parsed.positionals.length > names.length) {
    throw new CliError(
      'USAGE',
      `stella signals ${spec.name}: unexpected argument '${parsed.positionals[names.length]}'`,
      { hint: `usage: ${spec.usage}` },
    );
  }
  names.forEach((n, i) => {
    const optional = n.endsWith('?');
    const key = optional ? n.slice(0, -1) : n;
    const v = parsed.positionals[i];
    if (v === undefined && !optional) {
      throw new CliError('USAGE', `stella signals ${spec.name}: missing ${key.toUpperCase()}`, {
        hint: `usage: ${spec.usage}`,
      });
    }
    positionals[key] = v;
  });
  return { values, positionals };
}

/** The --help text of a command. */
export function helpText(spec: CommandSpec): string {
  const lines = [`${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Options:'];
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return [flag, o.help + (o.multiple ? ' (repeatable)' : '')] as const;
  });
  rows.push(['-h, --help', 'show this help']);
  const w = Math.max(...rows.map(([f]) => f.length));
  for (const [f, h] of rows) lines.push(`  ${f.padEnd(w)}  ${h}`);
  lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  lines.push('', 'Exit codes:', ...spec.exitCodes.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

/** Parse a duration like `30s`, `5m`, `2h`, `1500ms` into milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) {
    throw new CliError('USAGE', `${flag}: '${text}' is not a duration`, {
      hint: 'use e.g. 30s, 5m, 2h or 1500ms',
    });
  }
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Math.round(n * unit);
  if (ms <= 0) throw new CliError('USAGE', `${flag}: the duration must be positive`);
  return ms;
}
