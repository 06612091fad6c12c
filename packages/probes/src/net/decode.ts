/**
 * Decoders for the ring records of bpf/net.bpf.o. Each checks the record's
 * length against the layout of its kind and throws DecodeError otherwise: a
 * mismatch means the object and this package come from different builds.
 */
import { DecodeError } from '../errors.js';
import {
  AF,
  DIRECTIONS,
  NET_ATTR_OWNER,
  NET_ERRNO_KNOWN,
  NET_KIND,
  NET_LAYOUT,
  NET_SA_FAULT,
  NET_SA_TRUNCATED,
  NET_SOCKADDR_MAX,
  NET_STACK_MAX,
  NET_TLS_CLIENT,
  NET_TLS_SERVER,
  NET_TLS_SNI_SET,
  NET_TLS_SNI_TRUNCATED,
  NET_TLS_TUPLE_KNOWN,
  type NetDirection,
  SOCK_CALLS,
  type SockCall,
  TCP_EVENTS,
  TCP_STATES,
  type TcpEvent,
  TLS_OPS,
  TLS_RESULTS,
  type TlsOp,
  type TlsResult,
} from './layout.js';

/** The common record header: the task the record is attributed to. */
export interface NetHeader {
  /** bpf_ktime_get_ns(): CLOCK_MONOTONIC ns. */
  readonly monoNs: bigint;
  readonly cgroupId: bigint;
  readonly kind: number;
  readonly pid: number;
  readonly tid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly gid: number;
  /** Raw comm bytes up to the first NUL (may not be UTF-8). */
  readonly comm: Buffer;
}

/** One side of a connection. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Local and remote endpoint of an IPv4/IPv6 socket, ports in host order. */
export interface SocketTuple {
  readonly family: 'inet' | 'inet6';
  readonly local: Endpoint;
  readonly remote: Endpoint;
}

/** A decoded struct sockaddr. */
export type SockAddr =
  | {
      readonly family: 'inet' | 'inet6';
      readonly address: string;
      readonly port: number;
      readonly scopeId?: number;
    }
  | {
      readonly family: 'unix';
      /** Path bytes (pathname: up to the first NUL; abstract: the name after the leading NUL). */
      readonly path: Buffer;
      readonly abstract: boolean;
      /** addrlen was sizeof(sa_family_t): an unnamed socket. */
      readonly unnamed: boolean;
    }
  | { readonly family: 'unspec' }
  | { readonly family: 'other'; readonly familyNumber: number; readonly raw: Buffer };

/** A collapsed TCP state transition (tcp_state). */
export interface TcpStateEvent {
  readonly type: 'tcp_state';
  readonly header: NetHeader;
  readonly event: TcpEvent;
  readonly direction: NetDirection;
  /** False: the transition ran where the socket's owner was not known; header ids are zero. */
  readonly attributed: boolean;
  readonly oldState: string;
  readonly newState: string;
  readonly tuple: SocketTuple | undefined;
  /** Closes: ns since the connect/accept transition (0 if not seen). */
  readonly durationNs: bigint;
  /** Closes: tcp_sock.bytes_acked, bytes sent and acknowledged. */
  readonly bytesAcked: bigint;
  /** Closes: tcp_sock.bytes_received. */
  readonly bytesReceived: bigint;
}

/** A libc connect/accept/accept4 return (net_connect, net_accept). */
export interface SockEvent {
  readonly type: 'net_connect' | 'net_accept';
  readonly header: NetHeader;
  readonly call: SockCall;
  /** connect: the fd argument; accept: the new fd, or -1. */
  readonly fd: number;
  readonly ret: number;
  /** errno of the failed syscall, when seen at sys_exit (0 on success). */
  readonly errno: number | undefined;
  /** connect: destination; accept: peer address (undefined when none was asked for). */
  readonly address: SockAddr | undefined;
  readonly addressTruncated: boolean;
  readonly addressFault: boolean;
  /** The socket behind fd after the call (IPv4/IPv6 only). */
  readonly tuple: SocketTuple | undefined;
  readonly acceptFlags: number;
  readonly durationNs: bigint;
  /** User stack return addresses, innermost first (empty when capture is off). */
  readonly stack: bigint[];
}

