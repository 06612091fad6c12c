import { appendFileSync, existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyPair, META, record, tmp } from '../test/support/fixtures.js';
import { parseBundle, serializeBundle, signPayload } from './bundle.js';
import { bundleName, chunkName, endBundleName, openMarkerName, partialName } from './layout.js';
import { recoverDirectory } from './recovery.js';
import { ExternalKeySigner } from './signer.js';
import {
  type ChunkPredicate,
  encodeStatement,
  type Statement,
  type StreamEndPredicate,
} from './statement.js';
import { verifyChain } from './verify.js';
import { type EvidenceWriter, openChunkWriter } from './writer.js';

let t: ReturnType<typeof tmp>;
let key: ReturnType<typeof keyPair>;
let out: string;
beforeEach(() => {
  t = tmp();
  key = keyPair(t.path);
  out = join(t.path, 'ev');
});
afterEach(() => t.cleanup());

function statement<P = ChunkPredicate>(file: string): Statement<P> {
  const b = parseBundle(readFileSync(join(out, file), 'utf8'), file);
  return JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
}

/** Stop a writer the way SIGKILL would: no seal, no close (timers are unref'd, the fd just leaks). */
async function abandoned(n: number, seq0 = 0): Promise<EvidenceWriter> {
  const w = await openChunkWriter({ dir: out, signer: key.signer, meta: META });
  for (let i = 0; i < n; i++) {
    const r = record(seq0 + i);
    w.append(r.line, r.info);
  }
  return w;
}

const open = () => openChunkWriter({ dir: out, signer: key.signer, meta: META });

