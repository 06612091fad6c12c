import * as fs from 'node:fs';
import { join } from 'node:path';
import { EvidenceChainError, ioError } from './errors.js';
import {
  acquireDirLock,
  createNewFile,
  ensureEvidenceDir,
  fsyncDir,
  openExistingRw,
  readFileNoFollow,
  safeUnlink,
  writeFileAtomic,
} from './fsx.js';
import { bundleName, chunkName, type DirListing, listDir, openMarkerName, partialName } from './layout.js';
import { scanChunk } from './records.js';
import { type ChainHead, chainHeadAt, sealEndOfStream, sealToDisk } from './seal.js';
import type { Signer } from './signer.js';
import {
  CHUNK_PREDICATE_TYPE,
  type ChainMeta,
  type ChunkPredicate,
  emptyTotals,
  encodeStatement,
  type RecoveryInfo,
  type StatusTotals,
  sha256Hex,
} from './statement.js';

/** Content of `chunk-N.open.json`: what recovery needs to seal a chunk its writer never sealed. */
export interface OpenMarker {
  stream_id: string;
  chunk_index: number;
  opened_wall_ns: string;
  opened_mono_ns: string;
  meta: ChainMeta;
}

/** One chunk recovery sealed. */
export interface RecoveredChunk {
  index: number;
  file: string;
  crashedStreamId: string;
  records: number;
  /** Bytes of an incomplete last line that were cut and kept in `chunk-N.partial` (0 if none). */
  partialLineBytes: number;
}

/** What `recoverDirectory` did. */
export interface RecoveryReport {
  recovered: RecoveredChunk[];
  /** Chunk indexes that got a `crash_recovery` end-of-stream statement. */
  endMarkers: number[];
  /** Leftover temporary files removed. */
  removedTemps: string[];
}

/**
 * Bring an evidence directory left by a killed collector back to a sealed
 * state, so a new stream can continue the chain:
 *
 * 1. temporary files of interrupted atomic writes are removed;
 * 2. every chunk that has an open marker but no bundle is sealed as
 *    `recovered`, in index order, with every complete line it holds; an
 *    incomplete last line is first saved to `chunk-N.partial` and then cut, and
 *    its size and sha256 go into the signed predicate (never silently dropped);
 * 3. a stream that ended without an end-of-stream statement gets one with
 *    reason `crash_recovery`.
 *
 * Idempotent: a crash during recovery is recovered by the next run. A sealed
 * chunk is never modified. Takes the directory lock (DIRECTORY_LOCKED while a
 * live writer holds it). Throws CHAIN_STATE_INVALID when the directory
 * holds an unsealed chunk with no open marker (not written by this package).
 */
export async function recoverDirectory(
  dir: string,
  signer: Signer,
  recoveredByStreamId: string,
  meta: ChainMeta,
): Promise<RecoveryReport> {
  ensureEvidenceDir(dir);
  // Never seal chunks a live writer (another process) is still writing.
  const release = acquireDirLock(dir);
  try {
    return await recoverLocked(dir, signer, recoveredByStreamId, meta);
  } finally {
    release();
  }
}

/** `recoverDirectory` for a caller that already holds the directory lock. */
export async function recoverLocked(
  dir: string,
  signer: Signer,
  recoveredByStreamId: string,
  meta: ChainMeta,
): Promise<RecoveryReport> {
  const report: RecoveryReport = { recovered: [], endMarkers: [], removedTemps: [] };
  let l = listDir(dir);
  for (const t of l.temps) {
    safeUnlink(join(dir, t));
    report.removedTemps.push(t);
  }
  for (const i of l.open) {
    if (l.bundles.has(i)) safeUnlink(join(dir, openMarkerName(i)));
  }
  const unsealed = l.indexes.filter((i) => (l.chunks.has(i) || l.open.has(i)) && !l.bundles.has(i));
  let head: ChainHead | undefined;
  for (const i of unsealed) {
    const prevSealed = [...l.bundles].filter((b) => b < i).sort((a, b) => b - a)[0];
    head = prevSealed === undefined ? undefined : chainHeadAt(dir, prevSealed);
    const r = await recoverChunk(dir, l, i, head, signer, recoveredByStreamId, meta);
    report.recovered.push(r);
    l.bundles.add(i);
  }
  if (report.removedTemps.length > 0 || unsealed.length > 0) fsyncDir(dir);
  l = listDir(dir);
  const last = [...l.bundles].sort((a, b) => b - a)[0];
  if (last !== undefined && !l.ends.has(last)) {
    head = chainHeadAt(dir, last);
    const first = firstIndexOfStream(dir, l, head);
    await sealEndOfStream(
      dir,
      {
        head,
        firstChunkIndex: first,
        reason: 'crash_recovery',
        endedWallNs: nowWallNs(),
        totals: head.predicate.collector_status ?? emptyTotals(),
        meta: { hostId: head.predicate.host_id, collectorVersion: head.predicate.collector_version },
      },
      signer,
    );
    report.endMarkers.push(last);
  }
  return report;
}

function firstIndexOfStream(dir: string, l: DirListing, head: ChainHead): number {
  let first = head.index;
  for (let i = head.index - 1; i >= 0 && l.bundles.has(i); i--) {
    if (chainHeadAt(dir, i).streamId !== head.streamId) break;
    first = i;
  }
  return first;
}

