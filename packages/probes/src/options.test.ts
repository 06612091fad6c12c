import { describe, expect, it } from 'vitest';
import { ProbeOptionError } from './errors.js';
import { resolveOptions } from './options.js';

function optionError(opts: unknown): ProbeOptionError {
  try {
    resolveOptions(opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ProbeOptionError);
    return e as ProbeOptionError;
  }
  throw new Error('options accepted');
}

describe('openProbeSet options', () => {
  it('defaults: all probes, dedup on, own pid excluded, 16 MiB ring, 10 ms drain', () => {
    const o = resolveOptions(undefined);
    expect(o.probes).toEqual(['file_open', 'exec', 'exit', 'file_open_lsm']);
    expect(o.dedup).toBe(true);
    expect(o.dedupEntries).toBe(65536);
    expect(o.excludePids).toEqual([process.pid]);
    expect(o.ringBufferBytes).toBe(16 * 1024 * 1024);
    expect(o.drainLatencyMs).toBe(10);
    expect(o.attach).toBe('auto');
  });

  it("taskAccess: 'auto' by default, 'core' accepted, anything else named with the fix", () => {
    expect(resolveOptions({}).taskAccess).toBe('auto');
    expect(resolveOptions({ taskAccess: 'core' }).taskAccess).toBe('core');
    const e = optionError({ taskAccess: 'btf' });
    expect(e.option).toBe('taskAccess');
    expect(e.message).toBe(`taskAccess: must be 'auto' or 'core', got "btf"`);
    expect(e.hint).toMatch(/kernels before 5\.11/);
  });

  it('keeps explicit filters as kernel-ready bytes', () => {
    const o = resolveOptions({
      filters: {
        cgroupIds: [5n],
        pathAllowPrefixes: ['/etc/'],
        pathDenyPrefixes: ['/etc/shadow'],
        excludePids: [],
      },
      dedup: { enabled: false, maxEntries: 1024 },
    });
    expect(o.cgroupIds).toEqual([5n]);
    expect(o.allow.map(String)).toEqual(['/etc/']);
    expect(o.deny.map(String)).toEqual(['/etc/shadow']);
    expect(o.excludePids).toEqual([]);
    expect(o.dedup).toBe(false);
  });

  it.each([
    [{ probez: [] }, 'probez', /unknown option/],
    [{ probes: ['net'] }, 'probes[0]', /unknown probe "net"/],
    [{ probes: [] }, 'probes', /empty/],
    [{ filters: { cgroupIds: [5] } }, 'filters.cgroupIds[0]', /bigint/],
    [{ filters: { pathAllowPrefixes: ['etc/'] } }, 'filters.pathAllowPrefixes[0]', /not absolute/],
    [{ filters: { pathDenyPrefixes: [`/${'a'.repeat(256)}`] } }, 'filters.pathDenyPrefixes[0]', /257 bytes/],
    [{ filters: { excludePids: [0] } }, 'filters.excludePids[0]', /integer from 1/],
    [{ filters: { pids: [] } }, 'filters.pids', /unknown option/],
    [{ ringBufferBytes: 3 * 4096 }, 'ringBufferBytes', /power of two/],
    [{ ringBufferBytes: 1024 }, 'ringBufferBytes', /from 4096/],
    [{ dedup: { enabled: 'yes' } }, 'dedup.enabled', /boolean/],
    [{ dedup: { maxEntries: 1.5 } }, 'dedup.maxEntries', /integer/],
    [{ drainLatencyMs: 0 }, 'drainLatencyMs', /from 1 to 60000/],
    [{ bindingPath: 3 }, 'bindingPath', /string/],
    [{ attach: 'kprobe' }, 'attach', /'auto', 'tp_btf' or 'raw_tp'/],
  ])('rejects %j naming the option', (opts, option, message) => {
    const e = optionError(opts);
    expect(e.code).toBe('INVALID_OPTION');
    expect(e.option).toBe(option);
    expect(e.message).toMatch(message);
  });

  it('refuses cgroup_mkdir without the callback its events go to, saying how to pass one', () => {
    const e = optionError({ probes: ['exec', 'cgroup_mkdir'] });
    expect(e.option).toBe('probes');
    expect(e.message).toMatch(/onCgroupMkdir is not given/);
    expect(e.hint).toMatch(/learnCgroup/);
    expect(optionError({ probes: ['cgroup_mkdir'], onCgroupMkdir: 'x' }).option).toBe('onCgroupMkdir');
  });

  it('gives a hint for relative prefixes and bad rings', () => {
    expect(optionError({ filters: { pathAllowPrefixes: ['tmp'] } }).hint).toMatch(/start with \//);
    expect(optionError({ ringBufferBytes: 5000 }).hint).toMatch(/1048576/);
  });
});
