import { describe, expect, it } from 'vitest';
import { VALID_CASES } from '../test/golden-cases.js';
import { compareU64, isU64, validateRecord } from './validate.js';

const byName = (n: string) =>
  structuredClone(VALID_CASES.find((c) => c.name === n)!.record) as Record<string, unknown>;
const paths = (v: unknown) => validateRecord(v).map((i) => `${i.path}: ${i.reason}`);

describe('validateRecord', () => {
  it('accepts every golden record', () => {
    for (const c of VALID_CASES) expect(validateRecord(c.record), c.name).toEqual([]);
  });

  it('names the JSON path of nested and array members', () => {
    const r = byName('net_accept_with_stack');
    (r.stack as Record<string, unknown>[])[1]!.offset = '0x00';
    (r.container as Record<string, Record<string, unknown>>).k8s!.pod = '';
    expect(paths(r)).toEqual([
      '$.container.k8s.pod: expected a string of 1..253 UTF-8 bytes, got ""',
      '$.stack[1].offset: expected "0x" followed by 1 to 16 lowercase hex digits without leading zeros, got "0x00"',
    ]);
  });

  it('reports missing, undefined and unknown members', () => {
    const r = byName('file_open_typical');
    delete r.tid;
    r.ret = undefined;
    r['odd key'] = 1;
    expect(paths(r)).toEqual([
      '$["odd key"]: unknown member "odd key" in file_open',
      '$.tid: missing required member "tid"',
      '$.ret: is undefined; omit an absent member instead of setting it to undefined',
    ]);
  });

  it('enforces u64 strings: no leading zeros, no sign, at most 2^64-1', () => {
    for (const bad of [
      '',
      '-1',
      '+1',
      '01',
      '1e3',
      ' 1',
      '18446744073709551616',
      '99999999999999999999',
      '1.0',
    ]) {
      expect(paths({ ...byName('file_open_typical'), seq: bad }), bad).toHaveLength(1);
    }
    expect(isU64('18446744073709551615')).toBe(true);
    expect(isU64('0')).toBe(true);
    expect(compareU64('9', '10')).toBeLessThan(0);
    expect(compareU64('18446744073709551615', '18446744073709551614')).toBeGreaterThan(0);
  });

  it('limits byte strings in raw bytes, counting UTF-8', () => {
    const r = byName('file_open_typical');
    r.comm = 'ééééééééé'; // 18 bytes > 15
    expect(paths(r)).toEqual(['$.comm: byte string is longer than 15 bytes']);
    r.comm = { b64: Buffer.from([0xff, ...Buffer.alloc(15)]).toString('base64') };
    expect(paths(r)).toEqual([
      '$.comm.b64: base64 byte string decodes to 16 bytes, more than the 15 allowed',
    ]);
  });

  it('allows exactly one encoding per byte string', () => {
    const r = byName('file_open_typical');
    r.path = { b64: 'L2V0Yw==' }; // "/etc": UTF-8, must be a plain string
    expect(paths(r)[0]).toMatch(/valid UTF-8, which must be written as a plain JSON string/);
    r.path = { b64: '/w' }; // missing padding
    expect(paths(r)[0]).toMatch(/not standard base64/);
    r.path = { b64: '/x==' }; // non-zero padding bits
    expect(paths(r)[0]).toMatch(/non-zero padding bits/);
    r.path = { b64: '/w==', extra: 1 };
    expect(paths(r)).toHaveLength(1);
  });

  it('applies the family rules of net records', () => {
    const r = byName('net_connect_inet6');
    r.family = 'inet';
    expect(paths(r)).toEqual([
      '$.addr: expected IPv4 dotted decimal without leading zeros, like "10.0.0.1", got "fe80::1:0:0:1" when family is "inet"',
    ]);
    r.family = 'unix';
    expect(paths(r)).toEqual([
      '$.unix_path: is required when family is "unix"',
      '$.unix_abstract: is required when family is "unix"',
      '$.addr: must be absent when family is "unix"',
      '$.port: must be absent when family is "unix"',
    ]);
    const accept = byName('net_accept_no_address');
    accept.family = 'inet';
    expect(paths(accept)).toEqual([]); // accept(fd, NULL, NULL): the peer may be unknown
  });

  it('ties the TLS function to the direction', () => {
    const r = byName('tls_io_read');
    r.function = 'SSL_write';
    expect(paths(r)[0]).toMatch(/^\$\.function: expected one of "SSL_read", .* when direction is "read"$/);
  });

  it('checks collector_status order and window', () => {
    const r = byName('collector_status_final');
    const probes = r.probes as Record<string, unknown>[];
    probes[2]!.name = 'file_open';
    r.window_end_wall_ns = '1';
    expect(paths(r)).toEqual([
      '$.probes[2].name: items must be strictly ascending by name (UTF-16 code unit order): "tcp_state" is followed by "file_open"',
      '$.window_end_wall_ns: window_end_wall_ns (1) is before window_start_wall_ns (1764100000000000000)',
    ]);
  });

  it('rejects what is not a record before looking inside', () => {
    expect(paths(null)).toEqual(['$: expected a JSON object (an evidence record), got null']);
    expect(paths([1])).toEqual(['$: expected a JSON object (an evidence record), got array [1]']);
    expect(paths({ ...byName('file_open_typical'), schema_version: 2 })).toEqual([
      '$.schema_version: unsupported schema_version 2; this codec reads version 1',
    ]);
    expect(paths({ schema_version: 1 })[0]).toMatch(/^\$\.type: missing required member "type"/);
    expect(paths({ type: 'constructor' })[0]).toMatch(/unknown record type "constructor"/);
  });
});