async function recoverChunk(
  dir: string,
  l: DirListing,
  i: number,
  head: ChainHead | undefined,
  signer: Signer,
  recoveredBy: string,
  runMeta: ChainMeta,
): Promise<RecoveredChunk> {
  const chunkPath = join(dir, chunkName(i));
  if (!l.open.has(i)) {
    throw new EvidenceChainError(
      'CHAIN_STATE_INVALID',
      `${chunkPath} is neither sealed nor marked open: it was not written by this collector; move it out of ${dir}`,
      { path: chunkPath },
    );
  }
  const markerPath = join(dir, openMarkerName(i));
  let marker: OpenMarker;
  try {
    marker = JSON.parse(readFileNoFollow(markerPath).toString('utf8')) as OpenMarker;
    if (typeof marker.stream_id !== 'string' || marker.chunk_index !== i) throw new Error('fields missing');
  } catch (err) {
    throw new EvidenceChainError(
      'CHAIN_STATE_INVALID',
      `${markerPath} is damaged (${(err as Error).message}); move ${chunkName(i)} and its marker out of ${dir}`,
      { path: markerPath, cause: err },
    );
  }
  if (!l.chunks.has(i)) fs.closeSync(createNewFile(chunkPath));
  let data = readFileNoFollow(chunkPath);
  let scan = scanChunk(data);
  const partialPath = join(dir, partialName(i));
  let partial: Buffer | undefined;
  if (scan.partial.length > 0) {
    // Keep the incomplete line before cutting it, so a crash here loses nothing.
    writeFileAtomic(dir, partialName(i), scan.partial);
    partial = scan.partial;
    const fd = openExistingRw(chunkPath);
    try {
      fs.ftruncateSync(fd, scan.completeBytes);
      fs.fsyncSync(fd);
    } catch (err) {
      throw ioError('cannot cut the incomplete last line of', chunkPath, err);
    } finally {
      fs.closeSync(fd);
    }
    data = data.subarray(0, scan.completeBytes);
    scan = scanChunk(data);
  } else if (l.partials.has(i)) {
    partial = readFileNoFollow(partialPath);
  }
  const st = fs.statSync(chunkPath, { bigint: true });
  const recovery: RecoveryInfo = {
    crashed_stream_id: marker.stream_id,
    recovered_by_stream_id: recoveredBy,
    recovered_wall_ns: nowWallNs().toString(),
    partial_line_bytes: partial?.length ?? 0,
    partial_line_sha256: partial ? sha256Hex(partial) : null,
    // Every complete line of this chunk was written while it was unsealed.
    unsealed_lines: scan.recordCount > 0 ? { first: 1, last: scan.recordCount } : null,
    unsealed_seq:
      scan.firstSeq !== null && scan.lastSeq !== null ? { first: scan.firstSeq, last: scan.lastSeq } : null,
  };
  const m = marker.meta;
  const totals: StatusTotals = scan.lastStatus
    ? { probes: scan.lastStatus.probes, as_of_wall_ns: scan.lastStatus.wallNs }
    : ((head?.streamId === marker.stream_id ? head.predicate.collector_status : undefined) ?? emptyTotals());
  const predicate: ChunkPredicate = {
    stream_id: marker.stream_id,
    chunk_index: i,
    previous_statement_digest: head?.statementDigest ?? null,
    previous_chunk_digest: head?.chunkDigest ?? null,
    opened_wall_ns: marker.opened_wall_ns,
    opened_mono_ns: marker.opened_mono_ns,
    // Millisecond resolution like every other wall time the writer records.
    closed_wall_ns: maxBig((st.mtimeNs / 1_000_000n) * 1_000_000n, BigInt(marker.opened_wall_ns)).toString(),
    closed_mono_ns: null,
    first_record_wall_ns: scan.firstWall,
    last_record_wall_ns: scan.lastWall,
    first_record_mono_ns: scan.firstMono,
    last_record_mono_ns: scan.lastMono,
    first_seq: scan.firstSeq,
    last_seq: scan.lastSeq,
    record_count: String(scan.recordCount),
    byte_count: String(data.length),
    record_counts: sortedCounts(scan.recordCounts),
    collector_status: totals,
    host_id: m?.hostId ?? runMeta.hostId,
    kernel_release: m?.kernelRelease ?? runMeta.kernelRelease,
    btf_id: m?.btfId ?? runMeta.btfId,
    collector_version: m?.collectorVersion ?? runMeta.collectorVersion,
    filter_config_digest: m?.filterConfigDigest ?? runMeta.filterConfigDigest,
    recovered: true,
    recovery,
  };
  const encoded = encodeStatement(chunkName(i), sha256Hex(data), CHUNK_PREDICATE_TYPE, predicate);
  await sealToDisk(dir, bundleName(i), encoded, signer);
  safeUnlink(markerPath);
  return {
    index: i,
    file: chunkName(i),
    crashedStreamId: marker.stream_id,
    records: scan.recordCount,
    partialLineBytes: partial?.length ?? 0,
  };
}

function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** Map of counts → JCS-friendly object with sorted keys and decimal-string values. */
export function sortedCounts(m: Map<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...m.keys()].sort()) out[k] = String(m.get(k));
  return out;
}

/** Unix-epoch ns (ms resolution from Date, good enough for chunk bookkeeping). */
export function nowWallNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}
