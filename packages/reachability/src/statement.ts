import type { BundleJson, Signer, Statement } from '@stellaops/evidence-chain';
import { ReachabilityError } from './errors.js';
import type { ReachabilityReport } from './types.js';

/** Predicate type of a reachability statement. */
export const REACHABILITY_PREDICATE_TYPE = 'https://stellaops.dev/attestations/reachability/v1';

/** JSON Schema (draft 2020-12) of the predicate; also shipped as `@stellaops/reachability/schema.json`. */
export const REACHABILITY_PREDICATE_SCHEMA: Record<string, unknown> = {};

/** An in-toto Statement v1 whose predicate is a reachability report. */
export type ReachabilityStatement = Statement<ReachabilityReport>;

/** The statement of a report: subject = the image manifest digest. */
export function toStatement(_report: ReachabilityReport): ReachabilityStatement {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'toStatement: not implemented yet');
}

/** Canonical JSON (RFC 8785) bytes of a statement: the DSSE payload. */
export function statementBytes(_statement: ReachabilityStatement): Buffer {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'statementBytes: not implemented yet');
}

/** Sign a statement with the chain's signer: a Sigstore bundle v0.3 holding a DSSE envelope. */
export async function signStatement(_statement: ReachabilityStatement, _signer: Signer): Promise<BundleJson> {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'signStatement: not implemented yet');
}

/** Verify a bundle with pinned PEM public key(s) and return its statement. */
export function verifyStatement(
  _bundle: BundleJson | string,
  _publicKeys: string | string[],
): ReachabilityStatement {
  throw new ReachabilityError('NOT_IMPLEMENTED', 'verifyStatement: not implemented yet');
}
