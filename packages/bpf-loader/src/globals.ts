/**
 * Encoding of values for `const volatile` globals: integers little-endian
 * (x86_64 and arm64 BPF are little-endian) in exactly the variable's size.
 */
export function encodeGlobal(
  value: Buffer | number | bigint | boolean,
  size: number,
  name: string,
): Buffer | { error: string } {
  if (Buffer.isBuffer(value)) return value;
  let big: bigint;
  if (typeof value === 'boolean') {
    big = value ? 1n : 0n;
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(
        `value for '${name}' must be a safe integer, got ${value} (pass a bigint or a Buffer)`,
      );
    }
    big = BigInt(value);
  } else if (typeof value === 'bigint') {
    big = value;
  } else {
    throw new TypeError(
      `value for '${name}' must be a Buffer, number, bigint or boolean, got ${typeof value}`,
    );
  }
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
    return { error: `'${name}' is ${size} bytes, not an integer: pass a Buffer of ${size} bytes` };
  }
  const bits = BigInt(size * 8);
  const umax = (1n << bits) - 1n;
  const smin = -(1n << (bits - 1n));
  if (big > umax || big < smin) {
    return { error: `${value} does not fit '${name}' (${size} bytes: ${smin} to ${umax})` };
  }
  const out = Buffer.alloc(size);
  const unsigned = big < 0n ? (1n << bits) + big : big;
  for (let i = 0; i < size; i++) out[i] = Number((unsigned >> BigInt(8 * i)) & 0xffn);
  return out;
}
