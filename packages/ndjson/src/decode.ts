import { isUtf8 } from 'node:buffer';
import { canonicalize as jcs } from 'json-canonicalize';
import { fastVerify } from './encode.js';
import { type LineLocation, NdjsonError, schemaError } from './errors.js';
import type { EvidenceRecord } from './records.js';
import { compareU64, validateRecord } from './validate.js';

const NEWLINE = 0x0a;

/** Default longest line the stream decoder accepts (bytes, newline excluded). */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

function firstInvalidUtf8(buf: Uint8Array): number {
  // Binary search is wrong here (validity is not monotonic); scan code points instead.
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    const n =
      b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > buf.length || !isUtf8(buf.subarray(i, i + n))) return i;
    i += n;
  }
  return -1;
}

/** The decimal string of `s` + 1 for a valid u64 string `s` (2^64 for the maximum, which no seq can equal). */
export function nextU64(s: string): string {
  let i = s.length - 1;
  while (i >= 0 && s.charCodeAt(i) === 0x39) i--;
  if (i < 0) return `1${'0'.repeat(s.length)}`;
  return s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) + 1) + '0'.repeat(s.length - 1 - i);
}

/** Byte length of the first `chars` UTF-16 units of `s`. */
function byteColumn(s: string, chars: number): number {
  return Buffer.byteLength(s.slice(0, chars), 'utf8');
}

function excerpt(s: string, at: number): string {
  return JSON.stringify(s.slice(Math.max(0, at - 10), at + 20));
}

function notCanonical(text: string, canonical: string, loc: LineLocation): NdjsonError {
  let i = 0;
  while (i < text.length && i < canonical.length && text[i] === canonical[i]) i++;
  return new NdjsonError(
    'NOT_CANONICAL',
    `valid record but not its canonical form: byte ${byteColumn(text, i)} of the line reads ${excerpt(text, i)} where RFC 8785 gives ${excerpt(canonical, i)}`,
    {
      ...loc,
      hint: 'the evidence was rewritten after it was produced (whitespace, member order, escapes or number form changed); re-encode only with encodeRecord',
    },
  );
}

/**
 * Decode and check one evidence line: `line` is its UTF-8 bytes or text, with
 * or without the one trailing "\n". Returns the record when the line is the
 * canonical form of a valid schema v1 record.
 *
 * Throws NdjsonError carrying `loc` (line number, byte offset) and, for
 * SCHEMA, every bad member's JSON path: INVALID_UTF8, INVALID_JSON (also for
 * an empty line), SCHEMA, NOT_CANONICAL (valid, but not the bytes
 * encodeRecord would write: the evidence was rewritten).
 */
export function decodeLine(line: string | Uint8Array, loc: LineLocation = {}): EvidenceRecord {
  let text: string;
  if (typeof line === 'string') {
    text = line;
  } else {
    if (!isUtf8(line)) {
      const at = firstInvalidUtf8(line);
      throw new NdjsonError('INVALID_UTF8', `byte ${at} of the line is not part of a valid UTF-8 sequence`, {
        ...loc,
        hint: 'evidence lines are UTF-8; non-UTF-8 kernel bytes belong in {"b64"} byte strings',
      });
    }
    text = Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString('utf8');
  }
  // The record ends before one trailing newline. The text is not sliced: the
  // fast check reads it in place (charCodeAt on a sliced string is slower),
  // and JSON.parse takes the newline as whitespace.
  const end = text.charCodeAt(text.length - 1) === 0x0a ? text.length - 1 : text.length;
  if (end === 0) {
    throw new NdjsonError('INVALID_JSON', 'empty line', {
      ...loc,
      hint: 'every line holds exactly one record',
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new NdjsonError('INVALID_JSON', `not JSON: ${(cause as Error).message}`, {
      ...loc,
      cause,
      hint: 'the line is damaged or truncated',
    });
  }
  if (fastVerify(value, text, end)) return value as EvidenceRecord;
  const issues = validateRecord(value);
  if (issues.length > 0) throw schemaError(issues, loc);
  const body = end === text.length ? text : text.slice(0, end);
  const canonical = jcs(value);
  if (canonical !== body) throw notCanonical(body, canonical, loc);
  return value as EvidenceRecord;
}

/** What {@link decodeStream} yields per line. */
export type DecodeResult =
  | {
      readonly ok: true;
      readonly record: EvidenceRecord;
      readonly lineNumber: number;
      readonly byteOffset: number;
    }
  | {
      readonly ok: false;
      readonly error: NdjsonError;
      readonly lineNumber: number;
      readonly byteOffset: number;
      /** The record, when the line itself is valid but breaks the stream (SEQUENCE). */
      readonly record?: EvidenceRecord;
    };

/** Options of {@link decodeStream}. */
export interface DecodeStreamOptions {
  /**
   * "strict" (default): the iterator throws the first NdjsonError.
   * "collect": every bad line is yielded as `{ok: false, error}` and decoding
   * continues with the next line; no line is ever skipped silently.
   */
  readonly mode?: 'strict' | 'collect';
  /** Longest line accepted, in bytes without the newline. Default 1 MiB. */
  readonly maxLineBytes?: number;
  /** Check that `seq` grows by exactly one per record (default true). */
  readonly checkSequence?: boolean;
}

/** A source of NDJSON bytes: a Node stream, a web ReadableStream, any (async) iterable of chunks. */
export type NdjsonSource =
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array | string>
  | NodeJS.ReadableStream;

function checkOptions(options: DecodeStreamOptions): Required<DecodeStreamOptions> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('decodeStream: options must be an object');
  }
  const mode = options.mode ?? 'strict';
  if (mode !== 'strict' && mode !== 'collect') {
    throw new TypeError(`decodeStream: mode must be "strict" or "collect", got ${JSON.stringify(mode)}`);
  }
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) {
    throw new RangeError(
      `decodeStream: maxLineBytes must be a positive integer, got ${String(maxLineBytes)}`,
    );
  }
  const checkSequence = options.checkSequence ?? true;
  if (typeof checkSequence !== 'boolean')
    throw new TypeError('decodeStream: checkSequence must be a boolean');
  return { mode, maxLineBytes, checkSequence };
}

function toBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return chunk;
  throw new TypeError(
    `decodeStream/decodeLines: chunks must be Uint8Array/Buffer or string, got ${typeof chunk}`,
  );
}

/** Per-stream line state shared by decodeStream and decodeLines. */
class LineDecoder {
  /** 1-based number of the current line. */
  lineNumber = 1;
  /** Stream offset of the current line's first byte. */
  lineStart = 0;
  private prevSeq: string | undefined;

  constructor(
    private readonly mode: 'strict' | 'collect',
    private readonly checkSequence: boolean,
    private readonly maxLineBytes: number,
  ) {}

  /** Strict: throw. Collect: the error result for the current line. */
  fail(error: NdjsonError, record?: EvidenceRecord): DecodeResult {
    if (this.mode === 'strict') throw error;
    const base = {
      ok: false as const,
      error,
      lineNumber: error.lineNumber ?? this.lineNumber,
      byteOffset: error.byteOffset ?? this.lineStart,
    };
    return record === undefined ? base : { ...base, record };
  }

  /** Decode the current line (bytes without the newline) and check seq continuity. */
  finishLine(bytes: Uint8Array): DecodeResult {
    const loc = { lineNumber: this.lineNumber, byteOffset: this.lineStart };
    let record: EvidenceRecord;
    try {
      record = decodeLine(bytes, loc);
    } catch (e) {
      if (e instanceof NdjsonError) return this.fail(e);
      throw e;
    }
    if (this.checkSequence) {
      const seq = record.seq;
      const prev = this.prevSeq;
      this.prevSeq = seq;
      if (prev !== undefined && seq !== nextU64(prev)) {
        const expected = (BigInt(prev) + 1n).toString();
        const what =
          compareU64(seq, prev) <= 0
            ? 'repeats or goes back'
            : `skips ${(BigInt(seq) - BigInt(expected)).toString()} record(s)`;
        return this.fail(
          new NdjsonError('SEQUENCE', `seq ${seq} ${what}: expected ${expected} after ${prev}`, {
            ...loc,
            path: '$.seq',
            hint: 'records were lost, duplicated or reordered; within a stream seq grows by exactly one',
          }),
          record,
        );
      }
    }
    return { ok: true, record, ...loc };
  }

  /** Move past the current line of `length` bytes and its newline. */
  nextLine(length: number): void {
    this.lineStart += length + 1;
    this.lineNumber++;
  }

  /** The LINE_TOO_LONG result for the current line. */
  tooLong(): DecodeResult {
    return this.fail(
      new NdjsonError('LINE_TOO_LONG', `line is longer than ${this.maxLineBytes} bytes`, {
        lineNumber: this.lineNumber,
        byteOffset: this.lineStart,
        hint: 'raise maxLineBytes if such records are expected, or the stream is not line-delimited',
      }),
    );
  }
}

/**
 * Decode an NDJSON evidence stream line by line. Pull-based: a chunk is read
 * from `source` only when the consumer asks for the next result and the
 * buffered chunk has no complete line left, so a slow consumer holds back a
 * Node stream (backpressure) instead of buffering it. Closing the iterator
 * early (break, return) closes the source's iterator too.
 *
 * Per line it checks UTF-8, JSON, schema v1, canonical form, length
 * (`maxLineBytes`), the final newline (a stream that ends inside a line is
 * truncated: MISSING_NEWLINE) and, unless disabled, that `seq` grows by one.
 * Errors carry the 1-based line number and the byte offset of the line.
 */
