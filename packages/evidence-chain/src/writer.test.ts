import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyPair, META, record, tmp } from '../test/support/fixtures.js';
import { parseBundle } from './bundle.js';
import { EvidenceChainError } from './errors.js';
import { bundleName, chunkName, endBundleName } from './layout.js';
import { CHUNK_PREDICATE_TYPE, type ChunkPredicate, type Statement } from './statement.js';
import { verifyChain } from './verify.js';
import { type EvidenceWriter, openChunkWriter, type SealedChunk } from './writer.js';

let t: ReturnType<typeof tmp>;
let key: ReturnType<typeof keyPair>;
let out: string;
beforeEach(() => {
  t = tmp();
  key = keyPair(t.path);
  out = join(t.path, 'evidence');
});
afterEach(() => t.cleanup());

function open(extra: Partial<Parameters<typeof openChunkWriter>[0]> = {}): Promise<EvidenceWriter> {
  return openChunkWriter({ dir: out, signer: key.signer, meta: META, ...extra });
}

function statementOf(index: number): Statement<ChunkPredicate> {
  const b = parseBundle(readFileSync(join(out, bundleName(index)), 'utf8'), 'x');
  return JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
}

describe('EvidenceWriter', () => {
  it('writes lines into chunk-0, seals it with a linked statement and an end-of-stream statement', async () => {
    const w = await open();
    const sealed: SealedChunk[] = [];
    w.on('sealed', (s) => sealed.push(s));
    const lines: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = record(i, i % 2 ? 'process_exec' : 'file_open');
      w.append(r.line, r.info);
      lines.push(r.line);
    }
    expect(w.status().currentChunk).toMatchObject({ index: 0, records: 10 });
    await w.close();
    expect(readFileSync(join(out, chunkName(0)), 'utf8')).toBe(lines.join(''));
    expect(sealed).toHaveLength(1);
    const st = statementOf(0);
    expect(st.predicateType).toBe(CHUNK_PREDICATE_TYPE);
    expect(st.subject[0].name).toBe('chunk-000000.ndjson');
    expect(st.predicate).toMatchObject({
      stream_id: w.streamId,
      chunk_index: 0,
      previous_statement_digest: null,
      record_count: '10',
      record_counts: { file_open: '5', process_exec: '5' },
      first_seq: '0',
      last_seq: '9',
      host_id: META.hostId,
      kernel_release: META.kernelRelease,
      btf_id: META.btfId,
      collector_version: META.collectorVersion,
      filter_config_digest: META.filterConfigDigest,
      recovered: false,
    });
    expect(existsSync(join(out, endBundleName(0)))).toBe(true);
    // A real Sigstore bundle v0.3 with an empty DSSE keyid and the key hint.
    const b = JSON.parse(readFileSync(join(out, bundleName(0)), 'utf8'));
    expect(b.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(b.dsseEnvelope.signatures[0].keyid).toBe('');
    expect(b.verificationMaterial.publicKey.hint).toBe(key.signer.keyHint);
    expect(() => bundleFromJSON(b)).not.toThrow();
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.summary).toMatchObject({ chunks: 1, records: 10, streams: 1, closed: true, unsealed: 0 });
  });

  it('creates the directory 0750 and chunk files 0640', async () => {
    const w = await open();
    const r = record(0);
    w.append(r.line, r.info);
    await w.close();
    expect(statSync(out).mode & 0o777).toBe(0o750);
    for (const f of readdirSync(out).filter((n) => n.startsWith('chunk-'))) {
      expect(statSync(join(out, f)).mode & 0o777, f).toBe(0o640);
    }
  });

  it('rotates by size, links every chunk to the previous one, and verifies', async () => {
    const w = await open({ rotation: { maxSizeBytes: 2000 } });
    for (let i = 0; i < 100; i++) {
      const r = record(i);
      w.append(r.line, r.info);
    }
    await w.close();
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.chunks.length).toBeGreaterThan(5);
    for (const c of report.chunks) {
      expect(statSync(join(out, c.file)).size).toBeLessThanOrEqual(2000);
    }
    const s1 = statementOf(1);
    const s0b = readFileSync(join(out, bundleName(0)), 'utf8');
    const { createHash } = await import('node:crypto');
    const payload0 = Buffer.from(JSON.parse(s0b).dsseEnvelope.payload, 'base64');
    expect(s1.predicate.previous_statement_digest).toBe(
      `sha256:${createHash('sha256').update(payload0).digest('hex')}`,
    );
    expect(s1.predicate.previous_chunk_digest).toBe(`sha256:${statementOf(0).subject[0].digest.sha256}`);
  });

  it('a throwing "sealed" listener does not stop later seals', async () => {
    const w = await open({ rotation: { maxSizeBytes: 1000 } });
    w.on('sealed', () => {
      throw new Error('listener bug');
    });
    for (let i = 0; i < 30; i++) {
      const r = record(i);
      w.append(r.line, r.info);
    }
    await w.close();
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.chunks.length).toBeGreaterThan(3);
  });

  it('rotates by age', async () => {
    const w = await open({ rotation: { maxAgeMs: 50 } });
    const r0 = record(0);
    w.append(r0.line, r0.info);
    const running = verifyChain(out, { keys: [key.publicKeyPem] });
    expect(running.ok).toBe(true);
    expect(running.summary).toMatchObject({ unsealed: 1, closed: false });
    expect(verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true }).errors).toEqual([
      `${chunkName(0)}: sealed: chunk 0 is not sealed (the collector is running or crashed; its next start seals it) and requireEnd is set`,
    ]);
    await new Promise<void>((res) => w.once('sealed', () => res()));
    const r1 = record(1);
    w.append(r1.line, r1.info);
    expect(w.status().currentChunk?.index).toBe(1);
    await w.close();
    expect(verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true }).ok).toBe(true);
  });

  it('continues the chain across runs with a new stream id and never reuses an index', async () => {
    const w1 = await open();
    const a = record(0);
    w1.append(a.line, a.info);
    await w1.close();
    const w2 = await open();
    expect(w2.streamId).not.toBe(w1.streamId);
    const b = record(0);
    w2.append(b.line, b.info);
    await w2.close();
    expect(statementOf(1).predicate.stream_id).toBe(w2.streamId);
    await expect(open({ streamId: w2.streamId })).rejects.toThrow(/already wrote chunk 1/);
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.streams.map((s) => [s.firstChunk, s.lastChunk, s.end])).toEqual([
      [0, 0, 'stop'],
      [1, 1, 'stop'],
    ]);
  });

  it('records collector_status totals from status lines and updateStatus', async () => {
    const w = await open();
    w.updateStatus({
      probes: [
        {
          name: 'sys_enter_openat',
          attached: true,
          attach_type: 'tracepoint',
          seen: 5n,
          filtered: 1,
          deduplicated: '0',
          emitted: 4n,
          lost: 0n,
        },
        {
          name: 'inet_sock_set_state',
          attached: false,
          attach_type: 'tp_btf',
          reason: 'EPERM',
          seen: 0,
          filtered: 0,
          deduplicated: 0,
          emitted: 0,
          lost: 0,
        },
      ],
    });
    const r = record(0);
    w.append(r.line, r.info);
    await w.rotate();
    expect(statementOf(0).predicate.collector_status.probes.map((p) => p.name)).toEqual([
      'inet_sock_set_state',
      'sys_enter_openat',
    ]);
    expect(statementOf(0).predicate.collector_status.probes[1]).toMatchObject({
      seen: '5',
      filtered: '1',
      emitted: '4',
    });
    const s = record(1, 'collector_status', {
      probes: [
        {
          name: 'p',
          attached: true,
          attach_type: 'raw_tp',
          seen: '9',
          filtered: '0',
          deduplicated: '0',
          emitted: '9',
          lost: '2',
        },
      ],
      window_start_wall_ns: '1',
      window_end_wall_ns: '2',
    });
    w.append(s.line, s.info);
    await w.close();
    expect(statementOf(1).predicate.collector_status.probes).toEqual([
      {
        name: 'p',
        attached: true,
        attach_type: 'raw_tp',
        seen: '9',
        filtered: '0',
        deduplicated: '0',
        emitted: '9',
        lost: '2',
      },
    ]);
  });

  it('appendMany writes a batch in order, split across rotations, one write per chunk', async () => {
    const w = await open({ rotation: { maxSizeBytes: 2000 } });
    const batch = Array.from({ length: 100 }, (_, i) => record(i));
    w.appendMany(batch);
    await w.close();
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.summary.records).toBe(100);
    expect(report.chunks.length).toBeGreaterThan(5);
    const all = report.chunks.map((c) => readFileSync(join(out, c.file), 'utf8')).join('');
    expect(all).toBe(batch.map((b) => b.line).join(''));
    for (const c of report.chunks) expect(statSync(join(out, c.file)).size).toBeLessThanOrEqual(2000);
  });

  it('appendMany validates the whole batch first and names the bad record', async () => {
    const w = await open();
    const batch = Array.from({ length: 10 }, (_, i) => record(i));
    batch[5] = { line: 'not json\n', info: batch[5]!.info };
    const err = (() => {
      try {
        w.appendMany(batch);
      } catch (e) {
        return e as EvidenceChainError;
      }
      return undefined;
    })();
    expect(err?.code).toBe('INVALID_RECORD');
    expect(err?.message).toMatch(/record 5/);
    expect(w.status().currentChunk?.records).toBe(0);
    await w.close();
  });

  it('appendBatch writes lines back to back in one buffer: same chunks, seals and counts as append', async () => {
    const batch = Array.from({ length: 100 }, (_, i) => record(i, i % 3 ? 'file_open' : 'process_exec'));
    const data = Buffer.from(batch.map((b) => b.line).join(''));
    const ends: number[] = [];
    let at = 0;
    for (const b of batch) {
      at += Buffer.byteLength(b.line);
      ends.push(at);
    }
    const w = await open({ rotation: { maxSizeBytes: 2000 } });
    w.appendBatch({
      data,
      count: batch.length,
      ends,
      types: batch.map((b) => b.info.type),
      info: (i) => batch[i]!.info,
    });
    await w.close();
    const report = verifyChain(out, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.summary.records).toBe(100);
    expect(report.chunks.length).toBeGreaterThan(5);
    const all = report.chunks.map((c) => readFileSync(join(out, c.file), 'utf8')).join('');
    expect(all).toBe(data.toString());
    // Each chunk's statement carries its own first/last seq and type counts.
    let seq = 0;
    for (let c = 0; c < report.chunks.length; c++) {
      const lines = readFileSync(join(out, chunkName(c)), 'utf8')
        .trimEnd()
        .split('\n');
      const p = statementOf(c).predicate;
      expect(p.first_seq).toBe(String(seq));
      expect(p.last_seq).toBe(String(seq + lines.length - 1));
      expect(p.record_count).toBe(String(lines.length));
      seq += lines.length;
    }
  });

  it('appendBatch checks every line first and names the bad one', async () => {
    const w = await open();
    const lines = [record(0).line, '{"a":1}\n{"b":2}\n', record(2).line];
    const data = Buffer.from(lines.join(''));
    const ends = [lines[0]!.length, lines[0]!.length + lines[1]!.length, data.length];
    expect(() =>
      w.appendBatch({
        data,
        count: 3,
        ends,
        types: ['file_open', 'file_open', 'file_open'],
        info: () => record(0).info,
      }),
    ).toThrow(/appendBatch: line 1: /);
    expect(w.status().currentChunk?.records ?? 0).toBe(0);
    await w.close();
  });

  it('rejects malformed lines and info with INVALID_RECORD, and appends after close with WRITER_CLOSED', async () => {
    const w = await open();
    const r = record(0);
    expect(code(() => w.append('{"a":1}', r.info))).toBe('INVALID_RECORD');
    expect(code(() => w.append('{"a":1}\n{"b":2}\n', r.info))).toBe('INVALID_RECORD');
    expect(code(() => w.append('[1,2]\n', r.info))).toBe('INVALID_RECORD');
    expect(code(() => w.append('\n', r.info))).toBe('INVALID_RECORD');
    expect(code(() => w.append(r.line, { type: '', wallNs: 1n }))).toBe('INVALID_RECORD');
    expect(code(() => w.append(r.line, { type: 'x', wallNs: 1 as unknown as bigint }))).toBe(
      'INVALID_RECORD',
    );
    w.append(r.line, r.info);
    await w.close();
    await w.close();
    expect(code(() => w.append(r.line, r.info))).toBe('WRITER_CLOSED');
  });

  it('validates options with precise messages', async () => {
    await expect(open({ rotation: { maxSizeBytes: 0 } })).rejects.toThrow(
      /maxSizeBytes must be a positive integer/,
    );
    await expect(open({ fsync: { mode: 'sometimes' as 'seal' } })).rejects.toThrow(/fsync.mode/);
    await expect(open({ meta: { ...META, hostId: 1 as unknown as string } })).rejects.toThrow(/meta.hostId/);
    await expect(open({ signer: {} as never })).rejects.toThrow(/signer must implement Signer/);
    await expect(open({ streamId: 'bad id/..' })).rejects.toThrow(/streamId/);
  });

  it('refuses a symlinked output directory and a symlinked chunk path', async () => {
    const real = join(t.path, 'real');
    mkdirSync(real);
    symlinkSync(real, out);
    await expect(open()).rejects.toMatchObject({ code: 'SYMLINK_REFUSED' });
    const out2 = join(t.path, 'ev2');
    mkdirSync(out2);
    symlinkSync(join(t.path, 'target.ndjson'), join(out2, chunkName(0)));
    const err = await openChunkWriter({ dir: out2, signer: key.signer, meta: META }).catch((e) => e);
    expect(err).toBeInstanceOf(EvidenceChainError);
    expect(['SYMLINK_REFUSED', 'CHAIN_STATE_INVALID']).toContain(err.code);
    expect(existsSync(join(t.path, 'target.ndjson'))).toBe(false);
  });

  it('refuses a second live writer on the same directory', async () => {
    const w = await open();
    // The lock names this process; a different live pid must be refused.
    const lockPath = join(out, '.lock');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(lockPath, `${process.ppid}\n`);
    await expect(open()).rejects.toMatchObject({ code: 'DIRECTORY_LOCKED' });
    writeFileSync(lockPath, `${process.pid}\n`);
    await w.close();
  });

  it('fsync "always" and "seal" policies produce the same verifiable chain', async () => {
    for (const mode of ['always', 'seal'] as const) {
      const dir = join(t.path, mode);
      const w = await openChunkWriter({ dir, signer: key.signer, meta: META, fsync: { mode } });
      for (let i = 0; i < 20; i++) {
        const r = record(i);
        w.append(r.line, r.info);
      }
      await w.close();
      expect(verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true }).ok).toBe(true);
    }
  });
});

