import { describe, expect, it } from 'vitest';
import * as api from './index.js';

describe('public surface of @stellaops/evidence-chain', () => {
  it('exports exactly these runtime names (a rename must be deliberate)', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'BUNDLE_MEDIA_TYPE',
        'CHUNK_PREDICATE_TYPE',
        'EvidenceChainError',
        'EvidenceWriter',
        'ExternalKeySigner',
        'FulcioSigner',
        'IN_TOTO_PAYLOAD_TYPE',
        'IN_TOTO_STATEMENT_TYPE',
        'LocalKeySigner',
        'RekorV1Witness',
        'RekorV2Witness',
        'STREAM_END_PREDICATE_TYPE',
        'TimestampWitness',
        'WitnessSpool',
        'bundleName',
        'checkIdentityToken',
        'chunkName',
        'dsseKeyIdOf',
        'dssePae',
        'endBundleName',
        'flushWitnessSpool',
        'ensureEvidenceDir',
        'generateKeyPair',
        'keyHintFromPublicKey',
        'makeDirectories',
        'mergeMaterial',
        'openChunkWriter',
        'planDirectories',
        'signInTotoPayload',
        'recoverDirectory',
        'verifyChain',
      ].sort(),
    );
  });

  it('names the predicate types and file layout other packages rely on', () => {
    expect(api.CHUNK_PREDICATE_TYPE).toBe('https://stellaops.dev/attestations/runtime-evidence-chunk/v1');
    expect(api.STREAM_END_PREDICATE_TYPE).toBe(
      'https://stellaops.dev/attestations/runtime-evidence-stream-end/v1',
    );
    expect(api.IN_TOTO_PAYLOAD_TYPE).toBe('application/vnd.in-toto+json');
    expect(api.chunkName(7)).toBe('chunk-000007.ndjson');
    expect(api.bundleName(1234567)).toBe('chunk-1234567.sigstore.json');
    expect(api.endBundleName(0)).toBe('chunk-000000.end.sigstore.json');
  });

  it('errors carry a code and their class name', () => {
    const e = new api.EvidenceChainError('DISK_FULL', 'x');
    expect(e.name).toBe('EvidenceChainError');
    expect(e.code).toBe('DISK_FULL');
  });

  it('DSSE PAE matches the DSSE v1 specification example layout', () => {
    expect(api.dssePae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });
});
