import { createPublicKey } from 'node:crypto';
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
import { canonicalize } from 'json-canonicalize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPair, META, record, tmp } from '../test/support/fixtures.js';
import { type BundleJson, parseBundle, serializeBundle, signPayload } from './bundle.js';
import { bundleName, chunkName, endBundleName } from './layout.js';
import {
  CHUNK_PREDICATE_TYPE,
  type ChunkPredicate,
  encodeStatement,
  STREAM_END_PREDICATE_TYPE,
  type Statement,
  type StreamEndPredicate,
  sha256Hex,
} from './statement.js';
import { verifyChain } from './verify.js';
import { dsseKeyIdOf } from './verify-checks.js';
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

/**
 * Re-seal chunks `from`.. with the owner's key after their files were edited,
 * as a holder of the key (or a buggy collector) would: new subject digests,
 * byte counts and links, every statement validly signed. Only the content
 * checks can then catch the edit.
 */
async function resealFrom(dir: string, from: number): Promise<void> {
  let prevStatement: string | null = null;
  let prevChunk: string | null = null;
  if (from > 0) {
    const b = readBundle(dir, bundleName(from - 1));
    prevStatement = `sha256:${sha256Hex(Buffer.from(b.dsseEnvelope.payload, 'base64'))}`;
    prevChunk = `sha256:${sha256Hex(readFileSync(join(dir, chunkName(from - 1))))}`;
  }
  for (let i = from; i < CHUNKS; i++) {
    const data = readFileSync(join(dir, chunkName(i)));
    const old = JSON.parse(
      Buffer.from(readBundle(dir, bundleName(i)).dsseEnvelope.payload, 'base64').toString('utf8'),
    ) as Statement<ChunkPredicate>;
    const p: ChunkPredicate = { ...old.predicate, byte_count: String(data.length) };
    if (i > 0 && p.previous_statement_digest !== null) {
      p.previous_statement_digest = prevStatement;
      p.previous_chunk_digest = prevChunk;
    }
    const enc = encodeStatement(chunkName(i), sha256Hex(data), CHUNK_PREDICATE_TYPE, p);
    writeFileSync(join(dir, bundleName(i)), serializeBundle(await signPayload(enc.payload, key.signer)));
    prevStatement = enc.digest;
    prevChunk = `sha256:${sha256Hex(data)}`;
    if (fsModule.existsSync(join(dir, endBundleName(i)))) {
      const e = JSON.parse(
        Buffer.from(readBundle(dir, endBundleName(i)).dsseEnvelope.payload, 'base64').toString('utf8'),
      ) as Statement<StreamEndPredicate>;
      const ep: StreamEndPredicate = { ...e.predicate, last_statement_digest: enc.digest };
      const ee = encodeStatement(chunkName(i), sha256Hex(data), STREAM_END_PREDICATE_TYPE, ep);
      writeFileSync(join(dir, endBundleName(i)), serializeBundle(await signPayload(ee.payload, key.signer)));
    }
  }
}

/** Replace line `n` (1-based) of chunk `i` with `edit(line bytes without newline)`. */
function editLine(dir: string, i: number, n: number, edit: (line: Buffer) => Buffer): void {
  const data = readFileSync(join(dir, chunkName(i)));
  const parts: Buffer[] = [];
  let start = 0;
  let k = 0;
  while (start < data.length) {
    const end = data.indexOf(10, start);
    k++;
    parts.push(k === n ? edit(data.subarray(start, end)) : data.subarray(start, end), Buffer.from('\n'));
    start = end + 1;
  }
  writeFileSync(join(dir, chunkName(i)), Buffer.concat(parts));
}

const asJson = (line: Buffer) => JSON.parse(line.toString('utf8')) as Record<string, unknown>;

describe('records re-sealed with the right key: every line must be what the collector signs', () => {
  const cases: [string, (line: Buffer) => Buffer, RegExp][] = [
    [
      'members out of order',
      (l) => Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(asJson(l)).reverse()))),
      /line 3 \$: NOT_CANONICAL/,
    ],
    [
      'an unknown member',
      (l) => Buffer.from(canonicalize({ ...asJson(l), zz_note: 'added' })),
      /line 3 \$\.zz_note: SCHEMA: unknown member/,
    ],
    [
      'uid above 2^32',
      (l) => Buffer.from(canonicalize({ ...asJson(l), uid: 4294967296 })),
      /line 3 \$\.uid: SCHEMA/,
    ],
    [
      'a non-UTF-8 byte in comm',
      (l) => Buffer.from(l.toString('latin1').replace('"comm":"cat"', '"comm":"c\xffa"'), 'latin1'),
      /line 3 \$\.comm: INVALID_UTF8/,
    ],
    [
      'a duplicated member',
      (l) => Buffer.from(l.toString('utf8').replace('"uid":0', '"uid":0,"uid":0')),
      /line 3 \$: NOT_CANONICAL/,
    ],
  ];
  for (const [what, edit, want] of cases) {
    it(`${what} fails the records check of that chunk, naming the line and the JSON path`, async () => {
      const dir = copy();
      editLine(dir, 1, 3, edit);
      await resealFrom(dir, 1);
      const report = verifyChain(dir, { keys: keys(), requireEnd: { expectedChunks: CHUNKS } });
      expect(report.ok).toBe(false);
      // Signatures, subjects and links all hold: only the records check catches it.
      expect(report.errors).toHaveLength(1);
      expect(report.errors[0]).toMatch(/^chunk-000001\.ndjson: records: /);
      expect(report.errors[0]).toMatch(want);
      const c = report.chunks[1]!;
      expect(c.lineProblems?.[0]).toMatchObject({ line: 3 });
    });
  }

  it('the re-sealing itself leaves an untouched chain verified (the cases above fail on content only)', async () => {
    const dir = copy();
    await resealFrom(dir, 0);
    expect(verifyChain(dir, { keys: keys(), requireEnd: { expectedChunks: CHUNKS } }).errors).toEqual([]);
  });
});

