import * as fsModule from 'node:fs';
import {
  cpSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPair, META, record, tmp } from '../test/support/fixtures.js';
import { type BundleJson, parseBundle, serializeBundle, signPayload } from './bundle.js';
import { bundleName, chunkName, endBundleName } from './layout.js';
import { verifyChain } from './verify.js';
import { openChunkWriter } from './writer.js';

let t: ReturnType<typeof tmp>;
let key: ReturnType<typeof keyPair>;
let attacker: ReturnType<typeof keyPair>;
let golden: string;
let n = 0;
const CHUNKS = 5; // chunks 0-2 stream A, 3-4 stream B

beforeAll(async () => {
  t = tmp();
  key = keyPair(t.path, 'owner');
  attacker = keyPair(t.path, 'attacker');
  golden = join(t.path, 'golden');
  let seq = 0;
  for (const chunksInRun of [3, 2]) {
    const w = await openChunkWriter({ dir: golden, signer: key.signer, meta: META });
    for (let c = 0; c < chunksInRun; c++) {
      for (let i = 0; i < 8; i++) {
        const r = record(seq++, i % 3 === 0 ? 'process_exec' : 'file_open');
        w.append(r.line, r.info);
      }
      if (c < chunksInRun - 1) await w.rotate();
    }
    await w.close();
    seq = 0;
  }
});
afterAll(() => t.cleanup());

/** A fresh copy of the golden chain to tamper with. */
function copy(): string {
  const d = join(t.path, `case-${n++}`);
  cpSync(golden, d, { recursive: true });
  return d;
}

const keys = () => [key.publicKeyPem];

function verifyFails(dir: string, chunkFile: string, check: string, opts: Record<string, unknown> = {}) {
  const report = verifyChain(dir, { keys: keys(), ...opts });
  expect(report.ok).toBe(false);
  const hit = report.errors.find((e) => e.startsWith(`${chunkFile}: ${check}`));
  expect(hit, `expected "${chunkFile}: ${check}" in\n${report.errors.join('\n')}`).toBeDefined();
  const c = report.chunks.find((x) => x.file === chunkFile);
  expect(c?.ok).toBe(false);
  return report;
}

function lines(dir: string, i: number): string[] {
  return readFileSync(join(dir, chunkName(i)), 'utf8').split(/(?<=\n)/);
}

describe('verifyChain on an intact chain', () => {
  it('passes, with every check of every chunk reported', () => {
    const report = verifyChain(golden, { keys: keys(), requireEnd: { expectedChunks: CHUNKS } });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.chunks).toHaveLength(CHUNKS);
    expect(report.streams.map((s) => [s.firstChunk, s.lastChunk, s.end])).toEqual([
      [0, 2, 'stop'],
      [3, 4, 'stop'],
    ]);
    for (const c of report.chunks) {
      const names = c.checks.map((x) => x.name);
      for (const want of [
        'bundle',
        'signature',
        'payload',
        'subject',
        'index',
        'link',
        'times',
        'records',
        'tlog',
      ]) {
        expect(names, c.file).toContain(want);
      }
    }
  });

  it('throws INVALID_OPTION without trust, or with requireTlog but no trusted root', () => {
    expect(() => verifyChain(golden, { keys: [] })).toThrow(/no trust configured/);
    expect(() => verifyChain(golden, { keys: ['not a pem'] })).toThrow(/keys\[0\] is not a PEM public key/);
    expect(() => verifyChain(golden, { keys: keys(), requireTlog: true })).toThrow(
      /requireTlog needs trustedRoot/,
    );
  });
});

