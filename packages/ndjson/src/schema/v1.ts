/**
 * Evidence record schema, version 1: the single source of truth.
 *
 * Types, validator, fast encoders, the shipped JSON Schema and the field
 * tables of docs/evidence-schema.md are all derived from this file. Change a
 * record here, then run `npm run gen -w @stellaops/ndjson` to refresh the
 * JSON Schema file and the docs tables; tests fail until they match.
 */
import { IPV4_PATTERN, IPV6_SHAPE, isCanonicalIPv6 } from '../ip.js';
import {
  array,
  bool,
  bytes,
  type ConstType,
  constant,
  enumOf,
  type Field,
  type Fields,
  i32,
  int,
  type ObjectType,
  object,
  opt,
  pattern,
  type Rule,
  req,
  str,
  u16,
  u32,
  u64,
} from './dsl.js';

/** The schema version every v1 record carries in `schema_version`. */
export const SCHEMA_VERSION = 1;

// Linux limits, from include/uapi/linux/limits.h and include/linux/sched.h.
const PATH_MAX = 4096;
const TASK_COMM_LEN = 16; // includes the NUL
const UNIX_PATH_MAX = 108; // sizeof(sockaddr_un.sun_path)
const PERF_MAX_STACK_DEPTH = 127;

/** Digest of an OCI manifest or config blob. */
export const DIGEST = pattern(
  'digest',
  /^sha256:[0-9a-f]{64}$/,
  '"sha256:" followed by 64 lowercase hex digits',
  {
    fast: (s) => {
      if (s.length !== 71 || !s.startsWith('sha256:')) return false;
      for (let i = 7; i < 71; i++) {
        const c = s.charCodeAt(i);
        if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
      }
      return true;
    },
  },
);
/** A user-space address or offset. */
export const HEX64 = pattern(
  'hex64',
  /^0x(?:0|[1-9a-f][0-9a-f]{0,15})$/,
  '"0x" followed by 1 to 16 lowercase hex digits without leading zeros',
);
const BUILD_ID = pattern(
  'build_id',
  /^(?:[0-9a-f]{2}){1,64}$/,
  'an even number (2..128) of lowercase hex digits',
);
const IPV4 = pattern('ipv4', IPV4_PATTERN, 'IPv4 dotted decimal without leading zeros, like "10.0.0.1"');
const IPV6 = pattern(
  'ipv6',
  IPV6_SHAPE,
  'IPv6 in RFC 5952 form (lowercase, "::" for the longest zero run), IPv4-mapped as "::ffff:a.b.c.d"',
  { check: isCanonicalIPv6 },
);
const IP = pattern('ip', /^[0-9a-f:.]{2,45}$/, 'an IPv4 or IPv6 address in canonical text form', {
  check: (s) => IPV4_PATTERN.test(s) || isCanonicalIPv6(s),
});
const ATTACH_TYPE = pattern(
  'attach_type',
  /^[a-z][a-z0-9_]{0,63}$/,
  'a lowercase attach type name like "tp_btf", "raw_tp", "tracepoint", "uprobe", "none"',
);

/** TCP states by kernel number (include/net/tcp_states.h), index 0 unused. */
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

/** Every record `type` of schema v1. */
export const RECORD_TYPES = [
  'file_open',
  'process_exec',
  'process_exit',
  'tcp_state',
  'net_connect',
  'net_accept',
  'tls_io',
  'tls_handshake',
  'collector_status',
] as const;

/** A record `type` of schema v1. */
export type RecordType = (typeof RECORD_TYPES)[number];

const tcpState = enumOf(TCP_STATES);
const inetFamily = enumOf(['inet', 'inet6']);

/** Address narrowing for an object whose `family` is "inet" or "inet6". */
function ipRules(addrFields: readonly string[]): Rule[] {
  const narrow = (t: typeof IPV4) => Object.fromEntries(addrFields.map((f) => [f, t]));
  return [
    { when: { field: 'family', in: ['inet'] }, narrow: narrow(IPV4) },
    { when: { field: 'family', in: ['inet6'] }, narrow: narrow(IPV6) },
  ];
}

