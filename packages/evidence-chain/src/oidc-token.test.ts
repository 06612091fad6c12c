import { describe, expect, it } from 'vitest';
import { checkIdentityToken } from './oidc-token.js';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const NOW = Date.parse('2026-12-02T05:00:00Z');
const jwt = (claims: Record<string, unknown>, header: unknown = { alg: 'RS256', typ: 'JWT' }) =>
  `${b64(header)}.${b64(claims)}.c2ln`;
const good = {
  iss: 'https://token.actions.githubusercontent.com',
  aud: 'sigstore',
  sub: 'repo:x',
  exp: NOW / 1000 + 300,
};

describe('checkIdentityToken: an OIDC token checked offline before keyless signing', () => {
  it('returns the claims of a well-formed token that has not expired', () => {
    expect(checkIdentityToken(jwt(good), { now: NOW })).toEqual(good);
    expect(checkIdentityToken(jwt({ ...good, aud: ['sigstore', 'x'] }), { now: NOW }).aud).toEqual([
      'sigstore',
      'x',
    ]);
  });

  it.each([
    ['', 'SIGSTORE_ID_TOKEN: is empty'],
    [
      'abc.def',
      'SIGSTORE_ID_TOKEN: is not a JWT: it has 2 dot-separated parts, a JWT has 3 (header.payload.signature)',
    ],
    [`Bearer ${jwt(good)}`, 'SIGSTORE_ID_TOKEN: the JWT header is not base64url'],
    [`${b64('x')}.${b64(good)}.s`, 'SIGSTORE_ID_TOKEN: the JWT header is not a JSON object'],
    [`${b64({ alg: 'RS256' })}.e30x.s`, 'SIGSTORE_ID_TOKEN: the JWT payload is not JSON'],
    [jwt(good, { typ: 'JWT' }), 'SIGSTORE_ID_TOKEN: the JWT header has no "alg"'],
    [jwt({ ...good, iss: undefined }), 'SIGSTORE_ID_TOKEN: has no issuer ("iss" claim)'],
    [jwt({ ...good, aud: [] }), 'SIGSTORE_ID_TOKEN: has no audience ("aud" claim)'],
    [jwt({ ...good, exp: '1' }), 'SIGSTORE_ID_TOKEN: has no expiry ("exp" claim)'],
    [
      jwt({ ...good, exp: NOW / 1000 - 7200 }),
      'SIGSTORE_ID_TOKEN: expired at 2026-12-02T03:00:00.000Z (120 minutes ago)',
    ],
    [
      jwt({ ...good, nbf: NOW / 1000 + 3600 }),
      'SIGSTORE_ID_TOKEN: is not valid before 2026-12-02T06:00:00.000Z',
    ],
  ])('%j is refused: %s', (token, message) => {
    let err: unknown;
    try {
      checkIdentityToken(token, { now: NOW, source: 'SIGSTORE_ID_TOKEN' });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'EvidenceChainError', code: 'TOKEN_INVALID', message });
    expect((err as { hint?: string }).hint).toBeTruthy();
  });

  it('a token that expires exactly now is expired', () => {
    expect(() => checkIdentityToken(jwt({ ...good, exp: NOW / 1000 }), { now: NOW })).toThrow(/expired/);
  });
});
