/**
 * Renders the schema definition as a JSON Schema (draft 2020-12) document.
 * The package ships the rendered file (schema/evidence-v1.schema.json); a
 * test fails when the file and this rendering differ.
 */
import type { FieldType, ObjectType, PatternType } from './dsl.js';
import { RECORD_SCHEMAS, RECORD_TYPES, VALIDATOR_ONLY_RULES } from './v1.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const B64_PATTERN = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

class Renderer {
  readonly defs: Record<string, JsonObject> = {
    u64: {
      description:
        'Unsigned 64-bit integer as a decimal string without leading zeros, at most 18446744073709551615.',
      type: 'string',
      pattern: '^(?:0|[1-9][0-9]{0,19})$',
    },
    b64: {
      description:
        'Kernel bytes that are not valid UTF-8, as standard padded base64. Valid UTF-8 is always a plain string instead.',
      type: 'object',
      properties: { b64: { type: 'string', minLength: 4, pattern: B64_PATTERN } },
      required: ['b64'],
      additionalProperties: false,
    },
  };

  private pattern(t: PatternType): Json {
    if (!this.defs[t.name]) {
      this.defs[t.name] = { description: `${t.expected}.`, type: 'string', pattern: t.pattern.source };
    }
    return { $ref: `#/$defs/${t.name}` };
  }

  type(t: FieldType): JsonObject {
    switch (t.kind) {
      case 'int':
        return { type: 'integer', minimum: t.min, maximum: t.max };
      case 'u64':
        return { $ref: '#/$defs/u64' };
      case 'string':
        return {
          type: 'string',
          ...(t.minBytes > 0 ? { minLength: t.minBytes } : {}),
          maxLength: t.maxBytes,
        };
      case 'bytes':
        return { anyOf: [{ type: 'string', maxLength: t.maxBytes }, { $ref: '#/$defs/b64' }] };
      case 'bool':
        return { type: 'boolean' };
      case 'const':
        return { const: t.value };
      case 'enum':
        return { type: 'string', enum: [...t.values] };
      case 'pattern':
        return this.pattern(t) as JsonObject;
      case 'object':
        this.object(t);
        return { $ref: `#/$defs/${t.name}` };
      case 'array':
        return {
          type: 'array',
          items: this.type(t.items),
          ...(t.minItems > 0 ? { minItems: t.minItems } : {}),
          maxItems: t.maxItems,
        };
    }
  }

  object(t: ObjectType, description?: string): void {
    if (this.defs[t.name]) return;
    const properties: JsonObject = {};
    const required: string[] = [];
    this.defs[t.name] = {}; // reserve the name (and its position) before members recurse
    for (const [key, field] of Object.entries(t.fields)) {
      properties[key] = { description: field.doc, ...this.type(field.type) };
      if (!field.optional) required.push(key);
    }
    const def: JsonObject = {
      ...(description ? { description } : {}),
      type: 'object',
      properties,
      required,
      additionalProperties: false,
    };
    if (t.rules.length > 0) {
      def.allOf = t.rules.map((rule) => {
        const then: JsonObject = {};
        if (rule.require?.length) then.required = [...rule.require];
        const props: JsonObject = {};
        for (const f of rule.forbid ?? []) props[f] = false;
        for (const [f, narrowed] of Object.entries(rule.narrow ?? {})) props[f] = this.type(narrowed);
        if (Object.keys(props).length > 0) then.properties = props;
        return {
          if: { properties: { [rule.when.field]: { enum: [...rule.when.in] } }, required: [rule.when.field] },
          then,
        };
      });
    }
    this.defs[t.name] = def;
  }
}

/** The JSON Schema (2020-12) of one schema v1 evidence record (one NDJSON line). */
export function buildJsonSchema(): JsonObject {
  const r = new Renderer();
  for (const type of RECORD_TYPES) {
    r.object(RECORD_SCHEMAS[type], `A "${type}" evidence record.`);
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://schemas.stellaops.org/evidence/v1/evidence-record.schema.json',
    title: 'StellaOps runtime evidence record, schema v1',
    description:
      'One line of a StellaOps evidence stream: a JSON object in RFC 8785 canonical form followed by "\\n". Generated from packages/ndjson/src/schema/v1.ts; do not edit.',
    $comment: `Rules this schema cannot express, enforced by @stellaops/ndjson validateRecord: ${VALIDATOR_ONLY_RULES.join('; ')}.`,
    type: 'object',
    required: ['schema_version', 'type'],
    properties: { schema_version: { const: 1 }, type: { enum: [...RECORD_TYPES] } },
    oneOf: RECORD_TYPES.map((t) => ({ $ref: `#/$defs/${t}` })),
    $defs: r.defs,
  };
}

/** The JSON Schema as the text of the shipped file. */
export function renderJsonSchema(): string {
  return `${JSON.stringify(buildJsonSchema(), null, 2)}\n`;
}
