import { compileFused, type FusedEncoder } from '@stellaops/ndjson';
import { FE_PATH_FAULT, FE_PATH_TRUNCATED, LAYOUT, RESOLUTIONS, SYSCALLS } from '@stellaops/probes';

/**
 * Fused encoders: the canonical line of a record written straight from its
 * ring record into the batch buffer (no event object copies, no record
 * object, no BigInt), compiled by `@stellaops/ndjson` from schema v1 (member
 * names, order, constants, limits and checks) with the plans below, which
 * say only where each member is in the ring record, by the BTF-checked
 * layout of `@stellaops/probes`. What a plan maps is what {@link toRecord}
 * (records.ts) maps for the same event; a property test holds the two
 * byte-identical on generated ring records, and the collector re-checks one
 * fused record in {@link CROSS_CHECK_EVERY} against the generic path while
 * it runs.
 *
 * Validation: a fused line is valid by construction (the compiler refuses a
 * plan that could write an invalid value, see compileFused), the host and
 * container fragments are validated when made, and what depends on the
 * bytes is checked per record (byte strings printable ASCII and within
 * their limit, enum indexes known, u64 sums in range); a record that fails
 * a check goes the generic path (toRecord, then encodeRecord's full
 * validation), as does every record type without a plan here.
 */

/** What a fused line takes from the stream rather than the ring record. */
export interface FusedEnv {
  /** seq, as u32 halves. */
  seqHi: number;
  seqLo: number;
  /** wall_ns - mono_ns of this run (non-negative), as u32 halves. */
  offHi: number;
  offLo: number;
  /** `host_id` value, canonical JSON text (a fragment). */
  host: Buffer;
  /** `container` value, canonical JSON text, or undefined when the record has none. */
  container: Buffer | undefined;
}

const H = LAYOUT.stella_event_header.members;
const F = LAYOUT.fe_file_open_event.members;

/** Code reading the u32 at byte `off` of the record (a layout member of 4 bytes). */
function u32(m: readonly [number, number], signed = false): string {
  if (m[1] !== 4) throw new Error(`layout member of ${m[1]} bytes read as 32 bits`);
  return `d.read${signed ? 'Int32LE' : 'UInt32LE'}(s + ${m[0]})`;
}

/** Code reading the halves of the u64 at a layout member of 8 bytes (little-endian). */
function u64(m: readonly [number, number]) {
  if (m[1] !== 8) throw new Error(`layout member of ${m[1]} bytes read as 64 bits`);
  return { hi: `d.readUInt32LE(s + ${m[0] + 4})`, lo: `d.readUInt32LE(s + ${m[0]})` };
}

const U32 = [0, 0xffffffff] as const;
const I32 = [-0x80000000, 0x7fffffff] as const;
const ABSOLUTE = RESOLUTIONS.indexOf('absolute');
const UNRESOLVED = RESOLUTIONS.indexOf('unresolved');

/**
 * file_open, from a `fe_file_open_event` (probes/bpf/fileexec.h). Records
 * with a digest or a runtime set-up mark (identity), or a container path,
 * are not fused: the caller sends them the generic path.
 */
export const FUSED_FILE_OPEN: FusedEncoder<FusedEnv> = compileFused<FusedEnv>('file_open', {
  prelude: [
    `const pf = d[s + ${F.path_flags[0]}];`,
    `const res = d[s + ${F.resolution[0]}];`,
    // comm: up to the first NUL of its fixed field.
    `let ce = s + ${H.comm[0]}; const cmax = ce + ${H.comm[1]}; while (ce < cmax && d[ce] !== 0) ce++;`,
  ].join('\n'),
  members: {
    seq: { kind: 'u64', hi: 'e.seqHi', lo: 'e.seqLo' },
    mono_ns: { kind: 'u64', ...u64(H.mono_ns) },
    wall_ns: { kind: 'u64sum', a: u64(H.mono_ns), b: { hi: 'e.offHi', lo: 'e.offLo' } },
    host_id: { kind: 'fragment', expr: 'e.host' },
    pid: { kind: 'int', expr: u32(H.pid), range: U32 },
    tid: { kind: 'int', expr: u32(H.tid), range: U32 },
    ppid: { kind: 'int', expr: u32(H.ppid), range: U32 },
    uid: { kind: 'int', expr: u32(H.uid), range: U32 },
    gid: { kind: 'int', expr: u32(H.gid), range: U32 },
    comm: { kind: 'bytes', start: `s + ${H.comm[0]}`, end: 'ce' },
    cgroup_id: { kind: 'u64', ...u64(H.cgroup_id) },
    container: { kind: 'fragment', expr: 'e.container' },
    path: {
      kind: 'bytes',
      start: `s + ${F.path[0]}`,
      end: `s + ${F.path[0]} + ${u32(F.path_len)}`,
    },
    // A path string the probe could not read has no known form (records.ts).
    path_resolution: {
      kind: 'enum',
      names: RESOLUTIONS,
      index: `(pf & ${FE_PATH_FAULT}) !== 0 && res === ${ABSOLUTE} ? ${UNRESOLVED} : res`,
    },
    path_truncated: { kind: 'bool', expr: `(pf & ${FE_PATH_TRUNCATED | FE_PATH_FAULT}) !== 0` },
    flags: { kind: 'int', expr: u32(F.flags), range: U32 },
    mode: { kind: 'int', expr: u32(F.mode), range: U32 },
    dirfd: { kind: 'int', expr: u32(F.dirfd, true), range: I32 },
    ret: { kind: 'int', expr: u32(F.ret, true), range: I32 },
    syscall: {
      kind: 'enum',
      names: SYSCALLS,
      index: `d.readUInt16LE(s + ${F.syscall[0]})`,
    },
  },
});

/** One fused record in this many is also built by the generic path and compared, byte for byte. */
export const CROSS_CHECK_EVERY = 1024;
