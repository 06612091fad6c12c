import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { type BundleJson, bundlePayload, parseBundle } from './bundle.js';
import { readFileNoFollow } from './fsx.js';
import { bundleName, chunkName, endBundleName, listDir, partialName } from './layout.js';
import { sigstoreBundle, sigstoreVerify } from './sigstore-lazy.js';
import {
  CHUNK_PREDICATE_TYPE,
  type ChunkPredicate,
  STREAM_END_PREDICATE_TYPE,
  type Statement,
  type StreamEndPredicate,
} from './statement.js';
import {
  checkKey,
  checkLink,
  checkSignature,
  checkStatement,
  checkTimes,
  loadTrust,
  type PreviousLink,
  type Trust,
} from './verify-checks.js';
import { checkRecords, decodeChunkRecords, type LineProblem } from './verify-records.js';

export type { LineProblem } from './verify-records.js';

/** Verification policy. Trust comes only from here, never from the bundles. */
export interface VerifyChainOptions {
  /** Pinned PEM public keys; a chunk signed by any other key fails. */
  keys: string[];
  /** Path to a Sigstore `trusted_root.json` (Rekor/TSA keys, Fulcio CAs) for log entries and keyless bundles. */
  trustedRoot?: string;
  /** Every chunk must carry a verified transparency-log entry (needs `trustedRoot`). */
  requireTlog?: boolean;
  /**
   * Demand that the chain is closed: the last chunk has a signed end-of-stream
   * statement (clean stop or crash recovery), so deleting the last chunk(s)
   * is detected. `{ expectedChunks }` additionally demands that many chunks.
   */
  requireEnd?: boolean | { expectedChunks: number };
  /**
   * Demand that every ended stream is complete: it was stopped (not cut by a
   * crash), its last record is the run's final `collector_status`
   * (`final: true`), and its end-of-stream statement carries collector
   * totals. Without it, incomplete streams are listed in `incomplete` but do
   * not fail the report.
   */
  requireComplete?: boolean;
}

/** One check of one chunk. */
export interface CheckResult {
  name: string;
  ok: boolean;
  message: string;
  /** True when the check did not apply (ok stays true). */
  skipped?: boolean;
}

/** How crash recovery sealed a chunk, from its signed predicate. */
export interface ChunkRecovery {
  crashedStreamId: string;
  recoveredByStreamId: string;
  recoveredWallNs: string;
  /**
   * Lines (1-based, inclusive) written while the chunk was unsealed and
   * signed only at the restart: not protected against anyone who could
   * write the directory between the crash and the restart. Null for a
   * chunk without lines.
   */
  unsealedLines: { first: number; last: number } | null;
  /** `seq` of the first and last of those lines. */
  unsealedSeq: { first: string; last: string } | null;
}

/** Result for one chunk index. */
export interface ChunkReport {
  index: number;
  file: string;
  ok: boolean;
  checks: CheckResult[];
  streamId?: string;
  records?: number;
  recovered?: boolean;
  /** Set for a chunk sealed by crash recovery: which of its lines were unsealed until the restart. */
  recovery?: ChunkRecovery;
  /** Lines that are not canonical schema v1 records, with line number and JSON path. */
  lineProblems?: LineProblem[];
}

/** A run of chunks written by one collector stream. */
export interface StreamReport {
  streamId: string;
  firstChunk: number;
  lastChunk: number;
  /** Reason of the stream's end-of-stream statement, null while it has none. */
  end: StreamEndPredicate['reason'] | null;
  /** True when the stream's last record is its run's final `collector_status` (`final: true`). */
  finalStatus: boolean;
  /** What is missing from an ended stream (crash, no final status, no totals), or null when complete. */
  incomplete: string | null;
}

/** Machine-readable verify-chain report. */
export interface ChainReport {
  ok: boolean;
  dir: string;
  chunks: ChunkReport[];
  streams: StreamReport[];
  summary: {
    chunks: number;
    failedChunks: number;
    records: number;
    streams: number;
    tlogEntries: number;
    closed: boolean;
    /** Chunks at the tail that are not sealed yet (running or killed writer). */
    unsealed: number;
    /** True when no ended stream is incomplete (see `incomplete`). */
    complete: boolean;
    /** Chunks sealed by crash recovery, and the lines in them that were unsealed until the restart. */
    recoveredChunks: number;
    recoveredLines: number;
  };
  /** One line per failure, each naming the chunk file and the check. */
  errors: string[];
  /** One line per incomplete stream, naming its last chunk; failures only under `requireComplete`. */
  incomplete: string[];
}

