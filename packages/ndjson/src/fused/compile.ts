import { canonicalize } from '../canonical.js';
import { schemaError } from '../errors.js';
import type { FieldType, ObjectType } from '../schema/dsl.js';
import { RECORD_SCHEMAS, type RecordType } from '../schema/v1.js';
import { validateAgainst } from '../validate.js';
import { addU64, writeInt, writeU64 } from './u64.js';

/**
 * Fused encoders: RFC 8785 bytes of one record type written straight from a
 * binary source (a kernel ring record) into a caller's buffer, with no
 * intermediate record object and no per-record allocation.
 *
 * The member names, their canonical order, the constants and every check
 * come from schema v1 (the one source, like the validator and the fast
 * encoders of encode.ts); the caller's plan says only where each member's
 * value is in the source, as JavaScript expressions over the source buffer
 * `d`, the record's start `s` and an environment `e` (written by the
 * package that owns the binary layout, from its layout tables).
 *
 * Valid by construction, checked where it cannot be:
 * - at compile time: every required member has a source and no source names
 *   an unknown member; an integer source's range lies inside the member's
 *   range; every name an enum source can produce is one of the member's
 *   values; strings, digests and objects only come as fragments; object
 *   types with conditional rules are refused;
 * - fragments (host id, container) are validated once, when made
 *   ({@link FusedEncoder.fragment});
 * - per record, what depends on the data: a byte string must be printable
 *   ASCII (no byte needing a JSON escape, nothing a `{"b64"}` form or a UTF-8
 *   check would apply to) and within its member's byte limit, an enum index
 *   must name a value, a u64 sum must fit 64 bits. Anything else makes the
 *   encoder return -1, and the caller takes the generic path (record
 *   object, full validation in encodeRecord) for that record.
 */

/** Where one member's value comes from (JavaScript expressions over `d`, `s`, `e`). */
export type FusedSource =
  /** An integer the expression yields, known to lie in `range` (e.g. a readUInt32LE). */
  | { readonly kind: 'int'; readonly expr: string; readonly range: readonly [number, number] }
  /** A u64 from two u32 halves. */
  | { readonly kind: 'u64'; readonly hi: string; readonly lo: string }
  /** The u64 sum of two, from halves: -1 (generic path) when it overflows 64 bits. */
  | {
      readonly kind: 'u64sum';
      readonly a: { readonly hi: string; readonly lo: string };
      readonly b: { readonly hi: string; readonly lo: string };
    }
  /** Raw bytes d[start, end) of a `bytes` member. */
  | { readonly kind: 'bytes'; readonly start: string; readonly end: string }
  /** A name from `names` by index (empty names and out-of-range indexes: generic path). */
  | { readonly kind: 'enum'; readonly names: readonly string[]; readonly index: string }
  | { readonly kind: 'bool'; readonly expr: string }
  /**
   * Canonical JSON text of the member's value made by {@link FusedEncoder.fragment}
   * (validated then), or undefined for an absent optional member.
   */
  | { readonly kind: 'fragment'; readonly expr: string };

/** The plan of one record type: a source for each member it writes; members left out are absent. */
export interface FusedPlan {
  /** Statements run first (declare locals the sources use), over `d`, `s`, `e`. */
  readonly prelude?: string;
  readonly members: Readonly<Record<string, FusedSource>>;
}

/** A compiled fused encoder of one record type. */
export interface FusedEncoder<E> {
  readonly type: RecordType;
  /**
   * Write the record's canonical line (with its "\n") into `out` from `p`;
   * returns the position after it, or -1 when this record needs the generic
   * path (nothing meaningful is then written past `p`). `out` must have
   * {@link room} bytes free from `p`, fragments included.
   */
  write(d: Buffer, s: number, e: E, out: Buffer, p: number): number;
  /** Bytes a line can take at most, fragments not included. */
  readonly room: number;
  /**
   * The canonical JSON text of `value` as member `member` of this record
   * type, for a fragment source. Throws NdjsonError SCHEMA when the value is
   * not valid there.
   */
  fragment(member: string, value: unknown): Buffer;
}

/** Longest decimal text of each source kind. */
const DIGITS = { int: 11, u64: 20 } as const;

function fail(type: string, member: string, why: string): never {
  throw new Error(`fused encoder of ${type}: member ${member}: ${why}`);
}

/** JavaScript statements writing the ASCII text `lit` at `p` in `out`. */
function literal(lit: string): string {
  const out: string[] = [];
  for (let i = 0; i < lit.length; i++) {
    const c = lit.charCodeAt(i);
    if (c > 0x7e) throw new Error(`fused literal ${JSON.stringify(lit)} is not ASCII`);
    out.push(`out[p + ${i}] = ${c};`);
  }
  out.push(`p += ${lit.length};`);
  return out.join(' ');
}

/**
 * Compile a fused encoder of record type `type` from schema v1 and `plan`.
 * Throws (at start-up, never per record) when the plan cannot produce only
 * valid records of the type.
 */
