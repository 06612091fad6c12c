/**
 * TypeScript types of schema v1 records, inferred from the schema definition
 * in `schema/v1.ts` (so a type can never drift from what the validator and the
 * JSON Schema say).
 */
import type { Infer, InferFields } from './schema/dsl.js';
import type { ENVELOPE_FIELDS, PROCESS_FIELDS, RECORD_SCHEMAS, RecordType } from './schema/v1.js';

type Schemas = typeof RECORD_SCHEMAS;

/** The record of one `type`. */
export type RecordOf<T extends RecordType> = Infer<Schemas[T]>;

/** Members every record has. */
export type Envelope = InferFields<typeof ENVELOPE_FIELDS> & { type: RecordType };
/** Members every process record has (all but collector_status). */
export type ProcessFields = InferFields<typeof PROCESS_FIELDS>;
/** Container attribution of a process record. */
export type ContainerInfo = NonNullable<ProcessFields['container']>;
/** Kubernetes identity inside {@link ContainerInfo}. */
export type K8sInfo = NonNullable<ContainerInfo['k8s']>;

/** A file was opened (open, openat, openat2, creat). */
export type FileOpenRecord = RecordOf<'file_open'>;
/** A process executed a new program (execve / execveat). */
export type ProcessExecRecord = RecordOf<'process_exec'>;
/** A process exited. */
export type ProcessExitRecord = RecordOf<'process_exit'>;
/** A TCP socket changed state (tracepoint sock:inet_sock_set_state). */
export type TcpStateRecord = RecordOf<'tcp_state'>;
/** A libc connect() call (uprobe), including AF_UNIX. */
export type NetConnectRecord = RecordOf<'net_connect'>;
/** A libc accept()/accept4() call (uprobe), including AF_UNIX. */
export type NetAcceptRecord = RecordOf<'net_accept'>;
/** An OpenSSL read or write: direction and byte counts, never the payload. */
export type TlsIoRecord = RecordOf<'tls_io'>;
/** An OpenSSL handshake: SNI and result. */
export type TlsHandshakeRecord = RecordOf<'tls_handshake'>;
/** In-band completeness: which probes ran and what they counted in a window. */
export type CollectorStatusRecord = RecordOf<'collector_status'>;
/** One probe's entry in {@link CollectorStatusRecord}. */
export type ProbeStatus = CollectorStatusRecord['probes'][number];
/** One frame of an optional user-space stack on network/TLS records. */
export type StackFrame = NonNullable<NetConnectRecord['stack']>[number];
/** The TCP connection a TLS record belongs to. */
export type TlsConnection = NonNullable<TlsIoRecord['connection']>;

/** Any schema v1 evidence record. Narrow on `type`. */
export type EvidenceRecord = { [T in RecordType]: RecordOf<T> }[RecordType];

/** Any record with process members (all types but collector_status). */
export type ProcessRecord = Exclude<EvidenceRecord, CollectorStatusRecord>;
