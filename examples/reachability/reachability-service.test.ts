import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { generateKeyPair, LocalKeySigner, openChunkWriter } from '@stellaops/evidence-chain';
import { type EvidenceRecord, encodeRecord } from '@stellaops/ndjson';
import { verifyStatement } from '@stellaops/reachability';
import { afterAll, describe, expect, it } from 'vitest';
import { answer, pemSigner } from './reachability-service.js';

// No kernel needed: a real (tiny) image in a containerd-layout content store,
// packed by GNU tar, and a real signed evidence chain written by the chunk writer.
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
const put = (root: string, p: string, content: string, mode = 0o644) => {
  mkdirSync(dirname(join(root, p)), { recursive: true });
  writeFileSync(join(root, p), content);
  chmodSync(join(root, p), mode);
};
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function image(): { store: string; digest: string } {
  const root = tmp('example-rootfs-');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  symlinkSync('usr/bin', join(root, 'bin'));
  put(root, 'usr/bin/dash', 'ELF dash', 0o755);
  put(root, 'usr/bin/jq', 'ELF jq', 0o755);
  put(
    root,
    'var/lib/dpkg/status',
    'Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\nArchitecture: amd64\n\nPackage: jq\nStatus: install ok installed\nVersion: 1.6-2.1\nArchitecture: amd64\n',
  );
  put(root, 'var/lib/dpkg/info/dash.list', '/.\n/bin\n/bin/dash\n');
  put(root, 'var/lib/dpkg/info/jq.list', '/.\n/usr/bin/jq\n');
  const store = tmp('example-content-');
  mkdirSync(join(store, 'blobs/sha256'), { recursive: true });
  const blob = (b: Buffer) => {
    writeFileSync(join(store, 'blobs/sha256', sha(b)), b);
    return `sha256:${sha(b)}`;
  };
  const layer = gzipSync(execFileSync('tar', ['-C', root, '--format=pax', '-cf', '-', '.']));
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: blob(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blob(layer), size: layer.length },
      ],
    }),
  );
  return { store, digest: blob(manifest) };
}

async function evidence(imageDigest: string) {
  const dir = tmp('example-evidence-');
  const keys = tmp('example-keys-');
  const { publicKeyPem } = generateKeyPair(join(keys, 'c.pem'), join(keys, 'c.pub.pem'));
  const writer = await openChunkWriter({
    dir,
    signer: LocalKeySigner.fromPemFile(join(keys, 'c.pem')),
    meta: {
      hostId: 'h',
      kernelRelease: 'k',
      btfId: 'b',
      collectorVersion: 'v',
      filterConfigDigest: `sha256:${'a'.repeat(64)}`,
    },
  });
  const t0 = 1_760_000_000_000_000_000n;
  const base = (seq: number) => ({
    schema_version: 1 as const,
    seq: String(seq),
    mono_ns: String(seq),
    wall_ns: String(t0 + BigInt(seq) * 1_000_000_000n),
    host_id: 'h',
  });
  const probes = [
    {
      name: 'process_exec',
      attached: true,
      attach_type: 'tp_btf',
      seen: '1',
      filtered: '0',
      deduplicated: '0',
      emitted: '1',
      lost: '0',
    },
  ];
  const records: EvidenceRecord[] = [
    {
      ...base(1),
      type: 'collector_status',
      window_start_wall_ns: String(t0),
      window_end_wall_ns: base(1).wall_ns,
      probes,
    },
    {
      ...base(2),
      type: 'process_exec',
      pid: 9,
      tid: 9,
      ppid: 1,
      uid: 0,
      gid: 0,
      comm: 'sh',
      cgroup_id: '5',
      container: { id: 'c1', image_manifest_digest: imageDigest, status: 'resolved' },
      filename: '/bin/sh',
      argv: ['/bin/sh'],
      argv_truncated: false,
      exe_dev: '1',
      exe_ino: '2',
      exe_path: '/usr/bin/dash',
    },
    {
      ...base(3),
      type: 'collector_status',
      window_start_wall_ns: String(t0),
      window_end_wall_ns: base(3).wall_ns,
      probes,
      final: true,
    },
  ];
  for (const r of records) {
    writer.append(encodeRecord(r), {
      type: r.type,
      wallNs: BigInt(r.wall_ns),
      monoNs: BigInt(r.mono_ns),
      seq: BigInt(r.seq),
    });
  }
  await writer.close();
  return { dir, publicKeyPem };
}

describe('examples/reachability: a service importing only @stellaops/reachability', () => {
  const img = image();
  const ev = evidence(img.digest);

  it('reads the image itself, names the package that ran, and signs the statement', async () => {
    const { dir, publicKeyPem } = await ev;
    const serviceKeys = tmp('example-service-');
    generateKeyPair(join(serviceKeys, 's.pem'), join(serviceKeys, 's.pub.pem'));
    const a = await answer({
      imageDigest: img.digest,
      evidenceDir: dir,
      collectorKeys: [publicKeyPem],
      contentStore: img.store,
      signer: pemSigner(readFileSync(join(serviceKeys, 's.pem'), 'utf8')),
    });
    expect(Object.fromEntries(a.report.packages.map((p) => [p.name, p.status]))).toEqual({
      dash: 'observed',
      jq: 'not_observed',
    });
    expect(a.table).toMatch(/^observed\s+dash/m);
    const verified = verifyStatement(
      a.bundle as NonNullable<typeof a.bundle>,
      readFileSync(join(serviceKeys, 's.pub.pem'), 'utf8'),
    );
    expect(verified.subject[0].digest.sha256).toBe(img.digest.slice(7));
  });

  it('takes the packages from an SBOM and the symlinks from the image', async () => {
    const { dir, publicKeyPem } = await ev;
    const sbom = JSON.stringify({
      spdxVersion: 'SPDX-2.3',
      packages: [{ SPDXID: 'SPDXRef-dash', name: 'dash', hasFiles: ['SPDXRef-f'] }],
      files: [{ SPDXID: 'SPDXRef-f', fileName: '/bin/dash' }],
    });
    const a = await answer({
      imageDigest: img.digest,
      evidenceDir: dir,
      collectorKeys: [publicKeyPem],
      contentStore: img.store,
      sbom,
    });
    expect(a.report.packages.map((p) => [p.name, p.status])).toEqual([['dash', 'observed']]);
  });
});
