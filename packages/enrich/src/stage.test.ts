import { describe, expect, it } from 'vitest';
import { EnrichError } from './errors.js';
import { type ContainerResolver, EnrichmentStage } from './stage.js';
import { ContainerTracker, type Resolution } from './tracker.js';

// Stand-in resolver: the stage's ordering/timeout logic is what is tested here;
// the real ContainerTracker is exercised against real runtimes in test/.
class StandInResolver implements ContainerResolver {
  known = new Map<bigint, Resolution>();
  delays = new Map<bigint, number>();
  calls = 0;
  peek(id: bigint): Resolution | undefined {
    return this.known.get(id);
  }
  async resolveDetailed(id: bigint): Promise<Resolution> {
    this.calls++;
    await new Promise((r) => setTimeout(r, this.delays.get(id) ?? 0));
    const r: Resolution = {
      status: 'resolved',
      cgroupPath: `/ns/c${id}`,
      container: { id: `c${id}`, runtime: 'containerd', cgroupPath: `/ns/c${id}` },
    };
    this.known.set(id, r);
    return r;
  }
  cgroupPathOf(id: bigint): string {
    return `/ns/c${id}`;
  }
}

async function* batches<T>(...bs: T[][]): AsyncGenerator<T[]> {
  for (const b of bs) yield b;
}

