import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyChain } from '@stellaops/evidence-chain';
import type {
  CollectorStatusRecord,
  EvidenceRecord,
  FileOpenRecord,
  ProcessExecRecord,
} from '@stellaops/ndjson';
import { describe, expect, it } from 'vitest';
import { DIGEST, openTestChain } from '../../test/support/signed-chain.js';
import { formatSummary, summarise } from './inspect.js';

let seq = 0n;

function open(path: string): FileOpenRecord {
  const wall = 1_795_000_000_000_000_000n + seq;
  const rec: FileOpenRecord = {
    schema_version: 1,
    type: 'file_open',
    seq: (seq++).toString(),
    mono_ns: (1_000n + seq).toString(),
    wall_ns: wall.toString(),
    host_id: 'h',
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
  };
  return rec;
}

describe('inspect reads only sealed, signed chunks', () => {
  it('leaves out the records of an unsealed tail chunk and lists it as not read', async () => {
    const { dir, publicKeyPem, writer, append } = await openTestChain('stella-inspect-');
    append(open('/etc/sealed-evidence'));
    await writer.rotate(); // chunk 0 sealed and signed
    append(open('/etc/unsealed-tail')); // chunk 1: written, not signed yet
    try {
      const report = await verifyChain(dir, { keys: [publicKeyPem], requireEnd: false });
      const summary = await summarise(dir, DIGEST, report);
      expect(summary.files.map((f) => f.path)).toEqual(['/etc/sealed-evidence']);
      expect(summary.completeness.chunksVerified).toBe(1);
      expect(summary.completeness.chunksUnsealed).toHaveLength(1);
      expect(summary.completeness.chainClosed).toBe(false);
    } finally {
      await writer.close();
    }
  });

  it('says completeness is unknown for a chunk that failed verification, not "no records lost"', async () => {
    const { dir, publicKeyPem, writer, append } = await openTestChain('stella-inspect-');
    for (const path of ['/etc/read', '/etc/tampered']) {
      append(open(path));
      await writer.rotate();
    }
    await writer.close();
    const before = await verifyChain(dir, { keys: [publicKeyPem] });
    const second = before.chunks[1]!.file;
    const chunk = join(dir, second);
    writeFileSync(chunk, readFileSync(chunk, 'utf8').replace('/etc/tampered', '/etc/tampereD'));
    const report = await verifyChain(dir, { keys: [publicKeyPem] });
    const summary = await summarise(dir, DIGEST, report);
    expect(summary.completeness.chunksFailed).toEqual([second]);
    const text = formatSummary(summary);
    expect(text).toContain(`FAILED (not read): ${second}`);
    expect(text).toContain('  no records lost in the chunks read; unknown for the 1 chunk not read');
    expect(text).not.toMatch(/ {2}no records lost\n/);
  });
});

function exec(argv: string[]): ProcessExecRecord {
  const {
    path: _p,
    path_resolution: _r,
    path_truncated: _t,
    flags: _f,
    mode: _m,
    dirfd: _d,
    syscall: _s,
    ...base
  } = open('/x');
  return {
    ...base,
    type: 'process_exec',
    filename: '/bin/busybox',
    argv,
    argv_truncated: false,
    exe_dev: '66305',
    exe_ino: '1837465',
    ret: 0,
  };
}

function status(deduplicated: string, seen = String(2 + Number(deduplicated))): CollectorStatusRecord {
  const { seq: s, mono_ns, wall_ns, host_id } = open('/x');
  return {
    schema_version: 1,
    type: 'collector_status',
    seq: s,
    mono_ns,
    wall_ns,
    host_id,
    window_start_wall_ns: wall_ns,
    window_end_wall_ns: wall_ns,
    probes: [
      {
        name: 'exec',
        attached: true,
        attach_type: 'tp_btf',
        seen,
        filtered: '0',
        deduplicated,
        emitted: '2',
        lost: '0',
      },
    ],
    final: true,
  };
}

describe('inspect shows deduplicated facts', () => {
  it('lists each command line of a binary, and says counts are facts when the dedup folded repeats', async () => {
    const { dir, publicKeyPem, writer, append } = await openTestChain('stella-inspect-');
    for (const r of [
      exec(['ls', '-l']),
      exec(['wget', 'http://example.com/']),
      status('7'),
    ] as EvidenceRecord[])
      append(r);
    await writer.close();
    const report = await verifyChain(dir, { keys: [publicKeyPem], requireEnd: false });
    const summary = await summarise(dir, DIGEST, report);
    expect(summary.executables.map((e) => e.argv.join(' ')).sort()).toEqual([
      'ls -l',
      'wget http://example.com/',
    ]);
    expect(summary.completeness.deduplicated).toEqual({ exec: '7' });
    const text = formatSummary(summary);
    expect(text).toMatch(/counts are of deduplicated facts, not events.*exec 7/);
    expect(text).toContain('/bin/busybox  [ls -l] x1');
    expect(text).toContain('/bin/busybox  [wget http://example.com/] x1');
    expect(summary.completeness.unbalanced).toEqual([]);
    expect(text).not.toContain('COUNTS DO NOT ADD UP');
  });

  it('names a probe whose status counts do not add up', async () => {
    const { dir, publicKeyPem, writer, append } = await openTestChain('stella-inspect-');
    // The kernel saw 12 events; the collector accounts for 2 + 7 = 9 of them.
    for (const r of [exec(['ls']), status('7', '12')] as EvidenceRecord[]) append(r);
    await writer.close();
    const report = await verifyChain(dir, { keys: [publicKeyPem], requireEnd: false });
    const summary = await summarise(dir, DIGEST, report);
    expect(summary.completeness.unbalanced).toEqual(['exec']);
    expect(formatSummary(summary)).toContain(
      'COUNTS DO NOT ADD UP (seen != filtered + deduplicated + emitted + lost + in_flight): exec',
    );
  });
});
