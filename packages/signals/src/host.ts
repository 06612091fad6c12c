import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
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

/**
 * `sha256:<hex>` of a file read 1 MiB at a time, or undefined when it cannot
 * be read: the kernel's BTF is 5-6 MiB, and a buffer of its size at start-up
 * stays in the collector's RSS.
 */
function hashFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) h.update(buf.subarray(0, n));
    return `sha256:${h.digest('hex')}`;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Read the host identity once at start; cheap enough (one BTF hash). */
export function hostIdentity(
  paths = { machineId: '/etc/machine-id', btf: '/sys/kernel/btf/vmlinux' },
): HostIdentity {
  const machineId = readOptional(paths.machineId)?.toString('utf8').trim() || hostname();
  return {
    hostId: createHash('sha256').update('stellaops-signals').update(machineId).digest('hex').slice(0, 32),
    hostname: hostname(),
    kernelRelease: release(),
    btfId: hashFile(paths.btf),
  };
}
