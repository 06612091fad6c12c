import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import { canonicalize as jcs } from 'json-canonicalize';
import { describe, expect, it } from 'vitest';
import schema from '../schema/evidence-v1.schema.json' with { type: 'json' };
import { decodeLine, decodeStream } from '../src/decode.js';
import { encodeRecord } from '../src/encode.js';
import { NdjsonError } from '../src/errors.js';
import { RECORD_TYPES } from '../src/schema/v1.js';
import { renderVectorFiles } from './golden-cases.js';

const vectorsDir = fileURLToPath(new URL('./vectors/', import.meta.url));
const read = (name: string) => readFileSync(`${vectorsDir}${name}`, 'utf8');

interface Vector {
  name: string;
  record: Record<string, unknown>;
  canonical: string;
  canonical_base64: string;
  sha256: string;
}
interface InvalidVector {
  name: string;
  line_base64: string;
  expected_code: string;
  expected_path?: string;
}

const valid = JSON.parse(read('evidence-v1.vectors.json')).vectors as Vector[];
const invalid = JSON.parse(read('evidence-v1.invalid.json')).vectors as InvalidVector[];
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('golden vectors (test/vectors)', () => {
  it('are exactly what the cases render to (run `npm run gen -w @stellaops/ndjson` after a deliberate change)', () => {
    for (const [name, text] of Object.entries(renderVectorFiles())) {
      expect(read(name), name).toBe(text);
    }
  });

  it('cover every record type, non-UTF-8 bytes, unicode and u64 maximum', () => {
    const types = new Set(valid.map((v) => v.record.type));
    expect([...types].sort()).toEqual([...RECORD_TYPES].sort());
    const all = valid.map((v) => v.canonical).join('');
    expect(all).toContain('"b64"');
    expect(all).toContain('😀');
    expect(all).toContain('\\n');
    expect(all).toContain('"18446744073709551615"');
  });

  for (const v of valid) {
    it(`${v.name}: canonical bytes, sha256, json-canonicalize and decode agree`, () => {
      const bytes = Buffer.from(v.canonical_base64, 'base64');
      expect(bytes.toString('utf8')).toBe(v.canonical);
      expect(sha256(bytes)).toBe(v.sha256);
      expect(v.canonical).toBe(`${jcs(v.record)}\n`);
      expect(encodeRecord(v.record as never)).toBe(v.canonical);
      expect(decodeLine(bytes)).toEqual(v.record);
    });
  }

  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  const validateSchema = ajv.compile(schema);
  // Rules the JSON Schema cannot express (see VALIDATOR_ONLY_RULES).
  const validatorOnly = new Set([
    'u64_overflow',
    'b64_of_utf8',
    'lone_surrogate',
    'ipv6_not_rfc5952',
    'probes_unsorted',
  ]);

  for (const v of invalid) {
    it(`${v.name}: rejected with ${v.expected_code}${v.expected_path ? ` at ${v.expected_path}` : ''}`, () => {
      const line = Buffer.from(v.line_base64, 'base64');
      let error: unknown;
      try {
        decodeLine(line, { lineNumber: 7, byteOffset: 1234 });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(NdjsonError);
      const e = error as NdjsonError;
      expect(e.code).toBe(v.expected_code);
      expect(e.lineNumber).toBe(7);
      expect(e.byteOffset).toBe(1234);
      expect(e.message).toContain('line 7, byte offset 1234');
      if (v.expected_path) expect(e.path).toBe(v.expected_path);
      if (v.expected_code === 'SCHEMA') {
        const parsed = JSON.parse(line.toString('utf8'));
        expect(validateSchema(parsed)).toBe(validatorOnly.has(v.name));
      }
    });
  }

  it('the stream vector decodes as one stream and matches its sha256 file', async () => {
    const bytes = readFileSync(`${vectorsDir}evidence-v1.stream.ndjson`);
    expect(read('evidence-v1.stream.ndjson.sha256')).toBe(`${sha256(bytes)}  evidence-v1.stream.ndjson\n`);
    const results = [];
    for await (const r of decodeStream(
      createReadStream(`${vectorsDir}evidence-v1.stream.ndjson`, { highWaterMark: 97 }),
    )) {
      results.push(r);
    }
    expect(results).toHaveLength(valid.length);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(results.map((r) => (r.ok ? r.record.seq : '')).join(',')).toBe(
      valid.map((_, i) => i + 1).join(','),
    );
  });
});
