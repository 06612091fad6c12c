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
type Verifier = (o: unknown, txt: string, p: number) => number;

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
  fns: (Encoder | Verifier)[];
  matchString: (txt: string, p: number, v: string) => number;
  matchChars: (txt: string, p: number, s: string) => number;
  memos: WeakMap<object, string>[];
  texts: string[][];
  remember: (seen: string[], text: string) => void;
  isFrozen: (o: object) => boolean;
  deepFrozen: (o: object) => boolean;
}

/** How many verified texts each nested object type remembers. */
const REMEMBERED_TEXTS = 8;

/**
 * Remember the text of a nested object (a container attribution) that was
 * just verified as valid and canonical, most recent first. The records of a
 * stream repeat the same few containers, and the same text at the same place
 * parses to the same value, so the next record with it skips the checks: a
 * native compare instead. The place is certain because everything before it
 * was matched as canonical text, and a duplicated member would leave text
 * nothing can match.
 */
function remember(seen: string[], text: string): void {
  if (seen.length >= REMEMBERED_TEXTS) seen.pop();
  seen.unshift(text);
}

/** True when `o` and every object or array inside it is frozen. */
function deepFrozen(o: object): boolean {
  if (!Object.isFrozen(o)) return false;
  for (const v of Object.values(o)) {
    if (v !== null && typeof v === 'object' && !deepFrozen(v)) return false;
  }
  return true;
}

/** Whether the line being verified has a backslash; set by fastVerify (synchronous, so never stale). */
let lineHasBackslash = true;

/**
 * Match the JSON text of string `v` (as RFC 8785 writes it) in `txt` at `p`;
 * the position after it, or -1. Scans and compares in one pass.
 */
function matchString(txt: string, p: number, v: string): number {
  if (!lineHasBackslash) {
    // No escape anywhere in the line: every string literal in it is its value
    // between quotes (a raw '"' would end it, JSON.parse rejects raw control
    // characters), so the canonical text of v is '"' + v + '"'. Native compare.
    if (txt.charCodeAt(p) !== 0x22) return -1;
    const end = matchChars(txt, p + 1, v);
    if (end < 0 || txt.charCodeAt(end) !== 0x22) return -1;
    return isWellFormed(v) ? end + 1 : -1;
  }
  if (txt.charCodeAt(p) !== 0x22) return -1;
  let q = p + 1;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) {
      if (!isWellFormed(v)) return -1;
      const quoted = JSON.stringify(v);
      return txt.startsWith(quoted, p) ? p + quoted.length : -1;
    }
    if (txt.charCodeAt(q++) !== c) return -1;
  }
  return txt.charCodeAt(q) === 0x22 ? q + 1 : -1;
}

type Mode = 'encode' | 'verify';

/**
 * Generated statements matching the fixed ASCII text `lit` at `p` in `txt`,
 * unrolled to charCodeAt compares (much cheaper than a startsWith call for
 * the short member names and literals of a record).
 */
function literal(lit: string, fail: string): string {
  const tests = [...lit].map((c, i) => `txt.charCodeAt(p${i === 0 ? '' : ` + ${i}`}) !== ${c.charCodeAt(0)}`);
  return `if (${tests.join(' || ')}) return ${fail};\np += ${lit.length};`;
}

/** Match the characters of `s` at `p` in `txt`: the position after them, or -1. */
function matchChars(txt: string, p: number, s: string): number {
  if (p + s.length > txt.length) return -1;
  for (let i = 0; i < s.length; i++) if (txt.charCodeAt(p + i) !== s.charCodeAt(i)) return -1;
  return p + s.length;
}

