import type { ContainerField } from '@stellaops/enrich';
import { encodeRecord, u64Halves } from '@stellaops/ndjson';
import { decodeEvent, KIND, LAYOUT } from '@stellaops/probes';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { FUSED_FILE_OPEN, type FusedEnv } from './fused.js';
import { toRecord } from './records.js';

// CPU-bound generated runs: room for a loaded CI machine.
vi.setConfig({ testTimeout: 120_000 });

const H = LAYOUT.stella_event_header.members;
const F = LAYOUT.fe_file_open_event.members;
const BASE = F.path[0];

const containers: (ContainerField | undefined)[] = [
  undefined,
  {
    id: 'a'.repeat(64),
    runtime: 'containerd',
    image_ref: 'docker.io/library/busybox:1.36',
    image_manifest_digest: `sha256:${'1'.repeat(64)}`,
    image_config_digest: `sha256:${'2'.repeat(64)}`,
    k8s: { pod: 'api-7d9f8b6c5-x2x4z', namespace: 'payments', container: 'api' },
    cgroup_path: '/kubepods/pod1/abc',
    status: 'resolved',
  },
  { cgroup_path: { b64: '/w==' } as unknown as string, status: 'unknown' },
];

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.constantFrom(0n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 64n - 1n),
  fc.bigInt({ min: 0n, max: 2n ** 40n }),
);
const printable = fc.integer({ min: 0x20, max: 0x7e });
/** Mostly printable ASCII; sometimes a byte JSON escapes, a NUL, or non-ASCII. */
const byte = fc.oneof(
  { weight: 30, arbitrary: printable },
  { weight: 1, arbitrary: fc.constantFrom(0x22, 0x5c, 0x0a, 0x00, 0x7f, 0xc3, 0xa9, 0xff) },
);
const pathArb = fc.oneof(
  { weight: 20, arbitrary: fc.array(byte, { maxLength: 80 }) },
  { weight: 1, arbitrary: fc.array(printable, { minLength: 4090, maxLength: 4100 }) },
);
const fileOpenArb = fc.record({
  mono: u64,
  cgroup: u64,
  offset: u64,
  seq: u64,
  lsm: fc.boolean(),
  pid: fc.nat({ max: 0xffffffff }),
  tid: fc.nat({ max: 0xffffffff }),
  ppid: fc.nat({ max: 0xffffffff }),
  uid: fc.nat({ max: 0xffffffff }),
  gid: fc.nat({ max: 0xffffffff }),
  comm: fc.array(byte, { maxLength: 16 }),
  ret: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  flags: fc.nat({ max: 0xffffffff }),
  mode: fc.nat({ max: 0xffffffff }),
  dirfd: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  syscall: fc.nat({ max: 6 }),
  resolution: fc.nat({ max: 4 }),
  pathFlags: fc.nat({ max: 3 }),
  path: pathArb,
  container: fc.nat({ max: containers.length - 1 }),
  host: fc.stringMatching(/^[a-z0-9-]{1,40}$/),
});
type Gen = typeof fileOpenArb extends fc.Arbitrary<infer T> ? T : never;

/** The ring record of a generated event, as bpf/fileexec.bpf.c writes it. */
function ringRecord(g: Gen): Buffer {
  const b = Buffer.alloc(BASE + g.path.length);
  b.writeBigUInt64LE(g.mono, H.mono_ns[0]);
  b.writeBigUInt64LE(g.cgroup, H.cgroup_id[0]);
  b.writeUInt32LE(g.lsm ? KIND.FILE_OPEN_LSM : KIND.FILE_OPEN, H.kind[0]);
  b.writeUInt32LE(g.pid, H.pid[0]);
  b.writeUInt32LE(g.tid, H.tid[0]);
  b.writeUInt32LE(g.ppid, H.ppid[0]);
  b.writeUInt32LE(g.uid, H.uid[0]);
  b.writeUInt32LE(g.gid, H.gid[0]);
  Buffer.from(g.comm).copy(b, H.comm[0]);
  b.writeInt32LE(g.ret, F.ret[0]);
  b.writeUInt32LE(g.flags, F.flags[0]);
  b.writeUInt32LE(g.mode, F.mode[0]);
  b.writeInt32LE(g.dirfd, F.dirfd[0]);
  b.writeUInt32LE(g.path.length, F.path_len[0]);
  b.writeUInt16LE(g.syscall, F.syscall[0]);
  b.writeUInt8(g.resolution, F.resolution[0]);
  b.writeUInt8(g.pathFlags, F.path_flags[0]);
  Buffer.from(g.path).copy(b, BASE);
  return b;
}