describe('recovery at open', () => {
  it('seals the unfinished chunk with every complete line, reports and keeps the partial last line', async () => {
    const dead = await abandoned(5);
    const partial = '{"mono_ns":"1","schema_version":1,"seq":"5","ty';
    appendFileSync(join(out, chunkName(0)), partial);
    const w = await open();
    const recovered = await new Promise<import('./recovery.js').RecoveryReport>((r) =>
      w.once('recovered', r),
    );
    expect(w.recovery).toEqual(recovered);
    expect(recovered.recovered).toEqual([
      {
        index: 0,
        file: chunkName(0),
        crashedStreamId: dead.streamId,
        records: 5,
        partialLineBytes: partial.length,
      },
    ]);
    expect(recovered.endMarkers).toEqual([0]);
    const st = statement(bundleName(0));
    expect(st.predicate.recovered).toBe(true);
    expect(st.predicate.stream_id).toBe(dead.streamId);
    expect(st.predicate.record_count).toBe('5');
    expect(st.predicate.recovery).toMatchObject({
      crashed_stream_id: dead.streamId,
      recovered_by_stream_id: w.streamId,
      partial_line_bytes: partial.length,
    });
    expect(readFileSync(join(out, partialName(0)), 'utf8')).toBe(partial);
    expect(readFileSync(join(out, chunkName(0)), 'utf8').endsWith('\n')).toBe(true);
    expect(existsSync(join(out, openMarkerName(0)))).toBe(false);
    const end = statement<StreamEndPredicate>(endBundleName(0));
    expect(end.predicate).toMatchObject({
      reason: 'crash_recovery',
      stream_id: dead.streamId,
      last_chunk_index: 0,
    });
    // The new stream continues the chain at index 1.
    const r = record(0);
    w.append(r.line, r.info);
    await w.close();
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.streams.map((s) => s.end)).toEqual(['crash_recovery', 'stop']);
    expect(report.chunks[0]!.checks.find((c) => c.name === 'partial')).toMatchObject({ ok: true });
  });

  it('a kept partial line that is altered afterwards fails verification', async () => {
    await abandoned(2);
    appendFileSync(join(out, chunkName(0)), '{"trunc');
    await (await open()).close();
    writeFileSync(join(out, partialName(0)), '{"other');
    const report = verifyChain(out, { keys: [key.publicKeyPem] });
    expect(report.errors.some((e) => e.startsWith(`${chunkName(0)}: partial`))).toBe(true);
  });

  it('is idempotent when the previous recovery was itself killed after cutting the partial line', async () => {
    await abandoned(3);
    const partial = '{"half":';
    appendFileSync(join(out, chunkName(0)), partial);
    // Simulate the first recovery dying right after saving and cutting the partial line.
    const data = readFileSync(join(out, chunkName(0)), 'utf8');
    writeFileSync(join(out, partialName(0)), partial);
    writeFileSync(join(out, chunkName(0)), data.slice(0, data.length - partial.length));
    const report = await recoverDirectory(out, key.signer, 'recoverer', META);
    expect(report.recovered[0]).toMatchObject({ index: 0, records: 3, partialLineBytes: partial.length });
    expect(statement(bundleName(0)).predicate.recovery?.partial_line_bytes).toBe(partial.length);
    expect(verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true }).errors).toEqual([]);
    // Running it again changes nothing.
    const before = readFileSync(join(out, bundleName(0)));
    const again = await recoverDirectory(out, key.signer, 'recoverer-2', META);
    expect(again).toEqual({ recovered: [], endMarkers: [], removedTemps: [] });
    expect(readFileSync(join(out, bundleName(0)))).toEqual(before);
  });

  it('seals an empty chunk whose writer died between its open marker and its data file', async () => {
    const w = await open();
    const r = record(0);
    w.append(r.line, r.info);
    await w.rotate(); // chunk 0 sealed, chunk 1 open and empty
    unlinkSync(join(out, chunkName(1)));
    const w2 = await open();
    await w2.close();
    const st = statement(bundleName(1));
    expect(st.predicate).toMatchObject({ recovered: true, record_count: '0', chunk_index: 1 });
    expect(verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true }).errors).toEqual([]);
  });

  it('writes a crash end-of-stream statement when the writer died right after a seal', async () => {
    const w = await open();
    const r = record(0);
    w.append(r.line, r.info);
    await w.rotate();
    // Died before chunk 1 got its data file and marker.
    unlinkSync(join(out, chunkName(1)));
    unlinkSync(join(out, openMarkerName(1)));
    const rep = await recoverDirectory(out, key.signer, 'next', META);
    expect(rep.recovered).toEqual([]);
    expect(rep.endMarkers).toEqual([0]);
    expect(verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true }).errors).toEqual([]);
  });

  it('removes temporary files of an interrupted atomic write', async () => {
    const w = await open();
    const r = record(0);
    w.append(r.line, r.info);
    await w.close();
    writeFileSync(join(out, `.${bundleName(1)}.tmp-1-abcd`), '{"half');
    const rep = await recoverDirectory(out, key.signer, 'x', META);
    expect(rep.removedTemps).toEqual([`.${bundleName(1)}.tmp-1-abcd`]);
  });

  it('refuses a chunk that is neither sealed nor marked open, naming it', async () => {
    const w = await open();
    const r = record(0);
    w.append(r.line, r.info);
    await w.close();
    writeFileSync(join(out, chunkName(1)), r.line);
    await expect(open()).rejects.toMatchObject({
      code: 'CHAIN_STATE_INVALID',
      message: expect.stringContaining(chunkName(1)),
    });
  });

  it('a signer that keeps failing mid-sign: close gives up with SIGNING_FAILED, the next start seals the chunk', async () => {
    let fail = true;
    const flaky = new ExternalKeySigner({
      publicKeyPem: key.publicKeyPem,
      sign: async (d) => {
        if (fail) throw new Error('KMS unavailable');
        return key.signer.sign(d);
      },
    });
    const w = await openChunkWriter({ dir: out, signer: flaky, meta: META });
    const errors: string[] = [];
    w.on('error', (e) => errors.push(e.message));
    for (let i = 0; i < 4; i++) {
      const r = record(i);
      w.append(r.line, r.info);
    }
    await expect(w.close({ sealTimeoutMs: 500 })).rejects.toMatchObject({
      code: 'SIGNING_FAILED',
      message: expect.stringContaining('KMS unavailable'),
    });
    expect(errors[0]).toMatch(/KMS unavailable/);
    expect(existsSync(join(out, bundleName(0)))).toBe(false);
    expect(existsSync(join(out, openMarkerName(0)))).toBe(true);
    fail = false;
    const w2 = await openChunkWriter({ dir: out, signer: flaky, meta: META });
    expect(w2.recovery.recovered.map((r) => [r.index, r.records])).toEqual([[0, 4]]);
    await w2.close();
    expect(verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true }).errors).toEqual([]);
  });

  it('standalone recovery refuses a directory a live writer (another process) holds', async () => {
    await abandoned(2);
    writeFileSync(join(out, '.lock'), `${process.ppid}\n`);
    await expect(recoverDirectory(out, key.signer, 'x', META)).rejects.toMatchObject({
      code: 'DIRECTORY_LOCKED',
    });
    expect(existsSync(join(out, bundleName(0)))).toBe(false);
  });

  it('never rewrites a sealed chunk', async () => {
    const w = await open();
    for (let i = 0; i < 3; i++) {
      const r = record(i);
      w.append(r.line, r.info);
    }
    await w.rotate();
    const sealedChunk = readFileSync(join(out, chunkName(0)));
    const sealedBundle = readFileSync(join(out, bundleName(0)));
    // Abandon with chunk 1 open, then recover twice.
    const r = record(3);
    w.append(r.line, r.info);
    await (await open()).close();
    await (await open()).close();
    expect(readFileSync(join(out, chunkName(0)))).toEqual(sealedChunk);
    expect(readFileSync(join(out, bundleName(0)))).toEqual(sealedBundle);
  });
});

