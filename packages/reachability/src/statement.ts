/**
 * The report as an in-toto Statement v1 (subject: the image manifest
 * digest), canonical JSON (RFC 8785), signed into a Sigstore bundle v0.3
 * with a DSSE envelope by the same `Signer` the evidence chain uses, so one
 * public key verifies the evidence and the conclusion drawn from it.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import {
  type BundleJson,
  dssePae,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  keyHintFromPublicKey,
  type Signer,
  type Statement,
  signInTotoPayload,
} from '@stellaops/evidence-chain';
import { canonicalize } from '@stellaops/ndjson';
import { ReachabilityError } from './errors.js';
import { schemaIssues } from './jsonschema.js';
import { REACHABILITY_PREDICATE_SCHEMA } from './schema.js';
import type { ReachabilityReport } from './types.js';

export { REACHABILITY_PREDICATE_SCHEMA };

/** Predicate type of a reachability statement (documented in docs/reachability.md). */
export const REACHABILITY_PREDICATE_TYPE = 'https://stellaops.dev/attestations/reachability/v1';

/** An in-toto Statement v1 whose predicate is a reachability report. */
export type ReachabilityStatement = Statement<ReachabilityReport>;

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/**
 * The statement of a report. Its one subject is the image manifest:
 * `name` is `subjectName` (e.g. the image reference) or the digest itself.
 * @throws ReachabilityError INVALID_OPTION when the report has no valid manifest digest
 */
export function toStatement(report: ReachabilityReport, subjectName?: string): ReachabilityStatement {
  const hex = report?.image?.manifest_digest?.match(DIGEST_RE)?.[1];
  if (!hex) {
    throw new ReachabilityError(
      'INVALID_OPTION',
      'report.image.manifest_digest is not "sha256:<64 hex>": not a report from analyze()',
    );
  }
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: subjectName ?? report.image.manifest_digest, digest: { sha256: hex } }],
    predicateType: REACHABILITY_PREDICATE_TYPE,
    predicate: report,
  };
}

/** Canonical JSON (RFC 8785) bytes of a statement: the DSSE payload that is signed. */
export function statementBytes(statement: ReachabilityStatement): Buffer {
  return Buffer.from(canonicalize(statement), 'utf8');
}

/**
 * Sign a statement: DSSE over its canonical bytes (payload type
 * `application/vnd.in-toto+json`), in a Sigstore bundle v0.3 naming the key
 * by its hint (or carrying the Fulcio certificate of a keyless signer).
 * When the signer exposes its public key, the signature is checked before it
 * is returned.
 * @throws ReachabilityError SIGNATURE_INVALID when the signer fails or returns a signature that does not verify
 */
export async function signStatement(statement: ReachabilityStatement, signer: Signer): Promise<BundleJson> {
  try {
    return await signInTotoPayload(statementBytes(statement), signer);
  } catch (err) {
    throw new ReachabilityError('SIGNATURE_INVALID', (err as Error).message, {
      cause: err,
      hint: 'check the key and algorithm (ECDSA P-256, SHA-256)',
    });
  }
}

