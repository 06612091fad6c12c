/**
 * Keyless signing, tested offline against loopback STAND-INS for Fulcio and
 * Rekor (test/support): what is tested is our FulcioSigner → @sigstore/sign
 * flow, the certificate bundle shape, and verify-chain's certificate path with
 * a trusted root. A real Fulcio, a real OIDC provider and the public-good
 * trust root are NOT exercised (no network here).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleName, FulcioSigner, openChunkWriter, RekorV1Witness, verifyChain } from '../src/index.js';
import { keyPair, META, record, tmp } from './support/fixtures.js';
import { type FulcioStandIn, fakeOidcToken, startFulcioStandIn } from './support/fulcio-standin.js';
import { type RekorStandIn, startRekorStandIn } from './support/rekor-standin.js';

let t: ReturnType<typeof tmp>;
let fulcio: FulcioStandIn;
let rekor: RekorStandIn;
let root: string;
beforeAll(async () => {
  t = tmp('stella-fulcio-');
  fulcio = await startFulcioStandIn();
  rekor = await startRekorStandIn();
  root = join(t.path, 'trusted_root.json');
  rekor.writeTrustedRoot(root, fulcio.trust);
});
afterAll(async () => {
  await fulcio.close();
  await rekor.close();
  t.cleanup();
});

describe('FulcioSigner (keyless) against loopback stand-ins', () => {
  it('seals certificate bundles that verify against the trusted root once a log entry gives them a time', async () => {
    const dir = join(t.path, 'ev');
    const token = fakeOidcToken({
      sub: 'collector@example.com',
      iss: 'https://oidc.example.com',
      aud: 'sigstore',
    });
    const signer = new FulcioSigner({ fulcioBaseURL: fulcio.url, getToken: async () => token });
    const w = await openChunkWriter({
      dir,
      signer,
      meta: META,
      witnesses: [new RekorV1Witness({ baseURL: rekor.url })],
    });
    for (let i = 0; i < 5; i++) {
      const r = record(i);
      w.append(r.line, r.info);
    }
    await w.close({ witnessTimeoutMs: 5000 });
    const b = JSON.parse(readFileSync(join(dir, bundleName(0)), 'utf8'));
    expect(b.verificationMaterial.certificate.rawBytes).toBeTruthy();
    expect(b.verificationMaterial.publicKey).toBeUndefined();
    expect(b.dsseEnvelope.signatures[0].keyid).toBe('');
    expect(b.verificationMaterial.tlogEntries).toHaveLength(1);
    const report = verifyChain(dir, { keys: [], trustedRoot: root, requireTlog: true, requireEnd: true });
    expect(report.errors).toEqual([]);
    // Without the CA in the trust root the same bundles are rejected.
    const bare = join(t.path, 'root-without-ca.json');
    rekor.writeTrustedRoot(bare);
    const other = keyPair(t.path, 'unrelated');
    const r2 = verifyChain(dir, { keys: [other.publicKeyPem], trustedRoot: bare });
    expect(r2.ok).toBe(false);
    expect(r2.errors[0]).toMatch(/chunk-000000.ndjson: signature: keyless signature rejected/);
  });

  it('reports an unreachable Fulcio as SIGNING_FAILED without echoing the token', async () => {
    const secret = fakeOidcToken({ sub: 'x', iss: 'https://oidc.example.com', aud: 'sigstore' });
    const signer = new FulcioSigner({
      fulcioBaseURL: 'http://127.0.0.1:9',
      getToken: async () => secret,
      timeout: 500,
    });
    const err = await signer.sign(Buffer.from('x')).catch((e) => e);
    expect(err).toMatchObject({ code: 'SIGNING_FAILED' });
    expect(String(err.message)).not.toContain(secret);
  });

  it.each([
    [
      'expired',
      fakeOidcToken({ iss: 'https://oidc.example.com', aud: 'sigstore', exp: 1_600_000_000 }),
      /expired at 2020-09-13T12:26:40.000Z/,
    ],
    ['malformed', 'not-a-jwt', /is not a JWT: it has 1 dot-separated part, a JWT has 3/],
    ['without an audience', fakeOidcToken({ iss: 'https://oidc.example.com' }), /has no audience/],
  ])(
    'names an %s token as TOKEN_INVALID before any request, without echoing it',
    async (_what, token, message) => {
      // Fulcio is the stand-in: a request would succeed, so only the offline check can refuse.
      const signer = new FulcioSigner({ fulcioBaseURL: fulcio.url, getToken: async () => token });
      const err = await signer.sign(Buffer.from('x')).catch((e) => e);
      expect(err).toMatchObject({ code: 'TOKEN_INVALID' });
      expect(err.message).toMatch(message);
      expect(err.hint).toBeTruthy();
      expect(String(err.message)).not.toContain(token);
    },
  );
});
