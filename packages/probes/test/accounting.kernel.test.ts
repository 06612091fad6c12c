import { execFileSync, spawn } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { numPossibleCpus } from '@stellaops/bpf-loader';
import type { ExecEvent, NetEvent, ProbeEvent, SockEvent } from '@stellaops/probes';
import { openProbeSet } from '@stellaops/probes';
import { canRunBpf, commandUnavailableReason, gate, scaled } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFsops, Collector, runInCgroup, TestCgroup } from './helpers/harness.js';
import { collect, PYTHON, waitFor } from './net-helpers.js';

// Real kernel: the exec dedup fact, the kernel's own `seen`, and the dedup
// table's failure count, each against what a test process did.

const runs =
  canRunBpf('probes accounting kernel tests') &&
  gate('probes accounting kernel tests', commandUnavailableReason('cc')) &&
  gate('probes accounting kernel tests', commandUnavailableReason('bpftool'));

const inCgroup =
  (id: bigint) =>
  (e: ProbeEvent): e is ExecEvent =>
    e.kind === 'exec' && e.cgroupId === id;
const argvOf = (e: ExecEvent) => e.argv.map((a) => a.toString());

/** Ids of the BPF maps this process holds open (from /proc/self/fdinfo). */
function ownMapIds(): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:bpf-map') continue;
      const m = /^map_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

describe.runIf(runs)('exec dedup: the fact is the command line, not the file', () => {
  let bin: string;

  beforeAll(() => {
    bin = buildFsops();
  });

  afterAll(() => {
    if (bin) rmSync(dirname(bin), { recursive: true, force: true });
  });

  it('two runs of one binary with other arguments both appear; the same argv again is deduplicated; /proc/self/exe applets are told apart by argv[0]', async () => {
    const cg = new TestCgroup('stella-probes-execdedup');
    const set = openProbeSet({ probes: ['exec'], filters: { cgroupIds: [cg.id] } });
    const c = new Collector(set);
    try {
      const before = set.counters().get('exec')!;
      // One at a time, so the repeat finds the first one's key in the table.
      for (const argv of [
        ['execve', bin, 'fsops', 'exit', '0'],
        ['execve', bin, 'fsops', 'exit', '0', 'other-args'],
        ['execve', bin, 'fsops', 'exit', '0'],
        ['execve', '/proc/self/exe', 'applet-a', 'exit', '0'],
        ['execve', '/proc/self/exe', 'applet-b', 'exit', '0'],
      ]) {
        const [r] = await runInCgroup(bin, cg, [argv]);
        expect(r!.status, argv.join(' ')).toBe(0);
      }
      const m = await c.waitFor(inCgroup(cg.id), (x) => x.length >= 4);
      const after = set.counters().get('exec')!;
      expect(
        m
          .filter((e) => e.filename.toString() === bin)
          .map(argvOf)
          .sort(),
      ).toEqual([
        ['fsops', 'exit', '0'],
        ['fsops', 'exit', '0', 'other-args'],
      ]);
      expect(
        m
          .filter((e) => e.filename.toString() === '/proc/self/exe')
          .map((e) => argvOf(e)[0])
          .sort(),
      ).toEqual(['applet-a', 'applet-b']);
      expect(m).toHaveLength(4);
      // The repeat of `fsops exit 0` is the only exec of the cgroup that was folded.
      expect(after.deduplicated - before.deduplicated).toBeGreaterThanOrEqual(1n);
      expect(after.emitted - before.emitted).toBe(4n);
    } finally {
      await c.close();
      cg.remove();
    }
  });
});

describe.runIf(runs && gate('busybox applets', commandUnavailableReason('busybox')))(
  'exec dedup: busybox applets',
  () => {
    it('every applet busybox sh runs through /proc/self/exe is recorded, not only the first', async () => {
      const bin = buildFsops();
      const cg = new TestCgroup('stella-probes-busybox');
      const set = openProbeSet({ probes: ['exec'], filters: { cgroupIds: [cg.id] } });
      const c = new Collector(set);
      try {
        const script =
          'cat /dev/null; cat /etc/hostname >/dev/null; sleep 0; wc -c /dev/null >/dev/null; true';
        const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
        const [r] = await runInCgroup(bin, cg, [['execve', busybox, 'busybox', 'sh', '-c', script]]);
        expect(r!.status).toBe(0);
        const applets = (m: ExecEvent[]) =>
          m.filter((e) => e.filename.toString() === '/proc/self/exe').map((e) => argvOf(e).join(' '));
        const m = await c.waitFor(inCgroup(cg.id), (x) => applets(x).length >= 4);
        expect(applets(m).sort()).toEqual([
          'cat /dev/null',
          'cat /etc/hostname',
          'sleep 0',
          'wc -c /dev/null',
        ]);
      } finally {
        await c.close();
        cg.remove();
        rmSync(dirname(bin), { recursive: true, force: true });
      }
    });
  },
);

