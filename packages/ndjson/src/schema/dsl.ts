/**
 * The little language the evidence schema is written in.
 *
 * Schema v1 is written once, in `v1.ts`, with these builders. Everything else
 * is derived from that one definition: the TypeScript record types (inferred
 * below), the validator (`validate.ts` interprets it), the fast encoders
 * (`encode.ts` compiles it), the JSON Schema file (`json-schema.ts` renders
 * it) and the field tables in docs/evidence-schema.md (`docs.ts`).
 */

/** A bounded JSON integer (32-bit values: pid, uid, port, flags, errno…). */
export interface IntType {
  readonly kind: 'int';
  readonly min: number;
  readonly max: number;
  readonly label: string;
}

/** An unsigned 64-bit value carried as a decimal string without leading zeros. */
export interface U64Type {
  readonly kind: 'u64';
}

/** Well-formed Unicode text (no lone surrogates), bounded in UTF-8 bytes. */
export interface StringType {
  readonly kind: 'string';
  readonly minBytes: number;
  readonly maxBytes: number;
}

/**
 * Kernel bytes (path, argv, comm): a JSON string when the bytes are valid
 * UTF-8, else `{"b64": "<standard base64>"}`. Bounded in raw bytes.
 */
export interface BytesType {
  readonly kind: 'bytes';
  readonly maxBytes: number;
}

/** true or false. */
export interface BoolType {
  readonly kind: 'bool';
}

/** Exactly one value (the record `type`, `schema_version`). */
export interface ConstType<V extends string | number = string | number> {
  readonly kind: 'const';
  readonly value: V;
}

/** One of a closed list of ASCII names. */
export interface EnumType<V extends string = string> {
  readonly kind: 'enum';
  readonly values: readonly V[];
}

/**
 * A string with a fixed lexical form (digest, hex address, IP address). The
 * regular expression is the whole contract for the JSON Schema; `check`, when
 * present, is a further rule only the validator enforces (RFC 5952 IPv6
 * form). Matching strings never need JSON escaping.
 */
export interface PatternType {
  readonly kind: 'pattern';
  readonly name: string;
  readonly pattern: RegExp;
  readonly expected: string;
  readonly check?: (s: string) => boolean;
  /**
   * Optional hand-written test equivalent to `pattern` (and `check`), used by
   * the compiled encoder because it is faster than the regular expression.
   * A test holds the two equal on generated strings.
   */
  readonly fast?: (s: string) => boolean;
}

/** A JSON object with a fixed set of members; unknown members are errors. */
export interface ObjectType<F extends Fields = Fields> {
  readonly kind: 'object';
  readonly name: string;
  readonly fields: F;
  readonly rules: readonly Rule[];
  /** Pairs of u64 members [a, b] where a <= b must hold (validator-only). */
  readonly u64Order: readonly (readonly [string, string])[];
}

/** A JSON array of one item type. */
export interface ArrayType<I extends FieldType = FieldType> {
  readonly kind: 'array';
  readonly items: I;
  readonly minItems: number;
  readonly maxItems: number;
  /** Items are objects, strictly ascending by this string member (unique, sorted). */
  readonly sortedBy?: string;
}

/** Every value type the schema can describe. */
export type FieldType =
  | IntType
  | U64Type
  | StringType
  | BytesType
  | BoolType
  | ConstType
  | EnumType
  | PatternType
  | ObjectType
  | ArrayType;

/** One member of an object. */
export interface Field<T extends FieldType = FieldType, O extends boolean = boolean> {
  readonly type: T;
  readonly optional: O;
  /** What the member means; goes to the JSON Schema `description` and the docs. */
  readonly doc: string;
}

/** The members of an object, by name. */
export type Fields = Readonly<Record<string, Field>>;

/**
 * A conditional rule on an object: when `field` holds one of `in`, the
 * members in `require` must be present, those in `forbid` absent, and the
 * members in `narrow` must also match the narrower type given there.
 */
export interface Rule {
  readonly when: { readonly field: string; readonly in: readonly string[] };
  readonly require?: readonly string[];
  readonly forbid?: readonly string[];
  readonly narrow?: Readonly<Record<string, PatternType | EnumType>>;
}

// ---------------------------------------------------------------- builders

