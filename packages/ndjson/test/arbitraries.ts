/**
 * fast-check generators of valid schema v1 records, derived from the schema
 * definition (so every record type and member is covered, including the
 * conditional rules), plus a generator of single-member corruptions.
 */
import fc from 'fast-check';
import { bytesField } from '../src/bytes.js';
import { formatIp } from '../src/ip.js';
import type { EvidenceRecord } from '../src/records.js';
import type { Field, FieldType, ObjectType, Rule } from '../src/schema/dsl.js';
import { RECORD_SCHEMAS, RECORD_TYPES, type RecordType } from '../src/schema/v1.js';
import { compareU64 } from '../src/validate.js';

const U64_MAX = (1n << 64n) - 1n;

/** u64 strings, biased to the edges. */
export const u64Arb = fc
  .oneof(
    fc.bigInt({ min: 0n, max: U64_MAX }),
    fc.constantFrom(0n, 1n, 9n, 10n, (1n << 53n) + 1n, U64_MAX - 1n, U64_MAX),
  )
  .map(String);

/** Strings over all of Unicode (incl. controls, astral) within a UTF-8 byte budget. */
function textArb(maxBytes: number, minBytes = 0): fc.Arbitrary<string> {
  const unit = fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('\n', '\t', '\u0000', '\u001f', '"', '\\', '\u2028', '\u007f', '😀', 'é'),
    },
  );
  return fc
    .array(unit, { maxLength: 6 })
    .map((parts) => {
      let s = parts.join('');
      while (Buffer.byteLength(s) > maxBytes) s = Array.from(s).slice(0, -1).join('');
      return s;
    })
    .filter((s) => Buffer.byteLength(s) >= minBytes);
}

/** Raw bytes for byte strings: valid UTF-8 text or arbitrary bytes (often not UTF-8). */
export function rawBytesArb(maxBytes: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    textArb(maxBytes).map((s) => Buffer.from(s, 'utf8') as Uint8Array),
    fc.uint8Array({ maxLength: Math.min(maxBytes, 48) }),
  );
}

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));

function patternArb(name: string): fc.Arbitrary<string> {
  switch (name) {
    case 'digest':
      return hex(64).map((h) => `sha256:${h}`);
    case 'hex64':
      return fc.bigInt({ min: 0n, max: U64_MAX }).map((b) => `0x${b.toString(16)}`);
    case 'build_id':
      return fc.integer({ min: 1, max: 64 }).chain((n) => hex(2 * n));
    case 'ipv4':
      return fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatIp);
    case 'ipv6':
      return fc
        .oneof(
          fc.uint8Array({ minLength: 16, maxLength: 16 }),
          // Zero runs, loopback and IPv4-mapped, which random bytes almost never hit.
          fc
            .tuple(fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff, 0xdb8), { minLength: 8, maxLength: 8 }))
            .map(([g]) => Uint8Array.from(g.flatMap((x) => [x >> 8, x & 0xff]))),
        )
        .map(formatIp);
    case 'ip':
      return fc.oneof(patternArb('ipv4'), patternArb('ipv6'));
    case 'attach_type':
      return fc.oneof(
        fc.constantFrom('tp_btf', 'raw_tp', 'tracepoint', 'uprobe', 'uretprobe', 'none'),
        fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/),
      );
    default:
      throw new Error(`no generator for pattern ${name}`);
  }
}

/** Values of one schema type. */
export function typeArb(t: FieldType): fc.Arbitrary<unknown> {
  switch (t.kind) {
    case 'int':
      return fc.oneof(fc.integer({ min: t.min, max: t.max }), fc.constantFrom(t.min, t.max));
    case 'u64':
      return u64Arb;
    case 'string':
      return textArb(t.maxBytes, t.minBytes);
    case 'bytes':
      return rawBytesArb(t.maxBytes).map(bytesField);
    case 'bool':
      return fc.boolean();
    case 'const':
      return fc.constant(t.value);
    case 'enum':
      return fc.constantFrom(...t.values);
    case 'pattern':
      return patternArb(t.name);
    case 'object':
      return objectArb(t);
    case 'array': {
      const max = Math.min(t.maxItems, 4);
      if (t.sortedBy !== undefined) {
        const key = t.sortedBy;
        return fc
          .uniqueArray(typeArb(t.items) as fc.Arbitrary<Record<string, string>>, {
            minLength: t.minItems,
            maxLength: max,
            selector: (o) => o[key],
          })
          .map((a) => a.sort((x, y) => (x[key]! < y[key]! ? -1 : 1)));
      }
      return fc.array(typeArb(t.items), { minLength: t.minItems, maxLength: max });
    }
  }
}

