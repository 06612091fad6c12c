import { createHash, type Hash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { EvidenceChainError, errnoCode, ioError } from './errors.js';
import {
  acquireDirLock,
  createNewFile,
  ensureEvidenceDir,
  fsyncDir,
  safeUnlink,
  writeAll,
  writeFileAtomic,
} from './fsx.js';
import { bundleName, chunkName, endBundleName, listDir, openMarkerName } from './layout.js';
import { normalizeProbes } from './records.js';
import { nowWallNs, type OpenMarker, type RecoveryReport, recoverLocked, sortedCounts } from './recovery.js';
import { type ChainHead, chainHeadAt, sealEndOfStream, sealToDisk } from './seal.js';
import type { Signer } from './signer.js';
import {
  CHUNK_PREDICATE_TYPE,
  type ChainMeta,
  type ChunkPredicate,
  type EncodedStatement,
  emptyTotals,
  encodeStatement,
  type StatusTotals,
} from './statement.js';
import { type WitnessOutage, WitnessSpool, type WitnessSpoolEvents } from './witness/spool.js';
import type { Witness } from './witness/types.js';

/**
 * When chunk data is forced to stable storage. Every policy fsyncs the chunk,
 * its bundle and the directory when a chunk is sealed; a process kill
 * (SIGKILL) never loses an appended line under any policy, because every
 * append is written to the file before `append` returns. The policy only
 * decides how much a power loss or kernel crash can take:
 *
 * - `always`: fsync after every append (nothing lost; slowest).
 * - `interval` (default, 1000 ms): fsync the open chunk at most every
 *   `intervalMs` (up to that much lost).
 * - `seal`: fsync only when sealing (up to one chunk lost).
 */
export type FsyncPolicy = { mode: 'always' } | { mode: 'interval'; intervalMs?: number } | { mode: 'seal' };

/** Options of `openChunkWriter`. */
export interface ChunkWriterOptions {
  /** Output directory (created 0750; a symlink is refused). */
  dir: string;
  /** Stream id of this run; a random UUID by default. Must not have been used in `dir` before. */
  streamId?: string;
  /** Rotation: spec defaults 100 MB and 1 h. A chunk also rotates on `rotate()` and `close()`. */
  rotation?: { maxSizeBytes?: number; maxAgeMs?: number };
  fsync?: FsyncPolicy;
  signer: Signer;
  /** Transparency logs / timestamp authorities; submissions go through a persistent spool. */
  witnesses?: Witness[];
  /** Where pending witness submissions are kept (default `<dir>/.spool`). */
  spoolDir?: string;
  /**
   * Bytes kept back in `<dir>/.reserve` (default 64 KiB, 0 = none) so that
   * a full disk can still take the pending bundles and the end-of-stream
   * statement: a seal that fails with ENOSPC releases the reserve; appends
   * resume only once every pending seal is on disk and the reserve is back.
   */
  reserveBytes?: number;
  meta: ChainMeta;
}

/** Why a stream ended, as its signed end-of-stream statement says. */
export type EndReason = 'stop' | 'error' | 'disk_full';

/** Options of {@link EvidenceWriter.close}. */
export interface CloseOptions {
  /** Longest wait for witness submissions, ms (default 5000); the rest stay in the spool. */
  witnessTimeoutMs?: number;
  /** Longest wait for pending seals, ms (default 30000); unsealed chunks are recovered at the next start. */
  sealTimeoutMs?: number;
  /**
   * Why the stream ends (default `stop`): `error` when the producer died of
   * an error, `disk_full` when records could not be written any more. Signed
   * into the end-of-stream statement so a verifier can tell a crash from a
   * clean stop.
   */
  reason?: EndReason;
}

/** File name of the disk-space reserve inside the evidence directory. */
export const RESERVE_FILE = '.reserve';

/** Metadata of the record `append` writes. */
export interface AppendInfo {
  /** The record's `type`. */
  type: string;
  /** The record's `wall_ns`. */
  wallNs: bigint;
  /** The record's `mono_ns`. */
  monoNs?: bigint;
  /** The record's `seq`, when the caller has it at hand (recorded as first/last seq of the chunk). */
  seq?: bigint;
}

/**
 * Lines for {@link EvidenceWriter.appendBatch}: canonical NDJSON lines back
 * to back in `data`, line `i` ending (exclusive, after its "\n") at `ends[i]`.
 */
export interface LineBatch {
  /** The lines, back to back. Not kept after appendBatch returns (the buffer can be reused). */
  data: Buffer;
  /** How many lines (the first `count` entries of `ends` and `types`). */
  count: number;
  /** End offset of each line in `data`, after its "\n". */
  ends: ArrayLike<number>;
  /** Each line's record `type`. */
  types: ArrayLike<string>;
  /** The info of line `i`; read for the first and last line of each chunk's part and for collector_status lines. */
  info(i: number): AppendInfo;
}

/** Collector totals for `updateStatus`: counters as bigint, number or decimal string. */
export interface StatusUpdate {
  probes: ReadonlyArray<{
    name: string;
    attached: boolean;
    attach_type: string;
    reason?: string;
    seen: bigint | number | string;
    filtered: bigint | number | string;
    deduplicated: bigint | number | string;
    emitted: bigint | number | string;
    lost: bigint | number | string;
    in_flight?: bigint | number | string;
  }>;
  wallNs?: bigint;
}

/** Emitted when a chunk (or end-of-stream statement) is sealed. */
export interface SealedChunk {
  index: number;
  file: string;
  bundleFile: string;
  /** `sha256:<hex>` of the chunk file. */
  chunkDigest: string;
  statementDigest: string;
  records: number;
  bytes: number;
  recovered: boolean;
  /** Milliseconds from rotation to bundle on disk. */
  sealMs: number;
}

/** Snapshot returned by `status()`. */
export interface WriterStatus {
  streamId: string;
  dir: string;
  currentChunk: { index: number; file: string; records: number; bytes: number; openedWallNs: string } | null;
  sealedChunks: number;
  pendingSeals: number;
  pendingSubmissions: number;
  /** Witnesses (Rekor, TSA) whose submissions are failing now: their entries wait in the spool. */
  witnessOutages: WitnessOutage[];
  paused: boolean;
  closed: boolean;
  lastError: string | null;
}

/** Events of an EvidenceWriter. */
export interface EvidenceWriterEvents {
  sealed: [SealedChunk];
  recovered: [RecoveryReport];
  'end-of-stream': [{ index: number; bundleFile: string }];
  paused: [EvidenceChainError];
  resumed: [];
  witnessed: [{ bundleFile: string; witness: string }];
  'witness-error': [{ bundleFile: string; witness: string; error: string; attempts: number }];
  /** A witness started failing: its submissions spool until it answers again (once per outage). */
  'witness-outage': WitnessSpoolEvents['witness-outage'];
  /** A witness answers again after an outage (once per outage). */
  'witness-recovered': WitnessSpoolEvents['witness-recovered'];
  error: [EvidenceChainError];
}

interface Current {
  index: number;
  name: string;
  fd: number;
  bytes: number;
  records: number;
  counts: Map<string, number>;
  firstWall: bigint | null;
  lastWall: bigint | null;
  firstMono: bigint | null;
  lastMono: bigint | null;
  firstSeq: bigint | null;
  lastSeq: bigint | null;
  hash: Hash;
  openedWall: bigint;
  openedMono: bigint;
  openedAtMs: number;
}

const MB = 1024 * 1024;
const DEFAULT_MAX_SIZE = 100 * MB;
const DEFAULT_MAX_AGE = 60 * 60 * 1000;
const DEFAULT_RESERVE = 64 * 1024;

/**
 * Writes canonical NDJSON lines into `chunk-N.ndjson`, rotates, and seals each
 * chunk with a DSSE-signed in-toto statement linked to the previous one.
 * Create with `openChunkWriter` (or `EvidenceWriter.open`).
 *
 * `append` is synchronous: the line is in the file when it returns. Sealing
 * (signing, bundle write) runs in the background, strictly in chunk order;
 * `rotate()` and `close()` return when their seals are on disk.
 */
export class EvidenceWriter extends EventEmitter<EvidenceWriterEvents> {
  readonly dir: string;
  readonly streamId: string;
  /** What recovery at open did (empty lists when the previous run stopped cleanly). */
  recovery: RecoveryReport = { recovered: [], endMarkers: [], removedTemps: [] };
  readonly #signer: Signer;
  readonly #meta: ChainMeta;
  readonly #maxSize: number;
  readonly #maxAge: number;
  readonly #fsync: FsyncPolicy;
  readonly #spool: WitnessSpool | undefined;
  readonly #releaseLock: () => void;
  #cur: Current | null = null;
  #head: ChainHead | { index: number; statementDigest: string; chunkDigest: string } | undefined;
  #nextIndex: number;
  #streamFirstIndex: number | undefined;
  #lastSealed: ChainHead | undefined;
  #sealQueue: Promise<void> = Promise.resolve();
  #pendingSeals = 0;
  /** Chunks of this stream handed to the seal queue. */
  #streamChunks = 0;
  #sealedCount = 0;
  #totals: StatusTotals = emptyTotals();
  #paused = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #lastError: string | null = null;
  #timers: NodeJS.Timeout[] = [];
  readonly #reserveBytes: number;
  /** The reserve file is not (fully) there: appends wait until it is. */
  #reserveMissing = true;
  /** A seal failed with DISK_FULL and has not succeeded since: appends wait for it. */
  #sealBlocked = false;
  /** Wakes a seal retry that sleeps in its back-off. */
  #wakeSeal: (() => void) | undefined;

  private constructor(
    o: ChunkWriterOptions,
    streamId: string,
    head: ChainHead | undefined,
    releaseLock: () => void,
    spool: WitnessSpool | undefined,
  ) {
    super();
    this.dir = o.dir;
    this.streamId = streamId;
    this.#signer = o.signer;
    this.#meta = o.meta;
    this.#maxSize = o.rotation?.maxSizeBytes ?? DEFAULT_MAX_SIZE;
    this.#maxAge = o.rotation?.maxAgeMs ?? DEFAULT_MAX_AGE;
    this.#fsync = o.fsync ?? { mode: 'interval', intervalMs: 1000 };
    this.#head = head;
    this.#nextIndex = head ? head.index + 1 : 0;
    this.#releaseLock = releaseLock;
    this.#spool = spool;
    this.#reserveBytes = o.reserveBytes ?? DEFAULT_RESERVE;
    if (this.#reserveBytes === 0) this.#reserveMissing = false;
  }

  /**
   * Open (or continue) the chain in `options.dir`: take the directory lock,
   * recover what a crashed run left (see `recoverDirectory`), open the first
   * chunk of a new stream. Throws INVALID_OPTION for bad options,
   * SYMLINK_REFUSED / NOT_A_DIRECTORY for a bad directory, DIRECTORY_LOCKED
   * when another live writer holds it, CHAIN_STATE_INVALID when the directory
   * cannot be continued.
   */
  static async open(options: ChunkWriterOptions): Promise<EvidenceWriter> {
    validateOptions(options);
    ensureEvidenceDir(options.dir);
    const release = acquireDirLock(options.dir);
    try {
      const streamId = options.streamId ?? randomUUID();
      const report = await recoverLocked(options.dir, options.signer, streamId, options.meta);
      const l = listDir(options.dir);
      const last = [...l.bundles].sort((a, b) => b - a)[0];
      const head = last === undefined ? undefined : chainHeadAt(options.dir, last);
      if (head && head.streamId === streamId) {
        throw new EvidenceChainError(
          'INVALID_OPTION',
          `openChunkWriter: stream id ${streamId} already wrote chunk ${head.index} in ${options.dir}; every run needs a new stream id (omit streamId to get one)`,
        );
      }
      const maxIndex = l.indexes[l.indexes.length - 1];
      const spool =
        options.witnesses && options.witnesses.length > 0
          ? await WitnessSpool.open({
              dir: options.dir,
              spoolDir: options.spoolDir ?? join(options.dir, '.spool'),
              witnesses: options.witnesses,
              ...(options.signer.publicKeyPem ? { publicKeyPem: options.signer.publicKeyPem } : {}),
            })
          : undefined;
      const w = new EvidenceWriter(options, streamId, head, release, spool);
      w.recovery = report;
      if (maxIndex !== undefined) w.#nextIndex = Math.max(w.#nextIndex, maxIndex + 1);
      if (spool) {
        spool.on('witnessed', (e) => w.emit('witnessed', e));
        spool.on('witness-error', (e) => w.emit('witness-error', e));
        spool.on('witness-outage', (e) => w.emit('witness-outage', e));
        spool.on('witness-recovered', (e) => w.emit('witness-recovered', e));
      }
      w.#ensureReserve();
      w.#openNextChunk();
      w.#startTimers();
      if (report.recovered.length > 0 || report.endMarkers.length > 0) {
        for (const r of report.recovered) spool?.enqueue(bundleName(r.index));
        for (const e of report.endMarkers) spool?.enqueue(endBundleName(e));
        // After the caller had a chance to subscribe; `recovery` holds it too.
        setImmediate(() => w.emit('recovered', report));
      }
      return w;
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * Append one canonical NDJSON line (must end with exactly one "\n", its only
   * newline). Synchronous: the bytes are in the chunk file on return. Rotates
   * first when the line would push the chunk over `maxSizeBytes`.
   * Throws INVALID_RECORD for a malformed line or info, WRITER_CLOSED after
   * close, DISK_FULL when the filesystem is full (nothing partial is left in
   * the chunk; the writer is paused and the next append retries).
   */
  append(line: string | Buffer, info: AppendInfo): void {
    this.#assertOpen();
    const buf = toLine(line, info);
    this.#assertRoom();
    const cur = this.#chunkFor(buf.length);
    this.#write(cur, buf);
    this.#account(cur, buf, info);
  }

  /**
   * Append several records with one write per chunk they land in (same
   * contract as `append`: every line is in its chunk file when this returns).
   * The whole batch is validated before anything is written (INVALID_RECORD
   * names the index). On DISK_FULL the error's `written` says how many
   * records of the batch are on disk (a prefix; retry the rest).
   */
  appendMany(records: ReadonlyArray<{ line: string | Buffer; info: AppendInfo }>): void {
    this.#assertOpen();
    const bufs = records.map((r, i) => {
      try {
        return toLine(r?.line, r?.info);
      } catch (err) {
        throw new EvidenceChainError('INVALID_RECORD', `appendMany: record ${i}: ${(err as Error).message}`);
      }
    });
    this.#assertRoom();
    let i = 0;
    while (i < bufs.length) {
      let cur: Current;
      try {
        cur = this.#chunkFor(bufs[i]!.length);
      } catch (err) {
        throw withWritten(err, i);
      }
      // The longest run that fits in this chunk (at least one record).
      let j = i + 1;
      let bytes = bufs[i]!.length;
      while (j < bufs.length && cur.bytes + bytes + bufs[j]!.length <= this.#maxSize) {
        bytes += bufs[j]!.length;
        j++;
      }
      const seg = j - i === 1 ? bufs[i]! : Buffer.concat(bufs.slice(i, j), bytes);
      try {
        this.#write(cur, seg);
      } catch (err) {
        throw withWritten(err, i);
      }
      for (let k = i; k < j; k++) this.#account(cur, bufs[k]!, records[k]!.info);
      i = j;
    }
  }

  /**
   * Append a batch of lines that are already back to back in one buffer: one
   * `write(2)` and one hash update per chunk the batch lands in, no copy and
   * no per-line object (what `stella signals start` uses). Every line is
   * checked (one JSON object on one line) before anything is written
   * (INVALID_RECORD names the index); `info(i)` is read only for the first
   * and last line of each chunk's part and for collector_status lines. Same
   * contract as `appendMany` otherwise: on DISK_FULL the error's `written`
   * says how many lines (a prefix) are on disk.
   */
  appendBatch(batch: LineBatch): void {
    this.#assertOpen();
    const { data, ends, types, count } = batch ?? ({} as LineBatch);
    if (!Buffer.isBuffer(data) || !Number.isInteger(count) || count < 0 || count > (ends?.length ?? -1)) {
      throw new EvidenceChainError(
        'INVALID_RECORD',
        'appendBatch: expected { data: Buffer, count, ends: offsets (count of them), types, info(i) }',
      );
    }
    for (let i = 0, start = 0; i < count; i++) {
      const end = ends[i]!;
      const type = types[i];
      if (
        !(end > start + 2 && end <= data.length) ||
        data[start] !== 0x7b ||
        data.indexOf(10, start) !== end - 1 ||
        typeof type !== 'string' ||
        type.length === 0
      ) {
        throw new EvidenceChainError(
          'INVALID_RECORD',
          `appendBatch: line ${i}: a record must be one JSON object on exactly one line ending in "\\n", with its type`,
        );
      }
      start = end;
    }
    this.#assertRoom();
    let i = 0;
    let start = 0;
    while (i < count) {
      let cur: Current;
      try {
        cur = this.#chunkFor(ends[i]! - start);
      } catch (err) {
        throw withWritten(err, i);
      }
      // The longest run that fits in this chunk (at least one line).
      let j = i + 1;
      while (j < count && cur.bytes + (ends[j]! - start) <= this.#maxSize) j++;
      const end = ends[j - 1]!;
      const first = batch.info(i);
      const last = j - 1 === i ? first : batch.info(j - 1);
      if (typeof first?.wallNs !== 'bigint' || typeof last?.wallNs !== 'bigint') {
        throw withWritten(
          new EvidenceChainError(
            'INVALID_RECORD',
            `appendBatch: info(${i}) and info(${j - 1}) need wallNs: bigint`,
          ),
          i,
        );
      }
      const seg = data.subarray(start, end);
      try {
        this.#write(cur, seg);
      } catch (err) {
        throw withWritten(err, i);
      }
      cur.hash.update(seg);
      cur.bytes += seg.length;
      cur.records += j - i;
      // Types come in runs (one ring batch is mostly one probe): count runs.
      for (let k = i; k < j; ) {
        const t = types[k]!;
        let n = 1;
        while (k + n < j && types[k + n] === t) n++;
        cur.counts.set(t, (cur.counts.get(t) ?? 0) + n);
        if (t === 'collector_status') {
          for (let m = k; m < k + n; m++) {
            this.#statusFromLine(data.subarray(m === 0 ? 0 : ends[m - 1]!, ends[m]!), batch.info(m).wallNs);
          }
        }
        k += n;
      }
      if (cur.firstWall === null) {
        cur.firstWall = first.wallNs;
        cur.firstMono = first.monoNs ?? null;
      }
      cur.lastWall = last.wallNs;
      cur.lastMono = last.monoNs ?? null;
      if (first.seq !== undefined && cur.firstSeq === null) cur.firstSeq = first.seq;
      if (last.seq !== undefined) cur.lastSeq = last.seq;
      i = j;
      start = end;
    }
  }

  /**
   * After a full disk, seal before appending again: while a seal is failing
   * with ENOSPC, or the space reserve could not be taken back yet, appends
   * fail with DISK_FULL (the writer stays paused) and the seal is retried
   * at once. New chunks can never starve a pending seal.
   */
  #assertRoom(): void {
    if (this.#sealBlocked) {
      this.#wakeSeal?.();
      throw this.#diskFull(
        `waiting for the pending seal of chunk ${this.#head?.index ?? '?'} before appending again`,
      );
    }
    if (this.#reserveMissing && !this.#ensureReserve()) {
      throw this.#diskFull(`cannot take back the ${this.#reserveBytes}-byte space reserve`);
    }
  }

  #diskFull(what: string): EvidenceChainError {
    const e = new EvidenceChainError('DISK_FULL', `${this.dir}: the filesystem is full: ${what}`, {
      path: this.dir,
    });
    this.#pause(e);
    return e;
  }

  /** (Re)create the space reserve; false while the disk has no room for it. */
  #ensureReserve(): boolean {
    if (!this.#reserveMissing) return true;
    const path = join(this.dir, RESERVE_FILE);
    try {
      const fd = fs.openSync(
        path,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
        0o600,
      );
      try {
        let size = fs.fstatSync(fd).size;
        const zeros = Buffer.alloc(Math.min(64 * 1024, this.#reserveBytes));
        while (size < this.#reserveBytes) {
          size += fs.writeSync(fd, zeros, 0, Math.min(zeros.length, this.#reserveBytes - size), size);
        }
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      this.#reserveMissing = false;
      return true;
    } catch (err) {
      if (errnoCode(err) !== 'ENOSPC' && errnoCode(err) !== 'EDQUOT') {
        this.#lastError = ioError('cannot create the space reserve', path, err).message;
      }
      return false;
    }
  }

  /** Give the reserve back to the filesystem (a seal or the end statement needs the room). */
  #releaseReserve(): boolean {
    if (this.#reserveBytes === 0 || this.#reserveMissing) return false;
    this.#reserveMissing = true;
    try {
      fs.unlinkSync(join(this.dir, RESERVE_FILE));
      return true;
    } catch {
      return false;
    }
  }

  #assertOpen(): void {
    if (this.#closed || this.#closing) {
      throw new EvidenceChainError('WRITER_CLOSED', `append after close on stream ${this.streamId}`);
    }
  }

  #write(cur: Current, buf: Buffer): void {
    try {
      writeAll(cur.fd, buf);
      if (this.#fsync.mode === 'always') fs.fsyncSync(cur.fd);
    } catch (err) {
      throw this.#writeFailed(cur, err);
    }
    if (this.#paused) {
      this.#paused = false;
      this.emit('resumed');
    }
  }

  #account(cur: Current, buf: Buffer, info: AppendInfo): void {
    cur.hash.update(buf);
    cur.bytes += buf.length;
    cur.records++;
    cur.counts.set(info.type, (cur.counts.get(info.type) ?? 0) + 1);
    if (cur.firstWall === null) {
      cur.firstWall = info.wallNs;
      cur.firstMono = info.monoNs ?? null;
    }
    cur.lastWall = info.wallNs;
    cur.lastMono = info.monoNs ?? null;
    if (info.seq !== undefined) {
      if (cur.firstSeq === null) cur.firstSeq = info.seq;
      cur.lastSeq = info.seq;
    }
    if (info.type === 'collector_status') this.#statusFromLine(buf, info.wallNs);
  }

  /** Replace the collector_status totals recorded in the next sealed predicate. */
  updateStatus(totals: StatusUpdate): void {
    if (!totals || !Array.isArray(totals.probes)) {
      throw new EvidenceChainError('INVALID_OPTION', 'updateStatus: expected { probes: [...] }');
    }
    this.#totals = {
      probes: normalizeProbes(totals.probes),
      as_of_wall_ns: (totals.wallNs ?? nowWallNs()).toString(),
    };
  }

  /**
   * Seal the current chunk now and start the next one. Resolves when the
   * seal is on disk. A chunk with no records is not rotated.
   */
  async rotate(): Promise<void> {
    if (this.#closed || this.#closing) throw new EvidenceChainError('WRITER_CLOSED', 'rotate after close');
    if (this.#cur && this.#cur.records > 0) this.#switchChunk(false);
    await this.#sealQueue;
  }

  /**
   * Seal the last chunk and the signed end-of-stream statement, wait for
   * witness submissions up to `witnessTimeoutMs` (default 5000; the rest stay
   * in the spool for the next run), release the directory. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#doClose(
      options.witnessTimeoutMs ?? 5000,
      options.sealTimeoutMs ?? 30_000,
      options.reason ?? 'stop',
    );
    return this.#closing;
  }

  async #doClose(witnessTimeoutMs: number, sealTimeoutMs: number, reason: EndReason): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    try {
      const cur = this.#cur;
      if (cur && (cur.records > 0 || this.#streamChunks === 0)) {
        this.#switchChunk(true);
      } else if (cur) {
        // An empty chunk after at least one sealed chunk of this stream: discard it.
        fs.closeSync(cur.fd);
        safeUnlink(join(this.dir, cur.name));
        safeUnlink(join(this.dir, openMarkerName(cur.index)));
        fsyncDir(this.dir);
        this.#cur = null;
      }
      this.#wakeSeal?.();
      if (!(await settlesWithin(this.#sealQueue, sealTimeoutMs))) {
        // The signer (KMS, Fulcio) or the disk keeps failing: give up here and
        // leave the chunks with their open markers; the next start seals them
        // as recovered, so nothing written is lost.
        this.#closed = true; // the seal retry gives up at its next attempt
        this.#wakeSeal?.();
        throw new EvidenceChainError(
          this.#sealBlocked ? 'DISK_FULL' : 'SIGNING_FAILED',
          `close: ${this.#pendingSeals} chunk(s) of stream ${this.streamId} could not be sealed within ${sealTimeoutMs} ms (${this.#lastError ?? 'no error recorded'}); they stay in ${this.dir} and are sealed as recovered at the next start`,
        );
      }
      const head = this.#lastSealed;
      if (head && this.#streamFirstIndex !== undefined) {
        const end = () =>
          sealEndOfStream(
            this.dir,
            {
              head,
              firstChunkIndex: this.#streamFirstIndex!,
              reason,
              endedWallNs: nowWallNs(),
              totals: this.#totals,
              meta: this.#meta,
            },
            this.#signer,
          );
        try {
          await end();
        } catch (err) {
          // The disk is full: the reserve is there for this statement.
          if (!(isDiskFull(err) && this.#releaseReserve())) throw err;
          await end();
        }
        this.emit('end-of-stream', { index: head.index, bundleFile: endBundleName(head.index) });
        this.#spool?.enqueue(endBundleName(head.index));
      }
      if (this.#spool) await this.#spool.close(witnessTimeoutMs);
    } finally {
      this.#closed = true;
      this.#releaseLock();
    }
  }

  /** Current state, for `stella signals status`. */
  status(): WriterStatus {
    const c = this.#cur;
    return {
      streamId: this.streamId,
      dir: this.dir,
      currentChunk: c
        ? {
            index: c.index,
            file: c.name,
            records: c.records,
            bytes: c.bytes,
            openedWallNs: c.openedWall.toString(),
          }
        : null,
      sealedChunks: this.#sealedCount,
      pendingSeals: this.#pendingSeals,
      pendingSubmissions: this.#spool?.pendingCount() ?? 0,
      witnessOutages: this.#spool?.outages() ?? [],
      paused: this.#paused,
      closed: this.#closed,
      lastError: this.#lastError,
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * The chunk the next `bytes` go to: the open one, or (when they would push
   * a non-empty chunk over `maxSizeBytes`) a new one after sealing it.
   */
  #chunkFor(bytes: number): Current {
    const cur = this.#cur;
    if (cur && cur.records > 0 && cur.bytes + bytes > this.#maxSize) this.#switchChunk(false);
    return this.#cur ?? this.#openNextChunk();
  }

  #openNextChunk(): Current {
    const index = this.#nextIndex;
    const name = chunkName(index);
    const openedWall = nowWallNs();
    const openedMono = process.hrtime.bigint();
    const marker: OpenMarker = {
      stream_id: this.streamId,
      chunk_index: index,
      opened_wall_ns: openedWall.toString(),
      opened_mono_ns: openedMono.toString(),
      meta: this.#meta,
    };
    let fd: number;
    try {
      writeFileAtomic(this.dir, openMarkerName(index), JSON.stringify(marker));
      fd = createNewFile(join(this.dir, name));
    } catch (err) {
      const e =
        err instanceof EvidenceChainError ? err : ioError('cannot open chunk', join(this.dir, name), err);
      if (e.code === 'DISK_FULL') this.#pause(e);
      throw e;
    }
    this.#nextIndex = index + 1;
    this.#streamFirstIndex ??= index;
    this.#cur = {
      index,
      name,
      fd,
      bytes: 0,
      records: 0,
      counts: new Map(),
      firstWall: null,
      lastWall: null,
      firstMono: null,
      lastMono: null,
      firstSeq: null,
      lastSeq: null,
      hash: createHash('sha256'),
      openedWall,
      openedMono,
      openedAtMs: Date.now(),
    };
    return this.#cur;
  }

  #writeFailed(cur: Current, err: unknown): EvidenceChainError {
    // Never leave a torn line: cut the file back to the last complete record.
    try {
      fs.ftruncateSync(cur.fd, cur.bytes);
    } catch {
      // if even that fails, recovery cuts the partial line and reports it
    }
    const e = ioError('cannot append to', join(this.dir, cur.name), err);
    if (e.code === 'DISK_FULL' || errnoCode(err) === 'ENOSPC') this.#pause(e);
    else this.#lastError = e.message;
    return e;
  }

  #pause(e: EvidenceChainError): void {
    this.#lastError = e.message;
    if (!this.#paused) {
      this.#paused = true;
      this.emit('paused', e);
    }
  }

  /** Freeze the current chunk, compute its statement (the next link needs its digest), queue the seal. */
  #switchChunk(final: boolean): void {
    const cur = this.#cur;
    if (!cur) return;
    this.#cur = null;
    const closedWall = nowWallNs();
    const closedMono = process.hrtime.bigint();
    const chunkHex = cur.hash.digest('hex');
    const predicate: ChunkPredicate = {
      stream_id: this.streamId,
      chunk_index: cur.index,
      previous_statement_digest: this.#head?.statementDigest ?? null,
      previous_chunk_digest: this.#head?.chunkDigest ?? null,
      opened_wall_ns: cur.openedWall.toString(),
      opened_mono_ns: cur.openedMono.toString(),
      closed_wall_ns: laterOf(closedWall, cur.openedWall).toString(),
      closed_mono_ns: closedMono.toString(),
      first_record_wall_ns: cur.firstWall?.toString() ?? null,
      last_record_wall_ns: cur.lastWall?.toString() ?? null,
      first_record_mono_ns: cur.firstMono?.toString() ?? null,
      last_record_mono_ns: cur.lastMono?.toString() ?? null,
      first_seq: cur.firstSeq?.toString() ?? null,
      last_seq: cur.lastSeq?.toString() ?? null,
      record_count: String(cur.records),
      byte_count: String(cur.bytes),
      record_counts: sortedCounts(cur.counts),
      collector_status: this.#totals,
      host_id: this.#meta.hostId,
      kernel_release: this.#meta.kernelRelease,
      btf_id: this.#meta.btfId,
      collector_version: this.#meta.collectorVersion,
      filter_config_digest: this.#meta.filterConfigDigest,
      recovered: false,
      recovery: null,
    };
    const encoded = encodeStatement(cur.name, chunkHex, CHUNK_PREDICATE_TYPE, predicate);
    const head: ChainHead = {
      index: cur.index,
      streamId: this.streamId,
      statementDigest: encoded.digest,
      chunkDigest: `sha256:${chunkHex}`,
      predicate,
    };
    this.#head = head;
    this.#pendingSeals++;
    this.#streamChunks++;
    const started = Date.now();
    // The queue must survive anything (a throwing 'sealed' listener included),
    // or every later chunk would stay unsealed.
    this.#sealQueue = this.#sealQueue
      .then(() => this.#sealWithRetry(cur, encoded, head, started))
      .catch((err: unknown) => {
        this.#lastError = `after sealing ${cur.name}: ${err instanceof Error ? err.message : String(err)}`;
      });
    if (!final) {
      try {
        this.#openNextChunk();
      } catch {
        // DISK_FULL already reported (paused); the next append retries opening.
      }
    }
  }

  async #sealWithRetry(
    cur: Current,
    encoded: EncodedStatement<ChunkPredicate>,
    head: ChainHead,
    started: number,
  ) {
    let delay = 200;
    for (;;) {
      if (this.#closed) {
        // close() gave up on this seal and released the directory: the next
        // start seals the chunk as recovered; never write its bundle now.
        try {
          fs.closeSync(cur.fd);
        } catch {
          // already closed
        }
        return;
      }
      try {
        await fsyncFd(cur.fd);
        await sealToDisk(this.dir, bundleName(cur.index), encoded, this.#signer);
        break;
      } catch (err) {
        const e =
          err instanceof EvidenceChainError ? err : ioError('cannot seal', join(this.dir, cur.name), err);
        this.#lastError = `sealing ${cur.name} failed, retrying: ${e.message}`;
        if (e.code === 'DISK_FULL') {
          this.#sealBlocked = true;
          this.#pause(e);
          // The reserve is kept for exactly this: retry at once with its room.
          if (this.#releaseReserve()) continue;
        }
        if (this.listenerCount('error') > 0) this.emit('error', e);
        if (this.#closed) {
          try {
            fs.closeSync(cur.fd);
          } catch {
            // already closed
          }
          return;
        }
        // Back off, but an append (space may be back) or close() wakes the retry.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.#wakeSeal = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.#wakeSeal = undefined;
        delay = this.#sealBlocked ? Math.min(delay * 2, 1000) : Math.min(delay * 2, 30_000);
      }
    }
    this.#sealBlocked = false;
    try {
      fs.closeSync(cur.fd);
    } catch {
      // already closed
    }
    try {
      // The bundle is on disk: the chunk is sealed. A stale marker only costs
      // the next start a no-op, so a failure here must not stop later seals.
      safeUnlink(join(this.dir, openMarkerName(cur.index)));
      fsyncDir(this.dir);
    } catch (err) {
      const e =
        err instanceof EvidenceChainError ? err : ioError('cannot clean up after sealing', this.dir, err);
      this.#lastError = e.message;
      if (this.listenerCount('error') > 0) this.emit('error', e);
    }
    this.#pendingSeals--;
    this.#sealedCount++;
    this.#lastSealed = head;
    this.#spool?.enqueue(bundleName(cur.index));
    this.emit('sealed', {
      index: cur.index,
      file: cur.name,
      bundleFile: bundleName(cur.index),
      chunkDigest: head.chunkDigest,
      statementDigest: head.statementDigest,
      records: cur.records,
      bytes: cur.bytes,
      recovered: false,
      sealMs: Date.now() - started,
    });
  }

  #statusFromLine(buf: Buffer, wallNs: bigint): void {
    try {
      const rec = JSON.parse(buf.toString('utf8')) as { probes?: unknown };
      if (Array.isArray(rec.probes)) {
        this.#totals = { probes: normalizeProbes(rec.probes), as_of_wall_ns: wallNs.toString() };
      }
    } catch {
      // a malformed status line is the producer's defect; verify-chain reports it
    }
  }

  #startTimers(): void {
    const ageTick = Math.max(10, Math.min(1000, this.#maxAge));
    const t = setInterval(() => {
      const c = this.#cur;
      if (c && c.records > 0 && Date.now() - c.openedAtMs >= this.#maxAge && !this.#closing) {
        this.#switchChunk(false);
      }
    }, ageTick);
    t.unref();
    this.#timers.push(t);
    if (this.#fsync.mode === 'interval') {
      const f = setInterval(() => {
        const c = this.#cur;
        if (c) fs.fsync(c.fd, () => {});
      }, this.#fsync.intervalMs ?? 1000);
      f.unref();
      this.#timers.push(f);
    }
  }
}

/** Validate one record line and its info; returns the line's bytes. */
function toLine(line: string | Buffer | undefined, info: AppendInfo | undefined): Buffer {
  if (typeof line !== 'string' && !Buffer.isBuffer(line)) {
    throw new EvidenceChainError('INVALID_RECORD', 'append: line must be a string or Buffer');
  }
  const buf = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  if (buf.length < 3 || buf[0] !== 0x7b || buf[buf.length - 1] !== 10 || buf.indexOf(10) !== buf.length - 1) {
    throw new EvidenceChainError(
      'INVALID_RECORD',
      'append: a record must be one JSON object on exactly one line ending in "\\n" (encode it with @stellaops/ndjson encodeRecord)',
    );
  }
  if (typeof info?.type !== 'string' || info.type.length === 0 || typeof info.wallNs !== 'bigint') {
    throw new EvidenceChainError('INVALID_RECORD', 'append: info needs { type: string, wallNs: bigint }');
  }
  return buf;
}

/** Attach how many records of a batch reached the disk to an append error. */
function withWritten(err: unknown, written: number): unknown {
  if (err instanceof EvidenceChainError) {
    return new EvidenceChainError(
      err.code,
      `${err.message} (${written} records of this batch were written)`,
      {
        cause: err.cause,
        ...(err.path === undefined ? {} : { path: err.path }),
        written,
      },
    );
  }
  return err;
}

/** Open a chunk writer: see `EvidenceWriter.open`. */
export function openChunkWriter(options: ChunkWriterOptions): Promise<EvidenceWriter> {
  return EvidenceWriter.open(options);
}

/** True when `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** The later of two bigint instants (Math.max does not take bigint). */
function laterOf(a: bigint, b: bigint): bigint {
  if (a < b) return b;
  return a;
}

function isDiskFull(err: unknown): boolean {
  return (
    (err instanceof EvidenceChainError && err.code === 'DISK_FULL') ||
    errnoCode(err) === 'ENOSPC' ||
    errnoCode(err) === 'EDQUOT'
  );
}

function validateOptions(o: ChunkWriterOptions): void {
  const bad = (msg: string) => new EvidenceChainError('INVALID_OPTION', `openChunkWriter: ${msg}`);
  if (!o || typeof o !== 'object') throw bad('options object required');
  if (typeof o.dir !== 'string' || o.dir.length === 0) throw bad('dir must be a non-empty path');
  if (o.streamId !== undefined && !/^[A-Za-z0-9._:-]{1,128}$/.test(o.streamId)) {
    throw bad('streamId must be 1-128 characters of [A-Za-z0-9._:-]');
  }
  const r = o.rotation ?? {};
  if (r.maxSizeBytes !== undefined && !(Number.isSafeInteger(r.maxSizeBytes) && r.maxSizeBytes >= 1)) {
    throw bad(`rotation.maxSizeBytes must be a positive integer (got ${String(r.maxSizeBytes)})`);
  }
  if (r.maxAgeMs !== undefined && !(Number.isFinite(r.maxAgeMs) && r.maxAgeMs >= 1)) {
    throw bad(`rotation.maxAgeMs must be a positive number of milliseconds (got ${String(r.maxAgeMs)})`);
  }
  const f = o.fsync;
  if (f !== undefined) {
    if (!['always', 'interval', 'seal'].includes((f as { mode: string }).mode)) {
      throw bad(
        `fsync.mode must be 'always', 'interval' or 'seal' (got ${String((f as { mode: string }).mode)})`,
      );
    }
    if (f.mode === 'interval' && f.intervalMs !== undefined && !(f.intervalMs >= 1)) {
      throw bad('fsync.intervalMs must be >= 1');
    }
  }
  if (!o.signer || typeof o.signer.sign !== 'function' || typeof o.signer.keyHint !== 'string') {
    throw bad('signer must implement Signer { sign(data), keyHint } (e.g. LocalKeySigner.fromPemFile(path))');
  }
  const m = o.meta as unknown as Record<string, unknown> | undefined;
  for (const k of ['hostId', 'kernelRelease', 'btfId', 'collectorVersion', 'filterConfigDigest']) {
    if (typeof m?.[k] !== 'string') throw bad(`meta.${k} must be a string`);
  }
  if (o.witnesses !== undefined && !Array.isArray(o.witnesses)) throw bad('witnesses must be an array');
  if (
    o.reserveBytes !== undefined &&
    !(Number.isSafeInteger(o.reserveBytes) && o.reserveBytes >= 0 && o.reserveBytes <= 1024 * MB)
  ) {
    throw bad(`reserveBytes must be an integer from 0 to 1 GiB (got ${String(o.reserveBytes)})`);
  }
}
