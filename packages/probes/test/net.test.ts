import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canRunBpf, commandUnavailableReason, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupIdOf } from '../../../tools/oci-image/ctr.js';
import type { NetEvent, SockEvent, TcpStateEvent } from '../src/net/index.js';
import { fileKey } from '../src/net/index.js';
import { type Collector, collect, freePort, PYTHON, run, start, stopChild, waitFor } from './net-helpers.js';

const ECONNREFUSED = 111;
/** Fewer uprobes to detach: each detach waits for an RCU grace period. */
const NET_ONLY = ['tcp_state', 'net_connect', 'net_accept'] as const;

/** TCP server: prints its port, accepts one connection, then echoes 7 bytes or resets. */
const SERVER = `
import socket, struct, sys
fam = socket.AF_INET6 if sys.argv[1] == '6' else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.bind((sys.argv[2], 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c, a = s.accept()
c.recv(5)
if sys.argv[3] == 'reset':
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
else:
    c.sendall(b'x' * 7)
c.close()
`;

/** TCP client: connects, sends 5 bytes, reads until EOF or reset. */
const CLIENT = `
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == '6' else socket.AF_INET
c = socket.socket(fam, socket.SOCK_STREAM)
try:
    c.connect((sys.argv[2], int(sys.argv[3])))
except OSError as e:
    print('err', e.errno); sys.exit(0)
print('local', c.getsockname()[1], flush=True)
c.sendall(b'hello')
try:
    while c.recv(100): pass
except ConnectionResetError:
    print('reset')
c.close()
`;

const isSock =
  (type: 'net_connect' | 'net_accept', pid: number) =>
  (e: NetEvent): e is SockEvent =>
    e.type === type && e.header.pid === pid;
const isState =
  (event: TcpStateEvent['event'], port: number, side: 'local' | 'remote' = 'remote') =>
  (e: NetEvent): e is TcpStateEvent =>
    e.type === 'tcp_state' && e.event === event && e.tuple?.[side].port === port;

