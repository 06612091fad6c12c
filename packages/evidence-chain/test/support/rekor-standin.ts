/**
 * STAND-IN, NOT REKOR. No real Rekor (or TSA) server can run on this machine
 * (no network, no Go toolchain/container images), so the witness tests talk
 * over real loopback HTTP to this stand-in. It exists only for tests.
 *
 * What is real: the HTTP client code under test (@sigstore/sign's
 * RekorWitness / TSAWitness and our Rekor v2 client), and the cryptography:
 * - Rekor v1: entries go through @sigstore/mock's `initializeTLog`, so the
 *   signed entry timestamp (SET), inclusion proof and signed checkpoint are
 *   real ECDSA signatures over what Rekor signs. Like real Rekor, a `dsse`
 *   proposal is stored in its canonical body form (`envelopeHash`,
 *   `payloadHash`, `signatures[{signature, verifier}]`), and an identical
 *   second submission gets 409 + Location, which GET resolves.
 * - Rekor v2: a real RFC 6962 Merkle tree over canonicalized hashedrekord
 *   v0.0.2 entry bodies, inclusion proofs with sibling hashes, and a signed
 *   checkpoint note.
 * - TSA: @sigstore/mock's `initializeTSA` (real RFC 3161 responses signed by
 *   a generated CA chain).
 * What is not: persistence, sharding, rate limits, the rest of the Rekor API.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initializeTLog, initializeTSA, tsaHandler } from '@sigstore/mock';
import { canonicalize } from 'json-canonicalize';

type TLog = Awaited<ReturnType<typeof initializeTLog>>;
type TSA = Awaited<ReturnType<typeof initializeTSA>>;

/** A running stand-in: URL, trust material, and switches for tests. */
export interface RekorStandIn {
  url: string;
  /** Entries the v1 endpoint accepted (canonical bodies). */
  v1Bodies: () => string[];
  /** Number of POSTs seen on each endpoint (including rejected ones). */
  requests: { v1: number; v2: number; tsa: number; get: number };
  /** Write a trusted_root.json holding this log's key and TSA chain (plus extra CAs / CT logs). */
  writeTrustedRoot(path: string, extra?: { certificateAuthorities?: unknown[]; ctlogs?: unknown[] }): void;
  /** Close the listening socket (connections are refused) / listen again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

function keyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

/** Start the stand-in on 127.0.0.1 (random port). */
export async function startRekorStandIn(): Promise<RekorStandIn> {
  const logKeys = keyPair();
  const spki = logKeys.publicKey.export({ type: 'spki', format: 'der' });
  const logId = createHash('sha256').update(spki).digest();
  const tsaKeys = keyPair();
  let server: Server = createServer();
  let port = 0;
  let tlog: TLog | undefined;
  let tsa: TSA | undefined;
  const v1ByUuid = new Map<string, unknown>();
  const v1ByBody = new Map<string, string>();
  const v2Leaves: Buffer[] = [];
  const requests = { v1: 0, v2: 0, tsa: 0, get: 0 };

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    const url = req.url ?? '';
    const host = `127.0.0.1:${port}`;
    try {
      if (req.method === 'POST' && url === '/api/v1/log/entries') {
        requests.v1++;
        const proposed = JSON.parse(body.toString('utf8'));
        const canonical = toCanonicalV1Body(proposed);
        const key = canonicalize(canonical);
        const existing = v1ByBody.get(key);
        if (existing) {
          return send(
            res,
            409,
            {
              code: 409,
              message: 'An equivalent entry already exists in the transparency log with UUID ' + existing,
            },
            {
              location: `/api/v1/log/entries/${existing}`,
            },
          );
        }
        const entry = (await tlog!.log(canonical as object)) as Record<string, unknown>;
        const uuid = Object.keys(entry)[0]!;
        v1ByUuid.set(uuid, entry);
        v1ByBody.set(key, uuid);
        return send(res, 201, entry);
      }
      if (req.method === 'GET' && url.startsWith('/api/v1/log/entries/')) {
        requests.get++;
        const e = v1ByUuid.get(url.slice('/api/v1/log/entries/'.length));
        return e ? send(res, 200, e) : send(res, 404, { code: 404, message: 'not found' });
      }
      if (req.method === 'POST' && url === '/api/v2/log/entries') {
        requests.v2++;
        const r = JSON.parse(body.toString('utf8'));
        const h = r.hashedRekordRequestV002;
        if (!h?.digest || !h.signature?.content || !h.signature.verifier) {
          return send(res, 400, { code: 400, message: 'only hashedRekordRequestV002 is supported' });
        }
        const entryBody = Buffer.from(
          canonicalize({
            apiVersion: '0.0.2',
            kind: 'hashedrekord',
            spec: {
              hashedRekordV002: {
                data: { algorithm: 'SHA2_256', digest: h.digest },
                signature: { content: h.signature.content, verifier: h.signature.verifier },
              },
            },
          }),
        );
        const index = v2Leaves.length;
        v2Leaves.push(leafHash(entryBody));
        const size = v2Leaves.length;
        const root = merkleRoot(v2Leaves, 0, size);
        const proof = inclusionProof(v2Leaves, index, size);
        const checkpoint = signedNote(host, size, root, logKeys.privateKey, logId);
        return send(res, 201, {
          logIndex: String(index),
          logId: { keyId: logId.toString('base64') },
          kindVersion: { kind: 'hashedrekord', version: '0.0.2' },
          integratedTime: '0',
          inclusionProof: {
            logIndex: String(index),
            rootHash: root.toString('base64'),
            treeSize: String(size),
            hashes: proof.map((x) => x.toString('base64')),
            checkpoint: { envelope: checkpoint },
          },
          canonicalizedBody: entryBody.toString('base64'),
        });
      }
      if (req.method === 'POST' && url === '/api/v1/timestamp') {
        requests.tsa++;
        const r = await tsaHandler(tsa!).fn(body.toString('utf8'));
        res.writeHead(r.statusCode, { 'content-type': r.contentType ?? 'text/plain' });
        return res.end(Buffer.from(r.response as Uint8Array));
      }
      return send(res, 404, { code: 404, message: `stand-in has no ${req.method} ${url}` });
    } catch (err) {
      return send(res, 400, { code: 400, message: (err as Error).message });
    }
  };

