import { BpfError, BpfObject, numPossibleCpus } from '@stellaops/bpf-loader';
import { canRunBpf } from '@stellaops/testing';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureFixtures, fixture } from './helpers.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

function thrown(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BpfError);
    return e as BpfError;
  }
  throw new Error('nothing thrown');
}

describe.runIf(canRunBpf('bpf-loader maps'))('BpfMap (real kernel)', () => {
  let o: BpfObject;
  beforeAll(() => ensureFixtures());
  afterEach(() => o?.close());

  const load = () => {
    o = BpfObject.open(fixture('fixture.bpf.o'));
    o.load();
    return o;
  };

  it('hash map: update, lookup, delete, keys and entries round-trip through the kernel', () => {
    const calls = load().map('calls');
    expect(calls).toMatchObject({
      name: 'calls',
      type: 'hash',
      keySize: 4,
      valueSize: 8,
      perCpu: false,
      valueBytes: 8,
    });
    expect(calls.lookup(u32(1))).toBeUndefined();
    for (let i = 1; i <= 5; i++) calls.update(u32(i), u64(BigInt(i * 100)));
    expect(calls.lookup(u32(3))).toEqual(u64(300n));
    expect([...calls.keys()].map((k) => k.readUInt32LE(0)).sort()).toEqual([1, 2, 3, 4, 5]);
    const entries = new Map([...calls.entries()].map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)]));
    expect(entries).toEqual(new Map([1, 2, 3, 4, 5].map((i) => [i, BigInt(i * 100)])));
    expect(calls.delete(u32(3))).toBe(true);
    expect(calls.delete(u32(3))).toBe(false);
    expect(calls.lookup(u32(3))).toBeUndefined();
  });

  it("update flags: 'noexist' on an existing key is EEXIST, 'exist' on a missing key is ENOENT", () => {
    const calls = load().map('calls');
    calls.update(u32(1), u64(1n), 'noexist');
    const e1 = thrown(() => calls.update(u32(1), u64(2n), 'noexist'));
    expect(e1.code).toBe('MAP');
    expect(e1.errno).toBe(17);
    const e2 = thrown(() => calls.update(u32(2), u64(2n), 'exist'));
    expect(e2.errno).toBe(2);
    calls.update(u32(1), u64(9n), 'exist');
    expect(calls.lookup(u32(1))).toEqual(u64(9n));
    expect(() => calls.update(u32(1), u64(9n), 'sometimes' as never)).toThrow(TypeError);
  });

  it('wrong key and value sizes are RangeErrors naming the map and sizes', () => {
    const calls = load().map('calls');
    expect(() => calls.lookup(Buffer.alloc(8))).toThrow(/key for map 'calls' must be 4 bytes, got 8/);
    expect(() => calls.update(u32(1), Buffer.alloc(4))).toThrow(RangeError);
    expect(() => calls.lookup('1' as never)).toThrow(TypeError);
  });

  it('per-CPU array: values are nCPU * roundup(size, 8) bytes, split per CPU', () => {
    const drops = load().map('drops');
    const cpus = numPossibleCpus();
    expect(cpus).toBeGreaterThan(0);
    expect(drops.valueBytes).toBe(cpus * 8);
    const v = Buffer.alloc(cpus * 8);
    for (let c = 0; c < cpus; c++) v.writeBigUInt64LE(BigInt(c + 1), c * 8);
    drops.update(u32(0), v);
    const back = drops.lookup(u32(0))!;
    expect(back.length).toBe(cpus * 8);
    expect(drops.perCpuValues(back).map((b) => b.readBigUInt64LE(0))).toEqual(
      Array.from({ length: cpus }, (_, c) => BigInt(c + 1)),
    );
    expect(() => drops.update(u32(0), Buffer.alloc(8 * cpus + 8))).toThrow(RangeError);
  });

  it('batch operations: updateBatch, lookupBatch, deleteBatch', () => {
    const calls = load().map('calls');
    const pairs = Array.from({ length: 300 }, (_, i) => [u32(i + 1), u64(BigInt(i * 3))] as const);
    expect(calls.updateBatch(pairs)).toBe(300);
    const all = calls.lookupBatch();
    expect(all).toHaveLength(300);
    const got = new Map(all.map(([k, v]) => [k.readUInt32LE(0), v.readBigUInt64LE(0)]));
    for (let i = 0; i < 300; i++) expect(got.get(i + 1)).toBe(BigInt(i * 3));
    expect(calls.deleteBatch(pairs.slice(0, 100).map(([k]) => k))).toBe(100);
    expect(calls.lookupBatch()).toHaveLength(200);
    expect(calls.lookup(u32(1))).toBeUndefined();
    expect(calls.lookup(u32(101))).toEqual(u64(300n));
  });

  it("lookupBatch reads a per-CPU array whole; an unknown map is 'MAP'", () => {
    const m = load().map('drops');
    expect(m.lookupBatch()).toHaveLength(1);
    expect(thrown(() => o.map('nope')).code).toBe('MAP');
  });

  it("maps before load are 'MAP'", () => {
    o = BpfObject.open(fixture('fixture.bpf.o'));
    const e = thrown(() => o.map('calls'));
    expect(e.code).toBe('MAP');
    expect(e.message).toMatch(/after load/);
  });

  it('writable globals live in the .bss map after load', () => {
    o = BpfObject.open(fixture('fixture.bpf.o'));
    o.setGlobal('tick_bias', 5n);
    o.load();
    const bss = o.map('fixture.bss');
    expect(bss.lookup(u32(0))).toEqual(u64(5n));
  });
});
