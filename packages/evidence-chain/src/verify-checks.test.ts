import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPair, record, tmp } from '../test/support/fixtures.js';
import { type BundleJson, signPayload } from './bundle.js';
import type { ChunkPredicate } from './statement.js';
import {
  checkKey,
  checkLink,
  checkSignature,
  checkStatement,
  checkTimes,
  dsseKeyIdOf,
  pinKey,
  type Trust,
} from './verify-checks.js';
import { checkRecords, decodeChunkRecords } from './verify-records.js';

let t: ReturnType<typeof tmp>;
let owner: ReturnType<typeof keyPair>;
let other: ReturnType<typeof keyPair>;
let trust: Trust;
const payload = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}');
beforeAll(() => {
  t = tmp();
  owner = keyPair(t.path, 'owner');
  other = keyPair(t.path, 'other');
  trust = { keys: [pinKey(owner.publicKeyPem)], material: undefined };
});
afterAll(() => t.cleanup());

describe('dsseKeyIdOf (sigstore-go / go-securesystemslib SHA256KeyID)', () => {
  it('is the SSH SHA256 fingerprint of the key, as ssh-keygen computes it', () => {
    const ssh = spawnSync('ssh-keygen', ['-i', '-m', 'PKCS8', '-f', join(t.path, 'owner.pub')], {
      encoding: 'utf8',
    });
    expect(ssh.status, ssh.stderr).toBe(0);
    writeFileSync(join(t.path, 'owner.ssh'), ssh.stdout);
    const fp = spawnSync('ssh-keygen', ['-lf', join(t.path, 'owner.ssh')], { encoding: 'utf8' });
    expect(fp.status, fp.stderr).toBe(0);
    expect(fp.stdout.split(' ')[1]).toBe(dsseKeyIdOf(createPublicKey(owner.publicKeyPem)));
    expect(dsseKeyIdOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)).toBeUndefined();
  });
});

describe('checkKey and checkSignature', () => {
  async function bundle(edit: (b: BundleJson) => void = () => {}): Promise<BundleJson> {
    const b = await signPayload(payload, owner.signer);
    edit(b);
    return b;
  }

  it('accept an empty keyid or the key’s own id, with the pinned key’s hint', async () => {
    for (const keyid of ['', dsseKeyIdOf(createPublicKey(owner.publicKeyPem))!]) {
      const b = await bundle((x) => {
        x.dsseEnvelope.signatures[0]!.keyid = keyid;
      });
      const k = checkKey(b, trust);
      expect(k.ok, k.message).toBe(true);
      expect(checkSignature(b, b.dsseEnvelope.payloadType, payload, trust, k.key).ok).toBe(true);
    }
  });

  it('refuse any other keyid, and a hint that names no pinned key', async () => {
    const badId = await bundle((x) => {
      x.dsseEnvelope.signatures[0]!.keyid = 'owner';
    });
    expect(checkKey(badId, trust)).toMatchObject({
      ok: false,
      message: expect.stringContaining("keyid 'owner'"),
    });
    const badHint = await bundle((x) => {
      x.verificationMaterial.publicKey = { hint: other.signer.keyHint };
    });
    expect(checkKey(badHint, trust)).toMatchObject({
      ok: false,
      message: expect.stringContaining('names no pinned key'),
    });
  });

  it('checkSignature fails a signature by another key even when the bundle names the pinned key', async () => {
    const b = await signPayload(payload, other.signer);
    b.verificationMaterial.publicKey = { hint: owner.signer.keyHint };
    const k = checkKey(b, trust);
    expect(k.ok).toBe(true);
    expect(checkSignature(b, b.dsseEnvelope.payloadType, payload, trust, k.key)).toMatchObject({ ok: false });
  });
});

describe('checkStatement', () => {
  it('names what is wrong with the envelope and statement types', () => {
    expect(checkStatement('text/plain', payload, 'urn:x')).toMatchObject({
      ok: false,
      message: expect.stringMatching(
        /payloadType text\/plain.*predicateType undefined, expected urn:x.*exactly one subject.*no predicate/,
      ),
    });
    expect(checkStatement('application/vnd.in-toto+json', Buffer.from('nope'), 'urn:x').message).toBe(
      'signed payload is not JSON',
    );
  });
});

