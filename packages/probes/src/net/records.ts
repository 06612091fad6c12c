/**
 * Evidence records (schema v1) from decoded net events: the JSON objects the
 * NDJSON writer canonicalizes (RFC 8785) one per line. 64-bit values are
 * decimal strings, 32-bit values integers, kernel byte strings a string when
 * valid UTF-8 and {b64} otherwise.
 */
import type { Endpoint, NetEvent, SockAddr, SocketTuple, TlsEvent } from './decode.js';

/** A kernel byte string in a record: the text when valid UTF-8, else its base64. */
export type ByteString = string | { b64: string };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encode raw kernel bytes as the record schema requires. */
export function byteString(bytes: Uint8Array): ByteString {
  try {
    return utf8.decode(bytes);
  } catch {
    return { b64: Buffer.from(bytes).toString('base64') };
  }
}

/** Envelope values the caller owns: the stream's sequence, wall clock and host. */
export interface NetEnvelope {
  /** Per-stream sequence number (u64). */
  readonly seq: bigint;
  /** Unix-epoch ns of the event. */
  readonly wallNs: bigint;
  readonly hostId: string;
}

/** What the TLS↔TCP correlator knows about the session of a tls_io record. */
export interface TlsSessionInfo {
  readonly sni?: Buffer | undefined;
  readonly tuple?: SocketTuple | undefined;
  /** How the tuple was found: 'socket' (seen in-kernel during an SSL call), 'fd' (pid+fd of a connect/accept record). */
  readonly tupleSource?: 'socket' | 'fd' | undefined;
}

/** A JSON record as the schema defines it (before canonicalization). */
export type NetRecord = Record<string, unknown> & { schema_version: 1; type: NetEvent['type'] };

function endpoint(e: Endpoint): { address: string; port: number } {
  return { address: e.address, port: e.port };
}

function tupleFields(t: SocketTuple | undefined): Record<string, unknown> {
  if (!t) return {};
  return { family: t.family, local: endpoint(t.local), remote: endpoint(t.remote) };
}

/** The sockaddr object of a record. */
export function sockaddrRecord(a: SockAddr): Record<string, unknown> {
  switch (a.family) {
    case 'inet':
    case 'inet6':
      return {
        family: a.family,
        address: a.address,
        port: a.port,
        ...(a.scopeId ? { scope_id: a.scopeId } : {}),
      };
    case 'unix':
      if (a.unnamed) return { family: 'unix', unnamed: true };
      return { family: 'unix', path: byteString(a.path), abstract: a.abstract };
    case 'unspec':
      return { family: 'unspec' };
    default:
      return { family: a.familyNumber, raw: { b64: a.raw.toString('base64') } };
  }
}

function stackField(stack: bigint[]): Record<string, unknown> {
  return stack.length > 0 ? { user_stack: stack.map((f) => f.toString()) } : {};
}

/**
 * Build the schema-v1 record of one decoded net event. `session` (tls_io
 * only) adds the server name and endpoints the correlator found for the
 * session.
 */
