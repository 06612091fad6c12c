import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpfError, BpfObject, NotSupportedError, probeFeature, tracefsPath } from '@stellaops/bpf-loader';
import { canRunBpf, scaled } from '@stellaops/testing';
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
  targetBin,
} from './helpers.js';

function codeOf(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BpfError);
    return err as BpfError;
  }
  throw new Error('expected a BpfError, nothing was thrown');
}

describe.runIf(canRunBpf('bpf-loader lifecycle'))(
  'BpfObject open → configure → load → attach (real kernel)',
  () => {
    const open: BpfObject[] = [];
    const track = (o: BpfObject) => {
      open.push(o);
      return o;
    };
    beforeAll(() => ensureFixtures());
    afterEach(() => {
      for (const o of open.splice(0)) o.close();
    });

    describe('open', () => {
      it('lists programs with their attach kind, maps and globals', () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        expect(o.programs.map((p) => [p.name, p.type, p.autoload])).toEqual([
          ['on_tick', 'uprobe', true],
          ['on_tick_ret', 'uretprobe', true],
          ['on_exec', 'tp_btf', true],
          ['on_sys_enter', 'raw_tp', true],
          ['on_getppid_tp', 'tracepoint', true],
        ]);
        expect(o.maps.find((m) => m.name === 'events')).toEqual({
          name: 'events',
          type: 'ringbuf',
          keySize: 0,
          valueSize: 0,
          maxEntries: 256 * 1024,
        });
        expect(o.maps.find((m) => m.name === 'calls')).toMatchObject({
          type: 'hash',
          keySize: 4,
          valueSize: 8,
        });
        expect(o.maps.find((m) => m.name === 'drops')).toMatchObject({ type: 'percpu_array', maxEntries: 1 });
        expect(o.globals.map((g) => [g.name, g.section, g.size]).sort()).toEqual([
          ['magic', '.rodata', 8],
          ['target_pid', '.rodata', 4],
          ['tick_bias', '.bss', 8],
        ]);
      });

      it('opens from an in-memory ELF image, named', () => {
        const o = track(BpfObject.open(readFileSync(fixture('fixture.bpf.o')), { name: 'inmem' }));
        expect(o.maps.map((m) => m.name)).toContain('inmem.rodata');
        o.load();
        expect(o.loaded).toBe(true);
      });

      it("a missing file is 'OPEN' with ENOENT", () => {
        const e = codeOf(() => BpfObject.open('/nonexistent/x.bpf.o'));
        expect(e.code).toBe('OPEN');
        expect(e.errno).toBe(2);
        expect(e.hint).toMatch(/path/);
      });

      it("bytes that are not a BPF ELF object are 'OPEN' with libbpf's reason", () => {
        const e = codeOf(() => BpfObject.open(Buffer.from('definitely not an ELF file')));
        expect(e.code).toBe('OPEN');
        expect(e.libbpfLog).toMatch(/elf|ELF/);
      });

      it('rejects wrong argument types before native code', () => {
        expect(() => BpfObject.open(42 as unknown as string)).toThrow(TypeError);
        expect(() => BpfObject.open('')).toThrow(RangeError);
        expect(() => BpfObject.open(fixture('fixture.bpf.o'), { nmae: 'x' } as never)).toThrow(
          /unknown option 'nmae'/,
        );
      });
    });

    describe('configure', () => {
      it('setGlobal reaches the kernel: events carry the configured magic', async () => {
        const t = await startTarget('exec');
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.setGlobal('magic', 0xfeed_beef_cafen);
        o.setGlobal('target_pid', t.pid);
        o.load();
        const r = o.ringBuffer('events', { latencyMs: 5 });
        o.attach('on_exec'); // auto-attach by section name
        t.go();
        await t.exited;
        const events: ReturnType<typeof decodeEvent>[] = [];
        await readUntil(
          r,
          () => events.length >= 1,
          (b) => {
            for (const rec of b) events.push(decodeEvent(rec));
          },
        );
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          pid: t.pid,
          kind: KIND.EXEC,
          magic: 0xfeed_beef_cafen,
          aux: BigInt(t.pid),
        });
      });

      it("setGlobal: unknown name, wrong size, value out of range are 'CONFIGURE'", () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        const unknown = codeOf(() => o.setGlobal('no_such_var', 1));
        expect(unknown.code).toBe('CONFIGURE');
        expect(unknown.message).toMatch(/known: .*target_pid/);
        const size = codeOf(() => o.setGlobal('target_pid', Buffer.alloc(8)));
        expect(size.code).toBe('CONFIGURE');
        expect(size.message).toMatch(/4 bytes, got 8/);
        const range = codeOf(() => o.setGlobal('target_pid', 2 ** 32));
        expect(range.code).toBe('CONFIGURE');
        expect(range.message).toMatch(/does not fit/);
        expect(() => o.setGlobal('target_pid', 'x' as never)).toThrow(TypeError);
      });

      it("setGlobal, resizeMap and setAutoload after load are 'CONFIGURE'", () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.load();
        expect(codeOf(() => o.setGlobal('target_pid', 1)).code).toBe('CONFIGURE');
        expect(codeOf(() => o.resizeMap('calls', 10)).code).toBe('CONFIGURE');
        expect(codeOf(() => o.setAutoload('on_exec', false)).code).toBe('CONFIGURE');
      });

      it('resizeMap changes max_entries in the kernel; ring sizes must be power-of-2 pages', () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.resizeMap('calls', 7);
        o.resizeMap('events', 64 * 1024);
        expect(() => o.resizeMap('events', 5000)).toThrow(RangeError);
        expect(codeOf(() => o.resizeMap('nope', 8)).code).toBe('CONFIGURE');
        o.load();
        const calls = o.map('calls');
        expect(calls.maxEntries).toBe(7);
        for (let i = 0; i < 7; i++) calls.update(Buffer.from([i, 0, 0, 0]), Buffer.alloc(8));
        // The eighth key does not fit: the kernel enforces the new size.
        expect(codeOf(() => calls.update(Buffer.from([9, 0, 0, 0]), Buffer.alloc(8))).errno).toBe(
          7 /* E2BIG */,
        );
      });

      it('setAutoload(false) keeps a program out of the kernel', () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.setAutoload('on_getppid_tp', false);
        expect(o.programs.find((p) => p.name === 'on_getppid_tp')?.autoload).toBe(false);
        expect(codeOf(() => o.setAutoload('nope', false)).code).toBe('CONFIGURE');
        o.load();
        const e = codeOf(() => o.attach('on_getppid_tp'));
        expect(e.code).toBe('ATTACH');
        expect(e.message).toMatch(/autoload is off/);
      });
    });

    describe('load', () => {
      it("a program the verifier rejects is 'LOAD' with the verifier log", () => {
        const o = track(BpfObject.open(fixture('bad.bpf.o')));
        const e = codeOf(() => o.load());
        expect(e.code).toBe('LOAD');
        expect(e.errno).toBe(13);
        expect(e.operation).toBe('bpf_object__load');
        expect(e.libbpfLog).toContain("R0 invalid mem access 'map_value_or_null'");
        expect(e.libbpfLog).toContain('-- BEGIN PROG LOAD LOG --');
        expect(e.hint).toMatch(/verifier/);
        // A failed load cannot be retried on the same object.
        expect(codeOf(() => o.load()).message).toMatch(/open the object again/);
      });

      it("loading twice is 'LOAD' (EALREADY)", () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.load();
        expect(codeOf(() => o.load()).errno).toBe(114);
      });
    });

    describe('attach', () => {
      it("before load is 'ATTACH'", () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        const e = codeOf(() => o.attach('on_exec'));
        expect(e.code).toBe('ATTACH');
        expect(e.message).toMatch(/load\(\) before attach/);
      });

      it("a uprobe on a missing symbol is 'ATTACH' naming the symbol", () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.load();
        const e = codeOf(() =>
          o.attach('on_tick', { kind: 'uprobe', binaryPath: targetBin, symbol: 'stella_no_such_fn' }),
        );
        expect(e.code).toBe('ATTACH');
        expect(e.errno).toBe(2);
        expect(e.libbpfLog).toContain('stella_no_such_fn');
      });

      it("an unknown program or raw tracepoint is 'ATTACH'", () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.load();
        expect(codeOf(() => o.attach('nope')).code).toBe('ATTACH');
        const e = codeOf(() => o.attach('on_sys_enter', { kind: 'raw_tp', name: 'no_such_tracepoint_x' }));
        expect(e.code).toBe('ATTACH');
        expect(e.errno).toBe(2);
      });

      it('validates specs before native code', () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        expect(() => o.attach('on_tick', { kind: 'uprobe', binaryPath: targetBin } as never)).toThrow(
          /needs a symbol or an offset/,
        );
        expect(() => o.attach('on_tick', { kind: 'kprobe' } as never)).toThrow(TypeError);
        expect(() =>
          o.attach('on_tick', { kind: 'uprobe', binaryPath: targetBin, symbol: 'x', pid: -2 }),
        ).toThrow(RangeError);
      });

      it('raw_tp with an explicit name delivers exactly the workload syscalls', async () => {
        const t = await startTarget('getppid', 100);
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.setGlobal('target_pid', t.pid);
        o.load();
        const r = o.ringBuffer('events', { latencyMs: 5 });
        const link = o.attach('on_sys_enter', { kind: 'raw_tp', name: 'sys_enter' });
        expect(link.program).toBe('on_sys_enter');
        t.go();
        await t.exited;
        const seen: number[] = [];
        await readUntil(
          r,
          () => seen.length >= 100,
          (b) => {
            for (const rec of b) seen.push(decodeEvent(rec).kind);
          },
        );
        await sleep(30);
        expect(r.drainNow()).toBe(0);
        expect(seen).toEqual(new Array(100).fill(KIND.SYSCALL));
      });

      it('closing a link detaches the program: the same workload then produces nothing', async () => {
        const o = track(BpfObject.open(fixture('fixture.bpf.o')));
        o.load(); // target_pid 0: every process running stella_tick
        const r = o.ringBuffer('events', { latencyMs: 5 });
        const link = o.attach('on_tick', { kind: 'uprobe', binaryPath: targetBin, symbol: 'stella_tick' });
        const run = async () => {
          const t = await startTarget('tick', 10);
          t.go();
          await t.exited;
          return (await drainAll(r)).length;
        };
        expect(await run()).toBe(10);
        link.close();
        expect(link.closed).toBe(true);
        link.close(); // harmless
        expect(await run()).toBe(0);
      });

      it('tp_btf with an explicit spec, and closing the object closes its links', async () => {
        const o = BpfObject.open(fixture('fixture.bpf.o'));
        o.load();
        const link = o.attach('on_exec', { kind: 'tp_btf' });
        expect(link.closed).toBe(false);
        o.close();
        expect(link.closed).toBe(true);
        expect(o.closed).toBe(true);
        o.close(); // idempotent
        const e = codeOf(() => o.map('calls'));
        expect(e.code).toBe('CLOSED');
      });

      it("without tracefs a classic tracepoint is 'ATTACH' with the tracefs fix", () => {
        // tracefs is unmounted in a private mount namespace of a child, so
        // this runs whether or not the machine has tracefs mounted.
        const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
        const child = fileURLToPath(new URL('./fixtures/attach-tracepoint.ts', import.meta.url));
        const script = `umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null; test -e /sys/kernel/tracing/events && exit 99; exec "${tsx}" "${child}"`;
        const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
          encoding: 'utf8',
          timeout: scaled(60_000),
        });
        expect(r.status, r.stderr).toBe(0);
        const out = JSON.parse(r.stdout) as { code?: string; hint?: string };
        expect(out.code).toBe('ATTACH');
        expect(out.hint).toMatch(/mount tracefs at \/sys\/kernel\/tracing/);
      });

      it.runIf(tracefsPath() !== null)(
        'a classic tracepoint (tracefs mounted) delivers the workload syscalls',
        async () => {
          const t = await startTarget('getppid', 20);
          const o = track(BpfObject.open(fixture('fixture.bpf.o')));
          o.setGlobal('target_pid', t.pid);
          o.load();
          const r = o.ringBuffer('events', { latencyMs: 5 });
          o.attach('on_getppid_tp', { kind: 'tracepoint', category: 'syscalls', name: 'sys_enter_getppid' });
          t.go();
          await t.exited;
          let n = 0;
          await readUntil(
            r,
            () => n >= 20,
            (b) => {
              for (const rec of b) {
                expect(decodeEvent(rec).kind).toBe(KIND.TRACEPOINT);
                n++;
              }
            },
          );
          expect(n).toBe(20);
        },
      );
    });
  },
);

describe.runIf(canRunBpf('bpf-loader fentry fallback'))('kernel-gated program types', () => {
  beforeAll(() => ensureFixtures());

  it('fentry refused by the kernel is NotSupportedError at load; without it the tp_btf fallback loads', () => {
    const fentry = probeFeature('fentry');
    const o = BpfObject.open(fixture('fentry.bpf.o'));
    try {
      if (fentry.supported) {
        // This kernel runs fentry: the object loads as is.
        o.load();
        expect(o.loaded).toBe(true);
        return;
      }
      let err: unknown;
      try {
        o.load();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NotSupportedError);
      const e = err as NotSupportedError;
      expect(e.code).toBe('LOAD');
      expect(e.feature).toBe('fentry');
      expect(e.minKernel).toBe('5.5');
      expect(e.message).toContain("program 'on_vfs_read' (fentry/vfs_read)");
      expect(e.hint).toMatch(/setAutoload\('on_vfs_read', false\)/);
    } finally {
      o.close();
    }
    using fallback = BpfObject.open(fixture('fentry.bpf.o'));
    fallback.setAutoload('on_vfs_read', false);
    fallback.load();
    fallback.attach('on_exec_fallback').close();
  });
});
