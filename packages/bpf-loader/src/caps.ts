import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { loadBinding } from './binding.js';

/** Capability bits, from include/uapi/linux/capability.h. */
export const CAP = {
  CAP_DAC_READ_SEARCH: 2,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_RESOURCE: 24,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
} as const;

export type CapabilityName = keyof typeof CAP;

/**
 * Where {@link readCapabilities} gets the effective set from; each may throw.
 * Tests inject these; the defaults read the real process.
 */
export interface CapabilityReaders {
  /** Text of /proc/self/status. Unreadable in a non-dumpable process (one that gained capabilities at exec). */
  readStatus?: () => string;
  /** The effective set from capget(2) (default: through the addon), or undefined when no such route exists. */
  capget?: () => bigint | undefined;
}

/** This process's effective capabilities, or why they could not be read. */
export type CapabilityState =
  | { known: true; effective: bigint; source: 'proc-status' | 'capget' }
  | { known: false; reason: string };

function parseCapEff(text: string): bigint | undefined {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return m?.[1] ? BigInt(`0x${m[1]}`) : undefined;
}

function defaultReadStatus(): string {
  return readFileSync('/proc/self/status', 'utf8');
}

/** capget(2) through the addon; undefined when the loaded addon predates it. */
function nativeCapget(): bigint | undefined {
  const b = loadBinding() as { capget?: () => bigint };
  return typeof b.capget === 'function' ? b.capget() : undefined;
}

/**
 * The effective capability set, from /proc/self/status or else capget(2).
 * A process that gained capabilities at exec (file capabilities, ambient
 * capabilities after a uid change) is non-dumpable and cannot read its own
 * /proc/self/status; answering "no capabilities" there would be a false
 * claim, so this says `known: false` and why instead. Never throws.
 */
export function readCapabilities(readers: CapabilityReaders = {}): CapabilityState {
  const reasons: string[] = [];
  try {
    const eff = parseCapEff((readers.readStatus ?? defaultReadStatus)());
    if (eff !== undefined) return { known: true, effective: eff, source: 'proc-status' };
    reasons.push('/proc/self/status has no CapEff line');
  } catch (err) {
    reasons.push(`/proc/self/status: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const eff = (readers.capget ?? nativeCapget)();
    if (eff !== undefined) return { known: true, effective: eff, source: 'capget' };
    reasons.push('capget(2) is not available');
  } catch (err) {
    reasons.push(`capget(2): ${(err as Error).message}`);
  }
  return { known: false, reason: reasons.join('; ') };
}

/**
 * The effective capability set of this process (from `status`, the text of
 * /proc/self/status, or read from the process). 0n when it cannot be read:
 * use {@link readCapabilities} to tell "unknown" from "none".
 */
export function effectiveCapabilities(status?: string): bigint {
  if (status !== undefined) return parseCapEff(status) ?? 0n;
  const s = readCapabilities();
  return s.known ? s.effective : 0n;
}

/** True when `name` is in the effective set `eff`. */
export function hasCapability(name: CapabilityName, eff: bigint = effectiveCapabilities()): boolean {
  return (eff & (1n << BigInt(CAP[name]))) !== 0n;
}

/**
 * How the kernel charges BPF memory, for {@link missingCapabilities}.
 * Kernels before 5.11 charge maps and programs to RLIMIT_MEMLOCK (5.11's
 * "bpf: switch to memcg-based memory accounting" series moved the charge
 * to the memory cgroup). There libbpf raises the
 * limit to infinity before loading, which needs CAP_SYS_RESOURCE unless the
 * limit is unlimited already.
 */
export interface MemlockAccounting {
  /** Kernel release (default: the running kernel's). */
  readonly kernelRelease?: string;
  /** True when RLIMIT_MEMLOCK is unlimited (default: read from /proc/self/limits). */
  readonly memlockUnlimited?: boolean;
}

/** True when `kernelRelease` charges BPF memory to RLIMIT_MEMLOCK (before 5.11). */
export function bpfChargesMemlock(kernelRelease: string = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major < 5 || (major === 5 && minor < 11);
}

/** True when this process's RLIMIT_MEMLOCK is unlimited; false when it is not or cannot be read. */
export function memlockUnlimited(): boolean {
  try {
    return /^Max locked memory\s+unlimited\s/m.test(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Capabilities missing for an action. CAP_SYS_ADMIN stands in for CAP_BPF and
 * CAP_PERFMON (kernels before 5.8 know only it). Loading on a kernel before
 * 5.11 also needs CAP_SYS_RESOURCE unless RLIMIT_MEMLOCK is unlimited (see
 * {@link MemlockAccounting}).
 */
export function missingCapabilities(
  action: 'load' | 'tracepoint' | 'uprobe',
  eff: bigint = effectiveCapabilities(),
  memlock: MemlockAccounting = {},
): string[] {
  const admin = hasCapability('CAP_SYS_ADMIN', eff);
  const missing: string[] = [];
  if (!admin && !hasCapability('CAP_BPF', eff)) missing.push('CAP_BPF');
  if (!admin && !hasCapability('CAP_PERFMON', eff)) missing.push('CAP_PERFMON');
  if (action === 'tracepoint' && !hasCapability('CAP_DAC_READ_SEARCH', eff))
    missing.push('CAP_DAC_READ_SEARCH');
  if (action === 'uprobe' && !admin) missing.push('CAP_SYS_ADMIN');
  if (
    action === 'load' &&
    !hasCapability('CAP_SYS_RESOURCE', eff) &&
    bpfChargesMemlock(memlock.kernelRelease) &&
    !(memlock.memlockUnlimited ?? memlockUnlimited())
  )
    missing.push('CAP_SYS_RESOURCE');
  return missing;
}
