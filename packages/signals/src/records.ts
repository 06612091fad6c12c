import type { ContainerField } from '@stellaops/enrich';
import { bytesField, type EvidenceRecord, RECORD_SCHEMAS, type StackFrame } from '@stellaops/ndjson';
import type {
  EventHeader,
  NetEvent,
  ProbeEvent,
  SockAddr,
  SocketTuple,
  TlsSessionInfo,
} from '@stellaops/probes';
import type { RecordIdentity } from './identity.js';

/**
 * Kernel events → schema v1 evidence records. This is the one place where
 * probe field names meet the evidence format (`@stellaops/ndjson` is the
 * contract); every record built here is checked against the validator in
 * tests.
 */

/** Envelope values the stream owns. */
export interface RecordEnvelope {
  seq: bigint;
  wallNs: bigint;
  hostId: string;
  container: ContainerField | undefined;
  /** Symbolized user stack for network/TLS records, when captured. */
  stack?: StackFrame[] | undefined;
  /** The file as seen inside the container root, when enrichment mapped it. */
  containerPath?: Buffer | undefined;
  /** Runtime set-up mark and file digest (exec records, shared-object opens), from the identity stage. */
  identity?: RecordIdentity | undefined;
}

/** The digest members of a record: `<prefix>_digest`, or `<prefix>_digest_unavailable` saying why not. */
function digestFields(prefix: 'exe' | 'file', id: RecordIdentity | undefined) {
  const d = id?.digest;
  const setup = id?.runtimeSetup ? { runtime_setup: true } : {};
  if (d === undefined) return setup;
  return 'digest' in d
    ? { [`${prefix}_digest`]: d.digest, ...setup }
    : { [`${prefix}_digest_unavailable`]: d.unavailable, ...setup };
}

/**
 * The schema's room for what a probe can produce, read from schema v1 (the
 * one source): a path the probe joined to its directory can be up to twice
 * PATH_MAX, and an argv can have more entries than the schema keeps. Longer
 * values are cut to fit and flagged, so the open or exec is still evidence
 * instead of a record the encoder refuses.
 */
const LIMITS = {
  path: RECORD_SCHEMAS.file_open.fields.path.type.maxBytes,
  containerPath: RECORD_SCHEMAS.file_open.fields.container_path.type.maxBytes,
  filename: RECORD_SCHEMAS.process_exec.fields.filename.type.maxBytes,
  execContainerPath: RECORD_SCHEMAS.process_exec.fields.container_path.type.maxBytes,
  exePath: RECORD_SCHEMAS.process_exec.fields.exe_path.type.maxBytes,
  interpreter: RECORD_SCHEMAS.process_exec.fields.interpreter.type.maxBytes,
  argvEntries: RECORD_SCHEMAS.process_exec.fields.argv.type.maxItems,
  argBytes: RECORD_SCHEMAS.process_exec.fields.argv.type.items.maxBytes,
} as const;

/**
 * The first `max` bytes of `b` (all of it when it fits). A cut that would
 * split a UTF-8 sequence of otherwise valid UTF-8 text moves back to the
 * sequence start, so a cut text path stays text.
 */
export function cutBytes(b: Buffer, max: number): { bytes: Buffer; cut: boolean } {
  if (b.length <= max) return { bytes: b, cut: false };
  let end = max;
  // Back over continuation bytes (10xxxxxx) to the lead byte, at most 3.
  for (let i = 0; i < 3 && end > 0 && (b[end]! & 0xc0) === 0x80; i++) end--;
  if ((b[end]! & 0xc0) === 0x80) end = max; // not UTF-8 anyway: cut where the limit is
  return { bytes: b.subarray(0, end), cut: true };
}

/**
 * exe_path (kept from its end when cut: the file name matters most) and
 * interpreter. A record from a decoder without them (an older object) has neither.
 */
