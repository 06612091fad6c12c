import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { type TrustMaterial, toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { type BundleJson, bundlePayload, pae, parseBundle } from './bundle.js';
import { EvidenceChainError } from './errors.js';
import { readFileNoFollow } from './fsx.js';
import { bundleName, chunkName, endBundleName, listDir, partialName } from './layout.js';
import { scanChunk } from './records.js';
import { keyHintFromPublicKey } from './signer.js';
import {
  CHUNK_PREDICATE_TYPE,
  type ChunkPredicate,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  STREAM_END_PREDICATE_TYPE,
  type Statement,
  type StreamEndPredicate,
} from './statement.js';

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
}

/** One check of one chunk. */
export interface CheckResult {
  name: string;
  ok: boolean;
  message: string;
  /** True when the check did not apply (ok stays true). */
  skipped?: boolean;
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
}

/** A run of chunks written by one collector stream. */
export interface StreamReport {
  streamId: string;
  firstChunk: number;
  lastChunk: number;
  end: 'stop' | 'crash_recovery' | null;
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
  };
  /** One line per failure, each naming the chunk file and the check. */
  errors: string[];
}

interface Trust {
  keys: { key: KeyObject; hint: string }[];
  material: TrustMaterial | undefined;
}

function loadTrust(o: VerifyChainOptions): Trust {
  if (!o || !Array.isArray(o.keys)) {
    throw new EvidenceChainError('INVALID_OPTION', 'verifyChain: keys must be an array of PEM public keys');
  }
  const keys = o.keys.map((pem, i) => {
    try {
      const key = createPublicKey(pem);
      return { key, hint: keyHintFromPublicKey(key) };
    } catch (err) {
      throw new EvidenceChainError('INVALID_OPTION', `verifyChain: keys[${i}] is not a PEM public key`, {
        cause: err,
      });
    }
  });
  let material: TrustMaterial | undefined;
  if (o.trustedRoot !== undefined) {
    let root: TrustedRoot;
    try {
      root = TrustedRoot.fromJSON(JSON.parse(readFileNoFollow(o.trustedRoot).toString('utf8')));
    } catch (err) {
      throw new EvidenceChainError(
        'INVALID_OPTION',
        `verifyChain: trusted root ${o.trustedRoot} is not a readable trusted_root.json (${(err as Error).message})`,
        { path: o.trustedRoot, cause: err },
      );
    }
    material = toTrustMaterial(root, (hint: string) => {
      const k = keys.find((x) => x.hint === hint);
      if (!k) throw new Error(`no pinned key with hint ${hint}`);
      return { publicKey: k.key, validFor: () => true };
    });
  }
  if (o.requireTlog && !material) {
    throw new EvidenceChainError(
      'INVALID_OPTION',
      'verifyChain: requireTlog needs trustedRoot (the log keys that make an entry verifiable offline)',
    );
  }
  if (keys.length === 0 && !material) {
    throw new EvidenceChainError(
      'INVALID_OPTION',
      'verifyChain: no trust configured: give keys and/or trustedRoot',
    );
  }
  return { keys, material };
}

/** Bundles hold one statement and a few log entries: a few KiB. Anything this big is not ours. */
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

interface Decoded<P> {
  bundle: BundleJson;
  statement: Statement<P>;
  digest: string;
}

/**
 * Verify an evidence directory offline. Never throws for evidence problems:
 * every problem is a failed check in the report, naming the chunk file and
 * the check. Throws INVALID_OPTION for bad options (no keys, unreadable
 * trusted root) and IO_ERROR when the directory cannot be listed.
 *
 * Checks per chunk: bundle, signature (pinned keys / trusted root), payload
 * (DSSE type, statement type, predicate type), subject (name and sha256 of
 * the file), index (continuity from 0), link (previous statement and chunk
 * digests), times (monotonic within and across streams), records (counts,
 * seq continuity, first/last times against the content), tlog (SET,
 * inclusion proof, checkpoint, when present or required), partial (the kept
 * incomplete line of a recovered chunk), end-of-stream.
 */