/** Bundles hold one statement and a few log entries: a few KiB. Anything this big is not ours. */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

interface Decoded<P> {
  bundle: BundleJson;
  statement: Statement<P>;
  digest: string;
}

/** Records a check on a chunk report (and a failure in the error list). */
type AddCheck = (name: string, ok: boolean, message: string, skipped?: boolean) => void;

function checkAdder(r: ChunkReport, errors: string[]): AddCheck {
  return (name, ok, message, skipped = false) => {
    r.checks.push(skipped ? { name, ok, message, skipped } : { name, ok, message });
    if (!ok) {
      r.ok = false;
      errors.push(`${r.file}: ${name}: ${message}`);
    }
  };
}

/** State carried from one chunk to the next. */
interface Cursor {
  prev: PreviousLink | undefined;
  /** Last seq of the stream so far, and which chunk held it. */
  lastSeq: { stream: string; chunk: number; seq: string | null } | undefined;
  records: number;
  tlogEntries: number;
  streams: StreamReport[];
  seenStreams: Set<string>;
  /** Streams whose end-of-stream statement carries no collector totals. */
  emptyEndTotals: Set<string>;
}

/**
 * Verify an evidence directory offline. Never throws for evidence problems:
 * every problem is a failed check in the report, naming the chunk file and
 * the check. Throws INVALID_OPTION for bad options (no keys, unreadable
 * trusted root) and IO_ERROR when the directory cannot be listed.
 *
 * Checks per chunk: bundle, key (the bundle names a pinned key the way
 * sigstore-js and sigstore-go look it up), signature, payload (DSSE type,
 * statement type, predicate type), subject (name and sha256 of the file),
 * index (continuity from 0), link (previous statement and chunk digests),
 * times (monotonic within and across streams), records (every line a
 * canonical schema v1 record, decoded by @stellaops/ndjson; counts, seq
 * continuity, first/last times against the statement), tlog (SET,
 * inclusion proof, checkpoint, when present or required), partial and
 * recovery (what crash recovery sealed), end-of-stream. Per stream: whether
 * it ended complete (see `requireComplete`).
 */
export function verifyChain(dir: string, options: VerifyChainOptions): ChainReport {
  const trust = loadTrust(options);
  const l = listDir(dir);
  const reports: ChunkReport[] = [];
  const errors: string[] = [];
  const cur: Cursor = {
    prev: undefined,
    lastSeq: undefined,
    records: 0,
    tlogEntries: 0,
    streams: [],
    seenStreams: new Set(),
    emptyEndTotals: new Set(),
  };
  const maxIndex = l.indexes.length > 0 ? l.indexes[l.indexes.length - 1]! : -1;
  let openTailStart = maxIndex + 1;
  while (openTailStart > 0 && l.open.has(openTailStart - 1) && !l.bundles.has(openTailStart - 1))
    openTailStart--;
  const endRequired = options.requireEnd !== undefined && options.requireEnd !== false;

  for (let i = 0; i <= maxIndex; i++) {
    const r: ChunkReport = { index: i, file: chunkName(i), ok: true, checks: [] };
    reports.push(r);
    const add = checkAdder(r, errors);
    const hasChunk = l.chunks.has(i);
    const hasBundle = l.bundles.has(i);
    if (!hasChunk && !hasBundle && !(l.open.has(i) && i >= openTailStart)) {
      add('present', false, missingChunkMessage(i, l.open.has(i), l.ends.has(i)));
      cur.prev = undefined;
      continue;
    }
    if (!hasBundle) {
      // Seals run in the background, so a running (or killed) writer can leave
      // several unsealed chunks at the tail; each still has its open marker.
      if (i >= openTailStart) {
        add(
          'sealed',
          !endRequired,
          endRequired
            ? `chunk ${i} is not sealed (the collector is running or crashed; its next start seals it) and requireEnd is set`
            : `chunk ${i} is not sealed yet (collector running, or crashed and not yet restarted); its lines are not verified yet`,
        );
      } else {
        add('bundle', false, `${bundleName(i)} is missing: chunk ${i} is not sealed`);
      }
      cur.prev = undefined;
      continue;
    }
    try {
      verifyChunk(dir, i, hasChunk, l.partials.has(i), l.ends.has(i), r, add, trust, options, cur);
    } catch (err) {
      // Only reachable with a validly signed but malformed statement: report, never throw.
      add('predicate', false, `malformed statement content (${(err as Error).message})`);
      cur.prev = undefined;
    }
  }

  // Streams: every stream but the last must have ended; the last too when required.
  const streams = cur.streams;
  for (let s = 0; s < streams.length; s++) {
    const st = streams[s]!;
    const isLast = s === streams.length - 1;
    if (st.end !== null) continue;
    if (isLast && !endRequired) continue;
    const msg = isLast
      ? `the chain ends at chunk ${st.lastChunk} without an end-of-stream statement (later chunks deleted, or the collector is still running)`
      : `stream ${st.streamId} stops at chunk ${st.lastChunk} without an end-of-stream statement`;
    checkAdder(reports[st.lastChunk]!, errors)('end-of-stream', false, msg);
  }
  const incomplete = completeness(
    streams,
    cur.emptyEndTotals,
    reports,
    errors,
    options.requireComplete === true,
  );
  if (options.requireEnd && typeof options.requireEnd === 'object') {
    const want = options.requireEnd.expectedChunks;
    if (maxIndex + 1 !== want) errors.push(`chain: expected ${want} chunks, found ${maxIndex + 1}`);
  }
  if (maxIndex < 0 && options.requireEnd) errors.push(`chain: ${dir} holds no chunks`);
  for (const o of l.other) {
    if (!/^chunk-/.test(o)) continue;
    errors.push(`${o}: layout: unexpected file name in the evidence directory`);
  }
  const lastStream = streams[streams.length - 1];
  const recovered = reports.filter((c) => c.recovery);
  return {
    ok: errors.length === 0,
    dir,
    chunks: reports,
    streams,
    summary: {
      chunks: reports.length,
      failedChunks: reports.filter((c) => !c.ok).length,
      records: cur.records,
      streams: streams.length,
      tlogEntries: cur.tlogEntries,
      closed: lastStream?.end != null && reports[reports.length - 1]?.index === lastStream.lastChunk,
      unsealed: maxIndex + 1 - openTailStart,
      complete: incomplete.length === 0,
      recoveredChunks: recovered.length,
      recoveredLines: recovered.reduce((n, c) => {
        const u = c.recovery!.unsealedLines;
        return n + (u ? u.last - u.first + 1 : 0);
      }, 0),
    },
    errors,
    incomplete,
  };
}