function membersArb(fields: Record<string, Field>, rules: readonly Rule[], when: string | undefined) {
  const types: Record<string, FieldType> = {};
  const optional = new Set<string>();
  for (const [k, f] of Object.entries(fields)) {
    types[k] = f.type;
    if (f.optional) optional.add(k);
  }
  for (const rule of rules) {
    if (when === undefined || !rule.when.in.includes(when)) continue;
    for (const k of rule.require ?? []) optional.delete(k);
    for (const k of rule.forbid ?? []) delete types[k];
    for (const [k, n] of Object.entries(rule.narrow ?? {})) if (types[k]) types[k] = n;
  }
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, t] of Object.entries(types)) {
    const field =
      rules.length > 0 && rules[0]!.when.field === k && when !== undefined ? fc.constant(when) : typeArb(t);
    model[k] = field;
  }
  const requiredKeys = Object.keys(types).filter((k) => !optional.has(k));
  return fc.record(model, { requiredKeys });
}

function objectArb(t: ObjectType): fc.Arbitrary<Record<string, unknown>> {
  let arb: fc.Arbitrary<Record<string, unknown>>;
  const whenField = t.rules[0]?.when.field;
  if (whenField === undefined) {
    arb = membersArb(t.fields, [], undefined);
  } else {
    const whenType = t.fields[whenField]!.type;
    if (whenType.kind !== 'enum') throw new Error(`rule field ${whenField} is not an enum`);
    arb = fc.constantFrom(...whenType.values).chain((v) => membersArb(t.fields, t.rules, v));
  }
  if (t.u64Order.length === 0) return arb;
  return arb.map((o) => {
    const out = { ...o };
    for (const [a, b] of t.u64Order) {
      if (compareU64(out[a] as string, out[b] as string) > 0) [out[a], out[b]] = [out[b], out[a]];
    }
    return out;
  });
}

/** Valid records of one type. */
export function recordArb(type: RecordType): fc.Arbitrary<EvidenceRecord> {
  return objectArb(RECORD_SCHEMAS[type]) as fc.Arbitrary<EvidenceRecord>;
}

/** Valid records of every type. */
export const anyRecordArb: fc.Arbitrary<EvidenceRecord> = fc.oneof(...RECORD_TYPES.map(recordArb));

/** Values that are wrong for most members. */
export const badValueArb: fc.Arbitrary<unknown> = fc.constantFrom(
  -1,
  1.5,
  2 ** 32,
  2 ** 53,
  Number.NaN,
  '',
  'x',
  '01',
  '18446744073709551616',
  null,
  true,
  {},
  [],
  { b64: '' },
  { b64: 'YQ==' },
  'sha256:ABC',
  '0x00',
  '::ffff:0:0',
  '\ud800',
  'SYN_SENT',
  'inet6',
  'a'.repeat(300),
);

/** Every JSON path (as key lists) of members in a record. */
export function memberPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([...prefix, i], ...memberPaths(v, [...prefix, i]));
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out.push([...prefix, k], ...memberPaths(v, [...prefix, k]));
  }
  return out;
}

/** A deep copy of `record` with the member at `path` set to `value` (or deleted when value is undefined). */
export function mutate(record: unknown, path: (string | number)[], value: unknown, del: boolean): unknown {
  const copy = structuredClone(record) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (del && !Array.isArray(node)) delete node[last];
  else node[last] = value;
  return copy;
}
