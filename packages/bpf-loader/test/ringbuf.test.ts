import { BpfObject } from '@stellaops/bpf-loader';
import { canRunBpf } from '@stellaops/testing';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeEvent,
  drainAll,
  ensureFixtures,
  fixture,
  KIND,
  readUntil,
  sleep,
  startTarget,
  sumPerCpu,
  targetBin,
} from './helpers.js';

describe.runIf(canRunBpf('bpf-loader ring buffer'))('RingBufferReader (real kernel)', () => {
  const open: BpfObject[] = [];
  beforeAll(() => ensureFixtures());
  afterEach(() => {
    for (const o of open.splice(0)) o.close();
  });

  function loaded(
    file = 'fixture.bpf.o',
    globals: Record<string, number> = {},
    resize: Record<string, number> = {},
  ) {
    const o = BpfObject.open(fixture(file));
    open.push(o);
    for (const [k, v] of Object.entries(globals)) o.setGlobal(k, v);
    for (const [k, v] of Object.entries(resize)) o.resizeMap(k, v);
    o.load();
    return o;
  }

  it('delivers exactly N records from a uprobe-triggered workload, in order, none extra', async () => {
    const N = 20_000;
    const t = await startTarget('tick', N);
    const o = loaded('fixture.bpf.o', { target_pid: t.pid, magic: 7 }, { events: 1 << 20 });
    const r = o.ringBuffer('events', { latencyMs: 5, maxBatchRecords: 1000 });
    o.attach('on_tick', { kind: 'uprobe', binaryPath: targetBin, symbol: 'stella_tick', pid: t.pid });
    t.go();
    const seqs: bigint[] = [];
    let maxBatch = 0;
    await readUntil(
      r,
      () => seqs.length >= N,
      (b) => {
        maxBatch = Math.max(maxBatch, b.count);
        for (const rec of b) {
          const e = decodeEvent(rec);
          expect(e.pid).toBe(t.pid);
          expect(e.kind).toBe(KIND.TICK);
          expect(e.magic).toBe(7n);
          seqs.push(e.seq);
        }
      },
      20_000,
    );
    expect(await t.exited).toBe(0);
    expect((await drainAll(r)).length).toBe(0);
    expect(seqs.length).toBe(N);
    expect(seqs.every((s, i) => s === BigInt(i))).toBe(true);
    expect(maxBatch).toBeLessThanOrEqual(1000);
    const st = r.stats;
    expect(st.records).toBe(N);
    expect(st.bytes).toBe(N * 32);
    expect(st.batches).toBeGreaterThanOrEqual(N / 1000);
    // The hash map saw the same calls, and no reserve failed.
    const calls = o.map('calls').lookup(Buffer.from(new Uint32Array([t.pid]).buffer));
    expect(calls?.readBigUInt64LE(0)).toBe(BigInt(N));
    const drops = o.map('drops');
    expect(sumPerCpu(drops.perCpuValues(drops.lookup(Buffer.alloc(4))!))).toBe(0n);
  });

  it('uretprobe sees return values; records() iterates record by record', async () => {
    const t = await startTarget('tick', 50);
    const o = loaded('fixture.bpf.o', { target_pid: t.pid });
    const r = o.ringBuffer('events', { latencyMs: 2 });
    o.attach('on_tick_ret', { kind: 'uretprobe', binaryPath: targetBin, symbol: 'stella_tick' });
    t.go();
    const rets: bigint[] = [];
    for await (const rec of r.records()) {
      const e = decodeEvent(rec);
      expect(e.aux).toBe(1n);
      rets.push(e.seq);
      if (rets.length === 50) break; // break → return() → closes the reader
    }
    expect(rets).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i * 2)));
    expect(r.closed).toBe(true);
  });

  describe('reader contract', () => {
    it('close() unblocks a pending read with null', async () => {
      const r = loaded().ringBuffer('events');
      const pending = r.read();
      setTimeout(() => r.close(), 20);
      expect(await pending).toBeNull();
    });

    it('read() after close() reports closed (null), also when batches were queued', async () => {
      const t = await startTarget('tick', 5);
      const o = loaded('fixture.bpf.o', { target_pid: t.pid });
      const r = o.ringBuffer('events', { latencyMs: 1 });
      o.attach('on_tick', { kind: 'uprobe', binaryPath: targetBin, symbol: 'stella_tick' });
      t.go();
      await t.exited;
      await sleep(20);
      r.drainNow();
      r.close();
      expect(await r.read()).toBeNull();
      expect(await r.read()).toBeNull();
      expect(r.tryRead()).toBeUndefined();
    });

    it('close() twice is harmless, and closing the object afterwards too', () => {
      const o = loaded();
      const r = o.ringBuffer('events');
      r.close();
      expect(() => r.close()).not.toThrow();
      expect(r.closed).toBe(true);
      o.close();
      expect(() => r.close()).not.toThrow();
    });

    it("the iterator's return() closes the reader", async () => {
      const r = loaded().ringBuffer('events');
      const it = r[Symbol.asyncIterator]();
      expect(await it.return!()).toEqual({ done: true, value: undefined });
      expect(r.closed).toBe(true);
      expect(await it.next()).toEqual({ done: true, value: undefined });
    });

    it('breaking out of for-await closes the reader', async () => {
      const t = await startTarget('tick', 3);
      const o = loaded('fixture.bpf.o', { target_pid: t.pid });
      const r = o.ringBuffer('events', { latencyMs: 1 });
      o.attach('on_tick', { kind: 'uprobe', binaryPath: targetBin, symbol: 'stella_tick' });
      t.go();
      let batches = 0;
      for await (const b of r) {
        expect(b.count).toBeGreaterThan(0);
        batches++;
        break;
      }
      expect(batches).toBe(1);
      expect(r.closed).toBe(true);
    });

    it('Symbol.asyncDispose closes the reader (await using)', async () => {
      const o = loaded();
      let seen: { closed: boolean } | undefined;
      {
        await using r = o.ringBuffer('events');
        seen = r;
        expect(r.closed).toBe(false);
      }
      expect(seen?.closed).toBe(true);
    });

    it('closing the object closes its readers and unblocks their reads', async () => {
      const o = loaded();
      const r = o.ringBuffer('events');
      const pending = r.read();
      o.close();
      expect(await pending).toBeNull();
      expect(r.closed).toBe(true);
    });

    it("a map that is not a ring buffer is 'RINGBUF'; options are validated", () => {
      const o = loaded();
      expect(() => o.ringBuffer('calls')).toThrow(expect.objectContaining({ code: 'RINGBUF' }));
      expect(() => o.ringBuffer('events', { latencyMs: 0 })).toThrow(RangeError);
      expect(() => o.ringBuffer('events', { maxBatchRecords: 1.5 })).toThrow(RangeError);
      expect(() => o.ringBuffer('events', { highWaterMark: '2' as never })).toThrow(TypeError);
      expect(() => o.ringBuffer('events', { latency: 5 } as never)).toThrow(/unknown option 'latency'/);
    });

    it("before load is 'RINGBUF'", () => {
      const o = BpfObject.open(fixture('fixture.bpf.o'));
      open.push(o);
      expect(() => o.ringBuffer('events')).toThrow(expect.objectContaining({ code: 'RINGBUF' }));
    });
  });

  it('backpressure: draining pauses at the high-water mark, the producer drops, and every record is accounted for', async () => {
    const calls = 200;
    const burst = 256;
    const t = await startTarget('getppid', calls);
    // 64 KiB ring: ~1600 records of 40 bytes (8-byte header + 32) fit.
    const o = loaded('flood.bpf.o', { target_pid: t.pid, burst }, { flood: 64 * 1024 });
    const r = o.ringBuffer('flood', { latencyMs: 1, maxBatchRecords: 64, highWaterMark: 2 });
    o.attach('flood_sys_enter');
    t.go();
    await t.exited;
    await sleep(50);
    // Nobody read: two batches queued, then draining paused.
    expect(r.paused).toBe(true);
    expect(r.stats.paused).toBe(1);
    // (a timer tick can catch the producer mid-burst, so the first batch may be short)
    expect(r.stats.batches).toBe(2);
    expect(r.stats.records).toBeGreaterThan(0);
    expect(r.stats.records).toBeLessThanOrEqual(128);
    // Reading resumes draining; drainAll reads queued batches then drains the ring dry.
    const n = (await drainAll(r)).length;
    expect(r.paused).toBe(false);
    const counters = o.map('counters');
    const produced = sumPerCpu(counters.perCpuValues(counters.lookup(Buffer.from([0, 0, 0, 0]))!));
    const dropped = sumPerCpu(counters.perCpuValues(counters.lookup(Buffer.from([1, 0, 0, 0]))!));
    expect(produced + dropped).toBe(BigInt(calls * burst));
    expect(dropped).toBeGreaterThan(0n);
    expect(BigInt(n)).toBe(produced);
    expect(r.stats.batches).toBeGreaterThanOrEqual(Math.ceil(n / 64));
  });
});
