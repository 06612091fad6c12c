import { type CommandSpec, helpText, type Parsed, parseCommand } from './args.js';
import { configCommand, configSpec } from './commands/config.js';
import { flushCommand, flushSpec } from './commands/flush.js';
import { followCommand, followSpec } from './commands/follow.js';
import { inspectCommand, inspectSpec } from './commands/inspect.js';
import { keygenCommand, keygenSpec } from './commands/keygen.js';
import { reachabilityCommand, reachabilitySpec } from './commands/reachability.js';
import { startCommand, startSpec } from './commands/start.js';
import { statusCommand, statusSpec } from './commands/status.js';
import { verifyCommand, verifySpec } from './commands/verify.js';
import { CliError, EXIT } from './errors.js';
import { type Io, processIo } from './io.js';
import { VERSION } from './version.js';

interface Command {
  spec: CommandSpec;
  run(p: Parsed, io: Io): Promise<number>;
}

const COMMANDS: Command[] = [
  { spec: startSpec, run: startCommand },
  { spec: statusSpec, run: statusCommand },
  { spec: followSpec, run: followCommand },
  { spec: flushSpec, run: flushCommand },
  { spec: inspectSpec, run: inspectCommand },
  { spec: reachabilitySpec, run: reachabilityCommand },
  { spec: verifySpec, run: verifyCommand },
  { spec: configSpec, run: configCommand },
  { spec: keygenSpec, run: keygenCommand },
];

function topHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.spec.name.length));
  return [
    'stella signals: runtime evidence of what containers actually did, signed and verifiable offline.',
    '',
    'Usage: stella signals <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(w)}  ${c.spec.summary}`),
    '',
    "Run 'stella signals <command> --help' for a command's options, examples and exit codes.",
    '',
    'Configuration: --config FILE, else $STELLA_CONFIG, else /etc/stellaops/stellaops.yaml if it exists',
    "(else defaults); 'stella signals config --effective' shows which file was read.",
    '',
    'Exit codes: 0 ok, 1 verification failed / nothing matched, 2 bad usage or config, 3 environment',
    '(privileges, kernel features, no running collector), 4 a stop could not write or seal everything',
    '(disk full; the next start recovers what is on disk).',
    '',
  ].join('\n');
}

/**
 * Run the CLI with `argv` (without node and script) and return the exit code.
 * User mistakes print `stella: <what>` and a hint, never a stack trace.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  try {
    const [group, name, ...rest] = argv;
    if (group === '--version' || group === '-V') {
      io.out(`stella ${VERSION}\n`);
      return EXIT.OK;
    }
    if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
      io.out(topHelp());
      return EXIT.OK;
    }
    if (group !== 'signals') {
      throw new CliError('USAGE', `unknown command '${group}'`, {
        hint: "the commands live under 'stella signals'",
      });
    }
    if (name === undefined || name === '--help' || name === '-h') {
      io.out(topHelp());
      return name === undefined ? EXIT.USAGE : EXIT.OK;
    }
    const cmd = COMMANDS.find((c) => c.spec.name === name);
    if (!cmd) {
      throw new CliError('USAGE', `unknown command 'signals ${name}'`, {
        hint: `commands: ${COMMANDS.map((c) => c.spec.name).join(', ')}`,
      });
    }
    const parsed = parseCommand(cmd.spec, rest);
    if (parsed.values.help) {
      io.out(helpText(cmd.spec));
      return EXIT.OK;
    }
    return await cmd.run(parsed, io);
  } catch (e) {
    return reportError(e, io);
  }
}

/** Print an error the way a user should see it and return the exit code. */
export function reportError(e: unknown, io: Io): number {
  const err = toCliError(e);
  if (err) {
    io.err(`stella: ${err.message}\n`);
    if (err.hint) io.err(`  hint: ${err.hint}\n`);
    return err.exitCode;
  }
  // A bug, not a user mistake: say so, and keep the stack behind a switch.
  io.err(`stella: internal error: ${(e as Error)?.message ?? String(e)}\n`);
  if (io.env.STELLA_DEBUG === '1') io.err(`${(e as Error)?.stack ?? ''}\n`);
  else io.err('  hint: set STELLA_DEBUG=1 for the stack trace, and please report it\n');
  return 70;
}