export function verifyChain(dir: string, options: VerifyChainOptions): ChainReport {
  const trust = loadTrust(options);
  const l = listDir(dir);
  const reports: ChunkReport[] = [];
  const errors: string[] = [];
  const streams: StreamReport[] = [];
  let records = 0;
  let tlogEntries = 0;
  const maxIndex = l.indexes.length > 0 ? l.indexes[l.indexes.length - 1]! : -1;
  let prev: { statementDigest: string; chunkDigest: string; predicate: ChunkPredicate } | undefined;
  let prevSeq: { stream: string; last: bigint | null } | undefined;
  const seenStreams = new Set<string>();
  let openTailStart = maxIndex + 1;
  while (openTailStart > 0 && l.open.has(openTailStart - 1) && !l.bundles.has(openTailStart - 1))
    openTailStart--;

  for (let i = 0; i <= maxIndex; i++) {
    const file = chunkName(i);
    const r: ChunkReport = { index: i, file, ok: true, checks: [] };
    reports.push(r);
    const add = (name: string, ok: boolean, message: string, skipped = false) => {
      r.checks.push(skipped ? { name, ok, message, skipped } : { name, ok, message });
      if (!ok) {
        r.ok = false;
        errors.push(`${file}: ${name}: ${message}`);
      }
    };
    try {
      const hasChunk = l.chunks.has(i);
      const hasBundle = l.bundles.has(i);
      if (!hasChunk && !hasBundle && !(l.open.has(i) && i >= openTailStart)) {
        if (l.open.has(i)) {
          add('present', false, `chunk ${i} has an open marker but no data file`);
        } else if (l.ends.has(i)) {
          add(
            'present',
            false,
            `chunk ${i} and its bundle are missing but its end-of-stream statement remains: the last chunk was deleted`,
          );
        } else {
          add(
            'present',
            false,
            `chunk ${i} and its bundle are missing (deleted?); indexes must run from 0 without gaps`,
          );
        }
        prev = undefined;
        continue;
      }
      if (!hasBundle) {
        // Seals run in the background, so a running (or killed) writer can leave
        // several unsealed chunks at the tail; each still has its open marker.
        const isTail = i >= openTailStart;
        if (isTail) {
          const closedRequired = options.requireEnd !== undefined && options.requireEnd !== false;
          add(
            'sealed',
            !closedRequired,
            closedRequired
              ? `chunk ${i} is not sealed (the collector is running or crashed; its next start seals it) and requireEnd is set`
              : `chunk ${i} is not sealed yet (collector running, or crashed and not yet restarted); its lines are not verified yet`,
          );
        } else {
          add('bundle', false, `${bundleName(i)} is missing: chunk ${i} is not sealed`);
        }
        prev = undefined;
        continue;
      }
      if (!hasChunk) add('subject', false, `${file} is missing but its bundle exists (chunk deleted)`);

      // Bundle, signature, payload.
      const decoded = decodeBundle<ChunkPredicate>(dir, bundleName(i), trust, CHUNK_PREDICATE_TYPE, add);
      if (!decoded) {
        prev = undefined;
        continue;
      }
      const p = decoded.statement.predicate;
      r.streamId = p.stream_id;
      r.recovered = p.recovered === true;

      // Subject.
      let data: Buffer | undefined;
      if (hasChunk) {
        try {
          // The signed byte count bounds what is read: a planted huge file is
          // rejected by size, never loaded.
          const size = fs.lstatSync(join(dir, file)).size;
          // A modestly changed file is still read, so the records check can say which line is wrong.
          if (size > Math.max(2 * Number(p.byte_count), 64 * 1024 * 1024)) {
            add(
              'subject',
              false,
              `${file} is ${size} bytes, the signed statement says ${p.byte_count} (content altered)`,
            );
          } else {
            data = readFileNoFollow(join(dir, file));
          }
        } catch (err) {
          add('subject', false, `cannot read ${file}: ${(err as Error).message}`);
        }
      }
      if (data) {
        const digest = createHash('sha256').update(data).digest('hex');
        const subj = decoded.statement.subject?.[0];
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

      // Index and links.
      add(
        'index',
        p.chunk_index === i,
        p.chunk_index === i ? `index ${i}` : `statement says index ${p.chunk_index}, file is ${i}`,
      );
      if (i === 0) {
        const ok = p.previous_statement_digest === null && p.previous_chunk_digest === null;
        add('link', ok, ok ? 'first chunk' : 'chunk 0 claims a predecessor: earlier chunks were removed');
      } else if (!prev) {
        add('link', false, `cannot check the link: chunk ${i - 1} is missing or invalid`);
      } else {
        const okS = p.previous_statement_digest === prev.statementDigest;
        const okC = p.previous_chunk_digest === prev.chunkDigest;
        add(
          'link',
          okS && okC,
          okS && okC
            ? `follows chunk ${i - 1}`
            : `${!okS ? `previous_statement_digest ${p.previous_statement_digest} is not chunk ${i - 1}'s statement ${prev.statementDigest}` : ''}${!okS && !okC ? '; ' : ''}${!okC ? `previous_chunk_digest ${p.previous_chunk_digest} is not chunk ${i - 1}'s digest ${prev.chunkDigest}` : ''}`,
        );
      }

      // Times.
      const timeProblems: string[] = [];
      const opened = BigInt(p.opened_wall_ns);
      const closed = BigInt(p.closed_wall_ns);
      if (closed < opened) timeProblems.push('closed before it was opened (wall clock)');
      if (p.closed_mono_ns !== null && BigInt(p.closed_mono_ns) < BigInt(p.opened_mono_ns)) {
        timeProblems.push('closed before it was opened (monotonic clock)');
      }
      if (prev) {
        const pp = prev.predicate;
        if (pp.stream_id === p.stream_id) {
          if (pp.closed_mono_ns !== null && BigInt(p.opened_mono_ns) < BigInt(pp.closed_mono_ns)) {
            timeProblems.push(
              `opened (mono ${p.opened_mono_ns}) before chunk ${i - 1} closed (mono ${pp.closed_mono_ns})`,
            );
          }
        } else if (opened < BigInt(pp.closed_wall_ns)) {
          timeProblems.push(
            `new stream opened (wall ${p.opened_wall_ns}) before chunk ${i - 1} closed (wall ${pp.closed_wall_ns})`,
          );
        }
      }
      add(
        'times',
        timeProblems.length === 0,
        timeProblems.length === 0 ? 'monotonic' : timeProblems.join('; '),
      );

      // Records.
      if (data) {
        const s = scanChunk(data);
        records += s.recordCount;
        r.records = s.recordCount;
        const probs: string[] = [];
        if (s.partial.length > 0) probs.push(`${s.partial.length} bytes after the last newline`);
        for (const x of s.problems.slice(0, 5)) probs.push(`line ${x.line}: ${x.message}`);
        if (s.problems.length > 5) probs.push(`and ${s.problems.length - 5} more line problems`);
        const counts: Record<string, string> = {};
        for (const k of [...s.recordCounts.keys()].sort()) counts[k] = String(s.recordCounts.get(k));
        if (String(s.recordCount) !== p.record_count)
          probs.push(`${s.recordCount} records, statement says ${p.record_count}`);
        if (String(data.length) !== p.byte_count)
          probs.push(`${data.length} bytes, statement says ${p.byte_count}`);
        if (JSON.stringify(counts) !== JSON.stringify(p.record_counts)) {
          probs.push(
            `per-type counts ${JSON.stringify(counts)} differ from the statement's ${JSON.stringify(p.record_counts)}`,
          );
        }
        for (const [k, v] of [
          ['first_record_wall_ns', s.firstWall],
          ['last_record_wall_ns', s.lastWall],
        ] as const) {
          if (p[k] !== v) probs.push(`${k} ${p[k]} but the records say ${v}`);
        }
        if (p.first_seq !== null && p.first_seq !== s.firstSeq)
          probs.push(`first_seq ${p.first_seq} but records start at ${s.firstSeq}`);
        if (p.last_seq !== null && p.last_seq !== s.lastSeq)
          probs.push(`last_seq ${p.last_seq} but records end at ${s.lastSeq}`);
        if (prevSeq && prevSeq.stream === p.stream_id && prevSeq.last !== null && s.firstSeq !== null) {
          if (BigInt(s.firstSeq) !== prevSeq.last + 1n) {
            probs.push(`first seq ${s.firstSeq} does not follow chunk ${i - 1}'s last seq ${prevSeq.last}`);
          }
        }
        add(
          'records',
          probs.length === 0,
          probs.length === 0 ? `${s.recordCount} records` : probs.join('; '),
        );
        if (prevSeq?.stream !== p.stream_id || s.lastSeq !== null) {
          prevSeq = {
            stream: p.stream_id,
            last:
              s.lastSeq !== null ? BigInt(s.lastSeq) : prevSeq?.stream === p.stream_id ? prevSeq.last : null,
          };
        }
      }

      // Recovery: the kept incomplete line must be the one the statement names.
      if (p.recovered && p.recovery && p.recovery.partial_line_bytes > 0) {
        let ok = false;
        let msg = `${partialName(i)} is missing`;
        if (
          l.partials.has(i) &&
          fs.lstatSync(join(dir, partialName(i))).size !== p.recovery.partial_line_bytes
        ) {
          msg = `${partialName(i)} does not have the ${p.recovery.partial_line_bytes} bytes the signed recovery record names`;
        } else if (l.partials.has(i)) {
          const part = readFileNoFollow(join(dir, partialName(i)));
          const h = createHash('sha256').update(part).digest('hex');
          ok = h === p.recovery.partial_line_sha256 && part.length === p.recovery.partial_line_bytes;
          msg = ok
            ? `recovered after a crash; ${part.length}-byte incomplete last line kept in ${partialName(i)}`
            : `${partialName(i)} does not match the signed recovery record`;
        }
        add('partial', ok, msg);
      } else if (p.recovered) {
        add('partial', true, 'recovered after a crash; no incomplete line', true);
      }

      // Transparency log.
      tlogEntries += decoded.bundle.verificationMaterial.tlogEntries.length;
      checkTlog(decoded.bundle, trust, options, add);

      // Stream bookkeeping.
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
        if (seenStreams.has(p.stream_id))
          add('stream', false, `stream ${p.stream_id} reappears after another stream`);
        seenStreams.add(p.stream_id);
        streams.push({ streamId: p.stream_id, firstChunk: i, lastChunk: i, end: null });
      }

      // End of stream.
      if (l.ends.has(i)) {
        const end = decodeBundle<StreamEndPredicate>(
          dir,
          endBundleName(i),
          trust,
          STREAM_END_PREDICATE_TYPE,
          add,
          'end-of-stream',
        );
        if (end) {
          const e = end.statement.predicate;
          const probs: string[] = [];
          const subj = end.statement.subject?.[0];
          if (
            subj?.name !== file ||
            subj.digest?.sha256 !== (decoded.statement.subject?.[0]?.digest?.sha256 ?? '')
          ) {
            probs.push('its subject is not this chunk');
          }
          if (e.last_statement_digest !== decoded.digest)
            probs.push(`it ends at statement ${e.last_statement_digest}, not this chunk's`);
          if (e.stream_id !== p.stream_id)
            probs.push(`it ends stream ${e.stream_id}, this chunk is in ${p.stream_id}`);
          if (e.last_chunk_index !== i) probs.push(`it names chunk ${e.last_chunk_index}`);
          const cur = streams[streams.length - 1]!;
          if (e.first_chunk_index !== cur.firstChunk || e.chunk_count !== i - cur.firstChunk + 1) {
            probs.push(
              `it says the stream spans ${e.first_chunk_index}..${e.last_chunk_index}, found ${cur.firstChunk}..${i}`,
            );
          }
          tlogEntries += end.bundle.verificationMaterial.tlogEntries.length;
          checkTlog(end.bundle, trust, options, add, 'end-of-stream tlog');
          add(
            'end-of-stream',
            probs.length === 0,
            probs.length === 0 ? `stream ${e.stream_id} ended (${e.reason})` : probs.join('; '),
          );
          if (probs.length === 0) cur.end = e.reason;
        }
      }

      prev =
        hasChunk && decoded.statement.subject?.[0]
          ? {
              statementDigest: decoded.digest,
              chunkDigest: `sha256:${decoded.statement.subject[0].digest.sha256}`,
              predicate: p,
            }
          : undefined;
    } catch (err) {
      // Only reachable with a validly signed but malformed statement: report, never throw.
      add('predicate', false, `malformed statement content (${(err as Error).message})`);
      prev = undefined;
    }
  }

  // Streams: every stream but the last must have ended; the last too when required.
  for (let s = 0; s < streams.length; s++) {
    const st = streams[s]!;
    const isLast = s === streams.length - 1;
    if (st.end !== null) continue;
    if (isLast && (options.requireEnd === undefined || options.requireEnd === false)) continue;
    const r = reports[st.lastChunk]!;
    const msg = isLast
      ? `the chain ends at chunk ${st.lastChunk} without an end-of-stream statement (later chunks deleted, or the collector is still running)`
      : `stream ${st.streamId} stops at chunk ${st.lastChunk} without an end-of-stream statement`;
    r.checks.push({ name: 'end-of-stream', ok: false, message: msg });
    r.ok = false;
    errors.push(`${r.file}: end-of-stream: ${msg}`);
  }
  if (options.requireEnd && typeof options.requireEnd === 'object') {
    const want = options.requireEnd.expectedChunks;
    if (maxIndex + 1 !== want) errors.push(`chain: expected ${want} chunks, found ${maxIndex + 1}`);
  }
  if (maxIndex < 0 && options.requireEnd) errors.push(`chain: ${dir} holds no chunks`);
  for (const o of l.other) {
    if (!/^chunk-/.test(o)) continue;
    errors.push(`${o}: layout: unexpected file name in the evidence directory`);
  }
  const failed = reports.filter((r) => !r.ok).length;
  const lastStream = streams[streams.length - 1];
  return {
    ok: errors.length === 0,
    dir,
    chunks: reports,
    streams,
    summary: {
      chunks: reports.length,
      failedChunks: failed,
      records,
      streams: streams.length,
      tlogEntries,
      closed: lastStream?.end != null && reports[reports.length - 1]?.index === lastStream.lastChunk,
      unsealed: maxIndex + 1 - openTailStart,
    },
    errors,
  };
}

