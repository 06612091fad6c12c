/**
 * Running network and TLS probes: the net object loaded, TCP state attached
 * (tp_btf, else raw_tp, else the classic tracepoint), uprobes attached to
 * every libc and OpenSSL file processes map, re-scanned periodically and on
 * demand, and the ring decoded into batches of events.
 *
 * Same shape as the file/exec ProbeSet (async iterable of event batches,
 * status, counters(), close()), so the collector can merge both.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BpfError,
  type BpfLink,
  type BpfMap,
  BpfObject,
  numPossibleCpus,
  type RingBufferReader,
} from '@stellaops/bpf-loader';
import { type KernelCounters, readCounters, settledCounters } from '../counters.js';
import { ProbeOptionError, ProbesError } from '../errors.js';
import { KERNEL_BTF, kernelBtfHasName } from '../kernel-btf.js';
import { RING_HIGH_WATER_BATCHES } from '../options.js';
import { type AttachedLibrary, SSL_IO_SYMBOLS, SSL_UPROBES, UprobeAttacher } from './attach.js';
import { decodeNetRecord, type NetEvent } from './decode.js';
import { fileKey, hostLibraries, type LibraryKind, LibraryScanner } from './discovery.js';
import { NET_COUNTER_SLOT, type NetProbeName } from './layout.js';

/** Options of {@link openNetProbes}. Every field is optional. */
export interface NetProbeOptions {
  /** Path of net.bpf.o (default: the one shipped in this package's bpf/). */
  objectPath?: string;
  /** Probes to run (default: all five). */
  probes?: readonly NetProbeName[];
  /** In-kernel dedup of facts (cgroup, endpoint, kind). Default true. */
  dedup?: boolean;
  /**
   * Capture up to 16 user stack frames (raw words of a frame-pointer walk:
   * not all are return addresses) per record family: `sock` for
   * connect/accept, `tls` for TLS calls; `true`/`false` for both. A family
   * that is off is not unwound in the kernel at all. Default true.
   */
  userStack?: boolean | NetUserStacks;
  /**
   * Source of net_connect/net_accept records. 'syscall' (default): the
   * connect/accept/accept4 syscalls at sys_enter/sys_exit (no uprobe traps,
   * covers programs that bypass libc). 'libc': uprobes on connect, accept and
   * accept4 of every libc file processes map (about 16 µs per call here).
   */
  sockSource?: 'syscall' | 'libc';
  /** Only these cgroup v2 ids (and their descendants); empty or absent = all. */
  cgroupIds?: readonly bigint[];
  /** Pids never reported (this process is always excluded). */
  excludePids?: readonly number[];
  /**
   * Re-scan /proc for new libc/libssl files every this many ms; 0 turns it off. Default 2000.
   * These scans run in the background, yielding to the event loop about every millisecond,
   * and skip processes whose start time and virtual size did not change since their last scan.
   */
  rescanIntervalMs?: number;
  /** Re-scan a process right after it execs (an in-kernel exec hint). Default true. */
  rescanOnExec?: boolean;
  /**
   * Tracepoint attach types to try, in order tp_btf → raw_tp → tracepoint
   * (default all). Restricting it forces a fallback, e.g. to test raw_tp on a
   * kernel that has tp_btf; the classic tracepoint needs tracefs mounted.
   */
  attachTypes?: ReadonlyArray<'tp_btf' | 'raw_tp' | 'tracepoint'>;
  /** Also probe executables that export SSL_read/SSL_write (static OpenSSL). Default true. */
  staticSsl?: boolean;
  /** Extra files to probe by path (a libssl, or a binary with static OpenSSL). */
  sslPaths?: readonly string[];
  /** Extra libc files to probe by path. */
  libcPaths?: readonly string[];
  /** procfs mount to scan (default '/proc'). */
  procRoot?: string;
  /**
   * Kernel BTF file for CO-RE relocations instead of /sys/kernel/btf/vmlinux
   * (libbpf's btf_custom_path; see ProbeSetOptions.btfCustomPath).
   */
  btfCustomPath?: string;
  /** Probe the host's libc/libssl in the standard directories at start, mapped or not. Default true. */
  hostLibraries?: boolean;
  /** Called with every raw ring record before it is decoded (auditing: e.g. proving no payload bytes). */
  onRawRecord?: (record: Buffer) => void;
  /** Ring buffer bytes: a power of two, at least 4096 (default 4 MiB). */
  ringBufferBytes?: number;
  /** Ring drain timer in ms (default 10). */
  drainLatencyMs?: number;
}

