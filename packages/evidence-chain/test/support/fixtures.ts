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

/**
 * One canonical, schema v1 valid record line and the append info for it.
 * `file_open`, `process_exec` and `collector_status` get the members their
 * type requires; any other type gets the envelope and process members only
 * (not a valid record: for tests of what the chain does with bad lines).
 * `extra` members are merged last.
 */
export function record(
  seq: number,
  type = 'file_open',
  extra: Record<string, unknown> = {},
): { line: string; info: { type: string; wallNs: bigint; monoNs: bigint; seq: bigint } } {
  const wallNs = 1_764_000_000_000_000_000n + BigInt(seq) * 1000n;
  const monoNs = 5_000_000_000n + BigInt(seq) * 1000n;
  const envelope = {
    schema_version: 1,
    type,
    seq: String(seq),
    mono_ns: monoNs.toString(),
    wall_ns: wallNs.toString(),
    host_id: 'test-host',
  };
  const proc = {
    pid: 100 + (seq % 7),
    tid: 100 + (seq % 7),
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'cat',
    cgroup_id: '4242',
  };
  const body: Record<string, unknown> =
    type === 'collector_status'
      ? {
          window_start_wall_ns: wallNs.toString(),
          window_end_wall_ns: wallNs.toString(),
          probes: [],
        }
      : type === 'process_exec'
        ? {
            ...proc,
            filename: '/usr/bin/cat',
            argv: ['cat', `/etc/file-${seq}`],
            argv_truncated: false,
            exe_dev: '66305',
            exe_ino: '1837465',
            ret: 0,
          }
        : type === 'file_open'
          ? {
              ...proc,
              path: `/etc/file-${seq}`,
              path_resolution: 'absolute',
              path_truncated: false,
              flags: 0,
              mode: 0,
              dirfd: -100,
              ret: 3,
              syscall: 'openat',
            }
          : proc;
  const rec = { ...envelope, ...body, ...extra };
  return { line: `${canonicalize(rec)}\n`, info: { type, wallNs, monoNs, seq: BigInt(seq) } };
}
