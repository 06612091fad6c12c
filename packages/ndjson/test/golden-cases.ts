/**
 * The golden vector cases. `npm run gen -w @stellaops/ndjson` renders them to
 * test/vectors/ (the files other implementations, like the .NET Scanner,
 * check their bytes against); golden.test.ts fails when the committed files
 * and this rendering differ, or when a canonical line differs from
 * json-canonicalize, or a sha256 from node:crypto.
 */
import { createHash } from 'node:crypto';
import { bytesField } from '../src/bytes.js';
import { encodeRecord } from '../src/encode.js';
import type { ContainerInfo, EvidenceRecord, ProcessFields } from '../src/records.js';

const HOST = 'host-7f3a9c2e';
const D1 = 'sha256:4f1b8a7c3e2d6b5a9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928';
const D2 = 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';

const container: ContainerInfo = {
  id: '3f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c',
  runtime: 'containerd',
  image_ref:
    'registry.example.com/team/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  image_manifest_digest: D2,
  image_config_digest: D1,
  k8s: {
    pod: 'api-7d9f8b6c5-x2x4z',
    namespace: 'payments',
    pod_uid: '0b7e3f5a-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
    container: 'api',
  },
  cgroup_path:
    '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b7e3f5a_1c2d_4e5f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-3f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c.scope',
  status: 'resolved',
};

function proc(over: Partial<ProcessFields> = {}): ProcessFields {
  return {
    pid: 4242,
    tid: 4242,
    ppid: 4100,
    uid: 1000,
    gid: 1000,
    comm: 'api-server',
    cgroup_id: '12884',
    container,
    ...over,
  };
}

function env(seq: number, mono: string) {
  return {
    schema_version: 1 as const,
    seq: String(seq),
    mono_ns: mono,
    wall_ns: (1764100000000000000n + BigInt(mono)).toString(),
    host_id: HOST,
  };
}

/** One golden case: a record and why it is there. */
export interface GoldenCase {
  readonly name: string;
  readonly description: string;
  readonly record: EvidenceRecord;
}