/** An OpenSSL session call (tls_io, tls_handshake). */
export interface TlsEvent {
  readonly type: 'tls_io' | 'tls_handshake';
  readonly header: NetHeader;
  /** The SSL* pointer: identifies the session within the process. */
  readonly ssl: bigint;
  readonly op: TlsOp;
  /** tls_handshake only. */
  readonly result: TlsResult | undefined;
  /**
   * 'client' when this side wrote the session's ClientHello, 'server' when it
   * wrote the ServerHello; 'unknown' when neither write was seen (handshake
   * bytes sent with sendmsg, io_uring or kernel TLS).
   */
  readonly role: 'client' | 'server' | 'unknown';
  /** SSL_read/SSL_write `num` argument. */
  readonly requested: bigint;
  readonly ret: number;
  /** Bytes moved by this call. */
  readonly bytes: bigint;
  /** The TCP socket this session used, when one was seen during an SSL call or SSL_set_fd. */
  readonly tuple: SocketTuple | undefined;
  /** From SSL_set_fd, when called. */
  readonly fd: number | undefined;
  /** Handshake calls made on the session so far. */
  readonly attempts: number;
  /** Server name the client sent in its ClientHello (tls_handshake only). */
  readonly sni: Buffer | undefined;
  readonly sniTruncated: boolean;
  readonly durationNs: bigint;
  readonly stack: bigint[];
}

/** Any record of the net object. */
export type NetEvent = TcpStateEvent | SockEvent | TlsEvent;

const HDR = 56;

function header(b: Buffer): NetHeader {
  const comm = b.subarray(40, 56);
  const nul = comm.indexOf(0);
  return {
    monoNs: b.readBigUInt64LE(0),
    cgroupId: b.readBigUInt64LE(8),
    kind: b.readUInt32LE(16),
    pid: b.readUInt32LE(20),
    tid: b.readUInt32LE(24),
    ppid: b.readUInt32LE(28),
    uid: b.readUInt32LE(32),
    gid: b.readUInt32LE(36),
    comm: Buffer.from(nul < 0 ? comm : comm.subarray(0, nul)),
  };
}