function predicate(over: Partial<ChunkPredicate> = {}): ChunkPredicate {
  return {
    stream_id: 's',
    chunk_index: 1,
    previous_statement_digest: 'sha256:aa',
    previous_chunk_digest: 'sha256:bb',
    opened_wall_ns: '100',
    opened_mono_ns: '10',
    closed_wall_ns: '200',
    closed_mono_ns: '20',
    first_record_wall_ns: null,
    last_record_wall_ns: null,
    first_record_mono_ns: null,
    last_record_mono_ns: null,
    first_seq: null,
    last_seq: null,
    record_count: '0',
    byte_count: '0',
    record_counts: {},
    collector_status: { probes: [], as_of_wall_ns: null },
    host_id: 'h',
    kernel_release: 'k',
    btf_id: 'b',
    collector_version: 'v',
    filter_config_digest: 'f',
    recovered: false,
    recovery: null,
    ...over,
  };
}

describe('checkLink and checkTimes', () => {
  const prev = {
    statementDigest: 'sha256:aa',
    chunkDigest: 'sha256:bb',
    predicate: predicate({ chunk_index: 0 }),
  };
  it('checkLink names the digest that does not match', () => {
    expect(checkLink(1, predicate(), prev).ok).toBe(true);
    expect(checkLink(1, predicate({ previous_statement_digest: 'sha256:cc' }), prev).message).toMatch(
      /previous_statement_digest sha256:cc is not chunk 0's statement sha256:aa/,
    );
    expect(checkLink(1, predicate(), undefined).message).toMatch(/chunk 0 is missing or invalid/);
    expect(checkLink(0, predicate(), undefined).message).toMatch(/chunk 0 claims a predecessor/);
  });
  it('checkTimes refuses a chunk that closes before it opens, or opens before its predecessor closed', () => {
    expect(checkTimes(1, predicate({ opened_mono_ns: '30', closed_mono_ns: '40' }), prev).ok).toBe(true);
    expect(checkTimes(1, predicate({ closed_wall_ns: '50' }), prev).message).toMatch(/wall clock/);
    expect(checkTimes(1, predicate({ opened_mono_ns: '15', closed_mono_ns: '40' }), prev).message).toMatch(
      /before chunk 0 closed/,
    );
  });
});

describe('decodeChunkRecords and checkRecords', () => {
  it('decode valid lines, note a final status, and name a bad line by number and path', () => {
    const ok = Buffer.from(
      record(0).line + record(1).line + record(2, 'collector_status', { final: true }).line,
    );
    const s = decodeChunkRecords(ok);
    expect(s).toMatchObject({
      recordCount: 3,
      problems: [],
      endsWithFinalStatus: true,
      firstSeq: '0',
      lastSeq: '2',
    });
    const bad = Buffer.from(record(0).line + record(1, 'file_open', { gid: -1 }).line + record(3).line);
    const b = decodeChunkRecords(bad);
    expect(b.problems).toEqual([
      { line: 2, path: '$.gid', code: 'SCHEMA', message: expect.any(String) },
      {
        line: 3,
        path: '$.seq',
        code: 'SEQUENCE',
        message: expect.stringContaining('seq 3 does not follow 1'),
      },
    ]);
    // A rejected line whose seq is still readable: the next, genuine line is not blamed.
    const tampered = decodeChunkRecords(
      Buffer.from(record(0).line + record(1, 'file_open', { gid: -1 }).line + record(2).line),
    );
    expect(tampered.problems.map((x) => `${x.line} ${x.code}`)).toEqual(['2 SCHEMA']);
    // One that is not even JSON: the seq check skips the line after it.
    const garbled = decodeChunkRecords(
      Buffer.from(`${record(0).line}{"seq":\n${record(2).line}${record(3).line}`),
    );
    expect(garbled.problems.map((x) => `${x.line} ${x.code}`)).toEqual(['2 INVALID_JSON']);
    const p = predicate({ record_count: '3', byte_count: String(bad.length) });
    expect(checkRecords(bad, b, p, null)[0]).toMatch(/^line 2 \$\.gid: SCHEMA: /);
    expect(checkRecords(ok, s, predicate(), { chunk: 0, seq: '5' }).join('\n')).toMatch(
      /first seq 0 does not follow chunk 0's last seq 5/,
    );
  });
});