const k8s = object('k8s', {
  pod: opt(str(253), 'Pod name.'),
  namespace: opt(str(63), 'Pod namespace.'),
  pod_uid: opt(str(64), 'Pod UID.'),
  container: opt(str(253), 'Container name in the pod spec.'),
});

const container = object('container', {
  id: opt(str(128), 'Container ID as the runtime names it (64 hex digits for Docker, containerd, CRI-O).'),
  runtime: opt(str(64), 'Runtime that owns the container: "docker", "containerd", "cri-o", "podman".'),
  image_ref: opt(str(4096), 'Image reference the container was created from, as the runtime recorded it.'),
  image_manifest_digest: opt(DIGEST, 'Digest of the image manifest (the digest a registry serves).'),
  image_config_digest: opt(DIGEST, 'Digest of the image config blob (the image ID).'),
  k8s: opt(k8s, 'Kubernetes identity, when the runtime is driven by a kubelet.'),
  cgroup_path: opt(bytes(PATH_MAX), 'cgroup v2 path of the process, relative to the cgroup root.'),
  status: opt(
    enumOf(['resolved', 'unknown']),
    '"resolved" when the cgroup mapped to a known container, "unknown" when it did not (yet).',
  ),
});

const stackFrame = object('stack_frame', {
  module: req(bytes(PATH_MAX), 'Path of the mapped file (ELF) holding the address.'),
  offset: req(HEX64, 'File offset of the address inside `module`.'),
  symbol: opt(str(1024), 'Symbol name when the module has symbols.'),
  build_id: opt(BUILD_ID, 'GNU build ID of `module`, lowercase hex.'),
});

const stack = opt(
  array(stackFrame, PERF_MAX_STACK_DEPTH, { minItems: 1 }),
  'User-space call stack, innermost frame first: only frames verified to be code (an executable file mapping of the process, an executable segment of the file); it ends before the first word that is not.',
);

const connection = object(
  'connection',
  {
    family: req(inetFamily, 'Address family of the socket.'),
    saddr: req(IP, 'Local address.'),
    sport: req(u16(), 'Local port.'),
    daddr: req(IP, 'Remote address.'),
    dport: req(u16(), 'Remote port.'),
  },
  ipRules(['saddr', 'daddr']),
);

/** Members every record has. */
export const ENVELOPE_FIELDS = {
  schema_version: req(constant(SCHEMA_VERSION), 'Schema version, always 1 in v1.'),
  seq: req(
    u64(),
    'Sequence number within the stream: the first record of a stream may start anywhere, each next record is exactly one more.',
  ),
  mono_ns: req(u64(), 'Kernel time of the event, CLOCK_MONOTONIC / boot-time ns.'),
  wall_ns: req(u64(), 'Unix-epoch time of the event in ns (mono_ns mapped to wall clock).'),
  host_id: req(str(256), 'Stable ID of the host the collector runs on.'),
} as const satisfies Fields;

/** Members every process record (all types but collector_status) has. */
export const PROCESS_FIELDS = {
  pid: req(u32(), 'Process ID (thread group ID) in the initial PID namespace.'),
  tid: req(u32(), 'Thread ID in the initial PID namespace.'),
  ppid: req(u32(), 'Parent process ID (real parent) in the initial PID namespace.'),
  uid: req(u32(), 'Real user ID.'),
  gid: req(u32(), 'Real group ID.'),
  comm: req(bytes(TASK_COMM_LEN - 1), 'Task command name (kernel `comm`, at most 15 bytes).'),
  cgroup_id: req(u64(), 'cgroup v2 ID (inode number of the cgroup directory).'),
  container: opt(
    container,
    'Container attribution, when enrichment resolved (or tried to resolve) the cgroup.',
  ),
} as const satisfies Fields;

