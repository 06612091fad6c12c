/**
 * Every failure this package reports on purpose. Callers branch on `code`,
 * never on message text.
 */
export type EvidenceChainErrorCode =
  | 'INVALID_OPTION'
  | 'INVALID_RECORD'
  | 'SYMLINK_REFUSED'
  | 'NOT_A_DIRECTORY'
  | 'DISK_FULL'
  | 'IO_ERROR'
  | 'WRITER_CLOSED'
  | 'DIRECTORY_LOCKED'
  | 'KEY_ERROR'
  | 'SIGNING_FAILED'
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

  constructor(
    code: EvidenceChainErrorCode,
    message: string,
    options: { cause?: unknown; path?: string; written?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.path = options.path;
    this.written = options.written;
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
  const msg = err instanceof Error ? err.message : String(err);
  return new EvidenceChainError('IO_ERROR', `${what} ${path}: ${msg}`, { cause: err, path });
}
