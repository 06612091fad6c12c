import { b64Problem, fitsUtf8 } from './bytes.js';
import type { ValidationIssue } from './errors.js';
import { pathIndex, pathKey } from './path.js';
import type { ArrayType, FieldType, ObjectType, Rule } from './schema/dsl.js';
import { RECORD_SCHEMAS, RECORD_TYPES, SCHEMA_VERSION } from './schema/v1.js';
import { isWellFormed } from './text.js';

/** Largest u64, as the decimal string it is written as. */
export const U64_MAX = '18446744073709551615';
const U64_RE = /^(?:0|[1-9][0-9]{0,19})$/;

/** True for a u64 decimal string without leading zeros, at most 2^64-1. */
export function isU64(s: string): boolean {
  // Hot path of the encoder and the decoder: a loop, not U64_RE (tests hold them equal).
  const n = s.length;
  if (n === 0 || n > 20) return false;
  if (s.charCodeAt(0) === 0x30) return n === 1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return n < 20 || s <= U64_MAX;
}

/** The lexical form of a u64 string as a regular expression (without the 2^64-1 bound). */
export const U64_PATTERN = U64_RE;

/** Compare two valid u64 decimal strings numerically: <0, 0 or >0. */
export function compareU64(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

const RECORD_TYPE_SET: ReadonlySet<string> = new Set(RECORD_TYPES);

/** A short, safe rendering of a bad value for an error message. */
export function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return `bigint ${v}`;
  if (typeof v === 'function' || typeof v === 'symbol') return `a ${typeof v}`;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Object.prototype.toString.call(v);
  }
  const kind = Array.isArray(v) ? 'array ' : v === null ? '' : typeof v === 'object' ? 'object ' : '';
  return kind + (s.length > 60 ? `${s.slice(0, 57)}...` : s);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** What a schema type expects, in words (for error messages and docs). */