  const listen = (p: number) =>
    new Promise<void>((resolve, reject) => {
      server = createServer((req, res) => void handler(req, res));
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => {
        port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  await listen(0);
  const url = `http://127.0.0.1:${port}`;
  tlog = await initializeTLog(url, logKeys);
  // Whole seconds: @sigstore/mock stamps the current time with milliseconds,
  // which asn1js encodes with trailing zeros trimmed (".5Z"), and
  // @sigstore/core only parses three fractional digits: about one timestamp
  // in ten would not parse. A fixed, whole-second clock avoids that. It is
  // set a few seconds ahead: the mock's certificates are valid from the
  // moment they are made (after this argument is computed), and a stamp from
  // before its certificate's notBefore does not verify (a flake whenever the
  // certificates were made in the next second).
  tsa = await initializeTSA(tsaKeys, new Date(Math.ceil(Date.now() / 1000) * 1000 + 5000));

  const closeServer = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });

  return {
    url,
    requests,
    v1Bodies: () => [...v1ByBody.keys()],
    writeTrustedRoot(path: string, extra = {}) {
      const t = tsa!;
      writeFileSync(
        path,
        JSON.stringify({
          mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
          tlogs: [
            {
              baseUrl: url,
              hashAlgorithm: 'SHA2_256',
              publicKey: {
                rawBytes: spki.toString('base64'),
                keyDetails: 'PKIX_ECDSA_P256_SHA_256',
                validFor: { start: '2000-01-01T00:00:00Z' },
              },
              logId: { keyId: logId.toString('base64') },
            },
          ],
          certificateAuthorities: extra.certificateAuthorities ?? [],
          ctlogs: extra.ctlogs ?? [],
          timestampAuthorities: [
            {
              subject: { organization: 'stand-in', commonName: 'stand-in TSA' },
              uri: url,
              certChain: {
                certificates: [
                  { rawBytes: Buffer.from(t.intCertificate as Uint8Array).toString('base64') },
                  { rawBytes: Buffer.from(t.rootCertificate as Uint8Array).toString('base64') },
                ],
              },
              validFor: { start: '2000-01-01T00:00:00Z' },
            },
          ],
        }),
      );
    },
    down: closeServer,
    up: () => listen(port),
    close: closeServer,
  };
}

/** Rekor's canonical body for a proposed dsse v0.0.1 entry (what the log stores and signs). */
function toCanonicalV1Body(p: {
  kind?: string;
  apiVersion?: string;
  spec?: Record<string, unknown>;
}): unknown {
  if (p.kind !== 'dsse' || p.apiVersion !== '0.0.1')
    throw new Error(`stand-in accepts dsse 0.0.1 only, got ${p.kind}`);
  const pc = (p.spec as { proposedContent?: { envelope: string; verifiers: string[] } }).proposedContent;
  if (!pc) throw new Error('missing proposedContent');
  const env = JSON.parse(pc.envelope) as { payload: string; signatures: { sig: string }[] };
  const verifier = pc.verifiers[0];
  if (!verifier || env.signatures.length !== 1)
    throw new Error('need exactly one signature and one verifier');
  return {
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: createHash('sha256').update(pc.envelope).digest('hex') },
      payloadHash: {
        algorithm: 'sha256',
        value: createHash('sha256').update(Buffer.from(env.payload, 'base64')).digest('hex'),
      },
      signatures: [{ signature: env.signatures[0]!.sig, verifier }],
    },
  };
}

function leafHash(body: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(body)
    .digest();
}
function nodeHash(l: Buffer, r: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(l)
    .update(r)
    .digest();
}
/** RFC 6962 Merkle tree hash of leaves[lo, hi). */
function merkleRoot(leaves: Buffer[], lo: number, hi: number): Buffer {
  const n = hi - lo;
  if (n === 1) return leaves[lo]!;
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(merkleRoot(leaves, lo, lo + k), merkleRoot(leaves, lo + k, hi));
}
/** RFC 6962 audit path for leaf m in a tree of n leaves (bottom-up). */
function inclusionProof(leaves: Buffer[], m: number, n: number, lo = 0): Buffer[] {
  if (n === 1) return [];
  let k = 1;
  while (k * 2 < n) k *= 2;
  if (m < k) return [...inclusionProof(leaves, m, k, lo), merkleRoot(leaves, lo + k, lo + n)];
  return [...inclusionProof(leaves, m - k, n - k, lo + k), merkleRoot(leaves, lo, lo + k)];
}
function signedNote(origin: string, size: number, root: Buffer, key: KeyObject, logId: Buffer): string {
  const note = `${origin}\n${size}\n${root.toString('base64')}\n`;
  const sig = sign('sha256', Buffer.from(note), key);
  return `${note}\n\u2014 ${origin} ${Buffer.concat([logId.subarray(0, 4), sig]).toString('base64')}\n`;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