/** A bounded integer. */
export function int(min: number, max: number, label: string): IntType {
  return { kind: 'int', min, max, label };
}

/** An unsigned 16-bit integer (ports). */
export const u16 = (): IntType => int(0, 0xffff, 'u16');
/** An unsigned 32-bit integer. */
export const u32 = (): IntType => int(0, 0xffffffff, 'u32');
/** A signed 32-bit integer. */
export const i32 = (): IntType => int(-0x80000000, 0x7fffffff, 'i32');
/** An unsigned 64-bit decimal string. */
export const u64 = (): U64Type => ({ kind: 'u64' });
/** Boolean. */
export const bool = (): BoolType => ({ kind: 'bool' });

/** Text bounded in UTF-8 bytes. */
export function str(maxBytes: number, minBytes = 1): StringType {
  return { kind: 'string', minBytes, maxBytes };
}

/** Kernel bytes bounded in raw bytes. */
export function bytes(maxBytes: number): BytesType {
  return { kind: 'bytes', maxBytes };
}

/** A constant. */
export function constant<const V extends string | number>(value: V): ConstType<V> {
  return { kind: 'const', value };
}

const SAFE_ENUM = /^[A-Za-z0-9_.:-]+$/;

/** A closed list of names; names must be plain ASCII so they never need escaping. */
export function enumOf<const V extends string>(values: readonly V[]): EnumType<V> {
  for (const v of values) {
    if (!SAFE_ENUM.test(v)) throw new Error(`enum value ${JSON.stringify(v)} is not plain ASCII`);
  }
  return { kind: 'enum', values };
}

/** A fixed lexical form. */
export function pattern(
  name: string,
  re: RegExp,
  expected: string,
  opts: { check?: (s: string) => boolean; fast?: (s: string) => boolean } = {},
): PatternType {
  if (!re.source.startsWith('^') || !re.source.endsWith('$')) {
    throw new Error(`pattern ${name} must be anchored`);
  }
  return { kind: 'pattern', name, pattern: re, expected, ...opts };
}

/** An object type. */
export function object<const F extends Fields>(
  name: string,
  fields: F,
  rules: readonly Rule[] = [],
  u64Order: readonly (readonly [string, string])[] = [],
): ObjectType<F> {
  return { kind: 'object', name, fields, rules, u64Order };
}

/** An array type. */
export function array<const I extends FieldType>(
  items: I,
  maxItems: number,
  opts: { minItems?: number; sortedBy?: string } = {},
): ArrayType<I> {
  const base = { kind: 'array' as const, items, minItems: opts.minItems ?? 0, maxItems };
  return opts.sortedBy === undefined ? base : { ...base, sortedBy: opts.sortedBy };
}

/** A required member. */
export function req<const T extends FieldType>(type: T, doc: string): Field<T, false> {
  return { type, optional: false, doc };
}

/** An optional member (absent, never `null` and never `undefined`). */
export function opt<const T extends FieldType>(type: T, doc: string): Field<T, true> {
  return { type, optional: true, doc };
}

// ---------------------------------------------------------------- inference

/** A kernel byte string as it appears in a record. */
export type BytesField = string | { readonly b64: string };

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The TypeScript type of values of a schema type. */
export type Infer<T> = T extends IntType
  ? number
  : T extends U64Type | StringType | PatternType
    ? string
    : T extends BytesType
      ? BytesField
      : T extends BoolType
        ? boolean
        : T extends ConstType<infer V>
          ? V
          : T extends EnumType<infer V>
            ? V
            : T extends ObjectType<infer F>
              ? InferFields<F>
              : T extends ArrayType<infer I>
                ? Infer<I>[]
                : never;

type RequiredKeys<F> = { [K in keyof F]: F[K] extends Field<FieldType, false> ? K : never }[keyof F];
type OptionalKeys<F> = { [K in keyof F]: F[K] extends Field<FieldType, false> ? never : K }[keyof F];

/** The TypeScript object type of a set of members. */
export type InferFields<F> = Simplify<
  { [K in RequiredKeys<F>]: F[K] extends Field<infer T> ? Infer<T> : never } & {
    [K in OptionalKeys<F>]?: F[K] extends Field<infer T> ? Infer<T> : never;
  }
>;
