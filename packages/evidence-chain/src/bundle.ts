import { createHash, X509Certificate } from 'node:crypto';
import { EvidenceChainError } from './errors.js';
import { type Signer, verifySignature } from './signer.js';
import { sigstoreBundle } from './sigstore-lazy.js';
import { IN_TOTO_PAYLOAD_TYPE } from './statement.js';

/** Media type of the bundles written beside each chunk. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** A Sigstore bundle v0.3 in its JSON form, as written to `*.sigstore.json`. */
export interface BundleJson {
  mediaType: string;
  verificationMaterial: {
    publicKey?: { hint: string };
    certificate?: { rawBytes: string };
    tlogEntries: unknown[];
    timestampVerificationData?: { rfc3161Timestamps: unknown[] };
  };
  dsseEnvelope: {
    payload: string;
    payloadType: string;
    signatures: { sig: string; keyid: string }[];
  };
}

/** DSSE v1 pre-authentication encoding: what is actually signed. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    payload,
  ]);
}

/**
 * Sign an in-toto statement payload and wrap it in a bundle. The DSSE keyid
 * is left empty (sigstore-go skips a signature whose keyid differs from its
 * own key id); the key is named by `verificationMaterial.publicKey.hint`.
 * When the signer exposes its public key, the signature is checked before it
 * is returned, so a misbehaving KMS cannot produce an unverifiable chunk.
 */
export async function signPayload(payload: Buffer, signer: Signer): Promise<BundleJson> {
  const data = pae(IN_TOTO_PAYLOAD_TYPE, payload);
  let signature: Buffer;
  let certificatePem: string | undefined;
  try {
    if (signer.signWithMaterial) {
      const r = await signer.signWithMaterial(data);
      signature = r.signature;
      certificatePem = r.certificatePem;
    } else {
      signature = await signer.sign(data);
    }
  } catch (err) {
    if (err instanceof EvidenceChainError) throw err;
    throw new EvidenceChainError(
      'SIGNING_FAILED',
      `signer failed: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
      },
    );
  }
  const checkKey = certificatePem ?? signer.publicKeyPem;
  if (checkKey !== undefined && !verifySignature(data, signature, checkKey)) {
    throw new EvidenceChainError(
      'SIGNING_FAILED',
      'the signer returned a signature that does not verify with its public key; check the KMS key and algorithm (ECDSA P-256, SHA-256)',
    );
  }
  const verificationMaterial: BundleJson['verificationMaterial'] = certificatePem
    ? {
        certificate: { rawBytes: new X509Certificate(certificatePem).raw.toString('base64') },
        tlogEntries: [],
      }
    : { publicKey: { hint: signer.keyHint }, tlogEntries: [] };
  verificationMaterial.timestampVerificationData = { rfc3161Timestamps: [] };
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    verificationMaterial,
    dsseEnvelope: {
      payload: payload.toString('base64'),
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      signatures: [{ sig: signature.toString('base64'), keyid: '' }],
    },
  };
}

/** Serialize a bundle for disk: pretty JSON, one trailing newline. */
export function serializeBundle(bundle: BundleJson): string {
  return `${JSON.stringify(bundle, null, 2)}\n`;
}

/**
 * Parse and structurally validate a bundle file's text. Throws BUNDLE_INVALID
 * naming `where` when it is not JSON or not a Sigstore bundle with a DSSE envelope.
 */
export function parseBundle(text: string, where: string): BundleJson {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EvidenceChainError('BUNDLE_INVALID', `${where}: not JSON (${(err as Error).message})`, {
      path: where,
    });
  }
  try {
    sigstoreBundle().bundleFromJSON(json);
  } catch (err) {
    throw new EvidenceChainError(
      'BUNDLE_INVALID',
      `${where}: not a valid Sigstore bundle (${(err as Error).message})`,
      {
        path: where,
      },
    );
  }
  const b = json as BundleJson;
  if (!b.dsseEnvelope || !Array.isArray(b.dsseEnvelope.signatures)) {
    throw new EvidenceChainError('BUNDLE_INVALID', `${where}: bundle holds no DSSE envelope`, {
      path: where,
    });
  }
  if (!Array.isArray(b.verificationMaterial.tlogEntries)) b.verificationMaterial.tlogEntries = [];
  return b;
}

/** The statement bytes inside a bundle. */
export function bundlePayload(bundle: BundleJson): Buffer {
  return Buffer.from(bundle.dsseEnvelope.payload, 'base64');
}

/** `sha256:<hex>` of the statement a bundle carries. */
export function bundleStatementDigest(bundle: BundleJson): string {
  return `sha256:${createHash('sha256').update(bundlePayload(bundle)).digest('hex')}`;
}