function verifies(data: Buffer, signature: Buffer, key: KeyObject): boolean {
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

function invalid(message: string): ReachabilityError {
  return new ReachabilityError('STATEMENT_INVALID', message);
}

/**
 * Verify a reachability bundle with pinned PEM public key(s) and return its
 * statement: one DSSE signature by a pinned key over the payload, an
 * in-toto v1 statement of this predicate type in canonical form, whose
 * subject is the report's image manifest digest, and whose predicate conforms
 * to REACHABILITY_PREDICATE_SCHEMA.
 * Keyless (certificate) bundles are not verified here: use a Sigstore
 * verifier with a trusted root (e.g. `cosign verify-blob-attestation`).
 * @throws ReachabilityError SIGNATURE_INVALID, STATEMENT_INVALID, INVALID_OPTION
 */
export function verifyStatement(
  bundle: BundleJson | string,
  publicKeys: string | string[],
): ReachabilityStatement {
  let keys: { key: KeyObject; hint: string }[];
  try {
    keys = (Array.isArray(publicKeys) ? publicKeys : [publicKeys]).map((pem) => {
      const key = createPublicKey(pem);
      return { key, hint: keyHintFromPublicKey(key) };
    });
  } catch (err) {
    throw new ReachabilityError(
      'INVALID_OPTION',
      `publicKeys: not a PEM public key (${(err as Error).message})`,
      { cause: err },
    );
  }
  let b: BundleJson;
  try {
    b = typeof bundle === 'string' ? (JSON.parse(bundle) as BundleJson) : bundle;
  } catch (err) {
    throw invalid(`the bundle is not JSON (${(err as Error).message})`);
  }
  const env = b?.dsseEnvelope;
  if (!env || typeof env.payload !== 'string' || !Array.isArray(env.signatures)) {
    throw invalid('not a Sigstore bundle with a DSSE envelope');
  }
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE)
    throw invalid(`payloadType is ${JSON.stringify(env.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  if (env.signatures.length !== 1)
    throw invalid(`expected one DSSE signature, found ${env.signatures.length}`);
  if (b.verificationMaterial?.certificate) {
    throw new ReachabilityError(
      'SIGNATURE_INVALID',
      'keyless (certificate) bundle: verifyStatement checks pinned keys only',
      {
        hint: 'verify it with a Sigstore verifier and the trusted root (cosign verify-blob-attestation)',
      },
    );
  }
  const hint = b.verificationMaterial?.publicKey?.hint;
  const key = keys.find((k) => k.hint === hint);
  const payload = Buffer.from(env.payload, 'base64');
  const data = dssePae(IN_TOTO_PAYLOAD_TYPE, payload);
  const sig = Buffer.from((env.signatures[0] as { sig: string }).sig, 'base64');
  if (!key) {
    const other = keys.some((k) => verifies(data, sig, k.key));
    throw new ReachabilityError(
      'SIGNATURE_INVALID',
      other
        ? `the bundle names key ${hint ?? '(none)'}, which is not pinned, though the signature verifies with a pinned key: the bundle was edited`
        : `signed by key ${hint ?? '(none)'}, which is not one of the pinned keys (${keys.map((k) => k.hint).join(', ')})`,
    );
  }
  if (!verifies(data, sig, key.key)) {
    throw new ReachabilityError(
      'SIGNATURE_INVALID',
      `the DSSE signature does not verify with pinned key ${key.hint}: the statement was changed or signed by another key`,
    );
  }
  let statement: ReachabilityStatement;
  try {
    statement = JSON.parse(payload.toString('utf8')) as ReachabilityStatement;
  } catch {
    throw invalid('the signed payload is not JSON');
  }
  if (canonicalize(statement) !== payload.toString('utf8'))
    throw invalid('the signed payload is not canonical JSON (RFC 8785)');
  if (statement._type !== IN_TOTO_STATEMENT_TYPE)
    throw invalid(`_type is ${JSON.stringify(statement._type)}, not ${IN_TOTO_STATEMENT_TYPE}`);
  if (statement.predicateType !== REACHABILITY_PREDICATE_TYPE) {
    throw invalid(
      `predicateType is ${JSON.stringify(statement.predicateType)}, not ${REACHABILITY_PREDICATE_TYPE}`,
    );
  }
  const subject = statement.subject?.[0]?.digest?.sha256;
  if (
    statement.subject?.length !== 1 ||
    `sha256:${subject}` !== statement.predicate?.image?.manifest_digest
  ) {
    throw invalid('the subject is not the image manifest digest the report is about');
  }
  // Signed is not well-formed: a predicate that breaks the published schema (a status no
  // consumer knows, a missing window) is refused, not handed on.
  const issues = schemaIssues(REACHABILITY_PREDICATE_SCHEMA, statement.predicate, '/predicate');
  if (issues.length > 0) {
    const more = issues.length > 5 ? ` (+${issues.length - 5} more)` : '';
    throw new ReachabilityError(
      'STATEMENT_INVALID',
      `the predicate does not conform to the reachability v1 JSON Schema: ${issues.slice(0, 5).join('; ')}${more}`,
      { hint: 'the signer wrote a malformed report: regenerate it with stella signals reachability --out' },
    );
  }
  return statement;
}
