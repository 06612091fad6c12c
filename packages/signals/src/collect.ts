import {
  type ContainerField,
  type ContainerResolver,
  ContainerTracker,
  type ContainerTrackerOptions,
  containerField,
  EnrichmentStage,
  FileDigests,
  type Resolution,
  SymbolResolver,
} from '@stellaops/enrich';
import {
  type CollectorStatusRecord,
  type EvidenceRecord,
  encodeRecord,
  type RecordType,
  type StackFrame,
  u64Halves,
} from '@stellaops/ndjson';
import {
  FileOpenView,
  type NetEvent,
  type NetProbes,
  openNetProbes,
  openProbeSet,
  type ProbeEvent,
  type ProbeName,
  type ProbeSet,
  TlsCorrelator,
} from '@stellaops/probes';
import { EventEmitter } from 'eventemitter3';
import { CollectError } from './errors.js';
import { CROSS_CHECK_EVERY, FUSED_FILE_OPEN, type FusedEnv } from './fused.js';
import { type HostIdentity, hostIdentity } from './host.js';
import { IdentityStage } from './identity.js';
import { compilePathFilter } from './path-filter.js';
import { AsyncQueue } from './queue.js';
import { headerOf, type KernelEvent, probeNameOf, toRecord } from './records.js';
import { verifiedStack } from './stack.js';

/** The probe groups `collect()` can run, as stellaops.yaml names them. */
export const COLLECT_PROBES = ['file_open', 'exec', 'tcp_state', 'libc_net', 'tls'] as const;
export type CollectProbe = (typeof COLLECT_PROBES)[number];

/** Per-family switch of {@link CollectOptions.userStacks}; a family left out keeps its default. */
export interface UserStackOptions {
  /** Stacks on net_connect/net_accept records (default true). */
  libc_net?: boolean;
  /** Stacks on tls_io/tls_handshake records (default false). */
  tls?: boolean;
}

/** The families of {@link CollectOptions.userStacks} as the net probes take them, checked. */
function userStackFamilies(v: CollectOptions['userStacks']): { sock: boolean; tls: boolean } {
  if (v === undefined) return { sock: true, tls: false };
  if (typeof v === 'boolean') return { sock: v, tls: v };
  const bad =
    v === null || typeof v !== 'object' || Array.isArray(v)
      ? JSON.stringify(v)
      : Object.entries(v).find(([k, x]) => (k !== 'libc_net' && k !== 'tls') || typeof x !== 'boolean')?.[0];
  if (bad !== undefined) {
    throw new CollectError('USAGE', `userStacks: unexpected ${bad}`, {
      hint: 'pass true, false, or { libc_net: boolean, tls: boolean }',
    });
  }
  return { sock: v.libc_net ?? true, tls: v.tls ?? false };
}

/** Options of {@link collect}. Every member is optional. */
export interface CollectOptions {
  /** Probe groups on (true) or off (false); all on by default. */
  probes?: Partial<Record<CollectProbe, boolean>>;
  filters?: {
    /** cgroup v2 ids to trace (and their descendants); empty = all. In-kernel. */
    cgroupIds?: bigint[];
    /** Container ids (or unique prefixes) to keep; empty = every container and the host. */
    targetContainers?: string[];
    /** Path globs to keep (`/etc/**`); empty = all. Prefixes in-kernel, the rest exactly in user space. */
    pathAllowlist?: string[];
    /** Path globs never to keep. */
    pathDenylist?: string[];
    /** Process ids never traced; default: this process. */
    excludePids?: number[];
  };
  /** In-kernel dedup of facts already reported (default on, 65536 entries). */
  dedup?: { enabled?: boolean; maxEntries?: number };
  /** Ring buffer size per probe object, bytes, a power of two (default: 16 MiB for file/exec, 4 MiB for network/TLS). */
  ringBufferBytes?: number;
  /** How often rings are drained, ms (default 10). */
  drainLatencyMs?: number;
  /**
   * Container attribution: runtime sockets and cache sizes, or false to skip
   * it (records then carry no `container`). Default: auto-discover runtimes.
   */
  enrich?: false | (ContainerTrackerOptions & { waitMs?: number });
  /**
   * User stacks per record family: `libc_net` (net_connect/net_accept,
   * default on) and `tls` (tls_io/tls_handshake, default off); `true` or
   * `false` sets both. A family that is off is not unwound in the kernel.
   * Only frames verified to be code of a file the process maps executable
   * are written (docs/probe-reference.md, "User stacks").
   */
  userStacks?: boolean | UserStackOptions;
  /**
   * Where connect/accept records come from: the syscalls (default: every
   * program, static binaries too, cheapest) or libc uprobes (the libc call
   * itself, so a user stack starts at the function that called connect()).
   */
  socketSource?: 'syscall' | 'libc';
  /**
   * sha256 of executed files and of shared objects processes open to map
   * (`exe_digest`, `file_digest`), read through each process's root off the
   * hot path; a record waits at most `waitMs` (default 1000) for its digest,
   * then goes out with the reason instead. `false`: no digests (the
   * `runtime_setup` mark stays). Files over `maxFileBytes` (default 512 MiB)
   * are not read.
   */
  digests?: false | { waitMs?: number; maxFileBytes?: number };
  /** Interval of in-band collector_status records, ms (default 60000). */
  statusIntervalMs?: number;
  /** Host identity; read from the machine by default. */
  host?: HostIdentity;
  /** Path of the loader's native binding, when not in a default place. */
  bindingPath?: string;
  /**
   * Kernel BTF file for kernels without /sys/kernel/btf/vmlinux (libbpf's
   * btf_custom_path; from BTFHub or `pahole --btf_encode_detached`, for the
   * exact kernel build). See docs/deployment-guide.md#kernel-requirements.
   */
  btfCustomPath?: string;
  /** First sequence number of the stream (default 0). */
  firstSeq?: bigint;
  /**
   * How long close() waits for the rings to empty into the stream, ms
   * (default 5000; `close({ fast: true })` skips the wait). Part of the stop
   * budget in docs/operator-runbook.md.
   */
  drainTimeoutMs?: number;
  /**
   * Records read from the rings but not yet through the pipeline before
   * reading pauses (default 16384); past it the rings are not read, so
   * overload shows as `lost` in the kernel counters and memory stays bounded.
   */
  maxQueuedRecords?: number;
  /**
   * The same bound in bytes of event data (paths, argv; default 8 MiB):
   * whichever of the two is reached first pauses reading.
   */
  maxQueuedBytes?: number;
}

