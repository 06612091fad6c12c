/**
 * Probes of this package; network and TLS probes are added later.
 * `cgroup_mkdir` yields no evidence: its events go to `onCgroupMkdir`.
 */
export type ProbeName = 'file_open' | 'exec' | 'exit' | 'file_open_lsm' | 'cgroup_mkdir';

/** Fields every record carries. Byte strings stay raw: never assume UTF-8. */
export interface EventHeader {
  /** Thread-group id (the process id user space sees). */
  pid: number;
  tid: number;
  /** Thread-group id of the real parent. */
  ppid: number;
  uid: number;
  gid: number;
  /** Task name, without the trailing NULs. */
  comm: Buffer;
  /** cgroup v2 id (inode number of the cgroup directory). */
  cgroupId: bigint;
  /** CLOCK_MONOTONIC nanoseconds at the event. */
  monoNs: bigint;
}

/** The call that produced a file-open record. */
export type OpenSyscall = 'open' | 'openat' | 'openat2' | 'creat' | 'open_by_handle_at' | 'lsm';

/**
 * How `path` was made absolute: as passed, joined to the working directory
 * or to the directory open on `dirfd`, read from the opened file itself
 * (`fd`: open_by_handle_at and the LSM probe), or left relative because the
 * base could not be read (`unresolved`).
 */
export type PathResolution = 'absolute' | 'cwd' | 'dirfd' | 'unresolved' | 'fd';

export interface FileOpenEvent extends EventHeader {
  kind: 'file_open';
  /** `file_open` (syscalls) or `file_open_lsm` (security_file_open: also io_uring and kernel opens). */
  probe: 'file_open' | 'file_open_lsm';
  syscall: OpenSyscall;
  /** Path bytes, absolute unless resolution is 'unresolved'. */
  path: Buffer;
  /** O_* flags as passed (creat(2): O_CREAT|O_WRONLY|O_TRUNC). */
  flags: number;
  mode: number;
  /** Directory fd passed (-100 = AT_FDCWD). */
  dirfd: number;
  /** The new fd, or -errno. */
  ret: number;
  resolution: PathResolution;
  /** The path was longer or deeper than kept: `path` is a prefix of the real one. */
  truncated: boolean;
  /** The path string could not be read from the caller's memory: `path` holds only the resolved base. */
  pathFault: boolean;
}

export interface ExecEvent extends EventHeader {
  kind: 'exec';
  /** Filename as given to execve/execveat (execveat with AT_EMPTY_PATH: /dev/fd/N). */
  filename: Buffer;
  filenameTruncated: boolean;
  /** Arguments kept (up to 4096 bytes in total). */
  argv: Buffer[];
  /** Arguments the program received; more than argv.length when truncated. */
  argc: number;
  argvTruncated: boolean;
  /**
   * The executed file's path as the process sees it (from its root, so a
   * container's view), read from the kernel's file object: the real file
   * behind /proc/self/exe, a symlink or a relative name. For a `#!` script
   * this is the interpreter binary the kernel runs.
   */
  exePath: Buffer;
  /** `exePath` was longer or deeper than kept: it is the end of the real path. */
  exePathTruncated: boolean;
  /**
   * For a script (`#!`, or a binfmt_misc handler): the interpreter as the
   * script named it (bprm->interp); `filename` is then the script. Absent
   * for a binary run directly.
   */
  interpreter?: Buffer;
  interpreterTruncated: boolean;
  /** Device and inode of the executed file, as stat(2) st_dev and st_ino. */
  exeDev: bigint;
  exeIno: bigint;
  /** Thread id that called exec (differs from pid when a non-leader thread execs). */
  oldPid: number;
}

export interface ExitEvent extends EventHeader {
  kind: 'exit';
  /** Exit code (WEXITSTATUS); 0 when killed by a signal. */
  exitCode: number;
  /** Terminating signal (WTERMSIG), 0 for a normal exit. */
  signal: number;
  coreDumped: boolean;
  /** Raw wait(2) status. */
  status: number;
  /** Process start, CLOCK_MONOTONIC ns. */
  startNs: bigint;
}

export type ProbeEvent = FileOpenEvent | ExecEvent | ExitEvent;
