import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  bytesField,
  bytesFromField,
  type DecodeResult,
  decodeStream,
  EVIDENCE_JSON_SCHEMA,
  encodeRecord,
  type FileOpenRecord,
  NdjsonError,
  validateRecord,
} from '@stellaops/ndjson';
import Ajv2020 from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';

/** Every result of a decode, in order. */
async function decodeAll(...args: Parameters<typeof decodeStream>): Promise<DecodeResult[]> {
  const out: DecodeResult[] = [];
  for await (const r of decodeStream(...args)) out.push(r);
  return out;
}

/** What a service under test would produce: one file_open record. */
function openRecord(seq: number, path: Uint8Array): FileOpenRecord {
  return {
    schema_version: 1,
    type: 'file_open',
    seq: String(seq),
    mono_ns: '1000',
    wall_ns: '1764100000000001000',
    host_id: 'unit-test-host',
    pid: 10,
    tid: 10,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'svc',
    cgroup_id: '42',
    path: bytesField(path),
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 0,
    mode: 0,
    dirfd: -100,
    ret: 3,
    syscall: 'openat',
  };
}

describe('evidence codec, as another service tests it', () => {
  it('writes the exact canonical bytes (pin them: a change is a contract change)', () => {
    const line = encodeRecord(openRecord(1, Buffer.from('/etc/hosts')));
    expect(line).toBe(
      '{"cgroup_id":"42","comm":"svc","dirfd":-100,"flags":0,"gid":0,"host_id":"unit-test-host","mode":0,"mono_ns":"1000","path":"/etc/hosts","path_resolution":"absolute","path_truncated":false,"pid":10,"ppid":1,"ret":3,"schema_version":1,"seq":"1","syscall":"openat","tid":10,"type":"file_open","uid":0,"wall_ns":"1764100000000001000"}\n',
    );
    expect(createHash('sha256').update(line).digest('hex')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps a path that is not UTF-8 byte for byte', async () => {
    const raw = Buffer.from([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0xff, 0xfe]);
    const line = encodeRecord(openRecord(1, raw));
    expect(line).toContain('"path":{"b64":"L3RtcC///g=="}');
    const [result] = await decodeAll([line]);
    expect(result?.ok).toBe(true);
    if (result?.ok && result.record.type === 'file_open') {
      expect(bytesFromField(result.record.path).equals(raw)).toBe(true);
    }
  });

  it('finds a rewritten line and a missing record, and keeps reading', async () => {
    const lines = [1, 2, 4].map((seq) => encodeRecord(openRecord(seq, Buffer.from('/etc/hosts'))));
    lines[1] = lines[1]!.replace('"pid":10', '"pid": 10'); // someone "pretty-printed" line 2
    const results = await decodeAll(Readable.from(lines.map((l) => Buffer.from(l))), { mode: 'collect' });
    const problems = results.filter((r) => !r.ok).map((r) => (r.ok ? '' : `${r.lineNumber}:${r.error.code}`));
    expect(problems).toEqual(['2:NOT_CANONICAL', '3:SEQUENCE']);
  });

  it('rejects a bad record with a typed error naming the member', () => {
    const bad = { ...openRecord(1, Buffer.from('/x')), cgroup_id: 42 } as unknown as FileOpenRecord;
    expect(validateRecord(bad)).toEqual([
      { path: '$.cgroup_id', reason: expect.stringContaining('decimal string') },
    ]);
    try {
      encodeRecord(bad);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NdjsonError);
      expect((e as NdjsonError).code).toBe('SCHEMA');
      expect((e as NdjsonError).path).toBe('$.cgroup_id');
    }
  });

  it('checks a foreign producer against the shipped JSON Schema', () => {
    const validate = new Ajv2020({ strictRequired: false }).compile(EVIDENCE_JSON_SCHEMA);
    expect(validate(JSON.parse(encodeRecord(openRecord(7, Buffer.from('/ok')))))).toBe(true);
    expect(validate({ ...openRecord(7, Buffer.from('/ok')), pid: -1 })).toBe(false);
  });
});