function decodeBundle<P>(
  dir: string,
  name: string,
  trust: Trust,
  predicateType: string,
  add: (name: string, ok: boolean, message: string) => void,
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
  const sigOk = checkSignature(bundle, env.payloadType, payload, trust);
  add(c('signature'), sigOk.ok, sigOk.message);
  if (!sigOk.ok) return undefined;
  let statement: Statement<P>;
  try {
    statement = JSON.parse(payload.toString('utf8')) as Statement<P>;
  } catch {
    add(c('payload'), false, 'signed payload is not JSON');
    return undefined;
  }
  const problems: string[] = [];
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) problems.push(`payloadType ${env.payloadType}`);
  if (statement._type !== IN_TOTO_STATEMENT_TYPE) problems.push(`_type ${String(statement._type)}`);
  if (statement.predicateType !== predicateType)
    problems.push(`predicateType ${String(statement.predicateType)}, expected ${predicateType}`);
  if (!Array.isArray(statement.subject) || statement.subject.length !== 1)
    problems.push('expected exactly one subject');
  if (typeof statement.predicate !== 'object' || statement.predicate === null) problems.push('no predicate');
  add(c('payload'), problems.length === 0, problems.length === 0 ? predicateType : problems.join('; '));
  if (problems.length > 0) return undefined;
  return { bundle, statement, digest: `sha256:${createHash('sha256').update(payload).digest('hex')}` };
}

