/**
 * verify-chain and inspect through `main`, on chains written by the real
 * chunk writer and signed with a real key: exit codes and what the user reads.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bundleName,
  chunkName,
  dssePae,
  endBundleName,
  LocalKeySigner,
  openChunkWriter,
} from '@stellaops/evidence-chain';
import { canonicalize, type EvidenceRecord, encodeRecord } from '@stellaops/ndjson';
import { describe, expect, it } from 'vitest';
import { DIGEST, openTestChain, TEST_META } from '../../test/support/signed-chain.js';
import type { Io } from '../io.js';
import { main } from '../main.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env: {}, isTTY: false };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

function envelope(seq: number) {
  return {
    schema_version: 1 as const,
    seq: String(seq),
    mono_ns: String(1_000 + seq),
    wall_ns: String(1_795_000_000_000_000_000n + BigInt(seq)),
    host_id: 'h',
  };
}

function open(seq: number, path: string): EvidenceRecord {
  return {
    ...envelope(seq),
    type: 'file_open',
    pid: 10,
    tid: 10,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'app',
    cgroup_id: '4242',
    container: {
      id: 'c'.repeat(64),
      runtime: 'containerd',
      image_manifest_digest: DIGEST,
      status: 'resolved',
    },
    path,
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 0,
    mode: 0,
    dirfd: -100,
    ret: 3,
    syscall: 'openat',
  } as EvidenceRecord;
}

function finalStatus(seq: number): EvidenceRecord {
  return {
    ...envelope(seq),
    type: 'collector_status',
    window_start_wall_ns: envelope(0).wall_ns,
    window_end_wall_ns: envelope(seq).wall_ns,
    probes: [
      {
        name: 'file_open',
        attached: true,
        attach_type: 'raw_tp',
        seen: String(seq),
        filtered: '0',
        deduplicated: '0',
        emitted: String(seq),
        lost: '0',
      },
    ],
    final: true,
  } as EvidenceRecord;
}

/** A chain of two chunks written and sealed by the real writer; `final` ends it with a final status. */
async function chain(final: boolean): Promise<{ dir: string; pub: string }> {
  const { dir, publicKeyPath, writer, append } = await openTestChain('stella-verify-');
  append(open(0, '/etc/a'));
  append(open(1, '/etc/b'));
  await writer.rotate();
  append(open(2, '/etc/c'));
  if (final) append(finalStatus(3));
  await writer.close();
  return { dir, pub: publicKeyPath };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Re-seal every chunk (and end-of-stream statement) of `dir` with the owner's
 * key after its files were edited: new subject digests, byte counts and
 * links, each statement validly signed, as a key holder could.
 */
async function reseal(dir: string, keyPath: string): Promise<void> {
  const signer = LocalKeySigner.fromPemFile(keyPath);
  let prev: { statement: string; chunk: string } | undefined;
  const resign = async (
    file: string,
    edit: (st: { subject: [{ digest: { sha256: string } }]; predicate: Record<string, unknown> }) => void,
  ): Promise<string> => {
    const b = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
    edit(st);
    const payload = Buffer.from(canonicalize(st), 'utf8');
    b.dsseEnvelope.payload = payload.toString('base64');
    b.dsseEnvelope.signatures[0].sig = (
      await signer.sign(dssePae(b.dsseEnvelope.payloadType, payload))
    ).toString('base64');
    writeFileSync(join(dir, file), `${JSON.stringify(b, null, 2)}\n`);
    return `sha256:${sha256(payload)}`;
  };
  for (let i = 0; existsSync(join(dir, chunkName(i))); i++) {
    const data = readFileSync(join(dir, chunkName(i)));
    const statement = await resign(bundleName(i), (st) => {
      st.subject[0].digest.sha256 = sha256(data);
      st.predicate.byte_count = String(data.length);
      if (prev) {
        st.predicate.previous_statement_digest = prev.statement;
        st.predicate.previous_chunk_digest = prev.chunk;
      }
    });
    if (existsSync(join(dir, endBundleName(i)))) {
      await resign(endBundleName(i), (st) => {
        st.subject[0].digest.sha256 = sha256(data);
        st.predicate.last_statement_digest = statement;
      });
    }
    prev = { statement, chunk: `sha256:${sha256(data)}` };
  }
}

describe('stella signals verify-chain', () => {
  it('exits 0 with VERIFIED … chain closed for a stream that ended with its final status', async () => {
    const { dir, pub } = await chain(true);
    const c = capture();
    expect(await main(['signals', 'verify-chain', dir, '--key', pub], c.io)).toBe(0);
    expect(c.out()).toMatch(
      /^VERIFIED: 2 chunks, 0 failed, 4 records, 1 streams, 0 log entries, chain closed$/m,
    );
  });

  it('exits 1 and says what is missing when the stream has no final collector_status', async () => {
    const { dir, pub } = await chain(false);
    const c = capture();
    expect(await main(['signals', 'verify-chain', dir, '--key', pub], c.io)).toBe(1);
    expect(c.out()).toMatch(/^INCOMPLETE: 2 chunks, 0 failed, .* chain closed, but incomplete$/m);
    expect(c.out()).toContain('its last record is not a final collector_status (final: true)');
    expect(c.out()).toContain('carries no collector totals (as_of_wall_ns null, no probes)');
    expect(c.out()).toContain('--allow-incomplete');
    expect(c.out()).not.toMatch(/VERIFIED/);
    // Asked to tolerate it: exit 0, and the gap is still printed.
    const lax = capture();
    expect(await main(['signals', 'verify-chain', dir, '--key', pub, '--allow-incomplete'], lax.io)).toBe(0);
    expect(lax.out()).toMatch(/^VERIFIED: .* chain closed, but incomplete$/m);
    expect(lax.out()).toContain('incomplete: chunk-000001.ndjson: stream');
    const json = capture();
    expect(await main(['signals', 'verify-chain', dir, '--key', pub, '--json'], json.io)).toBe(1);
    const report = JSON.parse(json.out());
    expect(report.summary.complete).toBe(false);
    expect(report.streams[0].incomplete).toMatch(/final collector_status/);
  });

  it('shows the recovery window of a chunk sealed after a crash, in text and JSON', async () => {
    const dead = await openTestChain('stella-verify-crash-');
    const { dir, keyPath, publicKeyPath } = dead;
    dead.append(open(0, '/etc/a'));
    dead.append(open(1, '/etc/b'));
    // Killed (never closed); a line is appended before the restart.
    appendFileSync(join(dir, 'chunk-000000.ndjson'), encodeRecord(open(2, '/etc/planted')));
    const next = await openChunkWriter({ dir, signer: LocalKeySigner.fromPemFile(keyPath), meta: TEST_META });
    await new Promise((r) => next.once('recovered', r));
    await next.close();
    const c = capture();
    await main(['signals', 'verify-chain', dir, '--key', publicKeyPath, '--allow-incomplete'], c.io);
    expect(c.out()).toContain(
      'ok     chunk-000000.ndjson  3 records (sealed by recovery after a crash: lines 1-3 were unsealed until the restart)',
    );
    expect(c.out()).toMatch(/recovery window: 3 lines in 1 chunks were written before a crash/);
    const json = capture();
    await main(['signals', 'verify-chain', dir, '--key', publicKeyPath, '--json'], json.io);
    expect(JSON.parse(json.out()).chunks[0].recovery.unsealedLines).toEqual({ first: 1, last: 3 });
  });

  it('exits 1 naming chunk, line and JSON path for a record the schema refuses, even re-signed', async () => {
    const { dir, pub } = await chain(true);
    // Rewrite a record with an out-of-range uid and re-seal the chain with the owner's key.
    const file = join(dir, 'chunk-000000.ndjson');
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"uid":0', '"uid":4294967296');
    writeFileSync(file, lines.join('\n'));
    await reseal(dir, join(pub, '..', 'k.pem'));
    const c = capture();
    expect(await main(['signals', 'verify-chain', dir, '--key', pub], c.io)).toBe(1);
    expect(c.out()).toMatch(/^FAILED chunk-000000\.ndjson/m);
    expect(c.out()).toMatch(/records: line 2 \$\.uid: SCHEMA: /);
  });
});

describe('stella signals inspect on a directory with a failing chunk', () => {
  it('still summarises the verified chunks, then exits 1 naming the chunk that failed', async () => {
    const { dir, pub } = await chain(true);
    const file = join(dir, 'chunk-000001.ndjson');
    const bytes = readFileSync(file);
    bytes[5] = (bytes[5] ?? 0) ^ 0x01;
    writeFileSync(file, bytes);
    const c = capture();
    expect(await main(['signals', 'inspect', DIGEST, '--target', dir, '--key', pub], c.io)).toBe(1);
    expect(c.out()).toContain('/etc/a');
    expect(c.out()).not.toContain('/etc/c');
    expect(c.err()).toMatch(
      /^stella: 1 chunk of .* failed verification and was not read: chunk-000001\.ndjson \(subject: /,
    );
    expect(c.err()).toContain("hint: run 'stella signals verify-chain");
  });
});
