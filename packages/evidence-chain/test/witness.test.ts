/**
 * Witnesses against the loopback Rekor/TSA STAND-IN (test/support/rekor-standin.ts):
 * real client code, real signatures, proofs and checkpoints; not a real Rekor.
 */
import { createPublicKey } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  bundleName,
  chunkName,
  type EvidenceWriter,
  flushWitnessSpool,
  openChunkWriter,
  RekorV1Witness,
  RekorV2Witness,
  TimestampWitness,
  verifyChain,
  type Witness,
  WitnessSpool,
} from '../src/index.js';
import { keyPair, META, record, tmp } from './support/fixtures.js';
import { type RekorStandIn, startRekorStandIn } from './support/rekor-standin.js';

let t: ReturnType<typeof tmp>;
let key: ReturnType<typeof keyPair>;
let standIn: RekorStandIn;
let root: string;
let n = 0;

beforeAll(async () => {
  t = tmp('stella-witness-');
  key = keyPair(t.path);
  standIn = await startRekorStandIn();
  root = join(t.path, 'trusted_root.json');
  standIn.writeTrustedRoot(root);
});
afterAll(async () => {
  await standIn.close();
  t.cleanup();
});
let dir: string;
beforeEach(() => {
  dir = join(t.path, `ev-${n++}`);
});

async function writeChain(
  witnesses: Witness[],
  chunks = 3,
  witnessTimeoutMs = 5000,
): Promise<EvidenceWriter> {
  const w = await openChunkWriter({ dir, signer: key.signer, meta: META, witnesses });
  let seq = 0;
  for (let c = 0; c < chunks; c++) {
    for (let i = 0; i < 4; i++) {
      const r = record(seq++);
      w.append(r.line, r.info);
    }
    if (c < chunks - 1) await w.rotate();
  }
  await w.close({ witnessTimeoutMs });
  return w;
}

function bundles(d = dir): string[] {
  return readdirSync(d).filter((f) => f.endsWith('.sigstore.json'));
}

// biome-ignore lint/suspicious/noExplicitAny: the tests walk and edit bundle JSON freely
function readJson(f: string): Record<string, any> {
  return JSON.parse(readFileSync(join(dir, f), 'utf8'));
}

/** @sigstore/verify with our public key and the stand-in's trusted root as trust material. */
function sigstoreVerify(file: string, opts: { tlogThreshold: number; timestampThreshold: number }) {
  const tr = TrustedRoot.fromJSON(JSON.parse(readFileSync(root, 'utf8')));
  const tm = toTrustMaterial(tr, (hint) => {
    if (hint !== key.signer.keyHint) throw new Error(`unknown key ${hint}`);
    return { publicKey: createPublicKey(key.publicKeyPem), validFor: () => true };
  });
  new Verifier(tm, { ...opts, ctlogThreshold: 0 }).verify(toSignedEntity(bundleFromJSON(readJson(file))));
}

function failsNaming(opts: Parameters<typeof verifyChain>[1], chunkFile: string, check: string) {
  const r = verifyChain(dir, opts);
  expect(r.ok).toBe(false);
  expect(
    r.errors.find((e) => e.startsWith(`${chunkFile}: ${check}`)),
    r.errors.join('\n'),
  ).toBeDefined();
}

