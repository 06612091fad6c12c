import { DecodeError } from './errors.js';
import type {
  ExecEvent,
  ExitEvent,
  FileOpenEvent,
  OpenSyscall,
  PathResolution,
  ProbeEvent,
} from './events.js';
import {
  EXEC_BASE,
  EXIT_SIZE,
  FE_EXEC_ARGV_TRUNCATED,
  FE_EXEC_EXE_PATH_TRUNCATED,
  FE_EXEC_FILENAME_TRUNCATED,
  FE_EXEC_INTERP,
  FE_EXEC_INTERP_TRUNCATED,
  FE_PATH_FAULT,
  FE_PATH_TRUNCATED,
  FILE_OPEN_BASE,
  HEADER_SIZE,
  KIND,
  LAYOUT,
  RESOLUTIONS,
  SYSCALLS,
} from './layout.js';

const H = LAYOUT.stella_event_header.members;
const F = LAYOUT.fe_file_open_event.members;
const E = LAYOUT.fe_exec_event.members;
const X = LAYOUT.fe_exit_event.members;

function comm(r: Buffer): Buffer {
  const start = H.comm[0];
  let end = start;
  while (end < start + H.comm[1] && r[end] !== 0) end++;
  return copy(r, start, end);
}

/** An owned copy of r[start, end): small copies come from Node's pool slab. */
function copy(r: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  r.copy(out, 0, start, end);
  return out;
}

function fail(what: string, r: Buffer, kind: number | undefined, expected?: number): never {
  throw new DecodeError(
    `${what}: record of ${r.length} bytes${expected === undefined ? '' : `, expected ${expected}`}`,
    expected === undefined
      ? { length: r.length, ...(kind === undefined ? {} : { kind }) }
      : { length: r.length, kind: kind ?? 0, expected },
  );
}

/**
 * Check the file-open record data[start, end) (lengths and enum values):
 * throws DecodeError as {@link decodeEvent} documents, else returns the path length.
 */
// Called once per file open on the hot path: no closure per call (the error
// path builds its subarray only when it throws).
function checkFileOpen(data: Buffer, start: number, end: number, kind: number): number {
  if (end - start < FILE_OPEN_BASE) {
    fail('file_open record shorter than its fixed part', data.subarray(start, end), kind, FILE_OPEN_BASE);
  }
  const pathLen = data.readUInt32LE(start + F.path_len[0]);
  if (end - start !== FILE_OPEN_BASE + pathLen) {
    fail(
      `file_open record with path_len ${pathLen}`,
      data.subarray(start, end),
      kind,
      FILE_OPEN_BASE + pathLen,
    );
  }
  const sc = data.readUInt16LE(start + F.syscall[0]);
  const res = data[start + F.resolution[0]]!;
  if (!SYSCALLS[sc]) fail(`file_open record with unknown syscall ${sc}`, data.subarray(start, end), kind);
  if (!RESOLUTIONS[res])
    fail(`file_open record with unknown resolution ${res}`, data.subarray(start, end), kind);
  return pathLen;
}

function decodeFileOpen(r: Buffer, kind: number): FileOpenEvent {
  const pathLen = checkFileOpen(r, 0, r.length, kind);
  const syscall = SYSCALLS[r.readUInt16LE(F.syscall[0])] as OpenSyscall;
  const resolution = RESOLUTIONS[r[F.resolution[0]]!] as PathResolution;
  const pflags = r.readUInt8(F.path_flags[0]);
  // One literal per kind, header fields first in a fixed order: one hidden class per kind.
  return {
    kind: 'file_open',
    pid: r.readUInt32LE(H.pid[0]),
    tid: r.readUInt32LE(H.tid[0]),
    ppid: r.readUInt32LE(H.ppid[0]),
    uid: r.readUInt32LE(H.uid[0]),
    gid: r.readUInt32LE(H.gid[0]),
    comm: comm(r),
    cgroupId: r.readBigUInt64LE(H.cgroup_id[0]),
    monoNs: r.readBigUInt64LE(H.mono_ns[0]),
    probe: kind === KIND.FILE_OPEN_LSM ? 'file_open_lsm' : 'file_open',
    syscall,
    path: copy(r, FILE_OPEN_BASE, FILE_OPEN_BASE + pathLen),
    flags: r.readUInt32LE(F.flags[0]),
    mode: r.readUInt32LE(F.mode[0]),
    dirfd: r.readInt32LE(F.dirfd[0]),
    ret: r.readInt32LE(F.ret[0]),
    resolution,
    truncated: (pflags & FE_PATH_TRUNCATED) !== 0,
    pathFault: (pflags & FE_PATH_FAULT) !== 0,
  };
}

function splitArgv(block: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < block.length; i++) {
    if (block[i] === 0) {
      out.push(copy(block, start, i));
      start = i + 1;
    }
  }
  // A block cut short by the byte limit ends inside an argument: keep that prefix.
  if (start < block.length) out.push(copy(block, start, block.length));
  return out;
}