function missingChunkMessage(i: number, open: boolean, end: boolean): string {
  if (open) return `chunk ${i} has an open marker but no data file`;
  if (end)
    return `chunk ${i} and its bundle are missing but its end-of-stream statement remains: the last chunk was deleted`;
  return `chunk ${i} and its bundle are missing (deleted?); indexes must run from 0 without gaps`;
}

/**
 * What is missing from each ended stream. A stream is complete when it was
 * stopped (reason `stop`), its last record is the final `collector_status`
 * (`final: true`), and its end-of-stream statement carries totals (an
 * `as_of_wall_ns` of null with no probes means the writer never received a
 * status: the stop did not finish). A stream that crashed, or ended with
 * another reason (`error`, `disk_full`), is incomplete: what was in flight
 * is neither recorded nor counted lost.
 */
function completeness(
  streams: StreamReport[],
  emptyEndTotals: Set<string>,
  reports: ChunkReport[],
  errors: string[],
  required: boolean,
): string[] {
  const out: string[] = [];
  for (const st of streams) {
    if (st.end === null) continue;
    const span = `stream ${st.streamId} (chunks ${st.firstChunk}..${st.lastChunk})`;
    let why: string | null = null;
    if (st.end === 'crash_recovery') {
      why = `${span} was cut short by a crash and sealed by recovery at the next start: it has no final collector_status, and records in flight at the crash are neither recorded nor counted lost`;
    } else if (st.end !== 'stop') {
      why = `${span} ended with reason ${st.end}: the collector did not stop cleanly, so records after its last chunk may be missing`;
    } else if (!st.finalStatus || emptyEndTotals.has(st.streamId)) {
      const missing: string[] = [];
      if (!st.finalStatus) missing.push('its last record is not a final collector_status (final: true)');
      if (emptyEndTotals.has(st.streamId))
        missing.push(
          'its end-of-stream statement carries no collector totals (as_of_wall_ns null, no probes)',
        );
      why = `${span} was stopped but ${missing.join(' and ')}: the stop did not finish, and its counts are incomplete`;
    }
    st.incomplete = why;
    if (why === null) continue;
    const file = reports[st.lastChunk]!.file;
    out.push(`${file}: ${why}`);
    if (required) checkAdder(reports[st.lastChunk]!, errors)('complete', false, why);
  }
  return out;
}