function checkSignature(
  bundle: BundleJson,
  payloadType: string,
  payload: Buffer,
  trust: Trust,
): { ok: boolean; message: string } {
  const sigs = bundle.dsseEnvelope.signatures;
  if (sigs.length !== 1) return { ok: false, message: `expected one DSSE signature, found ${sigs.length}` };
  const sig = Buffer.from(sigs[0]!.sig, 'base64');
  const data = pae(payloadType, payload);
  const vm = bundle.verificationMaterial;
  if (vm.certificate) {
    if (!trust.material)
      return { ok: false, message: 'keyless (certificate) bundle, but no trustedRoot configured' };
    try {
      new Verifier(trust.material, { tlogThreshold: 0, ctlogThreshold: 1, timestampThreshold: 1 }).verify(
        toSignedEntity(bundleFromJSON(bundle)),
      );
      return { ok: true, message: 'certificate chains to the trusted root and the signature verifies' };
    } catch (err) {
      return { ok: false, message: `keyless signature rejected: ${(err as Error).message}` };
    }
  }
  const hint = vm.publicKey?.hint;
  const ordered = [...trust.keys].sort((a, b) => Number(b.hint === hint) - Number(a.hint === hint));
  for (const k of ordered) {
    try {
      if (cryptoVerify('sha256', data, { key: k.key, dsaEncoding: 'der' }, sig)) {
        return { ok: true, message: `signed by pinned key ${k.hint}` };
      }
    } catch {
      // wrong key type: try the next
    }
  }
  return {
    ok: false,
    message: `DSSE signature does not verify with any pinned key (bundle names key ${hint ?? 'none'}): re-signed, edited, or signed by an untrusted key`,
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
    new Verifier(trust.material, {
      tlogThreshold: o.requireTlog ? 1 : 0,
      ctlogThreshold: bundle.verificationMaterial.certificate ? 1 : 0,
      timestampThreshold: 0,
    }).verify(toSignedEntity(bundleFromJSON(bundle)));
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
