import type { CgroupMkdirEvent } from './cgroup-event.js';
import { ProbeOptionError } from './errors.js';
import type { ProbeName } from './events.js';
import { PREFIX_MAX } from './layout.js';

/** In-kernel filters. Every list is optional; an empty list filters nothing. */
export interface ProbeFilters {
  /** cgroup v2 ids to report (a listed ancestor admits its descendants, 8 levels down); empty = all. */
  cgroupIds?: bigint[];
  /** Only paths starting with one of these byte prefixes (absolute, at most 256 bytes). */
  pathAllowPrefixes?: string[];
  /** Never paths starting with one of these. The longest matching prefix wins; a tie is a deny. */
  pathDenyPrefixes?: string[];
  /** Thread-group ids never reported. Default [process.pid]: the collector does not report itself. */
  excludePids?: number[];
}

export interface ProbeSetOptions {
  /** Probes to run. Default: all of file_open, exec, exit, file_open_lsm (the last only where the kernel allows). */
  probes?: ProbeName[];
  filters?: ProbeFilters;
  /** Drop facts already reported (same cgroup, kind, path and flags class). Default on, 65536 entries. */
  dedup?: { enabled?: boolean; maxEntries?: number };
  /**
   * Ring buffer size in bytes: a power of two, at least 4096. Default 16 MiB: about 1 s of
   * every-event open storm (130k records/s) while the collector is not scheduled.
   */
  ringBufferBytes?: number;
  /** How often the ring is drained, ms. Default 10. */
  drainLatencyMs?: number;
  /** Path of the loader's native binding (stella_bpf.node). */
  bindingPath?: string;
  /** BPF object to load instead of the shipped one (tests, custom builds). */
  objectPath?: string;
  /**
   * Kernel BTF file used instead of /sys/kernel/btf/vmlinux for CO-RE
   * relocations (libbpf's btf_custom_path), for kernels without built-in
   * BTF: get it from BTFHub for the exact kernel build, or make it with
   * `pahole --btf_encode_detached`. Without kernel BTF only raw_tp attaches
   * (tp_btf, fentry and LSM need the kernel's own BTF).
   */
  btfCustomPath?: string;
  /**
   * Attach type of the syscall and sched probes: 'auto' (default) tries tp_btf, then raw_tp;
   * naming one forces it, without fallback.
   */
  attach?: 'auto' | 'tp_btf' | 'raw_tp';
  /**
   * How the programs read the current task: 'auto' (default) uses
   * bpf_get_current_task_btf where the kernel has it (5.11+), else
   * bpf_get_current_task with CO-RE reads; 'core' forces the latter (tests
   * the older kernels' path on a new one). Reported in each probe's reason.
   */
  taskAccess?: 'auto' | 'core';
  /**
   * Receives the `cgroup_mkdir` probe's events (each new cgroup v2 id and
   * path), in ring order, before the batch of records read with them is
   * yielded. Required when `probes` names `cgroup_mkdir`.
   */
  onCgroupMkdir?: (event: CgroupMkdirEvent) => void;
}

/** Probes that may be named: the default set and `cgroup_mkdir` (named explicitly, with its callback). */
const KNOWN_PROBES: readonly ProbeName[] = ['file_open', 'exec', 'exit', 'file_open_lsm', 'cgroup_mkdir'];

/**
 * Ring batches a probe set lets wait in JS before it stops draining (up to
 * 8192 records each). A consumer that falls behind then leaves records in the
 * kernel ring, where a full ring is counted `lost` per probe, instead of
 * growing the heap: the bound on what a storm can cost in memory.
 */
export const RING_HIGH_WATER_BATCHES = 4;

export const ALL_PROBES: readonly ProbeName[] = ['file_open', 'exec', 'exit', 'file_open_lsm'];

export interface ResolvedOptions {
  probes: ProbeName[];
  cgroupIds: bigint[];
  allow: Buffer[];
  deny: Buffer[];
  excludePids: number[];
  dedup: boolean;
  dedupEntries: number;
  ringBufferBytes: number;
  drainLatencyMs: number;
  bindingPath: string | undefined;
  objectPath: string | undefined;
  btfCustomPath: string | undefined;
  attach: 'auto' | 'tp_btf' | 'raw_tp';
  taskAccess: 'auto' | 'core';
  onCgroupMkdir: ((event: CgroupMkdirEvent) => void) | undefined;
}

const U64_MAX = (1n << 64n) - 1n;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(where: string, v: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) {
      throw new ProbeOptionError(`${where}${k}`, `unknown option (known: ${known.join(', ')})`);
    }
  }
}

function list<T>(name: string, v: unknown, check: (x: unknown, at: string) => T): T[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ProbeOptionError(name, `must be an array, got ${typeof v}`);
  return v.map((x, i) => check(x, `${name}[${i}]`));
}

function prefix(x: unknown, at: string): Buffer {
  if (typeof x !== 'string') throw new ProbeOptionError(at, `must be a string, got ${typeof x}`);
  if (!x.startsWith('/')) {
    throw new ProbeOptionError(
      at,
      `'${x}' is not absolute`,
      'path prefixes match resolved absolute paths: start with /',
    );
  }
  const b = Buffer.from(x, 'utf8');
  if (b.length > PREFIX_MAX) {
    throw new ProbeOptionError(
      at,
      `${b.length} bytes is longer than the ${PREFIX_MAX}-byte in-kernel prefix limit`,
    );
  }
  return b;
}

