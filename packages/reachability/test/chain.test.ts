import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, LocalKeySigner, openChunkWriter } from '@stellaops/evidence-chain';
import { type EvidenceRecord, encodeRecord } from '@stellaops/ndjson';
import {
  analyze,
  inventoryFromRootfs,
  signStatement,
  toStatement,
  verifyStatement,
} from '@stellaops/reachability';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, buildRootfs, exec, IMAGE, OTHER_IMAGE, open, sha256, status } from './support/fixtures.js';

// Evidence from a real signed chain (the chunk writer of @stellaops/evidence-chain), analysed
// through the package's public surface only, as a service would.
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

async function writeChain(records: EvidenceRecord[], rotateAfter: number) {
  const dir = tmp('reach-chain-');
  const keys = tmp('reach-keys-');
  const { publicKeyPem } = generateKeyPair(join(keys, 'k.pem'), join(keys, 'k.pub.pem'));
  const signer = LocalKeySigner.fromPemFile(join(keys, 'k.pem'));
  const writer = await openChunkWriter({
    dir,
    signer,
    meta: {
      hostId: 'host-a',
      kernelRelease: 'test',
      btfId: 'none',
      collectorVersion: 'test',
      filterConfigDigest: `sha256:${'a'.repeat(64)}`,
    },
  });
  for (const [i, r] of records.entries()) {
    writer.append(encodeRecord(r), {
      type: r.type,
      wallNs: BigInt(r.wall_ns),
      monoNs: BigInt(r.mono_ns),
      seq: BigInt(r.seq),
    });
    if (i === rotateAfter) await writer.rotate();
  }
  await writer.close();
  return { dir, publicKeyPem, signer };
}

const root = buildRootfs();
dirs.push(root);
const inventory = await inventoryFromRootfs(root);

describe('analyze over a signed evidence chain', () => {
  const records = [
    status(0, 0),
    exec(10, '/bin/sh', { exe_path: '/usr/bin/dash', exe_digest: `sha256:${sha256(BIN.dash)}` }),
    open(11, '/app/node_modules/express/index.js'),
    status(0, 20, { final: true }),
  ];
  const chain = writeChain(records, 1);

  it('verifies the chain, then points at the chunk and seq of each piece of evidence', async () => {
    const { dir, publicKeyPem } = await chain;
    const r = await analyze({ imageDigest: IMAGE, inventory, chainDir: dir, publicKeys: [publicKeyPem] });
    expect(r.evidence.kind).toBe('chain');
    expect(r.evidence.chunks).toEqual(['chunk-000000.ndjson', 'chunk-000001.ndjson']);
    const dash = r.packages.find((p) => p.name === 'dash');
    expect(dash?.observed?.files[0]?.evidence).toEqual([
      { chunk: 'chunk-000000.ndjson', seq: records[1]?.seq, type: 'process_exec' },
    ]);
    const express = r.packages.find((p) => p.name === 'express');
    expect(express?.observed?.files[0]?.evidence).toEqual([
      { chunk: 'chunk-000001.ndjson', seq: records[2]?.seq, type: 'file_open' },
    ]);
    expect(r.window).toMatchObject({ source: 'collector_status', final_status: true });
  });

  it('signs the report with the chain signer; the collector key verifies it', async () => {
    const { dir, publicKeyPem, signer } = await chain;
    const r = await analyze({ imageDigest: IMAGE, inventory, chainDir: dir, publicKeys: [publicKeyPem] });
    const bundle = await signStatement(toStatement(r), signer);
    expect(verifyStatement(JSON.stringify(bundle), publicKeyPem).predicate).toEqual(r);
  });

  it('refuses a chain that does not verify with the given key', async () => {
    const { dir } = await chain;
    const other = generateKeyPair(
      join(tmp('reach-k2-'), 'o.pem'),
      join(tmp('reach-k3-'), 'o.pub.pem'),
    ).publicKeyPem;
    await expect(
      analyze({ imageDigest: IMAGE, inventory, chainDir: dir, publicKeys: [other] }),
    ).rejects.toMatchObject({
      code: 'CHAIN_UNVERIFIED',
      message: expect.stringContaining('does not verify'),
    });
  });

  it('refuses a chain whose records were edited', async () => {
    const { dir, publicKeyPem } = await chain;
    const copy = tmp('reach-tampered-');
    for (const f of readdirSync(dir)) {
      if (f.startsWith('chunk-')) writeFileSync(join(copy, f), readFileSync(join(dir, f)));
    }
    const chunk = join(copy, 'chunk-000001.ndjson');
    writeFileSync(chunk, readFileSync(chunk, 'utf8').replace('express', 'expresz'));
    await expect(
      analyze({ imageDigest: IMAGE, inventory, chainDir: copy, publicKeys: [publicKeyPem] }),
    ).rejects.toMatchObject({
      code: 'CHAIN_UNVERIFIED',
      message: expect.stringContaining('chunk-000001'),
    });
  });

  it('refuses an empty directory: no sealed chunk is no evidence', async () => {
    const { publicKeyPem } = await chain;
    await expect(
      analyze({ imageDigest: IMAGE, inventory, chainDir: tmp('reach-empty-'), publicKeys: [publicKeyPem] }),
    ).rejects.toMatchObject({
      code: 'CHAIN_UNVERIFIED',
      message: expect.stringContaining('no sealed chunk'),
    });
  });
});

