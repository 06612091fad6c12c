import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, LocalKeySigner, openChunkWriter } from '@stellaops/evidence-chain';
import { bytesField, type CollectorStatusRecord, encodeRecord, type FileOpenRecord } from '@stellaops/ndjson';
import { afterAll, describe, expect, it } from 'vitest';
import { judgeEvidence } from './judge-evidence.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const roots: string[] = [];
const tmp = (tag: string) => {
  const d = mkdtempSync(join(tmpdir(), `stella-judge-${tag}-`));
  roots.push(d);
  return d;
};
afterAll(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

const DIGEST = `sha256:${'1'.repeat(64)}`;
const T0 = 1_764_100_000_000_000_000n;

/** A key pair as `stella signals keygen` makes it: private 0600, public beside it. */
function keys(tag: string): { priv: string; pubPem: string } {
  const d = tmp(`key-${tag}`);
  const priv = join(d, 'k.pem');
  const pub = join(d, 'k.pub.pem');
  generateKeyPair(priv, pub);
  return { priv, pubPem: readFileSync(pub, 'utf8') };
}

function openRecord(seq: bigint, path: string): FileOpenRecord {
  return {
    schema_version: 1,
    type: 'file_open',
    seq: seq.toString(),
    mono_ns: (1000n + seq).toString(),
    wall_ns: (T0 + seq).toString(),
    host_id: 'example-host',
    pid: 10,
    tid: 10,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'svc',
    cgroup_id: '42',
    path: bytesField(Buffer.from(path)),
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 0,
    mode: 0,
    dirfd: -100,
    ret: 3,
    syscall: 'openat',
  };
}

interface RunShape {
  records?: number;
  final?: boolean;
  lost?: bigint;
  lsmAttached?: boolean;
  digest?: string;
}

function statusRecord(seq: bigint, emitted: bigint, s: RunShape): CollectorStatusRecord {
  const lost = s.lost ?? 0n;
  return {
    schema_version: 1,
    type: 'collector_status',
    seq: seq.toString(),
    mono_ns: (1000n + seq).toString(),
    wall_ns: (T0 + seq).toString(),
    host_id: 'example-host',
    window_start_wall_ns: T0.toString(),
    window_end_wall_ns: (T0 + seq).toString(),
    probes: [
      {
        name: 'file_open',
        attached: true,
        attach_type: 'tp_btf',
        seen: (emitted + lost).toString(),
        filtered: '0',
        deduplicated: '0',
        emitted: emitted.toString(),
        lost: lost.toString(),
      },
      s.lsmAttached
        ? {
            name: 'file_open_lsm',
            attached: true,
            attach_type: 'lsm',
            seen: '0',
            filtered: '0',
            deduplicated: '0',
            emitted: '0',
            lost: '0',
          }
        : {
            name: 'file_open_lsm',
            attached: false,
            attach_type: 'none',
            reason: 'not attached: lsm/file_open: EPERM',
            seen: '0',
            filtered: '0',
            deduplicated: '0',
            emitted: '0',
            lost: '0',
          },
    ],
    ...(s.final === false ? {} : { final: true }),
  };
}

/** One collector run into `dir`, written and sealed through the real writer. */
async function run(dir: string, priv: string, s: RunShape = {}): Promise<void> {
  const w = await openChunkWriter({
    dir,
    signer: LocalKeySigner.fromPemFile(priv),
    rotation: { maxSizeBytes: 4096 },
    meta: {
      hostId: 'example-host',
      kernelRelease: '6.18.0-example',
      btfId: `sha256:${'2'.repeat(64)}`,
      collectorVersion: 'example',
      filterConfigDigest: s.digest ?? DIGEST,
    },
  });
  const n = BigInt(s.records ?? 20);
  for (let seq = 0n; seq < n; seq++) {
    const rec = openRecord(seq, `/srv/app/file-${seq}`);
    w.append(encodeRecord(rec), { type: rec.type, wallNs: BigInt(rec.wall_ns), seq });
  }
  const st = statusRecord(n, n, s);
  w.append(encodeRecord(st), { type: st.type, wallNs: BigInt(st.wall_ns), seq: n });
  w.updateStatus({ probes: st.probes });
  await w.close();
}

describe('judging evidence before relying on it', () => {
  const k = keys('a');

  it('accepts a closed chain whose streams end with a final status and lost nothing', async () => {
    const dir = tmp('ok');
    await run(dir, k.priv);
    await run(dir, k.priv);
    const v = await judgeEvidence(dir, { keys: [k.pubPem], filterConfigDigest: DIGEST });
    expect(v.problems).toEqual([]);
    expect(v).toMatchObject({ authentic: true, complete: true });
    expect(v.chain.summary.chunks).toBeGreaterThan(2); // 4 KiB rotation: several chunks per run
    expect(v.streams).toHaveLength(2);
    expect(v.streams[0]).toMatchObject({
      end: 'stop',
      finalStatus: true,
      lost: {},
      filterConfigDigests: [DIGEST],
      notAttached: [{ name: 'file_open_lsm', reason: 'not attached: lsm/file_open: EPERM' }],
    });
  });

  it('is not authentic under a key the consumer did not pin', async () => {
    const dir = tmp('wrong-key');
    await run(dir, k.priv);
    const other = keys('b');
    const v = await judgeEvidence(dir, { keys: [other.pubPem] });
    expect(v.authentic).toBe(false);
    expect(v.problems.some((p) => /signature/.test(p))).toBe(true);
  });

  it('is not authentic when a sealed chunk was edited', async () => {
    const dir = tmp('tamper');
    await run(dir, k.priv);
    const f = join(dir, 'chunk-000000.ndjson');
    writeFileSync(f, readFileSync(f, 'utf8').replace('/srv/app/file-1"', '/srv/app/file-9"'));
    const v = await judgeEvidence(dir, { keys: [k.pubPem] });
    expect(v.authentic).toBe(false);
    expect(v.problems.some((p) => p.startsWith('chunk-000000.ndjson') && /subject/.test(p))).toBe(true);
  });

  it('is authentic but not complete when a stream has no final collector_status', async () => {
    const dir = tmp('no-final');
    await run(dir, k.priv, { final: false });
    const v = await judgeEvidence(dir, { keys: [k.pubPem] });
    expect(v.authentic).toBe(true); // verify-chain alone says VERIFIED, chain closed
    expect(v.complete).toBe(false);
    expect(v.problems).toEqual([expect.stringMatching(/no final collector_status/)]);
  });

  it('names a probe that lost records, a required probe not attached, and an unexpected filter', async () => {
    const dir = tmp('gaps');
    await run(dir, k.priv, { lost: 7n, digest: `sha256:${'3'.repeat(64)}` });
    const v = await judgeEvidence(dir, {
      keys: [k.pubPem],
      filterConfigDigest: DIGEST,
      requireAttached: ['file_open', 'file_open_lsm'],
    });
    expect(v.authentic).toBe(true);
    expect(v.complete).toBe(false);
    expect(v.streams[0]?.lost).toEqual({ file_open: '7' });
    expect(v.problems).toEqual([
      expect.stringMatching(/probe file_open lost 7 records/),
      expect.stringMatching(/required probe file_open_lsm was not attached: not attached: lsm\/file_open/),
      expect.stringMatching(/filter_config_digest sha256:3{64}, expected sha256:1{64}/),
    ]);
  });

  it('does not count an unsealed tail someone added after a closed chain', async () => {
    const dir = tmp('forged-tail');
    await run(dir, k.priv);
    const sealed = judgeEvidence(dir, { keys: [k.pubPem] });
    const last = (await sealed).chain.summary.chunks;
    // A fabricated chunk plus an open marker, as a killed writer would leave them.
    const forged = openRecord(0n, '/etc/forged');
    writeFileSync(join(dir, `chunk-${String(last).padStart(6, '0')}.ndjson`), encodeRecord(forged));
    writeFileSync(
      join(dir, `chunk-${String(last).padStart(6, '0')}.open.json`),
      JSON.stringify({
        stream_id: '00000000-0000-4000-8000-000000000000',
        chunk_index: last,
        opened_wall_ns: T0.toString(),
        opened_mono_ns: '1',
        meta: { hostId: 'example-host' },
      }),
    );
    const v = await judgeEvidence(dir, { keys: [k.pubPem] });
    expect(v.authentic).toBe(false);
    expect(v.problems.join('\n')).toMatch(/not sealed/);
  });

  it('detects a deleted later run only when told how many chunks to expect', async () => {
    const dir = tmp('cut');
    await run(dir, k.priv);
    const first = (await judgeEvidence(dir, { keys: [k.pubPem] })).chain.summary.chunks;
    const copy = tmp('cut-copy');
    await run(dir, k.priv);
    const all = (await judgeEvidence(dir, { keys: [k.pubPem] })).chain.summary.chunks;
    // The older copy of the directory is a valid, closed prefix of the chain.
    for (let i = 0; i < first; i++) {
      for (const suffix of ['.ndjson', '.sigstore.json', '.end.sigstore.json']) {
        try {
          copyFileSync(
            join(dir, `chunk-${String(i).padStart(6, '0')}${suffix}`),
            join(copy, `chunk-${String(i).padStart(6, '0')}${suffix}`),
          );
        } catch {
          // only the run's last chunk has an end statement
        }
      }
    }
    expect((await judgeEvidence(copy, { keys: [k.pubPem] })).complete).toBe(true);
    const v = await judgeEvidence(copy, { keys: [k.pubPem], expectedChunks: all });
    expect(v.authentic).toBe(false);
  });

  it('runs as a script: exit 0 for complete evidence, 1 otherwise, JSON verdict on stdout', async () => {
    const good = tmp('cli-ok');
    await run(good, k.priv);
    const bad = tmp('cli-bad');
    await run(bad, k.priv, { final: false });
    const pub = join(tmp('cli-key'), 'k.pub.pem');
    writeFileSync(pub, k.pubPem);
    const tsx = join(here, '..', '..', 'node_modules', '.bin', 'tsx');
    const script = join(here, 'judge-evidence.ts');
    const ok = spawnSync(tsx, [script, good, '--key', pub], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ authentic: true, complete: true, problems: [] });
    const no = spawnSync(tsx, [script, bad, '--key', pub], { encoding: 'utf8' });
    expect(no.status, no.stderr).toBe(1);
    expect(JSON.parse(no.stdout).problems[0]).toMatch(/no final collector_status/);
  }, 60_000);
});