/**
 * Why a content digest is absent: the record says so instead of leaving the
 * member out silently.
 */
export const DIGEST_UNAVAILABLE_REASONS = [
  'process_exited',
  'file_changed',
  'not_found',
  'unreadable',
  'not_regular',
  'too_large',
  'path_truncated',
  'timeout',
  'overloaded',
] as const;

const digestUnavailable = (what: string) =>
  opt(
    enumOf(DIGEST_UNAVAILABLE_REASONS),
    `Why ${what} has no digest: "process_exited" (no live process left to read it through; its root is gone), "file_changed" (the file at that path is no longer the one the kernel ran: another device or inode), "not_found" (no such file under the process's root), "unreadable" (open or read failed, e.g. permission or I/O error), "not_regular" (not a regular file), "too_large" (over the collector's size limit), "path_truncated" (the path was cut, so it cannot be opened), "timeout" (the digest was not ready within the record's wait), "overloaded" (the digest queue was full).`,
  );

const runtimeSetup = opt(
  bool(),
  "True when the container runtime's own set-up process produced the record (runc's `runc init` exec and its nsexec stages `runc:[0:PARENT]`, `runc:[1:CHILD]`, `runc:[2:INIT]`, which open files while building the container's root before the entrypoint runs): not the image's behaviour. Absent otherwise. Set from the task name runc gives these stages, which a process can also give itself: readers may set such records aside, not treat them as proof.",
);

const fileOpen = {
  path: req(bytes(PATH_MAX), 'Path as opened; absolute when `path_resolution` is not "unresolved".'),
  path_resolution: req(
    enumOf(['absolute', 'cwd', 'dirfd', 'fd', 'unresolved']),
    '"absolute": the caller passed an absolute path; "cwd": relative, joined to the working directory; "dirfd": relative, joined to the directory of `dirfd`; "fd": read back from the opened file itself (open_by_handle_at, the LSM probe); "unresolved": relative and could not be joined (path is as passed).',
  ),
  path_truncated: req(
    bool(),
    'True when `path` is not the whole path: it was longer than the probe could copy or than this schema holds and was cut (the start is kept), or the string the caller passed could not be read (then `path` is the directory it would be joined to, or empty with `path_resolution` "unresolved").',
  ),
  flags: req(u32(), 'open(2) flags (O_*).'),
  mode: req(u32(), 'Mode argument (used with O_CREAT / O_TMPFILE).'),
  dirfd: req(i32(), 'Directory file descriptor argument; -100 is AT_FDCWD.'),
  ret: req(i32(), 'Return value: the new file descriptor, or -errno.'),
  syscall: req(
    enumOf(['open', 'openat', 'openat2', 'creat', 'open_by_handle_at', 'lsm']),
    'System call that opened the file; "lsm" when seen at security_file_open (io_uring and kernel-internal opens too).',
  ),
  container_path: opt(
    bytes(PATH_MAX),
    'The same file as a path inside the container root, when enrichment mapped it.',
  ),
  file_digest: opt(
    DIGEST,
    "Content digest of a shared object the process opened to map (a successful read-only open of a `*.so` / `*.so.N` file), read through the process's root off the hot path: matches the file to a package in an SBOM. Absent for other opens.",
  ),
  file_digest_unavailable: digestUnavailable('a shared object open'),
  runtime_setup: runtimeSetup,
} as const satisfies Fields;

