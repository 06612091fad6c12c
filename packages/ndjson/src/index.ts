/**
 * @stellaops/ndjson: the canonical evidence codec. Schema v1 records, their
 * RFC 8785 NDJSON encoding, a streaming decoder/validator that detects
 * rewritten evidence, and the JSON Schema. Pure TypeScript.
 */
export { bytesField, bytesFromField } from './bytes.js';
export { assertSupported, canonicalize } from './canonical.js';
export type { DecodeResult, DecodeStreamOptions, NdjsonSource } from './decode.js';
export { DEFAULT_MAX_LINE_BYTES, decodeLine, decodeLines, decodeStream } from './decode.js';
export { encodeRecord, encodeRecordBytes, u64String } from './encode.js';
export type { LineLocation, NdjsonErrorCode, NdjsonErrorDetails, ValidationIssue } from './errors.js';
export { NdjsonError } from './errors.js';
export type { FusedEncoder, FusedPlan, FusedSource } from './fused/compile.js';
export { compileFused } from './fused/compile.js';
export { addU64, u64Decimal, u64Halves, writeInt, writeU64 } from './fused/u64.js';
export { formatIp, parseIp } from './ip.js';
export { EVIDENCE_JSON_SCHEMA } from './json-schema-file.js';
export { compareRecords } from './order.js';
export type {
  CollectorStatusRecord,
  ContainerInfo,
  Envelope,
  EvidenceRecord,
  FileOpenRecord,
  K8sInfo,
  NetAcceptRecord,
  NetConnectRecord,
  ProbeStatus,
  ProcessExecRecord,
  ProcessExitRecord,
  ProcessFields,
  ProcessRecord,
  RecordOf,
  StackFrame,
  TcpStateRecord,
  TlsConnection,
  TlsHandshakeRecord,
  TlsIoRecord,
} from './records.js';
export type { BytesField } from './schema/dsl.js';
export type { RecordType } from './schema/v1.js';
export {
  RECORD_SCHEMAS,
  RECORD_TYPES,
  SCHEMA_VERSION,
  TCP_STATES,
  VALIDATOR_ONLY_RULES,
} from './schema/v1.js';
export { compareU64, isU64, U64_MAX, validateRecord } from './validate.js';
