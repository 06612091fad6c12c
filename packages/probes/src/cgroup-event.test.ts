import { describe, expect, it } from 'vitest';
import { decodeCgroupMkdir, isCgroupMkdirRecord } from './cgroup-event.js';
import { DecodeError } from './errors.js';
import { KIND, LAYOUT } from './layout.js';

const H = LAYOUT.stella_event_header.members;
const C = LAYOUT.fe_cgroup_event.members;

/** A record as bpf/cgroup_track.h writes it: the fixed part and the used path bytes only. */
function record(path: string, pathLen = Buffer.byteLength(path)): Buffer {
  const r = Buffer.alloc(C.path[0] + Buffer.byteLength(path));
  r.writeBigUInt64LE(123n, H.mono_ns[0]);
  r.writeBigUInt64LE(1n, H.cgroup_id[0]);
  r.writeUInt32LE(KIND.CGROUP_MKDIR, H.kind[0]);
  r.writeUInt32LE(4242, H.pid[0]);
  r.write('runc:[2:INIT]', H.comm[0]);
  r.writeBigUInt64LE(987654n, C.id[0]);
  r.writeUInt32LE(2, C.level[0]);
  r.writeUInt32LE(pathLen, C.path_len[0]);
  r.write(path, C.path[0]);
  return r;
}

describe('cgroup_mkdir records', () => {
  it('decode to the new cgroup id and its v2 path', () => {
    const r = record('/docker/0123abcd');
    expect(isCgroupMkdirRecord(r)).toBe(true);
    expect(decodeCgroupMkdir(r)).toMatchObject({
      kind: 'cgroup_mkdir',
      id: 987654n,
      level: 2,
      path: '/docker/0123abcd',
      truncated: false,
      pid: 4242,
      comm: Buffer.from('runc:[2:INIT]'),
    });
  });

  it('refuse a record whose length disagrees with its path_len (objects from another build)', () => {
    expect(() => decodeCgroupMkdir(record('/docker/x', 40))).toThrow(DecodeError);
    expect(() => decodeCgroupMkdir(Buffer.alloc(20))).toThrow(DecodeError);
  });

  it('are told apart from evidence records by kind', () => {
    const r = record('/a');
    r.writeUInt32LE(KIND.EXEC, H.kind[0]);
    expect(isCgroupMkdirRecord(r)).toBe(false);
  });
});