describe('tamper matrix: each must fail and name the chunk', () => {
  it('flipping any byte of any chunk fails the subject check of that chunk (property)', () => {
    const dir = copy();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: CHUNKS - 1 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (ci, pos, x) => {
          const p = join(dir, chunkName(ci));
          const orig = readFileSync(p);
          const data = Buffer.from(orig);
          const at = pos % data.length;
          data[at] = data[at]! ^ x;
          writeFileSync(p, data);
          try {
            verifyFails(dir, chunkName(ci), 'subject');
          } finally {
            writeFileSync(p, orig);
          }
        },
      ),
      { numRuns: 60 },
    );
    expect(verifyChain(dir, { keys: keys() }).ok).toBe(true);
  });

  it('inserting a line', () => {
    const dir = copy();
    const ls = lines(dir, 1);
    ls.splice(3, 0, record(999).line);
    writeFileSync(join(dir, chunkName(1)), ls.join(''));
    const r = verifyFails(dir, chunkName(1), 'subject');
    expect(r.errors.join('\n')).toMatch(/chunk-000001.ndjson: records: .*seq/);
  });

  it('deleting a line', () => {
    const dir = copy();
    const ls = lines(dir, 2);
    ls.splice(4, 1);
    writeFileSync(join(dir, chunkName(2)), ls.join(''));
    verifyFails(dir, chunkName(2), 'subject');
  });

  it('reordering two lines', () => {
    const dir = copy();
    const ls = lines(dir, 0);
    [ls[1], ls[2]] = [ls[2]!, ls[1]!];
    writeFileSync(join(dir, chunkName(0)), ls.join(''));
    verifyFails(dir, chunkName(0), 'subject');
  });

  it('deleting a middle chunk', () => {
    const dir = copy();
    unlinkSync(join(dir, chunkName(1)));
    unlinkSync(join(dir, bundleName(1)));
    verifyFails(dir, chunkName(1), 'present');
    verifyFails(dir, chunkName(2), 'link');
  });

  it('deleting the last chunk (its end-of-stream statement left behind)', () => {
    const dir = copy();
    unlinkSync(join(dir, chunkName(4)));
    unlinkSync(join(dir, bundleName(4)));
    verifyFails(dir, chunkName(4), 'present');
  });

  it('deleting the last chunk and its end-of-stream statement, when the verifier demands the end', () => {
    const dir = copy();
    unlinkSync(join(dir, chunkName(4)));
    unlinkSync(join(dir, bundleName(4)));
    unlinkSync(join(dir, endBundleName(4)));
    verifyFails(dir, chunkName(3), 'end-of-stream', { requireEnd: true });
    const r = verifyChain(dir, { keys: keys(), requireEnd: { expectedChunks: CHUNKS } });
    expect(r.ok).toBe(false);
    expect(r.errors).toContain(`chain: expected ${CHUNKS} chunks, found ${CHUNKS - 1}`);
  });

  it('deleting a whole later stream is caught by an expected chunk count', () => {
    const dir = copy();
    for (const i of [3, 4]) {
      unlinkSync(join(dir, chunkName(i)));
      unlinkSync(join(dir, bundleName(i)));
    }
    unlinkSync(join(dir, endBundleName(4)));
    // The remaining prefix is a validly closed chain: only an expected count (or a log) reveals the cut.
    expect(verifyChain(dir, { keys: keys(), requireEnd: true }).ok).toBe(true);
    expect(verifyChain(dir, { keys: keys(), requireEnd: { expectedChunks: CHUNKS } }).ok).toBe(false);
  });

  it('swapping two chunks', () => {
    const dir = copy();
    renameSync(join(dir, chunkName(1)), join(dir, 'tmp'));
    renameSync(join(dir, chunkName(2)), join(dir, chunkName(1)));
    renameSync(join(dir, 'tmp'), join(dir, chunkName(2)));
    verifyFails(dir, chunkName(1), 'subject');
    verifyFails(dir, chunkName(2), 'subject');
  });

  it('swapping two chunks together with their bundles', () => {
    const dir = copy();
    for (const f of [chunkName, bundleName]) {
      renameSync(join(dir, f(1)), join(dir, 'tmp'));
      renameSync(join(dir, f(2)), join(dir, f(1)));
      renameSync(join(dir, 'tmp'), join(dir, f(2)));
    }
    verifyFails(dir, chunkName(1), 'subject');
    verifyFails(dir, chunkName(2), 'index');
  });

  it('re-signing a chunk statement with another key', async () => {
    const dir = copy();
    const b = readBundle(dir, bundleName(2));
    const forged = await signPayload(Buffer.from(b.dsseEnvelope.payload, 'base64'), attacker.signer);
    writeFileSync(join(dir, bundleName(2)), serializeBundle(forged));
    verifyFails(dir, chunkName(2), 'signature');
  });

  it('editing the statement (without and with re-signing)', async () => {
    const dir = copy();
    const b = readBundle(dir, bundleName(3));
    const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
    st.predicate.record_count = '1';
    b.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString('base64');
    writeFileSync(join(dir, bundleName(3)), serializeBundle(b));
    verifyFails(dir, chunkName(3), 'signature');
    const resigned = await signPayload(Buffer.from(JSON.stringify(st)), attacker.signer);
    writeFileSync(join(dir, bundleName(3)), serializeBundle(resigned));
    verifyFails(dir, chunkName(3), 'signature');
  });

  it('replacing a chunk and re-signing the whole chain with another key', async () => {
    const dir = copy();
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.sigstore.json'))) {
      const b = readBundle(dir, f);
      writeFileSync(
        join(dir, f),
        serializeBundle(await signPayload(Buffer.from(b.dsseEnvelope.payload, 'base64'), attacker.signer)),
      );
    }
    const report = verifyChain(dir, { keys: keys() });
    expect(report.ok).toBe(false);
    for (let i = 0; i < CHUNKS; i++) expect(report.errors.join('\n')).toContain(`${chunkName(i)}: signature`);
  });

  it('tampering with an end-of-stream statement', () => {
    const dir = copy();
    const b = readBundle(dir, endBundleName(2));
    const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
    st.predicate.reason = 'stop';
    st.predicate.chunk_count = 9;
    b.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString('base64');
    writeFileSync(join(dir, endBundleName(2)), serializeBundle(b));
    verifyFails(dir, chunkName(2), 'end-of-stream signature');
  });

  it('a statement signed by the trusted key but with a malformed predicate is reported, not thrown', async () => {
    const dir = copy();
    const b = readBundle(dir, bundleName(1));
    const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));
    st.predicate.opened_wall_ns = 'yesterday';
    writeFileSync(
      join(dir, bundleName(1)),
      serializeBundle(await signPayload(Buffer.from(JSON.stringify(st)), key.signer)),
    );
    verifyFails(dir, chunkName(1), 'predicate');
    verifyFails(dir, chunkName(2), 'link');
  });

  it('a chunk replaced by a symlink', () => {
    const dir = copy();
    renameSync(join(dir, chunkName(2)), join(dir, 'elsewhere.ndjson'));
    symlinkSync(join(dir, 'elsewhere.ndjson'), join(dir, chunkName(2)));
    verifyFails(dir, chunkName(2), 'subject');
  });

  it('an end-of-stream statement planted in the middle of a stream', async () => {
    const dir = copy();
    // Chunk 1's stream continues at chunk 2: a (validly signed) end statement at 1 is a lie.
    const src = readBundle(dir, endBundleName(2));
    const st = JSON.parse(Buffer.from(src.dsseEnvelope.payload, 'base64').toString('utf8'));
    const b1 = readBundle(dir, bundleName(1));
    const s1 = JSON.parse(Buffer.from(b1.dsseEnvelope.payload, 'base64').toString('utf8'));
    const { createHash } = await import('node:crypto');
    st.subject = s1.subject;
    st.predicate.last_chunk_index = 1;
    st.predicate.chunk_count = 2;
    st.predicate.last_statement_digest = `sha256:${createHash('sha256').update(Buffer.from(b1.dsseEnvelope.payload, 'base64')).digest('hex')}`;
    writeFileSync(
      join(dir, endBundleName(1)),
      serializeBundle(await signPayload(Buffer.from(JSON.stringify(st)), key.signer)),
    );
    verifyFails(dir, chunkName(2), 'stream');
  });

  it('a huge planted chunk or bundle is rejected by size without being read', () => {
    const dir = copy();
    const { truncateSync } = fsModule;
    truncateSync(join(dir, chunkName(3)), 8 * 1024 * 1024 * 1024);
    verifyFails(dir, chunkName(3), 'subject');
    truncateSync(join(dir, bundleName(4)), 8 * 1024 * 1024 * 1024);
    const r = verifyFails(dir, chunkName(4), 'bundle');
    expect(r.errors.join('\n')).toMatch(/more than any bundle/);
  });

  it('a bundle that is not JSON', () => {
    const dir = copy();
    writeFileSync(join(dir, bundleName(0)), '{ nope');
    verifyFails(dir, chunkName(0), 'bundle');
  });

  it('a removed evidence chunk leaves the chain start broken when chunk 0 is deleted', () => {
    const dir = copy();
    rmSync(join(dir, chunkName(0)));
    rmSync(join(dir, bundleName(0)));
    verifyFails(dir, chunkName(0), 'present');
  });
});

function readBundle(dir: string, name: string): BundleJson {
  return parseBundle(readFileSync(join(dir, name), 'utf8'), name);
}
