import { canonicalize as jcs } from 'json-canonicalize';
import { fitsUtf8 } from './bytes.js';
import { assertSupported } from './canonical.js';
import { schemaError } from './errors.js';
import type { EvidenceRecord } from './records.js';
import type { FieldType, ObjectType } from './schema/dsl.js';
import { RECORD_SCHEMAS } from './schema/v1.js';
import { isWellFormed } from './text.js';
import { compareU64, isU64, validateRecord } from './validate.js';

/**
 * Fast, per-record-type encoders compiled from the schema.
 *
 * For each record type the schema is turned into one straight-line function
 * that checks every member exactly as `validateRecord` does and appends its
 * canonical text in RFC 8785 member order. Anything it does not handle
 * (a `{b64}` byte string, a member it does not know, a value of the wrong
 * type) makes it return undefined, and `encodeRecord` takes the slow path:
 * full validation with precise errors, then json-canonicalize. Property tests
 * hold the two paths byte-identical, and "fast path accepted" equivalent to
 * "validator accepted".
 */

type Encoder = (o: unknown) => string | undefined;

/** JSON text of a string as RFC 8785 writes it, or undefined for a lone surrogate. */
function quote(v: string): string | undefined {
  // A plain loop beats a regular expression on the short strings records hold.
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) {
      return isWellFormed(v) ? JSON.stringify(v) : undefined;
    }
  }
  return `"${v}"`;
}

/** Helpers the generated code reaches through `h`. */
interface Helpers {
  OP: object;
  getProto: (o: object) => object | null;
  isArray: (v: unknown) => v is unknown[];
  isInt: (v: number) => boolean;
  isU64: (s: string) => boolean;
  cmpU64: (a: string, b: string) => number;
  fits: (s: string, max: number) => boolean;
  quote: (s: string) => string | undefined;
  sets: ReadonlySet<string>[];
  res: RegExp[];
  checks: ((s: string) => boolean)[];
  fns: Encoder[];
  memos: WeakMap<object, string>[];
  isFrozen: (o: object) => boolean;
  deepFrozen: (o: object) => boolean;
}

/** True when `o` and every object or array inside it is frozen. */
function deepFrozen(o: object): boolean {
  if (!Object.isFrozen(o)) return false;
  for (const v of Object.values(o)) {
    if (v !== null && typeof v === 'object' && !deepFrozen(v)) return false;
  }
  return true;
}

class Compiler {
  readonly h: Helpers = {
    OP: Object.prototype,
    getProto: Object.getPrototypeOf,
    isArray: Array.isArray,
    isInt: Number.isInteger,
    isU64,
    cmpU64: compareU64,
    fits: fitsUtf8,
    quote,
    sets: [],
    res: [],
    checks: [],
    fns: [],
    memos: [],
    isFrozen: Object.isFrozen,
    deepFrozen,
  };
  private readonly objectIds = new Map<ObjectType, number>();
  private readonly sources: string[] = [];
  private readonly epilogue = new Map<number, string>();
  private nextVar = 0;

  private fresh(prefix: string): string {
    return `${prefix}${this.nextVar++}`;
  }

  private set(values: readonly string[]): string {
    this.h.sets.push(new Set(values));
    return `h.sets[${this.h.sets.length - 1}]`;
  }