describe.runIf(canRunBpf('net probes: TCP state and connect/accept')).each(['syscall', 'libc'] as const)(
  'net probes, connect/accept from %s (kernel)',
  (sockSource) => {
    let c: Collector;
    beforeAll(() => {
      gate('net probes: python3', commandUnavailableReason(PYTHON));
      c = collect({ sockSource, probes: NET_ONLY });
    });
    afterAll(async () => {
      await c?.stop();
    });

    it('reports how each probe is attached', () => {
      const st = c.probes.status;
      expect(st.map((s) => s.name)).toEqual(['net_accept', 'net_connect', 'tcp_state']);
      expect(st.find((s) => s.name === 'tcp_state')).toMatchObject({ attached: true, attachType: 'tp_btf' });
      if (sockSource === 'syscall') {
        expect(st.find((s) => s.name === 'net_connect')).toMatchObject({
          attached: true,
          attachType: 'tp_btf',
        });
        expect(c.probes.libraries().filter((l) => l.target.kind === 'libc')).toEqual([]);
      } else {
        expect(st.find((s) => s.name === 'net_connect')).toMatchObject({
          attached: true,
          attachType: 'uprobe',
        });
        const libc = c.probes
          .libraries()
          .find((l) => l.target.kind === 'libc' && l.symbols.includes('connect'));
        expect(libc?.symbols).toEqual(['connect', 'accept', 'accept4']);
      }
    });

    for (const [fam, host] of [
      ['4', '127.0.0.1'],
      ['6', '::1'],
    ] as const) {
      it(`IPv${fam} connect and accept: connect/established/accepted/closed with owners, ports and bytes`, async () => {
        const server = await start(PYTHON, ['-u', '-c', SERVER, fam, host, 'echo'], /^\d+\n/);
        const port = Number(server.out.trim());
        expect(port).toBeGreaterThan(0);
        const client = await run(PYTHON, ['-c', CLIENT, fam, host, String(port)]);
        expect(client.stdout).toMatch(/^local \d+/);
        const lport = Number(/^local (\d+)/.exec(client.stdout)?.[1]);
        const family = fam === '4' ? 'inet' : 'inet6';

        const [conn] = await waitFor(c, 'net_connect', isSock('net_connect', client.pid));
        expect(conn).toMatchObject({
          call: 'connect',
          ret: 0,
          errno: 0,
          address: { family, address: host, port },
        });
        expect(conn?.tuple).toMatchObject({
          family,
          local: { port: lport },
          remote: { address: host, port },
        });
        expect(conn?.header.comm.toString()).toMatch(/^python3/);

        const [acc] = await waitFor(c, 'net_accept', isSock('net_accept', server.pid));
        expect(acc?.call).toBe('accept4');
        expect(acc?.ret).toBeGreaterThanOrEqual(0);
        expect(acc?.fd).toBe(acc?.ret);
        expect(acc?.address).toMatchObject({ family, address: host, port: lport });
        expect(acc?.tuple).toMatchObject({ local: { port }, remote: { port: lport } });

        const [syn] = await waitFor(c, 'tcp_state connect', isState('connect', port));
        expect(syn).toMatchObject({
          attributed: true,
          direction: 'outbound',
          oldState: 'CLOSE',
          newState: 'SYN_SENT',
        });
        expect(syn?.header.pid).toBe(client.pid);
        const [est] = await waitFor(c, 'tcp_state established', isState('established', port));
        expect(est?.header.pid).toBe(client.pid);
        expect(est?.tuple?.local.port).toBe(lport);
        // The passive open completes in softirq: no owner yet, and the record says so.
        const [accd] = await waitFor(c, 'tcp_state accepted', isState('accepted', lport));
        expect(accd).toMatchObject({ attributed: false, direction: 'inbound' });
        expect(accd?.header.pid).toBe(0);
        expect(accd?.tuple?.local.port).toBe(port);

        const closes = await waitFor(
          c,
          'two closes',
          (e): e is TcpStateEvent =>
            e.type === 'tcp_state' &&
            e.newState === 'CLOSE' &&
            (e.tuple?.local.port === lport || e.tuple?.remote.port === lport),
          2,
        );
        const mine = closes.find((e) => e.header.pid === client.pid);
        const theirs = closes.find((e) => e.header.pid === server.pid);
        expect(mine).toMatchObject({ event: 'closed', direction: 'outbound', attributed: true });
        // tcp_sock counters are sequence space: 5 data bytes plus SYN and FIN once acknowledged.
        expect(Number(mine?.bytesAcked)).toBeGreaterThanOrEqual(5);
        expect(Number(mine?.bytesAcked)).toBeLessThanOrEqual(7);
        expect(Number(mine?.bytesReceived)).toBeGreaterThanOrEqual(7);
        expect(Number(mine?.bytesReceived)).toBeLessThanOrEqual(9);
        expect(mine?.durationNs).toBeGreaterThan(0n);
        expect(mine?.tuple?.local.port).toBe(lport);
        // The accepted socket's owner is known from the accept return on.
        expect(theirs).toMatchObject({ direction: 'inbound', attributed: true });
        expect(theirs?.tuple?.local.port).toBe(port);
        stopChild(server);
      });
    }

    it('connection refused: net_connect errno ECONNREFUSED and tcp_state refused', async () => {
      const port = await freePort();
      const client = await run(PYTHON, ['-c', CLIENT, '4', '127.0.0.1', String(port)]);
      expect(client.stdout.trim()).toBe(`err ${ECONNREFUSED}`);
      const [conn] = await waitFor(c, 'refused net_connect', isSock('net_connect', client.pid));
      expect(conn).toMatchObject({ ret: -1, errno: ECONNREFUSED, address: { family: 'inet', port } });
      const [st] = await waitFor(c, 'tcp_state refused', isState('refused', port));
      expect(st).toMatchObject({ oldState: 'SYN_SENT', newState: 'CLOSE', attributed: true });
      expect(st?.header.pid).toBe(client.pid);
    });

    it('reset: a server closing with SO_LINGER 0 gives reset records on both sides', async () => {
      const server = await start(PYTHON, ['-u', '-c', SERVER, '4', '127.0.0.1', 'reset'], /^\d+\n/);
      const port = Number(server.out.trim());
      const client = await run(PYTHON, ['-c', CLIENT, '4', '127.0.0.1', String(port)]);
      expect(client.stdout).toMatch(/reset/);
      const resets = await waitFor(
        c,
        'two resets',
        (e): e is TcpStateEvent =>
          e.type === 'tcp_state' &&
          e.event === 'reset' &&
          (e.tuple?.local.port === port || e.tuple?.remote.port === port),
        2,
      );
      expect(resets.map((r) => r.header.pid).sort()).toEqual([client.pid, server.pid].sort());
      stopChild(server);
    });

    it('AF_UNIX stream connect to a path and to an abstract name', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'stella-unix-'));
      const path = join(dir, 'srv.sock');
      const abstract = `stella-test-${process.pid}-${Date.now()}`;
      const script = `
import socket, sys
for addr in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(addr.replace('@', '\\0', 1))
    except OSError as e:
        print('err', e.errno)
    s.close()
`;
      const srv = await start(
        PYTHON,
        [
          '-u',
          '-c',
          `import socket,sys\nfor a in sys.argv[1:]:\n    s=socket.socket(socket.AF_UNIX);s.bind(a.replace('@','\\0',1));s.listen(4);globals().setdefault('l',[]).append(s)\nprint('ready',flush=True)\nimport time;time.sleep(30)`,
          path,
          `@${abstract}`,
        ],
        /ready/,
      );
      const client = await run(PYTHON, ['-c', script, path, `@${abstract}`]);
      expect(client.stdout).toBe('');
      const recs = await waitFor(
        c,
        'two unix connects',
        (e): e is SockEvent => isSock('net_connect', client.pid)(e) && e.address?.family === 'unix',
        2,
      );
      const byPath = recs.find((r) => r.address?.family === 'unix' && !r.address.abstract);
      const byName = recs.find((r) => r.address?.family === 'unix' && r.address.abstract);
      expect(byPath?.address?.family === 'unix' && byPath.address.path.toString()).toBe(path);
      expect(byName?.address?.family === 'unix' && byName.address.path.toString()).toBe(abstract);
      expect(byPath?.ret).toBe(0);
      expect(byName?.tuple).toBeUndefined();
      stopChild(srv);
      rmSync(dir, { recursive: true, force: true });
    });

    it('counters: seen is never behind the fates, emitted covers what arrived', async () => {
      await new Promise((r) => setTimeout(r, 100));
      const counters = c.probes.counters();
      for (const [name, k] of counters) {
        // Read while attached: an event can be inside a program (seen, no fate yet). The
        // exact balance is checked on the final counters (test/accounting.kernel.test.ts).
        expect(k.seen, name).toBeGreaterThanOrEqual(k.filtered + k.deduplicated + k.emitted + k.lost);
      }
      const arrived = (t: NetEvent['type']) => BigInt(c.events.filter((e) => e.type === t).length);
      expect(counters.get('tcp_state')?.emitted).toBeGreaterThanOrEqual(arrived('tcp_state'));
      expect(counters.get('net_connect')?.emitted).toBeGreaterThanOrEqual(arrived('net_connect'));
      expect(counters.get('tcp_state')?.lost).toBe(0n);
    });
  },
);

