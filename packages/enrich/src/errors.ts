/**
 * Why an enrichment call failed. Callers branch on `code`, never on message text.
 *
 * - `INVALID_OPTION`: an option has the wrong type or range; the message names it.
 * - `RUNTIME_UNAVAILABLE`: a container runtime socket is missing or refused the connection.
 * - `RUNTIME_ERROR`: a runtime answered with an error or a malformed reply.
 * - `ELF_INVALID`: a file is not a well-formed ELF object (or is truncated).
 * - `ELF_UNSUPPORTED`: a valid ELF this reader does not handle (32-bit, big-endian).
 * - `PROC_UNAVAILABLE`: `/proc/<pid>` cannot be read (process gone, or no permission).
 * - `CLOSED`: the resolver or stage was used after `close()`.
 */
export type EnrichErrorCode =
  | 'INVALID_OPTION'
  | 'RUNTIME_UNAVAILABLE'
  | 'RUNTIME_ERROR'
  | 'ELF_INVALID'
  | 'ELF_UNSUPPORTED'
  | 'PROC_UNAVAILABLE'
  | 'CLOSED';

/** The one error class of @stellaops/enrich. */
export class EnrichError extends Error {
  /** Machine-readable reason; see {@link EnrichErrorCode}. */
  readonly code: EnrichErrorCode;

  constructor(code: EnrichErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = this.constructor.name;
  }
}