describe('Rekor v1 (dsse entries) through the stand-in', () => {
  it('adds a verifiable entry to every bundle; verify-chain and @sigstore/verify accept it', async () => {
    await writeChain([new RekorV1Witness({ baseURL: standIn.url })]);
    for (const f of bundles()) {
      const b = readJson(f);
      expect(b.verificationMaterial.tlogEntries, f).toHaveLength(1);
      expect(b.verificationMaterial.tlogEntries[0].kindVersion).toEqual({ kind: 'dsse', version: '0.0.1' });
      const body = JSON.parse(
        Buffer.from(b.verificationMaterial.tlogEntries[0].canonicalizedBody, 'base64').toString(),
      );
      expect(Object.keys(body.spec).sort()).toEqual(['envelopeHash', 'payloadHash', 'signatures']);
      sigstoreVerify(f, { tlogThreshold: 1, timestampThreshold: 1 });
    }
    const report = verifyChain(dir, {
      keys: [key.publicKeyPem],
      trustedRoot: root,
      requireTlog: true,
      requireEnd: true,
    });
    expect(report.errors).toEqual([]);
    expect(report.summary.tlogEntries).toBe(bundles().length);
  });

  it('tamper: stripping the log entries fails when the policy requires them, passes when it does not', async () => {
    await writeChain([new RekorV1Witness({ baseURL: standIn.url })]);
    const b = readJson(bundleName(1));
    b.verificationMaterial.tlogEntries = [];
    writeFileSync(join(dir, bundleName(1)), JSON.stringify(b));
    failsNaming({ keys: [key.publicKeyPem], trustedRoot: root, requireTlog: true }, chunkName(1), 'tlog');
    expect(verifyChain(dir, { keys: [key.publicKeyPem], trustedRoot: root }).ok).toBe(true);
  });

  it('tamper: altering integratedTime breaks the SET', async () => {
    await writeChain([new RekorV1Witness({ baseURL: standIn.url })]);
    const b = readJson(bundleName(0));
    const e = b.verificationMaterial.tlogEntries[0];
    e.integratedTime = String(Number(e.integratedTime) - 3600);
    writeFileSync(join(dir, bundleName(0)), JSON.stringify(b));
    failsNaming({ keys: [key.publicKeyPem], trustedRoot: root }, chunkName(0), 'tlog');
  });

  it('tamper: altering the checkpoint root hash breaks the inclusion proof', async () => {
    await writeChain([new RekorV1Witness({ baseURL: standIn.url })]);
    const b = readJson(bundleName(2));
    const e = b.verificationMaterial.tlogEntries[0];
    delete e.inclusionPromise;
    const lines = e.inclusionProof.checkpoint.envelope.split('\n');
    lines[2] = Buffer.alloc(32, 7).toString('base64');
    e.inclusionProof.checkpoint.envelope = lines.join('\n');
    writeFileSync(join(dir, bundleName(2)), JSON.stringify(b));
    failsNaming({ keys: [key.publicKeyPem], trustedRoot: root }, chunkName(2), 'tlog');
  });

  it('tamper: an entry from a log that is not in the trusted root fails', async () => {
    await writeChain([new RekorV1Witness({ baseURL: standIn.url })]);
    const other = await startRekorStandIn();
    try {
      const otherRoot = join(t.path, 'other-root.json');
      other.writeTrustedRoot(otherRoot);
      failsNaming(
        { keys: [key.publicKeyPem], trustedRoot: otherRoot, requireTlog: true },
        chunkName(0),
        'tlog',
      );
    } finally {
      await other.close();
    }
  });

  it('a repeated submission is idempotent (409 → existing entry, no duplicate in the bundle)', async () => {
    await writeChain([new RekorV1Witness({ baseURL: standIn.url })], 1);
    const before = readJson(bundleName(0)).verificationMaterial.tlogEntries;
    const gets = standIn.requests.get;
    const spool = await WitnessSpool.open({
      dir,
      spoolDir: join(dir, '.spool'),
      witnesses: [new RekorV1Witness({ baseURL: standIn.url })],
      publicKeyPem: key.publicKeyPem,
    });
    spool.enqueue(bundleName(0));
    await spool.drain();
    await spool.close(1000);
    expect(standIn.requests.get).toBe(gets + 1);
    expect(readJson(bundleName(0)).verificationMaterial.tlogEntries).toEqual(before);
    expect(spool.pendingCount()).toBe(0);
  });
});