export async function* decodeStream(
  source: NdjsonSource,
  options: DecodeStreamOptions = {},
): AsyncGenerator<DecodeResult, void, undefined> {
  const { mode, maxLineBytes, checkSequence } = checkOptions(options);
  const iterable = source as AsyncIterable<unknown> & Iterable<unknown>;
  if (
    iterable === null ||
    typeof iterable !== 'object' ||
    (typeof iterable[Symbol.asyncIterator] !== 'function' && typeof iterable[Symbol.iterator] !== 'function')
  ) {
    throw new TypeError('decodeStream: source must be a readable stream or an (async) iterable of chunks');
  }

  const d = new LineDecoder(mode, checkSequence, maxLineBytes);
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let skipping = false; // the current line exceeded maxLineBytes, was reported, and is being skipped
  let skippedBytes = 0;

  for await (const raw of iterable) {
    const chunk = toBytes(raw);
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, from);
      const end = nl < 0 ? chunk.length : nl;
      const seg = end - from;
      if (skipping) {
        skippedBytes += seg;
      } else if (pendingBytes + seg > maxLineBytes) {
        skipping = true;
        skippedBytes = pendingBytes + seg;
        pending = [];
        pendingBytes = 0;
        yield d.tooLong();
      } else if (nl >= 0) {
        let line: Uint8Array;
        if (pendingBytes === 0) {
          line = chunk.subarray(from, end);
        } else {
          pending.push(chunk.subarray(from, end));
          line = Buffer.concat(pending, pendingBytes + seg);
          pending = [];
          pendingBytes = 0;
        }
        const result = d.finishLine(line);
        d.nextLine(line.length);
        yield result;
        from = nl + 1;
        continue;
      } else {
        // Copy: the source may reuse a chunk's memory once we ask it for the next one.
        pending.push(Uint8Array.prototype.slice.call(chunk, from, end));
        pendingBytes += seg;
      }
      if (nl >= 0) {
        // End of a line that was too long: it was reported, now resume after it.
        d.nextLine(skippedBytes);
        skipping = false;
        skippedBytes = 0;
        from = nl + 1;
        continue;
      }
      from = end;
    }
  }
  if (pendingBytes > 0 && !skipping) {
    yield d.fail(
      new NdjsonError(
        'MISSING_NEWLINE',
        `the stream ends inside line ${d.lineNumber} (${pendingBytes} bytes without the final "\\n")`,
        {
          lineNumber: d.lineNumber,
          byteOffset: d.lineStart,
          hint: 'the evidence is truncated; every record line ends with "\\n"',
        },
      ),
    );
  }
}

/**
 * Decode evidence given line by line, as a line reader (node:readline, a
 * framing layer) delivers it: each item is one line, without or with its
 * "\n". Same checks, modes and results as {@link decodeStream}, with byte
 * offsets counted as if each line were followed by one "\n". A source that
 * yields lines hides the line terminators: a missing final newline is only
 * caught when the last line's JSON breaks, and a line reader that strips
 * "\r\n" hides CRLF rewriting. To check the bytes exactly, decode them with
 * decodeStream.
 */
export async function* decodeLines(
  lines: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
  options: DecodeStreamOptions = {},
): AsyncGenerator<DecodeResult, void, undefined> {
  const { mode, maxLineBytes, checkSequence } = checkOptions(options);
  const iterable = lines as AsyncIterable<unknown> & Iterable<unknown>;
  if (
    iterable === null ||
    typeof iterable !== 'object' ||
    (typeof iterable[Symbol.asyncIterator] !== 'function' && typeof iterable[Symbol.iterator] !== 'function')
  ) {
    throw new TypeError('decodeLines: lines must be an (async) iterable of strings or byte arrays');
  }
  const d = new LineDecoder(mode, checkSequence, maxLineBytes);
  for await (const item of iterable) {
    let bytes = toBytes(item);
    if (bytes.length > 0 && bytes[bytes.length - 1] === NEWLINE) bytes = bytes.subarray(0, bytes.length - 1);
    const nl = bytes.indexOf(NEWLINE);
    let result: DecodeResult;
    if (nl >= 0) {
      result = d.fail(
        new NdjsonError('INVALID_JSON', `the item holds more than one line (a "\\n" at byte ${nl})`, {
          lineNumber: d.lineNumber,
          byteOffset: d.lineStart,
          hint: 'give decodeLines one line per item, or use decodeStream for raw bytes',
        }),
      );
    } else if (bytes.length > maxLineBytes) {
      result = d.tooLong();
    } else {
      result = d.finishLine(bytes);
    }
    d.nextLine(bytes.length);
    yield result;
  }
}
