import { EvidenceChainError } from './errors.js';

/** The claims of an OIDC identity token that keyless signing relies on. */
export interface IdentityTokenClaims {
  /** Issuer URL: the identity provider Fulcio must trust. */
  iss: string;
  /** Audience(s); Fulcio expects "sigstore". */
  aud: string | string[];
  /** Subject, when present. */
  sub?: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

/** Options of {@link checkIdentityToken}. */
export interface CheckIdentityTokenOptions {
  /** Current time, ms since the epoch (default `Date.now()`). */
  now?: number;
  /** Where the token came from, for messages ("SIGSTORE_ID_TOKEN"); default "the OIDC token". */
  source?: string;
}

/** Clock skew tolerated for `nbf` (a token issued a moment ago by a host whose clock is ahead). */
const SKEW_MS = 60_000;

function fail(source: string, what: string, hint: string): never {
  throw new EvidenceChainError('TOKEN_INVALID', `${source}: ${what}`, { hint });
}

function part(source: string, text: string, name: 'header' | 'payload'): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(text)) {
    fail(source, `the JWT ${name} is not base64url`, 'the token was cut or altered: copy it whole');
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    fail(source, `the JWT ${name} is not JSON`, 'the token was cut or altered: copy it whole');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    fail(source, `the JWT ${name} is not a JSON object`, 'the token was cut or altered: copy it whole');
  }
  return v as Record<string, unknown>;
}

/**
 * Check, offline, that `token` can be an OIDC identity token for keyless
 * signing: a JWT of three dot-separated base64url parts whose header and
 * payload are JSON objects, with an `alg`, an issuer (`iss`), an audience
 * (`aud`) and an expiry (`exp`) still in the future (and `nbf`, if present,
 * already past). Its signature is not verified here (Fulcio does that).
 * Returns the claims; throws EvidenceChainError `TOKEN_INVALID` with a hint,
 * never quoting the token itself.
 */
export function checkIdentityToken(
  token: string,
  options: CheckIdentityTokenOptions = {},
): IdentityTokenClaims {
  const source = options.source ?? 'the OIDC token';
  const now = options.now ?? Date.now();
  const fresh =
    'get a fresh identity token from your OIDC provider (in CI, the job token for audience "sigstore")';
  if (typeof token !== 'string' || token.trim() === '') fail(source, 'is empty', fresh);
  const parts = token.trim().split('.');
  if (parts.length !== 3) {
    fail(
      source,
      `is not a JWT: it has ${parts.length} dot-separated part${parts.length === 1 ? '' : 's'}, a JWT has 3 (header.payload.signature)`,
      'give the identity token itself (eyJ...), not a file name, an access token or a header line',
    );
  }
  const header = part(source, parts[0]!, 'header');
  const claims = part(source, parts[1]!, 'payload');
  if (typeof header.alg !== 'string') fail(source, 'the JWT header has no "alg"', fresh);
  if (typeof claims.iss !== 'string' || claims.iss === '') {
    fail(source, 'has no issuer ("iss" claim)', fresh);
  }
  const aud = claims.aud;
  const audOk =
    (typeof aud === 'string' && aud !== '') ||
    (Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string' && a !== ''));
  if (!audOk) fail(source, 'has no audience ("aud" claim)', fresh);
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) {
    fail(source, 'has no expiry ("exp" claim)', fresh);
  }
  const exp = claims.exp as number;
  if (exp * 1000 <= now) {
    const ago = Math.round((now - exp * 1000) / 60_000);
    fail(
      source,
      `expired at ${new Date(exp * 1000).toISOString()} (${ago < 1 ? 'less than a minute' : `${ago} minute${ago === 1 ? '' : 's'}`} ago)`,
      fresh,
    );
  }
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now + SKEW_MS) {
    fail(
      source,
      `is not valid before ${new Date(claims.nbf * 1000).toISOString()}`,
      "check this host's clock (timedatectl), or wait until then",
    );
  }
  return {
    iss: claims.iss as string,
    aud: aud as string | string[],
    ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
    exp,
  };
}
