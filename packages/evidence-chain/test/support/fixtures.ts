import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalize } from 'json-canonicalize';
import { type ChainMeta, generateKeyPair, LocalKeySigner } from '../../src/index.js';

/** A fresh temporary directory, removed by the returned cleanup. */
export function tmp(prefix = 'stella-chain-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A real P-256 key pair on disk and a signer for it. */
export function keyPair(
  dir: string,
  name = 'key',
): { signer: LocalKeySigner; publicKeyPem: string; privatePath: string } {
  const privatePath = join(dir, `${name}.pem`);
  const { publicKeyPem } = generateKeyPair(privatePath, join(dir, `${name}.pub`));
  return { signer: LocalKeySigner.fromPemFile(privatePath), publicKeyPem, privatePath };
}

/** Collector identity used by the tests. */
export const META: ChainMeta = {
  hostId: 'test-host',
  kernelRelease: '6.18.0-test',
  btfId: 'sha256:0000000000000000000000000000000000000000000000000000000000000000',
  collectorVersion: '0.0.0-test',
  filterConfigDigest: 'sha256:1111111111111111111111111111111111111111111111111111111111111111',
};

/** One canonical record line per the envelope contract, and the append info for it. */
export function record(
  seq: number,
  type = 'file_open',
  extra: Record<string, unknown> = {},
): { line: string; info: { type: string; wallNs: bigint; monoNs: bigint; seq: bigint } } {
  const wallNs = 1_764_000_000_000_000_000n + BigInt(seq) * 1000n;
  const monoNs = 5_000_000_000n + BigInt(seq) * 1000n;
  const rec = {
    schema_version: 1,
    type,
    seq: String(seq),
    mono_ns: monoNs.toString(),
    wall_ns: wallNs.toString(),
    host_id: 'test-host',
    pid: 100 + (seq % 7),
    tid: 100 + (seq % 7),
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'cat',
    cgroup_id: '4242',
    ...extra,
  };
  return { line: `${canonicalize(rec)}\n`, info: { type, wallNs, monoNs, seq: BigInt(seq) } };
}
