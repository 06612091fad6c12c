import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The sigstore libraries cost 20-30 MiB of RSS in every collector that
// loads them: signing with a local key and no Rekor never should.
const loaded = () =>
  Object.keys(createRequire(import.meta.url).cache).filter((k) => /[\\/]@sigstore[\\/]/.test(k));

describe('sigstore is loaded only when Fulcio, Rekor or verification asks for it', () => {
  it('importing @stellaops/evidence-chain and signing with a local key loads none; a Rekor witness does', async () => {
    const chain = await import('./index.js');
    const dir = mkdtempSync(join(tmpdir(), 'stella-lazy-'));
    chain.generateKeyPair(join(dir, 'k.pem'), join(dir, 'k.pub.pem'));
    await chain.LocalKeySigner.fromPemFile(join(dir, 'k.pem')).sign(Buffer.from('x'));
    expect(loaded()).toEqual([]);
    new chain.RekorV1Witness({ baseURL: 'http://127.0.0.1:9' });
    expect(loaded().length).toBeGreaterThan(0);
  });
});
