/**
 * STAND-IN, NOT FULCIO. Keyless signing needs Fulcio and an OIDC provider,
 * neither of which is reachable here. This loopback HTTP server wraps
 * @sigstore/mock's CA and CT log: it accepts any well-formed JWT (it does
 * NOT verify the token) and issues a real X.509 signing certificate with an
 * embedded SCT, chained to a generated root. Tests only.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fulcioHandler, initializeCA, initializeCTLog } from '@sigstore/mock';

export interface FulcioStandIn {
  url: string;
  /** trusted_root.json members for this CA and its CT log. */
  trust: { certificateAuthorities: unknown[]; ctlogs: unknown[] };
  close(): Promise<void>;
}

export async function startFulcioStandIn(): Promise<FulcioStandIn> {
  const ctKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctlog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctlog);
  const handler = fulcioHandler(ca);
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', async () => {
      if (req.method !== 'POST' || req.url !== handler.path) {
        res.writeHead(404).end();
        return;
      }
      const r = await handler.fn(Buffer.concat(parts).toString('utf8'));
      res.writeHead(r.statusCode, { 'content-type': r.contentType ?? 'text/plain' });
      res.end(typeof r.response === 'string' ? r.response : Buffer.from(r.response as Uint8Array));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ctSpki = ctKeys.publicKey.export({ type: 'spki', format: 'der' });
  return {
    url,
    trust: {
      certificateAuthorities: [
        {
          subject: { organization: 'stand-in', commonName: 'stand-in Fulcio' },
          uri: url,
          certChain: {
            certificates: [{ rawBytes: Buffer.from(ca.rootCertificate as Uint8Array).toString('base64') }],
          },
          validFor: { start: '2000-01-01T00:00:00Z' },
        },
      ],
      ctlogs: [
        {
          baseUrl: url,
          hashAlgorithm: 'SHA2_256',
          publicKey: {
            rawBytes: ctSpki.toString('base64'),
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            validFor: { start: '2000-01-01T00:00:00Z' },
          },
          logId: { keyId: createHash('sha256').update(ctSpki).digest('base64') },
        },
      ],
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * An unsigned JWT with the given claims (the stand-in reads claims, it does
 * not verify); `exp` defaults to ten minutes from now, like a CI job token.
 */
export function fakeOidcToken(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const exp = Math.floor(Date.now() / 1000) + 600;
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ exp, ...claims })}.`;
}
