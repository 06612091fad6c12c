/**
 * Minimal Rekor v2 (rekor-tiles) client: one POST of a hashedrekord v0.0.2
 * CreateEntryRequest in protobuf-JSON form. Kept apart from the chain logic:
 * the rest of the package never opens a socket.
 */
import { EvidenceChainError } from '../errors.js';

/** What a hashedrekord v0.0.2 entry states. */
export interface HashedRekordRequest {
  /** sha256 of the signed bytes. */
  digest: Buffer;
  signature: Buffer;
  verifier: { publicKey: Buffer } | { x509Certificate: Buffer };
}

/**
 * POST `<baseURL>/api/v2/log/entries`; returns the TransparencyLogEntry in
 * protobuf-JSON form (as a bundle holds it). Throws WITNESS_FAILED with the
 * HTTP status, or the network error, in the message.
 */
export async function createRekorV2Entry(
  baseURL: string,
  timeoutMs: number,
  req: HashedRekordRequest,
): Promise<unknown> {
  const verifier =
    'publicKey' in req.verifier
      ? { publicKey: { rawBytes: req.verifier.publicKey.toString('base64') } }
      : { x509Certificate: { rawBytes: req.verifier.x509Certificate.toString('base64') } };
  const body = {
    hashedRekordRequestV002: {
      digest: req.digest.toString('base64'),
      signature: {
        content: req.signature.toString('base64'),
        verifier: { ...verifier, keyDetails: 'PKIX_ECDSA_P256_SHA_256' },
      },
    },
  };
  const url = `${baseURL}/api/v2/log/entries`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new EvidenceChainError('WITNESS_FAILED', `Rekor v2 at ${url} unreachable (${cause})`, {
      cause: err,
    });
  }
  const text = await res.text();
  if (!res.ok) {
    throw new EvidenceChainError(
      'WITNESS_FAILED',
      `Rekor v2 at ${url} answered ${res.status}: ${text.slice(0, 200)}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new EvidenceChainError('WITNESS_FAILED', `Rekor v2 at ${url} answered non-JSON`);
  }
}
