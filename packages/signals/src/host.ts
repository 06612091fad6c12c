import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname, release } from 'node:os';

/** Identity of the machine and kernel the evidence came from. */
export interface HostIdentity {
  /**
   * Stable per machine, not the raw machine-id: sha256("stellaops-signals" +
   * machine-id), as systemd advises for ids leaving the host.
   */
  hostId: string;
  hostname: string;
  kernelRelease: string;
  /** `sha256:<hex>` of /sys/kernel/btf/vmlinux: which kernel types CO-RE resolved against. */
  btfId: string | undefined;
}

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** Read the host identity once at start; cheap enough (one BTF hash). */
export function hostIdentity(
  paths = { machineId: '/etc/machine-id', btf: '/sys/kernel/btf/vmlinux' },
): HostIdentity {
  const machineId = readOptional(paths.machineId)?.toString('utf8').trim() || hostname();
  const btf = readOptional(paths.btf);
  return {
    hostId: createHash('sha256').update('stellaops-signals').update(machineId).digest('hex').slice(0, 32),
    hostname: hostname(),
    kernelRelease: release(),
    btfId: btf ? `sha256:${createHash('sha256').update(btf).digest('hex')}` : undefined,
  };
}