export function expectation(t: FieldType): string {
  switch (t.kind) {
    case 'int':
      return `an integer in [${t.min}, ${t.max}] (${t.label})`;
    case 'u64':
      return 'an unsigned 64-bit decimal string (0..18446744073709551615, no leading zeros, like "42"; 64-bit values are strings)';
    case 'string':
      return `a string of ${t.minBytes}..${t.maxBytes} UTF-8 bytes`;
    case 'bytes':
      return `a byte string of at most ${t.maxBytes} bytes: a JSON string if valid UTF-8, else {"b64": "<base64>"}`;
    case 'bool':
      return 'true or false';
    case 'const':
      return JSON.stringify(t.value);
    case 'enum':
      return `one of ${t.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return t.expected;
    case 'object':
      return `a JSON object (${t.name})`;
    case 'array':
      return `an array of ${t.minItems}..${t.maxItems} items`;
  }
}

function checkValue(v: unknown, t: FieldType, path: string, out: ValidationIssue[]): void {
  const bad = (reason?: string) =>
    out.push({ path, reason: reason ?? `expected ${expectation(t)}, got ${describe(v)}` });
  switch (t.kind) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < t.min || v > t.max) bad();
      return;
    case 'u64':
      if (typeof v !== 'string' || !isU64(v)) bad();
      return;
    case 'string':
      if (typeof v !== 'string') return void bad();
      if (!isWellFormed(v)) return void bad('string contains a lone UTF-16 surrogate (not UTF-8 text)');
      if (v.length < t.minBytes || !fitsUtf8(v, t.maxBytes)) bad();
      return;
    case 'bytes':
      if (typeof v === 'string') {
        if (!isWellFormed(v))
          return void bad('string contains a lone UTF-16 surrogate; write such bytes as {"b64"}');
        if (!fitsUtf8(v, t.maxBytes)) bad(`byte string is longer than ${t.maxBytes} bytes`);
        return;
      }
      if (isPlainObject(v)) {
        const keys = Object.keys(v);
        if (keys.length !== 1 || keys[0] !== 'b64' || typeof v.b64 !== 'string') return void bad();
        const problem = b64Problem(v.b64, t.maxBytes);
        if (problem) out.push({ path: pathKey(path, 'b64'), reason: `base64 byte string ${problem}` });
        return;
      }
      bad();
      return;
    case 'bool':
      if (typeof v !== 'boolean') bad();
      return;
    case 'const':
      if (v !== t.value) bad();
      return;
    case 'enum':
      if (typeof v !== 'string' || !t.values.includes(v)) bad();
      return;
    case 'pattern':
      if (typeof v !== 'string' || !t.pattern.test(v) || (t.check !== undefined && !t.check(v))) bad();
      return;
    case 'object':
      checkObject(v, t, path, out);
      return;
    case 'array':
      checkArray(v, t, path, out);
      return;
  }
}

function checkArray(v: unknown, t: ArrayType, path: string, out: ValidationIssue[]): void {
  if (!Array.isArray(v)) {
    out.push({ path, reason: `expected ${expectation(t)}, got ${describe(v)}` });
    return;
  }
  if (v.length < t.minItems || v.length > t.maxItems) {
    out.push({ path, reason: `expected ${t.minItems}..${t.maxItems} items, got ${v.length}` });
  }
  const before = out.length;
  for (let i = 0; i < v.length; i++) checkValue(v[i], t.items, pathIndex(path, i), out);
  if (t.sortedBy !== undefined && out.length === before) {
    const key = t.sortedBy;
    for (let i = 1; i < v.length; i++) {
      const prev = (v[i - 1] as Record<string, string>)[key]!;
      const cur = (v[i] as Record<string, string>)[key]!;
      if (!(prev < cur)) {
        out.push({
          path: pathKey(pathIndex(path, i), key),
          reason: `items must be strictly ascending by ${key} (UTF-16 code unit order): ${JSON.stringify(prev)} is followed by ${JSON.stringify(cur)}`,
        });
      }
    }
  }
}

function ruleApplies(o: Record<string, unknown>, rule: Rule): boolean {
  const v = o[rule.when.field];
  return typeof v === 'string' && rule.when.in.includes(v);
}

function checkObject(v: unknown, t: ObjectType, path: string, out: ValidationIssue[]): void {
  if (!isPlainObject(v)) {
    out.push({ path, reason: `expected ${expectation(t)}, got ${describe(v)}` });
    return;
  }
  for (const key of Object.keys(v)) {
    if (!Object.hasOwn(t.fields, key)) {
      out.push({ path: pathKey(path, key), reason: `unknown member ${JSON.stringify(key)} in ${t.name}` });
    }
  }
  const fieldOk: Record<string, boolean> = {};
  for (const [key, field] of Object.entries(t.fields)) {
    const p = pathKey(path, key);
    if (!Object.hasOwn(v, key)) {
      if (!field.optional) out.push({ path: p, reason: `missing required member ${JSON.stringify(key)}` });
      continue;
    }
    const value = v[key];
    if (value === undefined) {
      out.push({ path: p, reason: 'is undefined; omit an absent member instead of setting it to undefined' });
      continue;
    }
    const before = out.length;
    checkValue(value, field.type, p, out);
    fieldOk[key] = out.length === before;
  }
  for (const rule of t.rules) {
    if (!ruleApplies(v, rule)) continue;
    const cond = `when ${rule.when.field} is ${JSON.stringify(v[rule.when.field])}`;
    for (const key of rule.require ?? []) {
      if (v[key] === undefined) out.push({ path: pathKey(path, key), reason: `is required ${cond}` });
    }
    for (const key of rule.forbid ?? []) {
      if (v[key] !== undefined) out.push({ path: pathKey(path, key), reason: `must be absent ${cond}` });
    }
    for (const [key, narrowed] of Object.entries(rule.narrow ?? {})) {
      if (v[key] === undefined || !fieldOk[key]) continue;
      const issues: ValidationIssue[] = [];
      checkValue(v[key], narrowed, pathKey(path, key), issues);
      for (const i of issues) out.push({ path: i.path, reason: `${i.reason} ${cond}` });
    }
  }
  for (const [a, b] of t.u64Order) {
    if (fieldOk[a] && fieldOk[b] && compareU64(v[a] as string, v[b] as string) > 0) {
      out.push({ path: pathKey(path, b), reason: `${b} (${v[b]}) is before ${a} (${v[a]})` });
    }
  }
}

/**
 * Every problem that keeps `value` from being a valid schema v1 evidence
 * record, each with its JSON path; an empty array when it is valid. Checks
 * types, required and unknown members, ranges, lexical forms and the
 * validator-only rules (see VALIDATOR_ONLY_RULES). Never throws.
 */
export function validateRecord(value: unknown): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (!isPlainObject(value)) {
    out.push({ path: '$', reason: `expected a JSON object (an evidence record), got ${describe(value)}` });
    return out;
  }
  if (value.schema_version !== SCHEMA_VERSION && Object.hasOwn(value, 'schema_version')) {
    out.push({
      path: '$.schema_version',
      reason: `unsupported schema_version ${describe(value.schema_version)}; this codec reads version ${SCHEMA_VERSION}`,
    });
    return out;
  }
  const type = value.type;
  if (typeof type !== 'string' || !RECORD_TYPE_SET.has(type)) {
    out.push({
      path: '$.type',
      reason:
        type === undefined
          ? `missing required member "type" (one of ${RECORD_TYPES.join(', ')})`
          : `unknown record type ${describe(type)}; expected one of ${RECORD_TYPES.join(', ')}`,
    });
    return out;
  }
  checkObject(value, RECORD_SCHEMAS[type as keyof typeof RECORD_SCHEMAS], '$', out);
  return out;
}

/** Validate a value against one schema type (used by tests and tools). */
export function validateAgainst(value: unknown, type: FieldType, path = '$'): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  checkValue(value, type, path, out);
  return out;
}
