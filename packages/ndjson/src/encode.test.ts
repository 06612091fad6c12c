import { canonicalize as jcs } from 'json-canonicalize';
import { describe, expect, it } from 'vitest';
import { VALID_CASES } from '../test/golden-cases.js';
import { encodeRecord, encodeRecordBytes, fastEncode, u64String } from './encode.js';
import { NdjsonError } from './errors.js';
import type { EvidenceRecord } from './records.js';

const fileOpen = VALID_CASES[0]!.record;

function errorOf(fn: () => unknown): NdjsonError {
  try {
    fn();
  } catch (e) {
    if (e instanceof NdjsonError) return e;
    throw e;
  }
  throw new Error('expected an NdjsonError');
}

describe('encodeRecord', () => {
  it('writes RFC 8785 members in code-unit order, no whitespace, one trailing newline', () => {
    const line = encodeRecord(fileOpen);
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(line.startsWith('{"cgroup_id":"12884","comm":"api-server","container":{"cgroup_path":')).toBe(
      true,
    );
    expect(line).toBe(`${jcs(fileOpen)}\n`);
    expect(encodeRecordBytes(fileOpen).equals(Buffer.from(line, 'utf8'))).toBe(true);
  });

  it('does not depend on the member order of the input object', () => {
    const reversed = Object.fromEntries(Object.entries(fileOpen).reverse()) as EvidenceRecord;
    expect(encodeRecord(reversed)).toBe(encodeRecord(fileOpen));
  });

  it('escapes exactly as RFC 8785 requires (controls escaped, U+2028 and non-ASCII raw)', () => {
    const line = encodeRecord({
      ...fileOpen,
      path: 'a\u0000\b\f\n\r\t\u001f"\\/\u007f\u2028é😀',
    } as EvidenceRecord);
    expect(line).toContain('"path":"a\\u0000\\b\\f\\n\\r\\t\\u001f\\"\\\\/\u007f\u2028é😀"');
  });

  it.each([
    ['NaN', { pid: Number.NaN }, '$.pid', /NaN is not a JSON number/],
    ['Infinity', { uid: Number.POSITIVE_INFINITY }, '$.uid', /Infinity/],
    ['a float', { flags: 0.5 }, '$.flags', /float/],
    ['an unsafe integer', { flags: 2 ** 60 }, '$.flags', /2\^53-1/],
    ['undefined', { ret: undefined }, '$.ret', /undefined/],
    ['a function', { mode: () => 1 }, '$.mode', /function/],
    ['a bigint', { seq: 5n }, '$.seq', /bigint/],
    ['a Buffer', { path: Buffer.from('/x') }, '$.path', /Buffer is not a plain JSON object.*bytesField/],
    ['a Date', { host_id: new Date(0) }, '$.host_id', /Date is not a plain JSON object/],
    ['an object with toJSON', { container: { toJSON: () => ({}) } }, '$.container', /toJSON/],
    ['a lone surrogate', { comm: 'a\ud800b' }, '$.comm', /lone UTF-16 surrogate/],
    ['undefined in an array', { argv: ['a', undefined] }, '$.argv[1]', /undefined/],
  ])('rejects %s with UNSUPPORTED_VALUE at its path', (_, over, path, message) => {
    const base =
      over && 'argv' in over ? VALID_CASES.find((c) => c.name === 'process_exec')!.record : fileOpen;
    const e = errorOf(() => encodeRecord({ ...base, ...over } as never));
    expect(e.code).toBe('UNSUPPORTED_VALUE');
    expect(e.path).toBe(path);
    expect(e.message).toMatch(message);
  });

  it('rejects a circular structure with UNSUPPORTED_VALUE', () => {
    const container: Record<string, unknown> = {};
    container.self = container;
    expect(errorOf(() => encodeRecord({ ...fileOpen, container } as never)).code).toBe('UNSUPPORTED_VALUE');
  });

  it('rejects an invalid record with SCHEMA listing every problem', () => {
    const e = errorOf(() =>
      encodeRecord({ ...fileOpen, pid: -1, syscall: 'read', path_resolution: undefined as never } as never),
    );
    // undefined is caught first, as an unsupported value.
    expect(e.code).toBe('UNSUPPORTED_VALUE');
    const s = errorOf(() => encodeRecord({ ...fileOpen, pid: -1, syscall: 'read' } as never));
    expect(s.code).toBe('SCHEMA');
    expect(s.issues.map((i) => i.path)).toEqual(['$.pid', '$.syscall']);
    expect(s.message).toMatch(
      /^SCHEMA: \$\.pid: expected an integer in \[0, 4294967295\] \(u32\), got -1 \(and 1 more problem\)/,
    );
  });

  it('rejects a record of an unknown type, or a non-object', () => {
    expect(errorOf(() => encodeRecord({ ...fileOpen, type: 'file_read' } as never)).path).toBe('$.type');
    expect(errorOf(() => encodeRecord(null as never)).code).toBe('SCHEMA');
    expect(errorOf(() => encodeRecord([] as never)).path).toBe('$');
  });

  it('uses the fast path for plain records and the generic path for {"b64"} byte strings', () => {
    expect(fastEncode(fileOpen)).toBe(jcs(fileOpen));
    const b64 = { ...fileOpen, path: { b64: '/w==' } } as EvidenceRecord;
    expect(fastEncode(b64)).toBeUndefined();
    expect(encodeRecord(b64)).toBe(`${jcs(b64)}\n`);
  });

  it('encodes a deeply frozen shared container once, and never serves stale text for a mutable one', () => {
    const k8s = { pod: 'p1', namespace: 'ns' };
    const container = Object.freeze({ id: 'c1', k8s });
    const r = { ...fileOpen, container } as EvidenceRecord;
    expect(encodeRecord(r)).toContain('"k8s":{"namespace":"ns","pod":"p1"}');
    k8s.pod = 'p2'; // k8s is not frozen: the container text must not have been remembered
    expect(encodeRecord(r)).toContain('"k8s":{"namespace":"ns","pod":"p2"}');
    const frozen = Object.freeze({ id: 'c2', k8s: Object.freeze({ pod: 'p3' }) });
    const a = encodeRecord({ ...fileOpen, container: frozen } as EvidenceRecord);
    const b = encodeRecord({ ...fileOpen, pid: 1, container: frozen } as EvidenceRecord);
    expect(a).toBe(`${jcs({ ...fileOpen, container: frozen })}\n`);
    expect(b).toBe(`${jcs({ ...fileOpen, pid: 1, container: frozen })}\n`);
    const invalid = Object.freeze({ id: '' });
    expect(() => encodeRecord({ ...fileOpen, container: invalid } as EvidenceRecord)).toThrow(
      /\$\.container\.id/,
    );
    expect(() => encodeRecord({ ...fileOpen, container: invalid } as EvidenceRecord)).toThrow(
      /\$\.container\.id/,
    );
  });

  it('accepts null-prototype objects like plain ones', () => {
    const o = Object.assign(Object.create(null) as object, fileOpen) as EvidenceRecord;
    expect(encodeRecord(o)).toBe(encodeRecord(fileOpen));
  });
});

describe('u64String', () => {
  it('formats bigints and safe integers, and rejects what is not a u64', () => {
    expect(u64String(0)).toBe('0');
    expect(u64String(2n ** 64n - 1n)).toBe('18446744073709551615');
    expect(() => u64String(2n ** 64n)).toThrow(RangeError);
    expect(() => u64String(-1n)).toThrow(RangeError);
    expect(() => u64String(2 ** 53)).toThrow(/pass a bigint/);
    expect(() => u64String(1.5)).toThrow(RangeError);
  });
});