/** The generic path: decode → toRecord → encodeRecord; undefined when any step refuses. */
function generic(rec: Buffer, g: Gen): string | undefined {
  try {
    const event = decodeEvent(rec);
    const r = toRecord(
      { source: 'fileexec', event },
      { seq: g.seq, wallNs: g.mono + g.offset, hostId: g.host, container: containers[g.container] },
    );
    return r && encodeRecord(r);
  } catch {
    return undefined;
  }
}

function fused(rec: Buffer, g: Gen, at = 0): string | undefined {
  const [seqHi, seqLo] = u64Halves(g.seq);
  const [offHi, offLo] = u64Halves(g.offset);
  const c = containers[g.container];
  const env: FusedEnv = {
    seqHi,
    seqLo,
    offHi,
    offLo,
    host: FUSED_FILE_OPEN.fragment('host_id', g.host),
    container: c && FUSED_FILE_OPEN.fragment('container', c),
  };
  // The record inside a larger batch buffer, written after other lines.
  const batch = Buffer.concat([Buffer.alloc(7, 0xee), rec]);
  const out = Buffer.alloc(at + FUSED_FILE_OPEN.room + env.host.length + (env.container?.length ?? 0));
  const end = FUSED_FILE_OPEN.write(batch, 7, env, out, at);
  return end < 0 ? undefined : out.toString('utf8', at, end);
}

/** What the fused path must take: printable ASCII byte strings within their limits, known enums, no overflow. */
function fusable(g: Gen): boolean {
  const ascii = (b: number[]) => b.every((c) => c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c);
  const nul = g.comm.indexOf(0);
  const comm = nul < 0 ? g.comm : g.comm.slice(0, nul);
  return (
    ascii(comm) &&
    comm.length <= 15 &&
    ascii(g.path) &&
    g.path.length <= 4096 &&
    g.syscall >= 1 &&
    g.mono + g.offset < 2n ** 64n
  );
}

describe('fused file_open encoder', () => {
  it('writes exactly encodeRecord(toRecord(decode(x))) for generated ring records, or leaves them to it', () => {
    let taken = 0;
    fc.assert(
      fc.property(fileOpenArb, fc.nat(64), (g, at) => {
        const rec = ringRecord(g);
        const f = fused(rec, g, at);
        const want = generic(rec, g);
        if (f !== undefined) {
          taken++;
          expect(f).toBe(want);
        }
        // Never refused where it must write: the generic path is the exception.
        expect(f !== undefined).toBe(fusable(g));
      }),
      { numRuns: 3000 },
    );
    expect(taken).toBeGreaterThan(1000);
  });

  it('refuses nothing the generic path writes as plain ASCII, and never writes what it refuses', () => {
    const g: Gen = {
      mono: 5_000_000_000n,
      cgroup: 12884n,
      offset: 1_764_100_000_000_000_000n,
      seq: 41n,
      lsm: false,
      pid: 4000,
      tid: 4001,
      ppid: 1,
      uid: 0,
      gid: 0,
      comm: [...Buffer.from('fsops')],
      ret: 3,
      flags: 0,
      mode: 0,
      dirfd: -100,
      syscall: 2,
      resolution: 0,
      pathFlags: 0,
      path: [...Buffer.from('/tmp/f1')],
      container: 1,
      host: 'host-7f3a9c2e',
    };
    const line = fused(ringRecord(g), g);
    expect(line).toBe(generic(ringRecord(g), g));
    expect(line).toContain('"path":"/tmp/f1","path_resolution":"absolute","path_truncated":false');
    // A byte JSON must escape, a non-UTF-8 byte, an unknown syscall: the generic path's.
    for (const path of ['/tmp/"q"', '/tmp/\n']) {
      const h = { ...g, path: [...Buffer.from(path)] };
      expect(fused(ringRecord(h), h)).toBeUndefined();
      expect(generic(ringRecord(h), h)).toContain('"path":');
    }
    const unknown = { ...g, syscall: 0 };
    expect(fused(ringRecord(unknown), unknown)).toBeUndefined();
  });

  it('validates its fragments once, when made', () => {
    expect(() => FUSED_FILE_OPEN.fragment('host_id', '')).toThrow(/host_id/);
    expect(() => FUSED_FILE_OPEN.fragment('container', { status: 'maybe' })).toThrow();
    expect(FUSED_FILE_OPEN.fragment('host_id', 'h"1').toString()).toBe('"h\\"1"');
  });
});
