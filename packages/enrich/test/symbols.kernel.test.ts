import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { SymbolResolver } from '@stellaops/enrich';
import { canRunBpf, commandUnavailableReason, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @stellaops/probes does not export its net probes from its index yet; this
// cross-package test reaches them by path until it does.
import type { NetEvent, SockEvent } from '../../probes/src/net/index.js';
import { openNetProbes } from '../../probes/src/net/runtime.js';
import { buildConnectPrograms, type ConnectPrograms } from './fixtures/build.js';
import { waitFor } from './helpers.js';

// Kernel to symbol: the libc connect uprobe captures the user stack of a real
// process; the symbolizer must name the C function that called connect().

const runs =
  canRunBpf('user stack symbolization (net_connect uprobe)') &&
  gate('user stack symbolization', commandUnavailableReason('cc'));

describe.runIf(runs)("a net_connect record's user stack, symbolized", () => {
  let progs: ConnectPrograms;
  let server: Server;
  let port: number;
  let probes: ReturnType<typeof openNetProbes>;
  const events: NetEvent[] = [];
  let pump: Promise<void>;
  let child: ChildProcessWithoutNullStreams | undefined;

  beforeAll(async () => {
    progs = buildConnectPrograms();
    server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
    // The libc uprobes: from the syscall, frame-pointer unwinding skips the caller of libc's
    // connect wrapper (libc keeps no frame pointer), so the named function would be missing.
    probes = openNetProbes({ probes: ['net_connect'], userStack: true, dedup: false, sockSource: 'libc' });
    pump = (async () => {
      for await (const batch of probes) events.push(...batch);
    })();
  }, 60_000);

  afterAll(async () => {
    child?.kill('SIGKILL');
    await probes?.close();
    await pump?.catch(() => undefined);
    server?.close();
    if (progs) rmSync(progs.dir, { recursive: true, force: true });
  });

  it('names stella_named_connect in the stack of its connect() record', async () => {
    const c = spawn(progs.pie, [String(port)]);
    child = c;
    let out = '';
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the program to connect', () => (/^fd \d+$/m.test(out) ? true : undefined));
    const ev = (await waitFor('net_connect of the program', () =>
      events.find((e) => e.type === 'net_connect' && e.header.pid === c.pid),
    )) as SockEvent;
    expect(ev.stack.length).toBeGreaterThan(1);
    const frames = new SymbolResolver().resolve(c.pid!, ev.stack);
    const named = frames.find((f) => f.symbol === 'stella_named_connect');
    expect(
      named,
      JSON.stringify(frames, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)),
    ).toMatchObject({
      module: progs.pie,
      offsetKind: 'vaddr',
    });
    expect(named!.buildId).toMatch(/^[0-9a-f]{40}$/);
    // The record is made when connect() returns (uretprobe): the innermost
    // frame is the return address in its caller, the outer ones walk up to main.
    expect(frames[0]!.symbol).toBe('stella_named_connect');
    expect(frames.map((f) => f.symbol)).toContain('main');
  });
});