  /** Statements that check `v` against `t` (returning undefined on failure) and set `out` to its JSON text. */
  private value(t: FieldType, v: string, out: string): string {
    switch (t.kind) {
      case 'int':
        return `if (typeof ${v} !== 'number' || !h.isInt(${v}) || ${v} < ${t.min} || ${v} > ${t.max}) return undefined;
${out} = '' + ${v};`;
      case 'u64':
        return `if (typeof ${v} !== 'string' || !h.isU64(${v})) return undefined;
${out} = '"' + ${v} + '"';`;
      case 'string':
      case 'bytes': {
        const min = t.kind === 'string' && t.minBytes > 0 ? ` || ${v}.length === 0` : '';
        return `if (typeof ${v} !== 'string'${min} || !h.fits(${v}, ${t.maxBytes})) return undefined;
${out} = h.quote(${v});
if (${out} === undefined) return undefined;`;
      }
      case 'bool':
        return `if (${v} === true) ${out} = 'true'; else if (${v} === false) ${out} = 'false'; else return undefined;`;
      case 'const':
        return `if (${v} !== ${JSON.stringify(t.value)}) return undefined;
${out} = ${JSON.stringify(JSON.stringify(t.value))};`;
      case 'enum':
        return `if (typeof ${v} !== 'string' || !${this.set(t.values)}.has(${v})) return undefined;
${out} = '"' + ${v} + '"';`;
      case 'pattern': {
        if (t.fast) {
          this.h.checks.push(t.fast);
          return `if (typeof ${v} !== 'string' || !h.checks[${this.h.checks.length - 1}](${v})) return undefined;
${out} = '"' + ${v} + '"';`;
        }
        this.h.res.push(t.pattern);
        const re = `h.res[${this.h.res.length - 1}]`;
        let check = '';
        if (t.check) {
          this.h.checks.push(t.check);
          check = ` || !h.checks[${this.h.checks.length - 1}](${v})`;
        }
        return `if (typeof ${v} !== 'string' || !${re}.test(${v})${check}) return undefined;
${out} = '"' + ${v} + '"';`;
      }
      case 'object':
        return `${out} = h.fns[${this.object(t)}](${v});
if (${out} === undefined) return undefined;`;
      case 'array': {
        const i = this.fresh('i');
        const e = this.fresh('e');
        const x = this.fresh('x');
        let order = '';
        if (t.sortedBy !== undefined) {
          const k = JSON.stringify(t.sortedBy);
          order = `if (${i} > 0 && !(${v}[${i} - 1][${k}] < ${e}[${k}])) return undefined;`;
        }
        return `if (!h.isArray(${v}) || ${v}.length < ${t.minItems} || ${v}.length > ${t.maxItems}) return undefined;
${out} = '[';
for (let ${i} = 0; ${i} < ${v}.length; ${i}++) {
  const ${e} = ${v}[${i}];
  let ${x};
  ${this.value(t.items, e, x)}
  ${order}
  ${out} += (${i} === 0 ? '' : ',') + ${x};
}
${out} += ']';`;
      }
    }
  }

  /**
   * Compile an object type to `h.fns[id]`; returns the id. Nested object
   * types (container, k8s, connection…) remember the text of deeply frozen
   * objects: the enricher attaches one frozen container object to every
   * record of a cgroup, and a frozen object cannot change, so it is checked
   * and encoded once.
   */
  object(t: ObjectType, memoize = true): number {
    const known = this.objectIds.get(t);
    if (known !== undefined) return known;
    const id = this.h.fns.length;
    this.objectIds.set(t, id);
    this.h.fns.push(() => undefined); // placeholder until linked
    const body: string[] = [
      `if (o === null || typeof o !== 'object') return undefined;`,
      `const p = h.getProto(o); if (p !== h.OP && p !== null) return undefined;`,
      `let n = 0; let s = ''; let v; let x;`,
    ];
    if (memoize) {
      this.h.memos.push(new WeakMap());
      const memo = `h.memos[${this.h.memos.length - 1}]`;
      body.splice(
        2,
        0,
        `const frozen = h.isFrozen(o); if (frozen) { const c = ${memo}.get(o); if (c !== undefined) return c; }`,
      );
      this.epilogue.set(
        id,
        `const text = '{' + s.slice(1) + '}'; if (frozen && h.deepFrozen(o)) ${memo}.set(o, text); return text;`,
      );
    }
    // RFC 8785 member order: UTF-16 code units, which is what Array.prototype.sort does.
    for (const key of Object.keys(t.fields).sort()) {
      const field = t.fields[key]!;
      const k = JSON.stringify(key);
      const prefix = JSON.stringify(`,${JSON.stringify(key)}:`);
      const encode = `${this.value(field.type, 'v', 'x')}
n++; s += ${prefix} + x;`;
      body.push(
        `v = o[${k}];`,
        field.optional
          ? `if (v !== undefined) {\n${encode}\n}`
          : `if (v === undefined) return undefined;\n${encode}`,
      );
    }
    body.push(`let k = 0; for (const _ in o) k++; if (k !== n) return undefined;`);
    for (const rule of t.rules) {
      const cond: string[] = [];
      for (const r of rule.require ?? [])
        cond.push(`if (o[${JSON.stringify(r)}] === undefined) return undefined;`);
      for (const f of rule.forbid ?? [])
        cond.push(`if (o[${JSON.stringify(f)}] !== undefined) return undefined;`);
      for (const [f, narrowed] of Object.entries(rule.narrow ?? {})) {
        cond.push(
          `v = o[${JSON.stringify(f)}];\nif (v !== undefined) {\n${this.value(narrowed, 'v', 'x')}\n}`,
        );
      }
      body.push(
        `if (${this.set(rule.when.in)}.has(o[${JSON.stringify(rule.when.field)}])) {\n${cond.join('\n')}\n}`,
      );
    }
    for (const [a, b] of t.u64Order) {
      body.push(`if (h.cmpU64(o[${JSON.stringify(a)}], o[${JSON.stringify(b)}]) > 0) return undefined;`);
    }
    body.push(this.epilogue.get(id) ?? `return '{' + s.slice(1) + '}';`);
    this.sources.push(`h.fns[${id}] = function encode_${t.name}(o) {\n${body.join('\n')}\n};`);
    return id;
  }

