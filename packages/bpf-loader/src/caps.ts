import { readFileSync } from 'node:fs';

/** Capability bits, from include/uapi/linux/capability.h. */
export const CAP = {
  CAP_DAC_READ_SEARCH: 2,
  CAP_SYS_ADMIN: 21,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
} as const;

export type CapabilityName = keyof typeof CAP;

/** The effective capability set of this process (from /proc/self/status). */
export function effectiveCapabilities(status?: string): bigint {
  let text = status;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return 0n;
    }
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return m?.[1] ? BigInt(`0x${m[1]}`) : 0n;
}

export function hasCapability(name: CapabilityName, eff: bigint = effectiveCapabilities()): boolean {
  return (eff & (1n << BigInt(CAP[name]))) !== 0n;
}

/**
 * Capabilities missing for an action. CAP_SYS_ADMIN stands in for CAP_BPF and
 * CAP_PERFMON (kernels before 5.8 know only it).
 */
export function missingCapabilities(
  action: 'load' | 'tracepoint' | 'uprobe',
  eff: bigint = effectiveCapabilities(),
): string[] {
  const admin = hasCapability('CAP_SYS_ADMIN', eff);
  const missing: string[] = [];
  if (!admin && !hasCapability('CAP_BPF', eff)) missing.push('CAP_BPF');
  if (!admin && !hasCapability('CAP_PERFMON', eff)) missing.push('CAP_PERFMON');
  if (action === 'tracepoint' && !hasCapability('CAP_DAC_READ_SEARCH', eff))
    missing.push('CAP_DAC_READ_SEARCH');
  if (action === 'uprobe' && !admin) missing.push('CAP_SYS_ADMIN');
  return missing;
}
