import Ajv2020 from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { canonicalize as jcs } from 'json-canonicalize';
import { describe, expect, it, vi } from 'vitest';
import schema from '../schema/evidence-v1.schema.json' with { type: 'json' };
import { bytesField, bytesFromField } from '../src/bytes.js';
import { decodeLine } from '../src/decode.js';
import { encodeRecord, fastEncode, fastVerify } from '../src/encode.js';
import { NdjsonError } from '../src/errors.js';
import { RECORD_TYPES } from '../src/schema/v1.js';
import { validateRecord } from '../src/validate.js';
import { anyRecordArb, badValueArb, memberPaths, mutate, rawBytesArb, recordArb } from './arbitraries.js';

const RUNS = 200;
// CPU-bound generated runs: room for a loaded CI machine (they take seconds on a quiet one).
vi.setConfig({ testTimeout: 120_000 });

describe('encodeRecord on generated valid records', () => {
  for (const type of RECORD_TYPES) {
    it(`${type}: byte-identical to json-canonicalize, decodes back to the same record`, () => {
      fc.assert(
        fc.property(recordArb(type), (record) => {
          expect(validateRecord(record)).toEqual([]);
          const line = encodeRecord(record);
          expect(line).toBe(`${jcs(record)}\n`);
          expect(decodeLine(line)).toEqual(record);
          expect(decodeLine(Buffer.from(line, 'utf8'))).toEqual(record);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('takes the fast path for every record without a {"b64"} byte string', () => {
    fc.assert(
      fc.property(anyRecordArb, (record) => {
        const hasB64 = JSON.stringify(record).includes('"b64"');
        expect(fastEncode(record) !== undefined || hasB64).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("the decoder's in-place check agrees with the encoder: it accepts the canonical text and nothing else", () => {
    fc.assert(
      fc.property(anyRecordArb, fc.nat(), (record, cut) => {
        const text = jcs(record);
        expect(fastVerify(record, text)).toBe(fastEncode(record) !== undefined);
        const at = cut % text.length;
        expect(fastVerify(record, text.slice(0, at))).toBe(false);
        expect(fastVerify(record, `${text} `)).toBe(false);
        expect(
          fastVerify(record, text.slice(0, at) + (text[at] === 'x' ? 'y' : 'x') + text.slice(at + 1)),
        ).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('every generated record satisfies the shipped JSON Schema (ajv, draft 2020-12)', () => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
    const validate = ajv.compile(schema);
    fc.assert(
      fc.property(anyRecordArb, (record) => {
        if (!validate(record)) throw new Error(JSON.stringify(validate.errors?.slice(0, 3)));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('encodeRecord on corrupted records', () => {
  const corrupted = anyRecordArb.chain((record) => {
    const paths = memberPaths(record);
    return fc.tuple(
      fc.constant(record),
      fc.constantFrom(...paths),
      badValueArb,
      fc.boolean(),
      fc.constantFrom('pid', 'payload', 'b64', 'x'),
    );
  });

  it('accepts exactly what validateRecord accepts, and then writes json-canonicalize bytes', () => {
    fc.assert(
      fc.property(corrupted, ([record, path, bad, del, extraKey]) => {
        const value = mutate(record, path, bad, del) as Record<string, unknown>;
        if (extraKey === 'payload') value.payload = 'leak';
        const issues = validateRecord(value);
        const fast = fastEncode(value);
        if (fast !== undefined) expect(issues).toEqual([]);
        if (issues.length === 0 && fast !== undefined) expect(fastVerify(value, fast)).toBe(true);
        if (issues.length > 0) {
          let text: string | undefined;
          try {
            text = jcs(value);
          } catch {
            // NaN and friends have no JSON text to verify against.
          }
          if (text !== undefined) expect(fastVerify(value, text)).toBe(false);
        }
        let line: string | undefined;
        let error: unknown;
        try {
          line = encodeRecord(value as never);
        } catch (e) {
          error = e;
        }
        if (issues.length === 0) {
          expect(error).toBeUndefined();
          expect(line).toBe(`${jcs(value)}\n`);
        } else {
          expect(error).toBeInstanceOf(NdjsonError);
          expect(['SCHEMA', 'UNSUPPORTED_VALUE']).toContain((error as NdjsonError).code);
          expect((error as NdjsonError).path).toMatch(/^\$/);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('every rejected value is also rejected by decodeLine after a JSON round trip', () => {
    fc.assert(
      fc.property(corrupted, ([record, path, bad, del]) => {
        const value = mutate(record, path, bad, del);
        const text = JSON.stringify(value);
        if (validateRecord(value).length === 0) return;
        // NaN becomes null in JSON; still invalid (or invalid JSON-wise the same).
        expect(() => decodeLine(text)).toThrow(NdjsonError);
      }),
      { numRuns: 500 },
    );
  });
});

describe('byte strings', () => {
  it('round-trip any bytes losslessly through a record line', () => {
    fc.assert(
      fc.property(rawBytesArb(4096), recordArb('file_open'), (raw, record) => {
        const line = encodeRecord({ ...record, path: bytesField(raw) } as never);
        const back = decodeLine(line) as { path: Parameters<typeof bytesFromField>[0] };
        expect(Buffer.compare(bytesFromField(back.path), Buffer.from(raw))).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });
});
