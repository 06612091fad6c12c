import { isUtf8 } from 'node:buffer';
import type { BytesField } from './schema/dsl.js';
import { isWellFormed } from './text.js';

/**
 * Kernel byte strings (paths, argv, comm, AF_UNIX names) in evidence.
 *
 * Linux paths are bytes, not text. A byte string that is valid UTF-8 is
 * written as a JSON string (control characters and newlines included,
 * escaped as JSON requires); any other byte string is written as
 * `{"b64": "<standard base64 with padding>"}`. Each byte string has exactly
 * one encoding, so the canonical bytes of a record stay unique, and every
 * byte string round-trips losslessly.
 */

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The evidence encoding of raw bytes: a string when valid UTF-8, else `{b64}`. */
export function bytesField(raw: Uint8Array | string): BytesField {
  if (typeof raw === 'string') {
    // A JS string is only representable as bytes when it is well-formed UTF-16.
    if (!isWellFormed(raw)) {
      throw new TypeError(
        'bytesField: the string has a lone surrogate and is not UTF-8 text; pass the raw bytes',
      );
    }
    return raw;
  }
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (isUtf8(buf)) return buf.toString('utf8');
  return { b64: buf.toString('base64') };
}

/**
 * The raw bytes of an evidence byte string. Throws TypeError when the field
 * is neither a string nor a `{b64}` object with valid base64.
 */
export function bytesFromField(field: BytesField): Buffer {
  if (typeof field === 'string') return Buffer.from(field, 'utf8');
  if (field !== null && typeof field === 'object' && typeof field.b64 === 'string' && B64.test(field.b64)) {
    return Buffer.from(field.b64, 'base64');
  }
  throw new TypeError('bytesFromField: expected a string or {"b64": "<standard base64>"}');
}

/**
 * Why a `{b64}` value is not the canonical encoding of a byte string, or
 * undefined when it is: the base64 must be standard alphabet with padding,
 * decode to at least one byte, at most `maxBytes`, and those bytes must NOT
 * be valid UTF-8 (valid UTF-8 is always written as a plain string).
 */
export function b64Problem(b64: string, maxBytes: number): string | undefined {
  if (b64.length === 0) return 'is empty; an empty byte string is written as ""';
  if (!B64.test(b64))
    return 'is not standard base64 (alphabet A-Z a-z 0-9 + /, "=" padding to a multiple of 4)';
  const buf = Buffer.from(b64, 'base64');
  // The regex admits non-zero trailing bits in the last group ("QR==" vs "QQ=="); only one is canonical.
  if (buf.toString('base64') !== b64)
    return 'has non-zero padding bits; re-encode the bytes with standard base64';
  if (buf.length > maxBytes) return `decodes to ${buf.length} bytes, more than the ${maxBytes} allowed`;
  if (isUtf8(buf)) return 'decodes to valid UTF-8, which must be written as a plain JSON string instead';
  return undefined;
}

/** True when the UTF-8 encoding of `s` has at most `max` bytes (no allocation when surely short). */
export function fitsUtf8(s: string, max: number): boolean {
  // Every UTF-16 code unit is at most 3 UTF-8 bytes (a surrogate pair: 4 bytes for 2 units).
  if (s.length * 3 <= max) return true;
  return Buffer.byteLength(s, 'utf8') <= max;
}
