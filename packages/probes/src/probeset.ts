import { existsSync } from 'node:fs';
import {
  BpfError,
  type BpfLink,
  type BpfMap,
  BpfObject,
  numPossibleCpus,
  probeFeature,
  type RingBufferReader,
} from '@stellaops/bpf-loader';
import { decodeCgroupMkdir } from './cgroup-event.js';
import { type KernelCounters, readCounters, readDedupStats, settledCounters } from './counters.js';
import { decodeEvent, viewEvent } from './decode.js';
import { ProbesError } from './errors.js';
import type { ProbeEvent, ProbeName } from './events.js';
import { taskAccess, taskAccessNote } from './kernel-btf.js';
import { COUNTER_SLOT, HEADER_SIZE, KIND, LAYOUT, PREFIX_ACTION } from './layout.js';
import { objectPath } from './objects.js';
import {
  type ProbeSetOptions,
  type ResolvedOptions,
  RING_HIGH_WATER_BATCHES,
  resolveOptions,
} from './options.js';

/** Offset of the record kind in every ring record's header. */
const KIND_AT = LAYOUT.stella_event_header.members.kind[0];

/** Whether a probe runs, how it is attached, and why not (or why a fallback). */
export interface ProbeStatus {
  name: string;
  attached: boolean;
  /** 'tp_btf', 'raw_tp', 'lsm' or 'fentry' when attached. */
  attachType?: string;
  /** Why it is not attached, or why a fallback attach type is used. */
  reason?: string;
}

/**
 * Per-probe kernel accounting, summed over CPUs. `seen` is the kernel's own
 * count of events entering the probe; seen = filtered + deduplicated +
 * emitted + lost holds once no program is mid-event (see KernelCounters).
 */
export type ProbeCounters = KernelCounters;

/**
 * Dedup table state. The LRU's evictions are not reported by the kernel; they
 * are derived exactly: the BPF side counts keys it inserted and deleted, and
 * nothing else removes keys, so evictions = inserts - deletes - live entries.
 * Which key is evicted is the kernel's approximate, per-CPU LRU choice: a fact
 * is re-sent once evicted, never dropped for lack of room.
 */
export interface DedupStats {
  enabled: boolean;
  maxEntries: number;
  live: number;
  inserts: bigint;
  deletes: bigint;
  /** Inserts that found the key already added by another CPU (counted as deduplicated). */
  races: bigint;
  /**
   * Inserts the kernel refused otherwise (no free LRU node, a busy bucket
   * lock): those records were sent, not deduplicated, and may repeat.
   */
  failures: bigint;
  evictions: bigint;
}

/**
 * Running probes: an async iterable of decoded event batches. Breaking out of
 * a `for await` loop, close() and `await using` all detach everything.
 */
export interface ProbeSet extends AsyncIterable<ProbeEvent[]>, AsyncDisposable {
  readonly status: readonly ProbeStatus[];
  /** Counters per requested probe name. Throws ProbesError 'CLOSED' after close(). */
  counters(): Map<string, ProbeCounters>;
  /**
   * The counters close() read after detaching every program and before
   * freeing the maps: the run's exact final accounting. Undefined until then.
   */
  readonly finalCounters: ReadonlyMap<string, ProbeCounters> | undefined;
  /** Dedup table state (walks the table: O(entries); not for a hot path). */
  dedupStats(): DedupStats;
  /** Records decoded so far. */
  readonly received: number;
  /**
   * The same batches as iterating the set, with each file open as a
   * {@link FileOpenView} read in place from the ring batch (no copies, no
   * BigInt until asked for): for consumers that encode from the bytes.
   * Exclusive with iterating the set.
   */
  views(): AsyncIterable<ProbeEvent[]>;
  /** Detaches programs and frees the object; idempotent. */
  close(): Promise<void> | void;
}

type Variant = 'tp_btf' | 'raw_tp';
type SyscallProbe = Exclude<ProbeName, 'file_open_lsm'>;

const PROGRAMS: Record<SyscallProbe, Record<Variant, string[]>> = {
  file_open: { tp_btf: ['fe_exit_btf'], raw_tp: ['fe_exit_raw'] },
  exec: { tp_btf: ['fe_exec_btf'], raw_tp: ['fe_exec_raw'] },
  exit: { tp_btf: ['fe_exit_proc_btf'], raw_tp: ['fe_exit_proc_raw'] },
  cgroup_mkdir: { tp_btf: ['fe_cgroup_mkdir_btf'], raw_tp: ['fe_cgroup_mkdir_raw'] },
};
const LSM_PROGRAMS = { lsm: 'fe_open_lsm', fentry: 'fe_open_fentry' } as const;
type LsmVariant = keyof typeof LSM_PROGRAMS;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

