/** What went wrong, for callers to branch on (never on message text). */
export type ProbesErrorCode = 'DECODE' | 'INVALID_OPTION' | 'OBJECT_MISSING' | 'CLOSED';

/** Base error of @stellaops/probes. Loader failures keep their own `BpfError`. */
export class ProbesError extends Error {
  readonly code: ProbesErrorCode;
  /** How to fix it, when there is something the caller can do. */
  readonly hint: string | undefined;

  constructor(code: ProbesErrorCode, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = this.constructor.name;
    this.code = code;
    this.hint = options.hint;
  }
}

/**
 * A ring-buffer record that does not match the layout this decoder knows:
 * wrong length for its kind, or an unknown kind. Means the BPF object and
 * this package are from different builds.
 */
export class DecodeError extends ProbesError {
  /** Record length in bytes. */
  readonly length: number;
  /** Raw kind field, when the record was long enough to hold one. */
  readonly kind: number | undefined;
  /** Length the layout requires for this record, when known. */
  readonly expected: number | undefined;

  constructor(message: string, details: { length: number; kind?: number; expected?: number }) {
    super('DECODE', message, {
      hint: 'rebuild the BPF objects with `npm run build:native -w @stellaops/probes` so they match this package',
    });
    this.length = details.length;
    this.kind = details.kind;
    this.expected = details.expected;
  }
}

/** An option to openProbeSet() that cannot be honoured; `option` names it. */
export class ProbeOptionError extends ProbesError {
  readonly option: string;
  constructor(option: string, message: string, hint?: string) {
    super('INVALID_OPTION', `${option}: ${message}`, hint === undefined ? {} : { hint });
    this.option = option;
  }
}