function decodeExec(r: Buffer): ExecEvent {
  if (r.length < EXEC_BASE) fail('exec record shorter than its fixed part', r, KIND.EXEC, EXEC_BASE);
  const flen = r.readUInt32LE(E.filename_len[0]);
  const alen = r.readUInt32LE(E.argv_len[0]);
  const plen = r.readUInt32LE(E.exe_path_len[0]);
  const ilen = r.readUInt32LE(E.interp_len[0]);
  const total = EXEC_BASE + flen + alen + plen + ilen;
  if (r.length !== total) {
    fail(
      `exec record with filename_len ${flen}, argv_len ${alen}, exe_path_len ${plen} and interp_len ${ilen}`,
      r,
      KIND.EXEC,
      total,
    );
  }
  const xf = r.readUInt32LE(E.exec_flags[0]);
  const pathAt = EXEC_BASE + flen + alen;
  return {
    kind: 'exec',
    pid: r.readUInt32LE(H.pid[0]),
    tid: r.readUInt32LE(H.tid[0]),
    ppid: r.readUInt32LE(H.ppid[0]),
    uid: r.readUInt32LE(H.uid[0]),
    gid: r.readUInt32LE(H.gid[0]),
    comm: comm(r),
    cgroupId: r.readBigUInt64LE(H.cgroup_id[0]),
    monoNs: r.readBigUInt64LE(H.mono_ns[0]),
    filename: copy(r, EXEC_BASE, EXEC_BASE + flen),
    filenameTruncated: (xf & FE_EXEC_FILENAME_TRUNCATED) !== 0,
    argv: splitArgv(r.subarray(EXEC_BASE + flen, EXEC_BASE + flen + alen)),
    argc: r.readUInt32LE(E.argc[0]),
    argvTruncated: (xf & FE_EXEC_ARGV_TRUNCATED) !== 0,
    exePath: copy(r, pathAt, pathAt + plen),
    exePathTruncated: (xf & FE_EXEC_EXE_PATH_TRUNCATED) !== 0,
    // Always present (undefined for a binary): one hidden class per kind.
    interpreter: (xf & FE_EXEC_INTERP) !== 0 ? copy(r, pathAt + plen, pathAt + plen + ilen) : undefined,
    interpreterTruncated: (xf & FE_EXEC_INTERP_TRUNCATED) !== 0,
    exeDev: r.readBigUInt64LE(E.exe_dev[0]),
    exeIno: r.readBigUInt64LE(E.exe_ino[0]),
    oldPid: r.readUInt32LE(E.old_pid[0]),
  };
}

function decodeExit(r: Buffer): ExitEvent {
  if (r.length !== EXIT_SIZE) fail('exit record', r, KIND.EXIT, EXIT_SIZE);
  const status = r.readInt32LE(X.exit_status[0]);
  const signal = status & 0x7f;
  return {
    kind: 'exit',
    pid: r.readUInt32LE(H.pid[0]),
    tid: r.readUInt32LE(H.tid[0]),
    ppid: r.readUInt32LE(H.ppid[0]),
    uid: r.readUInt32LE(H.uid[0]),
    gid: r.readUInt32LE(H.gid[0]),
    comm: comm(r),
    cgroupId: r.readBigUInt64LE(H.cgroup_id[0]),
    monoNs: r.readBigUInt64LE(H.mono_ns[0]),
    exitCode: signal === 0 ? (status >> 8) & 0xff : 0,
    signal,
    coreDumped: (status & 0x80) !== 0,
    status,
    startNs: r.readBigUInt64LE(X.start_ns[0]),
  };
}

/**
 * Decode one ring-buffer record of bpf/fileexec.bpf.o. The result owns its
 * bytes (copies), so the record buffer may be reused afterwards.
 * @throws DecodeError when the record is shorter than the header, of an
 *   unknown kind, or its length disagrees with its own length fields.
 */
export function decodeEvent(record: Buffer): ProbeEvent {
  if (record.length < HEADER_SIZE)
    fail('record shorter than the event header', record, undefined, HEADER_SIZE);
  const kind = record.readUInt32LE(H.kind[0]);
  switch (kind) {
    case KIND.FILE_OPEN:
    case KIND.FILE_OPEN_LSM:
      return decodeFileOpen(record, kind);
    case KIND.EXEC:
      return decodeExec(record);
    case KIND.EXIT:
      return decodeExit(record);
    default:
      return fail(`unknown record kind ${kind}`, record, kind);
  }
}