function prefixKey(p: Buffer): Buffer {
  const k = Buffer.alloc(LAYOUT.stella_prefix_key.size);
  k.writeUInt32LE(p.length * 8, 0);
  p.copy(k, LAYOUT.stella_prefix_key.members.data[0]);
  return k;
}

function errText(e: unknown): string {
  if (e instanceof BpfError) {
    const log = e.libbpfLog?.trim().split('\n').slice(-2).join(' ');
    return `${e.code}: ${e.message}${log ? ` (${log})` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

interface Attempt {
  obj: BpfObject;
  status: ProbeStatus[];
  /** Every attached program's link: close() detaches them before the final counter read. */
  links: BpfLink[];
}

/** Open, configure, load and attach one variant; closes the object on any throw. */
function attempt(
  o: ResolvedOptions,
  file: string,
  variant: Variant,
  lsm: LsmVariant | undefined,
  notes: Map<string, string>,
  allowPartial: boolean,
): Attempt {
  const obj = BpfObject.open(file, {
    name: 'fileexec',
    ...(o.bindingPath === undefined ? {} : { bindingPath: o.bindingPath }),
    ...(o.btfCustomPath === undefined ? {} : { btfCustomPath: o.btfCustomPath }),
  });
  try {
    const wanted = new Set<string>();
    for (const p of o.probes) {
      if (p === 'file_open_lsm') {
        if (lsm) wanted.add(LSM_PROGRAMS[lsm]);
      } else {
        for (const prog of PROGRAMS[p][variant]) wanted.add(prog);
      }
    }
    for (const prog of obj.programs) obj.setAutoload(prog.name, wanted.has(prog.name));

    obj.setGlobal('cfg_cgroup_filter', o.cgroupIds.length > 0);
    obj.setGlobal('cfg_path_filter', o.allow.length + o.deny.length > 0);
    obj.setGlobal('cfg_path_allow', o.allow.length > 0);
    obj.setGlobal('cfg_dedup', o.dedup);
    obj.setGlobal('cfg_task_btf', o.taskAccess === 'auto');
    // Wake the reader early when the ring is half full, so a burst is drained before it overflows.
    obj.setGlobal('cfg_wakeup_bytes', BigInt(o.ringBufferBytes / 2));
    obj.resizeMap('events', o.ringBufferBytes);
    obj.resizeMap('dedup', o.dedupEntries);
    obj.resizeMap('pid_exclude', Math.max(256, o.excludePids.length));
    obj.resizeMap('cgroup_allow', Math.max(1024, o.cgroupIds.length));
    obj.resizeMap('path_prefixes', Math.max(256, o.allow.length + o.deny.length));
    obj.load();

    const one = Buffer.from([1]);
    const pids = obj.map('pid_exclude');
    for (const pid of o.excludePids) pids.update(u32(pid), one);
    const cg = obj.map('cgroup_allow');
    for (const id of o.cgroupIds) cg.update(u64(id), one);
    const prefixes = obj.map('path_prefixes');
    for (const p of o.allow) prefixes.update(prefixKey(p), Buffer.from([PREFIX_ACTION.ALLOW]));
    for (const p of o.deny) prefixes.update(prefixKey(p), Buffer.from([PREFIX_ACTION.DENY]));

    const status: ProbeStatus[] = [];
    const all: BpfLink[] = [];
    let firstError: unknown;
    for (const p of o.probes) {
      if (p === 'file_open_lsm') {
        if (!lsm) {
          status.push({ name: p, attached: false, reason: `not attached: ${notes.get(p) ?? 'unsupported'}` });
          continue;
        }
        try {
          all.push(obj.attach(LSM_PROGRAMS[lsm]));
          // Why a better hook was not taken (an earlier choice refused), and how the task is read.
          const why = [notes.get(p), notes.get('task')].filter(Boolean).join('; ');
          status.push(
            why
              ? { name: p, attached: true, attachType: lsm, reason: why }
              : { name: p, attached: true, attachType: lsm },
          );
        } catch (e) {
          status.push({ name: p, attached: false, reason: `not attached: ${errText(e)}` });
        }
        continue;
      }
      const links: BpfLink[] = [];
      try {
        for (const prog of PROGRAMS[p][variant]) links.push(obj.attach(prog));
        all.push(...links);
      } catch (e) {
        // With another variant left, the caller retries everything with it; on the last one
        // the probes that did attach keep running and this one says why it does not.
        if (!allowPartial) throw e;
        for (const l of links) l.close();
        firstError ??= e;
        status.push({ name: p, attached: false, reason: `not attached: ${errText(e)}` });
        continue;
      }
      const note = [notes.get(variant), notes.get('task')].filter(Boolean).join('; ');
      status.push(
        note
          ? { name: p, attached: true, attachType: variant, reason: note }
          : { name: p, attached: true, attachType: variant },
      );
    }
    if (firstError !== undefined && !status.some((x) => x.attached)) throw firstError;
    status.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { obj, status, links: all };
  } catch (e) {
    obj.close();
    throw e;
  }
}

class ProbeSetImpl implements ProbeSet {
  readonly status: readonly ProbeStatus[];
  #obj: BpfObject | undefined;
  #reader: RingBufferReader | undefined;
  #counters: BpfMap;
  #dedupStats: BpfMap;
  #dedup: BpfMap;
  #probes: ProbeName[];
  #ncpu = numPossibleCpus();
  #opts: ResolvedOptions;
  #received = 0;
  #links: BpfLink[];
  #final: Map<string, ProbeCounters> | undefined;

  constructor(a: Attempt, o: ResolvedOptions) {
    this.#obj = a.obj;
    this.#links = a.links;
    this.status = Object.freeze(a.status.map((s) => Object.freeze(s)));
    this.#opts = o;
    this.#probes = o.probes;
    this.#counters = a.obj.map('counters');
    this.#dedupStats = a.obj.map('dedup_stats');
    this.#dedup = a.obj.map('dedup');
    try {
      this.#reader = a.obj.ringBuffer('events', {
        latencyMs: o.drainLatencyMs,
        highWaterMark: RING_HIGH_WATER_BATCHES,
      });
    } catch (e) {
      a.obj.close(); // nobody else holds the object yet
      throw e;
    }
  }

  get received(): number {
    return this.#received;
  }

  get finalCounters(): ReadonlyMap<string, ProbeCounters> | undefined {
    return this.#final;
  }

  #live(): BpfObject {
    if (!this.#obj) throw new ProbesError('CLOSED', 'the probe set is closed');
    return this.#obj;
  }

  counters(): Map<string, ProbeCounters> {
    this.#live();
    const out = new Map<string, ProbeCounters>();
    for (const p of this.#probes) out.set(p, readCounters(this.#counters, COUNTER_SLOT[p], this.#ncpu));
    return out;
  }

  dedupStats(): DedupStats {
    this.#live();
    const s = readDedupStats(this.#dedupStats, this.#ncpu);
    let live = 0;
    for (const _ of this.#dedup.keys()) live++;
    return {
      enabled: this.#opts.dedup,
      maxEntries: this.#opts.dedupEntries,
      live,
      inserts: s.inserts,
      deletes: s.deletes,
      races: s.races,
      failures: s.failures,
      evictions: s.inserts - s.deletes - BigInt(live),
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<ProbeEvent[]> {
    return this.#batches(false);
  }

  views(): AsyncIterable<ProbeEvent[]> {
    return { [Symbol.asyncIterator]: () => this.#batches(true) };
  }

  async *#batches(view: boolean): AsyncGenerator<ProbeEvent[]> {
    const reader = this.#reader;
    if (!reader || !this.#obj) return;
    try {
      while (true) {
        const batch = await reader.read();
        if (batch === null) return;
        const onCgroup = this.#opts.onCgroupMkdir;
        const { data, offsets } = batch;
        const event = (i: number) =>
          view ? viewEvent(data, offsets[i]!, offsets[i + 1]!) : decodeEvent(batch.record(i));
        let events: ProbeEvent[] = new Array(batch.count);
        if (onCgroup === undefined) {
          for (let i = 0; i < batch.count; i++) events[i] = event(i);
        } else {
          // cgroup events go to their callback first, so it knows every new cgroup of the batch.
          let n = 0;
          for (let i = 0; i < batch.count; i++) {
            const at = offsets[i]!;
            if (
              offsets[i + 1]! - at >= HEADER_SIZE &&
              data.readUInt32LE(at + KIND_AT) === KIND.CGROUP_MKDIR
            ) {
              onCgroup(decodeCgroupMkdir(batch.record(i)));
            } else events[n++] = event(i);
          }
          if (n < batch.count) events = events.slice(0, n);
        }
        this.#received += batch.count;
        if (events.length > 0) yield events;
      }
    } finally {
      this.close();
    }
  }

  close(): void {
    const obj = this.#obj;
    if (!obj) return;
    // Detach first, then read the counters nothing can add to any more.
    for (const l of this.#links) {
      try {
        l.close();
      } catch {
        // obj.close() below detaches it for good
      }
    }
    try {
      this.#final = settledCounters(() => this.counters());
    } catch {
      // the maps are unreadable: the caller's last read stands
    }
    this.#obj = undefined;
    this.#reader?.close();
    this.#reader = undefined;
    obj.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/**
 * Opens, configures, loads and attaches the file/exec probes, choosing per
 * kernel: tp_btf on the generic sys_exit and the sched tracepoints,
 * else raw_tp (neither needs tracefs); file_open_lsm via lsm/file_open, else
 * fentry/security_file_open, else reported as not attached with the reason.
 * A probe that cannot attach with any variant is reported in `status` as
 * `not attached: <reason>` while the others run.
 * @throws ProbeOptionError for invalid options (before touching the kernel);
 *   ProbesError 'OBJECT_MISSING' when the BPF object was not built;
 *   the loader's BpfError (OPEN/LOAD/ATTACH/PRIVILEGE/...) when no probe can run.
 * Needs CAP_BPF + CAP_PERFMON (or root) and a kernel with BTF, ring buffers and
 * BPF global functions (5.8+; `npm run test:kernels` runs the tests on 5.10, 6.1, 6.12).
 * Before 5.11 the task is read without bpf_get_current_task_btf, and each
 * probe's `reason` says so.
 */
export function openProbeSet(opts?: ProbeSetOptions): ProbeSet {
  const o = resolveOptions(opts);
  const file = o.objectPath ?? objectPath('fileexec');
  if (!existsSync(file)) {
    throw new ProbesError('OBJECT_MISSING', `BPF object ${file} is missing`, {
      hint: 'build it: npm run build:native -w @stellaops/probes (needs clang and bpftool)',
    });
  }
  const notes = new Map<string, string>();
  const variants: Variant[] = [];
  if (o.attach !== 'auto') {
    variants.push(o.attach); // forced: no fallback, the loader's error says why it fails
  } else {
    const btf = probeFeature('tp_btf');
    if (btf.supported) variants.push('tp_btf');
    const raw = probeFeature('raw_tp');
    if (raw.supported) {
      variants.push('raw_tp');
      if (!btf.supported)
        notes.set('raw_tp', `tp_btf unsupported (${btf.reason ?? 'unknown'}); using raw_tp`);
    }
    if (variants.length === 0) variants.push('tp_btf'); // let the loader say precisely why it fails
  }

  // Which branch of stella_current_ppid (bpf/common.h) the programs take: said in each status.
  if (taskAccess(o.taskAccess, o.btfCustomPath) === 'core') notes.set('task', taskAccessNote(o.taskAccess));

  // The kernel's hooks for the optional probe, best first. A kernel may offer a hook and still
  // refuse the program (5.10's verifier rejects bpf_d_path in lsm/file_open but allows it in
  // fentry/security_file_open), so each is tried in turn before the probe is left out.
  const lsmChoices: LsmVariant[] = [];
  if (o.probes.includes('file_open_lsm')) {
    const l = probeFeature('lsm');
    const f = probeFeature('fentry');
    if (l.supported) lsmChoices.push('lsm');
    if (f.supported) lsmChoices.push('fentry');
    if (lsmChoices.length === 0)
      notes.set(
        'file_open_lsm',
        `lsm/file_open: ${l.reason ?? 'unsupported'}; fentry/security_file_open: ${f.reason ?? 'unsupported'}`,
      );
  }

  let last: unknown;
  for (const [i, variant] of variants.entries()) {
    const lastVariant = i === variants.length - 1;
    const refused: string[] = [];
    // The optional probe must never cost the others: the last try is without it.
    for (const lsm of [...lsmChoices, undefined]) {
      try {
        return new ProbeSetImpl(attempt(o, file, variant, lsm, notes, lastVariant), o);
      } catch (e) {
        last = e;
        if (lsm === undefined) break;
        refused.push(`${lsm} program failed: ${errText(e)}`);
        notes.set('file_open_lsm', refused.join('; '));
      }
    }
    if (lsmChoices.length > 0) notes.delete('file_open_lsm'); // failed without it too: not its fault
    if (!lastVariant) notes.set('raw_tp', `tp_btf failed (${errText(last)}); using raw_tp`);
  }
  throw last;
}
