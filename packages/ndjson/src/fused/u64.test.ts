import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addU64, u64Decimal, u64Halves, writeInt, writeU64 } from './u64.js';

const halves = (v: bigint) => [Number(v >> 32n), Number(v & 0xffff_ffffn)] as const;
const EDGES = [
  0n,
  1n,
  9n,
  10n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 32n + 1n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  99_999_999n,
  100_000_000n,
  10n ** 16n,
  10n ** 19n - 1n,
  10n ** 19n,
  1_764_100_000_000_000_000n,
  // Either side of a multiple of 1e8 near 2^53 (where the low 8 digits are split off).
  90_071_991n * 100_000_000n - 1n,
  90_071_991n * 100_000_000n,
  2n ** 31n - 1n,
  2n ** 31n,
  10n ** 15n - 1n,
  10n ** 15n,
  2n ** 64n - 2n,
  2n ** 64n - 1n,
];
const u64Arb = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.constantFrom(...EDGES),
  fc.bigInt({ min: 0n, max: 2n ** 53n + 2n }),
);

describe('u64 from two u32 halves', () => {
  it('writes the same digits as BigInt toString, edges included', () => {
    for (const v of EDGES) expect(u64Decimal(...halves(v))).toBe(v.toString());
    fc.assert(
      fc.property(u64Arb, (v) => {
        expect(u64Decimal(...halves(v))).toBe(v.toString());
      }),
      { numRuns: 5000 },
    );
  });

  it('writes into a buffer at an offset and returns the end', () => {
    fc.assert(
      fc.property(u64Arb, fc.nat(16), (v, at) => {
        const out = Buffer.alloc(48, 0x2e);
        const end = writeU64(out, at, ...halves(v));
        expect(out.toString('latin1', at, end)).toBe(v.toString());
        expect(out[end]).toBe(0x2e);
        expect(at === 0 || out[at - 1] === 0x2e).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('adds with carry exactly, and refuses a sum past 2^64-1', () => {
    const sum = new Uint32Array(2);
    fc.assert(
      fc.property(u64Arb, u64Arb, (a, b) => {
        const ok = addU64(...halves(a), ...halves(b), sum);
        expect(ok).toBe(a + b <= 2n ** 64n - 1n);
        if (ok) expect((BigInt(sum[0]!) << 32n) | BigInt(sum[1]!)).toBe(a + b);
      }),
      { numRuns: 5000 },
    );
  });

  it('splits a bigint into halves, and names what is out of range', () => {
    expect(u64Halves(2n ** 64n - 1n)).toEqual([0xffffffff, 0xffffffff]);
    expect(u64Halves(2n ** 32n)).toEqual([1, 0]);
    expect(() => u64Halves(-1n)).toThrow(/outside \[0, 2\^64-1\]/);
    expect(() => u64Halves(2n ** 64n)).toThrow(RangeError);
  });

  it('writes every integer below 2^53 as JSON does, on both sides of each 1e8 boundary', () => {
    const check = (n: number) => {
      const out = Buffer.alloc(24);
      expect(out.toString('latin1', 0, writeInt(out, 0, n))).toBe(JSON.stringify(n));
    };
    for (let k = 21; k <= 90_071_992; k = k * 3 + 1) for (const d of [-1, 0, 1]) check(k * 100_000_000 + d);
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), check), { numRuns: 5000 });
  });

  it('writes both sides of every power of ten below 2^31 as JSON does (where the digit count changes)', () => {
    const out = Buffer.alloc(16);
    for (let k = 1; k <= 1e9; k *= 10)
      for (const n of [k - 1, k, k + 1, 2 * k - 1, 10 * k - 1]) {
        if (n < 0 || n > 0x7fffffff) continue;
        expect(out.toString('latin1', 0, writeInt(out, 0, n))).toBe(String(n));
      }
    expect(out.toString('latin1', 0, writeInt(out, 0, 0x7fffffff))).toBe('2147483647');
    for (let n = 0; n < 100_000; n++) expect(out.toString('latin1', 0, writeInt(out, 0, n))).toBe(String(n));
  });

  it('writes i32 values as JSON does', () => {
    fc.assert(
      fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), (n) => {
        const out = Buffer.alloc(16);
        expect(out.toString('latin1', 0, writeInt(out, 0, n))).toBe(JSON.stringify(n));
      }),
    );
  });
});