/**
 * One batch of the stream ({@link Collection.batches}): records in stream
 * order, each with its canonical NDJSON line. A ring batch becomes one
 * evidence batch; `collector_status` records come in batches of their own.
 *
 * From {@link Collection.batches} the lines are written straight into
 * {@link data} (most of them by the fused encoders, from the ring records:
 * no record object is made); `records` and `lines` are then built from the
 * bytes on first use, so a consumer that only writes bytes never pays for
 * them.
 */
export interface EvidenceBatch {
  /** The records, in stream order (built from the lines on first use where only bytes were written). */
  readonly records: readonly EvidenceRecord[];
  /** Each record's canonical NDJSON line (RFC 8785, ending in "\n"), same order. */
  readonly lines: readonly string[];
  /** The probe each record is counted under ('' for collector_status). */
  readonly probes: readonly string[];
  /** Each record's type, same order. */
  readonly types: readonly RecordType[];
  /** Every line back to back, UTF-8. */
  readonly data: Buffer;
  /** Where each line ends in {@link data} (exclusive, after its "\n"). */
  readonly ends: readonly number[];
  /** Record `i` alone (built from its line if need be, not the whole batch). */
  recordAt(i: number): EvidenceRecord;
}

/** Exact accounting of one probe at a point of the stream. */
export interface ProbeAccount {
  name: string;
  attached: boolean;
  attachType: string;
  reason?: string;
  /** Events the kernel program saw (its own count, on entry, before any filter). */
  seen: bigint;
  /** Dropped by a filter: in the kernel, or in user space (path globs, target). */
  filtered: bigint;
  deduplicated: bigint;
  /** Records of this probe written to the stream. */
  emitted: bigint;
  /** Lost in the kernel, refused by the schema, or (final account) still in flight at the stop. */
  lost: bigint;
  /** seen - (filtered + deduplicated + emitted + lost) while running: in a program, a ring or the pipeline; 0 in a final account. */
  inFlight: bigint;
  /**
   * Whether the counts add up: seen = filtered + deduplicated + emitted + lost
   * (+ inFlight while running), and user space never handled more records
   * than the kernel emitted. False is a collector defect, and warned about.
   */
  balanced: boolean;
  /** The stages apart: the kernel's counters, and what user space did with the records it read. */
  stages: {
    kernel: { seen: bigint; filtered: bigint; deduplicated: bigint; emitted: bigint; lost: bigint };
    userFiltered: bigint;
    unencodable: bigint;
    /** Records the kernel emitted that are not through the pipeline yet (in a ring or queued). */
    pipeline: bigint;
  };
}

type KernelCounts = ProbeAccount['stages']['kernel'];
const NO_COUNTS: KernelCounts = { seen: 0n, filtered: 0n, deduplicated: 0n, emitted: 0n, lost: 0n };

/**
 * Where a {@link Collection} is: `starting` until the probes are attached,
 * `running`, `stopping` from `close()` until the final status is out and
 * everything is detached, `stopped`.
 */
export type CollectionState = 'starting' | 'running' | 'stopping' | 'stopped';

/** Longest the container tracker waits for a pipeline nobody drains after close(), ms. */
const TRACKER_GRACE_MS = 10_000;

/** Events of a {@link Collection}. */
export interface CollectionEvents {
  /** A collector_status record was produced (it is also in the record stream). */
  status: [CollectorStatusRecord];
  /** A probe lost records since the last check (ring full or reader too slow). */
  drop: [{ probe: string; newlyLost: bigint; totalLost: bigint }];
  /** Something degraded but collection goes on (a runtime unreachable, a stack unreadable). */
  warning: [string];
}

/** The events of one ring batch, as the pumps queue them. */
interface RingBatch {
  readonly events: readonly KernelEvent[];
  /** Event data bytes, estimated (what {@link CollectOptions.maxQueuedBytes} counts). */
  readonly bytes: number;
}

/**
 * What goes through the enrichment stage: one item per distinct cgroup of a
 * ring batch (the first pid seen in it), all pointing at the batch, so a
 * container is resolved once per batch, not once per record.
 */
interface CgroupOfBatch {
  readonly cgroupId: bigint;
  readonly pid: number;
  /** The resolver answers this cgroup per process (a hybrid host's v2 root): one item per (cgroup, pid). */
  readonly perProcess: boolean;
  readonly batch: RingBatch;
  readonly enrichment?: Resolution;
}

interface ProbeRuntime {
  status: ReadonlyArray<{ name: string; attached: boolean; attachType?: string; reason?: string }>;
  counters(): ReadonlyMap<string, KernelCounts>;
  /** Read by close() after detaching: what a final account uses. */
  readonly finalCounters: ReadonlyMap<string, KernelCounts> | undefined;
}

/**
 * A running collection: an async iterable of schema-valid evidence records
 * (with `collector_status` records in-band), and an event emitter for
 * status and drops. Breaking out of `for await`, `close()` and `await using`
 * all stop the probes, drain what they produced, write a final status
 * record and detach everything.
 */
export class Collection extends EventEmitter<CollectionEvents> implements AsyncIterable<EvidenceRecord> {
  /** Resolves once every probe is attached; rejects with why collection cannot start. */
  readonly ready: Promise<void>;
  /** Unix-epoch ns when collection started. */
  readonly startedWallNs: bigint;
  /** Host the records are attributed to. */
  readonly host: HostIdentity;