describe.runIf(canRunBpf('net probes: filters, dedup and per-inode attach'))(
  'net probes: filters and attach (kernel)',
  () => {
    it('raw_tp fallback (used where tp_btf is missing) loads, says why, and records the same facts', async () => {
      const c = collect({ probes: NET_ONLY, attachTypes: ['raw_tp'] });
      try {
        const st = c.probes.status.find((s) => s.name === 'tcp_state');
        expect(st).toMatchObject({
          attached: true,
          attachType: 'raw_tp',
          reason: 'tp_btf unavailable: using raw_tp',
        });
        expect(c.probes.status.find((s) => s.name === 'net_connect')).toMatchObject({ attachType: 'raw_tp' });
        const port = await freePort();
        const client = await run(PYTHON, ['-c', CLIENT, '4', '127.0.0.1', String(port)]);
        const [conn] = await waitFor(c, 'raw_tp net_connect', isSock('net_connect', client.pid));
        expect(conn).toMatchObject({ ret: -1, errno: ECONNREFUSED, address: { family: 'inet', port } });
        const [st2] = await waitFor(c, 'raw_tp tcp_state refused', isState('refused', port));
        expect(st2?.header.pid).toBe(client.pid);
      } finally {
        await c.stop();
      }
    });

    it('dedup: repeated refused connects to one endpoint from one cgroup are one fact', async () => {
      const c = collect({ dedup: true, probes: NET_ONLY });
      try {
        const port = await freePort();
        const loop = `import socket\nfor i in range(5):\n    s=socket.socket()\n    try: s.connect(('127.0.0.1', ${port}))\n    except OSError: pass\n    s.close()`;
        const client = await run(PYTHON, ['-c', loop]);
        await waitFor(c, 'first connect', isSock('net_connect', client.pid));
        await new Promise((r) => setTimeout(r, 200));
        const connects = c.events
          .filter(isSock('net_connect', client.pid))
          .filter((e) => e.address?.family === 'inet');
        expect(connects).toHaveLength(1);
        const refused = c.events.filter(isState('refused', port));
        expect(refused).toHaveLength(1);
        const k = c.probes.counters().get('net_connect');
        expect(k?.deduplicated).toBeGreaterThanOrEqual(4n);
      } finally {
        await c.stop();
      }
    });

    it('a cgroup allow-list: other cgroups are filtered and counted, listed ones recorded', async () => {
      const port = await freePort();
      const child = spawn(PYTHON, [
        '-c',
        `import socket,sys\nsys.stdin.readline()\ns=socket.socket()\ntry: s.connect(('127.0.0.1', ${port}))\nexcept OSError: pass`,
      ]);
      const own = cgroupIdOf(child.pid ?? 0);
      const other = collect({ probes: NET_ONLY, cgroupIds: [own + 1_000_000n] });
      const mine = collect({ probes: NET_ONLY, cgroupIds: [own] });
      try {
        const exited = new Promise((r) => child.on('close', r));
        child.stdin?.end('go\n');
        await exited;
        const [conn] = await waitFor(mine, 'allowed connect', isSock('net_connect', child.pid ?? 0));
        expect(conn?.header.cgroupId).toBe(own);
        await new Promise((r) => setTimeout(r, 100));
        expect(other.events.filter((e) => e.header.pid === child.pid)).toEqual([]);
        expect(other.probes.counters().get('net_connect')?.filtered).toBeGreaterThan(0n);
      } finally {
        await other.stop();
        await mine.stop();
      }
    });

    it('an excluded pid yields no records and is counted as filtered', async () => {
      const port = await freePort();
      const child = spawn(PYTHON, [
        '-c',
        `import socket,sys\nsys.stdin.readline()\ns=socket.socket()\ntry: s.connect(('127.0.0.1', ${port}))\nexcept OSError: pass`,
      ]);
      const c = collect({ excludePids: [child.pid ?? 0], probes: NET_ONLY });
      try {
        const before = c.probes.counters().get('net_connect')?.filtered ?? 0n;
        const closed = new Promise((r) => child.on('close', r));
        child.stdin?.end('go\n');
        await closed;
        await new Promise((r) => setTimeout(r, 200));
        expect(c.events.filter((e) => e.header.pid === child.pid)).toEqual([]);
        expect(c.probes.counters().get('net_connect')?.filtered).toBeGreaterThan(before);
      } finally {
        await c.stop();
      }
    });

    it('a chroot with its own copy of libc gets its own uprobes (per device+inode) and its calls are seen', async (ctx) => {
      if (!gate('net probes: chroot test needs gcc', commandUnavailableReason('gcc'))) return ctx.skip();
      const { dir, root, libc } = makeChroot();
      try {
        expect(fileKey(libc)).not.toBe(fileKey('/lib/x86_64-linux-gnu/libc.so.6'));
        const c = collect({ probes: NET_ONLY, sockSource: 'libc', rescanOnExec: false });
        try {
          const port = await freePort();
          const child = spawn('chroot', [root, '/prog', String(port)], {
            stdio: ['pipe', 'pipe', 'inherit'],
          });
          const pid = child.pid ?? 0;
          // Wait until the dynamic loader mapped the chroot's libc.
          for (let i = 0; i < 200 && !readMaps(pid).includes(libc); i++)
            await new Promise((r) => setTimeout(r, 10));
          expect(c.probes.rescan([pid])).toBe(1);
          expect(c.probes.rescan([pid])).toBe(0); // the same file is never probed twice
          const entry = c.probes.libraries().find((l) => l.target.key === fileKey(libc));
          expect(entry).toMatchObject({
            target: { kind: 'libc', pid },
            symbols: ['connect', 'accept', 'accept4'],
          });
          const exited = new Promise((r) => child.on('close', r));
          child.stdin?.end('x');
          await exited;
          const [conn] = await waitFor(c, 'chrooted connect', isSock('net_connect', pid));
          expect(conn).toMatchObject({ ret: -1, errno: ECONNREFUSED, address: { family: 'inet', port } });
          expect(conn?.header.comm.toString()).toBe('prog');
        } finally {
          await c.stop();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a process exec-ing with a libc file never seen before is probed without a manual scan (exec hint)', async (ctx) => {
      if (!gate('net probes: chroot test needs gcc', commandUnavailableReason('gcc'))) return ctx.skip();
      const { dir, root, libc } = makeChroot();
      const c = collect({ probes: NET_ONLY, sockSource: 'libc', rescanIntervalMs: 0 });
      try {
        const port = await freePort();
        const child = spawn('chroot', [root, '/prog', String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
        const pid = child.pid ?? 0;
        let entry: ReturnType<typeof c.probes.libraries>[number] | undefined;
        for (let i = 0; i < 100 && !entry; i++) {
          entry = c.probes.libraries().find((l) => l.target.key === fileKey(libc));
          if (!entry) await new Promise((r) => setTimeout(r, 20));
        }
        expect(entry).toMatchObject({ target: { kind: 'libc', pid } });
        const exited = new Promise((r) => child.on('close', r));
        child.stdin?.end('x');
        await exited;
        await waitFor(c, 'connect after the exec-triggered scan', isSock('net_connect', pid));
      } finally {
        await c.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

/** A chroot with a dynamically linked /prog (connects once a byte arrives on stdin) and its own libc copy. */
function makeChroot(): { dir: string; root: string; libc: string } {
  const dir = mkdtempSync(join(tmpdir(), 'stella-chroot-'));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'lib/x86_64-linux-gnu'), { recursive: true });
  mkdirSync(join(root, 'lib64'), { recursive: true });
  const src = join(dir, 'prog.c');
  writeFileSync(
    src,
    `#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  char b[4];
  if (read(0, b, 1) < 0) return 2; /* wait until the test has probed our libc */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[1]));
  a.sin_addr.s_addr = htonl(0x7f000001);
  printf("%d\\n", connect(s, (struct sockaddr *)&a, sizeof a));
  return 0;
}
`,
  );
  execFileSync('gcc', ['-O2', '-o', join(root, 'prog'), src]);
  const libc = join(root, 'lib/x86_64-linux-gnu/libc.so.6');
  copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', libc);
  copyFileSync('/lib64/ld-linux-x86-64.so.2', join(root, 'lib64/ld-linux-x86-64.so.2'));
  return { dir, root, libc };
}

function readMaps(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return '';
  }
}
