import { createHash as createHashSync, X509Certificate } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import type { RekorWitness, TSAWitness } from '@sigstore/sign';
import { type BundleJson, pae } from '../bundle.js';
import { EvidenceChainError } from '../errors.js';
import { createRekorV2Entry } from '../external/rekor-v2.js';
import { sigstoreBundle, sigstoreSign } from '../sigstore-lazy.js';
import type { Witness, WitnessContext, WitnessMaterial } from './types.js';

/** Options shared by the HTTP witnesses. */
export interface HttpWitnessOptions {
  /** Base URL, e.g. https://rekor.sigstore.dev. */
  baseURL: string;
  /** Per-request timeout in ms (default 10 000). */
  timeoutMs?: number;
}

function checkUrl(kind: string, url: unknown): string {
  if (typeof url !== 'string')
    throw new EvidenceChainError('INVALID_OPTION', `${kind}: baseURL must be a string`);
  try {
    const u = new URL(url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    throw new EvidenceChainError('INVALID_OPTION', `${kind}: baseURL ${url} is not an http(s) URL`);
  }
  return url.replace(/\/+$/, '');
}

function toSigstoreBundle(b: BundleJson): Bundle {
  return sigstoreBundle().bundleFromJSON(b);
}

/** Convert tlog entries from object form (Buffers) to bundle JSON form. */
function tlogEntriesToJson(b: BundleJson, entries: Bundle['verificationMaterial']['tlogEntries']): unknown[] {
  const base = toSigstoreBundle(b);
  const json = sigstoreBundle().bundleToJSON({
    ...base,
    verificationMaterial: { ...base.verificationMaterial, tlogEntries: entries },
  });
  return (json.verificationMaterial?.tlogEntries as unknown[] | undefined) ?? [];
}

/**
 * Rekor v1 with a `dsse` entry, through `@sigstore/sign`'s RekorWitness. A
 * 409 (entry already in the log) fetches the existing entry, so a retried
 * submission is idempotent. The entry carries the SET (signed entry
 * timestamp), inclusion proof and checkpoint.
 */
export class RekorV1Witness implements Witness {
  readonly name: string;
  readonly #inner: RekorWitness;

  constructor(options: HttpWitnessOptions) {
    const url = checkUrl('RekorV1Witness', options?.baseURL);
    this.name = `rekor-v1@${url}`;
    this.#inner = new (sigstoreSign().RekorWitness)({
      rekorBaseURL: url,
      entryType: 'dsse',
      majorApiVersion: 1,
      fetchOnConflict: true,
      retry: 0,
      timeout: options.timeoutMs ?? 10_000,
    });
  }

  async testify(bundle: BundleJson, ctx: WitnessContext): Promise<WitnessMaterial> {
    const res = await this.#inner.testify(toSigstoreBundle(bundle).content, ctx.verifierPem);
    return { tlogEntries: tlogEntriesToJson(bundle, res.tlogEntries) };
  }
}

/**
 * Rekor v2 (rekor-tiles) with a `hashedrekord` v0.0.2 entry over
 * sha256(PAE): v2 dropped DSSE entries in rekor-tiles v2.3.0, and a DSSE
 * signature is a signature over the PAE bytes, so the log records exactly
 * what was signed. v2 gives no signed entry timestamp: pair it with
 * `TimestampWitness`. A 409 is reported as an error (v2 has no entry lookup).
 */
export class RekorV2Witness implements Witness {
  readonly name: string;
  readonly #url: string;
  readonly #timeout: number;

  constructor(options: HttpWitnessOptions) {
    this.#url = checkUrl('RekorV2Witness', options?.baseURL);
    this.name = `rekor-v2@${this.#url}`;
    this.#timeout = options.timeoutMs ?? 10_000;
  }

  async testify(bundle: BundleJson, ctx: WitnessContext): Promise<WitnessMaterial> {
    const env = bundle.dsseEnvelope;
    const sig = env.signatures[0];
    if (!sig) throw new EvidenceChainError('WITNESS_FAILED', `${this.name}: bundle has no signature`);
    const digest = createHash256(pae(env.payloadType, Buffer.from(env.payload, 'base64')));
    const isCert = ctx.verifierPem.includes('BEGIN CERTIFICATE');
    const verifierDer = isCert ? new X509Certificate(ctx.verifierPem).raw : pemToDer(ctx.verifierPem);
    const entry = await createRekorV2Entry(this.#url, this.#timeout, {
      digest,
      signature: Buffer.from(sig.sig, 'base64'),
      verifier: isCert ? { x509Certificate: verifierDer } : { publicKey: verifierDer },
    });
    // Validate the returned entry as bundle material before accepting it.
    try {
      sigstoreBundle().bundleFromJSON({
        ...bundle,
        verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [entry] },
      });
    } catch (err) {
      throw new EvidenceChainError(
        'WITNESS_FAILED',
        `${this.name}: log returned a malformed entry (${(err as Error).message})`,
      );
    }
    return { tlogEntries: [entry] };
  }
}

/**
 * RFC 3161 timestamp over the DSSE signature, through `@sigstore/sign`'s
 * TSAWitness (POST <baseURL>/api/v1/timestamp). Gives Rekor v2 entries the
 * trusted time they lack.
 */
export class TimestampWitness implements Witness {
  readonly name: string;
  readonly #inner: TSAWitness;

  constructor(options: HttpWitnessOptions) {
    const url = checkUrl('TimestampWitness', options?.baseURL);
    this.name = `tsa@${url}`;
    this.#inner = new (sigstoreSign().TSAWitness)({
      tsaBaseURL: url,
      retry: 0,
      timeout: options.timeoutMs ?? 10_000,
    });
  }

  async testify(bundle: BundleJson): Promise<WitnessMaterial> {
    const res = await this.#inner.testify(toSigstoreBundle(bundle).content);
    return {
      rfc3161Timestamps: res.rfc3161Timestamps.map((t) => ({
        signedTimestamp: Buffer.from(t.signedTimestamp).toString('base64'),
      })),
    };
  }
}

function createHash256(data: Buffer): Buffer {
  return createHashSync('sha256').update(data).digest();
}

function pemToDer(pem: string): Buffer {
  const b64 = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');
  return Buffer.from(b64, 'base64');
}