function exeFields(exePath: Buffer | undefined, cutInKernel: boolean, interpreter: Buffer | undefined) {
  if (exePath === undefined || exePath.length === 0) return {};
  const over = exePath.length > LIMITS.exePath;
  const path = over ? exePath.subarray(exePath.length - LIMITS.exePath) : exePath;
  const interp = interpreter ? cutBytes(interpreter, LIMITS.interpreter).bytes : undefined;
  return {
    exe_path: bytesField(path),
    ...(cutInKernel || over ? { exe_path_truncated: true } : {}),
    ...(interp ? { interpreter: bytesField(interp) } : {}),
  };
}

/** A decoded event from either probe object. */
export type KernelEvent = { source: 'fileexec'; event: ProbeEvent } | { source: 'net'; event: NetEvent };

/** The task fields every kernel event carries (net events nest them in `header`). */
type Header = EventHeader;

function envelope(type: EvidenceRecord['type'], h: Header, env: RecordEnvelope) {
  return {
    schema_version: 1 as const,
    type,
    seq: env.seq.toString(),
    mono_ns: h.monoNs.toString(),
    wall_ns: env.wallNs.toString(),
    host_id: env.hostId,
    pid: h.pid,
    tid: h.tid,
    ppid: h.ppid,
    uid: h.uid,
    gid: h.gid,
    comm: bytesField(h.comm),
    cgroup_id: h.cgroupId.toString(),
    ...(env.container ? { container: env.container } : {}),
  };
}

/** The header of any kernel event (net events nest theirs). */
export function headerOf(k: KernelEvent): Header {
  return k.source === 'fileexec' ? k.event : k.event.header;
}

/** The evidence record type a kernel event becomes. */
export function recordTypeOf(k: KernelEvent): EvidenceRecord['type'] {
  if (k.source === 'net') return k.event.type;
  switch (k.event.kind) {
    case 'file_open':
      return 'file_open';
    case 'exec':
      return 'process_exec';
    case 'exit':
      return 'process_exit';
  }
}

/** The counter (probe) name a kernel event is accounted under. */
export function probeNameOf(k: KernelEvent): string {
  if (k.source === 'fileexec') return k.event.kind === 'file_open' ? k.event.probe : k.event.kind;
  return k.event.type;
}

function tupleFields(t: SocketTuple) {
  return {
    family: t.family,
    saddr: t.local.address,
    sport: t.local.port,
    daddr: t.remote.address,
    dport: t.remote.port,
  };
}

function sockaddrFields(a: SockAddr | undefined) {
  if (!a) return { family: 'other' as const };
  switch (a.family) {
    case 'inet':
    case 'inet6':
      return { family: a.family, addr: a.address, port: a.port };
    case 'unix':
      return { family: 'unix' as const, unix_path: bytesField(a.path), unix_abstract: a.abstract };
    default:
      return { family: 'other' as const };
  }
}