  #options: CollectOptions;
  #fileexec: ProbeSet | undefined;
  #net: NetProbes | undefined;
  #tracker: ContainerTracker | undefined;
  #symbols = new SymbolResolver();
  /** Runtime set-up marks and file digests (exec identity), set when the pipeline starts. */
  #identity: IdentityStage | undefined;
  #correlator = new TlsCorrelator();
  #input = new AsyncQueue<CgroupOfBatch[]>();
  /** The next seq, as u32 halves (the fused encoders write it without BigInt). */
  #seqHi = 0;
  #seqLo = 0;
  #wallOffset: bigint;
  /** What fused lines take from the stream; undefined when they cannot be used in this run. */
  #fusedEnv: FusedEnv | undefined;
  /** Fused records written, for the cross-check of one in {@link CROSS_CHECK_EVERY}. */
  #fusedCount = 0;
  /** The canonical text of each frozen container member, for fused lines. */
  #containerTexts = new WeakMap<ContainerField, Buffer>();
  /** Where byte batches are built (reused, grows to the largest batch). */
  #scratch: Buffer = Buffer.allocUnsafe(256 * 1024);
  /** Byte batches are views of {@link #scratch} (see {@link batches}), not copies. */
  #reuse = false;
  // Plain numbers (exact to 2^53) on the hot path; bigints only in accounts.
  #userFiltered = new Map<string, number>();
  #unencodable = new Map<string, number>();
  #lines = new WeakMap<EvidenceRecord, string>();
  /** The probe each yielded record counts under (for {@link Collection.discard}). */
  #probeOf = new WeakMap<EvidenceRecord, string>();
  /** Batches given back by {@link Collection.discardBatch} (each counts once). */
  #discarded = new WeakSet<EvidenceBatch>();
  #emitted = new Map<string, number>();
  #lastLost = new Map<string, bigint>();
  #pumps: Promise<void>[] = [];
  #closing: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #stopped = false;
  #fast = false;
  /** From this time (ms) on, a stopping pipeline leaves its backlog (counted as lost). */
  #abandonAt: number | undefined;
  #iterating = false;
  /** The record loop is over (final status yielded, or the consumer left). */
  #pipelineOver = false;
  #trackerTimer: NodeJS.Timeout | undefined;
  #state: CollectionState = 'starting';
  #records = 0;
  /** Records read from the rings and not yet through the pipeline (queued, enriching or being built). */
  #queued = 0;
  /** Their event bytes. */
  #queuedBytes = 0;
  /** Pumps waiting for the backlog to shrink. */
  #spaceWaiters: Array<() => void> = [];
  /** Last counters read from each runtime: what the final status uses once they are closed. */
  #lastCounters = new Map<ProbeRuntime, ReturnType<ProbeRuntime['counters']>>();
  /**
   * One frozen `container` member per resolution: the tracker hands out the
   * same Resolution for every record of a cgroup, and the encoder is twice
   * as fast on a shared frozen object (docs/performance.md).
   */
  #containerFields = new WeakMap<Resolution, ContainerField | undefined>();

