/**
 * Unsigned 64-bit values as two u32 halves (how a ring record holds them:
 * two little-endian words), written as decimal digits without BigInt.
 *
 * The hot path reads `hi` and `lo` with readUInt32LE and never allocates:
 * BigInt reads, arithmetic and toString cost an allocation each, which on a
 * storm of records is most of the garbage collector's work.
 */

const TWO32 = 4294967296;
const LIMB = 100_000_000; // 1e8: one 8-digit limb

/**
 * Split a u64 value in [hi * 2^32 + lo] into its quotient and remainder by
 * 1e8, exactly: long division over four 16-bit pieces, every step below 2^53.
 * Returns the quotient (below 2^53, so an exact Number); the remainder goes
 * to `rem[0]`.
 */
function divLimb(hi: number, lo: number, rem: Float64Array): number {
  let r = 0;
  let q = 0;
  // Pieces from the top: hi >>> 16, hi & 0xffff, lo >>> 16, lo & 0xffff.
  let cur = hi >>> 16; // r is 0 here
  let qp = Math.floor(cur / LIMB);
  r = cur - qp * LIMB;
  q = qp;
  cur = r * 65536 + (hi & 0xffff);
  qp = Math.floor(cur / LIMB);
  r = cur - qp * LIMB;
  q = q * 65536 + qp;
  cur = r * 65536 + (lo >>> 16);
  qp = Math.floor(cur / LIMB);
  r = cur - qp * LIMB;
  q = q * 65536 + qp;
  cur = r * 65536 + (lo & 0xffff);
  qp = Math.floor(cur / LIMB);
  r = cur - qp * LIMB;
  q = q * 65536 + qp;
  rem[0] = r;
  return q;
}

const scratch = new Float64Array(1);

/** Decimal digits of an integer in [0, 2^31) into `out` at `p` (small-integer arithmetic only); returns the position after them. */
function writeSmall(out: Uint8Array, p: number, n: number): number {
  if (n < 10) {
    out[p] = 48 + n;
    return p + 1;
  }
  let digits = 2;
  for (let m = (n / 100) | 0; m > 0; m = (m / 10) | 0) digits++;
  let at = p + digits;
  for (let m = n; at > p; ) {
    const q = (m / 10) | 0;
    out[--at] = 48 + m - q * 10;
    m = q;
  }
  return p + digits;
}

/** The 8 digits of a limb in [0, 1e8), zero-padded, into `out` at `p`; returns `p + 8`. */
function writeLimb(out: Uint8Array, p: number, n: number): number {
  for (let at = p + 7, m = n | 0; at >= p; at--) {
    const q = (m / 10) | 0;
    out[at] = 48 + m - q * 10;
    m = q;
  }
  return p + 8;
}

/**
 * Decimal digits of a non-negative integer below 2^53 into `out` at `p`;
 * returns the position after them. Past 2^31 (every nanosecond timestamp) it
 * splits off the low 8 digits once, so every digit comes from small-integer
 * arithmetic, never a floating-point `%` per digit.
 */
export function writeUint(out: Uint8Array, p: number, n: number): number {
  if (n <= 0x7fffffff) return writeSmall(out, p, n);
  // n < 2^53: the quotient is below 9.1e7 and both products below are exact.
  let q = Math.floor(n / LIMB);
  let r = n - q * LIMB;
  if (r < 0) {
    q--;
    r += LIMB;
  } else if (r >= LIMB) {
    q++;
    r -= LIMB;
  }
  return writeLimb(out, writeSmall(out, p, q), r);
}

/** Decimal digits of a signed integer (|n| below 2^53) into `out` at `p`; returns the position after them. */
export function writeInt(out: Uint8Array, p: number, n: number): number {
  if (n < 0) {
    out[p] = 45; // '-'
    return writeUint(out, p + 1, -n);
  }
  return writeUint(out, p, n);
}

/**
 * Decimal digits of the u64 `hi * 2^32 + lo` (both u32) into `out` at `p`,
 * as RFC 8785 and schema v1 write u64 values (no leading zeros); returns the
 * position after them. Exact for every value in [0, 2^64-1].
 */
export function writeU64(out: Uint8Array, p: number, hi: number, lo: number): number {
  // Below 2^53 the value is an exact Number.
  if (hi < 0x200000) return writeUint(out, p, hi * TWO32 + lo);
  const q = divLimb(hi, lo, scratch);
  // q < 2^64 / 1e8 < 2^53; the low limb, zero-padded to 8 digits.
  return writeLimb(out, writeUint(out, p, q), scratch[0]!);
}

const text = new Uint8Array(20);

/** The decimal string of the u64 `hi * 2^32 + lo` (see {@link writeU64}). */
export function u64Decimal(hi: number, lo: number): string {
  const end = writeU64(text, 0, hi, lo);
  return String.fromCharCode.apply(null, Array.from(text.subarray(0, end)));
}

/**
 * The u64 sum of `a` and `b` (each as hi/lo halves) into `sum` ([hi, lo]),
 * or false when it does not fit in 64 bits (`sum` is then unchanged).
 */
export function addU64(aHi: number, aLo: number, bHi: number, bLo: number, sum: Uint32Array): boolean {
  let lo = aLo + bLo;
  let carry = 0;
  if (lo >= TWO32) {
    lo -= TWO32;
    carry = 1;
  }
  const hi = aHi + bHi + carry;
  if (hi >= TWO32) return false;
  sum[0] = hi;
  sum[1] = lo;
  return true;
}

/** The hi/lo halves of a bigint in [0, 2^64-1] (once per stream or batch, never per record). */
export function u64Halves(v: bigint): [hi: number, lo: number] {
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new RangeError(`u64Halves: ${v} is outside [0, 2^64-1]`);
  return [Number(v >> 32n), Number(v & 0xffff_ffffn)];
}