describe.runIf(runs)('kernel counters: seen is counted apart from the fates', () => {
  let bin: string;
  let dir: string;

  beforeAll(() => {
    bin = buildFsops();
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'stella-probes-acct-')));
    writeFileSync(join(dir, 'f'), 'x');
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (bin) rmSync(dirname(bin), { recursive: true, force: true });
  });

  it('after close(), finalCounters balance exactly, and seen exceeds filtered by the opens the workload made', async () => {
    const cg = new TestCgroup('stella-probes-final');
    const N = 3000;
    const set = openProbeSet({ probes: ['file_open'], filters: { cgroupIds: [cg.id] } });
    const c = new Collector(set);
    try {
      expect(set.finalCounters).toBeUndefined();
      const [r] = await runInCgroup(bin, cg, [['storm', String(N), join(dir, 'f'), '1']]);
      expect(r!.status).toBe(0);
      expect(Number(r!.out.split(' ')[0])).toBe(N); // the workload's own count
    } finally {
      await c.close();
      cg.remove();
    }
    const f = set.finalCounters!.get('file_open')!;
    expect(f.seen).toBe(f.filtered + f.deduplicated + f.emitted + f.lost);
    // Only the workload's opens pass the cgroup filter: one fact, the rest folded into it.
    expect(f.seen - f.filtered).toBe(BigInt(N));
    expect(f.deduplicated + f.emitted + f.lost).toBe(BigInt(N));
    expect(f.emitted).toBe(BigInt(c.events.filter((e) => e.cgroupId === cg.id).length));
  });

  it('dedupStats().failures is what the kernel map holds, not a constant 0', async () => {
    const had = ownMapIds();
    // No such cgroup: nothing passes the filter, so the kernel inserts nothing meanwhile.
    const set = openProbeSet({ probes: ['file_open'], filters: { cgroupIds: [1n << 62n] } });
    try {
      const fresh = [...ownMapIds()].filter((id) => !had.has(id));
      const statsId = fresh.find((id) => {
        const info = JSON.parse(
          execFileSync('bpftool', ['-j', 'map', 'show', 'id', String(id)], { encoding: 'utf8' }),
        );
        return info.name === 'dedup_stats';
      });
      expect(statsId, `dedup_stats among the new maps ${fresh.join(',')}`).toBeDefined();
      // struct stella_dedup_stats { inserts, deletes, races, failures }; bpftool writes it on every CPU.
      const value = Buffer.alloc(32);
      value.writeBigUInt64LE(9n, 0);
      value.writeBigUInt64LE(2n, 8);
      value.writeBigUInt64LE(1n, 16);
      value.writeBigUInt64LE(5n, 24);
      execFileSync('bpftool', [
        'map',
        'update',
        'id',
        String(statsId),
        'key',
        '0',
        '0',
        '0',
        '0',
        'value',
        ...[...value].map(String),
      ]);
      const cpus = BigInt(numPossibleCpus());
      const d = set.dedupStats();
      expect([d.inserts, d.deletes, d.races, d.failures]).toEqual([
        9n * cpus,
        2n * cpus,
        1n * cpus,
        5n * cpus,
      ]);
    } finally {
      await set.close();
    }
  });
});

/** What a user reads off a connect record: who connected where. */
function connectSeen(e: SockEvent): string {
  const a = e.address;
  const to =
    a?.family === 'inet' || a?.family === 'inet6'
      ? `${a.address}:${a.port}`
      : a?.family === 'unix'
        ? `unix:${a.path.toString()}`
        : (a?.family ?? 'no address');
  return `${e.header.pid} ${e.header.comm.toString()} ${to}`;
}

describe.runIf(runs && gate('net counters: python3', commandUnavailableReason(PYTHON)))(
  'net counters: the final read balances',
  () => {
    it('after close(), the net probes keep finalCounters that balance exactly and count the connects made', async () => {
      const cg = new TestCgroup('stella-probes-netfinal');
      const c = collect({ probes: ['tcp_state', 'net_connect'], cgroupIds: [cg.id], hostLibraries: false });
      const isConnect = (e: NetEvent): e is SockEvent => e.type === 'net_connect';
      const N = 20;
      let pid = 0;
      try {
        expect(c.probes.finalCounters).toBeUndefined();
        // Waits until moved into the cgroup, then N connects to a closed port: refused at once.
        const script = `import socket, sys\nsys.stdin.read(1)\nfor _ in range(${N}):\n  s = socket.socket()\n  try: s.connect(('127.0.0.1', 9))\n  except OSError: pass\n  s.close()\nprint(${N})`;
        // The interpreter itself, not `python3` from PATH: a pyenv shim there runs some
        // 16 bash processes inside the cgroup, each of which connects to the nscd socket
        // twice when SHELL is unset (bash looks the user up). -I -S: no site module, which
        // looks the user up too when HOME is unset. The cgroup holds the workload alone.
        const child = spawn(PYTHON, ['-I', '-S', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
        });
        const done = new Promise((resolve) => child.on('close', resolve));
        pid = child.pid!;
        cg.add(pid);
        child.stdin!.end('g');
        expect(await done).toBe(0);
        expect(out.trim()).toBe(String(N));
        // close() stops the reader: first take delivery of every record the kernel emitted.
        const emitted = Number(c.probes.counters().get('net_connect')!.emitted);
        await waitFor(c, `${emitted} connect records`, isConnect, emitted, scaled(15_000));
        await c.stop();
      } finally {
        await c.stop();
        cg.remove();
      }
      const final = c.probes.finalCounters!;
      for (const [name, f] of final) {
        expect(f.seen, name).toBe(f.filtered + f.deduplicated + f.emitted + f.lost);
      }
      // What a user reads: the workload's N connects, each once and to where it connected,
      // and no record of any other process.
      expect(c.events.filter(isConnect).map(connectSeen)).toEqual(
        Array.from({ length: N }, () => `${pid} python3 127.0.0.1:9`),
      );
      // The kernel's own counts say the same: N connects passed the cgroup filter.
      const connect = final.get('net_connect')!;
      expect(connect.seen - connect.filtered).toBe(BigInt(N));
      expect(connect.emitted + connect.lost).toBe(BigInt(N));
    });
  },
);
