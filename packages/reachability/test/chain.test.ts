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
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, buildRootfs, exec, IMAGE, open, sha256, status } from './support/fixtures.js';

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
