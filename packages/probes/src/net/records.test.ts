import { describe, expect, it } from 'vitest';
import { TlsCorrelator } from './correlate.js';
import type { NetHeader, SockEvent, TlsEvent } from './decode.js';
import { byteString, collectorProbeEntries, toNetRecord } from './records.js';

const hdr: NetHeader = {
  monoNs: 2n ** 63n + 5n,
  cgroupId: 2n ** 64n - 1n,
  kind: 17,
  pid: 10,
  tid: 11,
  ppid: 1,
  uid: 1000,
  gid: 1000,
  comm: Buffer.from([0x63, 0xff, 0x64]),
};
const env = { seq: 18446744073709551615n, wallNs: 1_700_000_000_000_000_000n, hostId: 'host-a' };
const tuple = {
  family: 'inet' as const,
  local: { address: '127.0.0.1', port: 40000 },
  remote: { address: '127.0.0.1', port: 8443 },
};

describe('byteString', () => {
  it('valid UTF-8 (control characters included) stays a string; invalid becomes b64', () => {
    expect(byteString(Buffer.from('a\nb\u0001é'))).toBe('a\nb\u0001é');
    expect(byteString(Buffer.from([0xc3, 0x28]))).toEqual({ b64: 'wyg=' });
  });
});

describe('toNetRecord', () => {
  const connect: SockEvent = {
    type: 'net_connect',
    header: hdr,
    call: 'connect',
    fd: 5,
    ret: -1,
    errno: 111,
    address: { family: 'unix', path: Buffer.from('\0x'), abstract: true, unnamed: false },
    addressTruncated: false,
    addressFault: false,
    tuple: undefined,
    acceptFlags: 0,
    durationNs: 1000n,
    stack: [0x7fff_0000_0000_1234n],
  };
  it('carries the envelope with 64-bit values as decimal strings and 32-bit as integers', () => {
    const r = toNetRecord(connect, env);
    expect(r).toMatchObject({
      schema_version: 1,
      type: 'net_connect',
      seq: '18446744073709551615',
      mono_ns: '9223372036854775813',
      wall_ns: '1700000000000000000',
      host_id: 'host-a',
      pid: 10,
      tid: 11,
      ppid: 1,
      uid: 1000,
      gid: 1000,
      cgroup_id: '18446744073709551615',
      comm: { b64: Buffer.from([0x63, 0xff, 0x64]).toString('base64') },
      fd: 5,
      ret: -1,
      errno: 111,
      address: { family: 'unix', path: '\u0000x', abstract: true },
      duration_ns: '1000',
      user_stack: [String(0x7fff_0000_0000_1234n)],
    });
    expect(JSON.stringify(r)).not.toMatch(/\d\.\d/); // no floats anywhere
  });
  it('tls_io takes SNI and tuple from the correlated session', () => {
    const io: TlsEvent = {
      type: 'tls_io',
      header: hdr,
      ssl: 0x5555_0000n,
      op: 'SSL_write',
      result: undefined,
      role: 'unknown',
      requested: 5n,
      ret: 5,
      bytes: 5n,
      tuple: undefined,
      fd: 5,
      attempts: 0,
      sni: undefined,
      sniTruncated: false,
      durationNs: 10n,
      stack: [],
    };
    const c = new TlsCorrelator();
    c.observe({ ...connect, ret: 0, errno: 0, tuple });
    c.observe({
      ...io,
      type: 'tls_handshake',
      op: 'SSL_connect',
      result: 'ok',
      sni: Buffer.from('example.test'),
    });
    const r = toNetRecord(io, env, c.observe(io));
    expect(r).toMatchObject({
      type: 'tls_io',
      function: 'SSL_write',
      direction: 'write',
      requested: '5',
      bytes: '5',
      session: String(0x5555_0000n),
      sni: 'example.test',
      connection: { family: 'inet', remote: { address: '127.0.0.1', port: 8443 }, source: 'fd' },
    });
    expect(r.user_stack).toBeUndefined();
  });
  it('a session with no exact key gets no guessed connection', () => {
    const c = new TlsCorrelator();
    const io = {
      type: 'tls_io',
      header: { ...hdr, pid: 99 },
      ssl: 1n,
      op: 'SSL_read',
      result: undefined,
      role: 'unknown',
      requested: 1n,
      ret: 1,
      bytes: 1n,
      tuple: undefined,
      fd: undefined,
      attempts: 0,
      sni: undefined,
      sniTruncated: false,
      durationNs: 1n,
      stack: [],
    } satisfies TlsEvent;
    c.observe({ ...connect, header: { ...hdr, pid: 99 }, tuple });
    expect(toNetRecord(io, env, c.observe(io)).connection).toEqual({ source: 'unknown' });
  });
});

describe('collectorProbeEntries', () => {
  it('sorts by name, writes counters as decimal strings, keeps the reason', () => {
    const z = { seen: 0n, filtered: 0n, deduplicated: 0n, emitted: 0n, lost: 0n };
    const entries = collectorProbeEntries(
      [
        {
          name: 'tls_io',
          attached: false,
          attachType: 'uprobe',
          reason: 'no OpenSSL file found in any process yet',
        },
        { name: 'tcp_state', attached: true, attachType: 'tp_btf' },
      ],
      new Map([['tcp_state', { ...z, seen: 2n ** 64n - 1n, emitted: 2n ** 64n - 1n }]]),
    );
    expect(entries).toEqual([
      {
        name: 'tcp_state',
        attached: true,
        attach_type: 'tp_btf',
        seen: '18446744073709551615',
        filtered: '0',
        deduplicated: '0',
        emitted: '18446744073709551615',
        lost: '0',
      },
      {
        name: 'tls_io',
        attached: false,
        attach_type: 'uprobe',
        reason: 'no OpenSSL file found in any process yet',
        seen: '0',
        filtered: '0',
        deduplicated: '0',
        emitted: '0',
        lost: '0',
      },
    ]);
  });
});
