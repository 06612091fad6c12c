import { describe, expect, it } from 'vitest';
import { DecodeError } from '../errors.js';
import { decodeNetRecord, decodeSockaddr, formatIPv6 } from './decode.js';
import { NET_KIND, NET_LAYOUT } from './layout.js';

function header(kind: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeBigUInt64LE(123456789n, 0);
  b.writeBigUInt64LE(0xffff_ffff_ffff_fff1n, 8);
  b.writeUInt32LE(kind, 16);
  b.writeUInt32LE(42, 20);
  b.writeUInt32LE(43, 24);
  b.writeUInt32LE(1, 28);
  b.write('curl', 40, 'latin1');
  return b;
}

describe('formatIPv6', () => {
  it.each([
    ['00000000000000000000000000000001', '::1'],
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000010000000000000000', '2001:db8:0:1::'],
    ['00000000000000000000ffff7f000001', '::ffff:127.0.0.1'],
    ['20010db8000100010001000100010001', '2001:db8:1:1:1:1:1:1'],
    ['20010db8000000010000000100000001', '2001:db8:0:1:0:1:0:1'],
  ])('%s -> %s', (hex, text) => {
    expect(formatIPv6(Buffer.from(hex, 'hex'))).toBe(text);
  });
});

describe('decodeSockaddr', () => {
  it('AF_INET: port in network order', () => {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(2, 0);
    b.writeUInt16BE(443, 2);
    Buffer.from([10, 0, 0, 1]).copy(b, 4);
    expect(decodeSockaddr(b)).toEqual({ family: 'inet', address: '10.0.0.1', port: 443 });
  });
  it('AF_INET6 with scope id', () => {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(10, 0);
    b.writeUInt16BE(8443, 2);
    Buffer.from('fe800000000000000000000000000001', 'hex').copy(b, 8);
    b.writeUInt32LE(3, 24);
    expect(decodeSockaddr(b)).toEqual({ family: 'inet6', address: 'fe80::1', port: 8443, scopeId: 3 });
  });
  it('AF_UNIX pathname stops at NUL; abstract keeps every byte after the leading NUL', () => {
    const p = Buffer.concat([Buffer.from([1, 0]), Buffer.from('/run/x.sock\0junk')]);
    const a = decodeSockaddr(p, 2 + 11 + 1);
    expect(a).toMatchObject({ family: 'unix', abstract: false, unnamed: false });
    expect(a.family === 'unix' && a.path.toString()).toBe('/run/x.sock');
    const abs = Buffer.concat([Buffer.from([1, 0, 0]), Buffer.from('name\0x')]);
    const b = decodeSockaddr(abs);
    expect(b.family === 'unix' && b.abstract && b.path.toString('latin1')).toBe('name\0x');
    expect(decodeSockaddr(Buffer.from([1, 0]))).toMatchObject({ family: 'unix', unnamed: true });
  });
  it('short AF_INET is a RangeError, unknown family is kept raw', () => {
    const b = Buffer.from([2, 0, 1, 2]);
    expect(() => decodeSockaddr(b)).toThrow(RangeError);
    expect(decodeSockaddr(Buffer.from([16, 0, 9, 9]))).toMatchObject({ family: 'other', familyNumber: 16 });
  });
});