const processExec = {
  filename: req(bytes(PATH_MAX), 'Path of the executed file, as passed to execve.'),
  argv: req(array(bytes(PATH_MAX * 32), 1024), 'Argument vector as copied by the probe.'),
  argv_truncated: req(
    bool(),
    'True when argv or `filename` had more entries or bytes than the probe copies or this schema holds (the first entries are kept).',
  ),
  exe_dev: req(u64(), 'Device number (st_dev, kernel encoding) of the executed file.'),
  exe_ino: req(u64(), 'Inode number of the executed file.'),
  ret: opt(i32(), 'execve return value when captured (0, or -errno for a failed exec).'),
  container_path: opt(bytes(PATH_MAX), 'The executed file as a path inside the container root.'),
  exe_path: opt(
    bytes(PATH_MAX),
    "Path of the file the kernel runs, from the process's root (inside a container: the container's view), read from the kernel's file object: the real file behind `/proc/self/exe`, a symlink or a relative `filename`. For a script, the interpreter binary.",
  ),
  exe_path_truncated: opt(
    bool(),
    'True when `exe_path` was longer or deeper than kept: it is the end of the real path.',
  ),
  interpreter: opt(
    bytes(PATH_MAX),
    'For a script (`#!` line, or a binfmt_misc handler): the interpreter as the script named it; `filename` is then the script and `exe_path` the interpreter binary. Absent for a binary run directly.',
  ),
  exe_digest: opt(
    DIGEST,
    "Content digest of the file at `exe_path` (checked to be the device and inode the kernel ran), read through the process's root off the hot path: matches the binary to a package in an SBOM.",
  ),
  exe_digest_unavailable: digestUnavailable('the executed file'),
  runtime_setup: runtimeSetup,
} as const satisfies Fields;

const processExit = {
  exit_code: req(int(0, 255, 'u8'), 'Exit status (0..255); 0 when killed by a signal.'),
  signal: req(int(0, 127, 'u7'), 'Terminating signal number, 0 when the process exited normally.'),
  core_dumped: opt(bool(), 'True when a core dump was written.'),
  duration_ns: opt(u64(), 'Process lifetime in ns, from exec (or fork) to exit.'),
  runtime_setup: runtimeSetup,
} as const satisfies Fields;

const tcpStateFields = {
  family: req(inetFamily, 'Address family of the socket.'),
  saddr: req(IP, 'Local address.'),
  sport: req(u16(), 'Local port.'),
  daddr: req(IP, 'Remote address.'),
  dport: req(u16(), 'Remote port.'),
  old_state: req(tcpState, 'TCP state before the transition (include/net/tcp_states.h names).'),
  new_state: req(tcpState, 'TCP state after the transition.'),
  direction: req(enumOf(['outbound', 'inbound', 'unknown']), 'Who opened the connection.'),
  event: req(
    enumOf(['connect_attempt', 'established', 'accepted', 'closed', 'refused', 'reset', 'failed']),
    'What the transition means: "connect_attempt" (CLOSE→SYN_SENT), "established" (outbound SYN_SENT→ESTABLISHED), "accepted" (inbound SYN_RECV→ESTABLISHED), "closed" (an established connection reached CLOSE), "refused" (SYN_SENT→CLOSE on RST), "reset" (an established connection reset), "failed" (an attempt that ended otherwise, e.g. a timeout).',
  ),
  attribution: req(
    enumOf(['owner', 'current', 'unknown']),
    '"owner": pid/comm are the socket owner recorded at connect/accept; "current": the task running when the state changed (may be softirq context); "unknown": no task.',
  ),
  duration_ns: opt(u64(), 'Connection lifetime in ns, on close.'),
  bytes_sent: opt(u64(), 'Bytes acknowledged by the peer (tcp_sock.bytes_acked), on close.'),
  bytes_received: opt(u64(), 'Bytes received (tcp_sock.bytes_received), on close.'),
} as const satisfies Fields;

function netFields<const S extends string>(syscalls: readonly S[], addrDoc: string) {
  return {
    fd: req(i32(), 'Socket file descriptor argument.'),
    ret: req(i32(), 'Return value of the libc call (0 or new fd on success, -1 on error).'),
    errno: opt(int(0, 4095, 'errno'), 'errno when `ret` is -1 (positive, e.g. 115 for EINPROGRESS).'),
    family: req(
      enumOf(['inet', 'inet6', 'unix', 'other']),
      'Address family of the sockaddr ("other" for any other family, or no address).',
    ),
    addr: opt(IP, addrDoc),
    port: opt(u16(), 'Port of `addr`.'),
    unix_path: opt(
      bytes(UNIX_PATH_MAX - 1),
      'AF_UNIX path; for an abstract socket the name after the leading NUL.',
    ),
    unix_abstract: opt(bool(), 'True for an abstract AF_UNIX address (Linux-specific).'),
    syscall: req(enumOf(syscalls), 'libc function that was called.'),
    stack,
  } as const satisfies Fields;
}

