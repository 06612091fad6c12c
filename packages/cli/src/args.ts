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
    parsed = parseArgs({
      args: joinDashValues(options, argv),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    const msg = (e as Error).message;
    const ambiguous = /^Option '(-[^']+)' argument is ambiguous/.exec(msg);
    if (ambiguous) {
      throw new CliError('USAGE', `stella signals ${spec.name}: ${ambiguous[1]} is missing its value`, {
        hint: `the next argument is another option; give the value right after ${ambiguous[1]}, or run 'stella signals ${spec.name} --help'`,
      });
    }
    throw new CliError(
      'USAGE',
      `stella signals ${spec.name}: ${msg.replace(/\. To specify (a positional|an option) argument.*$/s, '')}`,
      { hint: `run 'stella signals ${spec.name} --help'` },
    );
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

/**
 * `--duration -5s` as `--duration=-5s`: a value that starts with one dash and
 * is not itself one of the command's options is the option's value (Node's
 * parseArgs calls it "ambiguous"); the option's own check then says what is
 * wrong with it (a negative duration, say). `--x` and known flags stay flags.
 */
function joinDashValues(
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>,
  argv: string[],
): string[] {
  const takesValue = new Set<string>();
  const flags = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    flags.add(`--${name}`);
    if (o.short) flags.add(`-${o.short}`);
    if (o.type === 'string') {
      takesValue.add(`--${name}`);
      if (o.short) takesValue.add(`-${o.short}`);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    if (
      takesValue.has(a) &&
      next !== undefined &&
      /^-[^-]/.test(next) &&
      !flags.has(next.split('=')[0]!) &&
      !(next.length === 2 && flags.has(next))
    ) {
      out.push(`${a.startsWith('--') ? a : `--${longName(options, a)}`}=${next}`);
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

function longName(options: Record<string, { short?: string }>, short: string): string {
  return Object.entries(options).find(([, o]) => `-${o.short}` === short)?.[0] ?? short.slice(1);
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
  const example = 'use e.g. 30s, 5m, 2h or 1500ms';
  if (/^\s*-/.test(text)) {
    throw new CliError('USAGE', `${flag}: '${text}' is negative; the duration must be positive`, {
      hint: example,
    });
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) {
    throw new CliError('USAGE', `${flag}: '${text}' is not a duration`, { hint: example });
  }
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Math.round(n * unit);
  if (ms <= 0)
    throw new CliError('USAGE', `${flag}: '${text}' is zero; the duration must be positive`, {
      hint: example,
    });
  return ms;
}