  constructor(options: CollectOptions = {}) {
    super();
    this.#options = options;
    this.host = options.host ?? hostIdentity();
    [this.#seqHi, this.#seqLo] = u64Halves(options.firstSeq ?? 0n);
    // bpf_ktime_get_ns() and process.hrtime() both read CLOCK_MONOTONIC; one
    // offset maps kernel times to wall clock for the whole run.
    const mono = process.hrtime.bigint();
    const wall = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    this.#wallOffset = wall - mono;
    this.startedWallNs = wall;
    if (this.#wallOffset >= 0n) {
      try {
        const [offHi, offLo] = u64Halves(this.#wallOffset);
        const host = FUSED_FILE_OPEN.fragment('host_id', this.host.hostId);
        this.#fusedEnv = { seqHi: 0, seqLo: 0, offHi, offLo, host, container: undefined };
      } catch {
        // A host id the schema refuses: every record takes the generic path (and is counted there).
      }
    }
    this.ready = this.#start();
    this.ready.then(
      () => {
        if (this.#state === 'starting') this.#state = 'running';
      },
      () => {
        this.#state = 'stopped';
      },
    );
  }

  /** Records written to the stream so far (all types). */
  get records(): bigint {
    return BigInt(this.#records);
  }

  /** Probe runtimes and attachment, for status displays. */
  get attachedProbes(): ProbeAccount[] {
    return this.#accounts();
  }

  /** Lifecycle state, for status displays (`stopping` while close() runs). */
  get state(): CollectionState {
    return this.#state;
  }

  /** The container tracker, when enrichment runs. */
  get tracker(): ContainerTracker | undefined {
    return this.#tracker;
  }

  async #start(): Promise<void> {
    const o = this.#options;
    for (const [name, v] of [
      ['maxQueuedRecords', o.maxQueuedRecords],
      ['maxQueuedBytes', o.maxQueuedBytes],
    ] as const) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) {
        throw new CollectError('USAGE', `${name} must be a whole number >= 1 (got ${String(v)})`, {
          hint: `leave ${name} out for the default (maxQueuedRecords 16384, maxQueuedBytes 8 MiB), or pass a positive integer`,
        });
      }
    }
    const on = (p: CollectProbe) => o.probes?.[p] !== false;
    const filter = compilePathFilter(o.filters?.pathAllowlist ?? [], o.filters?.pathDenylist ?? []);
    const excludePids = o.filters?.excludePids ?? [process.pid];
    const cgroupIds = o.filters?.cgroupIds ?? [];
    const common = {
      ...(o.ringBufferBytes !== undefined ? { ringBufferBytes: o.ringBufferBytes } : {}),
      ...(o.drainLatencyMs !== undefined ? { drainLatencyMs: o.drainLatencyMs } : {}),
      ...(o.btfCustomPath !== undefined ? { btfCustomPath: o.btfCustomPath } : {}),
    };
    if (o.enrich !== false) {
      try {
        this.#tracker = await ContainerTracker.create(o.enrich ?? {});
      } catch (e) {
        throw new CollectError('ENRICH', `container attribution cannot start: ${(e as Error).message}`, {
          cause: e,
          hint: 'fix the runtime socket option, or pass enrich: false to collect without container attribution',
        });
      }
    }
    try {
      const fileexecProbes: ProbeName[] = [];
      if (on('file_open')) fileexecProbes.push('file_open', 'file_open_lsm');
      if (on('exec')) fileexecProbes.push('exec', 'exit');
      // Each new cgroup's id and path goes to the tracker as it is made (no record is written),
      // so a container that lived 5 ms resolves without racing its cgroup's removal.
      const tracker = this.#tracker;
      if (tracker && fileexecProbes.length > 0) fileexecProbes.push('cgroup_mkdir');
      if (fileexecProbes.length > 0) {
        this.#fileexec = openProbeSet({
          probes: fileexecProbes,
          ...(tracker && {
            onCgroupMkdir: (e) => {
              tracker.learnCgroup(e.id, e.path);
              // Never a record: `emitted` stays the count of records in the stream.
              this.#count(this.#userFiltered, 'cgroup_mkdir');
            },
          }),
          filters: {
            cgroupIds,
            pathAllowPrefixes: [...filter.kernelAllowPrefixes],
            pathDenyPrefixes: [...filter.kernelDenyPrefixes],
            excludePids,
          },
          dedup: { enabled: o.dedup?.enabled ?? true, maxEntries: o.dedup?.maxEntries ?? 65536 },
          ...common,
          ...(o.bindingPath ? { bindingPath: o.bindingPath } : {}),
        });
      }
      const netProbes = [
        ...(on('tcp_state') ? (['tcp_state'] as const) : []),
        ...(on('libc_net') ? (['net_connect', 'net_accept'] as const) : []),
        ...(on('tls') ? (['tls_handshake', 'tls_io'] as const) : []),
      ];
      if (netProbes.length > 0) {
        this.#net = openNetProbes({
          probes: netProbes,
          dedup: o.dedup?.enabled ?? true,
          userStack: userStackFamilies(o.userStacks),
          sockSource: o.socketSource ?? 'syscall',
          cgroupIds,
          excludePids,
          ...common,
        });
      }
    } catch (e) {
      await this.#teardown();
      throw e;
    }
    // Set before the pumps start, so no record is ever checked without it.
    this.#userFilter = (k) => {
      if (k.source === 'fileexec' && k.event.kind === 'file_open' && filter.needsUserCheck) {
        return filter.allows(k.event.path.toString('utf8'));
      }
      return true;
    };
    // File opens as views read in place from the ring batch: the fused encoder writes them from the bytes.
    if (this.#fileexec)
      this.#pumps.push(
        this.#pump(this.#fileexec.views(), (ev: ProbeEvent) => ({ source: 'fileexec', event: ev })),
      );
    if (this.#net) this.#pumps.push(this.#pump(this.#net, (ev: NetEvent) => ({ source: 'net', event: ev })));
    void Promise.all(this.#pumps).then(
      () => this.#input.end(),
      (e) => this.#input.fail(e),
    );
  }

  #userFilter: (k: KernelEvent) => boolean = () => true;

  async #pump<E>(source: AsyncIterable<E[]>, wrap: (e: E) => KernelEvent): Promise<void> {
    const maxRecords = this.#options.maxQueuedRecords ?? 16_384;
    const maxBytes = this.#options.maxQueuedBytes ?? 8 * 1024 * 1024;
    for await (const raw of source) {
      if (raw.length === 0) continue;
      const events: KernelEvent[] = new Array(raw.length);
      const groups: CgroupOfBatch[] = [];
      const batch: RingBatch = { events, bytes: 0 };
      let bytes = 0;
      let lastCg: bigint | undefined;
      let lastPid = -1;
      let per = false;
      // The last view's cgroup id halves: the same cgroup again needs no BigInt.
      let lastLo = -1;
      let lastHi = -1;
      for (let i = 0; i < raw.length; i++) {
        const k = wrap(raw[i] as E);
        events[i] = k;
        const h = headerOf(k);
        bytes += eventBytes(k);
        let same = false;
        if (h instanceof FileOpenView) {
          const lo = h.cgroupLo;
          const hi = h.cgroupHi;
          same = lo === lastLo && hi === lastHi;
          lastLo = lo;
          lastHi = hi;
        } else lastLo = lastHi = -1;
        // Ring batches are mostly one cgroup after another: a linear scan of
        // the few distinct ones beats a Map per batch.
        if (!same && h.cgroupId !== lastCg) {
          lastCg = h.cgroupId;
          lastPid = -1;
          per = this.#perProcess(h.cgroupId);
          if (!per && !groups.some((g) => g.cgroupId === h.cgroupId))
            groups.push({ cgroupId: h.cgroupId, pid: h.pid, perProcess: false, batch });
        }
        if (per && h.pid !== lastPid) {
          lastPid = h.pid;
          if (!groups.some((g) => g.cgroupId === h.cgroupId && g.pid === h.pid))
            groups.push({ cgroupId: h.cgroupId, pid: h.pid, perProcess: true, batch });
        }
      }
      (batch as { bytes: number }).bytes = bytes;
      this.#queued += events.length;
      this.#queuedBytes += bytes;
      this.#input.push(groups);
      // Backpressure: past either bound stop reading the ring, so an
      // overload fills the kernel ring, where every dropped record is counted
      // as lost, instead of growing this process.
      while ((this.#queued > maxRecords || this.#queuedBytes > maxBytes) && !this.#stopped) {
        await new Promise<void>((r) => this.#spaceWaiters.push(r));
      }
      if (this.#stopped) break;
    }
  }

  /** Whether container attribution answers this cgroup per process (see {@link CgroupOfBatch}). */
  #perProcess(cgroupId: bigint): boolean {
    try {
      // Through the stage's resolver interface (perProcess is optional there).
      const resolver: ContainerResolver | undefined = this.#tracker;
      return resolver?.perProcess?.(cgroupId) ?? false;
    } catch {
      return false;
    }
  }

  /** A ring batch is through the pipeline: its room is free again. */
  #release(batch: RingBatch): void {
    this.#queued -= batch.events.length;
    this.#queuedBytes -= batch.bytes;
    this.#wakePumps();
  }

  #wakePumps(): void {
    const waiters = this.#spaceWaiters;
    if (waiters.length === 0) return;
    this.#spaceWaiters = [];
    for (const w of waiters) w();
  }

  /** The next seq, as a bigint (the generic path and status records). */
  get #seq(): bigint {
    return (BigInt(this.#seqHi) << 32n) | BigInt(this.#seqLo);
  }

  #nextSeq(): bigint {
    const s = this.#seq;
    this.#bumpSeq();
    return s;
  }

  #bumpSeq(): void {
    if (++this.#seqLo === 0x1_0000_0000) {
      this.#seqLo = 0;
      this.#seqHi++;
    }
  }

  #count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  #targetMatch(r: Resolution | undefined): boolean {
    const targets = this.#options.filters?.targetContainers ?? [];
    if (targets.length === 0) return true;
    if (r?.status !== 'resolved') return false;
    return targets.some((t) => r.container.id.startsWith(t));
  }

  #stack(pid: number, k: KernelEvent): StackFrame[] | undefined {
    if (k.source !== 'net' || k.event.type === 'tcp_state') return undefined;
    return verifiedStack(this.#symbols, pid, k.event.stack);
  }

  #container(r: Resolution): ContainerField | undefined {
    if (this.#containerFields.has(r)) return this.#containerFields.get(r);
    const f = containerField(r);
    if (f) {
      if (f.k8s) Object.freeze(f.k8s);
      Object.freeze(f);
    }
    this.#containerFields.set(r, f);
    return f;
  }

  /**
   * Turn one kernel event into its record and line (pushed onto `out`), or
   * count why there is none.
   */
  #record(k: KernelEvent, enrichment: Resolution | undefined, out: BatchBuilder): void {
    const probe = probeNameOf(k);
    const tls = k.source === 'net' ? this.#correlator.observe(k.event) : undefined;
    if (!this.#userFilter(k) || !this.#targetMatch(enrichment)) {
      this.#count(this.#userFiltered, probe);
      return;
    }
    const h = headerOf(k);
    const container = enrichment ? this.#container(enrichment) : undefined;
    const identity = this.#identity?.identityOf(k);
    if (
      out.bytes &&
      h instanceof FileOpenView &&
      identity === undefined &&
      this.#fused(h, container, probe, out)
    ) {
      return;
    }
    const rec = toRecord(
      k,
      {
        seq: this.#seq,
        wallNs: h.monoNs + this.#wallOffset,
        hostId: this.host.hostId,
        container,
        stack: this.#stack(h.pid, k),
        identity,
      },
      tls,
    );
    if (!rec) {
      this.#count(this.#userFiltered, probe);
      return;
    }
    // Encode here, once: a record the schema refuses (a kernel value the
    // format has no room for) is counted as lost with a warning, and never
    // takes a seq number, so one odd event cannot stop the collection.
    let line: string;
    try {
      line = encodeRecord(rec);
    } catch (e) {
      this.#count(this.#unencodable, probe);
      this.emit(
        'warning',
        `a ${rec.type} record was not schema-valid and is counted as lost: ${(e as Error).message}`,
      );
      return;
    }
    this.#bumpSeq();
    this.#count(this.#emitted, probe);
    out.add(rec, line, probe);
  }

  #newBatch(bytes: boolean): BatchBuilder {
    return new BatchBuilder(bytes, this.#scratch, this.#reuse, (b) => {
      this.#scratch = b;
    });
  }

  /**
   * A file open's line by the fused encoder, straight from its ring record
   * into the batch; false when it needs the generic path (fused.ts says
   * which records). One fused line in CROSS_CHECK_EVERY is compared with
   * the generic path's: a difference is a collector defect, warned about
   * once, and the rest of the run takes the generic path.
   */
  #fused(v: FileOpenView, container: ContainerField | undefined, probe: string, out: BatchBuilder): boolean {
    const env = this.#fusedEnv;
    if (env === undefined) return false;
    let text: Buffer | undefined;
    if (container !== undefined) {
      text = this.#containerTexts.get(container);
      if (text === undefined) {
        try {
          text = FUSED_FILE_OPEN.fragment('container', container);
        } catch {
          return false; // the generic path says why, and counts it
        }
        if (Object.isFrozen(container)) this.#containerTexts.set(container, text);
      }
    }
    env.seqHi = this.#seqHi;
    env.seqLo = this.#seqLo;
    env.container = text;
    out.room(FUSED_FILE_OPEN.room + env.host.length + (text?.length ?? 0));
    const start = out.at;
    const end = FUSED_FILE_OPEN.write(v.data, v.start, env, out.buf, start);
    if (end < 0) return false;
    if (
      ++this.#fusedCount % CROSS_CHECK_EVERY === 1 &&
      !this.#crossCheck(v, container, out.buf, start, end)
    ) {
      return false;
    }
    this.#bumpSeq();
    this.#count(this.#emitted, probe);
    out.addFused(end, 'file_open', probe);
    return true;
  }

  /** The generic path's line for a fused one: false (and fused lines off for the run) when they differ. */
  #crossCheck(
    v: FileOpenView,
    container: ContainerField | undefined,
    buf: Buffer,
    start: number,
    end: number,
  ): boolean {
    let want: string | undefined;
    try {
      const rec = toRecord(
        { source: 'fileexec', event: v },
        { seq: this.#seq, wallNs: v.monoNs + this.#wallOffset, hostId: this.host.hostId, container },
      );
      want = rec && encodeRecord(rec);
    } catch {
      want = undefined;
    }
    if (want !== undefined && buf.toString('utf8', start, end) === want) return true;
    this.#fusedEnv = undefined;
    this.emit(
      'warning',
      "a fused file_open line differs from the generic encoder's: fused encoding is off for the rest of the run (a collector defect; please report it)",
    );
    return false;
  }

  /**
   * The canonical NDJSON line of a record this collection yielded (encoded
   * once, when the record was made), or undefined for other objects.
   */
  lineOf(record: EvidenceRecord): string | undefined {
    return this.#lines.get(record);
  }

  /**
   * Every probe's account. `seen` and the kernel's fates come from the
   * kernel, counted apart (packages/probes counters.ts), so the balance is a
   * check: while running the rest is in flight; in a final account (after
   * the probes are detached) records the kernel emitted that never reached
   * the stream are lost, and anything left over means the accounting broke.
   */
  #accounts(final = false): ProbeAccount[] {
    const out: ProbeAccount[] = [];
    const add = (rt: ProbeRuntime | undefined) => {
      if (!rt) return;
      const handled = (name: string) =>
        BigInt(
          (this.#emitted.get(name) ?? 0) +
            (this.#userFiltered.get(name) ?? 0) +
            (this.#unencodable.get(name) ?? 0),
        );
      const read = (): ReadonlyMap<string, KernelCounts> => {
        if (rt.finalCounters) return rt.finalCounters;
        try {
          const c = rt.counters();
          this.#lastCounters.set(rt, c);
          return c;
        } catch {
          // Closed without a final read: the last counters read stand.
          return this.#lastCounters.get(rt) ?? new Map();
        }
      };
      let counters = read();
      // User space can take a record from a ring a moment before its program
      // counts it emitted: read again (a few ns later) rather than report
      // more records handled than emitted.
      const behind = () => rt.status.some((st) => (counters.get(st.name)?.emitted ?? 0n) < handled(st.name));
      for (let i = 0; i < 100 && !rt.finalCounters && behind(); i++) counters = read();
      for (const st of rt.status) {
        const k = counters.get(st.name) ?? NO_COUNTS;
        const userFiltered = BigInt(this.#userFiltered.get(st.name) ?? 0);
        const unencodable = BigInt(this.#unencodable.get(st.name) ?? 0);
        const emitted = BigInt(this.#emitted.get(st.name) ?? 0);
        const pipeline = k.emitted - (emitted + userFiltered + unencodable);
        const filtered = k.filtered + userFiltered;
        const lost = k.lost + unencodable + (final && pipeline > 0n ? pipeline : 0n);
        const rest = k.seen - (filtered + k.deduplicated + emitted + lost);
        // Only a final account (read after detaching) must be exact.
        const balanced = final ? rest === 0n && pipeline >= 0n : true;
        out.push({
          name: st.name,
          attached: st.attached,
          attachType: st.attached ? (st.attachType ?? 'unknown') : 'none',
          ...(st.reason ? { reason: st.reason } : {}),
          seen: k.seen,
          filtered,
          deduplicated: k.deduplicated,
          emitted,
          lost,
          inFlight: !final && rest > 0n ? rest : 0n,
          balanced,
          stages: { kernel: { ...k }, userFiltered, unencodable, pipeline: pipeline > 0n ? pipeline : 0n },
        });
      }
    };
    add(this.#fileexec);
    add(this.#net);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Current accounting of every probe: seen = filtered + deduplicated + emitted + lost + inFlight. */
  accounts(): ProbeAccount[] {
    return this.#accounts();
  }

  #statusRecord(final: boolean): CollectorStatusRecord {
    const now = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    const accounts = this.#accounts(final);
    for (const a of accounts) {
      const before = this.#lastLost.get(a.name) ?? 0n;
      if (a.lost > before)
        this.emit('drop', { probe: a.name, newlyLost: a.lost - before, totalLost: a.lost });
      this.#lastLost.set(a.name, a.lost);
      if (!a.balanced) {
        const k = a.stages.kernel;
        this.emit(
          'warning',
          `${a.name}: the final counts do not add up (seen ${a.seen}, filtered ${a.filtered}, deduplicated ${a.deduplicated}, emitted ${a.emitted}, lost ${a.lost}; kernel emitted ${k.emitted}, user space handled ${a.emitted + a.stages.userFiltered + a.stages.unencodable}): the status record shows them as counted`,
        );
      }
    }
    const rec: CollectorStatusRecord = {
      schema_version: 1,
      type: 'collector_status',
      seq: this.#nextSeq().toString(),
      mono_ns: (now - this.#wallOffset).toString(),
      wall_ns: now.toString(),
      host_id: this.host.hostId,
      window_start_wall_ns: this.startedWallNs.toString(),
      window_end_wall_ns: now.toString(),
      probes: accounts.map((a) => ({
        name: a.name,
        attached: a.attached,
        attach_type: a.attachType,
        ...(a.reason ? { reason: a.reason.slice(0, 1024) } : {}),
        seen: a.seen.toString(),
        filtered: a.filtered.toString(),
        deduplicated: a.deduplicated.toString(),
        emitted: a.emitted.toString(),
        lost: a.lost.toString(),
        ...(a.inFlight > 0n ? { in_flight: a.inFlight.toString() } : {}),
      })),
      ...(final ? { final: true } : {}),
    };
    this.emit('status', rec);
    return rec;
  }

  /** A collector_status record as a batch of its own (counted in {@link records}). */
  #statusBatch(final: boolean): EvidenceBatch {
    const rec = this.#statusRecord(final);
    this.#records++;
    return StreamBatch.ofRecords([rec], [encodeRecord(rec)], ['']);
  }

  /**
   * The records one by one (the object API). Built on {@link batches}: each
   * record's line is kept for {@link lineOf}.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<EvidenceRecord> {
    for await (const b of this.#stream(false)) {
      for (let i = 0; i < b.records.length; i++) {
        const rec = b.records[i]!;
        this.#lines.set(rec, b.lines[i]!);
        if (b.probes[i]) this.#probeOf.set(rec, b.probes[i]!);
        yield rec;
      }
    }
  }

  /**
   * The stream as batches, for consumers that write bytes (what the
   * {@link Collector} uses): one batch per ring batch, records already
   * encoded, no promise per record; file opens are written by the fused
   * encoder straight from the ring records ({@link EvidenceBatch}). Same
   * contract as iterating the collection (and exclusive with it): the last
   * batch holds the final collector_status, and leaving the loop stops the
   * collection.
   *
   * `reuse: true` (what the Collector passes): a batch's `data` is a view of
   * a buffer the next batch is written into, valid only until the consumer
   * asks for the next batch (write it out before that); no copy per batch.
   * By default every batch owns its bytes.
   */
  batches(options: { reuse?: boolean } = {}): AsyncIterable<EvidenceBatch> {
    this.#reuse = options.reuse === true;
    return { [Symbol.asyncIterator]: () => this.#stream(true) };
  }

  /** `bytes`: lines into byte batches, fused where a plan exists; else record objects with their lines. */
  async *#stream(bytes: boolean): AsyncGenerator<EvidenceBatch> {
    if (this.#iterating) throw new CollectError('USAGE', 'a Collection can be iterated only once');
    this.#iterating = true;
    try {
      await this.ready;
      let failure: { error: unknown } | undefined;
      try {
        yield* this.#pipeline(bytes);
      } catch (error) {
        failure = { error };
      }
      // The final status needs the final counts: after the probes are detached.
      await this.#stopProbes();
      yield this.#statusBatch(true);
      if (failure) throw failure.error;
    } finally {
      // The tracker outlives the pipeline: it closes only once no record can
      // ask it anything any more.
      this.#pipelineOver = true;
      await this.close();
      this.#closeTracker();
      this.#state = 'stopped';
    }
  }

  /**
   * Enrich, filter and encode what the pumps read, a ring batch at a time,
   * with the in-band status records.
   */
  async *#pipeline(bytes: boolean): AsyncGenerator<EvidenceBatch> {
    const stage = this.#tracker
      ? new EnrichmentStage(
          this.#tracker,
          this.#options.enrich ? { waitMs: this.#options.enrich.waitMs ?? 1000 } : {},
        )
      : undefined;
    // Identity first: digests start while the processes still live.
    const d = this.#options.digests;
    const digests =
      d === false ? undefined : new FileDigests(d?.maxFileBytes ? { maxFileBytes: d.maxFileBytes } : {});
    this.#identity = new IdentityStage(digests, d ? { waitMs: d.waitMs ?? 1000 } : {});
    const identified = this.#identity.run(this.#input, (groups) => groups[0]!.batch.events);
    const input: AsyncIterable<readonly CgroupOfBatch[]> = stage ? stage.run(identified) : identified;
    const iterator = input[Symbol.asyncIterator]();
    const interval = this.#options.statusIntervalMs ?? 60_000;
    let nextStatus = Date.now() + interval;
    let lastBreath = Date.now();
    let pending = iterator.next();
    // Past the stop deadline what is still queued is left: the final
    // status counts it as lost (the kernel emitted it, the stream does not
    // have it), and the stop stays inside its budget however slow the host.
    const abandoned = () => this.#abandonAt !== undefined && Date.now() >= this.#abandonAt;
    try {
      outer: while (true) {
        if (abandoned()) break;
        const wait = Math.min(nextStatus, this.#abandonAt ?? nextStatus) - Date.now();
        let timer: NodeJS.Timeout | undefined;
        // Under a steady load the next batch is always ready before a 0 ms
        // timer: a status that is due goes first without racing.
        const winner =
          wait <= 0
            ? ('tick' as const)
            : await Promise.race([
                pending,
                new Promise<'tick'>((r) => {
                  timer = setTimeout(() => r('tick'), wait);
                }),
              ]);
        clearTimeout(timer);
        if (winner === 'tick') {
          if (abandoned()) break;
          if (Date.now() < nextStatus) continue;
          nextStatus = Date.now() + interval;
          yield this.#statusBatch(false);
          continue;
        }
        if (winner.done) break;
        pending = iterator.next();
        const groups = winner.value;
        const batch = groups[0]!.batch;
        const events = batch.events;
        // One resolution per distinct cgroup of the batch (per process where
        // the resolver answers per process).
        const only = groups.length === 1 && !groups[0]!.perProcess ? groups[0]!.enrichment : undefined;
        const lookup =
          only === undefined && (groups.length > 1 || groups[0]!.perProcess)
            ? resolutions(groups)
            : undefined;
        let out = this.#newBatch(bytes);
        try {
          for (let i = 0; i < events.length; i++) {
            const k = events[i]!;
            const enrichment = lookup ? lookup(headerOf(k)) : only;
            this.#recordOrCount(k, enrichment, out);
            // A ring batch can hold many thousands of records: breathe inside
            // it too (timers, signals and the status socket must run).
            if ((i & 255) === 255) {
              if (abandoned()) {
                // What is built is counted emitted: it goes out; the rest
                // of the ring batch is left (counted lost in the final status).
                if (out.length > 0) {
                  this.#records += out.length;
                  yield out.finish();
                }
                break outer;
              }
              if (Date.now() - lastBreath > 50) {
                if (out.length > 0) {
                  this.#records += out.length;
                  yield out.finish();
                  out = this.#newBatch(bytes);
                }
                await new Promise((r) => setImmediate(r));
                lastBreath = Date.now();
              }
            }
          }
        } finally {
          this.#release(batch);
        }
        if (out.length > 0) {
          this.#records += out.length;
          yield out.finish();
        }
        // A backlog resolves through promise jobs only; let timers, signals
        // and the status socket run between batches (a stop must stay
        // answerable and bounded).
        if (Date.now() - lastBreath > 50) {
          await new Promise((r) => setImmediate(r));
          lastBreath = Date.now();
        }
      }
    } finally {
      // Not awaited: a consumer leaving early would wait on a pending read
      // that only close() (which runs after this) ends.
      void pending.catch(() => undefined);
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }

  /** {@link #record}, with a record that cannot be made counted as lost instead of ending the run. */
  #recordOrCount(k: KernelEvent, enrichment: Resolution | undefined, out: BatchBuilder): void {
    try {
      this.#record(k, enrichment, out);
    } catch (e) {
      this.#count(this.#unencodable, probeNameOf(k));
      this.emit('warning', `a record could not be built and is counted as lost: ${(e as Error).message}`);
    }
  }

  /**
   * Give back a record this collection yielded that the consumer could not
   * store (the disk stayed full during a stop): it is counted as lost, not
   * as emitted, in the final status.
   */
  discard(record: EvidenceRecord): void {
    const probe = this.#probeOf.get(record);
    if (probe === undefined) return;
    this.#probeOf.delete(record);
    this.#uncount(probe);
  }

  /**
   * {@link discard} for a batch from {@link batches}: its records from
   * index `from` on were not stored, and count as lost. Once per batch.
   */
  discardBatch(batch: EvidenceBatch, from = 0): void {
    if (this.#discarded.has(batch)) return;
    this.#discarded.add(batch);
    for (let i = Math.max(0, from); i < batch.probes.length; i++) {
      if (batch.probes[i]) this.#uncount(batch.probes[i]!);
    }
  }

  /** One record of `probe` moves from emitted to lost. */
  #uncount(probe: string): void {
    const n = this.#emitted.get(probe) ?? 0;
    if (n > 0) {
      this.#emitted.set(probe, n - 1);
      this.#count(this.#unencodable, probe);
    }
  }

  /**
   * Stop the probes, let the stream drain, and release everything. The
   * iterator ends after the final collector_status record. Idempotent; a
   * call with `{ fast: true }` during a stop (a second signal) ends the
   * drain wait at once: what is still in the rings is counted as lost.
   * `deadline` (a `Date.now()` time) bounds the stop however slow the
   * host: past it the records still queued in the pipeline are left and
   * counted as lost, and the final status goes out; `fast` means now.
   *
   * Order: drain (bounded by `drainTimeoutMs`), detach the probes (final
   * kernel counters read after detaching), end the input; the container
   * tracker closes only
   * after the record loop is over (or, if nobody iterates any more, after
   * a grace period), so records in flight are still attributed.
   */
  close(options: { fast?: boolean; deadline?: number } = {}): Promise<void> {
    if (options.fast) this.#fast = true;
    const leaveAt = options.fast ? Date.now() : options.deadline;
    if (leaveAt !== undefined) this.#abandonAt = Math.min(this.#abandonAt ?? leaveAt, leaveAt);
    this.#closing ??= (async () => {
      if (this.#state !== 'stopped') this.#state = 'stopping';
      await this.ready.catch(() => undefined);
      await this.#drain();
      await this.#stopProbes();
      if (!this.#iterating || this.#pipelineOver) {
        this.#closeTracker();
        this.#state = 'stopped';
      } else {
        this.#trackerTimer = setTimeout(() => this.#closeTracker(), TRACKER_GRACE_MS);
        this.#trackerTimer.unref();
      }
    })();
    return this.#closing;
  }

  /**
   * Detach the probes (their final counters are read after detaching, so
   * everything the kernel emitted is either read by now or counted lost),
   * let the pumps finish and end the input. Idempotent.
   */
  #stopProbes(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      this.#wakePumps();
      this.#accounts(); // the last running counters, for runtimes without final ones
      await this.#teardownProbes();
      await Promise.allSettled(this.#pumps);
      this.#input.end();
    })();
    return this.#stopping;
  }

  #closeTracker(): void {
    clearTimeout(this.#trackerTimer);
    this.#tracker?.close();
  }

  /**
   * Before detaching, let each ring empty into the pipeline: wait until every
   * runtime has received what the kernel had emitted when the stop began
   * (bounded by `drainTimeoutMs`, ended early by `close({ fast: true })`).
   * What is still in a ring after that is reported as lost in the final
   * status, never dropped silently.
   */
  async #drain(): Promise<void> {
    const runtimes = [this.#fileexec, this.#net].filter((r): r is ProbeSet | NetProbes => r !== undefined);
    const emittedNow = (rt: ProbeSet | NetProbes) => {
      let n = 0n;
      for (const c of rt.counters().values()) n += c.emitted;
      return n;
    };
    let targets: bigint[];
    try {
      targets = runtimes.map(emittedNow);
    } catch {
      return; // already closed
    }
    const deadline = Date.now() + (this.#options.drainTimeoutMs ?? 5000);
    while (
      !this.#fast &&
      Date.now() < deadline &&
      runtimes.some((rt, i) => BigInt(rt.received) < targets[i]!)
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async #teardownProbes(): Promise<void> {
    await this.#fileexec?.close();
    await this.#net?.close();
  }

  async #teardown(): Promise<void> {
    await this.#teardownProbes();
    this.#tracker?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The resolution of each event's cgroup (or cgroup and pid) from a batch's enriched groups. */
function resolutions(
  groups: readonly CgroupOfBatch[],
): (h: { cgroupId: bigint; pid: number }) => Resolution | undefined {
  const byCgroup = new Map<bigint, Resolution | undefined>();
  const byProcess = new Map<string, Resolution | undefined>();
  for (const g of groups) {
    if (g.perProcess) byProcess.set(`${g.cgroupId}/${g.pid}`, g.enrichment);
    else byCgroup.set(g.cgroupId, g.enrichment);
  }
  if (byProcess.size === 0) return (h) => byCgroup.get(h.cgroupId);
  return (h) =>
    byCgroup.has(h.cgroupId) ? byCgroup.get(h.cgroupId) : byProcess.get(`${h.cgroupId}/${h.pid}`);
}

/** A batch of the stream, from record objects and their lines, or from bytes. */
class StreamBatch implements EvidenceBatch {
  readonly probes: readonly string[];
  #records: EvidenceRecord[] | undefined;
  #lines: string[] | undefined;
  #data: Buffer | undefined;
  #ends: number[] | undefined;
  #types: RecordType[] | undefined;
  /** Byte batches: the records the generic path made (undefined where a fused line has none). */
  #known: (EvidenceRecord | undefined)[] | undefined;

  private constructor(probes: readonly string[]) {
    this.probes = probes;
  }

  static ofRecords(records: EvidenceRecord[], lines: string[], probes: string[]): StreamBatch {
    const b = new StreamBatch(probes);
    b.#records = records;
    b.#lines = lines;
    return b;
  }

  static ofBytes(
    data: Buffer,
    ends: number[],
    types: RecordType[],
    probes: string[],
    known: (EvidenceRecord | undefined)[],
  ): StreamBatch {
    const b = new StreamBatch(probes);
    b.#data = data;
    b.#ends = ends;
    b.#types = types;
    b.#known = known;
    return b;
  }

  #start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1]!;
  }

  get lines(): readonly string[] {
    this.#lines ??= this.ends.map((end, i) => this.data.toString('utf8', this.#start(i), end));
    return this.#lines;
  }

  get records(): readonly EvidenceRecord[] {
    this.#records ??= this.probes.map((_, i) => this.recordAt(i));
    return this.#records;
  }

  recordAt(i: number): EvidenceRecord {
    const r = this.#records?.[i] ?? this.#known?.[i];
    if (r !== undefined) return r;
    if (i < 0 || i >= this.probes.length)
      throw new RangeError(`no record ${i} in a batch of ${this.probes.length}`);
    const rec = JSON.parse(this.data.toString('utf8', this.#start(i), this.ends[i])) as EvidenceRecord;
    this.#known![i] = rec;
    return rec;
  }

  get data(): Buffer {
    this.#data ??= Buffer.from(this.#lines!.join(''), 'utf8');
    return this.#data;
  }

  get ends(): readonly number[] {
    if (this.#ends === undefined) {
      let at = 0;
      this.#ends = this.#lines!.map((l) => (at += Buffer.byteLength(l)));
    }
    return this.#ends;
  }

  get types(): readonly RecordType[] {
    this.#types ??= this.#records!.map((r) => r.type);
    return this.#types;
  }
}

/** An evidence batch being built: record objects with their lines, or lines written into a buffer. */
class BatchBuilder {
  readonly probes: string[] = [];
  readonly records: EvidenceRecord[] = [];
  readonly lines: string[] = [];
  readonly types: RecordType[] = [];
  readonly ends: number[] = [];
  readonly known: (EvidenceRecord | undefined)[] = [];
  /** Bytes mode: where the next line goes in {@link buf}. */
  at = 0;

  constructor(
    readonly bytes: boolean,
    /** Bytes mode: the lines so far (a reused scratch buffer; {@link finish} copies them out unless `view`). */
    public buf: Buffer,
    /** {@link finish} hands out a view of {@link buf}: the consumer is done with it before the next batch. */
    private readonly view: boolean,
    private readonly keep: (buf: Buffer) => void,
  ) {}

  get length(): number {
    return this.probes.length;
  }

  /** Make room for `n` more bytes. */
  room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
    this.keep(bigger);
  }

  /** A record of the generic path, with its line. */
  add(rec: EvidenceRecord, line: string, probe: string): void {
    this.probes.push(probe);
    if (!this.bytes) {
      this.records.push(rec);
      this.lines.push(line);
      return;
    }
    this.room(3 * line.length);
    this.at += this.buf.write(line, this.at);
    this.ends.push(this.at);
    this.types.push(rec.type);
    this.known.push(rec);
  }

  /** A line the fused encoder wrote into {@link buf} up to `end`. */
  addFused(end: number, type: RecordType, probe: string): void {
    this.at = end;
    this.probes.push(probe);
    this.ends.push(end);
    this.types.push(type);
    this.known.push(undefined);
  }

  finish(): StreamBatch {
    if (!this.bytes) return StreamBatch.ofRecords(this.records, this.lines, this.probes);
    // The scratch buffer is reused for the next batch: a view only when the
    // consumer is done with this one first, else an exact copy.
    let data: Buffer;
    if (this.view) data = this.buf.subarray(0, this.at);
    else {
      data = Buffer.allocUnsafe(this.at);
      this.buf.copy(data, 0, 0, this.at);
    }
    return StreamBatch.ofBytes(data, this.ends, this.types, this.probes, this.known);
  }
}

/**
 * Event data bytes of a decoded event, for {@link CollectOptions.maxQueuedBytes}:
 * the variable parts (path, argv) and a fixed share for the rest.
 */
function eventBytes(k: KernelEvent): number {
  if (k.source === 'fileexec') {
    const e = k.event;
    if (e instanceof FileOpenView) return 128 + e.pathLength;
    if (e.kind === 'file_open') return 128 + e.path.length;
    if (e.kind === 'exec') {
      let n = 192 + e.filename.length;
      for (const a of e.argv) n += 16 + a.length;
      return n;
    }
  }
  return 256;
}

/**
 * Start collecting runtime evidence: attaches the kernel probes, resolves
 * containers, and yields schema v1 records (`@stellaops/ndjson`) in stream
 * order, with in-band `collector_status` records every `statusIntervalMs`
 * and a final one when the collection closes.
 *
 * Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN for uprobes) and a kernel
 * with BTF (5.8+). Start-up failures reject `ready` (and the
 * first iteration) with the loader's BpfError (code PRIVILEGE, LOAD, ...),
 * a ProbeOptionError, or a CollectError, each with a hint.
 */
export function collect(options: CollectOptions = {}): Collection {
  return new Collection(options);
}