describe('the recovery window: lines sealed by recovery are marked', () => {
  it('a line appended to the unsealed tail between the crash and the restart verifies, but is marked as unsealed', async () => {
    const w0 = await open();
    for (let i = 0; i < 3; i++) {
      const r = record(i);
      w0.append(r.line, r.info);
    }
    await w0.rotate(); // chunk 0 sealed by the writer
    for (let i = 3; i < 6; i++) {
      const r = record(i);
      w0.append(r.line, r.info);
    }
    // SIGKILL now: chunk 1 holds lines 1-3 (seq 3-5), unsealed. Someone with write
    // access to the directory appends a well-formed record before the restart.
    appendFileSync(join(out, chunkName(1)), record(6).line);
    const w = await open();
    await new Promise((r) => w.once('recovered', r));
    await w.close();

    expect(statement(bundleName(1)).predicate.recovery).toMatchObject({
      unsealed_lines: { first: 1, last: 4 },
      unsealed_seq: { first: '3', last: '6' },
    });
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]); // the window: the planted line verifies...
    // ...but a verifier can tell those lines apart from lines sealed while they were written.
    expect(report.chunks[0]!.recovery).toBeUndefined();
    expect(report.chunks[1]!.recovery).toMatchObject({
      crashedStreamId: w0.streamId,
      recoveredByStreamId: w.streamId,
      unsealedLines: { first: 1, last: 4 },
      unsealedSeq: { first: '3', last: '6' },
    });
    expect(report.chunks[1]!.checks.find((c) => c.name === 'recovery')?.message).toMatch(
      /lines 1-4 \(seq 3-6\) were unsealed from the crash of stream .* until stream .* sealed them/,
    );
    expect(report.summary).toMatchObject({ recoveredChunks: 1, recoveredLines: 4, complete: false });
    expect(report.incomplete[0]).toMatch(/^chunk-000001\.ndjson: stream .* was cut short by a crash/);
  });

  it('a recovery record whose line range does not cover the chunk fails the recovery check', async () => {
    await abandoned(3);
    await (await open()).close();
    const b = parseBundle(readFileSync(join(out, bundleName(0)), 'utf8'), bundleName(0));
    const st = JSON.parse(
      Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'),
    ) as Statement<ChunkPredicate>;
    st.predicate.recovery!.unsealed_lines = { first: 3, last: 3 };
    const enc = encodeStatement(
      st.subject[0].name,
      st.subject[0].digest.sha256,
      st.predicateType,
      st.predicate,
    );
    writeFileSync(join(out, bundleName(0)), serializeBundle(await signPayload(enc.payload, key.signer)));
    const report = verifyChain(out, { keys: [key.publicKeyPem] });
    expect(report.errors.join('\n')).toMatch(
      /chunk-000000\.ndjson: recovery: unsealed_lines .* does not cover the chunk's 3 lines/,
    );
  });
});