/** Valid records, covering every type, unicode, non-UTF-8 bytes and extreme values. */
export const VALID_CASES: readonly GoldenCase[] = [
  {
    name: 'file_open_typical',
    description: 'Typical file_open in a Kubernetes container, all container members present.',
    record: {
      ...env(1, '5000000001'),
      type: 'file_open',
      ...proc(),
      path: '/etc/ssl/certs/ca-certificates.crt',
      path_resolution: 'absolute',
      path_truncated: false,
      flags: 524288,
      mode: 0,
      dirfd: -100,
      ret: 7,
      syscall: 'openat',
    },
  },
  {
    name: 'file_open_non_utf8_path',
    description: 'A path whose bytes are not UTF-8 (0xff 0xfe, a lone 0xc3) is written as {"b64"}.',
    record: {
      ...env(2, '5000000002'),
      type: 'file_open',
      ...proc(),
      path: bytesField(
        Buffer.from([...Buffer.from('/tmp/'), 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e, 0x2f, 0xc3]),
      ),
      path_resolution: 'cwd',
      path_truncated: false,
      flags: 577,
      mode: 420,
      dirfd: -100,
      ret: -13,
      syscall: 'open',
      container_path: bytesField(Buffer.from([0x2f, 0xff])),
    },
  },
  {
    name: 'file_open_control_characters',
    description:
      'Newline, tab, NUL-free C0 controls, DEL, quote and backslash in a valid UTF-8 path stay a string.',
    record: {
      ...env(3, '5000000003'),
      type: 'file_open',
      ...proc({ comm: 'sh\n\t"\\' }),
      path: 'weird\nname\twith\u0001\u001f\u007f"quote"\\back\rslash',
      path_resolution: 'unresolved',
      path_truncated: false,
      flags: 0,
      mode: 0,
      dirfd: 3,
      ret: 4,
      syscall: 'openat2',
    },
  },
  {
    name: 'file_open_unicode',
    description:
      'Non-ASCII UTF-8: CJK, an astral emoji (surrogate pair), combining accent (not normalised), U+2028/U+2029 (not escaped by RFC 8785), BOM character inside.',
    record: {
      ...env(4, '5000000004'),
      type: 'file_open',
      ...proc({ comm: 'café☕' }),
      path: '/data/日本語/😀/cafe\u0301/\u2028\u2029\ufeff/ok',
      path_resolution: 'dirfd',
      path_truncated: false,
      flags: 65,
      mode: 384,
      dirfd: 9,
      ret: 10,
      syscall: 'creat',
      container_path: '/app/日本語',
    },
  },
  {
    name: 'file_open_max_values',
    description:
      'Extreme values: u64 maximum in every u64 member, u32 maximum, i32 minimum, a 4096-byte truncated path, 15-byte comm.',
    record: {
      schema_version: 1,
      seq: '18446744073709551615',
      mono_ns: '18446744073709551615',
      wall_ns: '18446744073709551615',
      host_id: HOST,
      type: 'file_open',
      pid: 4294967295,
      tid: 4294967295,
      ppid: 0,
      uid: 4294967295,
      gid: 4294967295,
      comm: '123456789012345',
      cgroup_id: '18446744073709551615',
      path: `/${'a'.repeat(4095)}`,
      path_resolution: 'absolute',
      path_truncated: true,
      flags: 4294967295,
      mode: 4294967295,
      dirfd: -2147483648,
      ret: -2147483648,
      syscall: 'openat',
    },
  },
  {
    name: 'file_open_minimal_unknown_container',
    description: 'Zero values, empty path, comm of invalid UTF-8, container not (yet) resolved.',
    record: {
      schema_version: 1,
      seq: '0',
      mono_ns: '0',
      wall_ns: '0',
      host_id: HOST,
      type: 'file_open',
      pid: 0,
      tid: 0,
      ppid: 0,
      uid: 0,
      gid: 0,
      comm: bytesField(Buffer.from([0x6b, 0x77, 0x6f, 0x72, 0x6b, 0xe2, 0x82])),
      cgroup_id: '1',
      container: { status: 'unknown', cgroup_path: '/system.slice/foo.service' },
      path: '',
      path_resolution: 'unresolved',
      path_truncated: false,
      flags: 0,
      mode: 0,
      dirfd: 0,
      ret: 0,
      syscall: 'openat',
    },
  },
  {
    name: 'process_exec',
    description: 'execve with argv holding an empty argument, unicode and non-UTF-8 bytes.',
    record: {
      ...env(7, '5000000007'),
      type: 'process_exec',
      ...proc({ comm: 'curl' }),
      filename: '/usr/bin/curl',
      argv: [
        'curl',
        '-sS',
        '',
        '--data',
        'ünïcödé',
        bytesField(Buffer.from([0x80, 0x81])),
        'https://example.com/',
      ],
      argv_truncated: false,
      exe_dev: '66305',
      exe_ino: '1837465',
      ret: 0,
      container_path: '/usr/bin/curl',
    },
  },
  {
    name: 'process_exec_script_identity',
    description:
      'A #! script in a container: the interpreter as named, the binary the kernel runs with its digest.',
    record: {
      ...env(7, '5000000007'),
      type: 'process_exec',
      ...proc({ comm: 'entrypoint.sh' }),
      filename: '/usr/local/bin/entrypoint.sh',
      argv: ['/bin/sh', '/usr/local/bin/entrypoint.sh', 'serve'],
      argv_truncated: false,
      exe_dev: '66305',
      exe_ino: '1837466',
      exe_path: '/bin/busybox',
      interpreter: '/bin/sh',
      exe_digest: `sha256:${'5e'.repeat(32)}`,
    },
  },
  {
    name: 'file_open_runtime_setup_no_digest',
    description:
      "runc's init opening a shared object while it builds the root: marked as set-up, digest absent with its reason.",
    record: {
      ...env(7, '5000000007'),
      type: 'file_open',
      ...proc({ comm: 'runc:[2:INIT]' }),
      path: '/usr/lib/x86_64-linux-gnu/libseccomp.so.2',
      path_resolution: 'absolute',
      path_truncated: false,
      flags: 524288,
      mode: 0,
      dirfd: -100,
      ret: 3,
      syscall: 'openat',
      file_digest_unavailable: 'process_exited',
      runtime_setup: true,
    },
  },
  {
    name: 'process_exit_signal',
    description: 'Killed by SIGSEGV with a core dump.',
    record: {
      ...env(8, '5000000008'),
      type: 'process_exit',
      ...proc({ container: { status: 'unknown' } }),
      exit_code: 0,
      signal: 11,
      core_dumped: true,
      duration_ns: '1234567890',
    },
  },
  {
    name: 'tcp_state_inet_established',
    description: 'Outbound IPv4 connection established, attributed to the owner.',
    record: {
      ...env(9, '5000000009'),
      type: 'tcp_state',
      ...proc(),
      family: 'inet',
      saddr: '10.244.1.17',
      sport: 43512,
      daddr: '93.184.216.34',
      dport: 443,
      old_state: 'SYN_SENT',
      new_state: 'ESTABLISHED',
      direction: 'outbound',
      event: 'established',
      attribution: 'owner',
    },
  },
  {
    name: 'tcp_state_inet6_closed',
    description: 'IPv6 connection closed with counters, an IPv4-mapped peer, port 0 and 65535.',
    record: {
      ...env(10, '5000000010'),
      type: 'tcp_state',
      ...proc(),
      family: 'inet6',
      saddr: '2001:db8::1',
      sport: 65535,
      daddr: '::ffff:192.0.2.1',
      dport: 0,
      old_state: 'LAST_ACK',
      new_state: 'CLOSE',
      direction: 'inbound',
      event: 'closed',
      attribution: 'current',
      duration_ns: '250000000',
      bytes_sent: '18446744073709551615',
      bytes_received: '0',
    },
  },
  {
    name: 'net_connect_inet6',
    description: 'Non-blocking connect to an IPv6 peer (EINPROGRESS).',
    record: {
      ...env(11, '5000000011'),
      type: 'net_connect',
      ...proc(),
      fd: 5,
      ret: -1,
      errno: 115,
      family: 'inet6',
      addr: 'fe80::1:0:0:1',
      port: 8443,
      syscall: 'connect',
    },
  },
  {
    name: 'net_connect_unix_abstract',
    description: 'connect to an abstract AF_UNIX socket whose name holds a NUL byte (valid UTF-8, escaped).',
    record: {
      ...env(12, '5000000012'),
      type: 'net_connect',
      ...proc(),
      fd: 3,
      ret: 0,
      family: 'unix',
      unix_path: 'stella\u0000sock',
      unix_abstract: true,
      syscall: 'connect',
    },
  },
  {
    name: 'net_connect_unix_non_utf8',
    description: 'connect to a filesystem AF_UNIX socket whose path is not UTF-8.',
    record: {
      ...env(13, '5000000013'),
      type: 'net_connect',
      ...proc(),
      fd: 3,
      ret: -1,
      errno: 2,
      family: 'unix',
      unix_path: bytesField(Buffer.from([0x2f, 0x72, 0x75, 0x6e, 0x2f, 0xfe])),
      unix_abstract: false,
      syscall: 'connect',
    },
  },
  {
    name: 'net_accept_with_stack',
    description: 'accept4 of an IPv4 peer, with a user stack.',
    record: {
      ...env(14, '5000000014'),
      type: 'net_accept',
      ...proc(),
      fd: 6,
      ret: 9,
      family: 'inet',
      addr: '192.0.2.200',
      port: 51000,
      syscall: 'accept4',
      stack: [
        {
          module: '/usr/lib/x86_64-linux-gnu/libc.so.6',
          offset: '0x11b0a0',
          symbol: 'accept4',
          build_id: 'c047672cae7964324658491e7dee26748ae5d2f8',
        },
        { module: '/app/server', offset: '0x0' },
      ],
    },
  },
  {
    name: 'net_accept_no_address',
    description: 'accept with a NULL address argument: family "other", no address members.',
    record: {
      ...env(15, '5000000015'),
      type: 'net_accept',
      ...proc(),
      fd: 6,
      ret: 10,
      family: 'other',
      syscall: 'accept',
    },
  },
  {
    name: 'tls_io_read',
    description: 'SSL_read with connection and SNI; byte counts only.',
    record: {
      ...env(16, '5000000016'),
      type: 'tls_io',
      ...proc(),
      direction: 'read',
      ssl_ptr: '0x55d0c1a2b3c0',
      requested: '16384',
      returned: '1024',
      ret: 1024,
      function: 'SSL_read',
      connection: { family: 'inet', saddr: '10.244.1.17', sport: 43512, daddr: '93.184.216.34', dport: 443 },
      sni: 'api.example.com',
      library: '/usr/lib/x86_64-linux-gnu/libssl.so.3',
    },
  },
  {
    name: 'tls_io_write_ex',
    description: 'SSL_write_ex failing, with a stack.',
    record: {
      ...env(17, '5000000017'),
      type: 'tls_io',
      ...proc(),
      direction: 'write',
      ssl_ptr: '0xffffffffffffffff',
      requested: '18446744073709551615',
      returned: '0',
      ret: 0,
      function: 'SSL_write_ex',
      stack: [{ module: '/usr/lib/x86_64-linux-gnu/libssl.so.3', offset: '0x3a2f0', symbol: 'SSL_write_ex' }],
    },
  },
  {
    name: 'tls_handshake_failed',
    description: 'Failed client handshake without SNI.',
    record: {
      ...env(18, '5000000018'),
      type: 'tls_handshake',
      ...proc(),
      ssl_ptr: '0x1',
      result: 'failed',
      ret: -1,
      function: 'SSL_connect',
      connection: { family: 'inet6', saddr: '::1', sport: 40000, daddr: '::1', dport: 8443 },
    },
  },
  {
    name: 'tls_handshake_ok_unicode_sni',
    description: 'Successful handshake; SNI is an A-label but the codec keeps any text.',
    record: {
      ...env(19, '5000000019'),
      type: 'tls_handshake',
      ...proc(),
      ssl_ptr: '0x7f00dead0000',
      sni: 'xn--caf-dma.example',
      result: 'ok',
      ret: 1,
      function: 'SSL_do_handshake',
    },
  },
  {
    name: 'collector_status_final',
    description: 'Final status: probes sorted by name, one not attached with a reason, one on a fallback.',
    record: {
      ...env(20, '5000000020'),
      type: 'collector_status',
      window_start_wall_ns: '1764100000000000000',
      window_end_wall_ns: '1764100060000000000',
      probes: [
        {
          name: 'file_open',
          attached: true,
          attach_type: 'raw_tp',
          reason: 'fentry unavailable (EPERM); fell back to raw_tp',
          seen: '120034',
          filtered: '100000',
          deduplicated: '17',
          emitted: '20017',
          lost: '0',
        },
        {
          name: 'tcp_state',
          attached: true,
          attach_type: 'tp_btf',
          seen: '42',
          filtered: '0',
          deduplicated: '0',
          emitted: '42',
          lost: '0',
        },
        {
          name: 'tls_openssl',
          attached: false,
          attach_type: 'none',
          reason: 'no libssl.so.3 mapped by any target process',
          seen: '0',
          filtered: '0',
          deduplicated: '0',
          emitted: '0',
          lost: '18446744073709551615',
        },
      ],
      final: true,
    },
  },
  {
    name: 'collector_status_running',
    description: 'An in-band status while events are still in flight: seen = the four fates + in_flight.',
    record: {
      ...env(22, '5000000022'),
      type: 'collector_status',
      window_start_wall_ns: '1764100000000000000',
      window_end_wall_ns: '1764100030000000000',
      probes: [
        {
          name: 'file_open',
          attached: true,
          attach_type: 'tp_btf',
          seen: '50210',
          filtered: '40000',
          deduplicated: '9000',
          emitted: '1100',
          lost: '0',
          in_flight: '110',
        },
      ],
    },
  },
  {
    name: 'collector_status_empty',
    description: 'A status with no probes and a zero-length window.',
    record: {
      ...env(21, '5000000021'),
      type: 'collector_status',
      window_start_wall_ns: '5',
      window_end_wall_ns: '5',
      probes: [],
    },
  },
];

