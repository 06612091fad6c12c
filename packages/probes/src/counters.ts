/**
 * Reading the per-CPU `counters` and `dedup_stats` maps of both probe
 * objects (struct stella_counters / stella_dedup_stats in bpf/common.h).
 */
import type { BpfMap } from '@stellaops/bpf-loader';
import { LAYOUT } from './layout.js';

/**
 * One probe's kernel counters, summed over CPUs. `seen` is counted when an
 * event enters the probe's program, before any filter, dedup or ring
 * reserve; the other four when its fate is decided (exactly one each). So
 * `seen - (filtered + deduplicated + emitted + lost)` is the number of
 * events inside a program at the time of reading (at most one per CPU), and
 * 0 once the programs are detached: a check, not an identity.
 */
export interface KernelCounters {
  seen: bigint;
  filtered: bigint;
  deduplicated: bigint;
  emitted: bigint;
  lost: bigint;
}

const FATES = ['filtered', 'deduplicated', 'emitted', 'lost'] as const;

function slotKey(slot: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(slot);
  return b;
}

/** Sums the u64 `fields` of a per-CPU value of struct `size` bytes over `ncpu` CPUs. */
export function sumPerCpu<F extends string>(
  value: Buffer | undefined,
  members: Readonly<Record<F, readonly [number, number]>>,
  fields: readonly F[],
  size: number,
  ncpu: number,
): Record<F, bigint> {
  const out = {} as Record<F, bigint>;
  for (const f of fields) out[f] = 0n;
  if (!value) return out;
  const stride = Math.ceil(size / 8) * 8;
  for (let cpu = 0; cpu < ncpu && (cpu + 1) * stride <= value.length; cpu++) {
    for (const f of fields) out[f] += value.readBigUInt64LE(cpu * stride + members[f][0]);
  }
  return out;
}

/**
 * The counters of one probe slot. The fates are read first and `seen` in a
 * second lookup: a program adds to `seen` before its fate, so the result
 * never shows more fates than events, even while programs run.
 */
export function readCounters(map: BpfMap, slot: number, ncpu: number): KernelCounters {
  const { size, members } = LAYOUT.stella_counters;
  const key = slotKey(slot);
  const fates = sumPerCpu(map.lookup(key), members, FATES, size, ncpu);
  const { seen } = sumPerCpu(map.lookup(key), members, ['seen'], size, ncpu);
  return { seen, ...fates };
}

/** Dedup table bookkeeping, summed over CPUs (every field of struct stella_dedup_stats). */
export function readDedupStats(
  map: BpfMap,
  ncpu: number,
): Record<keyof typeof LAYOUT.stella_dedup_stats.members, bigint> {
  const { size, members } = LAYOUT.stella_dedup_stats;
  const fields = Object.keys(members) as (keyof typeof members)[];
  return sumPerCpu(map.lookup(slotKey(0)), members, fields, size, ncpu);
}

/** True when every probe's fates add up to what it saw: no program is mid-event. */
export function balanced(counters: ReadonlyMap<string, KernelCounters>): boolean {
  for (const c of counters.values()) {
    if (c.seen !== c.filtered + c.deduplicated + c.emitted + c.lost) return false;
  }
  return true;
}

/**
 * The final counters, read after every link is detached. A detach does not
 * wait for a program already running on another CPU (the tracepoint's
 * probe array is freed after an RCU grace period), so this re-reads until
 * the counters balance, at most `reads` times (a program finishes within
 * microseconds); the last read is returned either way, and a caller that
 * checks the balance sees what is left.
 */
export function settledCounters<K extends string>(
  read: () => Map<K, KernelCounters>,
  reads = 1000,
): Map<K, KernelCounters> {
  let c = read();
  for (let i = 1; i < reads && !balanced(c); i++) c = read();
  return c;
}