/** IPv4 dotted quad. */
export function formatIPv4(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** IPv6 text form as RFC 5952 recommends (longest zero run compressed, IPv4-mapped dotted). */
export function formatIPv6(b: Buffer): string {
  if (b.length !== 16) throw new RangeError(`an IPv6 address is 16 bytes, got ${b.length}`);
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(i * 2));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${formatIPv4(b.subarray(12, 16))}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function tuple(b: Buffer, off: number): SocketTuple | undefined {
  const family = b.readUInt16LE(off + 36);
  const lport = b.readUInt16LE(off + 32);
  const rport = b.readUInt16LE(off + 34);
  if (family === AF.INET) {
    return {
      family: 'inet',
      local: { address: formatIPv4(b.subarray(off, off + 4)), port: lport },
      remote: { address: formatIPv4(b.subarray(off + 16, off + 20)), port: rport },
    };
  }
  if (family === AF.INET6) {
    return {
      family: 'inet6',
      local: { address: formatIPv6(b.subarray(off, off + 16)), port: lport },
      remote: { address: formatIPv6(b.subarray(off + 16, off + 32)), port: rport },
    };
  }
  return undefined;
}

/**
 * Decode a struct sockaddr of `len` bytes (as the kernel reads it: family in
 * host order, port in network order). Throws RangeError when len is below
 * what the family needs.
 */
export function decodeSockaddr(raw: Buffer, len: number = raw.length): SockAddr {
  const b = raw.subarray(0, len);
  if (b.length < 2) return { family: 'unspec' };
  const family = b.readUInt16LE(0);
  switch (family) {
    case AF.INET:
      if (b.length < 8) throw new RangeError(`AF_INET sockaddr needs 8 bytes, got ${b.length}`);
      return { family: 'inet', address: formatIPv4(b.subarray(4, 8)), port: b.readUInt16BE(2) };
    case AF.INET6: {
      if (b.length < 24) throw new RangeError(`AF_INET6 sockaddr needs 24 bytes, got ${b.length}`);
      const scopeId = b.length >= 28 ? b.readUInt32LE(24) : 0;
      return {
        family: 'inet6',
        address: formatIPv6(b.subarray(8, 24)),
        port: b.readUInt16BE(2),
        ...(scopeId !== 0 ? { scopeId } : {}),
      };
    }
    case AF.UNIX: {
      if (b.length === 2) return { family: 'unix', path: Buffer.alloc(0), abstract: false, unnamed: true };
      if (b[2] === 0) {
        // Abstract: every byte after the leading NUL up to addrlen is the name (NULs included).
        return { family: 'unix', path: Buffer.from(b.subarray(3)), abstract: true, unnamed: false };
      }
      const p = b.subarray(2);
      const nul = p.indexOf(0);
      return {
        family: 'unix',
        path: Buffer.from(nul < 0 ? p : p.subarray(0, nul)),
        abstract: false,
        unnamed: false,
      };
    }
    case AF.UNSPEC:
      return { family: 'unspec' };
    default:
      return { family: 'other', familyNumber: family, raw: Buffer.from(b) };
  }
}

function stack(b: Buffer, off: number, n: number): bigint[] {
  const out: bigint[] = [];
  const count = Math.min(n, NET_STACK_MAX);
  for (let i = 0; i < count; i++) out.push(b.readBigUInt64LE(off + i * 8));
  return out;
}

function expect(b: Buffer, kind: number, size: number, what: string): void {
  if (b.length !== size) {
    throw new DecodeError(`${what} record (kind ${kind}) must be ${size} bytes, got ${b.length}`, {
      length: b.length,
      kind,
      expected: size,
    });
  }
}

function enumName<T extends readonly string[]>(
  names: T,
  v: number,
  what: string,
  b: Buffer,
): Exclude<T[number], ''> {
  const n = names[v];
  if (n === undefined || n === '') {
    throw new DecodeError(`unknown ${what} ${v} in a net record`, {
      length: b.length,
      kind: b.readUInt32LE(16),
    });
  }
  return n as Exclude<T[number], ''>;
}

function decodeTcpState(b: Buffer): TcpStateEvent {
  const L = NET_LAYOUT.net_tcp_state_event.members;
  expect(b, NET_KIND.TCP_STATE, NET_LAYOUT.net_tcp_state_event.size, 'tcp_state');
  const oldstate = b.readInt32LE(L.oldstate[0]);
  const newstate = b.readInt32LE(L.newstate[0]);
  return {
    type: 'tcp_state',
    header: header(b),
    event: enumName(TCP_EVENTS, b.readUInt8(L.event[0]), 'tcp event', b),
    direction: DIRECTIONS[b.readUInt8(L.direction[0])] ?? 'unknown',
    attributed: (b.readUInt8(L.attribution[0]) & NET_ATTR_OWNER) !== 0,
    oldState: TCP_STATES[oldstate] ?? String(oldstate),
    newState: TCP_STATES[newstate] ?? String(newstate),
    tuple: tuple(b, L.t[0]),
    durationNs: b.readBigUInt64LE(L.duration_ns[0]),
    bytesAcked: b.readBigUInt64LE(L.bytes_acked[0]),
    bytesReceived: b.readBigUInt64LE(L.bytes_received[0]),
  };
}

function decodeSock(b: Buffer, kind: number): SockEvent {
  const L = NET_LAYOUT.net_sock_event.members;
  expect(b, kind, NET_LAYOUT.net_sock_event.size, kind === NET_KIND.CONNECT ? 'net_connect' : 'net_accept');
  const flags = b.readUInt8(L.sock_flags[0]);
  const addrlen = Math.min(b.readUInt32LE(L.addrlen[0]), NET_SOCKADDR_MAX);
  let address: SockAddr | undefined;
  if (addrlen > 0) {
    try {
      address = decodeSockaddr(b.subarray(L.sockaddr[0], L.sockaddr[0] + addrlen));
    } catch {
      // A caller passed an addrlen too short for its family: keep the bytes, say so.
      address = {
        family: 'other',
        familyNumber: b.readUInt16LE(L.sockaddr[0]),
        raw: Buffer.from(b.subarray(L.sockaddr[0], L.sockaddr[0] + addrlen)),
      };
    }
  }
  return {
    type: kind === NET_KIND.CONNECT ? 'net_connect' : 'net_accept',
    header: header(b),
    call: enumName(SOCK_CALLS, b.readUInt8(L.call[0]), 'libc call', b),
    fd: b.readInt32LE(L.fd[0]),
    ret: b.readInt32LE(L.ret[0]),
    errno: flags & NET_ERRNO_KNOWN ? b.readInt32LE(L.err[0]) : undefined,
    address,
    addressTruncated: (flags & NET_SA_TRUNCATED) !== 0,
    addressFault: (flags & NET_SA_FAULT) !== 0,
    tuple: tuple(b, L.t[0]),
    acceptFlags: b.readUInt32LE(L.accept_flags[0]),
    durationNs: b.readBigUInt64LE(L.duration_ns[0]),
    stack: stack(b, L.stack[0], b.readUInt32LE(L.stack_len[0])),
  };
}

function decodeTls(b: Buffer, kind: number): TlsEvent {
  const L = NET_LAYOUT.net_tls_event.members;
  expect(b, kind, NET_LAYOUT.net_tls_event.size, kind === NET_KIND.TLS_IO ? 'tls_io' : 'tls_handshake');
  const flags = b.readUInt8(L.tls_flags[0]);
  const op = enumName(TLS_OPS, b.readUInt8(L.op[0]), 'TLS op', b);
  const resultNum = b.readUInt8(L.result[0]);
  const sniLen = Math.min(b.readUInt32LE(L.sni_len[0]), L.sni[1]);
  const fd = b.readInt32LE(L.fd[0]);
  const role: TlsEvent['role'] =
    flags & NET_TLS_SERVER
      ? 'server'
      : flags & NET_TLS_CLIENT || op === 'SSL_connect' || (flags & NET_TLS_SNI_SET) !== 0
        ? 'client'
        : 'unknown';
  return {
    type: kind === NET_KIND.TLS_IO ? 'tls_io' : 'tls_handshake',
    header: header(b),
    ssl: b.readBigUInt64LE(L.ssl[0]),
    op,
    result: kind === NET_KIND.TLS_HANDSHAKE ? enumName(TLS_RESULTS, resultNum, 'TLS result', b) : undefined,
    role,
    requested: b.readBigInt64LE(L.requested[0]),
    ret: Number(b.readBigInt64LE(L.ret[0])),
    bytes: b.readBigUInt64LE(L.bytes[0]),
    tuple: flags & NET_TLS_TUPLE_KNOWN ? tuple(b, L.t[0]) : undefined,
    fd: fd >= 0 ? fd : undefined,
    attempts: b.readUInt32LE(L.attempts[0]),
    sni:
      flags & NET_TLS_SNI_SET && sniLen > 0
        ? Buffer.from(b.subarray(L.sni[0], L.sni[0] + sniLen))
        : undefined,
    sniTruncated: (flags & NET_TLS_SNI_TRUNCATED) !== 0,
    durationNs: b.readBigUInt64LE(L.duration_ns[0]),
    stack: stack(b, L.stack[0], b.readUInt32LE(L.stack_len[0])),
  };
}

/**
 * Decode one ring record of the net object. Throws DecodeError for a record
 * shorter than the header, of an unknown kind, or of the wrong length.
 */
export function decodeNetRecord(record: Buffer): NetEvent {
  if (record.length < HDR) {
    throw new DecodeError(`net record of ${record.length} bytes is shorter than the ${HDR}-byte header`, {
      length: record.length,
    });
  }
  const kind = record.readUInt32LE(16);
  switch (kind) {
    case NET_KIND.TCP_STATE:
      return decodeTcpState(record);
    case NET_KIND.CONNECT:
    case NET_KIND.ACCEPT:
      return decodeSock(record, kind);
    case NET_KIND.TLS_IO:
    case NET_KIND.TLS_HANDSHAKE:
      return decodeTls(record, kind);
    default:
      throw new DecodeError(`unknown net record kind ${kind}`, { length: record.length, kind });
  }
}