describe('key naming: keyid and publicKey.hint as sigstore-go and sigstore-js read them', () => {
  async function resign(dir: string, i: number, edit: (b: BundleJson) => void): Promise<void> {
    const b = readBundle(dir, bundleName(i));
    const fresh = await signPayload(Buffer.from(b.dsseEnvelope.payload, 'base64'), key.signer);
    edit(fresh);
    writeFileSync(join(dir, bundleName(i)), serializeBundle(fresh));
  }

  it('an empty keyid and the pinned key’s hint verify (what the writer produces)', () => {
    const b = readBundle(golden, bundleName(0));
    expect(b.dsseEnvelope.signatures[0]!.keyid).toBe('');
    expect(b.verificationMaterial.publicKey?.hint).toBe(key.signer.keyHint);
    expect(verifyChain(golden, { keys: keys() }).ok).toBe(true);
  });

  it('a keyid equal to the key’s SHA256 SSH fingerprint (what sigstore-go computes) verifies', async () => {
    const dir = copy();
    const id = dsseKeyIdOf(createPublicKey(key.publicKeyPem))!;
    expect(id).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    await resign(dir, 2, (b) => {
      b.dsseEnvelope.signatures[0]!.keyid = id;
    });
    expect(verifyChain(dir, { keys: keys() }).errors).toEqual([]);
  });

  it('a keyid naming another key fails the key check of that chunk, though the signature is good', async () => {
    const dir = copy();
    await resign(dir, 2, (b) => {
      b.dsseEnvelope.signatures[0]!.keyid = key.signer.keyHint; // not sigstore-go's id for the key
    });
    const r = verifyFails(dir, chunkName(2), 'key');
    expect(r.errors.join('\n')).toMatch(/chunk-000002\.ndjson: key: DSSE keyid '.*' is neither empty nor/);
    expect(r.errors.join('\n')).not.toMatch(/chunk-000002\.ndjson: signature/);
  });

  it('a hint that names no pinned key fails the key check, though the signature is good', async () => {
    const dir = copy();
    await resign(dir, 3, (b) => {
      b.verificationMaterial.publicKey = { hint: attacker.signer.keyHint };
    });
    const r = verifyFails(dir, chunkName(3), 'key');
    expect(r.errors.join('\n')).toMatch(/hint '.*' names no pinned key/);
    // With the other key pinned as well, the hint resolves to it, and its signature check fails.
    const both = verifyChain(dir, { keys: [key.publicKeyPem, attacker.publicKeyPem] });
    expect(both.errors.join('\n')).toMatch(
      /chunk-000003\.ndjson: signature: .*does not verify with the pinned key the bundle names/,
    );
  });
});

describe('completeness: a stream must end with its final collector_status', () => {
  const status = (seq: number, final: boolean) =>
    record(seq, 'collector_status', {
      probes: [
        {
          name: 'file_open',
          attached: true,
          attach_type: 'raw_tp',
          seen: '3',
          filtered: '0',
          deduplicated: '0',
          emitted: '3',
          lost: '0',
        },
      ],
      ...(final ? { final: true } : {}),
    });

  async function chain(lines: ReturnType<typeof record>[]): Promise<string> {
    const dir = join(t.path, `complete-${n++}`);
    const w = await openChunkWriter({ dir, signer: key.signer, meta: META });
    for (const r of lines) w.append(r.line, r.info);
    await w.close();
    return dir;
  }

  it('a stop without a final collector_status is listed as incomplete, and fails under requireComplete', async () => {
    const dir = await chain([record(0), record(1), status(2, false), record(3)]);
    const lax = verifyChain(dir, { keys: keys(), requireEnd: true });
    expect(lax.ok).toBe(true);
    expect(lax.summary.complete).toBe(false);
    expect(lax.streams[0]!.finalStatus).toBe(false);
    expect(lax.incomplete).toEqual([
      expect.stringMatching(
        /^chunk-000000\.ndjson: stream .* was stopped but its last record is not a final collector_status/,
      ),
    ]);
    const strict = verifyChain(dir, { keys: keys(), requireEnd: true, requireComplete: true });
    expect(strict.ok).toBe(false);
    expect(strict.errors).toEqual([expect.stringMatching(/^chunk-000000\.ndjson: complete: /)]);
  });

  it('an end-of-stream statement with collector_status {as_of_wall_ns: null, probes: []} is incomplete', async () => {
    // No status ever reached the writer: the end statement carries empty totals.
    const dir = await chain([record(0), record(1)]);
    const end = JSON.parse(
      Buffer.from(readBundle(dir, endBundleName(0)).dsseEnvelope.payload, 'base64').toString('utf8'),
    ) as Statement<StreamEndPredicate>;
    expect(end.predicate.collector_status).toEqual({ as_of_wall_ns: null, probes: [] });
    const r = verifyChain(dir, { keys: keys(), requireEnd: true, requireComplete: true });
    expect(r.ok).toBe(false);
    expect(r.incomplete[0]).toMatch(/carries no collector totals \(as_of_wall_ns null, no probes\)/);
  });

  it('a stream that ends with its final collector_status is complete', async () => {
    const dir = await chain([record(0), record(1), status(2, true)]);
    const r = verifyChain(dir, { keys: keys(), requireEnd: true, requireComplete: true });
    expect(r.errors).toEqual([]);
    expect(r.summary.complete).toBe(true);
    expect(r.streams[0]).toMatchObject({ end: 'stop', finalStatus: true, incomplete: null });
  });
});
