/**
 * The records check of verify-chain: every line of a sealed chunk must be
 * what the collector signs, a canonical (RFC 8785) schema v1 record, decoded
 * with the validating decoder of @stellaops/ndjson; and the chunk's lines
 * must agree with the counts, times and seq range its signed statement names.
 */
import { decodeLine, NdjsonError } from '@stellaops/ndjson';
import type { ChunkPredicate } from './statement.js';

/** One line of a chunk that is not what the collector signs. */
export interface LineProblem {
  /** 1-based line number within the chunk file. */
  line: number;
  /** JSONPath of the offending member (`$` for the line as a whole). */
  path: string;
  /** What is wrong, as the ndjson decoder classifies it: SCHEMA, NOT_CANONICAL, INVALID_UTF8, INVALID_JSON, SEQUENCE. */
  code: string;
  /** What is wrong, in words. */
  message: string;
}

/** What the validating decoder found in a chunk's bytes. */
export interface ChunkRecords {
  recordCount: number;
  /** Records per `type`; lines that do not decode count as `<invalid>`. */
  recordCounts: Map<string, number>;
  firstWall: string | null;
  lastWall: string | null;
  firstSeq: string | null;
  lastSeq: string | null;
  /** Bytes after the last newline (an incomplete line). */
  partialBytes: number;
  /** Every bad line, in order. */
  problems: LineProblem[];
  /** True when the last line is a `collector_status` record with `final: true` (the run's closing status). */
  endsWithFinalStatus: boolean;
}

