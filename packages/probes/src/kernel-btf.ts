import { readFileSync } from 'node:fs';

/** Where the running kernel publishes its own BTF. */
export const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

const cache = new Map<string, boolean>();

/**
 * Whether the kernel's BTF string table holds `name` as a whole entry (an
 * enum value, a type, a function). This is what libbpf resolves
 * `bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_x)` against when it
 * loads an object, so user space and the BPF side agree on which branch a
 * program takes. False when the BTF cannot be read. Cached per process.
 */
export function kernelBtfHasName(name: string, btfPath: string = KERNEL_BTF): boolean {
  const key = `${btfPath}\0${name}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let found = false;
  try {
    found = readFileSync(btfPath).includes(Buffer.from(`\0${name}\0`, 'latin1'));
  } catch {
    found = false;
  }
  cache.set(key, found);
  return found;
}

/**
 * How the probes read the current task (the parent pid in every record):
 * 'btf' with bpf_get_current_task_btf (Linux 5.11+), 'core' with
 * bpf_get_current_task and CO-RE reads (older kernels, or forced).
 */
export type TaskAccess = 'btf' | 'core';

/**
 * The task access the BPF side takes here, given the requested mode and the
 * BTF libbpf relocates against (a btfCustomPath, else the kernel's own).
 */
export function taskAccess(requested: 'auto' | 'core', btfPath: string = KERNEL_BTF): TaskAccess {
  if (requested === 'core') return 'core';
  return kernelBtfHasName('BPF_FUNC_get_current_task_btf', btfPath) ? 'btf' : 'core';
}

/** The collector_status reason for a probe that reads the task without the BTF helper. */
export function taskAccessNote(requested: 'auto' | 'core'): string {
  return requested === 'core'
    ? 'task read with bpf_get_current_task + CO-RE (forced by taskAccess: core)'
    : 'task read with bpf_get_current_task + CO-RE (bpf_get_current_task_btf needs Linux 5.11)';
}