const netConnect = netFields(['connect'], 'Destination address.');
const netAccept = netFields(['accept', 'accept4'], 'Peer address returned by accept.');

/** Rules shared by net_connect and net_accept: the address members follow the family. */
const netRules = (requireAddr: boolean): Rule[] => [
  {
    when: { field: 'family', in: ['inet'] },
    ...(requireAddr ? { require: ['addr', 'port'] } : {}),
    forbid: ['unix_path', 'unix_abstract'],
    narrow: { addr: IPV4 },
  },
  {
    when: { field: 'family', in: ['inet6'] },
    ...(requireAddr ? { require: ['addr', 'port'] } : {}),
    forbid: ['unix_path', 'unix_abstract'],
    narrow: { addr: IPV6 },
  },
  {
    when: { field: 'family', in: ['unix'] },
    ...(requireAddr ? { require: ['unix_path', 'unix_abstract'] } : {}),
    forbid: ['addr', 'port'],
  },
  { when: { field: 'family', in: ['other'] }, forbid: ['addr', 'port', 'unix_path', 'unix_abstract'] },
];

const READ_FUNCTIONS = ['SSL_read', 'SSL_read_ex', 'SSL_peek', 'SSL_peek_ex'] as const;
const WRITE_FUNCTIONS = ['SSL_write', 'SSL_write_ex'] as const;

const tlsIo = {
  direction: req(enumOf(['read', 'write']), 'Plaintext direction: "read" from the peer, "write" to it.'),
  ssl_ptr: req(HEX64, 'Address of the SSL object: ties reads, writes and the handshake of one session.'),
  requested: req(u64(), 'Bytes the caller asked to read or write.'),
  returned: req(u64(), 'Bytes actually transferred (0 on failure). Never the payload itself.'),
  ret: req(i32(), 'Return value of the function.'),
  function: req(enumOf([...READ_FUNCTIONS, ...WRITE_FUNCTIONS]), 'OpenSSL function that was called.'),
  connection: opt(connection, 'TCP connection of the SSL object, when known.'),
  sni: opt(str(255), 'Server name (SNI) of the session, when known.'),
  library: opt(bytes(PATH_MAX), 'Path of the TLS library the probe is attached to.'),
  stack,
} as const satisfies Fields;

const tlsHandshake = {
  ssl_ptr: req(HEX64, 'Address of the SSL object.'),
  sni: opt(str(255), 'Server name (SNI) sent or received, when known.'),
  result: req(enumOf(['ok', 'failed']), 'Handshake outcome ("ok" when `ret` is 1).'),
  ret: req(i32(), 'Return value of the function.'),
  function: req(
    enumOf(['SSL_do_handshake', 'SSL_connect', 'SSL_accept', ...READ_FUNCTIONS, ...WRITE_FUNCTIONS]),
    'OpenSSL function in which the handshake completed: a read or write function when it completed implicitly inside the first SSL_read/SSL_write.',
  ),
  connection: opt(connection, 'TCP connection of the SSL object, when known.'),
  library: opt(bytes(PATH_MAX), 'Path of the TLS library the probe is attached to.'),
  stack,
} as const satisfies Fields;

