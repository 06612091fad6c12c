import { readdirSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { canRunBpf } from '@stellaops/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { addonPath, ensureFixtures, fixture } from './helpers.js';

/** This process's BPF fds by kind (prog, map, link), from /proc/self/fd. */
function bpfFds(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^anon_inode:bpf[-_](prog|map|link)/.exec(target);
    if (m) out[m[1]!] = (out[m[1]!] ?? 0) + 1;
  }
  return out;
}

// The worker uses the raw addon, and a worker environment can be torn down
// while the process lives, so leaked fds would show in /proc/self/fd. Note:
// Node also runs ObjectWrap finalizers at environment teardown, so this test
// checks the user-visible outcome (nothing left attached or open), not which
// of the two mechanisms (napi_add_env_cleanup_hook first, finalizers after)
// did the closing.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const mod = { exports: {} };
process.dlopen(mod, workerData.addon);
const b = mod.exports;
class E extends Error { constructor(m, d) { super(m); Object.assign(this, d); } }
b.init({ BpfError: E, NotSupportedError: E, debug: false });
const o = new b.NativeObject(workerData.file);
o.load();
o.attach('on_exec');
o.attach('on_sys_enter', { kind: 'raw_tp', name: 'sys_enter' });
o.openRing('events', 10, 64, () => {});
parentPort.postMessage('ready');
// Never closes anything: the cleanup hook must.
setInterval(() => {}, 1000);
`;

describe.runIf(canRunBpf('bpf-loader env teardown'))('environment teardown', () => {
  beforeAll(() => ensureFixtures());

  it('closes every ring, link and object when a Node environment exits', async () => {
    const before = bpfFds();
    const w = new Worker(workerSource, {
      eval: true,
      workerData: { addon: addonPath, file: fixture('fixture.bpf.o') },
    });
    await new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
    const during = bpfFds();
    expect((during.link ?? 0) - (before.link ?? 0)).toBe(2);
    expect((during.prog ?? 0) - (before.prog ?? 0)).toBeGreaterThanOrEqual(2);
    expect(await w.terminate()).toBe(1);
    expect(bpfFds()).toEqual(before);
  });
});