/** A line that must be rejected, and how. */
export interface InvalidCase {
  readonly name: string;
  readonly description: string;
  readonly line: Buffer;
  readonly code: string;
  readonly path?: string;
}

const base = VALID_CASES[0]!.record;
const baseLine = encodeRecord(base).slice(0, -1);
const edit = (over: Record<string, unknown>) => JSON.stringify({ ...base, ...over });
const canonicalWith = (over: Record<string, unknown>) => {
  // Keys in canonical order with an override: sort like RFC 8785, serialise values as JSON.stringify does.
  const o: Record<string, unknown> = { ...base, ...over };
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(o[k])}`)
    .join(',')}}`;
};
const line = (s: string) => Buffer.from(s, 'utf8');

/** Lines a conforming decoder must reject, with the error code (and JSON path) it must report. */
export const INVALID_CASES: readonly InvalidCase[] = [
  { name: 'empty_line', description: 'An empty line.', line: line(''), code: 'INVALID_JSON' },
  {
    name: 'truncated_json',
    description: 'A record cut in the middle.',
    line: line(baseLine.slice(0, 80)),
    code: 'INVALID_JSON',
  },
  {
    name: 'bom',
    description: 'A UTF-8 byte order mark before the record.',
    line: line(`\ufeff${baseLine}`),
    code: 'INVALID_JSON',
  },
  {
    name: 'invalid_utf8_byte',
    description: 'A raw 0xff byte inside a string (must be {"b64"} instead).',
    line: Buffer.concat([line(baseLine.slice(0, 30)), Buffer.from([0xff]), line(baseLine.slice(30))]),
    code: 'INVALID_UTF8',
  },
  {
    name: 'whitespace',
    description: 'Pretty-printed with spaces.',
    line: line(baseLine.replace(/,/g, ', ')),
    code: 'NOT_CANONICAL',
  },
  {
    name: 'crlf',
    description: 'A carriage return before the newline.',
    line: line(`${baseLine}\r`),
    code: 'NOT_CANONICAL',
  },
  {
    name: 'member_order',
    description: 'Members in insertion order, not sorted.',
    line: line(edit({})),
    code: 'NOT_CANONICAL',
  },
  {
    name: 'escaped_ascii',
    description: 'A letter written as a \\u escape.',
    line: line(baseLine.replace('"api-server"', '"\\u0061pi-server"')),
    code: 'NOT_CANONICAL',
  },
  {
    name: 'escaped_slash',
    description: 'A solidus written as \\/.',
    line: line(baseLine.replace('"/etc/ssl', '"\\/etc/ssl')),
    code: 'NOT_CANONICAL',
  },
  {
    name: 'number_form',
    description: 'schema_version written as 1.0.',
    line: line(baseLine.replace('"schema_version":1', '"schema_version":1.0')),
    code: 'NOT_CANONICAL',
  },
  {
    name: 'duplicate_member',
    description: 'A member given twice (JSON parsers keep the last).',
    line: line(baseLine.replace('"ret":7', '"ret":7,"ret":7')),
    code: 'NOT_CANONICAL',
  },
  {
    name: 'float',
    description: 'A float where an integer is required.',
    line: line(canonicalWith({ pid: 1.5 })),
    code: 'SCHEMA',
    path: '$.pid',
  },
  {
    name: 'u64_as_number',
    description: 'A 64-bit value written as a JSON number.',
    line: line(canonicalWith({ seq: 1 })),
    code: 'SCHEMA',
    path: '$.seq',
  },
  {
    name: 'u64_leading_zero',
    description: 'A u64 string with a leading zero.',
    line: line(canonicalWith({ cgroup_id: '012884' })),
    code: 'SCHEMA',
    path: '$.cgroup_id',
  },
  {
    name: 'u64_overflow',
    description: '2^64, one past the u64 maximum.',
    line: line(canonicalWith({ mono_ns: '18446744073709551616' })),
    code: 'SCHEMA',
    path: '$.mono_ns',
  },
  {
    name: 'b64_of_utf8',
    description: 'A {"b64"} byte string whose bytes are valid UTF-8 (must be a plain string).',
    line: line(canonicalWith({ path: { b64: Buffer.from('/etc/passwd').toString('base64') } })),
    code: 'SCHEMA',
    path: '$.path.b64',
  },
  {
    name: 'lone_surrogate',
    description: 'A \\ud800 escape: a lone surrogate is not UTF-8 text.',
    line: line(baseLine.replace('"api-server"', '"\\ud800"')),
    code: 'SCHEMA',
    path: '$.comm',
  },
  {
    name: 'unknown_member',
    description: 'A member schema v1 does not define.',
    line: line(canonicalWith({ payload: 'secret' })),
    code: 'SCHEMA',
    path: '$.payload',
  },
  {
    name: 'missing_member',
    description: 'A required member left out.',
    line: line(baseLine.replace('"tid":4242,', '')),
    code: 'SCHEMA',
    path: '$.tid',
  },
  {
    name: 'digest_uppercase',
    description: 'A digest in uppercase hex.',
    line: line(
      canonicalWith({
        container: { ...container, image_config_digest: D1.toUpperCase().replace('SHA256', 'sha256') },
      }),
    ),
    code: 'SCHEMA',
    path: '$.container.image_config_digest',
  },
  {
    name: 'schema_version_2',
    description: 'A future schema version.',
    line: line(canonicalWith({ schema_version: 2 })),
    code: 'SCHEMA',
    path: '$.schema_version',
  },
  {
    name: 'unknown_type',
    description: 'A record type v1 does not define.',
    line: line(canonicalWith({ type: 'file_close' })),
    code: 'SCHEMA',
    path: '$.type',
  },
  {
    name: 'ipv6_not_rfc5952',
    description: 'An IPv6 address not in RFC 5952 form.',
    line: line(
      encodeRecord(VALID_CASES.find((c) => c.name === 'net_connect_inet6')!.record)
        .slice(0, -1)
        .replace('fe80::1:0:0:1', 'fe80:0:0:0:1:0:0:1'),
    ),
    code: 'SCHEMA',
    path: '$.addr',
  },
  {
    name: 'probes_unsorted',
    description: 'collector_status probes not sorted by name.',
    line: line(
      encodeRecord(VALID_CASES.find((c) => c.name === 'collector_status_final')!.record)
        .slice(0, -1)
        .replace('"name":"file_open"', '"name":"zz_file_open"'),
    ),
    code: 'SCHEMA',
    path: '$.probes[1].name',
  },
];

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The stream vector: every valid case in order, renumbered seq 1.., as one NDJSON stream. */
export function streamRecords(): EvidenceRecord[] {
  return VALID_CASES.map((c, i) => ({ ...c.record, host_id: HOST, seq: String(i + 1) }) as EvidenceRecord);
}

