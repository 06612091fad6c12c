/**
 * Argument checks run before native code sees a value: a wrong type is a
 * TypeError, a value out of range a RangeError, each naming the parameter,
 * what it got and what it accepts.
 */

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return `${typeof value} ${String(value)}`;
  return typeof value;
}

export function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string, got ${describe(value)}`);
  if (value.length === 0) throw new RangeError(`${what} must not be empty`);
  if (value.includes('\0')) throw new RangeError(`${what} must not contain NUL characters`);
  return value;
}

export function requireBuffer(value: unknown, what: string, length?: number): Buffer {
  if (!Buffer.isBuffer(value)) throw new TypeError(`${what} must be a Buffer, got ${describe(value)}`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${what} must be ${length} bytes, got ${value.length}`);
  }
  return value;
}

export function requireInt(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

export function requireBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${what} must be a boolean, got ${describe(value)}`);
  return value;
}

export function requireOptions(
  value: unknown,
  what: string,
  allowed: readonly string[],
): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new TypeError(`${what} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${what} has unknown option '${key}' (known: ${allowed.join(', ')})`);
    }
  }
  return value as Record<string, unknown>;
}

export function optional<T>(
  opts: Record<string, unknown>,
  key: string,
  check: (v: unknown, what: string) => T,
  what: string,
): T | undefined {
  const v = opts[key];
  return v === undefined ? undefined : check(v, `${what}.${key}`);
}

export const U32_MAX = 0xffff_ffff;