function intIn(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ProbeOptionError(name, `must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/** Validates openProbeSet() options before any kernel object is touched. */
export function resolveOptions(opts: unknown): ResolvedOptions {
  if (opts === undefined) opts = {};
  if (!isObject(opts)) throw new ProbeOptionError('options', 'must be an object');
  checkKeys('', opts, [
    'probes',
    'filters',
    'dedup',
    'ringBufferBytes',
    'drainLatencyMs',
    'bindingPath',
    'objectPath',
    'btfCustomPath',
    'attach',
    'taskAccess',
    'onCgroupMkdir',
  ]);
  const taskAccess = opts.taskAccess ?? 'auto';
  if (taskAccess !== 'auto' && taskAccess !== 'core') {
    throw new ProbeOptionError(
      'taskAccess',
      `must be 'auto' or 'core', got ${JSON.stringify(taskAccess)}`,
      "'core' forces the path kernels before 5.11 take; leave it unset otherwise",
    );
  }
  const attach = opts.attach ?? 'auto';
  if (attach !== 'auto' && attach !== 'tp_btf' && attach !== 'raw_tp') {
    throw new ProbeOptionError(
      'attach',
      `must be 'auto', 'tp_btf' or 'raw_tp', got ${JSON.stringify(attach)}`,
    );
  }
  const probes =
    opts.probes === undefined
      ? [...ALL_PROBES]
      : list('probes', opts.probes, (x, at) => {
          if (!KNOWN_PROBES.includes(x as ProbeName)) {
            throw new ProbeOptionError(
              at,
              `unknown probe ${JSON.stringify(x)} (known: ${KNOWN_PROBES.join(', ')})`,
            );
          }
          return x as ProbeName;
        });
  if (probes.length === 0) throw new ProbeOptionError('probes', 'is empty: name at least one probe');
  if (opts.onCgroupMkdir !== undefined && typeof opts.onCgroupMkdir !== 'function') {
    throw new ProbeOptionError('onCgroupMkdir', `must be a function, got ${typeof opts.onCgroupMkdir}`);
  }
  if (probes.includes('cgroup_mkdir') && opts.onCgroupMkdir === undefined) {
    throw new ProbeOptionError(
      'probes',
      'cgroup_mkdir is named but onCgroupMkdir is not given: its events would be read and dropped',
      'pass onCgroupMkdir: (e) => tracker.learnCgroup(e.id, e.path), or leave cgroup_mkdir out',
    );
  }

  const f = opts.filters ?? {};
  if (!isObject(f)) throw new ProbeOptionError('filters', 'must be an object');
  checkKeys('filters.', f, ['cgroupIds', 'pathAllowPrefixes', 'pathDenyPrefixes', 'excludePids']);
  const cgroupIds = list('filters.cgroupIds', f.cgroupIds, (x, at) => {
    if (typeof x !== 'bigint' || x <= 0n || x > U64_MAX) {
      throw new ProbeOptionError(
        at,
        `must be a bigint cgroup id from 1 to 2^64-1, got ${String(x)}`,
        'a cgroup v2 id is the inode number of its directory: (await stat(dir, {bigint: true})).ino',
      );
    }
    return x;
  });
  const excludePids =
    f.excludePids === undefined
      ? [process.pid]
      : list('filters.excludePids', f.excludePids, (x, at) => intIn(at, x, 1, 0x3fffffff));

  const d = opts.dedup ?? {};
  if (!isObject(d)) throw new ProbeOptionError('dedup', 'must be an object');
  checkKeys('dedup.', d, ['enabled', 'maxEntries']);
  if (d.enabled !== undefined && typeof d.enabled !== 'boolean') {
    throw new ProbeOptionError('dedup.enabled', `must be a boolean, got ${typeof d.enabled}`);
  }
  const ring =
    opts.ringBufferBytes === undefined
      ? 16 * 1024 * 1024
      : intIn('ringBufferBytes', opts.ringBufferBytes, 4096, 2 ** 30);
  if ((ring & (ring - 1)) !== 0) {
    throw new ProbeOptionError(
      'ringBufferBytes',
      `${ring} is not a power of two`,
      'use e.g. 1048576 (1 MiB) or 4194304 (4 MiB)',
    );
  }
  for (const k of ['bindingPath', 'objectPath', 'btfCustomPath'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'string') {
      throw new ProbeOptionError(k, `must be a string path, got ${typeof opts[k]}`);
    }
  }
  return {
    probes: [...new Set(probes)],
    cgroupIds,
    allow: list('filters.pathAllowPrefixes', f.pathAllowPrefixes, prefix),
    deny: list('filters.pathDenyPrefixes', f.pathDenyPrefixes, prefix),
    excludePids,
    dedup: d.enabled ?? true,
    dedupEntries: d.maxEntries === undefined ? 65536 : intIn('dedup.maxEntries', d.maxEntries, 16, 1 << 24),
    ringBufferBytes: ring,
    drainLatencyMs:
      opts.drainLatencyMs === undefined ? 10 : intIn('drainLatencyMs', opts.drainLatencyMs, 1, 60000),
    bindingPath: opts.bindingPath as string | undefined,
    objectPath: opts.objectPath as string | undefined,
    btfCustomPath: opts.btfCustomPath as string | undefined,
    attach,
    taskAccess,
    onCgroupMkdir: opts.onCgroupMkdir as ((event: CgroupMkdirEvent) => void) | undefined,
  };
}
