import { describe, expect, it } from 'vitest';
import { effectiveCapabilities, hasCapability, missingCapabilities } from './caps.js';

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
    expect(missingCapabilities('load', 0n)).toEqual(['CAP_BPF', 'CAP_PERFMON']);
    expect(missingCapabilities('uprobe', 1n << 39n)).toEqual(['CAP_PERFMON', 'CAP_SYS_ADMIN']);
    expect(missingCapabilities('tracepoint', 1n << 21n)).toEqual(['CAP_DAC_READ_SEARCH']);
    expect(missingCapabilities('load', 1n << 21n)).toEqual([]);
  });
});