export function compileFused<E>(type: RecordType, plan: FusedPlan): FusedEncoder<E> {
  const schema = RECORD_SCHEMAS[type] as ObjectType;
  if (schema.rules.length > 0 || schema.u64Order.length > 0) {
    throw new Error(`fused encoder of ${type}: types with conditional rules are not fused`);
  }
  for (const name of Object.keys(plan.members)) {
    if (!(name in schema.fields)) fail(type, name, 'not a member of the schema');
  }
  const body: string[] = [plan.prelude ?? '', `let v = 0; let x = 0;`];
  let room = 2; // "{", "}" and "\n", less the first member's ","
  let first = true;
  // RFC 8785 member order: UTF-16 code units, which is what Array.prototype.sort does.
  for (const name of Object.keys(schema.fields).sort()) {
    const field = schema.fields[name]!;
    const src = plan.members[name];
    const t: FieldType = field.type;
    const head = `${first ? '{' : ','}${JSON.stringify(name)}:`;
    if (t.kind === 'const') {
      if (src !== undefined) fail(type, name, 'a constant comes from the schema, not a source');
      body.push(literal(`${head}${JSON.stringify(t.value)}`));
      room += head.length + JSON.stringify(t.value).length;
      first = false;
      continue;
    }
    if (src === undefined) {
      if (!field.optional) fail(type, name, 'required, but the plan has no source');
      continue; // always absent on the fused path
    }
    if (src.kind === 'fragment') {
      if (!field.optional) {
        body.push(`x = ${src.expr};`, `if (x === undefined) return -1;`);
      } else {
        body.push(`x = ${src.expr};`, 'if (x !== undefined) {');
      }
      body.push(literal(head), 'out.set(x, p); p += x.length;');
      if (field.optional) body.push('}');
      room += head.length;
      first = false;
      continue;
    }
    if (field.optional) fail(type, name, 'optional members are fused only as fragments');
    body.push(literal(head));
    room += head.length;
    first = false;
    switch (src.kind) {
      case 'int': {
        if (t.kind !== 'int') fail(type, name, `an int source for a ${t.kind} member`);
        if (src.range[0] < t.min || src.range[1] > t.max) {
          fail(type, name, `source range [${src.range}] is not inside the schema's [${t.min}, ${t.max}]`);
        }
        body.push(`p = h.int(out, p, ${src.expr});`);
        room += DIGITS.int;
        break;
      }
      case 'u64':
        if (t.kind !== 'u64') fail(type, name, `a u64 source for a ${t.kind} member`);
        body.push(`out[p++] = 34; p = h.u64(out, p, ${src.hi}, ${src.lo}); out[p++] = 34;`);
        room += DIGITS.u64 + 2;
        break;
      case 'u64sum':
        if (t.kind !== 'u64') fail(type, name, `a u64 source for a ${t.kind} member`);
        body.push(
          `if (!h.add(${src.a.hi}, ${src.a.lo}, ${src.b.hi}, ${src.b.lo}, h.sum)) return -1;`,
          `out[p++] = 34; p = h.u64(out, p, h.sum[0], h.sum[1]); out[p++] = 34;`,
        );
        room += DIGITS.u64 + 2;
        break;
      case 'bytes':
        if (t.kind !== 'bytes') fail(type, name, `a bytes source for a ${t.kind} member`);
        // Printable ASCII only: the JSON string is then the bytes themselves.
        body.push(
          `v = ${src.start}; x = ${src.end};`,
          `if (x - v > ${t.maxBytes}) return -1;`,
          'out[p++] = 34;',
          'for (; v < x; v++) { const c = d[v]; if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1; out[p++] = c; }',
          'out[p++] = 34;',
        );
        room += t.maxBytes + 2;
        break;
      case 'enum': {
        if (t.kind !== 'enum') fail(type, name, `an enum source for a ${t.kind} member`);
        const allowed = new Set(t.values);
        for (const n of src.names) {
          if (n !== '' && !allowed.has(n)) {
            fail(type, name, `source name ${JSON.stringify(n)} is not one of the schema's`);
          }
        }
        // One unrolled literal per name: no copy call for a few bytes.
        const cases = src.names
          .map((n, i) => (n === '' ? '' : `case ${i}: ${literal(JSON.stringify(n))} break;`))
          .join('\n');
        body.push(`switch (${src.index}) {\n${cases}\ndefault: return -1;\n}`);
        room += Math.max(0, ...src.names.map((n) => JSON.stringify(n).length));
        break;
      }
      case 'bool':
        if (t.kind !== 'bool') fail(type, name, `a bool source for a ${t.kind} member`);
        body.push(`if (${src.expr}) { ${literal('true')} } else { ${literal('false')} }`.replace(/\n/g, ' '));
        room += 5;
        break;
    }
  }
  body.push(literal('}\n'), 'return p;');
  const h = { int: writeInt, u64: writeU64, add: addU64, sum: new Uint32Array(2) };
  // The source is built from the schema and the caller's plan (code, never input).
  const write = new Function(
    'h',
    `'use strict'; return function fused_${type}(d, s, e, out, p) {\n${body.join('\n')}\n};`,
  )(h) as FusedEncoder<E>['write'];
  return {
    type,
    write,
    room,
    fragment(member: string, value: unknown): Buffer {
      const field = schema.fields[member];
      if (field === undefined) throw new Error(`fused encoder of ${type}: no member ${member}`);
      const issues = validateAgainst(value, field.type, `$.${member}`);
      if (issues.length > 0) throw schemaError(issues);
      return Buffer.from(canonicalize(value), 'utf8');
    },
  };
}
