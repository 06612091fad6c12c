/**
 * Reads the few envelope fields the chain needs from canonical NDJSON lines.
 * The chain hashes lines as opaque bytes; it parses them only at recovery and
 * verification. (Parsed with JSON.parse: @stellaops/ndjson had not landed
 * when this was written; only `type`, `seq`, `wall_ns`, `mono_ns` and the
 * collector_status `probes` are read.)
 */
import type { ProbeTotals } from './statement.js';

/** Summary of a chunk's complete lines. */
export interface ChunkScan {
  /** Bytes up to and including the last newline. */
  completeBytes: number;
  /** Bytes after the last newline (an incomplete record). */
  partial: Buffer;
  recordCount: number;
  recordCounts: Map<string, number>;
  firstWall: string | null;
  lastWall: string | null;
  firstMono: string | null;
  lastMono: string | null;
  firstSeq: string | null;
  lastSeq: string | null;
  /** Problems with individual lines: 1-based line number and what is wrong. */
  problems: { line: number; message: string }[];
  /** Probe totals from the last collector_status record, if any. */
  lastStatus: { probes: ProbeTotals[]; wallNs: string } | null;
}

const U64 = /^(0|[1-9][0-9]{0,19})$/;

/** Scan a chunk's bytes. Never throws on bad content: problems are listed. */
export function scanChunk(data: Buffer): ChunkScan {
  const lastNl = data.lastIndexOf(10);
  const completeBytes = lastNl + 1;
  const s: ChunkScan = {
    completeBytes,
    partial: data.subarray(completeBytes),
    recordCount: 0,
    recordCounts: new Map(),
    firstWall: null,
    lastWall: null,
    firstMono: null,
    lastMono: null,
    firstSeq: null,
    lastSeq: null,
    problems: [],
    lastStatus: null,
  };
  let start = 0;
  let lineNo = 0;
  let prevSeq: bigint | null = null;
  while (start < completeBytes) {
    const end = data.indexOf(10, start);
    lineNo++;
    const text = data.toString('utf8', start, end);
    start = end + 1;
    s.recordCount++;
    let rec: Record<string, unknown>;
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      rec = v as Record<string, unknown>;
    } catch (err) {
      s.problems.push({ line: lineNo, message: `not a JSON object (${(err as Error).message})` });
      bump(s.recordCounts, '<invalid>');
      continue;
    }
    const type = typeof rec.type === 'string' ? rec.type : '<untyped>';
    bump(s.recordCounts, type);
    const wall = u64(rec.wall_ns);
    const mono = u64(rec.mono_ns);
    if (s.recordCount === 1) {
      s.firstWall = wall;
      s.firstMono = mono;
    }
    s.lastWall = wall;
    s.lastMono = mono;
    const seq = u64(rec.seq);
    if (seq !== null) {
      const n = BigInt(seq);
      if (prevSeq !== null && n !== prevSeq + 1n) {
        s.problems.push({
          line: lineNo,
          message: `seq ${seq} does not follow ${prevSeq} (a record is missing, repeated or out of order)`,
        });
      }
      prevSeq = n;
      if (s.firstSeq === null) s.firstSeq = seq;
      s.lastSeq = seq;
    }
    if (type === 'collector_status' && Array.isArray(rec.probes)) {
      s.lastStatus = { probes: normalizeProbes(rec.probes), wallNs: wall ?? '0' };
    }
  }
  return s;
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function u64(v: unknown): string | null {
  return typeof v === 'string' && U64.test(v) ? v : null;
}

/**
 * Normalize probe totals from a collector_status record or `updateStatus`:
 * counters become decimal strings, probes are sorted by name. Entries without
 * a string name are dropped.
 */
export function normalizeProbes(probes: readonly unknown[]): ProbeTotals[] {
  const out: ProbeTotals[] = [];
  for (const p of probes) {
    if (typeof p !== 'object' || p === null) continue;
    const r = p as Record<string, unknown>;
    if (typeof r.name !== 'string') continue;
    const t: ProbeTotals = {
      name: r.name,
      attached: r.attached === true,
      attach_type: typeof r.attach_type === 'string' ? r.attach_type : '',
      seen: counter(r.seen),
      filtered: counter(r.filtered),
      deduplicated: counter(r.deduplicated),
      emitted: counter(r.emitted),
      lost: counter(r.lost),
    };
    if (typeof r.reason === 'string') t.reason = r.reason;
    const inFlight = counter(r.in_flight);
    if (inFlight !== '0') t.in_flight = inFlight;
    out.push(t);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function counter(v: unknown): string {
  if (typeof v === 'bigint') return v < 0n ? '0' : v.toString();
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  if (typeof v === 'string' && U64.test(v)) return v;
  return '0';
}
