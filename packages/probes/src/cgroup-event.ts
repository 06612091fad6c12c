/**
 * cgroup creation events of bpf/cgroup_track.h (part of fileexec.bpf.o):
 * not evidence records, but what the container tracker needs to know a
 * cgroup's path from its id before any record of a process in it arrives.
 */
import { DecodeError } from './errors.js';
import type { EventHeader } from './events.js';
import { HEADER_SIZE, KIND, LAYOUT } from './layout.js';

/** A cgroup of the default (v2) hierarchy was made. */
export interface CgroupMkdirEvent extends EventHeader {
  kind: 'cgroup_mkdir';
  /** The new cgroup's id: what the records of processes inside it carry as `cgroupId`. */
  id: bigint;
  /** Depth below the v2 root (1 = a child of the root). */
  level: number;
  /** Path from the v2 root (`/docker/<id>`), as the `0::` line of /proc/<pid>/cgroup shows it. */
  path: string;
  /** The path was longer than the 1024 bytes the kernel's tracepoint keeps: `path` is a prefix. */
  truncated: boolean;
}

const H = LAYOUT.stella_event_header.members;
const C = LAYOUT.fe_cgroup_event.members;
/** FE_CGROUP_PATH_TRUNCATED in bpf/cgroup_track.h. */
const PATH_TRUNCATED = 0x1;

/** True when a ring record is a cgroup creation event (to route it before {@link decodeCgroupMkdir}). */
export function isCgroupMkdirRecord(record: Buffer): boolean {
  return record.length >= HEADER_SIZE && record.readUInt32LE(H.kind[0]) === KIND.CGROUP_MKDIR;
}

/**
 * Decode one cgroup creation record.
 * @throws DecodeError when its length or path length disagree with the layout.
 */
export function decodeCgroupMkdir(r: Buffer): CgroupMkdirEvent {
  const base = C.path[0];
  if (r.length < base) {
    throw new DecodeError(`cgroup_mkdir record: record of ${r.length} bytes, expected at least ${base}`, {
      length: r.length,
      kind: KIND.CGROUP_MKDIR,
      expected: base,
    });
  }
  const pathLen = r.readUInt32LE(C.path_len[0]);
  if (pathLen >= C.path[1] || r.length !== base + pathLen) {
    throw new DecodeError(`cgroup_mkdir record with path_len ${pathLen}`, {
      length: r.length,
      kind: KIND.CGROUP_MKDIR,
      expected: base + pathLen,
    });
  }
  let end = H.comm[0];
  while (end < H.comm[0] + H.comm[1] && r[end] !== 0) end++;
  return {
    kind: 'cgroup_mkdir',
    pid: r.readUInt32LE(H.pid[0]),
    tid: r.readUInt32LE(H.tid[0]),
    ppid: r.readUInt32LE(H.ppid[0]),
    uid: r.readUInt32LE(H.uid[0]),
    gid: r.readUInt32LE(H.gid[0]),
    comm: Buffer.from(r.subarray(H.comm[0], end)),
    cgroupId: r.readBigUInt64LE(H.cgroup_id[0]),
    monoNs: r.readBigUInt64LE(H.mono_ns[0]),
    id: r.readBigUInt64LE(C.id[0]),
    level: r.readUInt32LE(C.level[0]),
    path: r.toString('utf8', C.path[0], C.path[0] + pathLen),
    truncated: (r.readUInt32LE(C.cgroup_flags[0]) & PATH_TRUNCATED) !== 0,
  };
}