/** Every check of one sealed chunk; throws only for a signed statement with malformed content. */
function verifyChunk(
  dir: string,
  i: number,
  hasChunk: boolean,
  hasPartial: boolean,
  hasEnd: boolean,
  r: ChunkReport,
  add: AddCheck,
  trust: Trust,
  options: VerifyChainOptions,
  cur: Cursor,
): void {
  const file = r.file;
  if (!hasChunk) add('subject', false, `${file} is missing but its bundle exists (chunk deleted)`);
  const decoded = decodeBundle<ChunkPredicate>(dir, bundleName(i), trust, CHUNK_PREDICATE_TYPE, add);
  if (!decoded) {
    cur.prev = undefined;
    return;
  }
  const p = decoded.statement.predicate;
  r.streamId = p.stream_id;
  r.recovered = p.recovered === true;

  const data = hasChunk ? readChunk(dir, file, p, add) : undefined;
  if (data) checkSubject(file, data, decoded.statement, add);
  add(
    'index',
    p.chunk_index === i,
    p.chunk_index === i ? `index ${i}` : `statement says index ${p.chunk_index}, file is ${i}`,
  );
  const link = checkLink(i, p, cur.prev);
  add('link', link.ok, link.message);
  const times = checkTimes(i, p, cur.prev);
  add('times', times.ok, times.message);

  // Stream bookkeeping (before the records, which update the stream's final status).
  const streams = cur.streams;
  const last = streams[streams.length - 1];
  if (last && last.streamId === p.stream_id && last.lastChunk === i - 1) {
    if (last.end !== null) {
      add(
        'stream',
        false,
        `stream ${p.stream_id} continues after its end-of-stream statement at chunk ${i - 1}`,
      );
    }
    last.lastChunk = i;
  } else {
    if (cur.seenStreams.has(p.stream_id))
      add('stream', false, `stream ${p.stream_id} reappears after another stream`);
    cur.seenStreams.add(p.stream_id);
    streams.push({
      streamId: p.stream_id,
      firstChunk: i,
      lastChunk: i,
      end: null,
      finalStatus: false,
      incomplete: null,
    });
  }
  const stream = streams[streams.length - 1]!;

  if (data) {
    const s = decodeChunkRecords(data);
    cur.records += s.recordCount;
    r.records = s.recordCount;
    if (s.problems.length > 0) r.lineProblems = s.problems;
    const prevSeq =
      cur.lastSeq && cur.lastSeq.stream === p.stream_id && cur.lastSeq.seq !== null
        ? { chunk: cur.lastSeq.chunk, seq: cur.lastSeq.seq }
        : null;
    const probs = checkRecords(data, s, p, prevSeq);
    add('records', probs.length === 0, probs.length === 0 ? `${s.recordCount} records` : probs.join('; '));
    if (s.lastSeq !== null) cur.lastSeq = { stream: p.stream_id, chunk: i, seq: s.lastSeq };
    else if (cur.lastSeq?.stream !== p.stream_id) cur.lastSeq = { stream: p.stream_id, chunk: i, seq: null };
    if (s.recordCount > 0) stream.finalStatus = s.endsWithFinalStatus;
  }

  if (p.recovered) checkRecovery(dir, i, p, r, hasPartial, add);

  cur.tlogEntries += decoded.bundle.verificationMaterial.tlogEntries.length;
  checkTlog(decoded.bundle, trust, options, add);

  if (hasEnd) checkEndOfStream(dir, i, decoded, stream, trust, options, add, cur);

  cur.prev =
    hasChunk && decoded.statement.subject?.[0]
      ? {
          statementDigest: decoded.digest,
          chunkDigest: `sha256:${decoded.statement.subject[0].digest.sha256}`,
          predicate: p,
        }
      : undefined;
}

/** Read a chunk file, bounded by the signed byte count: a planted huge file is rejected by size, never loaded. */
function readChunk(dir: string, file: string, p: ChunkPredicate, add: AddCheck): Buffer | undefined {
  try {
    const size = fs.lstatSync(join(dir, file)).size;
    // A modestly changed file is still read, so the records check can say which line is wrong.
    if (size > Math.max(2 * Number(p.byte_count), 64 * 1024 * 1024)) {
      add(
        'subject',
        false,
        `${file} is ${size} bytes, the signed statement says ${p.byte_count} (content altered)`,
      );
      return undefined;
    }
    return readFileNoFollow(join(dir, file));
  } catch (err) {
    add('subject', false, `cannot read ${file}: ${(err as Error).message}`);
    return undefined;
  }
}

