/**
 * Every failure this package reports on purpose. Callers branch on `code`,
 * never on message text.
 */
export type ReachabilityErrorCode =
  | 'INVALID_OPTION'
  | 'SBOM_INVALID'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_INVALID'
  | 'TAR_INVALID'
  | 'IO_ERROR'
  | 'CHAIN_UNVERIFIED'
  | 'STATEMENT_INVALID'
  | 'SIGNATURE_INVALID'
  | 'NOT_IMPLEMENTED';

/** Base error of @stellaops/reachability: a `code`, a message saying what/where/how to fix, a `cause`. */
export class ReachabilityError extends Error {
  /** Stable machine-readable reason. */
  readonly code: ReachabilityErrorCode;
  /** File the error is about, when there is one. */
  readonly path: string | undefined;
  /** How to fix it, when the message alone does not say. */
  readonly hint: string | undefined;

  constructor(
    code: ReachabilityErrorCode,
    message: string,
    options: { cause?: unknown; path?: string; hint?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.path = options.path;
    this.hint = options.hint;
  }
}