/** Whether a probe runs, how, and why not (or why a fallback). */
export interface NetProbeStatus {
  name: NetProbeName;
  attached: boolean;
  /** 'tp_btf', 'raw_tp', 'tracepoint' or 'uprobe'. */
  attachType?: string;
  reason?: string;
}

/**
 * Per-probe kernel accounting, summed over CPUs: the same counters as the
 * file/exec probes (`seen` counted on entry, apart from the four fates).
 */
export type NetProbeCounters = KernelCounters;

/** Running net probes. Breaking a `for await`, close() and `await using` detach everything. */
export interface NetProbes extends AsyncIterable<NetEvent[]>, AsyncDisposable {
  /** Current status per requested probe (uprobe probes change as files are found). */
  readonly status: readonly NetProbeStatus[];
  /** Counters per requested probe. Throws ProbesError 'CLOSED' after close(). */
  counters(): Map<NetProbeName, NetProbeCounters>;
  /**
   * The counters close() read after detaching every program and before
   * freeing the maps: the run's exact final accounting. Undefined until then.
   */
  readonly finalCounters: ReadonlyMap<NetProbeName, NetProbeCounters> | undefined;
  /** Files probed (or refused, with the reason), one per device+inode. */
  libraries(): Array<Omit<AttachedLibrary, 'links'>>;
  /**
   * Scan now, synchronously (all processes, or the given pids); returns how many new files were
   * probed. Periodic scans and exec hints do not use this: they run in the background.
   */
  rescan(pids?: readonly number[]): number;
  /** A process exec'd: scan it shortly (after its loader mapped libc). */
  notifyExec(pid: number): void;
  /** Records decoded so far. */
  readonly received: number;
  close(): Promise<void>;
}

const ALL: readonly NetProbeName[] = ['tcp_state', 'net_connect', 'net_accept', 'tls_handshake', 'tls_io'];
const STATE_VARIANTS = [
  {
    type: 'tp_btf',
    state: 'net_tcp_state_btf',
    exec: 'net_exec_hint_btf',
    enter: 'net_sys_enter_btf',
    exit: 'net_sys_exit_btf',
    io: ['net_sock_send_btf', 'net_sock_recv_btf'],
  },
  {
    type: 'raw_tp',
    state: 'net_tcp_state_raw',
    exec: 'net_exec_hint_raw',
    enter: 'net_sys_enter_raw',
    exit: 'net_sys_exit_raw',
    io: ['net_sock_send_raw', 'net_sock_recv_raw'],
  },
  {
    type: 'tracepoint',
    state: 'net_tcp_state_tp',
    exec: 'net_exec_hint_raw',
    enter: 'net_sys_enter_raw',
    exit: 'net_sys_exit_raw',
    io: ['net_sock_send_raw', 'net_sock_recv_raw'],
  },
] as const;
const HELPER_PROGRAMS = STATE_VARIANTS.flatMap((v) => [v.state, v.exec, v.enter, v.exit, ...v.io]);

/**
 * The sock_send_length/sock_recv_length tracepoints give a TLS session its
 * socket tuple. Older kernels (5.10 has neither) lack them: their programs
 * are then left out, so the rest still loads, and the TLS probes say why
 * their records carry no tuple. Every tracepoint has a btf_trace_<name>
 * type in the kernel's BTF.
 */
function sockIoPrograms(variant: (typeof STATE_VARIANTS)[number], btf: string): readonly string[] {
  return kernelBtfHasName('btf_trace_sock_send_length', btf) &&
    kernelBtfHasName('btf_trace_sock_recv_length', btf)
    ? variant.io
    : [];
}
/**
 * Whether the net object can read a TLS session's descriptor from the
 * syscall its socket I/O runs in (fd_of_current_syscall in net.bpf.c):
 * bpf_task_pt_regs (5.15) and bpf_get_current_task_btf (5.11), resolved by
 * libbpf against the same kernel BTF names.
 */
function syscallFdHelpers(btf: string): boolean {
  return (
    kernelBtfHasName('BPF_FUNC_task_pt_regs', btf) && kernelBtfHasName('BPF_FUNC_get_current_task_btf', btf)
  );
}
const NO_SOCK_IO =
  'the kernel has no sock_send_length/sock_recv_length tracepoints: TLS records carry no socket tuple';