/** Subject check: the statement names this file and its sha256. */
function checkSubject(file: string, data: Buffer, statement: Statement<unknown>, add: AddCheck): void {
  const digest = createHash('sha256').update(data).digest('hex');
  const subj = statement.subject?.[0];
  if (!subj || subj.name !== file) {
    add(
      'subject',
      false,
      `statement names ${subj?.name ?? 'no file'}, not ${file} (chunks swapped or renamed?)`,
    );
  } else if (subj.digest?.sha256 !== digest) {
    add(
      'subject',
      false,
      `sha256 of ${file} is ${digest}, the signed statement says ${subj.digest?.sha256} (content altered)`,
    );
  } else {
    add('subject', true, `sha256 ${digest}`);
  }
}

/**
 * Partial and recovery checks of a chunk sealed by crash recovery: the kept
 * incomplete line must be the one the statement names, and the report says
 * which lines were unsealed until the restart (the recovery window).
 */
function checkRecovery(
  dir: string,
  i: number,
  p: ChunkPredicate,
  r: ChunkReport,
  hasPartial: boolean,
  add: AddCheck,
): void {
  const rec = p.recovery;
  if (rec && rec.partial_line_bytes > 0) {
    let ok = false;
    let msg = `${partialName(i)} is missing`;
    if (hasPartial && fs.lstatSync(join(dir, partialName(i))).size !== rec.partial_line_bytes) {
      msg = `${partialName(i)} does not have the ${rec.partial_line_bytes} bytes the signed recovery record names`;
    } else if (hasPartial) {
      const part = readFileNoFollow(join(dir, partialName(i)));
      const h = createHash('sha256').update(part).digest('hex');
      ok = h === rec.partial_line_sha256 && part.length === rec.partial_line_bytes;
      msg = ok
        ? `recovered after a crash; ${part.length}-byte incomplete last line kept in ${partialName(i)}`
        : `${partialName(i)} does not match the signed recovery record`;
    }
    add('partial', ok, msg);
  } else {
    add('partial', true, 'recovered after a crash; no incomplete line', true);
  }
  if (!rec) {
    add('recovery', false, 'the statement says recovered but carries no recovery record');
    return;
  }
  // Bundles sealed before unsealed_lines existed: every line of a recovered chunk was unsealed.
  const count = Number(p.record_count);
  const lines =
    rec.unsealed_lines !== undefined ? rec.unsealed_lines : count > 0 ? { first: 1, last: count } : null;
  const seq =
    rec.unsealed_seq !== undefined
      ? rec.unsealed_seq
      : p.first_seq !== null && p.last_seq !== null
        ? { first: p.first_seq, last: p.last_seq }
        : null;
  r.recovery = {
    crashedStreamId: rec.crashed_stream_id,
    recoveredByStreamId: rec.recovered_by_stream_id,
    recoveredWallNs: rec.recovered_wall_ns,
    unsealedLines: lines,
    unsealedSeq: seq,
  };
  const whole = count === 0 ? lines === null : lines !== null && lines.first === 1 && lines.last === count;
  add(
    'recovery',
    whole,
    whole
      ? lines
        ? `lines ${lines.first}-${lines.last}${seq ? ` (seq ${seq.first}-${seq.last})` : ''} were unsealed from the crash of stream ${rec.crashed_stream_id} until stream ${rec.recovered_by_stream_id} sealed them`
        : `no lines; sealed by stream ${rec.recovered_by_stream_id} after the crash of stream ${rec.crashed_stream_id}`
      : `unsealed_lines ${JSON.stringify(lines)} does not cover the chunk's ${count} lines`,
  );
}