  /** Evaluate the generated source once; afterwards `h.fns` holds the encoders. */
  link(): void {
    // The source is built only from the schema definition above, never from input.
    new Function('h', `'use strict';\n${this.sources.join('\n')}`)(this.h);
  }
}

function compile(): Map<string, Encoder> {
  const c = new Compiler();
  const ids = new Map<string, number>();
  for (const [type, schema] of Object.entries(RECORD_SCHEMAS))
    ids.set(type, c.object(schema as ObjectType, false));
  c.link();
  return new Map([...ids].map(([type, id]) => [type, c.h.fns[id]!]));
}

const FAST: ReadonlyMap<string, Encoder> = compile();

/**
 * The canonical line of a valid record by the fast path, or undefined when
 * the fast path does not handle it (the record may still be valid).
 * Internal: used by the decoder to check canonical form cheaply.
 */
export function fastEncode(record: unknown): string | undefined {
  if (record === null || typeof record !== 'object') return undefined;
  const type = (record as { type?: unknown }).type;
  if (typeof type !== 'string') return undefined;
  return FAST.get(type)?.(record);
}

/** Canonical text of a record by the slow path: full checks, then json-canonicalize. */
function slowEncode(record: unknown): string {
  assertSupported(record);
  const issues = validateRecord(record);
  if (issues.length > 0) throw schemaError(issues);
  return jcs(record);
}

/**
 * The canonical NDJSON line of an evidence record: RFC 8785 (JCS) JSON of the
 * record followed by "\n". Byte-identical to json-canonicalize on the same
 * record, only faster.
 *
 * Throws NdjsonError: UNSUPPORTED_VALUE for a value JSON cannot carry
 * exactly (undefined, NaN, floats, bigint, functions, toJSON, lone
 * surrogates…), SCHEMA when the record is not a valid schema v1 record.
 */
export function encodeRecord(record: EvidenceRecord): string {
  const fast = fastEncode(record);
  return `${fast ?? slowEncode(record)}\n`;
}

/** {@link encodeRecord} as UTF-8 bytes. Same errors. */
export function encodeRecordBytes(record: EvidenceRecord): Buffer {
  return Buffer.from(encodeRecord(record), 'utf8');
}

/**
 * A u64 decimal string from a bigint or a non-negative safe integer. Throws
 * RangeError outside [0, 2^64-1] (or for an unsafe / fractional number).
 */
export function u64String(value: bigint | number): string {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`u64String: ${value} is not a non-negative safe integer; pass a bigint`);
    }
    return String(value);
  }
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
    throw new RangeError(`u64String: ${value} is outside [0, 2^64-1]`);
  }
  return value.toString();
}
