import { createHash } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';

/** in-toto Statement v1 type URI. */
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
/** DSSE payload type of every envelope this package writes. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** Predicate of a sealed chunk of runtime evidence. */
export const CHUNK_PREDICATE_TYPE = 'https://stellaops.dev/attestations/runtime-evidence-chunk/v1';
/** Predicate of an end-of-stream statement (clean stop or crash recovery). */
export const STREAM_END_PREDICATE_TYPE = 'https://stellaops.dev/attestations/runtime-evidence-stream-end/v1';

/** Collector identity that goes into every predicate. */
export interface ChainMeta {
  hostId: string;
  kernelRelease: string;
  /** BTF identity of the running kernel, e.g. `sha256:<hex>` of /sys/kernel/btf/vmlinux. */
  btfId: string;
  collectorVersion: string;
  /** Digest of the effective filter configuration, e.g. `sha256:<hex>`. */
  filterConfigDigest: string;
}

/** One probe's totals as the collector_status record carries them (u64 counters as decimal strings). */
export interface ProbeTotals {
  name: string;
  attached: boolean;
  attach_type: string;
  reason?: string;
  seen: string;
  filtered: string;
  deduplicated: string;
  emitted: string;
  lost: string;
  /** Seen but not yet accounted when the status was made (in-band statuses only; absent: 0). */
  in_flight?: string;
}

/** Collector totals recorded in a predicate: probes sorted by name, and when they were taken. */
export interface StatusTotals {
  probes: ProbeTotals[];
  as_of_wall_ns: string | null;
}

/** What recovery found in the unfinished chunk of a crashed run. */
export interface RecoveryInfo {
  /** Stream (run) that crashed. */
  crashed_stream_id: string;
  /** Stream (run) that sealed the chunk after the restart. */
  recovered_by_stream_id: string;
  recovered_wall_ns: string;
  /** Bytes after the last newline (an incomplete record), cut from the chunk and kept in `chunk-N.partial`. */
  partial_line_bytes: number;
  partial_line_sha256: string | null;
  /**
   * Lines of the chunk (1-based, inclusive) that were written while the chunk
   * was unsealed and were signed only by this recovery, after the restart:
   * every line of a recovered chunk. Null for a chunk without lines. Anyone
   * who could write the evidence directory between the crash and the restart
   * could have changed them (docs/security-model.md, "Recovery window").
   */
  unsealed_lines?: { first: number; last: number } | null;
  /** `seq` of the first and last of those lines; null when there are none. */
  unsealed_seq?: { first: string; last: string } | null;
}

/** Predicate of a chunk statement. All u64 values are decimal strings, as in the record contract. */
export interface ChunkPredicate {
  stream_id: string;
  chunk_index: number;
  previous_statement_digest: string | null;
  previous_chunk_digest: string | null;
  opened_wall_ns: string;
  opened_mono_ns: string;
  closed_wall_ns: string;
  closed_mono_ns: string | null;
  first_record_wall_ns: string | null;
  last_record_wall_ns: string | null;
  first_record_mono_ns: string | null;
  last_record_mono_ns: string | null;
  first_seq: string | null;
  last_seq: string | null;
  record_count: string;
  byte_count: string;
  /** Records per `type`, keys sorted (JCS). */
  record_counts: Record<string, string>;
  collector_status: StatusTotals;
  host_id: string;
  kernel_release: string;
  btf_id: string;
  collector_version: string;
  filter_config_digest: string;
  recovered: boolean;
  recovery: RecoveryInfo | null;
}

/** Predicate of an end-of-stream statement. Its subject is the stream's last chunk. */
export interface StreamEndPredicate {
  stream_id: string;
  /**
   * `stop`: a clean stop; `error`: the collector died of an error;
   * `disk_full`: the disk stayed full, records after the last chunk were not
   * written; `crash_recovery`: sealed by the next start after a crash.
   */
  reason: 'stop' | 'error' | 'disk_full' | 'crash_recovery';
  first_chunk_index: number;
  last_chunk_index: number;
  chunk_count: number;
  last_statement_digest: string;
  ended_wall_ns: string;
  collector_status: StatusTotals;
  host_id: string;
  collector_version: string;
  final: true;
}

/** in-toto Statement v1 with one subject. */
export interface Statement<P> {
  _type: typeof IN_TOTO_STATEMENT_TYPE;
  subject: [{ name: string; digest: { sha256: string } }];
  predicateType: string;
  predicate: P;
}

/** A statement and its canonical bytes (the DSSE payload). */
export interface EncodedStatement<P> {
  statement: Statement<P>;
  payload: Buffer;
  /** `sha256:<hex>` of `payload`: what the next link's `previous_statement_digest` holds. */
  digest: string;
}

/** Build and canonicalize (RFC 8785) a statement. */
export function encodeStatement<P>(
  subjectName: string,
  subjectSha256Hex: string,
  predicateType: string,
  predicate: P,
): EncodedStatement<P> {
  const statement: Statement<P> = {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: subjectName, digest: { sha256: subjectSha256Hex } }],
    predicateType,
    predicate,
  };
  const payload = Buffer.from(canonicalize(statement), 'utf8');
  return { statement, payload, digest: `sha256:${sha256Hex(payload)}` };
}

/** Hex SHA-256. */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Empty totals (no collector_status seen yet). */
export function emptyTotals(): StatusTotals {
  return { probes: [], as_of_wall_ns: null };
}
