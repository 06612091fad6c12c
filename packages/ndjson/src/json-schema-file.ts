import schema from '../schema/evidence-v1.schema.json' with { type: 'json' };

/**
 * The JSON Schema (draft 2020-12) of one schema v1 record, exactly as shipped
 * in `@stellaops/ndjson/schema.json`. Structural only: `validateRecord` also
 * enforces the rules listed in its `$comment`.
 */
export const EVIDENCE_JSON_SCHEMA: Readonly<Record<string, unknown>> = schema;
