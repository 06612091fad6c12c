import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type EvidenceWriter,
  generateKeyPair,
  LocalKeySigner,
  openChunkWriter,
} from '@stellaops/evidence-chain';
import { type EvidenceRecord, encodeRecord, type FileOpenRecord } from '@stellaops/ndjson';

/** The filter-config digest (and the image digest the inspect tests look for). */
export const DIGEST = `sha256:${'a'.repeat(64)}`;

/** The collector identity every test chain is sealed with. */
export const TEST_META = {
  hostId: 'h',
  kernelRelease: 'test',
  btfId: 'none',
  collectorVersion: 'test',
  filterConfigDigest: DIGEST,
} as const;

/** A chain being written by the real chunk writer, signed with a fresh real key pair. */
export interface TestChain {
  readonly dir: string;
  readonly keyPath: string;
  readonly publicKeyPath: string;
  readonly publicKeyPem: string;
  readonly writer: EvidenceWriter;
  /** Encode and append one record. */
  append(record: EvidenceRecord): void;
}

/** Open a fresh evidence directory with a fresh key pair, for inspect and verify-chain tests. */
export async function openTestChain(prefix = 'stella-cli-chain-'): Promise<TestChain> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const keys = mkdtempSync(join(tmpdir(), `${prefix}keys-`));
  const keyPath = join(keys, 'k.pem');
  const publicKeyPath = join(keys, 'k.pub.pem');
  const { publicKeyPem } = generateKeyPair(keyPath, publicKeyPath);
  const writer = await openChunkWriter({
    dir,
    signer: LocalKeySigner.fromPemFile(keyPath),
    meta: TEST_META,
  });
  const append = (r: EvidenceRecord) =>
    writer.append(encodeRecord(r), {
      type: r.type,
      wallNs: BigInt(r.wall_ns),
      monoNs: BigInt(r.mono_ns),
      seq: BigInt(r.seq),
    });
  return { dir, keyPath, publicKeyPath, publicKeyPem, writer, append };
}

/** A successful `openat` of `path` by a process of the image `digest` (default {@link DIGEST}), as the collector writes it. */
export function fileOpenRecord(path: string, seq: number, digest: string = DIGEST): FileOpenRecord {
  return {
    schema_version: 1,
    type: 'file_open',
    seq: String(seq),
    mono_ns: String(1000 + seq),
    wall_ns: String(1_795_000_000_000_000_000n + BigInt(seq)),
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
      image_manifest_digest: digest,
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
}
