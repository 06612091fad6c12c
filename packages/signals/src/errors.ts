/** What went wrong in `collect()` or the collector, for callers to branch on. */
export type CollectErrorCode = 'USAGE' | 'ENRICH' | 'OUTPUT' | 'SIGNING' | 'DISK_FULL';

/** Base error of @stellaops/signals. */
export class CollectError extends Error {
  readonly code: CollectErrorCode;
  readonly hint: string | undefined;

  constructor(code: CollectErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.hint = opts.hint;
  }
}
