/**
 * What can be wrong with evidence, as a closed set callers branch on:
 *
 * - `INVALID_JSON`: the line is not JSON (or is empty).
 * - `INVALID_UTF8`: the line's bytes are not UTF-8.
 * - `NOT_CANONICAL`: valid JSON and a valid record, but not the canonical
 *   bytes (RFC 8785) of that record: the evidence was rewritten.
 * - `SCHEMA`: the value is not a valid schema v1 record; `issues` lists every
 *   problem with its JSON path.
 * - `UNSUPPORTED_VALUE`: a value JSON evidence cannot hold (NaN, a float,
 *   undefined, a function, a bigint, a Buffer, an object with toJSON, a lone
 *   surrogate…), found while encoding.
 * - `LINE_TOO_LONG`: a line exceeded the reader's `maxLineBytes`.
 * - `MISSING_NEWLINE`: the stream ended inside a line (truncated evidence).
 * - `SEQUENCE`: `seq` does not continue the stream (gap, repeat, reorder).
 */
export type NdjsonErrorCode =
  | 'INVALID_JSON'
  | 'INVALID_UTF8'
  | 'NOT_CANONICAL'
  | 'SCHEMA'
  | 'UNSUPPORTED_VALUE'
  | 'LINE_TOO_LONG'
  | 'MISSING_NEWLINE'
  | 'SEQUENCE';

/** One problem found in a value, at a JSON path like `$.container.k8s.pod` or `$.argv[2]`. */
export interface ValidationIssue {
  /** Where: JSONPath of the offending member (`$` is the record itself). */
  readonly path: string;
  /** What is wrong and what was expected, in words. */
  readonly reason: string;
}

/** Where in a stream a problem is. */
export interface LineLocation {
  /** 1-based line number within the stream. */
  readonly lineNumber?: number;
  /** 0-based byte offset of the first byte of the line within the stream. */
  readonly byteOffset?: number;
}

/** Details given when constructing an {@link NdjsonError}. */
export interface NdjsonErrorDetails extends LineLocation {
  /** JSONPath of the first bad member, when the problem is in one. */
  readonly path?: string;
  /** Every problem found (SCHEMA has one per bad member). */
  readonly issues?: readonly ValidationIssue[];
  /** How to fix it. */
  readonly hint?: string;
  /** Underlying error (e.g. the JSON.parse SyntaxError). */
  readonly cause?: unknown;
}

/**
 * The one error class of @stellaops/ndjson. Branch on `code`, never on the
 * message. The message says what is wrong, where (line, byte offset, JSON
 * path) and how to fix it.
 */
export class NdjsonError extends Error {
  /** What kind of problem; see {@link NdjsonErrorCode}. */
  readonly code: NdjsonErrorCode;
  /** The problem without the location prefix. */
  readonly reason: string;
  /** 1-based line number, when decoding a stream or a numbered line. */
  readonly lineNumber: number | undefined;
  /** 0-based byte offset of the line in the stream. */
  readonly byteOffset: number | undefined;
  /** JSONPath of the first bad member. */
  readonly path: string | undefined;
  /** Every problem found; at least one for SCHEMA. */
  readonly issues: readonly ValidationIssue[];
  /** How to fix it. */
  readonly hint: string | undefined;

  constructor(code: NdjsonErrorCode, reason: string, details: NdjsonErrorDetails = {}) {
    const where: string[] = [];
    if (details.lineNumber !== undefined) where.push(`line ${details.lineNumber}`);
    if (details.byteOffset !== undefined) where.push(`byte offset ${details.byteOffset}`);
    if (details.path !== undefined) where.push(details.path);
    const prefix = where.length > 0 ? `${where.join(', ')}: ` : '';
    const suffix = details.hint ? ` (${details.hint})` : '';
    super(
      `${code}: ${prefix}${reason}${suffix}`,
      details.cause === undefined ? {} : { cause: details.cause },
    );
    this.name = this.constructor.name;
    this.code = code;
    this.reason = reason;
    this.lineNumber = details.lineNumber;
    this.byteOffset = details.byteOffset;
    this.path = details.path;
    this.issues = details.issues ?? (details.path === undefined ? [] : [{ path: details.path, reason }]);
    this.hint = details.hint;
  }
}

// Bundlers may rename the class (esbuild emits `_NdjsonError`); pin the name
// so `error.name` and `constructor.name` stay "NdjsonError" in dist builds.
Object.defineProperty(NdjsonError, 'name', { value: 'NdjsonError' });

/** A SCHEMA error from a non-empty list of issues. */
export function schemaError(issues: readonly ValidationIssue[], location: LineLocation = {}): NdjsonError {
  const first = issues[0]!;
  const more =
    issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return new NdjsonError('SCHEMA', `${first.reason}${more}`, {
    ...location,
    path: first.path,
    issues,
    hint: 'see docs/evidence-schema.md for the v1 record layout',
  });
}