const TCP_EVENT: Record<string, string> = {
  connect: 'connect_attempt',
  established: 'established',
  accepted: 'accepted',
  closed: 'closed',
  refused: 'refused',
  reset: 'reset',
  failed: 'failed',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** SNI is a DNS name: text or nothing (a non-UTF-8 name is left out, not mangled). */
function sniText(b: Buffer): string | undefined {
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

function hex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

/**
 * Build the evidence record of one kernel event.
 * @returns undefined for events that carry no evidence on their own
 *   (a tcp_state without a socket tuple, SSL_free): the caller counts them.
 */
export function toRecord(
  k: KernelEvent,
  env: RecordEnvelope,
  tls?: TlsSessionInfo,
): EvidenceRecord | undefined {
  if (k.source === 'fileexec') {
    const e = k.event;
    switch (e.kind) {
      case 'file_open': {
        const path = cutBytes(e.path, LIMITS.path);
        const containerPath =
          env.containerPath && env.containerPath.length <= LIMITS.containerPath
            ? env.containerPath
            : undefined;
        return {
          ...envelope('file_open', e, env),
          path: bytesField(path.bytes),
          // A path string the probe could not read has no known form: what
          // the record holds is the directory it would be joined to, or nothing.
          path_resolution: e.pathFault && e.resolution === 'absolute' ? 'unresolved' : e.resolution,
          path_truncated: e.truncated || e.pathFault || path.cut,
          flags: e.flags >>> 0,
          mode: e.mode >>> 0,
          dirfd: e.dirfd,
          ret: e.ret,
          syscall: e.syscall,
          ...(containerPath ? { container_path: bytesField(containerPath) } : {}),
          ...digestFields('file', env.identity),
        } as EvidenceRecord;
      }
      case 'exec': {
        const filename = cutBytes(e.filename, LIMITS.filename);
        const kept = e.argv.slice(0, LIMITS.argvEntries).map((a) => cutBytes(a, LIMITS.argBytes));
        const containerPath =
          env.containerPath && env.containerPath.length <= LIMITS.execContainerPath
            ? env.containerPath
            : undefined;
        return {
          ...envelope('process_exec', e, env),
          filename: bytesField(filename.bytes),
          argv: kept.map((a) => bytesField(a.bytes)),
          argv_truncated:
            e.argvTruncated ||
            e.filenameTruncated ||
            filename.cut ||
            e.argv.length > LIMITS.argvEntries ||
            kept.some((a) => a.cut),
          exe_dev: e.exeDev.toString(),
          exe_ino: e.exeIno.toString(),
          ...(containerPath ? { container_path: bytesField(containerPath) } : {}),
          ...exeFields(e.exePath, e.exePathTruncated, e.interpreter),
          ...digestFields('exe', env.identity),
        } as EvidenceRecord;
      }
      case 'exit':
        return {
          ...envelope('process_exit', e, env),
          exit_code: e.exitCode,
          signal: e.signal,
          core_dumped: e.coreDumped,
          ...(e.startNs > 0n && e.monoNs >= e.startNs
            ? { duration_ns: (e.monoNs - e.startNs).toString() }
            : {}),
          ...(env.identity?.runtimeSetup ? { runtime_setup: true } : {}),
        } as EvidenceRecord;
    }
  }
  const e = k.event;
  const h = e.header;
  const stack = env.stack && env.stack.length > 0 ? { stack: env.stack } : {};
  switch (e.type) {
    case 'tcp_state': {
      if (!e.tuple) return undefined;
      const closing = e.newState === 'CLOSE';
      return {
        ...envelope('tcp_state', h, env),
        ...tupleFields(e.tuple),
        old_state: e.oldState,
        new_state: e.newState,
        direction: e.direction,
        event: TCP_EVENT[e.event] ?? 'failed',
        attribution: e.attributed ? 'owner' : 'unknown',
        ...(closing && e.durationNs > 0n ? { duration_ns: e.durationNs.toString() } : {}),
        ...(closing
          ? { bytes_sent: e.bytesAcked.toString(), bytes_received: e.bytesReceived.toString() }
          : {}),
      } as EvidenceRecord;
    }
    case 'net_connect':
    case 'net_accept':
      return {
        ...envelope(e.type, h, env),
        fd: e.fd,
        ret: e.ret,
        ...(e.ret < 0 && e.errno ? { errno: e.errno } : {}),
        ...sockaddrFields(e.address),
        syscall: e.call,
        ...stack,
      } as EvidenceRecord;
    case 'tls_io':
    case 'tls_handshake': {
      if (e.op === 'SSL_free') return undefined;
      const sniBytes = e.sni ?? tls?.sni;
      const sni = sniBytes ? sniText(sniBytes) : undefined;
      const tuple = e.tuple ?? tls?.tuple;
      const common = {
        ...envelope(e.type, h, env),
        ssl_ptr: hex(e.ssl),
        ret: e.ret,
        function: e.op,
        ...(tuple ? { connection: tupleFields(tuple) } : {}),
        ...(sni ? { sni } : {}),
        ...stack,
      };
      if (e.type === 'tls_handshake') {
        return { ...common, result: e.result === 'failed' ? 'failed' : 'ok' } as EvidenceRecord;
      }
      const read = e.op === 'SSL_read' || e.op === 'SSL_read_ex';
      return {
        ...common,
        direction: read ? 'read' : 'write',
        requested: e.requested.toString(),
        returned: e.bytes.toString(),
      } as EvidenceRecord;
    }
    default:
      return undefined;
  }
}