/**
 * Compiles the schema to straight-line functions. In "encode" mode a
 * function returns the canonical text of a valid value (undefined: not
 * handled). In "verify" mode it checks the value exactly the same way and
 * matches its canonical text against a given text at a position, returning
 * the position after it (-1: not handled, or not this text) — the decoder's
 * canonical-form check without building the string.
 */
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
    matchString,
    matchChars,
    sets: [],
    res: [],
    checks: [],
    fns: [],
    memos: [],
    texts: [],
    remember,
    isFrozen: Object.isFrozen,
    deepFrozen,
  };
  private readonly objectIds = new Map<ObjectType, number>();
  private readonly sources: string[] = [];
  private nextVar = 0;
  private readonly fail: string;

  constructor(private readonly mode: Mode) {
    this.fail = mode === 'encode' ? 'undefined' : '-1';
  }

  private fresh(prefix: string): string {
    return `${prefix}${this.nextVar++}`;
  }

  private set(values: readonly string[]): string {
    this.h.sets.push(new Set(values));
    return `h.sets[${this.h.sets.length - 1}]`;
  }

  /** Statements that return FAIL unless scalar `v` is a valid value of `t`. */
  private check(t: FieldType, v: string): string {
    const F = this.fail;
    switch (t.kind) {
      case 'int':
        return `if (typeof ${v} !== 'number' || !h.isInt(${v}) || ${v} < ${t.min} || ${v} > ${t.max}) return ${F};`;
      case 'u64':
        return `if (typeof ${v} !== 'string' || !h.isU64(${v})) return ${F};`;
      case 'string':
      case 'bytes': {
        const min = t.kind === 'string' && t.minBytes > 0 ? ` || ${v}.length === 0` : '';
        return `if (typeof ${v} !== 'string'${min} || !h.fits(${v}, ${t.maxBytes})) return ${F};`;
      }
      case 'bool':
        return `if (${v} !== true && ${v} !== false) return ${F};`;
      case 'const':
        return `if (${v} !== ${JSON.stringify(t.value)}) return ${F};`;
      case 'enum':
        return `if (typeof ${v} !== 'string' || !${this.set(t.values)}.has(${v})) return ${F};`;
      case 'pattern': {
        if (t.fast) {
          this.h.checks.push(t.fast);
          return `if (typeof ${v} !== 'string' || !h.checks[${this.h.checks.length - 1}](${v})) return ${F};`;
        }
        this.h.res.push(t.pattern);
        let extra = '';
        if (t.check) {
          this.h.checks.push(t.check);
          extra = ` || !h.checks[${this.h.checks.length - 1}](${v})`;
        }
        return `if (typeof ${v} !== 'string' || !h.res[${this.h.res.length - 1}].test(${v})${extra}) return ${F};`;
      }
      case 'object':
      case 'array':
        throw new Error('check() is for scalar types');
    }
  }

  /**
   * Statements that check `v` against `t` and then, in encode mode, set
   * `out` to its JSON text, or in verify mode advance `p` over its JSON text
   * in `txt` (returning FAIL on any mismatch).
   */
  private value(t: FieldType, v: string, out: string): string {
    const F = this.fail;
    const verify = this.mode === 'verify';
    switch (t.kind) {
      case 'object':
        return verify
          ? `p = h.fns[${this.object(t)}](${v}, txt, p);\nif (p < 0) return ${F};`
          : `${out} = h.fns[${this.object(t)}](${v});\nif (${out} === undefined) return ${F};`;
      case 'array': {
        const i = this.fresh('i');
        const e = this.fresh('e');
        const x = this.fresh('x');
        let order = '';
        if (t.sortedBy !== undefined) {
          const k = JSON.stringify(t.sortedBy);
          order = `if (${i} > 0 && !(${v}[${i} - 1][${k}] < ${e}[${k}])) return ${F};`;
        }
        const head = `if (!h.isArray(${v}) || ${v}.length < ${t.minItems} || ${v}.length > ${t.maxItems}) return ${F};`;
        if (verify) {
          return `${head}
if (txt.charCodeAt(p) !== 91) return ${F};
p++;
for (let ${i} = 0; ${i} < ${v}.length; ${i}++) {
  const ${e} = ${v}[${i}];
  if (${i} > 0) { if (txt.charCodeAt(p) !== 44) return ${F}; p++; }
  ${this.value(t.items, e, x)}
  ${order}
}
if (txt.charCodeAt(p) !== 93) return ${F};
p++;`;
        }
        return `${head}
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
      default:
        return `${this.check(t, v)}\n${verify ? this.match(t, v) : this.emit(t, v, out)}`;
    }
  }

  /** Encode mode: set `out` to the JSON text of checked scalar `v`. */
  private emit(t: FieldType, v: string, out: string): string {
    switch (t.kind) {
      case 'int':
        return `${out} = '' + ${v};`;
      case 'string':
      case 'bytes':
        return `${out} = h.quote(${v});\nif (${out} === undefined) return ${this.fail};`;
      case 'bool':
        return `${out} = ${v} ? 'true' : 'false';`;
      case 'const':
        return `${out} = ${JSON.stringify(JSON.stringify(t.value))};`;
      default:
        // u64, enum, pattern: their lexical forms never need escaping.
        return `${out} = '"' + ${v} + '"';`;
    }
  }

  /** Verify mode: advance `p` over the JSON text of checked scalar `v` in `txt`. */
  private match(t: FieldType, v: string): string {
    const F = this.fail;
    switch (t.kind) {
      case 'int':
        return `p = h.matchChars(txt, p, '' + ${v});\nif (p < 0) return ${F};`;
      case 'string':
      case 'bytes':
        return `p = h.matchString(txt, p, ${v});\nif (p < 0) return ${F};`;
      case 'bool':
        return `if (${v}) { ${literal('true', F)} } else { ${literal('false', F)} }`;
      case 'const':
        return literal(JSON.stringify(t.value), F);
      default:
        // u64, enum, pattern: their lexical forms never need escaping.
        return `if (txt.charCodeAt(p) !== 34) return ${F};
p = h.matchChars(txt, p + 1, ${v});
if (p < 0 || txt.charCodeAt(p) !== 34) return ${F};
p++;`;
    }
  }

  /**
   * Compile an object type to `h.fns[id]`; returns the id. In encode mode,
   * nested object types (container, k8s, connection…) remember the text of
   * deeply frozen objects: the enricher attaches one frozen container object
   * to every record of a cgroup, and a frozen object cannot change, so it is
   * checked and encoded once.
   */
  object(t: ObjectType, nested = true): number {
    const known = this.objectIds.get(t);
    if (known !== undefined) return known;
    const F = this.fail;
    const verify = this.mode === 'verify';
    const memoize = nested && !verify;
    const id = this.h.fns.length;
    this.objectIds.set(t, id);
    this.h.fns.push(() => undefined); // placeholder until linked
    const body: string[] = [
      `if (o === null || typeof o !== 'object') return ${F};`,
      `const pr = h.getProto(o); if (pr !== h.OP && pr !== null) return ${F};`,
      `let n = 0; let s = ''; let v; let x;`,
    ];
    let memo = '';
    if (memoize) {
      this.h.memos.push(new WeakMap());
      memo = `h.memos[${this.h.memos.length - 1}]`;
      body.push(
        `const frozen = h.isFrozen(o); if (frozen) { const c = ${memo}.get(o); if (c !== undefined) return c; }`,
      );
    }
    const recall = nested && verify;
    let texts = '';
    if (recall) {
      this.h.texts.push([]);
      texts = `h.texts[${this.h.texts.length - 1}]`;
      body.push(
        `const p0 = p;`,
        `{ const seen = ${texts}; for (let j = 0; j < seen.length; j++) { const c = seen[j]; if (txt.startsWith(c, p)) return p + c.length; } }`,
      );
    }
    if (verify) body.push(`if (txt.charCodeAt(p) !== 123) return ${F};`, 'p++;');
    // RFC 8785 member order: UTF-16 code units, which is what Array.prototype.sort does.
    for (const key of Object.keys(t.fields).sort()) {
      const field = t.fields[key]!;
      const name = JSON.stringify(key);
      const next = JSON.stringify(`,${name}:`);
      const member = verify
        ? `if (n !== 0) { if (txt.charCodeAt(p) !== 44) return ${F}; p++; }
${literal(`${name}:`, F)}
${this.value(field.type, 'v', 'x')}
n++;`
        : `${this.value(field.type, 'v', 'x')}
n++; s += ${next} + x;`;
      body.push(
        `v = o[${name}];`,
        field.optional
          ? `if (v !== undefined) {\n${member}\n}`
          : `if (v === undefined) return ${F};\n${member}`,
      );
    }
    body.push(`let k = 0; for (const _ in o) k++; if (k !== n) return ${F};`);
    for (const rule of t.rules) {
      const cond: string[] = [];
      for (const r of rule.require ?? [])
        cond.push(`if (o[${JSON.stringify(r)}] === undefined) return ${F};`);
      for (const f of rule.forbid ?? []) cond.push(`if (o[${JSON.stringify(f)}] !== undefined) return ${F};`);
      for (const [f, narrowed] of Object.entries(rule.narrow ?? {})) {
        cond.push(`v = o[${JSON.stringify(f)}];\nif (v !== undefined) {\n${this.check(narrowed, 'v')}\n}`);
      }
      body.push(
        `if (${this.set(rule.when.in)}.has(o[${JSON.stringify(rule.when.field)}])) {\n${cond.join('\n')}\n}`,
      );
    }
    for (const [a, b] of t.u64Order) {
      body.push(`if (h.cmpU64(o[${JSON.stringify(a)}], o[${JSON.stringify(b)}]) > 0) return ${F};`);
    }
    if (recall) {
      body.push(
        `if (txt.charCodeAt(p) !== 125) return ${F};`,
        `h.remember(${texts}, txt.slice(p0, p + 1));`,
        'return p + 1;',
      );
    } else if (verify) {
      body.push(`if (txt.charCodeAt(p) !== 125) return ${F};`, 'return p + 1;');
    } else if (memoize) {
      body.push(
        `const text = '{' + s.slice(1) + '}'; if (frozen && h.deepFrozen(o)) ${memo}.set(o, text); return text;`,
      );
    } else {
      body.push(`return '{' + s.slice(1) + '}';`);
    }
    const params = verify ? 'o, txt, p' : 'o';
    this.sources.push(`h.fns[${id}] = function ${this.mode}_${t.name}(${params}) {\n${body.join('\n')}\n};`);
    return id;
  }

  /** Evaluate the generated source once; afterwards `h.fns` holds the functions. */
  link(): void {
    // The source is built only from the schema definition above, never from input.
    new Function('h', `'use strict';\n${this.sources.join('\n')}`)(this.h);
  }
}

function compile<T>(mode: Mode): Map<string, T> {
  const c = new Compiler(mode);
  const ids = new Map<string, number>();
  for (const [type, schema] of Object.entries(RECORD_SCHEMAS))
    ids.set(type, c.object(schema as ObjectType, false));
  c.link();
  return new Map([...ids].map(([type, id]) => [type, c.h.fns[id] as T]));
}

const FAST: ReadonlyMap<string, Encoder> = compile<Encoder>('encode');
const VERIFY: ReadonlyMap<string, Verifier> = compile<Verifier>('verify');

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

/**
 * True when `text` up to `end` is exactly the canonical text (without
 * newline) of `record` and the fast path vouches the record is valid.
 * `record` must be `JSON.parse(text)`: nested objects whose text was verified
 * before are recognised by their text alone. False means "not
 * shown": the caller falls back to full validation and json-canonicalize.
 * Internal: the decoder's canonical-form check without building the string.
 */
export function fastVerify(record: unknown, text: string, end = text.length): boolean {
  if (record === null || typeof record !== 'object') return false;
  const type = (record as { type?: unknown }).type;
  if (typeof type !== 'string') return false;
  const verify = VERIFY.get(type);
  if (verify === undefined) return false;
  lineHasBackslash = text.includes('\\');
  try {
    return verify(record, text, 0) === end;
  } finally {
    lineHasBackslash = true;
  }
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