/** Decoded text of a member that holds U+FFFD after a lossy decode, for locating a non-UTF-8 byte. */
function pathOfReplacement(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\uFFFD') ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = pathOfReplacement(value[i], `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const p = pathOfReplacement(
        v,
        /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`,
      );
      if (p) return p;
    }
  }
  return undefined;
}

/** The JSONPath of the member holding the first non-UTF-8 byte of a line, `$` when it cannot be told. */
function invalidUtf8Path(line: Buffer): string {
  try {
    return pathOfReplacement(JSON.parse(line.toString('utf8')), '$') ?? '$';
  } catch {
    return '$';
  }
}

function lineProblem(err: NdjsonError, line: Buffer): LineProblem {
  const path = err.code === 'INVALID_UTF8' ? invalidUtf8Path(line) : (err.path ?? '$');
  return { line: err.lineNumber ?? 0, path, code: err.code, message: err.reason };
}

/**
 * Decode every complete line of a chunk with the validating decoder (UTF-8,
 * JSON, schema v1, canonical form) and check that `seq` grows by one from
 * line to line. Never throws on bad content: every bad line is a problem
 * naming the line and the JSON path.
 */
export function decodeChunkRecords(data: Buffer): ChunkRecords {
  const completeBytes = data.lastIndexOf(10) + 1;
  const r: ChunkRecords = {
    recordCount: 0,
    recordCounts: new Map(),
    firstWall: null,
    lastWall: null,
    firstSeq: null,
    lastSeq: null,
    partialBytes: data.length - completeBytes,
    problems: [],
    endsWithFinalStatus: false,
  };
  let start = 0;
  let lineNumber = 0;
  let prevSeq: bigint | null = null;
  while (start < completeBytes) {
    const end = data.indexOf(10, start);
    lineNumber++;
    const bytes = data.subarray(start, end);
    start = end + 1;
    r.recordCount++;
    let rec: ReturnType<typeof decodeLine>;
    try {
      rec = decodeLine(bytes, { lineNumber });
    } catch (err) {
      if (!(err instanceof NdjsonError)) throw err;
      r.problems.push(lineProblem(err, bytes));
      bump(r.recordCounts, '<invalid>');
      r.endsWithFinalStatus = false;
      // Resume the seq check from the rejected line's seq when it can be read,
      // else skip it for the next line: a rejected line must not also blame the next one.
      prevSeq = seqOf(bytes);
      continue;
    }
    bump(r.recordCounts, rec.type);
    if (r.recordCount === 1) r.firstWall = rec.wall_ns;
    r.lastWall = rec.wall_ns;
    const seq = BigInt(rec.seq);
    if (prevSeq !== null && seq !== prevSeq + 1n) {
      r.problems.push({
        line: lineNumber,
        path: '$.seq',
        code: 'SEQUENCE',
        message: `seq ${rec.seq} does not follow ${prevSeq} (a record is missing, repeated or out of order)`,
      });
    }
    prevSeq = seq;
    if (r.firstSeq === null) r.firstSeq = rec.seq;
    r.lastSeq = rec.seq;
    r.endsWithFinalStatus = rec.type === 'collector_status' && rec.final === true;
  }
  return r;
}

/** The `seq` of a line that failed validation, or null when it cannot be read. */
function seqOf(line: Buffer): bigint | null {
  try {
    const seq = (JSON.parse(line.toString('utf8')) as { seq?: unknown }).seq;
    return (typeof seq === 'string' && /^(0|[1-9][0-9]*)$/.test(seq)) ||
      (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0)
      ? BigInt(seq)
      : null;
  } catch {
    return null;
  }
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/** How many line problems a check message spells out before summarising the rest. */
const SHOWN_PROBLEMS = 5;

/** One line problem as a check message: `line 3 $.uid: SCHEMA: …`. */
export function formatLineProblem(p: LineProblem): string {
  return `line ${p.line} ${p.path}: ${p.code}: ${p.message}`;
}

/**
 * Compare a chunk's decoded records with its signed predicate: every line
 * valid, counts (total and per type), byte count, first/last wall times,
 * first/last seq, and the seq continuing the previous chunk of the same
 * stream (`prevLastSeq`, null when this chunk starts a stream or the
 * previous chunk had no records). Returns the problems, empty when it holds.
 */
export function checkRecords(
  data: Buffer,
  s: ChunkRecords,
  p: ChunkPredicate,
  prevLastSeq: { chunk: number; seq: string } | null,
): string[] {
  const probs: string[] = [];
  if (s.partialBytes > 0) probs.push(`${s.partialBytes} bytes after the last newline`);
  for (const x of s.problems.slice(0, SHOWN_PROBLEMS)) probs.push(formatLineProblem(x));
  if (s.problems.length > SHOWN_PROBLEMS)
    probs.push(`and ${s.problems.length - SHOWN_PROBLEMS} more line problems`);
  if (String(s.recordCount) !== p.record_count)
    probs.push(`${s.recordCount} records, statement says ${p.record_count}`);
  if (String(data.length) !== p.byte_count)
    probs.push(`${data.length} bytes, statement says ${p.byte_count}`);
  // Lines that do not decode have no type, time or seq to compare: their problems say it already.
  if (s.problems.every((x) => x.code === 'SEQUENCE')) {
    const counts: Record<string, string> = {};
    for (const k of [...s.recordCounts.keys()].sort()) counts[k] = String(s.recordCounts.get(k));
    if (JSON.stringify(counts) !== JSON.stringify(p.record_counts)) {
      probs.push(
        `per-type counts ${JSON.stringify(counts)} differ from the statement's ${JSON.stringify(p.record_counts)}`,
      );
    }
    if (p.first_record_wall_ns !== s.firstWall)
      probs.push(`first_record_wall_ns ${p.first_record_wall_ns} but the records say ${s.firstWall}`);
    if (p.last_record_wall_ns !== s.lastWall)
      probs.push(`last_record_wall_ns ${p.last_record_wall_ns} but the records say ${s.lastWall}`);
    if (p.first_seq !== null && p.first_seq !== s.firstSeq)
      probs.push(`first_seq ${p.first_seq} but records start at ${s.firstSeq}`);
    if (p.last_seq !== null && p.last_seq !== s.lastSeq)
      probs.push(`last_seq ${p.last_seq} but records end at ${s.lastSeq}`);
  }
  if (prevLastSeq && s.firstSeq !== null && BigInt(s.firstSeq) !== BigInt(prevLastSeq.seq) + 1n) {
    probs.push(
      `first seq ${s.firstSeq} does not follow chunk ${prevLastSeq.chunk}'s last seq ${prevLastSeq.seq}`,
    );
  }
  return probs;
}
