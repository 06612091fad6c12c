import type { BundleJson } from '../bundle.js';

/** Verification material a witness adds to a bundle, in bundle JSON form. */
export interface WitnessMaterial {
  tlogEntries?: unknown[];
  rfc3161Timestamps?: unknown[];
}

/** What a witness knows besides the bundle. */
export interface WitnessContext {
  /** PEM public key (key signatures) or leaf certificate (keyless) of the signer. */
  verifierPem: string;
}

/**
 * A transparency log or timestamp authority. Witnesses never change what is
 * signed: they return material that goes into `verificationMaterial`.
 * `testify` throws on failure; the spool retries later.
 */
export interface Witness {
  /** Stable, unique name (spool entries and status use it), e.g. `rekor-v1@https://rekor.sigstore.dev`. */
  readonly name: string;
  testify(bundle: BundleJson, ctx: WitnessContext): Promise<WitnessMaterial>;
}
