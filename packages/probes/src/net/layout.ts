/**
 * Byte layout of the records of bpf/net.bpf.o, mirrored by hand from
 * bpf/net.h (and the header of bpf/common.h). test/net-layout.test.ts checks
 * every entry against the compiled object's BTF, so a C change that is not
 * mirrored here fails the tests.
 */

/** [offset, size] in bytes. */
export type NetField = readonly [offset: number, size: number];

/** Size and member offsets of one C struct. */
export interface NetStructLayout {
  readonly size: number;
  readonly members: Readonly<Record<string, NetField>>;
}

/** User stack frames kept per uprobe record (NET_STACK_MAX). */
export const NET_STACK_MAX = 16;
/** sockaddr bytes kept (NET_SOCKADDR_MAX = sizeof(struct sockaddr_storage)). */
export const NET_SOCKADDR_MAX = 128;
/** Server-name bytes kept (NET_SNI_MAX). */
export const NET_SNI_MAX = 256;

/** Struct layouts of net.h, by C struct name. */
export const NET_LAYOUT = {
  net_tuple: {
    size: 40,
    members: {
      laddr: [0, 16],
      raddr: [16, 16],
      lport: [32, 2],
      rport: [34, 2],
      family: [36, 2],
      pad: [38, 2],
    },
  },
  net_tcp_state_event: {
    size: 136,
    members: {
      hdr: [0, 56],
      duration_ns: [56, 8],
      bytes_acked: [64, 8],
      bytes_received: [72, 8],
      t: [80, 40],
      oldstate: [120, 4],
      newstate: [124, 4],
      event: [128, 1],
      direction: [129, 1],
      attribution: [130, 1],
      pad: [131, 5],
    },
  },
  net_sock_event: {
    size: 392,
    members: {
      hdr: [0, 56],
      duration_ns: [56, 8],
      t: [64, 40],
      fd: [104, 4],
      ret: [108, 4],
      err: [112, 4],
      addrlen: [116, 4],
      accept_flags: [120, 4],
      stack_len: [124, 4],
      call: [128, 1],
      sock_flags: [129, 1],
      pad: [130, 6],
      sockaddr: [136, NET_SOCKADDR_MAX],
      stack: [264, 8 * NET_STACK_MAX],
    },
  },
  net_tls_event: {
    size: 544,
    members: {
      hdr: [0, 56],
      ssl: [56, 8],
      duration_ns: [64, 8],
      requested: [72, 8],
      ret: [80, 8],
      bytes: [88, 8],
      t: [96, 40],
      fd: [136, 4],
      stack_len: [140, 4],
      attempts: [144, 4],
      op: [148, 1],
      result: [149, 1],
      tls_flags: [150, 1],
      pad: [151, 1],
      sni_len: [152, 4],
      sni: [156, NET_SNI_MAX],
      stack: [416, 8 * NET_STACK_MAX],
    },
  },
} as const satisfies Record<string, NetStructLayout>;

/** enum net_kind: the header's kind field of this object's records. */
export const NET_KIND = { TCP_STATE: 16, CONNECT: 17, ACCEPT: 18, TLS_IO: 19, TLS_HANDSHAKE: 20 } as const;

/** enum net_probe: slot in the object's `counters` map, by probe name. */
export const NET_COUNTER_SLOT = {
  tcp_state: 0,
  net_connect: 1,
  net_accept: 2,
  tls_handshake: 3,
  tls_io: 4,
} as const;

/** Probe names of the net object, as collector_status reports them. */
export type NetProbeName = keyof typeof NET_COUNTER_SLOT;

/** enum net_tcp_event, index = value. */
export const TCP_EVENTS = [
  '',
  'connect',
  'established',
  'accepted',
  'closed',
  'refused',
  'reset',
  'failed',
] as const;
/** What a tcp_state record says happened. */
export type TcpEvent = Exclude<(typeof TCP_EVENTS)[number], ''>;

/** enum net_direction, index = value. */
export const DIRECTIONS = ['unknown', 'outbound', 'inbound'] as const;
/** Who opened the connection: this host (outbound) or the peer (inbound). */
export type NetDirection = (typeof DIRECTIONS)[number];

/** TCP state names (include/net/tcp_states.h), index = value. */
export const TCP_STATES = [
  'UNKNOWN',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
  'BOUND_INACTIVE',
] as const;

/** enum net_call, index = value. */
export const SOCK_CALLS = ['', 'connect', 'accept', 'accept4'] as const;
/** The libc call of a net_connect/net_accept record. */
export type SockCall = Exclude<(typeof SOCK_CALLS)[number], ''>;

/** enum net_tls_op, index = value: the OpenSSL function that returned. */
export const TLS_OPS = [
  '',
  'SSL_read',
  'SSL_write',
  'SSL_read_ex',
  'SSL_write_ex',
  'SSL_do_handshake',
  'SSL_connect',
  'SSL_accept',
  'SSL_free',
] as const;
/** The OpenSSL function behind a tls record. */
export type TlsOp = Exclude<(typeof TLS_OPS)[number], ''>;

/** enum net_tls_result, index = value. */
export const TLS_RESULTS = ['', 'ok', 'failed', 'implicit'] as const;
/** Handshake outcome: ok (the call returned 1), failed, implicit (completed inside the first read/write). */
export type TlsResult = Exclude<(typeof TLS_RESULTS)[number], ''>;

/** attribution bits */
export const NET_ATTR_OWNER = 0x1;
export const NET_ATTR_CURRENT = 0x2;
/** sock_flags bits */
export const NET_SA_TRUNCATED = 0x1;
export const NET_SA_FAULT = 0x2;
export const NET_ERRNO_KNOWN = 0x4;
export const NET_TUPLE_FROM_FD = 0x8;
/** tls_flags bits */
export const NET_TLS_SNI_SET = 0x1;
export const NET_TLS_SNI_TRUNCATED = 0x2;
export const NET_TLS_TUPLE_KNOWN = 0x4;
export const NET_TLS_SERVER = 0x8;
export const NET_TLS_CLIENT = 0x10;

/** Address families (include/linux/socket.h). */
export const AF = { UNSPEC: 0, UNIX: 1, INET: 2, INET6: 10 } as const;