const isRoot = process.getuid?.() === 0;
describe.runIf(isRoot)('EvidenceWriter on a full filesystem (real tmpfs, root)', () => {
  it('pauses with DISK_FULL, leaves no partial line, and resumes when space returns', async () => {
    const mnt = join(t.path, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    try {
      const dir = join(mnt, 'ev');
      const w = await openChunkWriter({
        dir,
        signer: key.signer,
        meta: META,
        rotation: { maxSizeBytes: 64 * 1024 },
      });
      const paused: EvidenceChainError[] = [];
      w.on('paused', (e) => paused.push(e));
      w.on('error', () => {});
      let i = 0;
      let err: unknown;
      for (; i < 100_000; i++) {
        const r = record(i, 'file_open', { path: `/${'x'.repeat(299)}` });
        try {
          w.append(r.line, r.info);
        } catch (e) {
          err = e;
          break;
        }
      }
      expect(err).toMatchObject({ code: 'DISK_FULL' });
      expect((err as Error).message).toMatch(/no space left/);
      expect(paused).toHaveLength(1);
      expect(w.status().paused).toBe(true);
      // Every chunk file holds only complete lines.
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.ndjson'))) {
        const data = readFileSync(join(dir, f));
        if (data.length > 0) expect(data[data.length - 1], f).toBe(10);
      }
      // Make room: drop a large filler (the fs is only ours) by growing the tmpfs.
      execFileSync('mount', ['-o', 'remount,size=2m', mnt]);
      // Sealing was retried in the background; give it a moment, then continue.
      const resumed = new Promise<void>((res) => w.once('resumed', () => res()));
      const r = record(i, 'file_open', { path: `/${'x'.repeat(299)}` });
      w.append(r.line, r.info);
      await resumed;
      expect(w.status().paused).toBe(false);
      await w.close();
      const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
      expect(report.errors).toEqual([]);
      expect(report.summary.records).toBe(i + 1);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });

  it('appendMany on a full disk reports how much of the batch was written, exactly', async () => {
    const mnt = join(t.path, 'small2');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    try {
      const dir = join(mnt, 'ev');
      const w = await openChunkWriter({
        dir,
        signer: key.signer,
        meta: META,
        rotation: { maxSizeBytes: 48 * 1024 },
      });
      w.on('error', () => {});
      const expected: string[] = [];
      let seq = 0;
      let err: EvidenceChainError | undefined;
      while (!err) {
        const batch = Array.from({ length: 37 }, () =>
          record(seq++, 'file_open', { path: `/${'y'.repeat(199)}` }),
        );
        try {
          w.appendMany(batch);
          expected.push(...batch.map((b) => b.line));
        } catch (e) {
          err = e as EvidenceChainError;
          expect(err.code).toBe('DISK_FULL');
          expect(err.written).toBeGreaterThanOrEqual(0);
          expect(err.written).toBeLessThan(37);
          expected.push(...batch.slice(0, err.written).map((b) => b.line));
        }
      }
      const onDisk = readdirSync(dir)
        .filter((n) => n.endsWith('.ndjson'))
        .sort()
        .map((f) => readFileSync(join(dir, f), 'utf8'))
        .join('');
      expect(onDisk).toBe(expected.join(''));
      execFileSync('mount', ['-o', 'remount,size=2m', mnt]);
      await w.close();
      const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
      expect(report.errors).toEqual([]);
      expect(report.summary.records).toBe(expected.length);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });
});

/** Fill a filesystem to the last byte with one file; returns its path. */
function fill(mnt: string): string {
  const filler = join(mnt, 'filler');
  const fd = openSync(filler, 'w');
  const block = Buffer.alloc(4096, 0x41);
  try {
    for (;;) writeSync(fd, block);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return filler;
}

describe.runIf(isRoot)('EvidenceWriter: a full disk never starves a pending seal (real tmpfs)', () => {
  it('seals the chunk that was pending before appending again, once space comes back', async () => {
    const mnt = join(t.path, 'small3');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const dir = join(mnt, 'ev');
      // No reserve: the seal itself must fail with ENOSPC here.
      const w = await openChunkWriter({
        dir,
        signer: key.signer,
        meta: META,
        rotation: { maxSizeBytes: 16 * 1024 },
        reserveBytes: 0,
      });
      const errors: string[] = [];
      w.on('error', (e) => errors.push(e.code));
      let seq = 0;
      const append = () => {
        const r = record(seq, 'file_open', { path: '/z'.repeat(100) });
        w.append(r.line, r.info);
        seq++;
      };
      while ((w.status().currentChunk?.bytes ?? 0) < 12 * 1024) append();
      const filler = fill(mnt);
      // The next appends rotate chunk 0 (its seal fails: no space for the bundle)
      // and then fail themselves.
      let full: unknown;
      for (let i = 0; i < 100 && !full; i++) {
        try {
          append();
        } catch (e) {
          full = e;
        }
      }
      expect(full).toMatchObject({ code: 'DISK_FULL' });
      while (!errors.includes('DISK_FULL')) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(existsSync(join(dir, bundleName(0)))).toBe(false);
      unlinkSync(filler);
      // Space is back: the writer refuses appends until the pending seal is on disk.
      let refused = 0;
      for (;;) {
        try {
          append();
          break;
        } catch (e) {
          expect(e).toMatchObject({ code: 'DISK_FULL' });
          refused++;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      expect(existsSync(join(dir, bundleName(0)))).toBe(true);
      expect(w.status().pendingSeals).toBe(0);
      expect(refused).toBeGreaterThan(0);
      for (let i = 0; i < 400; i++) append();
      await w.close();
      const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
      expect(report.summary.failedChunks).toBe(0);
      expect(report.summary.records).toBe(seq);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });

  it('keeps a reserve: on a disk that stays full the last chunk and the end statement are still sealed', async () => {
    const mnt = join(t.path, 'small4');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const dir = join(mnt, 'ev');
      const w = await openChunkWriter({ dir, signer: key.signer, meta: META });
      w.on('error', () => {});
      let seq = 0;
      for (; seq < 50; seq++) {
        const r = record(seq, 'file_open', { path: '/r'.repeat(100) });
        w.append(r.line, r.info);
      }
      fill(mnt);
      let full: unknown;
      while (!full) {
        const r = record(seq, 'file_open', { path: '/r'.repeat(100) });
        try {
          w.append(r.line, r.info);
          seq++;
        } catch (e) {
          full = e;
        }
      }
      expect(full).toMatchObject({ code: 'DISK_FULL' });
      await w.close({ reason: 'disk_full', sealTimeoutMs: 5000 });
      const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
      expect(report.summary.failedChunks).toBe(0);
      expect(report.summary.records).toBe(seq);
      const end = parseBundle(readFileSync(join(dir, endBundleName(0)), 'utf8'), 'x');
      const st = JSON.parse(Buffer.from(end.dsseEnvelope.payload, 'base64').toString('utf8'));
      expect(st.predicate.reason).toBe('disk_full');
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });
});

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as EvidenceChainError).code;
  }
  return undefined;
}