describe('Rekor v2 (hashedrekord over sha256(PAE)) + RFC 3161 timestamps through the stand-in', () => {
  it('adds a v2 entry and a timestamp to every bundle; both verifiers accept them', async () => {
    await writeChain([
      new RekorV2Witness({ baseURL: standIn.url }),
      new TimestampWitness({ baseURL: standIn.url }),
    ]);
    for (const f of bundles()) {
      const vm = readJson(f).verificationMaterial;
      expect(vm.tlogEntries, f).toHaveLength(1);
      expect(vm.tlogEntries[0].kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
      expect(vm.timestampVerificationData.rfc3161Timestamps, f).toHaveLength(1);
      sigstoreVerify(f, { tlogThreshold: 1, timestampThreshold: 1 });
    }
    // Several entries share the stand-in's tree, so later proofs carry sibling hashes.
    const hashes = bundles().map(
      (f) => readJson(f).verificationMaterial.tlogEntries[0].inclusionProof.hashes.length,
    );
    expect(Math.max(...hashes)).toBeGreaterThan(0);
    const report = verifyChain(dir, {
      keys: [key.publicKeyPem],
      trustedRoot: root,
      requireTlog: true,
      requireEnd: true,
    });
    expect(report.errors).toEqual([]);
  });

  it('tamper: altering a proof hash fails and names the chunk', async () => {
    await writeChain([new RekorV2Witness({ baseURL: standIn.url })], 2);
    let target: string | undefined;
    for (const f of [bundleName(0), bundleName(1)]) {
      const b = readJson(f);
      const p = b.verificationMaterial.tlogEntries[0].inclusionProof;
      if (p.hashes.length > 0) {
        const h = Buffer.from(p.hashes[0], 'base64');
        h[0] = h[0]! ^ 1;
        p.hashes[0] = h.toString('base64');
        writeFileSync(join(dir, f), JSON.stringify(b));
        target = f;
        break;
      }
    }
    expect(target).toBeDefined();
    failsNaming(
      { keys: [key.publicKeyPem], trustedRoot: root },
      target!.replace('.sigstore.json', '.ndjson'),
      'tlog',
    );
  });

  it('tamper: a timestamp over another signature fails', async () => {
    await writeChain([new TimestampWitness({ baseURL: standIn.url })], 2);
    const a = readJson(bundleName(0));
    const b = readJson(bundleName(1));
    a.verificationMaterial.timestampVerificationData = b.verificationMaterial.timestampVerificationData;
    writeFileSync(join(dir, bundleName(0)), JSON.stringify(a));
    failsNaming({ keys: [key.publicKeyPem], trustedRoot: root }, chunkName(0), 'tlog');
  });
});

describe('witness spool', () => {
  it('seals while the log is down, keeps submissions pending on disk, and completes them when it is back', async () => {
    await standIn.down();
    const errors: string[] = [];
    let w: EvidenceWriter;
    try {
      w = await openChunkWriter({
        dir,
        signer: key.signer,
        meta: META,
        witnesses: [new RekorV1Witness({ baseURL: standIn.url, timeoutMs: 500 })],
      });
      w.on('witness-error', (e) => errors.push(e.error));
      for (let i = 0; i < 3; i++) {
        const r = record(i);
        w.append(r.line, r.info);
      }
      await w.rotate();
      await new Promise((r) => setTimeout(r, 300));
      expect(w.status().pendingSubmissions).toBeGreaterThan(0);
      await w.close({ witnessTimeoutMs: 300 });
    } finally {
      await standIn.up();
    }
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/ECONNREFUSED|tlog|fetch/i);
    const pending = readdirSync(join(dir, '.spool')).filter((f) => f.endsWith('.pending.json'));
    expect(pending.length).toBeGreaterThanOrEqual(2); // chunk 0 + end-of-stream (+ the empty-stream chunk, if any)
    // Sealed and verifiable without the log; not acceptable where the policy demands it.
    expect(verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true }).ok).toBe(true);
    expect(verifyChain(dir, { keys: [key.publicKeyPem], trustedRoot: root, requireTlog: true }).ok).toBe(
      false,
    );

    // The log is back: the next run's spool drains what the last one left.
    const w2 = await openChunkWriter({
      dir,
      signer: key.signer,
      meta: META,
      witnesses: [new RekorV1Witness({ baseURL: standIn.url })],
    });
    const r = record(0);
    w2.append(r.line, r.info);
    await w2.close({ witnessTimeoutMs: 5000 });
    expect(readdirSync(join(dir, '.spool')).filter((f) => f.endsWith('.pending.json'))).toEqual([]);
    const report = verifyChain(dir, {
      keys: [key.publicKeyPem],
      trustedRoot: root,
      requireTlog: true,
      requireEnd: true,
    });
    expect(report.errors).toEqual([]);
  });

  it('an outage is reported once when spooling starts and once when the log answers again; status names it', async () => {
    const rekor = new RekorV1Witness({ baseURL: standIn.url, timeoutMs: 500 });
    const outages: Array<{ witness: string; since: string; pending: number; lastError: string }> = [];
    const recovered: Array<{ witness: string; pending: number }> = [];
    await standIn.down();
    let isDown = true;
    let w: EvidenceWriter | undefined;
    try {
      w = await openChunkWriter({ dir, signer: key.signer, meta: META, witnesses: [rekor] });
      w.on('witness-outage', (e) => outages.push(e));
      w.on('witness-recovered', (e) => recovered.push(e));
      let seq = 0;
      for (let c = 0; c < 3; c++) {
        const r = record(seq++);
        w.append(r.line, r.info);
        await w.rotate();
      }
      await until(() => w!.status().witnessOutages.length > 0, 'the outage');
      // Three failed submissions (at least), one outage.
      await until(() => w!.status().pendingSubmissions >= 3, 'three pending submissions');
      expect(outages).toHaveLength(1);
      expect(outages[0]).toMatchObject({
        witness: rekor.name,
        lastError: expect.stringMatching(/ECONNREFUSED|fetch/i),
      });
      expect(w.status().witnessOutages).toEqual([
        { witness: rekor.name, since: expect.any(String), lastError: expect.any(String) },
      ]);
      await standIn.up();
      isDown = false;
      // The next seal goes through at once: the log is back.
      const r = record(seq++);
      w.append(r.line, r.info);
      await w.rotate();
      await until(() => recovered.length > 0, 'the recovery');
      expect(recovered).toEqual([
        { witness: rekor.name, since: outages[0]!.since, pending: expect.any(Number) },
      ]);
      expect(w.status().witnessOutages).toEqual([]);
      expect(outages).toHaveLength(1);
    } finally {
      if (isDown) await standIn.up();
      await w?.close({ witnessTimeoutMs: 5000 });
    }
  });

  it('flushWitnessSpool submits what a run left pending and reports what was logged; refuses a directory that does not exist', async () => {
    await standIn.down();
    try {
      await writeChain([new RekorV1Witness({ baseURL: standIn.url, timeoutMs: 500 })], 2, 300);
      const left = readdirSync(join(dir, '.spool')).filter((f) => f.endsWith('.pending.json')).length;
      expect(left).toBeGreaterThanOrEqual(3); // 2 chunks + the end-of-stream statement

      // Still down: everything fails once more and stays pending.
      const down = await flushWitnessSpool({
        dir,
        witnesses: [new RekorV1Witness({ baseURL: standIn.url, timeoutMs: 500 })],
        publicKeyPem: key.publicKeyPem,
      });
      expect(down.logged).toEqual([]);
      expect(down.failed).toHaveLength(left);
      expect(down.pending).toBe(left);
    } finally {
      await standIn.up();
    }
    // An entry for a witness that is not given stays as it is.
    const other = new RekorV1Witness({ baseURL: 'http://127.0.0.1:9' });
    const up = await flushWitnessSpool({
      dir,
      witnesses: [new RekorV1Witness({ baseURL: standIn.url })],
      publicKeyPem: key.publicKeyPem,
    });
    expect(up.failed).toEqual([]);
    expect(up.skipped).toEqual([]);
    expect(up.logged.map((e) => e.bundleFile).sort()).toEqual(bundles().sort());
    expect(up.pending).toBe(0);
    const report = verifyChain(dir, {
      keys: [key.publicKeyPem],
      trustedRoot: root,
      requireTlog: true,
      requireEnd: true,
    });
    expect(report.errors).toEqual([]);
    expect(report.summary.tlogEntries).toBe(bundles().length);

    await expect(flushWitnessSpool({ dir: join(dir, 'absent'), witnesses: [other] })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      hint: expect.stringContaining('--target'),
    });
  });
});

/** Wait until `cond()` holds, checking every 20 ms (a generous limit, not a timing assumption). */
async function until(cond: () => boolean, what: string, limitMs = 60_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