/**
 * A file-open record read in place: the {@link FileOpenEvent} of a ring
 * record without decoding it. Members are read from the record bytes when
 * asked for (`path` and `comm` are views of them, not copies), so a consumer
 * that writes the record's evidence straight from the bytes (the fused
 * encoder of @stellaops/signals, through {@link data} and {@link start})
 * allocates nothing per record but this object. Checked like
 * {@link decodeEvent} when made; the bytes must not change while it is used
 * (ring batches are never reused).
 */
export class FileOpenView implements FileOpenEvent {
  /** The buffer holding the record. */
  readonly data: Buffer;
  /** Offset of the record in {@link data}. */
  readonly start: number;
  /** Offset just past the record. */
  readonly end: number;
  #path: Buffer | undefined;
  #comm: Buffer | undefined;
  #cgroupId: bigint | undefined;

  constructor(data: Buffer, start: number, end: number) {
    checkFileOpen(data, start, end, end - start >= HEADER_SIZE ? data.readUInt32LE(start + H.kind[0]) : 0);
    this.data = data;
    this.start = start;
    this.end = end;
  }

  get kind(): 'file_open' {
    return 'file_open';
  }
  get pid(): number {
    return this.data.readUInt32LE(this.start + H.pid[0]);
  }
  get tid(): number {
    return this.data.readUInt32LE(this.start + H.tid[0]);
  }
  get ppid(): number {
    return this.data.readUInt32LE(this.start + H.ppid[0]);
  }
  get uid(): number {
    return this.data.readUInt32LE(this.start + H.uid[0]);
  }
  get gid(): number {
    return this.data.readUInt32LE(this.start + H.gid[0]);
  }
  /** The task name: a view of the record bytes (no copy). */
  get comm(): Buffer {
    if (this.#comm === undefined) {
      const at = this.start + H.comm[0];
      let end = at;
      while (end < at + H.comm[1] && this.data[end] !== 0) end++;
      this.#comm = this.data.subarray(at, end);
    }
    return this.#comm;
  }
  /** Low and high u32 halves of the cgroup id (no BigInt). */
  get cgroupLo(): number {
    return this.data.readUInt32LE(this.start + H.cgroup_id[0]);
  }
  get cgroupHi(): number {
    return this.data.readUInt32LE(this.start + H.cgroup_id[0] + 4);
  }
  get cgroupId(): bigint {
    this.#cgroupId ??= this.data.readBigUInt64LE(this.start + H.cgroup_id[0]);
    return this.#cgroupId;
  }
  get monoNs(): bigint {
    return this.data.readBigUInt64LE(this.start + H.mono_ns[0]);
  }
  get probe(): 'file_open' | 'file_open_lsm' {
    return this.data.readUInt32LE(this.start + H.kind[0]) === KIND.FILE_OPEN_LSM
      ? 'file_open_lsm'
      : 'file_open';
  }
  get syscall(): OpenSyscall {
    return SYSCALLS[this.data.readUInt16LE(this.start + F.syscall[0])] as OpenSyscall;
  }
  /** Length of the path in bytes (without copying it). */
  get pathLength(): number {
    return this.end - this.start - FILE_OPEN_BASE;
  }
  /** The path: a view of the record bytes (no copy). */
  get path(): Buffer {
    this.#path ??= this.data.subarray(this.start + FILE_OPEN_BASE, this.end);
    return this.#path;
  }
  get flags(): number {
    return this.data.readUInt32LE(this.start + F.flags[0]);
  }
  get mode(): number {
    return this.data.readUInt32LE(this.start + F.mode[0]);
  }
  get dirfd(): number {
    return this.data.readInt32LE(this.start + F.dirfd[0]);
  }
  get ret(): number {
    return this.data.readInt32LE(this.start + F.ret[0]);
  }
  get resolution(): PathResolution {
    return RESOLUTIONS[this.data[this.start + F.resolution[0]]!] as PathResolution;
  }
  get truncated(): boolean {
    return (this.data[this.start + F.path_flags[0]]! & FE_PATH_TRUNCATED) !== 0;
  }
  get pathFault(): boolean {
    return (this.data[this.start + F.path_flags[0]]! & FE_PATH_FAULT) !== 0;
  }
  /** The same event decoded into a plain object ({@link decodeEvent}). */
  toJSON(): FileOpenEvent {
    return decodeEvent(this.data.subarray(this.start, this.end)) as FileOpenEvent;
  }
}

/**
 * The event of the ring record data[start, end): a {@link FileOpenView} for
 * a file open (read in place, no copies), else what {@link decodeEvent}
 * returns. Same checks and errors as decodeEvent.
 */
export function viewEvent(data: Buffer, start: number, end: number): ProbeEvent {
  if (end - start >= HEADER_SIZE) {
    const kind = data.readUInt32LE(start + H.kind[0]);
    if (kind === KIND.FILE_OPEN || kind === KIND.FILE_OPEN_LSM) return new FileOpenView(data, start, end);
  }
  return decodeEvent(data.subarray(start, end));
}
