/**
 * Renders the member tables of docs/evidence-schema.md from the schema
 * definition. The doc holds them between GENERATED markers; a test fails
 * when they differ from this rendering.
 */
import type { Fields, FieldType, ObjectType } from './dsl.js';
import { ENVELOPE_FIELDS, PROCESS_FIELDS, RECORD_SCHEMAS, RECORD_TYPES } from './v1.js';

export const DOC_BEGIN = '<!-- BEGIN GENERATED: member tables (npm run gen -w @stellaops/ndjson) -->';
export const DOC_END = '<!-- END GENERATED -->';

function typeText(t: FieldType): string {
  switch (t.kind) {
    case 'int':
      return `integer ${t.label} [${t.min}, ${t.max}]`;
    case 'u64':
      return 'u64 string';
    case 'string':
      return `text (${t.minBytes}..${t.maxBytes} bytes)`;
    case 'bytes':
      return `bytes (≤ ${t.maxBytes})`;
    case 'bool':
      return 'boolean';
    case 'const':
      return `\`${JSON.stringify(t.value)}\``;
    case 'enum':
      return t.values.map((v) => `\`${v}\``).join(' \\| ');
    case 'pattern':
      return t.name;
    case 'object':
      return `[${t.name}](#${t.name})`;
    case 'array':
      return `array (${t.minItems}..${t.maxItems}) of ${typeText(t.items)}`;
  }
}

function table(fields: Fields, skip: ReadonlySet<string> = new Set()): string {
  const rows = ['| member | type | required | meaning |', '| --- | --- | --- | --- |'];
  for (const [key, f] of Object.entries(fields)) {
    if (skip.has(key)) continue;
    rows.push(
      `| \`${key}\` | ${typeText(f.type)} | ${f.optional ? 'no' : 'yes'} | ${f.doc.replace(/\|/g, '\\|')} |`,
    );
  }
  return rows.join('\n');
}

function rulesText(t: ObjectType): string {
  const lines: string[] = [];
  for (const r of t.rules) {
    const parts: string[] = [];
    if (r.require?.length) parts.push(`${r.require.map((k) => `\`${k}\``).join(', ')} required`);
    if (r.forbid?.length) parts.push(`${r.forbid.map((k) => `\`${k}\``).join(', ')} absent`);
    for (const [k, n] of Object.entries(r.narrow ?? {})) parts.push(`\`${k}\` is ${typeText(n)}`);
    lines.push(
      `- when \`${r.when.field}\` is ${r.when.in.map((v) => `\`${v}\``).join(' or ')}: ${parts.join('; ')}`,
    );
  }
  for (const [a, b] of t.u64Order) lines.push(`- \`${a}\` ≤ \`${b}\``);
  return lines.length > 0 ? `\n\nRules:\n\n${lines.join('\n')}` : '';
}

function collectObjects(t: FieldType, out: Map<string, ObjectType>): void {
  if (t.kind === 'array') collectObjects(t.items, out);
  if (t.kind !== 'object') return;
  if (!out.has(t.name)) out.set(t.name, t);
  for (const f of Object.values(t.fields)) collectObjects(f.type, out);
}

/** The generated part of docs/evidence-schema.md, markers included. */
export function renderDocTables(): string {
  const common = new Set([...Object.keys(ENVELOPE_FIELDS), 'type', ...Object.keys(PROCESS_FIELDS)]);
  const parts: string[] = [DOC_BEGIN, ''];
  parts.push('### Envelope (every record)', '', table({ ...ENVELOPE_FIELDS }), '');
  parts.push('`type` is the record type (a string constant per record).', '');
  parts.push('### Process members (every record but collector_status)', '', table({ ...PROCESS_FIELDS }), '');
  const nested = new Map<string, ObjectType>();
  for (const type of RECORD_TYPES) {
    const t = RECORD_SCHEMAS[type];
    parts.push(`### ${type}`, '', table(t.fields, common) + rulesText(t), '');
    for (const f of Object.values(t.fields)) collectObjects(f.type, nested);
  }
  for (const [name, t] of [...nested].sort(([a], [b]) => (a < b ? -1 : 1))) {
    parts.push(`### ${name}`, '', table(t.fields) + rulesText(t), '');
  }
  parts.push(DOC_END);
  return parts.join('\n');
}
