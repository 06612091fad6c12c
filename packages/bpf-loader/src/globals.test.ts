import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeGlobal } from './globals.js';

describe('encodeGlobal', () => {
  it('encodes integers little-endian in the variable size', () => {
    expect(encodeGlobal(0x01020304, 4, 'v')).toEqual(Buffer.from([4, 3, 2, 1]));
    expect(encodeGlobal(-1, 2, 'v')).toEqual(Buffer.from([0xff, 0xff]));
    expect(encodeGlobal(true, 1, 'v')).toEqual(Buffer.from([1]));
    expect(encodeGlobal(false, 4, 'v')).toEqual(Buffer.alloc(4));
    expect(encodeGlobal(2n ** 64n - 1n, 8, 'v')).toEqual(Buffer.alloc(8, 0xff));
  });

  it('round-trips any u32 and i64', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (n) => {
        expect((encodeGlobal(n, 4, 'v') as Buffer).readUInt32LE(0)).toBe(n);
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (n) => {
        expect((encodeGlobal(n, 8, 'v') as Buffer).readBigInt64LE(0)).toBe(n);
      }),
    );
  });

  it('reports values that do not fit, and non-integer sizes', () => {
    expect(encodeGlobal(256, 1, 'v')).toEqual({ error: "256 does not fit 'v' (1 bytes: -128 to 255)" });
    expect(encodeGlobal(-129, 1, 'v')).toHaveProperty('error');
    expect(encodeGlobal(1, 3, 'v')).toEqual({
      error: "'v' is 3 bytes, not an integer: pass a Buffer of 3 bytes",
    });
  });

  it('rejects unsafe numbers and other types precisely', () => {
    expect(() => encodeGlobal(2 ** 53, 8, 'v')).toThrow(RangeError);
    expect(() => encodeGlobal(1.5, 8, 'v')).toThrow(/safe integer/);
    expect(() => encodeGlobal('1' as never, 4, 'v')).toThrow(TypeError);
  });

  it('passes Buffers through (the size is checked against BTF natively)', () => {
    const b = Buffer.from([1, 2, 3]);
    expect(encodeGlobal(b, 3, 'v')).toBe(b);
  });
});
