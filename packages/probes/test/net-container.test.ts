import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canRunBpf, commandUnavailableReason, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildImage,
  type CtrContainer,
  ctrUnavailableReason,
  importImage,
  runCtr,
} from '../../../tools/oci-image/ctr.js';
import type { NetEvent, SockEvent } from '../src/net/index.js';
import { fileKey } from '../src/net/index.js';
import { type Collector, collect, waitFor } from './net-helpers.js';

const ECONNREFUSED = 111;
const PORT = 47123;

/** Dynamically linked: connects to 127.0.0.1:PORT (in the container's own netns) every 100 ms. */
const PROG = `#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
  for (int i = 0; i < 600; i++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(${PORT});
    a.sin_addr.s_addr = htonl(0x7f000001);
    connect(s, (struct sockaddr *)&a, sizeof a);
    close(s);
    usleep(100000);
  }
  return 0;
}
`;

const runnable =
  canRunBpf('net probes in a containerd container') &&
  gate('net probes in a containerd container', ctrUnavailableReason() ?? commandUnavailableReason('gcc'));

describe.runIf(runnable)('libc uprobes inside a real containerd container (kernel)', () => {
  const ns = `stella-net-${process.pid}`;
  let dir: string;
  let image: BuiltImage;
  let ctr: CtrContainer | undefined;
  let c: Collector | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stella-netctr-'));
    const src = join(dir, 'prog.c');
    writeFileSync(src, PROG);
    execFileSync('gcc', ['-O2', '-o', join(dir, 'netprog'), src]);
    // The image carries its own copies of libc and the loader: other files (inodes) than the host's.
    image = buildImage({
      ref: `docker.io/stellaops/netprobe:${process.pid}`,
      outDir: join(dir, 'image'),
      add: [
        { src: join(dir, 'netprog'), dst: '/usr/bin/netprog' },
        { src: '/lib/x86_64-linux-gnu/libc.so.6', dst: '/lib/x86_64-linux-gnu/libc.so.6' },
        { src: '/lib64/ld-linux-x86-64.so.2', dst: '/lib64/ld-linux-x86-64.so.2' },
      ],
    });
    importImage(image, ns);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
    ctr?.stop();
    execFileSync('ctr', ['-n', ns, 'image', 'rm', image.ref], { stdio: 'ignore' });
    // containerd garbage-collects the image's content asynchronously: retry, then give up quietly.
    for (let i = 0; i < 30; i++) {
      if (spawnSync('ctr', ['namespaces', 'rm', ns], { stdio: 'ignore' }).status === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("probes the container's libc through /proc/<pid>/root once, and its connects carry the container's cgroup", async () => {
    c = collect({ probes: ['tcp_state', 'net_connect', 'net_accept'], sockSource: 'libc' });
    ctr = runCtr({ namespace: ns, image, args: ['/usr/bin/netprog'] });
    const pid = ctr.pid;
    let added = 0;
    for (let i = 0; i < 100 && added === 0; i++) {
      added = c.probes.rescan([pid]);
      if (added === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(added).toBe(1);
    const lib = c.probes.libraries().find((l) => l.target.pid === pid);
    expect(lib).toMatchObject({
      target: {
        kind: 'libc',
        path: `/proc/${pid}/root/lib/x86_64-linux-gnu/libc.so.6`,
        mappedPath: '/lib/x86_64-linux-gnu/libc.so.6',
      },
      symbols: ['connect', 'accept', 'accept4'],
    });
    expect(lib?.target.key).not.toBe(fileKey('/lib/x86_64-linux-gnu/libc.so.6'));
    expect(c.probes.rescan([pid])).toBe(0);

    const [conn] = await waitFor(
      c,
      'a connect from the container',
      (e: NetEvent): e is SockEvent => e.type === 'net_connect' && e.header.pid === pid,
    );
    expect(conn).toMatchObject({
      ret: -1,
      errno: ECONNREFUSED,
      address: { family: 'inet', address: '127.0.0.1', port: PORT },
    });
    expect(conn?.header.cgroupId).toBe(ctr.cgroupId);
    expect(conn?.header.comm.toString()).toBe('netprog');
  }, 60_000);
});
