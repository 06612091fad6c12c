import { readFileSync } from 'node:fs';

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
  memoryLimit?: number | (() => number | undefined),
): string[] | undefined {
  if (argv[2] !== 'signals' || argv[3] !== 'start') return undefined;
  const set = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter(Boolean).map(flagName));
  if (COLLECTOR_HEAP_FLAGS.every((f) => set.has(flagName(f)))) return undefined;
  // Read the cgroup limit (a few small files) only when a flag is still to be added.
  const limit = typeof memoryLimit === 'function' ? memoryLimit() : memoryLimit;
  const missing = collectorHeapFlags(limit).filter((f) => !set.has(flagName(f)));
  if (missing.length === 0) return undefined;
  return [argv[0]!, ...missing, ...execArgv, ...argv.slice(1)];
}

/** Share of a cgroup memory limit the old space may take: the rest is the node binary, the rings, buffers and young space. */
const OLD_SPACE_SHARE = 0.35;

/**
 * The heap flags for a collector whose cgroup allows `memoryLimit` bytes:
 * {@link COLLECTOR_HEAP_FLAGS}, with the old space lowered to 35 % of the
 * limit (at least 64 MiB) where 192 MiB would not leave room for the rest.
 * V8 lets garbage pile up towards the cap before it collects, so in a
 * 256 MiB cgroup a 192 MiB cap got the collector OOM-killed (an open chain)
 * under a storm of short-lived processes; 89 MiB keeps it alive.
 */
export function collectorHeapFlags(memoryLimit?: number): string[] {
  const flags = [...COLLECTOR_HEAP_FLAGS];
  if (memoryLimit === undefined || !Number.isFinite(memoryLimit) || memoryLimit <= 0) return flags;
  const mib = Math.max(64, Math.floor((memoryLimit / 1048576) * OLD_SPACE_SHARE));
  if (mib < 192) flags[0] = `--max-old-space-size=${mib}`;
  return flags;
}

/**
 * The tightest memory limit of this process's cgroup and its ancestors, in
 * bytes (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`), or undefined
 * when there is none or it cannot be read.
 */
export function cgroupMemoryLimit(
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): number | undefined {
  let lines: string[];
  try {
    lines = read('/proc/self/cgroup').split('\n');
  } catch {
    return undefined;
  }
  let limit: number | undefined;
  const consider = (file: string) => {
    let text: string;
    try {
      text = read(file).trim();
    } catch {
      return;
    }
    const n = Number(text);
    // "max" (v2) or v1's "unlimited" (a page-rounded 2^63-1) mean no limit.
    if (Number.isFinite(n) && n > 0 && n < 2 ** 62) limit = limit === undefined ? n : Math.min(limit, n);
  };
  for (const line of lines) {
    const m = /^\d+:([^:]*):(\/.*)$/.exec(line);
    if (!m) continue;
    const [, controllers, path] = m as unknown as [string, string, string];
    const v2 = controllers === '';
    if (!v2 && !controllers.split(',').includes('memory')) continue;
    const base = v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory';
    const file = v2 ? 'memory.max' : 'memory.limit_in_bytes';
    for (let p = path; ; p = p.slice(0, p.lastIndexOf('/')) || '/') {
      consider(`${base}${p === '/' ? '' : p}/${file}`);
      if (p === '/') break;
    }
  }
  return limit;
}