const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));

/**
 * Path of the net object shipped with this package: dist/ → ../bpf in the
 * installed package, src/net → ../../bpf in the repository. The package's own
 * place is tried first so an installed copy never looks outside itself.
 */
export function netObjectPath(): string {
  const fromDist = join(here, '..', 'bpf', 'net.bpf.o');
  return existsSync(fromDist) ? fromDist : join(here, '..', '..', 'bpf', 'net.bpf.o');
}

function errText(e: unknown): string {
  if (e instanceof BpfError) {
    const log = e.libbpfLog?.trim().split('\n').slice(-2).join(' ');
    return `${e.code}: ${e.message}${log ? ` (${log})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

interface Resolved {
  file: string;
  probes: Set<NetProbeName>;
  dedup: boolean;
  /** cfg_user_stack: bit 0 connect/accept, bit 1 TLS. */
  userStack: number;
  sockSource: 'syscall' | 'libc';
  cgroupIds: bigint[];
  excludePids: number[];
  rescanIntervalMs: number;
  rescanOnExec: boolean;
  attachTypes: ReadonlyArray<'tp_btf' | 'raw_tp' | 'tracepoint'> | undefined;
  staticSsl: boolean;
  sslPaths: string[];
  libcPaths: string[];
  procRoot: string;
  /** The BTF libbpf relocates against: btfCustomPath, else the kernel's own. */
  btf: string;
  btfCustomPath: string | undefined;
  hostLibraries: boolean;
  onRawRecord: ((record: Buffer) => void) | undefined;
  ringBufferBytes: number;
  drainLatencyMs: number;
}

/** Per-family user stack capture of {@link NetProbeOptions.userStack}; a family left out is on. */
export interface NetUserStacks {
  /** net_connect / net_accept records. */
  sock?: boolean;
  /** tls_io / tls_handshake records. */
  tls?: boolean;
}

/** The cfg_user_stack bits of net.bpf.c (NET_STACK_SOCK, NET_STACK_TLS). */
function userStackMask(v: NetProbeOptions['userStack']): number {
  if (v === undefined || v === true) return 3;
  if (v === false) return 0;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ProbeOptionError(
      'userStack',
      `must be a boolean or { sock?: boolean, tls?: boolean }, got ${JSON.stringify(v)}`,
    );
  }
  for (const [k, x] of Object.entries(v)) {
    if ((k !== 'sock' && k !== 'tls') || (x !== undefined && typeof x !== 'boolean')) {
      throw new ProbeOptionError(
        'userStack',
        `unknown member or non-boolean value '${k}'`,
        'use { sock: boolean, tls: boolean }',
      );
    }
  }
  return (v.sock !== false ? 1 : 0) | (v.tls !== false ? 2 : 0);
}

function resolve(o: NetProbeOptions): Resolved {
  if (o === null || typeof o !== 'object') throw new ProbeOptionError('options', 'must be an object');
  if (o.onRawRecord !== undefined && typeof o.onRawRecord !== 'function') {
    throw new ProbeOptionError('onRawRecord', 'must be a function');
  }
  const probes = o.probes ?? ALL;
  for (const p of probes) {
    if (!ALL.includes(p))
      throw new ProbeOptionError('probes', `unknown probe '${String(p)}'`, `use ${ALL.join(', ')}`);
  }
  if (o.sockSource !== undefined && o.sockSource !== 'syscall' && o.sockSource !== 'libc') {
    throw new ProbeOptionError(
      'sockSource',
      `must be 'syscall' or 'libc', got ${JSON.stringify(o.sockSource)}`,
    );
  }
  if (o.attachTypes !== undefined) {
    const known = ['tp_btf', 'raw_tp', 'tracepoint'];
    if (
      !Array.isArray(o.attachTypes) ||
      o.attachTypes.length === 0 ||
      o.attachTypes.some((t) => !known.includes(t))
    ) {
      throw new ProbeOptionError('attachTypes', `must be a non-empty list of ${known.join(', ')}`);
    }
  }
  const ring = o.ringBufferBytes ?? 4 * 1024 * 1024;
  if (!Number.isInteger(ring) || ring < 4096 || (ring & (ring - 1)) !== 0) {
    throw new ProbeOptionError('ringBufferBytes', `must be a power of two >= 4096, got ${ring}`);
  }
  const rescan = o.rescanIntervalMs ?? 2000;
  if (!Number.isInteger(rescan) || rescan < 0) {
    throw new ProbeOptionError(
      'rescanIntervalMs',
      `must be a non-negative integer, got ${rescan}`,
      'use 0 to turn periodic scans off',
    );
  }
  const latency = o.drainLatencyMs ?? 10;
  if (!Number.isInteger(latency) || latency < 1 || latency > 10_000) {
    throw new ProbeOptionError('drainLatencyMs', `must be an integer 1..10000, got ${latency}`);
  }
  for (const p of o.excludePids ?? []) {
    if (!Number.isInteger(p) || p < 1 || p > 0xffffffff)
      throw new ProbeOptionError('excludePids', `not a pid: ${p}`);
  }
  for (const c of o.cgroupIds ?? []) {
    if (typeof c !== 'bigint' || c < 0n || c > 0xffffffffffffffffn)
      throw new ProbeOptionError(
        'cgroupIds',
        `not a cgroup id: ${String(c)}`,
        'pass cgroup v2 ids as bigint (the inode of the cgroup directory)',
      );
  }
  const file = o.objectPath ?? netObjectPath();
  if (!existsSync(file)) {
    throw new ProbesError('OBJECT_MISSING', `BPF object not found: ${file}`, {
      hint: 'build it with `make -C packages/probes/bpf` (or `npm run build:native -w @stellaops/probes`)',
    });
  }
  for (const p of [...(o.sslPaths ?? []), ...(o.libcPaths ?? [])]) {
    if (!existsSync(p))
      throw new ProbeOptionError(o.sslPaths?.includes(p) ? 'sslPaths' : 'libcPaths', `no such file: ${p}`);
  }
  return {
    file,
    probes: new Set(probes),
    dedup: o.dedup ?? true,
    userStack: userStackMask(o.userStack),
    sockSource: o.sockSource ?? 'syscall',
    cgroupIds: [...(o.cgroupIds ?? [])],
    excludePids: [process.pid, ...(o.excludePids ?? [])],
    rescanIntervalMs: rescan,
    rescanOnExec: o.rescanOnExec ?? true,
    attachTypes: o.attachTypes,
    staticSsl: o.staticSsl ?? true,
    sslPaths: [...(o.sslPaths ?? [])],
    libcPaths: [...(o.libcPaths ?? [])],
    procRoot: o.procRoot ?? '/proc',
    btf: o.btfCustomPath ?? KERNEL_BTF,
    btfCustomPath: o.btfCustomPath,
    hostLibraries: o.hostLibraries ?? true,
    onRawRecord: o.onRawRecord,
    ringBufferBytes: ring,
    drainLatencyMs: latency,
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** Open, configure, load one TCP-state variant; closes the object if it throws. */
function load(o: Resolved, variant: (typeof STATE_VARIANTS)[number]): BpfObject {
  const obj = BpfObject.open(o.file, {
    name: 'net',
    ...(o.btfCustomPath === undefined ? {} : { btfCustomPath: o.btfCustomPath }),
  });
  try {
    obj.setGlobal('cfg_dedup', o.dedup);
    obj.setGlobal('cfg_user_stack', o.userStack);
    // Connect/accept arguments are kept at sys_enter only when sys_exit consumes them.
    obj.setGlobal(
      'cfg_sock_syscalls',
      o.sockSource === 'syscall' && (o.probes.has('net_connect') || o.probes.has('net_accept')),
    );
    obj.setGlobal('cfg_tls_wire', o.probes.has('tls_handshake') || o.probes.has('tls_io'));
    obj.setGlobal('cfg_cgroup_filter', o.cgroupIds.length > 0);
    obj.setGlobal('cfg_wakeup_bytes', BigInt(o.ringBufferBytes / 2));
    obj.resizeMap('events', o.ringBufferBytes);
    obj.resizeMap('pid_exclude', Math.max(256, o.excludePids.length));
    obj.resizeMap('cgroup_allow', Math.max(1024, o.cgroupIds.length));
    const wanted = new Set<string>([
      variant.state,
      variant.exec,
      variant.enter,
      variant.exit,
      ...sockIoPrograms(variant, o.btf),
    ]);
    for (const p of HELPER_PROGRAMS) obj.setAutoload(p, wanted.has(p));
    obj.load();
    const one = Buffer.from([1]);
    for (const pid of o.excludePids) obj.map('pid_exclude').update(u32(pid), one);
    for (const id of o.cgroupIds) {
      const k = Buffer.alloc(8);
      k.writeBigUInt64LE(id);
      obj.map('cgroup_allow').update(k, one);
    }
    return obj;
  } catch (e) {
    obj.close();
    throw e;
  }
}

/**
 * Load and attach the network/TLS probes. Needs root (CAP_BPF, CAP_PERFMON,
 * CAP_SYS_ADMIN for uprobes) and a kernel with BTF; kernels without
 * tp_btf fall back to raw_tp, then to the classic tracepoint (needs tracefs).
 * Throws ProbeOptionError for a bad option, ProbesError 'OBJECT_MISSING'
 * when net.bpf.o was not built, and the loader's BpfError when no variant
 * loads (its message carries the verifier log).
 */
export function openNetProbes(options: NetProbeOptions = {}): NetProbes {
  const o = resolve(options);
  const notes: string[] = [];
  let lastError: unknown;
  const variants = o.attachTypes
    ? STATE_VARIANTS.filter((v) => o.attachTypes?.includes(v.type))
    : STATE_VARIANTS;
  for (const variant of variants) {
    let obj: BpfObject | undefined;
    try {
      obj = load(o, variant);
      const links: BpfLink[] = [];
      const status = attachFixed(obj, o, variant, links);
      return new NetProbesImpl(obj, o, status, notes, links);
    } catch (e) {
      obj?.close();
      lastError = e;
      notes.push(`${variant.type}: ${errText(e)}`);
    }
  }
  throw lastError;
}

function attachFixed(
  obj: BpfObject,
  o: Resolved,
  variant: (typeof STATE_VARIANTS)[number],
  links: BpfLink[],
): NetProbeStatus[] {
  const status: NetProbeStatus[] = [];
  const attach = (program: string) => links.push(obj.attach(program));
  const fallback = variant.type === 'tp_btf' ? undefined : `tp_btf unavailable: using ${variant.type}`;
  if (o.probes.has('tcp_state')) {
    attach(variant.state);
    status.push({
      name: 'tcp_state',
      attached: true,
      attachType: variant.type,
      ...(fallback ? { reason: fallback } : {}),
    });
  }
  const sockSyscalls =
    o.sockSource === 'syscall' && (o.probes.has('net_connect') || o.probes.has('net_accept'));
  // sys_enter also sees the first handshake message a TLS session writes: its role and server name.
  if (sockSyscalls || o.probes.has('tls_handshake') || o.probes.has('tls_io')) attach(variant.enter);
  if (o.probes.has('net_connect') || o.probes.has('net_accept')) {
    attach(variant.exit);
    if (o.sockSource === 'syscall') {
      for (const name of ['net_accept', 'net_connect'] as const) {
        if (!o.probes.has(name)) continue;
        status.push({
          name,
          attached: true,
          attachType: variant.type,
          ...(fallback ? { reason: fallback } : {}),
        });
      }
    }
  }
  if (o.probes.has('tls_io') || o.probes.has('tls_handshake'))
    for (const p of sockIoPrograms(variant, o.btf)) attach(p);
  if (o.rescanOnExec && usesUprobes(o)) attach(variant.exec);
  return status;
}

/** Whether any requested probe is a uprobe on discovered files. */
function usesUprobes(o: Resolved): boolean {
  return (
    o.probes.has('tls_io') ||
    o.probes.has('tls_handshake') ||
    (o.sockSource === 'libc' && (o.probes.has('net_connect') || o.probes.has('net_accept')))
  );
}

class NetProbesImpl implements NetProbes {
  readonly #obj: BpfObject;
  readonly #o: Resolved;
  readonly #fixed: NetProbeStatus[];
  readonly #reader: RingBufferReader;
  readonly #hints: RingBufferReader | undefined;
  readonly #counters: BpfMap;
  readonly #ncpu = numPossibleCpus();
  readonly #scanner: LibraryScanner;
  readonly #attacher: UprobeAttacher;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #pending = new Set<NodeJS.Timeout>();
  /** The background scan running now, if any (periodic scans and exec hints). */
  #scanning: Promise<void> | undefined;
  #wantFullScan = false;
  readonly #wantPids = new Set<number>();
  readonly #stopScans = new AbortController();
  #received = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #links: BpfLink[];
  #final: Map<NetProbeName, NetProbeCounters> | undefined;

  constructor(obj: BpfObject, o: Resolved, fixed: NetProbeStatus[], notes: string[], links: BpfLink[]) {
    this.#obj = obj;
    this.#links = links;
    this.#o = o;
    this.#fixed = fixed;
    if (notes.length > 0) for (const s of fixed) s.reason = [s.reason, ...notes].filter(Boolean).join('; ');
    this.#counters = obj.map('counters');
    const kinds: LibraryKind[] = [];
    if (o.sockSource === 'libc' && (o.probes.has('net_connect') || o.probes.has('net_accept')))
      kinds.push('libc');
    if (o.probes.has('tls_io') || o.probes.has('tls_handshake')) kinds.push('libssl', 'ssl-static');
    this.#scanner = new LibraryScanner({ procRoot: o.procRoot, staticSsl: o.staticSsl });
    // Without tls_io, SSL_read/SSL_write are not probed: a handshake-only collector pays no trap per I/O call.
    // SSL_set_fd only where the kernel cannot name the session's descriptor from its socket I/O.
    const fdFromSyscalls = sockIoPrograms(STATE_VARIANTS[0], o.btf).length > 0 && syscallFdHelpers(o.btf);
    const sslSpecs = SSL_UPROBES.filter(
      (u) =>
        (o.probes.has('tls_io') || !SSL_IO_SYMBOLS.has(u.symbol)) &&
        (u.symbol !== 'SSL_set_fd' || !fdFromSyscalls),
    );
    this.#attacher = new UprobeAttacher(obj, kinds, sslSpecs);
    for (const p of o.libcPaths) this.#attachPath('libc', p);
    for (const p of o.sslPaths) this.#attachPath('libssl', p);
    if (o.hostLibraries) for (const t of hostLibraries()) this.#attacher.attach(t);
    this.#reader = obj.ringBuffer('events', {
      latencyMs: o.drainLatencyMs,
      highWaterMark: RING_HIGH_WATER_BATCHES,
    });
    if (o.rescanOnExec && usesUprobes(o)) {
      // 50 ms: an idle collector wakes 20 times a second for hints, not 200.
      const hints = obj.ringBuffer('exec_hints', { latencyMs: 50 });
      this.#hints = hints;
      void (async () => {
        for await (const batch of hints)
          for (const r of batch) if (r.length >= 4) this.notifyExec(r.readUInt32LE(0));
      })().catch(() => {
        // The hint reader ends when the probes close; the periodic scan covers anything missed.
      });
    }
    // Synchronous once, at start, before any batch is delivered: nothing is draining yet.
    this.rescan();
    if (o.rescanIntervalMs > 0) {
      this.#timer = setInterval(() => this.#requestScan(), o.rescanIntervalMs);
      this.#timer.unref();
    }
  }

  /**
   * Scan in the background (every process, or the given pids) without
   * holding the event loop: the drain of the ring keeps running while a scan
   * reads /proc. Requests made while a scan runs are merged into the next one.
   */
  #requestScan(pids?: readonly number[]): void {
    if (this.#closed) return;
    if (pids) for (const p of pids) this.#wantPids.add(p);
    else this.#wantFullScan = true;
    this.#scanning ??= this.#runScans().finally(() => {
      this.#scanning = undefined;
    });
  }

  async #runScans(): Promise<void> {
    const signal = this.#stopScans.signal;
    while (!this.#closed && (this.#wantFullScan || this.#wantPids.size > 0)) {
      const full = this.#wantFullScan;
      const pids = [...this.#wantPids];
      this.#wantFullScan = false;
      this.#wantPids.clear();
      try {
        // Pids named by exec hints are scanned even if they look unchanged: exec keeps the start time.
        const targets = full
          ? await this.#scanner.scanAsync(undefined, { signal })
          : await this.#scanner.scanAsync(pids, { signal, force: true });
        for (const t of targets) {
          if (this.#closed) return;
          // Attaching is a syscall per probe (milliseconds for a new file): one file per turn of the loop.
          if (this.#attacher.attach(t)) await new Promise<void>((r) => setImmediate(r));
        }
      } catch {
        // A scan races with exiting processes; the next one catches up.
      }
    }
  }

  #attachPath(kind: LibraryKind, path: string): void {
    const key = fileKey(path);
    if (!key) throw new ProbeOptionError(kind === 'libc' ? 'libcPaths' : 'sslPaths', `cannot stat ${path}`);
    this.#attacher.attach({ kind, key, path, mappedPath: path, pid: 0 });
  }

  get received(): number {
    return this.#received;
  }

  get status(): readonly NetProbeStatus[] {
    const libs = [...this.#attacher.libraries.values()];
    const ok = (k: LibraryKind[]) => libs.filter((l) => k.includes(l.target.kind) && l.links.length > 0);
    const bad = (k: LibraryKind[]) => libs.filter((l) => k.includes(l.target.kind) && l.error);
    const out: NetProbeStatus[] = [...this.#fixed];
    const up = (name: NetProbeName, kinds: LibraryKind[], what: string) => {
      if (!this.#o.probes.has(name)) return;
      const good = ok(kinds);
      const failed = bad(kinds);
      const reason =
        good.length === 0
          ? `no ${what} file found in any process yet${failed.length ? `; refused: ${failed.map((f) => `${f.target.path}: ${f.error}`).join('; ')}` : ''}`
          : failed.length
            ? `${failed.length} file(s) refused: ${failed.map((f) => `${f.target.path}: ${f.error}`).join('; ')}`
            : undefined;
      const noIo =
        name.startsWith('tls_') &&
        good.length > 0 &&
        sockIoPrograms(STATE_VARIANTS[0], this.#o.btf).length === 0;
      const why = [reason, noIo ? NO_SOCK_IO : undefined].filter(Boolean).join('; ');
      out.push({ name, attached: good.length > 0, attachType: 'uprobe', ...(why ? { reason: why } : {}) });
    };
    if (this.#o.sockSource === 'libc') {
      up('net_connect', ['libc'], 'libc');
      up('net_accept', ['libc'], 'libc');
    }
    up('tls_handshake', ['libssl', 'ssl-static'], 'OpenSSL');
    up('tls_io', ['libssl', 'ssl-static'], 'OpenSSL');
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  libraries(): Array<Omit<AttachedLibrary, 'links'>> {
    return [...this.#attacher.libraries.values()].map(({ links: _l, ...rest }) => rest);
  }

  rescan(pids?: readonly number[]): number {
    if (this.#closed) throw new ProbesError('CLOSED', 'net probes are closed');
    let added = 0;
    for (const t of this.#scanner.scan(pids)) {
      const e = this.#attacher.attach(t);
      if (e && e.links.length > 0) added++;
    }
    return added;
  }

  notifyExec(pid: number): void {
    if (this.#closed) return;
    // The exec'd image maps libc only once its dynamic loader runs, and
    // libssl may be dlopen'ed later (Python's ssl module): scan twice.
    for (const delay of [20, 250]) {
      const t = setTimeout(() => {
        this.#pending.delete(t);
        this.#requestScan([pid]);
      }, delay);
      t.unref();
      this.#pending.add(t);
    }
  }

  get finalCounters(): ReadonlyMap<NetProbeName, NetProbeCounters> | undefined {
    return this.#final;
  }

  counters(): Map<NetProbeName, NetProbeCounters> {
    if (this.#closed) throw new ProbesError('CLOSED', 'net probes are closed');
    return this.#read();
  }

  #read(): Map<NetProbeName, NetProbeCounters> {
    const out = new Map<NetProbeName, NetProbeCounters>();
    for (const name of ALL) {
      if (!this.#o.probes.has(name)) continue;
      out.set(name, readCounters(this.#counters, NET_COUNTER_SLOT[name], this.#ncpu));
    }
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<NetEvent[]> {
    try {
      for await (const batch of this.#reader) {
        const events: NetEvent[] = [];
        const audit = this.#o.onRawRecord;
        for (const rec of batch) {
          audit?.(rec);
          events.push(decodeNetRecord(rec));
        }
        this.#received += events.length;
        yield events;
      }
    } finally {
      await this.close();
    }
  }

  close(): Promise<void> {
    // One close for every caller: a second caller waits for the detach to end.
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const t of this.#pending) clearTimeout(t);
    this.#pending.clear();
    // A background scan must not attach to an object about to be closed.
    this.#stopScans.abort();
    await this.#scanning;
    // Detach every program first, then read the counters nothing can add to any more.
    await this.#attacher.closeYielding();
    for (const l of this.#links) {
      try {
        l.close();
      } catch {
        // this.#obj.close() below detaches it for good
      }
    }
    try {
      this.#final = settledCounters(() => this.#read());
    } catch {
      // the maps are unreadable: the caller's last read stands
    }
    this.#reader.close();
    this.#hints?.close();
    this.#obj.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
