/**
 * Every failure this package reports on purpose. Callers branch on `code`,
 * never on message text.
 */
export type EvidenceChainErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_RECORD'
  | 'SYMLINK_REFUSED'
  | 'NOT_A_DIRECTORY'
  | 'UNSAFE_DIRECTORY'
  | 'UNSUPPORTED_FILESYSTEM'
  | 'PERMISSION_DENIED'
  | 'DISK_FULL'
  | 'IO_ERROR'
  | 'WRITER_CLOSED'
  | 'DIRECTORY_LOCKED'
  | 'KEY_ERROR'
  | 'SIGNING_FAILED'
  | 'TOKEN_INVALID'
  | 'CHAIN_STATE_INVALID'
  | 'WITNESS_FAILED'
  | 'BUNDLE_INVALID';

/** Base error of @stellaops/evidence-chain: a `code`, a message saying what/where/how to fix, a `cause`. */
export class EvidenceChainError extends Error {
  /** Stable machine-readable reason. */
  readonly code: EvidenceChainErrorCode;
  /** File the error is about, when there is one. */
  readonly path: string | undefined;
  /** For `appendMany`: how many records of the batch were written before the failure. */
  readonly written: number | undefined;
  /** How to fix it, when the message alone does not say (printed as a hint line by the CLI). */
  readonly hint: string | undefined;

  constructor(
    code: EvidenceChainErrorCode,
    message: string,
    options: { cause?: unknown; path?: string; written?: number; hint?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.path = options.path;
    this.written = options.written;
    this.hint = options.hint;
  }
}

/** Errno code of a Node system error, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return undefined;
}

/** Wrap a Node fs error in an EvidenceChainError with an actionable message. */
export function ioError(what: string, path: string, err: unknown): EvidenceChainError {
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new EvidenceChainError(
      'DISK_FULL',
      `${what} ${path}: no space left on device (${code}); free space on that filesystem, then writing resumes`,
      { cause: err, path },
    );
  }
  if (code === 'ELOOP') {
    return new EvidenceChainError(
      'SYMLINK_REFUSED',
      `${what} ${path}: it is a symbolic link; evidence files are never opened through symlinks — point the output at a real directory`,
      { cause: err, path },
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new EvidenceChainError('PERMISSION_DENIED', `${what} ${path}: permission denied (${code})`, {
      cause: err,
      path,
      hint: `run as a user that may write there (this process is uid ${process.geteuid?.() ?? '?'}), or choose a directory this user owns`,
    });
  }
  if (code === 'ENOTDIR') {
    return new EvidenceChainError(
      'NOT_A_DIRECTORY',
      `${what} ${path}: a component of the path is a file, not a directory (ENOTDIR)`,
      { cause: err, path, hint: 'check the path: every part before the last must be a directory' },
    );
  }
  if (code === 'EROFS') {
    return new EvidenceChainError('IO_ERROR', `${what} ${path}: the filesystem is read-only (EROFS)`, {
      cause: err,
      path,
      hint: 'choose a directory on a writable filesystem (in Kubernetes, a writable volume)',
    });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new EvidenceChainError('IO_ERROR', `${what} ${path}: ${msg}`, { cause: err, path });
}