/** The record as a host process makes it: no container. */
function hostRecord<T extends { container?: unknown }>(r: T): T {
  const { container: _c, ...host } = r;
  return host as T;
}

describe('records of a container no image could be tied to (attribution failed under load)', () => {
  // The shape of a real run: the image's first container got `container.status: "unknown"` on
  // every record but one (its jq exec and library opens among them), so no record of the image
  // touched the packages it used. Those packages must not be signed "not_observed".
  const cgroup = '/stella-reach-1/reach-debian-1';
  const lost = { cgroup_path: cgroup, status: 'unknown' as const };
  const records = [
    status(0, 0),
    // runc's set-up, unattributed too: the host's libc, set aside as for the image's own records.
    open(1, '/lib/x86_64-linux-gnu/libc.so.6', { container: lost, runtime_setup: true }),
    exec(2, '/bin/sh', { exe_path: '/usr/bin/dash', container: lost }),
    open(3, '/lib/x86_64-linux-gnu/libc.so.6', { container: lost }),
    // A failed open could not have made a package observed: not counted.
    open(4, '/usr/lib/x86_64-linux-gnu/libz.so.1', { container: lost, ret: -2 }),
    open(5, '/etc/hostname', { container: lost }),
    // One record of the container did resolve: the image has evidence.
    open(6, '/etc/passwd'),
    // A container resolved without an image digest is not tied to an image either.
    open(7, '/app/node_modules/express/index.js', {
      container: { id: 'c9', runtime: 'docker', status: 'resolved' },
    }),
    // Another image's records and host records (no container) are not this image's, and not unattributed.
    exec(8, '/usr/bin/ls', { exe_path: '/usr/bin/ls', image: OTHER_IMAGE }),
    hostRecord(open(9, '/app/node_modules/left-pad/index.js')),
    status(0, 20, { final: true }),
  ];
  const chain = writeChain(records, 3);
  const schema = JSON.parse(
    readFileSync(new URL('../schema/reachability-v1.schema.json', import.meta.url), 'utf8'),
  );

  it('reports the packages they touched unknown (unattributed_records) with pointers, and counts them in the window', async () => {
    const { dir, publicKeyPem } = await chain;
    const r = await analyze({ imageDigest: IMAGE, inventory, chainDir: dir, publicKeys: [publicKeyPem] });
    const st = Object.fromEntries(r.packages.map((p) => [p.name, [p.status, p.reason ?? null]]));
    expect(st).toEqual({
      '@types/node': ['not_observed', null],
      coreutils: ['not_observed', null],
      dash: ['unknown', 'unattributed_records'],
      debug: ['not_observed', null],
      express: ['unknown', 'unattributed_records'],
      'left-pad': ['not_observed', null],
      libc6: ['unknown', 'unattributed_records'],
      'no-list': ['unknown', 'no_files'],
      six: ['not_observed', null],
      tzdata: ['not_observed', null],
      zlib1g: ['not_observed', null],
    });
    expect(r.summary).toEqual({ observed: 0, not_observed: 7, unknown: 4, unattributed: 3 });
    const libc = r.packages.find((p) => p.name === 'libc6');
    expect(libc?.unattributed?.files).toEqual([
      {
        path: '/lib/x86_64-linux-gnu/libc.so.6',
        access: ['loaded'],
        matched_by: ['path'],
        count: '1',
        first_seen_wall_ns: records[3]?.wall_ns,
        last_seen_wall_ns: records[3]?.wall_ns,
        evidence: [{ chunk: 'chunk-000000.ndjson', seq: records[3]?.seq, type: 'file_open' }],
      },
    ]);
    expect(r.packages.find((p) => p.name === 'dash')?.unattributed?.counts).toEqual({
      executed: '1',
      loaded: '0',
      opened: '0',
    });
    expect(r.window.unattributed_records).toBe('4');
    expect(r.window.unattributed_containers).toEqual([
      {
        cgroup_path: cgroup,
        status: 'unknown',
        records: '3',
        first_seen_wall_ns: records[2]?.wall_ns,
        last_seen_wall_ns: records[5]?.wall_ns,
      },
      {
        id: 'c9',
        status: 'resolved',
        records: '1',
        first_seen_wall_ns: records[7]?.wall_ns,
        last_seen_wall_ns: records[7]?.wall_ns,
      },
    ]);
    // Unattributed paths no package owns are not the image's unowned paths.
    expect(r.unowned_paths).toEqual([{ path: '/etc/passwd', access: ['opened'], count: '1' }]);
  });

  it('signs a statement that carries the condition and validates against the published JSON Schema', async () => {
    const { dir, publicKeyPem, signer } = await chain;
    const r = await analyze({ imageDigest: IMAGE, inventory, chainDir: dir, publicKeys: [publicKeyPem] });
    const predicate = verifyStatement(
      JSON.stringify(await signStatement(toStatement(r), signer)),
      publicKeyPem,
    ).predicate;
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    expect(validate(predicate), JSON.stringify(validate.errors)).toBe(true);
    expect(predicate.window.unattributed_records).toBe('4');
    // The schema holds the claim: such a package cannot be turned "not_observed" and still validate.
    const forged = structuredClone(predicate);
    const libc = forged.packages.find((p) => p.name === 'libc6') as { status: string };
    libc.status = 'not_observed';
    expect(validate(forged)).toBe(false);
    const { unattributed_records: _u, ...noCondition } = forged.window;
    expect(validate({ ...structuredClone(predicate), window: noCondition })).toBe(false);
  });
});