/** End-of-stream check: the statement after chunk i ends this chunk's stream, at this chunk, with the right span. */
function checkEndOfStream(
  dir: string,
  i: number,
  decoded: Decoded<ChunkPredicate>,
  stream: StreamReport,
  trust: Trust,
  options: VerifyChainOptions,
  add: AddCheck,
  cur: Cursor,
): void {
  const end = decodeBundle<StreamEndPredicate>(
    dir,
    endBundleName(i),
    trust,
    STREAM_END_PREDICATE_TYPE,
    add,
    'end-of-stream',
  );
  if (!end) return;
  const e = end.statement.predicate;
  const p = decoded.statement.predicate;
  const file = chunkName(i);
  const probs: string[] = [];
  const subj = end.statement.subject?.[0];
  if (subj?.name !== file || subj.digest?.sha256 !== (decoded.statement.subject?.[0]?.digest?.sha256 ?? '')) {
    probs.push('its subject is not this chunk');
  }
  if (e.last_statement_digest !== decoded.digest)
    probs.push(`it ends at statement ${e.last_statement_digest}, not this chunk's`);
  if (e.stream_id !== p.stream_id)
    probs.push(`it ends stream ${e.stream_id}, this chunk is in ${p.stream_id}`);
  if (e.last_chunk_index !== i) probs.push(`it names chunk ${e.last_chunk_index}`);
  if (e.first_chunk_index !== stream.firstChunk || e.chunk_count !== i - stream.firstChunk + 1) {
    probs.push(
      `it says the stream spans ${e.first_chunk_index}..${e.last_chunk_index}, found ${stream.firstChunk}..${i}`,
    );
  }
  cur.tlogEntries += end.bundle.verificationMaterial.tlogEntries.length;
  checkTlog(end.bundle, trust, options, add, 'end-of-stream tlog');
  add(
    'end-of-stream',
    probs.length === 0,
    probs.length === 0 ? `stream ${e.stream_id} ended (${e.reason})` : probs.join('; '),
  );
  if (probs.length === 0) {
    stream.end = e.reason;
    const totals = e.collector_status;
    if (!totals || totals.as_of_wall_ns === null) cur.emptyEndTotals.add(stream.streamId);
  }
}

/** Bundle, key, signature and payload checks of one bundle file; the decoded statement when all hold. */
function decodeBundle<P>(
  dir: string,
  name: string,
  trust: Trust,
  predicateType: string,
  add: AddCheck,
  prefix = '',
): Decoded<P> | undefined {
  const c = (n: string) => (prefix ? `${prefix} ${n}` : n);
  let bundle: BundleJson;
  try {
    const size = fs.lstatSync(join(dir, name)).size;
    if (size > MAX_BUNDLE_BYTES) {
      throw new Error(
        `${name} is ${size} bytes, more than any bundle this package writes (${MAX_BUNDLE_BYTES})`,
      );
    }
    bundle = parseBundle(readFileNoFollow(join(dir, name)).toString('utf8'), name);
  } catch (err) {
    add(c('bundle'), false, (err as Error).message);
    return undefined;
  }
  add(c('bundle'), true, name);
  const env = bundle.dsseEnvelope;
  const payload = bundlePayload(bundle);
  const key = checkKey(bundle, trust);
  add(c('key'), key.ok, key.message);
  const sig = checkSignature(bundle, env.payloadType, payload, trust, key.key);
  add(c('signature'), sig.ok, sig.message);
  if (!key.ok || !sig.ok) return undefined;
  const st = checkStatement(env.payloadType, payload, predicateType);
  add(c('payload'), st.ok, st.message);
  if (!st.statement) return undefined;
  return {
    bundle,
    statement: st.statement as Statement<P>,
    digest: `sha256:${createHash('sha256').update(payload).digest('hex')}`,
  };
}

function checkTlog(
  bundle: BundleJson,
  trust: Trust,
  o: VerifyChainOptions,
  add: (name: string, ok: boolean, message: string, skipped?: boolean) => void,
  name = 'tlog',
): void {
  const n = bundle.verificationMaterial.tlogEntries.length;
  const nTs = bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0;
  if (n === 0 && nTs === 0) {
    if (o.requireTlog) add(name, false, 'no transparency-log entry, but the policy requires one');
    else add(name, true, 'no log entry (not required)', true);
    return;
  }
  if (!trust.material) {
    add(
      name,
      true,
      `${n} log entries / ${nTs} timestamps present but not verified: no trustedRoot configured`,
      true,
    );
    return;
  }
  try {
    new (sigstoreVerify().Verifier)(trust.material, {
      tlogThreshold: o.requireTlog ? 1 : 0,
      ctlogThreshold: bundle.verificationMaterial.certificate ? 1 : 0,
      timestampThreshold: 0,
    }).verify(sigstoreVerify().toSignedEntity(sigstoreBundle().bundleFromJSON(bundle)));
    add(name, true, `${n} log entries and ${nTs} timestamps verified (SET / inclusion proof / checkpoint)`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    add(name, false, `${code ? `${code}: ` : ''}${(err as Error).message}`);
  }
}

/** True when `dir` exists and is a directory (for the CLI's argument check). */
export function isEvidenceDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
