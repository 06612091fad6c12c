import fc from 'fast-check';
import { canonicalize as jcs } from 'json-canonicalize';
import { describe, expect, it } from 'vitest';
import { decodeLine } from '../src/decode.js';
import { encodeRecord } from '../src/encode.js';
import { NdjsonError } from '../src/errors.js';
import { anyRecordArb } from './arbitraries.js';

/** Positions in a JSON text that are between tokens (outside strings). */
function tokenGaps(text: string): number[] {
  const gaps: number[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i += text[i + 1] === 'u' ? 5 : 1;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if ('{}[],:'.includes(c)) gaps.push(i, i + 1);
  }
  return gaps;
}

/** Offsets of characters inside strings (not escapes). */
function stringChars(text: string): number[] {
  const out: number[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (!inString) {
      if (c === '"') inString = true;
      continue;
    }
    if (c === '\\') {
      i += text[i + 1] === 'u' ? 5 : 1; // skip the whole escape
      continue;
    }
    if (c === '"') inString = false;
    else if (text.charCodeAt(i) < 0xd800 || text.charCodeAt(i) > 0xdfff) out.push(i);
  }
  return out;
}

/** Rewrites that keep the JSON value but change the bytes. */
const rewrite = fc.constantFrom(
  'space',
  'escape',
  'reorder',
  'duplicate',
  'number',
  'newline',
) as fc.Arbitrary<'space' | 'escape' | 'reorder' | 'duplicate' | 'number' | 'newline'>;

function apply(text: string, how: string, pick: number): string | undefined {
  switch (how) {
    case 'space': {
      const gaps = tokenGaps(text);
      const at = gaps[pick % gaps.length]!;
      return `${text.slice(0, at)}${[' ', '\t', '\r\n ', '  '][pick % 4]}${text.slice(at)}`;
    }
    case 'escape': {
      const chars = stringChars(text);
      if (chars.length === 0) return undefined;
      const at = chars[pick % chars.length]!;
      const code = text.charCodeAt(at).toString(16).padStart(4, '0');
      return `${text.slice(0, at)}\\u${pick % 2 ? code : code.toUpperCase()}${text.slice(at + 1)}`;
    }
    case 'reorder': {
      const value = JSON.parse(text) as Record<string, unknown>;
      const keys = Object.keys(value);
      const i = pick % keys.length;
      const j = (i + 1 + (pick % (keys.length - 1))) % keys.length;
      [keys[i], keys[j]] = [keys[j]!, keys[i]!];
      return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(value[k])}`).join(',')}}`;
    }
    case 'duplicate': {
      const value = JSON.parse(text) as Record<string, unknown>;
      const keys = Object.keys(value);
      const k = keys[pick % keys.length]!;
      return `${text.slice(0, -1)},${JSON.stringify(k)}:${JSON.stringify(value[k])}}`;
    }
    case 'number': {
      const m = [...text.matchAll(/":(-?\d+)(?=[,}\]])/g)];
      if (m.length === 0) return undefined;
      const hit = m[pick % m.length]!;
      const at = hit.index! + 2;
      const n = hit[1]!;
      const alt = [`${n}.0`, `${n}e0`, `${n}E+0`, n === '0' ? '-0' : `${n}.00`][pick % 4]!;
      return text.slice(0, at) + alt + text.slice(at + n.length);
    }
    case 'newline':
      return `${text}\r`;
  }
  return undefined;
}

describe('decodeLine detects rewritten evidence', () => {
  it('rejects every byte-level rewrite of a valid line that keeps its JSON value', () => {
    fc.assert(
      fc.property(anyRecordArb, rewrite, fc.nat(), (record, how, pick) => {
        const canonical = encodeRecord(record).slice(0, -1);
        // Decode the canonical line first so its nested objects' texts are remembered.
        expect(decodeLine(canonical)).toEqual(record);
        const text = apply(canonical, how, pick);
        fc.pre(text !== undefined && text !== canonical);
        // The rewrite kept the value (else it is not the case this test is about).
        expect(jcs(JSON.parse(text!))).toBe(canonical);
        let error: unknown;
        try {
          decodeLine(text!);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(NdjsonError);
        expect((error as NdjsonError).code).toBe('NOT_CANONICAL');
      }),
      { numRuns: 1500 },
    );
    // CPU-bound (1,500 records, each rewritten and decoded twice): room for a loaded CI machine.
  }, 120_000);
});