async function collect<T>(it: AsyncIterable<T[]>): Promise<T[][]> {
  const out: T[][] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('EnrichmentStage', () => {
  it('attaches resolutions, keeps batch order, and resolves each cgroup once', async () => {
    const r = new StandInResolver();
    r.delays.set(1n, 50);
    const stage = new EnrichmentStage(r, { waitMs: 1000 });
    const out = await collect(
      stage.run(
        batches(
          [{ cgroupId: 1n, n: 1 }],
          [
            { cgroupId: 2n, n: 2 },
            { cgroupId: 1n, n: 3 },
          ],
          [{ cgroupId: 1n, n: 4 }],
        ),
      ),
    );
    expect(out.flat().map((x) => x.n)).toEqual([1, 2, 3, 4]);
    expect(
      out.flat().map((x) => (x.enrichment.status === 'resolved' ? x.enrichment.container.id : '-')),
    ).toEqual(['c1', 'c2', 'c1', 'c1']);
    expect(r.calls).toBe(2);
    expect(stage.stats).toMatchObject({
      batches: 3,
      items: 4,
      resolved: 4,
      unknown: 0,
      waited: 2,
      timedOut: 0,
    });
  });

  it('sends records out unknown, with the cgroup path, after the bounded wait', async () => {
    const r = new StandInResolver();
    r.delays.set(7n, 400);
    const stage = new EnrichmentStage(r, { waitMs: 100 });
    const t0 = performance.now();
    const out = await collect(stage.run(batches([{ cgroupId: 7n }])));
    const item = out[0]![0]!;
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(95);
    expect(waited).toBeLessThan(350);
    expect(item.enrichment).toEqual({
      status: 'unknown',
      cgroupPath: '/ns/c7',
      reason: 'container runtime did not answer within 100 ms',
    });
    expect(stage.stats.timedOut).toBe(1);
  });

  it('keeps reading upstream while a batch waits (never blocks the drain)', async () => {
    const r = new StandInResolver();
    r.delays.set(1n, 300);
    const stage = new EnrichmentStage(r, { waitMs: 1000 });
    let produced = 0;
    async function* source() {
      for (let i = 0; i < 50; i++) {
        produced++;
        yield [{ cgroupId: i === 0 ? 1n : 2n }];
      }
    }
    const it = stage.run(source());
    const first = it.next();
    await new Promise((res) => setTimeout(res, 100));
    expect(produced).toBe(50); // all read while the head waits on cgroup 1
    expect((await first).value?.[0]?.enrichment.status).toBe('resolved');
    await it.return(undefined);
  });

  it('releases the oldest batch early when too many records are held', async () => {
    const r = new StandInResolver();
    r.delays.set(1n, 500);
    const stage = new EnrichmentStage(r, { waitMs: 1000, maxPendingItems: 3 });
    const out = await collect(
      stage.run(batches([{ cgroupId: 1n }], [{ cgroupId: 1n }], [{ cgroupId: 1n }], [{ cgroupId: 1n }])),
    );
    expect(out.flat()[0]!.enrichment.status).toBe('unknown');
    expect(stage.stats.forcedFlushes).toBeGreaterThan(0);
    expect(out.flat()).toHaveLength(4);
  });

  it('closes the source when the consumer stops', async () => {
    const r = new StandInResolver();
    let closed = false;
    async function* source() {
      try {
        for (;;) {
          yield [{ cgroupId: 1n }];
          await new Promise((res) => setTimeout(res, 5));
        }
      } finally {
        closed = true;
      }
    }
    for await (const _ of new EnrichmentStage(r).run(source())) break;
    await new Promise((res) => setTimeout(res, 20));
    expect(closed).toBe(true);
  });

  it('rethrows a source error after the batches read before it', async () => {
    const r = new StandInResolver();
    async function* source() {
      yield [{ cgroupId: 1n }];
      throw new Error('ring closed');
    }
    const seen: number[] = [];
    await expect(async () => {
      for await (const b of new EnrichmentStage(r).run(source())) seen.push(b.length);
    }).rejects.toThrow('ring closed');
    expect(seen).toEqual([1]);
  });

  it('sends records out unknown, never throwing, when the tracker is closed under it', async () => {
    // The real tracker, closed while records are still in flight (a stop).
    const tracker = await ContainerTracker.create({
      containerd: false,
      docker: false,
      podman: false,
      crio: false,
    });
    const stage = new EnrichmentStage(tracker, { waitMs: 50 });
    let n = 0;
    async function* source() {
      yield [{ cgroupId: 11n, pid: process.pid }];
      tracker.close();
      yield [{ cgroupId: 12n, pid: process.pid }];
      yield [{ cgroupId: 11n }];
    }
    for await (const b of stage.run(source())) {
      for (const x of b) {
        n++;
        if (n > 1) {
          expect(x.enrichment).toMatchObject({
            status: 'unknown',
            reason: expect.stringMatching(/used after close/),
          });
        }
      }
    }
    expect(n).toBe(3);
  });

  it('stops reading its source while a consumer that does not pull holds maxPendingItems', async () => {
    const r = new StandInResolver();
    let produced = 0;
    async function* source() {
      for (;;) {
        await new Promise((res) => setImmediate(res));
        produced += 10;
        yield Array.from({ length: 10 }, () => ({ cgroupId: 1n }));
      }
    }
    const it = new EnrichmentStage(r, { maxPendingItems: 100 }).run(source());
    await it.next(); // one batch taken, then the consumer stalls (a full disk downstream)
    await new Promise((res) => setTimeout(res, 200));
    expect(produced).toBeLessThanOrEqual(100 + 10 + 10 + 10);
    await it.return(undefined);
  });

  it('never gives one process of the v2 root the answer resolved for another (hybrid hosts)', async () => {
    // As ContainerTracker on a hybrid host: every host process has the v2 root's id 1 and is
    // resolved through its own v1 path; here pid 100 is runc init in a podman container's v1
    // cgroups, pid 200 a host process writing files. Both are first seen in one batch.
    const perPid: ContainerResolver = {
      peek: () => undefined,
      perProcess: (id) => id === 1n,
      async resolveDetailed(id, pid): Promise<Resolution> {
        await new Promise((res) => setTimeout(res, 5));
        if (id === 1n && pid === 100) {
          const c = { id: 'c1', runtime: 'podman' as const, cgroupPath: '/libpod_parent/libpod-c1' };
          return { status: 'resolved', cgroupPath: c.cgroupPath, container: c };
        }
        return { status: 'host', cgroupPath: '/process_api/host' };
      },
    };
    const out = (
      await collect(
        new EnrichmentStage(perPid).run(
          batches([
            { cgroupId: 1n, pid: 100 },
            { cgroupId: 1n, pid: 200 },
            { cgroupId: 1n, pid: 200 },
            { cgroupId: 1n, pid: 100 },
          ]),
        ),
      )
    ).flat();
    expect(out.map((x) => x.enrichment.status)).toEqual(['resolved', 'host', 'host', 'resolved']);
  });

  it('rejects bad options with a typed error', () => {
    expect(() => new EnrichmentStage(new StandInResolver(), { waitMs: -1 })).toThrow(EnrichError);
    expect(() => new EnrichmentStage(new StandInResolver(), { maxPendingItems: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });
});