/** What an errno means for a path the user gave, and how to fix it. */
const ERRNO_HINTS: Record<string, [string, string]> = {
  ENOENT: ['no such file or directory', 'check the path'],
  ENOTDIR: ['a component of the path is a file, not a directory', 'check the path'],
  EISDIR: ['is a directory where a file was expected', 'give the file, not its directory'],
  EACCES: ['permission denied', 'run as a user that may access it, or fix its ownership and mode'],
  EPERM: ['operation not permitted', 'check the ownership, file attributes (lsattr) and LSM policy'],
  EROFS: ['read-only filesystem', 'choose a path on a writable filesystem'],
  ELOOP: ['too many symbolic links', 'give the real path (realpath)'],
};

/** `message` without a trailing `; <hint>` (BpfError's form), which the hint line repeats. */
function withoutHint(message: string, hint: string | undefined): string {
  return hint && message.endsWith(`; ${hint}`) ? message.slice(0, -(hint.length + 2)) : message;
}

/** Errors from the libraries that are about the environment or input, as CliErrors. */
function toCliError(e: unknown): CliError | undefined {
  if (e instanceof CliError) return e;
  const any = e as { name?: string; code?: string; message?: string; hint?: string };
  if (!any || typeof any !== 'object' || typeof any.code !== 'string') return undefined;
  const hint = typeof any.hint === 'string' ? any.hint : undefined;
  const opts = hint ? { hint, cause: e } : { cause: e };
  switch (any.name) {
    case 'BpfError':
    case 'NotSupportedError': {
      // The loader appends its hint to the message; the CLI prints the hint on its own line.
      const message = withoutHint(any.message ?? String(e), hint);
      if ((e as { operation?: unknown }).operation === 'btf_custom_path') {
        // The loader names its API option (btfCustomPath); users set the config key.
        return new CliError(
          'CONFIG_INVALID',
          `signals.btf_custom_path ${message.replace(/^btfCustomPath /, '')}`,
          opts,
        );
      }
      return new CliError(any.code === 'PRIVILEGE' ? 'PRIVILEGE' : 'KERNEL', message, opts);
    }
    case 'PathGlobError':
      return new CliError('CONFIG_INVALID', `filters: ${any.message}`, opts);
    case 'ProbeOptionError':
      return new CliError('CONFIG_INVALID', any.message ?? String(e), opts);
    case 'ProbesError':
      return any.code === 'OBJECT_MISSING'
        ? new CliError('KERNEL', any.message ?? String(e), opts)
        : undefined;
    case 'StatusSocketError':
      return new CliError(
        any.code === 'ALREADY_RUNNING' ? 'TARGET' : 'NOT_RUNNING',
        any.message ?? String(e),
        opts,
      );
    case 'CollectError':
      if (any.code === 'DISK_FULL') return new CliError('STOP_INCOMPLETE', any.message ?? String(e), opts);
      return any.code === 'USAGE' ? undefined : new CliError('KERNEL', any.message ?? String(e), opts);
    case 'EvidenceChainError':
      switch (any.code) {
        case 'SYMLINK_REFUSED':
        case 'NOT_A_DIRECTORY':
        case 'UNSAFE_DIRECTORY':
        case 'UNSUPPORTED_FILESYSTEM':
        case 'PERMISSION_DENIED':
        case 'DIRECTORY_LOCKED':
        case 'INVALID_OPTION':
          return new CliError('TARGET', any.message ?? String(e), opts);
        case 'KEY_ERROR':
        case 'TOKEN_INVALID':
        case 'SIGNING_FAILED':
          return new CliError('KEY', any.message ?? String(e), opts);
        case 'DISK_FULL':
        case 'IO_ERROR':
          return new CliError('IO', any.message ?? String(e), opts);
        default:
          return undefined;
      }
    default:
      if (typeof any.message === 'string' && /^E[A-Z]+$/.test(any.code)) {
        // Node system errors from user-supplied paths (ENOENT, EACCES, ...).
        const path = (e as NodeJS.ErrnoException).path;
        const fix = ERRNO_HINTS[any.code];
        return new CliError(
          'TARGET',
          fix && path ? `${path}: ${fix[0]} (${any.code})` : any.message,
          fix ? { hint: hint ?? fix[1], cause: e } : opts,
        );
      }
      return undefined;
  }
}
