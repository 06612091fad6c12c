import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { EVIDENCE_JSON_SCHEMA } from '../json-schema-file.js';
import { DOC_BEGIN, DOC_END, renderDocTables } from './docs.js';
import { buildJsonSchema } from './json-schema.js';
import { RECORD_SCHEMAS, RECORD_TYPES } from './v1.js';

const at = (p: string) => fileURLToPath(new URL(p, import.meta.url));

describe('files derived from the schema definition (run `npm run gen -w @stellaops/ndjson` to refresh)', () => {
  it('schema/evidence-v1.schema.json is the rendering of src/schema/v1.ts', () => {
    const file = JSON.parse(readFileSync(at('../../schema/evidence-v1.schema.json'), 'utf8'));
    expect(file).toEqual(buildJsonSchema());
    expect(EVIDENCE_JSON_SCHEMA).toEqual(file);
  });

  it('is a valid draft 2020-12 schema that ajv compiles in strict mode', () => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false });
    expect(() => ajv.compile(EVIDENCE_JSON_SCHEMA)).not.toThrow();
  });

  it('describes every record type and every member of each', () => {
    const defs = EVIDENCE_JSON_SCHEMA.$defs as Record<string, { properties: Record<string, unknown> }>;
    for (const type of RECORD_TYPES) {
      expect(Object.keys(defs[type]!.properties).sort()).toEqual(
        Object.keys(RECORD_SCHEMAS[type].fields).sort(),
      );
    }
  });

  it('docs/evidence-schema.md holds the current member tables', () => {
    const doc = readFileSync(at('../../../../docs/evidence-schema.md'), 'utf8');
    const begin = doc.indexOf(DOC_BEGIN);
    const end = doc.indexOf(DOC_END);
    expect(begin).toBeGreaterThanOrEqual(0);
    expect(doc.slice(begin, end + DOC_END.length)).toBe(renderDocTables());
    for (const type of RECORD_TYPES) expect(doc).toContain(`### ${type}`);
  });
});
