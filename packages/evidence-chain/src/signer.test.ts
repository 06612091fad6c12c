import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { chmodSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyPair, tmp } from '../test/support/fixtures.js';
import { signPayload } from './bundle.js';
import { EvidenceChainError } from './errors.js';
import { ExternalKeySigner, generateKeyPair, keyHintFromPublicKey, LocalKeySigner } from './signer.js';

let t: ReturnType<typeof tmp>;
beforeEach(() => {
  t = tmp();
});
afterEach(() => t.cleanup());

describe('generateKeyPair', () => {
  it('writes a 0600 private key and a 0644 public key and refuses to overwrite', () => {
    const priv = join(t.path, 'k.pem');
    const pub = join(t.path, 'k.pub');
    const { keyHint, publicKeyPem } = generateKeyPair(priv, pub);
    expect(statSync(priv).mode & 0o777).toBe(0o600);
    expect(statSync(pub).mode & 0o777).toBe(0o644);
    expect(keyHint).toBe(keyHintFromPublicKey(publicKeyPem));
    expect(() => generateKeyPair(priv, join(t.path, 'other.pub'))).toThrow(/already exists/);
  });

  it('refuses to write a key through a symlink', () => {
    symlinkSync(join(t.path, 'elsewhere'), join(t.path, 'link.pem'));
    expect(() => generateKeyPair(join(t.path, 'link.pem'), join(t.path, 'x.pub'))).toThrow(
      EvidenceChainError,
    );
  });
});

describe('LocalKeySigner', () => {
  it('signs DER ECDSA P-256 signatures that verify with its public key', async () => {
    const { signer, publicKeyPem } = keyPair(t.path);
    const data = Buffer.from('DSSEv1 some pae bytes');
    const sig = await signer.sign(data);
    expect(verify('sha256', data, { key: createPublicKey(publicKeyPem), dsaEncoding: 'der' }, sig)).toBe(
      true,
    );
    expect(
      verify('sha256', Buffer.from('other'), { key: createPublicKey(publicKeyPem), dsaEncoding: 'der' }, sig),
    ).toBe(false);
    expect(signer.publicKeyPem).toBe(publicKeyPem);
  });

  it('refuses a world-readable key with a chmod hint', () => {
    const { privatePath } = keyPair(t.path);
    chmodSync(privatePath, 0o644);
    const err = catchErr(() => LocalKeySigner.fromPemFile(privatePath));
    expect(err.code).toBe('KEY_ERROR');
    expect(err.message).toContain(`chmod 600 ${privatePath}`);
  });

  it('refuses a non-P-256 key and never echoes key material', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const p = join(t.path, 'p384.pem');
    writeFileSync(p, pem, { mode: 0o600 });
    const err = catchErr(() => LocalKeySigner.fromPemFile(p));
    expect(err.code).toBe('KEY_ERROR');
    expect(err.message).toMatch(/P-256/);
    expect(err.message).not.toContain(pem.split('\n')[1]!.slice(0, 20));
  });

  it('refuses garbage and a missing file with KEY_ERROR', () => {
    const p = join(t.path, 'junk.pem');
    writeFileSync(p, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
    expect(catchErr(() => LocalKeySigner.fromPemFile(p)).code).toBe('KEY_ERROR');
    expect(catchErr(() => LocalKeySigner.fromPemFile(join(t.path, 'none.pem'))).code).toBe('KEY_ERROR');
  });

  it('refuses to read a key through a symlink', () => {
    const { privatePath } = keyPair(t.path);
    const link = join(t.path, 'link.pem');
    symlinkSync(privatePath, link);
    expect(catchErr(() => LocalKeySigner.fromPemFile(link)).code).toBe('KEY_ERROR');
  });
});

describe('ExternalKeySigner (KMS-style)', () => {
  it('is accepted when its signatures verify, rejected at signing when they do not', async () => {
    const good = keyPair(t.path, 'good');
    const other = keyPair(t.path, 'other');
    const ok = new ExternalKeySigner({ publicKeyPem: good.publicKeyPem, sign: (d) => good.signer.sign(d) });
    const bundle = await signPayload(Buffer.from('{}'), ok);
    expect(bundle.verificationMaterial.publicKey?.hint).toBe(good.signer.keyHint);
    expect(bundle.dsseEnvelope.signatures[0]!.keyid).toBe('');
    const lying = new ExternalKeySigner({
      publicKeyPem: good.publicKeyPem,
      sign: (d) => other.signer.sign(d),
    });
    await expect(signPayload(Buffer.from('{}'), lying)).rejects.toMatchObject({ code: 'SIGNING_FAILED' });
  });

  it('rejects a public key that is not P-256', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => new ExternalKeySigner({ publicKeyPem: pem, sign: async () => Buffer.alloc(0) })).toThrow(
      /P-256/,
    );
  });
});

function catchErr(fn: () => unknown): EvidenceChainError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EvidenceChainError);
    return err as EvidenceChainError;
  }
  throw new Error('expected an error');
}
