/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File-open, exec and exit records of fileexec.bpf.o. Shared with the
 * TypeScript decoder (src/layout.ts mirrors these; test/btf-layout.test.ts
 * compares the mirror with the object's BTF, so an unmirrored change fails).
 * Fixed-width types and explicit padding only.
 */
#ifndef STELLA_FILEEXEC_H
#define STELLA_FILEEXEC_H

#include "common.h"

#define FE_PATH_MAX 4096                  /* PATH_MAX, include/uapi/linux/limits.h */
#define FE_PATH_BUF (2 * FE_PATH_MAX + 8) /* resolved prefix + '/' + user path (+1 to see truncation) */
#define FE_ARGV_MAX 4096                  /* argv bytes kept per exec */
#define FE_EXEC_DATA (4 * FE_PATH_MAX)    /* filename, argv, resolved executable path, interpreter */
#define FE_MAX_DEPTH 64                   /* path components walked for cwd/dirfd */
#define FE_AT_FDCWD (-100)

/* Counter slots (index into the `counters` map). */
enum fe_probe {
	FE_PROBE_FILE_OPEN = 0,
	FE_PROBE_EXEC = 1,
	FE_PROBE_EXIT = 2,
	FE_PROBE_FILE_OPEN_LSM = 3,
};

/* Which call produced a file_open record. */
enum fe_syscall {
	FE_SYS_OPEN = 1,
	FE_SYS_OPENAT = 2,
	FE_SYS_OPENAT2 = 3,
	FE_SYS_CREAT = 4,
	FE_SYS_OPEN_BY_HANDLE_AT = 5,
	FE_SYS_LSM = 6, /* security_file_open: io_uring, exec, kernel-internal opens */
};

/* How `path` was made absolute. */
enum fe_resolution {
	FE_RES_ABSOLUTE = 0,   /* the caller passed an absolute path */
	FE_RES_CWD = 1,        /* relative to the caller's working directory */
	FE_RES_DIRFD = 2,      /* relative to the directory open on dirfd */
	FE_RES_UNRESOLVED = 3, /* relative, and the base could not be read: path as passed */
	FE_RES_FD = 4,         /* from the opened file itself (open_by_handle_at, LSM) */
};

/* path_flags bits */
#define FE_PATH_TRUNCATED 0x1 /* path longer than kept, or deeper than FE_MAX_DEPTH */
#define FE_PATH_FAULT 0x2     /* the user string could not be read (path empty) */

/* Dedup flags class: access mode, creation, truncation and failure are distinct facts. */
#define FE_FCLASS_CREAT 0x4
#define FE_FCLASS_TRUNC 0x8
#define FE_FCLASS_FAILED 0x10
/* Opened by runc setting a container up (task name "runc" or "runc:[N:...]"): kept apart in
 * dedup so the image's own later open of the same path is still reported. */
#define FE_FCLASS_RUNTIME_SETUP 0x20

struct fe_file_open_event {
	struct stella_event_header hdr;
	__s32 ret;        /* fd, or -errno */
	__u32 flags;      /* open flags (O_*) as passed; creat(2) reports O_CREAT|O_WRONLY|O_TRUNC */
	__u32 mode;
	__s32 dirfd;      /* AT_FDCWD (-100) for open/creat */
	__u32 path_len;   /* bytes of path[] that follow */
	__u16 syscall;    /* enum fe_syscall */
	__u8 resolution;  /* enum fe_resolution */
	__u8 path_flags;  /* FE_PATH_* */
	char path[FE_PATH_BUF];
};

/* exec_flags bits */
#define FE_EXEC_FILENAME_TRUNCATED 0x1
#define FE_EXEC_ARGV_TRUNCATED 0x2
#define FE_EXEC_EXE_PATH_TRUNCATED 0x4 /* exe path longer or deeper than kept: a suffix of the real one */
#define FE_EXEC_INTERP 0x8             /* binfmt_script/binfmt_misc named an interpreter (bprm->interp) */
#define FE_EXEC_INTERP_TRUNCATED 0x10

struct fe_exec_event {
	struct stella_event_header hdr;
	__u64 exe_ino;
	__u64 exe_dev;      /* user-space dev_t encoding, as stat(2) st_dev */
	__u32 filename_len;
	__u32 argv_len;     /* NUL-separated arguments, as in /proc/<pid>/cmdline */
	__u32 argc;         /* arguments the program received (may exceed those kept) */
	__u32 exec_flags;   /* FE_EXEC_* */
	__u32 old_pid;      /* thread id that called exec (differs when a non-leader thread execs) */
	__u32 exe_path_len; /* bprm->file's path from the task's root (after filename and argv in data) */
	__u32 interp_len;   /* bprm->interp when FE_EXEC_INTERP (after the exe path in data) */
	__u32 pad;
	char data[FE_EXEC_DATA];
};

struct fe_exit_event {
	struct stella_event_header hdr;
	__s32 exit_status;  /* wait(2) status: (code << 8) | signal | 0x80 if core dumped */
	__u32 pad;
	__u64 start_ns;     /* task start, CLOCK_MONOTONIC ns */
};

/* Arguments of an open, as read from the registers at sys_exit. */
struct fe_open_args {
	__u64 path_ptr;
	__u64 flags;
	__u32 mode;
	__s32 dirfd;
	__u32 syscall;
	__u32 pad;
};

#endif /* STELLA_FILEEXEC_H */