export function toNetRecord(ev: NetEvent, env: NetEnvelope, session?: TlsSessionInfo): NetRecord {
  const h = ev.header;
  const base = {
    schema_version: 1 as const,
    type: ev.type,
    seq: env.seq.toString(),
    mono_ns: h.monoNs.toString(),
    wall_ns: env.wallNs.toString(),
    host_id: env.hostId,
    pid: h.pid,
    tid: h.tid,
    ppid: h.ppid,
    uid: h.uid,
    gid: h.gid,
    comm: byteString(h.comm),
    cgroup_id: h.cgroupId.toString(),
  };
  switch (ev.type) {
    case 'tcp_state': {
      const closing = ev.newState === 'CLOSE';
      return {
        ...base,
        event: ev.event,
        direction: ev.direction,
        attribution: ev.attributed ? 'owner' : 'unknown',
        old_state: ev.oldState,
        new_state: ev.newState,
        ...tupleFields(ev.tuple),
        ...(closing
          ? {
              duration_ns: ev.durationNs.toString(),
              bytes_sent: ev.bytesAcked.toString(),
              bytes_received: ev.bytesReceived.toString(),
            }
          : {}),
      };
    }
    case 'net_connect':
    case 'net_accept':
      return {
        ...base,
        call: ev.call,
        fd: ev.fd,
        ret: ev.ret,
        ...(ev.errno !== undefined ? { errno: ev.errno } : {}),
        ...(ev.address ? { address: sockaddrRecord(ev.address) } : {}),
        ...(ev.addressTruncated ? { address_truncated: true } : {}),
        ...(ev.addressFault ? { address_unreadable: true } : {}),
        ...(ev.call === 'accept4' ? { accept_flags: ev.acceptFlags } : {}),
        ...(ev.tuple ? { socket: tupleFields(ev.tuple) } : {}),
        duration_ns: ev.durationNs.toString(),
        ...stackField(ev.stack),
      };
    case 'tls_io':
    case 'tls_handshake':
      return tlsRecord(ev, base, session);
  }
}

function tlsRecord(ev: TlsEvent, base: Record<string, unknown>, session?: TlsSessionInfo): NetRecord {
  const sni = ev.sni ?? session?.sni;
  const tuple = ev.tuple ?? session?.tuple;
  const source = ev.tuple ? 'socket' : session?.tuple ? (session.tupleSource ?? 'fd') : undefined;
  const common = {
    ...base,
    type: ev.type,
    schema_version: 1 as const,
    function: ev.op,
    session: ev.ssl.toString(),
    role: ev.role,
    ...(sni ? { sni: byteString(sni) } : {}),
    ...(ev.sniTruncated ? { sni_truncated: true } : {}),
    ...(ev.fd !== undefined ? { fd: ev.fd } : {}),
    ...(tuple ? { connection: { ...tupleFields(tuple), source } } : { connection: { source: 'unknown' } }),
    ret: ev.ret,
    duration_ns: ev.durationNs.toString(),
    ...stackField(ev.stack),
  };
  if (ev.type === 'tls_handshake') {
    return { ...common, result: ev.result, attempts: ev.attempts };
  }
  const read = ev.op === 'SSL_read' || ev.op === 'SSL_read_ex';
  return {
    ...common,
    direction: read ? 'read' : 'write',
    requested: ev.requested.toString(),
    bytes: ev.bytes.toString(),
  };
}

/** One entry of a collector_status record's `probes` array (schema v1). */
export interface CollectorProbeEntry {
  name: string;
  attached: boolean;
  attach_type: string;
  reason?: string;
  seen: string;
  filtered: string;
  deduplicated: string;
  emitted: string;
  lost: string;
}

/**
 * The `probes` entries of a collector_status record from a probe set's
 * status and counters: sorted by name, counters as decimal strings. A probe
 * without counters (not running) reports zeros.
 */
export function collectorProbeEntries(
  status: ReadonlyArray<{ name: string; attached: boolean; attachType?: string; reason?: string }>,
  counters: ReadonlyMap<
    string,
    { seen: bigint; filtered: bigint; deduplicated: bigint; emitted: bigint; lost: bigint }
  >,
): CollectorProbeEntry[] {
  return [...status]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((s) => {
      const c = counters.get(s.name);
      return {
        name: s.name,
        attached: s.attached,
        attach_type: s.attachType ?? 'none',
        ...(s.reason ? { reason: s.reason } : {}),
        seen: (c?.seen ?? 0n).toString(),
        filtered: (c?.filtered ?? 0n).toString(),
        deduplicated: (c?.deduplicated ?? 0n).toString(),
        emitted: (c?.emitted ?? 0n).toString(),
        lost: (c?.lost ?? 0n).toString(),
      };
    });
}
