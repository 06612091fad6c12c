import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/**
 * Gates for tests that need the real kernel or real runtimes.
 *
 * A gated test skips, printing why, when the machine cannot run it. Where the
 * environment says it must run (STELLA_REQUIRE_BPF=1, as CI sets), a missing
 * privilege is a failure instead: a kernel test never silently disappears.
 */
export const bpfRequired = process.env.STELLA_REQUIRE_BPF === '1';

// Capability bits from include/uapi/linux/capability.h.
const CAP = { SYS_ADMIN: 21, PERFMON: 38, BPF: 39, DAC_READ_SEARCH: 2 } as const;

function effectiveCaps(): bigint {
  const status = readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m?.[1] ? BigInt(`0x${m[1]}`) : 0n;
}

function hasCap(bit: number): boolean {
  return (effectiveCaps() & (1n << BigInt(bit))) !== 0n;
}

/** Why BPF programs cannot be loaded and attached here, or undefined if they can. */
export function bpfUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux missing)';
  const missing: string[] = [];
  if (!hasCap(CAP.BPF) && !hasCap(CAP.SYS_ADMIN)) missing.push('CAP_BPF');
  if (!hasCap(CAP.PERFMON) && !hasCap(CAP.SYS_ADMIN)) missing.push('CAP_PERFMON');
  if (!hasCap(CAP.SYS_ADMIN)) missing.push('CAP_SYS_ADMIN (uprobes)');
  if (missing.length > 0) return `missing ${missing.join(', ')}; run as root`;
  return undefined;
}

/** Why a command-line tool cannot be used, or undefined if it is on PATH. */
export function commandUnavailableReason(cmd: string): string | undefined {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `'${cmd}' is not installed (bash scripts/bootstrap.sh setup installs it)`;
  }
}

const announced = new Set<string>();

/**
 * Decide whether a gated suite runs. Returns true to run. When it cannot run:
 * throws if STELLA_REQUIRE_BPF=1 (CI), else prints the reason once and
 * returns false so the caller can `describe.skipIf(!gate(...))`.
 */
export function gate(what: string, reason: string | undefined): boolean {
  if (reason === undefined) return true;
  if (bpfRequired) {
    throw new Error(`${what} must run (STELLA_REQUIRE_BPF=1) but cannot: ${reason}`);
  }
  if (!announced.has(what)) {
    announced.add(what);
    process.stderr.write(`[skip] ${what}: ${reason}\n`);
  }
  return false;
}

/** `describe.runIf(canRunBpf('suite name'))`: true when kernel tests can run here. */
export function canRunBpf(what: string): boolean {
  return gate(what, bpfUnavailableReason());
}
