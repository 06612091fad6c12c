/**
 * The collector's default V8 heap limits. Every queue between the kernel
 * ring and the writer is bounded, so a collector that falls behind leaves
 * records in the ring, counted `lost`; but V8 sizes its heap from the host's
 * memory and grows it lazily, so on a large host a storm took RSS to
 * 400+ MiB of garbage not yet collected. These caps keep it near what is
 * live (tens of MiB) and cost no evidence (docs/performance.md).
 */
export const COLLECTOR_HEAP_FLAGS: readonly string[] = [
  '--max-old-space-size=192',
  '--max-semi-space-size=2',
];

/** `--max-old-space-size=192` → `max_old_space_size` (V8 accepts `-` and `_` alike). */
function flagName(flag: string): string {
  return flag.replace(/^--?/, '').split('=')[0]!.replaceAll('-', '_');
}

/**
 * The arguments to re-execute `stella signals start` with (argv[0] first, as
 * execve wants them), or undefined when there is nothing to add: another
 * command, or every flag of {@link COLLECTOR_HEAP_FLAGS} already set by the
 * user (in `NODE_OPTIONS` or node's own arguments; the user's value wins).
 *
 * Why a re-exec: V8 reads its heap limits when the isolate is created, so
 * `v8.setFlagsFromString` from a running CLI does not resize the heap, and a
 * `#!/usr/bin/env node` bin cannot pass node flags. `process.execve` keeps
 * the pid, the open stdio and the environment, so systemd, Kubernetes and a
 * shell see one process; it runs before anything is read or written.
 */
export function heapCapArgs(
  argv: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] | undefined {
  if (argv[2] !== 'signals' || argv[3] !== 'start') return undefined;
  const set = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter(Boolean).map(flagName));
  const missing = COLLECTOR_HEAP_FLAGS.filter((f) => !set.has(flagName(f)));
  if (missing.length === 0) return undefined;
  return [argv[0]!, ...missing, ...execArgv, ...argv.slice(1)];
}
