/**
 * Interop: every bundle the chain writes (chunk statements and end-of-stream
 * statements, first run, recovered run) verifies with @sigstore/verify, using
 * only the public key as trust material.
 */
import { createPublicKey } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyHintFromPublicKey, openChunkWriter } from '../src/index.js';
import { keyPair, META, record, tmp } from './support/fixtures.js';

let t: ReturnType<typeof tmp>;
let key: ReturnType<typeof keyPair>;
let dir: string;

beforeAll(async () => {
  t = tmp('stella-interop-');
  key = keyPair(t.path);
  dir = join(t.path, 'ev');
  const w1 = await openChunkWriter({ dir, signer: key.signer, meta: META, rotation: { maxSizeBytes: 1500 } });
  for (let i = 0; i < 30; i++) {
    const r = record(i);
    w1.append(r.line, r.info);
  }
  // Let the background seals finish (a real crash would stop them; here the same process continues).
  while (w1.status().pendingSeals > 0) await new Promise((res) => setTimeout(res, 10));
  // Leave the first run unclosed so the second recovers it (recovered chunk + crash end statement).
  const w2 = await openChunkWriter({ dir, signer: key.signer, meta: META });
  const r = record(0);
  w2.append(r.line, r.info);
  await w2.close();
});
afterAll(() => t.cleanup());

describe('@sigstore/verify interop', () => {
  it('verifies every bundle with the public key as the only trust material', () => {
    const emptyRoot = TrustedRoot.fromJSON({
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [],
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [],
    });
    const pub = createPublicKey(key.publicKeyPem);
    const hint = keyHintFromPublicKey(pub);
    const material = toTrustMaterial(emptyRoot, (h) => {
      if (h !== hint) throw new Error(`unknown key hint ${h}`);
      return { publicKey: pub, validFor: () => true };
    });
    const verifier = new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    const files = readdirSync(dir).filter((f) => f.endsWith('.sigstore.json'));
    expect(files.some((f) => f.endsWith('.end.sigstore.json'))).toBe(true);
    expect(files.length).toBeGreaterThan(4);
    for (const f of files) {
      const bundle = bundleFromJSON(JSON.parse(readFileSync(join(dir, f), 'utf8')));
      expect(() => verifier.verify(toSignedEntity(bundle)), f).not.toThrow();
    }
    // And a bundle whose payload was changed does not.
    const json = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8'));
    json.dsseEnvelope.payload = Buffer.from('{"_type":"x"}').toString('base64');
    expect(() => verifier.verify(toSignedEntity(bundleFromJSON(json)))).toThrow(/signature/i);
  });
});
