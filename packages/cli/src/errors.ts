/** What went wrong, for callers to branch on (never on message text). */
export type CliErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'DISABLED'
  | 'PRIVILEGE'
  | 'KERNEL'
  | 'KEY'
  | 'TARGET'
  | 'NOT_RUNNING'
  | 'NO_EVIDENCE'
  | 'IO'
  | 'VERIFY_FAILED'
  | 'STOP_INCOMPLETE';

/** Process exit codes, documented in every command's --help. */
export const EXIT = {
  OK: 0,
  /** verification failed, or no evidence matched */
  FAILED: 1,
  /** bad flags, arguments or configuration */
  USAGE: 2,
  /** the environment cannot run this: privileges, kernel features, no collector */
  ENVIRONMENT: 3,
  /**
   * a stop could not write or seal everything within its budget (the disk
   * stayed full): what is on disk is sealed or recovered by the next start
   */
  STOP_INCOMPLETE: 4,
} as const;

/**
 * A user-facing failure: printed as `stella: <message>` plus a hint line,
 * never as a stack trace.
 */
export class CliError extends Error {
  readonly code: CliErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: CliErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.hint = opts.hint;
    this.exitCode =
      code === 'USAGE' ||
      code === 'CONFIG_INVALID' ||
      code === 'CONFIG_NOT_FOUND' ||
      code === 'TARGET' ||
      code === 'KEY' ||
      code === 'DISABLED'
        ? EXIT.USAGE
        : code === 'VERIFY_FAILED' || code === 'NO_EVIDENCE'
          ? EXIT.FAILED
          : code === 'STOP_INCOMPLETE'
            ? EXIT.STOP_INCOMPLETE
            : EXIT.ENVIRONMENT;
  }
}
