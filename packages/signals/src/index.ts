/**
 * @stellaops/signals: the one call, `collect()`, that turns kernel events
 * into enriched, schema-valid runtime evidence, and the `Collector` that
 * writes it as signed, hash-chained chunks. Re-exports the errors and types
 * of the packages it composes.
 */

// The composed packages' errors and record types, so an embedder needs one import.
export { BpfError, NotSupportedError } from '@stellaops/bpf-loader';
export type { ContainerInfo as ResolvedContainer } from '@stellaops/enrich';
export { EnrichError } from '@stellaops/enrich';
export type { ChainReport, Signer, VerifyChainOptions } from '@stellaops/evidence-chain';
export { EvidenceChainError, generateKeyPair, LocalKeySigner, verifyChain } from '@stellaops/evidence-chain';
export type { CollectorStatusRecord, EvidenceRecord, RecordType } from '@stellaops/ndjson';
export { encodeRecord, NdjsonError, validateRecord } from '@stellaops/ndjson';
export { ProbeOptionError, ProbesError } from '@stellaops/probes';
export type {
  CollectionEvents,
  CollectionState,
  CollectOptions,
  CollectProbe,
  EvidenceBatch,
  ProbeAccount,
  UserStackOptions,
} from './collect.js';
export { COLLECT_PROBES, Collection, collect } from './collect.js';
export type { CollectorEvents, CollectorOptions, CollectorSnapshot } from './collector.js';
export { Collector, filterConfigDigest, STOP_BUDGET_MS } from './collector.js';
export type { CollectErrorCode } from './errors.js';
export { CollectError } from './errors.js';
export type { HostIdentity } from './host.js';
export { hostIdentity } from './host.js';
export type { CompiledPathFilter } from './path-filter.js';
export { compilePathFilter, PathGlobError } from './path-filter.js';
export { queryStatus, STATUS_SOCKET, StatusSocketError, serveStatus } from './status-socket.js';
export { VERSION } from './version.js';