const probeStatus = object('probe_status', {
  name: req(str(128), 'Probe name, unique within the record.'),
  attached: req(bool(), 'True when the probe is attached and producing events.'),
  attach_type: req(ATTACH_TYPE, 'How it is attached ("none" when not attached).'),
  reason: opt(str(1024), 'Why it is not attached, or why a fallback attach type is used.'),
  seen: req(
    u64(),
    "Events the probe's kernel program saw in the window, counted on entry, before any filter or dedup.",
  ),
  filtered: req(u64(), 'Events dropped by configured filters (in the kernel or in user space).'),
  deduplicated: req(u64(), 'Events folded into an earlier identical record.'),
  emitted: req(u64(), 'Records written to the stream.'),
  lost: req(
    u64(),
    'Events lost (ring buffer full, reader too slow, a record the schema refuses, or still in flight at the stop).',
  ),
  in_flight: opt(
    u64(),
    'Events seen but not yet filtered, deduplicated, emitted or lost when the record was made (in a program, a ring buffer or the pipeline); absent means 0 and a final record never has it. seen = filtered + deduplicated + emitted + lost + in_flight.',
  ),
});

const collectorStatus = {
  window_start_wall_ns: req(u64(), 'Start of the window the counters cover (unix-epoch ns).'),
  window_end_wall_ns: req(u64(), 'End of the window (unix-epoch ns), not before the start.'),
  probes: req(array(probeStatus, 256, { sortedBy: 'name' }), 'One entry per probe, sorted by `name`.'),
  final: opt(bool(), 'True on the last status record of a run.'),
} as const satisfies Fields;

type WithEnvelope<T extends string, F extends Fields> = typeof ENVELOPE_FIELDS & {
  type: Field<ConstType<T>, false>;
} & F;

function recordType<const T extends string, const F extends Fields>(
  type: T,
  fields: F,
  rules: readonly Rule[] = [],
  u64Order: readonly (readonly [string, string])[] = [],
): ObjectType<WithEnvelope<T, F>> {
  const all = {
    ...ENVELOPE_FIELDS,
    type: req(constant(type), `Record type, always "${type}".`),
    ...fields,
  };
  return object(type, all as WithEnvelope<T, F>, rules, u64Order);
}

/** The object type of every record, by `type`. */
export const RECORD_SCHEMAS = {
  file_open: recordType('file_open', { ...PROCESS_FIELDS, ...fileOpen }),
  process_exec: recordType('process_exec', { ...PROCESS_FIELDS, ...processExec }),
  process_exit: recordType('process_exit', { ...PROCESS_FIELDS, ...processExit }),
  tcp_state: recordType('tcp_state', { ...PROCESS_FIELDS, ...tcpStateFields }, ipRules(['saddr', 'daddr'])),
  net_connect: recordType('net_connect', { ...PROCESS_FIELDS, ...netConnect }, netRules(true)),
  net_accept: recordType('net_accept', { ...PROCESS_FIELDS, ...netAccept }, netRules(false)),
  tls_io: recordType('tls_io', { ...PROCESS_FIELDS, ...tlsIo }, [
    { when: { field: 'direction', in: ['read'] }, narrow: { function: enumOf(READ_FUNCTIONS) } },
    { when: { field: 'direction', in: ['write'] }, narrow: { function: enumOf(WRITE_FUNCTIONS) } },
  ]),
  tls_handshake: recordType('tls_handshake', { ...PROCESS_FIELDS, ...tlsHandshake }),
  collector_status: recordType(
    'collector_status',
    collectorStatus,
    [],
    [['window_start_wall_ns', 'window_end_wall_ns']],
  ),
} as const;

/** Validator-only checks, beyond what the JSON Schema can say (documented in the schema too). */
export const VALIDATOR_ONLY_RULES = [
  'u64 strings are at most 18446744073709551615',
  'text and byte-string limits count UTF-8 bytes (byte strings: raw bytes)',
  'a {"b64"} byte string must be standard padded base64 of bytes that are NOT valid UTF-8 (valid UTF-8 is always a plain string)',
  'strings never contain lone surrogates',
  'IPv6 addresses are in RFC 5952 form',
  'collector_status.probes is strictly ascending by name (so names are unique)',
  'collector_status.window_start_wall_ns <= window_end_wall_ns',
] as const;