describe('decodeNetRecord', () => {
  it('rejects a record whose length is not its struct size', () => {
    const b = header(NET_KIND.TCP_STATE, NET_LAYOUT.net_tcp_state_event.size - 8);
    expect(() => decodeNetRecord(b)).toThrow(DecodeError);
    try {
      decodeNetRecord(b);
    } catch (e) {
      expect((e as DecodeError).expected).toBe(NET_LAYOUT.net_tcp_state_event.size);
      expect((e as DecodeError).code).toBe('DECODE');
    }
  });
  it('rejects unknown kinds and short headers', () => {
    expect(() => decodeNetRecord(header(99, 200))).toThrow(/unknown net record kind 99/);
    expect(() => decodeNetRecord(Buffer.alloc(10))).toThrow(DecodeError);
  });
  it('decodes a tcp_state close with IPv4 tuple, owner and byte counts', () => {
    const L = NET_LAYOUT.net_tcp_state_event.members;
    const b = header(NET_KIND.TCP_STATE, NET_LAYOUT.net_tcp_state_event.size);
    b.writeBigUInt64LE(5000n, L.duration_ns[0]);
    b.writeBigUInt64LE(10n, L.bytes_acked[0]);
    b.writeBigUInt64LE(20n, L.bytes_received[0]);
    const t = L.t[0];
    Buffer.from([127, 0, 0, 1]).copy(b, t);
    Buffer.from([10, 1, 2, 3]).copy(b, t + 16);
    b.writeUInt16LE(40000, t + 32);
    b.writeUInt16LE(443, t + 34);
    b.writeUInt16LE(2, t + 36);
    b.writeInt32LE(1, L.oldstate[0]);
    b.writeInt32LE(7, L.newstate[0]);
    b.writeUInt8(6, L.event[0]);
    b.writeUInt8(1, L.direction[0]);
    b.writeUInt8(1, L.attribution[0]);
    const ev = decodeNetRecord(b);
    expect(ev).toMatchObject({
      type: 'tcp_state',
      event: 'reset',
      direction: 'outbound',
      attributed: true,
      oldState: 'ESTABLISHED',
      newState: 'CLOSE',
      tuple: {
        family: 'inet',
        local: { address: '127.0.0.1', port: 40000 },
        remote: { address: '10.1.2.3', port: 443 },
      },
      durationNs: 5000n,
      bytesAcked: 10n,
      bytesReceived: 20n,
    });
    expect(ev.header).toMatchObject({
      pid: 42,
      tid: 43,
      cgroupId: 0xffff_ffff_ffff_fff1n,
      monoNs: 123456789n,
    });
    expect(ev.header.comm.toString()).toBe('curl');
  });
  it('decodes a tls_handshake with SNI and stack; io without SNI bytes has no sni', () => {
    const L = NET_LAYOUT.net_tls_event.members;
    const b = header(NET_KIND.TLS_HANDSHAKE, NET_LAYOUT.net_tls_event.size);
    b.writeBigUInt64LE(0xdead_beefn, L.ssl[0]);
    b.writeBigInt64LE(1n, L.ret[0]);
    b.writeInt32LE(-1, L.fd[0]);
    b.writeUInt32LE(2, L.stack_len[0]);
    b.writeBigUInt64LE(0x7f00_0000_1000n, L.stack[0]);
    b.writeBigUInt64LE(0x7f00_0000_2000n, L.stack[0] + 8);
    b.writeUInt8(6, L.op[0]);
    b.writeUInt8(1, L.result[0]);
    b.writeUInt8(1, L.tls_flags[0]);
    b.writeUInt32LE(9, L.sni_len[0]);
    b.write('localhost', L.sni[0], 'latin1');
    const ev = decodeNetRecord(b);
    expect(ev).toMatchObject({
      type: 'tls_handshake',
      op: 'SSL_connect',
      result: 'ok',
      role: 'client',
      ret: 1,
    });
    if (ev.type !== 'tls_handshake') throw new Error('unreachable');
    expect(ev.sni?.toString()).toBe('localhost');
    expect(ev.fd).toBeUndefined();
    expect(ev.tuple).toBeUndefined();
    expect(ev.stack).toEqual([0x7f00_0000_1000n, 0x7f00_0000_2000n]);
    b.writeUInt32LE(NET_KIND.TLS_IO, 16);
    b.writeUInt32LE(0, L.sni_len[0]);
    const io = decodeNetRecord(b);
    expect(io.type === 'tls_io' && io.sni).toBeUndefined();
  });
});
