/**
 * @stellaops/evidence-chain: canonical NDJSON chunks, sealed as DSSE-signed
 * in-toto statements in a hash chain, optionally witnessed by Rekor and an
 * RFC 3161 timestamp authority, verifiable offline.
 */

export type { BundleJson } from './bundle.js';
export { BUNDLE_MEDIA_TYPE, pae as dssePae, signPayload as signInTotoPayload } from './bundle.js';
export type { EvidenceChainErrorCode } from './errors.js';
export { EvidenceChainError } from './errors.js';
export type { DirectoryPlan, EvidenceDirReport } from './fsx.js';
export { ensureEvidenceDir, makeDirectories, planDirectories } from './fsx.js';
export { bundleName, chunkName, endBundleName } from './layout.js';
export type { CheckIdentityTokenOptions, IdentityTokenClaims } from './oidc-token.js';
export { checkIdentityToken } from './oidc-token.js';
export type { RecoveredChunk, RecoveryReport } from './recovery.js';
export { recoverDirectory } from './recovery.js';
export type { FulcioSignerOptions, SignatureWithMaterial, Signer } from './signer.js';
export {
  ExternalKeySigner,
  FulcioSigner,
  generateKeyPair,
  keyHintFromPublicKey,
  LocalKeySigner,
} from './signer.js';
export type {
  ChainMeta,
  ChunkPredicate,
  ProbeTotals,
  RecoveryInfo,
  Statement,
  StatusTotals,
  StreamEndPredicate,
} from './statement.js';
export {
  CHUNK_PREDICATE_TYPE,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_TYPE,
  STREAM_END_PREDICATE_TYPE,
} from './statement.js';
export type {
  ChainReport,
  CheckResult,
  ChunkRecovery,
  ChunkReport,
  LineProblem,
  StreamReport,
  VerifyChainOptions,
} from './verify.js';
export { verifyChain } from './verify.js';
export { dsseKeyIdOf } from './verify-checks.js';
export type { HttpWitnessOptions } from './witness/sigstore-witnesses.js';
export { RekorV1Witness, RekorV2Witness, TimestampWitness } from './witness/sigstore-witnesses.js';
export type {
  FlushReport,
  FlushWitnessSpoolOptions,
  SpoolEntry,
  WitnessOutage,
  WitnessSpoolEvents,
  WitnessSpoolOptions,
} from './witness/spool.js';
export { flushWitnessSpool, mergeMaterial, WitnessSpool } from './witness/spool.js';
export type { Witness, WitnessContext, WitnessMaterial } from './witness/types.js';
export type {
  AppendInfo,
  ChunkWriterOptions,
  CloseOptions,
  EndReason,
  EvidenceWriterEvents,
  FsyncPolicy,
  LineBatch,
  SealedChunk,
  StatusUpdate,
  WriterStatus,
} from './writer.js';
export { EvidenceWriter, openChunkWriter } from './writer.js';
