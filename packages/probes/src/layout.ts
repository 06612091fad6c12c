/**
 * Byte layout of the records and maps of bpf/fileexec.bpf.o, mirrored by
 * hand from bpf/common.h and bpf/fileexec.h. test/btf-layout.test.ts checks
 * every entry against the compiled object's BTF, so a C change that is not
 * mirrored here fails the build's tests.
 */

/** [offset, size] in bytes. */
export type Field = readonly [offset: number, size: number];

export interface StructLayout {
  readonly size: number;
  readonly members: Readonly<Record<string, Field>>;
}

const header = {
  mono_ns: [0, 8],
  cgroup_id: [8, 8],
  kind: [16, 4],
  pid: [20, 4],
  tid: [24, 4],
  ppid: [28, 4],
  uid: [32, 4],
  gid: [36, 4],
  comm: [40, 16],
} as const satisfies Record<string, Field>;

export const FE_PATH_MAX = 4096;
export const FE_PATH_BUF = 2 * FE_PATH_MAX + 8;
export const FE_EXEC_DATA = 4 * FE_PATH_MAX;

/** Struct layouts, by C struct name. */
export const LAYOUT = {
  stella_event_header: { size: 56, members: header },
  fe_file_open_event: {
    size: 80 + FE_PATH_BUF,
    members: {
      hdr: [0, 56],
      ret: [56, 4],
      flags: [60, 4],
      mode: [64, 4],
      dirfd: [68, 4],
      path_len: [72, 4],
      syscall: [76, 2],
      resolution: [78, 1],
      path_flags: [79, 1],
      path: [80, FE_PATH_BUF],
    },
  },
  fe_exec_event: {
    size: 104 + FE_EXEC_DATA,
    members: {
      hdr: [0, 56],
      exe_ino: [56, 8],
      exe_dev: [64, 8],
      filename_len: [72, 4],
      argv_len: [76, 4],
      argc: [80, 4],
      exec_flags: [84, 4],
      old_pid: [88, 4],
      exe_path_len: [92, 4],
      interp_len: [96, 4],
      pad: [100, 4],
      data: [104, FE_EXEC_DATA],
    },
  },
  fe_exit_event: {
    size: 72,
    members: { hdr: [0, 56], exit_status: [56, 4], pad: [60, 4], start_ns: [64, 8] },
  },
  /** bpf/cgroup_track.h: cgroup creation, fed to the container tracker (src/cgroup-event.ts). */
  fe_cgroup_event: {
    size: 80 + 1024,
    members: {
      hdr: [0, 56],
      id: [56, 8],
      level: [64, 4],
      path_len: [68, 4],
      cgroup_flags: [72, 4],
      pad: [76, 4],
      path: [80, 1024],
    },
  },
  stella_counters: {
    size: 40,
    members: { seen: [0, 8], filtered: [8, 8], deduplicated: [16, 8], emitted: [24, 8], lost: [32, 8] },
  },
  stella_dedup_stats: {
    size: 32,
    members: { inserts: [0, 8], deletes: [8, 8], races: [16, 8], failures: [24, 8] },
  },
  stella_dedup_key: {
    size: 24,
    members: { cgroup_id: [0, 8], hash: [8, 8], kind: [16, 4], fclass: [20, 4] },
  },
  stella_prefix_key: { size: 260, members: { prefixlen: [0, 4], data: [4, 256] } },
} as const satisfies Record<string, StructLayout>;

/** Fixed part of each record, before its variable-length tail. */
export const FILE_OPEN_BASE = LAYOUT.fe_file_open_event.members.path[0];
export const EXEC_BASE = LAYOUT.fe_exec_event.members.data[0];
export const EXIT_SIZE = LAYOUT.fe_exit_event.size;
export const HEADER_SIZE = LAYOUT.stella_event_header.size;

/** enum stella_kind */
export const KIND = { FILE_OPEN: 1, EXEC: 2, EXIT: 3, FILE_OPEN_LSM: 4, CGROUP_MKDIR: 5 } as const;

/** enum fe_probe: slot in the `counters` map. */
export const COUNTER_SLOT = { file_open: 0, exec: 1, exit: 2, file_open_lsm: 3, cgroup_mkdir: 4 } as const;

/** enum fe_syscall */
export const SYSCALLS = ['', 'open', 'openat', 'openat2', 'creat', 'open_by_handle_at', 'lsm'] as const;

/** enum fe_resolution */
export const RESOLUTIONS = ['absolute', 'cwd', 'dirfd', 'unresolved', 'fd'] as const;

export const FE_PATH_TRUNCATED = 0x1;
export const FE_PATH_FAULT = 0x2;
export const FE_EXEC_FILENAME_TRUNCATED = 0x1;
export const FE_EXEC_ARGV_TRUNCATED = 0x2;
/** exec_flags: the resolved executable path was cut (its end is kept). */
export const FE_EXEC_EXE_PATH_TRUNCATED = 0x4;
/** exec_flags: the exec went through an interpreter (`#!`, binfmt_misc); interp_len bytes name it. */
export const FE_EXEC_INTERP = 0x8;
/** exec_flags: the interpreter name was cut. */
export const FE_EXEC_INTERP_TRUNCATED = 0x10;

/** LPM trie key data bytes (kernel/bpf/lpm_trie.c LPM_DATA_SIZE_MAX): longest path prefix filter. */
export const PREFIX_MAX = 256;
/** enum stella_prefix_action */
export const PREFIX_ACTION = { ALLOW: 1, DENY: 2 } as const;
