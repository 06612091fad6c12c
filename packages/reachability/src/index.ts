/**
 * @stellaops/reachability: which packages of a container image ran. Runtime
 * evidence (a verified chain or `collect()` records) matched to the image's
 * package inventory (CycloneDX, SPDX, or the image's own package databases),
 * reported per package as observed / not_observed (with its window) /
 * unknown, as a signed in-toto statement or a table. Pure TypeScript.
 */
export type { BundleJson, Signer } from '@stellaops/evidence-chain';
export { analyze } from './analyze.js';
export type { ReachabilityErrorCode } from './errors.js';
export { ReachabilityError } from './errors.js';
export { DEFAULT_CONTENT_STORE, inventoryFromImage, inventoryFromRootfs } from './image.js';
export type { SbomOptions } from './sbom.js';
export { parseCycloneDx, parseSbom, parseSpdx } from './sbom.js';
export type { ReachabilityStatement } from './statement.js';
export {
  REACHABILITY_PREDICATE_SCHEMA,
  REACHABILITY_PREDICATE_TYPE,
  signStatement,
  statementBytes,
  toStatement,
  verifyStatement,
} from './statement.js';
export { formatTable } from './table.js';
export type {
  Access,
  AccessCounts,
  AnalyzeOptions,
  Ecosystem,
  EvidencePointer,
  EvidenceSummary,
  FileObservation,
  ImageInventoryOptions,
  Inventory,
  InventoryPackage,
  InventorySource,
  ObservationWindow,
  PackageEvidence,
  PackageReport,
  PackageStatus,
  ProbeWindow,
  ReachabilityReport,
  SymlinkMap,
  UnattributedContainer,
  UnknownReason,
  UnownedPath,
} from './types.js';
