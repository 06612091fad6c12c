import { canonicalize as jcs } from 'json-canonicalize';
import { NdjsonError } from './errors.js';
import { pathIndex, pathKey } from './path.js';
import { isWellFormed } from './text.js';

/**
 * Throw UNSUPPORTED_VALUE, with the JSON path, if `value` holds anything
 * evidence JSON cannot carry exactly: undefined (anywhere, also as a member
 * value: omit the member instead), NaN/Infinity, floats, integers beyond
 * 2^53-1, bigint, functions, symbols, lone surrogates, objects that are not
 * plain (Buffer, Date, Map, class instances), objects with a `toJSON`
 * member, symbol keys, and cycles.
 */
export function assertSupported(value: unknown, path = '$'): void {
  walk(value, path, new Set());
}

function unsupported(path: string, reason: string, hint: string): never {
  throw new NdjsonError('UNSUPPORTED_VALUE', reason, { path, hint });
}

function walk(value: unknown, path: string, stack: Set<object>): void {
  switch (typeof value) {
    case 'boolean':
      return;
    case 'string':
      if (!isWellFormed(value)) {
        unsupported(
          path,
          'string contains a lone UTF-16 surrogate, which has no UTF-8 encoding',
          'for kernel bytes use bytesField(buffer), which falls back to {"b64"}',
        );
      }
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        unsupported(path, `${value} is not a JSON number`, 'RFC 8785 forbids NaN and Infinity');
      }
      if (!Number.isInteger(value)) {
        unsupported(
          path,
          `${value} is a float; evidence holds integers only`,
          'scale to an integer unit (ns, bytes)',
        );
      }
      if (!Number.isSafeInteger(value)) {
        unsupported(
          path,
          `${value} is beyond 2^53-1 and loses precision as a JSON number`,
          'write 64-bit values as decimal strings (u64String)',
        );
      }
      return;
    case 'undefined':
      unsupported(path, 'undefined is not a JSON value', 'omit the member (or array item) instead');
      break;
    case 'bigint':
      unsupported(path, 'bigint is not a JSON value', 'write 64-bit values as decimal strings (u64String)');
      break;
    case 'function':
    case 'symbol':
      unsupported(path, `a ${typeof value} is not a JSON value`, 'remove it from the record');
      break;
    case 'object': {
      if (value === null) return;
      if (stack.has(value)) unsupported(path, 'circular reference', 'evidence records are trees');
      stack.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) walk(value[i], pathIndex(path, i), stack);
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          const name = (proto?.constructor as { name?: string } | undefined)?.name ?? 'object';
          const hint =
            Buffer.isBuffer(value) || value instanceof Uint8Array
              ? 'use bytesField(buf)'
              : 'use a plain object';
          unsupported(path, `${name} is not a plain JSON object`, hint);
        }
        if ('toJSON' in value) {
          unsupported(path, 'object has a toJSON member', 'pass the plain value toJSON would return');
        }
        if (Object.getOwnPropertySymbols(value).length > 0) {
          unsupported(path, 'object has symbol keys, which JSON drops silently', 'remove them');
        }
        for (const key of Object.keys(value)) {
          const p = pathKey(path, key);
          if (!isWellFormed(key)) unsupported(p, 'member name contains a lone UTF-16 surrogate', 'rename it');
          walk((value as Record<string, unknown>)[key], p, stack);
        }
      }
      stack.delete(value);
      return;
    }
  }
}

/**
 * RFC 8785 (JCS) canonical JSON text of any JSON value, without a trailing
 * newline: members sorted by UTF-16 code units, no whitespace, ECMAScript
 * number and string serialisation. Generic and slower than `encodeRecord`;
 * use it for values that are not evidence records.
 *
 * Throws NdjsonError UNSUPPORTED_VALUE (see {@link assertSupported}).
 */
export function canonicalize(value: unknown): string {
  assertSupported(value);
  return jcs(value);
}
