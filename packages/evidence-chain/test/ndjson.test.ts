/**
 * Cross-package: records encoded by @stellaops/ndjson go through the chain
 * byte-for-byte. After sealing (and after crash recovery) every line of every
 * chunk still decodes as a canonical schema v1 record, and collector_status
 * totals reach the signed predicate.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CollectorStatusRecord, decodeLine, type EvidenceRecord, encodeRecord } from '@stellaops/ndjson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleName, openChunkWriter, verifyChain } from '../src/index.js';
import { keyPair, META, tmp } from './support/fixtures.js';

let t: ReturnType<typeof tmp>;
let key: ReturnType<typeof keyPair>;
beforeAll(() => {
  t = tmp('stella-ndjson-');
  key = keyPair(t.path);
});
afterAll(() => t.cleanup());

function fileOpen(seq: number): EvidenceRecord {
  const mono = 5_000_000_000n + BigInt(seq);
  return {
    schema_version: 1,
    seq: String(seq),
    mono_ns: mono.toString(),
    wall_ns: (1_764_100_000_000_000_000n + mono).toString(),
    host_id: META.hostId,
    type: 'file_open',
    pid: 4242,
    tid: 4242,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'cat',
    cgroup_id: '12884',
    path:
      seq % 3 === 0
        ? { b64: Buffer.from([0x2f, 0xff, seq & 0xff]).toString('base64') }
        : `/etc/file-${seq}\n`,
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 0,
    mode: 0,
    dirfd: -100,
    ret: 3,
    syscall: 'openat',
  } as EvidenceRecord;
}

function status(seq: number): CollectorStatusRecord {
  const mono = 5_000_000_000n + BigInt(seq);
  return {
    schema_version: 1,
    seq: String(seq),
    mono_ns: mono.toString(),
    wall_ns: (1_764_100_000_000_000_000n + mono).toString(),
    host_id: META.hostId,
    type: 'collector_status',
    window_start_wall_ns: '1764100000000000000',
    window_end_wall_ns: '1764100060000000000',
    probes: [
      {
        name: 'file_open',
        attached: true,
        attach_type: 'raw_tp',
        seen: '13',
        filtered: '2',
        deduplicated: '1',
        emitted: '7',
        lost: '0',
        in_flight: '3',
      },
      {
        name: 'tcp_state',
        attached: false,
        attach_type: 'none',
        reason: 'EPERM',
        seen: '0',
        filtered: '0',
        deduplicated: '0',
        emitted: '0',
        lost: '0',
      },
    ],
  };
}

function append(w: Awaited<ReturnType<typeof openChunkWriter>>, rec: EvidenceRecord): string {
  const line = encodeRecord(rec);
  w.append(line, {
    type: rec.type,
    wallNs: BigInt(rec.wall_ns),
    monoNs: BigInt(rec.mono_ns),
    seq: BigInt(rec.seq),
  });
  return line;
}

describe('@stellaops/ndjson records through the chain', () => {
  it('keeps every encoded line byte-for-byte, canonical and valid, across rotation and crash recovery', async () => {
    const dir = join(t.path, 'ev');
    const written: string[] = [];
    const w1 = await openChunkWriter({
      dir,
      signer: key.signer,
      meta: META,
      rotation: { maxSizeBytes: 2048 },
    });
    for (let s = 0; s < 40; s++) written.push(append(w1, s === 39 ? status(s) : fileOpen(s)));
    while (w1.status().pendingSeals > 0) await new Promise((r) => setTimeout(r, 5));
    // w1 is abandoned (as if killed); w2 recovers its open chunk.
    const w2 = await openChunkWriter({ dir, signer: key.signer, meta: META });
    for (let s = 0; s < 5; s++) written.push(append(w2, s === 4 ? status(s) : fileOpen(s)));
    await w2.close();

    const chunks = readdirSync(dir)
      .filter((f) => f.endsWith('.ndjson'))
      .sort();
    const lines = chunks.flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split(/(?<=\n)/)
        .filter(Boolean),
    );
    expect(lines).toEqual(written);
    for (const [i, l] of lines.entries()) {
      expect(() => decodeLine(l, { lineNumber: i + 1 })).not.toThrow();
    }

    const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
    expect(report.errors).toEqual([]);
    expect(report.streams.map((s) => s.end)).toEqual(['crash_recovery', 'stop']);
    // The recovered chunk carries the status totals the crashed run wrote.
    const recovered = report.chunks.find((c) => c.recovered)!;
    const b = JSON.parse(readFileSync(join(dir, bundleName(recovered.index)), 'utf8'));
    const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
    expect(st.predicate.collector_status.probes.map((p: { name: string }) => p.name)).toEqual([
      'file_open',
      'tcp_state',
    ]);
    expect(st.predicate.record_counts).toMatchObject({ collector_status: '1' });
    // In-band totals keep what was in flight, so seen still adds up in the statement.
    expect(st.predicate.collector_status.probes[0]).toMatchObject({ seen: '13', in_flight: '3' });
    expect(st.predicate.collector_status.probes[1].in_flight).toBeUndefined();
  });
});