/** The text of every file under test/vectors/, by file name. */
export function renderVectorFiles(): Record<string, string> {
  const vectors = VALID_CASES.map((c) => {
    const canonical = encodeRecord(c.record);
    const bytes = Buffer.from(canonical, 'utf8');
    return {
      name: c.name,
      description: c.description,
      record: c.record,
      canonical,
      canonical_base64: bytes.toString('base64'),
      sha256: sha256(bytes),
    };
  });
  const invalid = INVALID_CASES.map((c) => ({
    name: c.name,
    description: c.description,
    line_base64: c.line.toString('base64'),
    expected_code: c.code,
    ...(c.path === undefined ? {} : { expected_path: c.path }),
  }));
  const stream = streamRecords().map(encodeRecord).join('');
  const streamBytes = Buffer.from(stream, 'utf8');
  const about = {
    schema_version: 1,
    format:
      'Each valid vector: record (the JSON value), canonical (the exact line, RFC 8785 + "\\n"), canonical_base64 (its UTF-8 bytes), sha256 (hex of those bytes). Compare bytes, not parsed values.',
  };
  return {
    'evidence-v1.vectors.json': `${JSON.stringify({ ...about, vectors }, null, 2)}\n`,
    'evidence-v1.invalid.json': `${JSON.stringify(
      {
        schema_version: 1,
        format:
          'Each invalid vector: line_base64 (the line bytes without the newline), expected_code (NdjsonErrorCode), expected_path (JSONPath of the first bad member, when there is one).',
        vectors: invalid,
      },
      null,
      2,
    )}\n`,
    'evidence-v1.stream.ndjson': stream,
    'evidence-v1.stream.ndjson.sha256': `${sha256(streamBytes)}  evidence-v1.stream.ndjson\n`,
  };
}
