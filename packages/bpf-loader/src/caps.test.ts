import { describe, expect, it } from 'vitest';
import { bpfChargesMemlock, effectiveCapabilities, hasCapability, missingCapabilities } from './caps.js';

const status = (hex: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${hex}\n`;

describe('capabilities', () => {
  it('parses CapEff and answers per capability', () => {
    const eff = effectiveCapabilities(status('000000c000000000')); // bits 38, 39
    expect(hasCapability('CAP_BPF', eff)).toBe(true);
    expect(hasCapability('CAP_PERFMON', eff)).toBe(true);
    expect(hasCapability('CAP_SYS_ADMIN', eff)).toBe(false);
    expect(effectiveCapabilities('garbage')).toBe(0n);
  });

  it('names what each action lacks; CAP_SYS_ADMIN covers BPF and PERFMON', () => {
    const k = { kernelRelease: '6.1.0-27-amd64' };
    expect(missingCapabilities('load', 0n, k)).toEqual(['CAP_BPF', 'CAP_PERFMON']);
    expect(missingCapabilities('uprobe', 1n << 39n, k)).toEqual(['CAP_PERFMON', 'CAP_SYS_ADMIN']);
    expect(missingCapabilities('tracepoint', 1n << 21n, k)).toEqual(['CAP_DAC_READ_SEARCH']);
    expect(missingCapabilities('load', 1n << 21n, k)).toEqual([]);
  });

  it('before 5.11 a load also needs CAP_SYS_RESOURCE (BPF memory is charged to RLIMIT_MEMLOCK), unless the limit is unlimited', () => {
    const bpfPerfmon = (1n << 39n) | (1n << 38n);
    const old = { kernelRelease: '5.10.0-32-amd64', memlockUnlimited: false };
    expect(missingCapabilities('load', bpfPerfmon, old)).toEqual(['CAP_SYS_RESOURCE']);
    expect(missingCapabilities('load', 1n << 21n, old)).toEqual(['CAP_SYS_RESOURCE']);
    expect(missingCapabilities('load', bpfPerfmon | (1n << 24n), old)).toEqual([]);
    expect(missingCapabilities('load', bpfPerfmon, { ...old, memlockUnlimited: true })).toEqual([]);
    expect(missingCapabilities('uprobe', bpfPerfmon | (1n << 21n), old)).toEqual([]);
    expect(
      missingCapabilities('load', bpfPerfmon, { kernelRelease: '5.11.0', memlockUnlimited: false }),
    ).toEqual([]);
    expect(bpfChargesMemlock('4.19.0')).toBe(true);
    expect(bpfChargesMemlock('5.10.223')).toBe(true);
    expect(bpfChargesMemlock('6.18.0')).toBe(false);
  });
});
