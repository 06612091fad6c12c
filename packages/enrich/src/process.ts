import { closeSync, openSync, readlinkSync, readSync, statSync } from 'node:fs';
import { EnrichError } from './errors.js';
import { type KernelString, kernelString } from './kernel-string.js';

/** Options of {@link readProcessInfo}. */
export interface ProcessInfoOptions {
  /** procfs mount; default `/proc`. */
  readonly procRoot?: string;
  /** Bytes of `/proc/<pid>/cmdline` read at most; default 4096. */
  readonly maxCmdlineBytes?: number;
  /** Arguments kept at most; default 64. */
  readonly maxArgs?: number;
}

/** What `/proc` says about a process's program. */
export interface ProcessInfo {
  readonly pid: number;
  /**
   * The executable path as the process's own mount namespace names it
   * (`readlink /proc/<pid>/exe`). For a container process this is the path
   * inside the image (`/bin/busybox`): the path an SBOM of the image lists.
   */
  readonly exe?: KernelString;
  /** The same file reached from the host: `/proc/<pid>/root<exe>`, when it names the same inode. */
  readonly hostExe?: string;
  /** True when the process's root differs from the caller's (a container, a chroot). */
  readonly ownRoot: boolean;
  /** Arguments, each a {@link KernelString}; bounded by `maxCmdlineBytes` and `maxArgs`. */
  readonly argv: readonly KernelString[];
  /** True when `argv` was cut by a bound. */
  readonly argvTruncated: boolean;
  /** Executable file identity (device and inode numbers as decimal strings), for caches. */
  readonly exeDev?: string;
  readonly exeIno?: string;
}

/**
 * Read exe path, bounded argv and the in-container path of a process.
 * Kernel threads have no exe and an empty argv.
 *
 * @throws EnrichError PROC_UNAVAILABLE when `/proc/<pid>` cannot be read (process gone, or not root).
 * @throws EnrichError INVALID_OPTION for a pid that is not a positive integer.
 */
export function readProcessInfo(pid: number, options: ProcessInfoOptions = {}): ProcessInfo {
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new EnrichError(
      'INVALID_OPTION',
      `readProcessInfo: pid must be a positive integer, got ${String(pid)}`,
    );
  }
  const proc = options.procRoot ?? '/proc';
  const maxBytes = options.maxCmdlineBytes ?? 4096;
  const maxArgs = options.maxArgs ?? 64;
  const base = `${proc}/${pid}`;

  let cmd: Buffer;
  let cut = false;
  try {
    const fd = openSync(`${base}/cmdline`, 'r');
    try {
      const buf = Buffer.alloc(maxBytes + 1);
      const n = readSync(fd, buf, 0, maxBytes + 1, 0);
      cut = n > maxBytes;
      cmd = buf.subarray(0, Math.min(n, maxBytes));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new EnrichError(
      'PROC_UNAVAILABLE',
      `cannot read ${base}/cmdline: ${(err as Error).message} (process exited?)`,
      {
        cause: err,
      },
    );
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < cmd.length; i++) {
    if (cmd[i] === 0) {
      parts.push(cmd.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < cmd.length) parts.push(cmd.subarray(start));
  if (parts.length > maxArgs) {
    parts.length = maxArgs;
    cut = true;
  }

  let exe: KernelString | undefined;
  let exeBytes: Buffer | undefined;
  try {
    exeBytes = readlinkSync(`${base}/exe`, { encoding: 'buffer' });
    exe = kernelString(exeBytes);
  } catch {
    // Kernel thread, or a process that just exited: no exe.
  }

  let ownRoot = false;
  try {
    const r = statSync(`${base}/root/`, { bigint: true });
    // Compared with our own root: pid 1 may not be readable (a sandboxed init).
    const hostRoot = statSync(`${proc}/self/root/`, { bigint: true });
    ownRoot = r.ino !== hostRoot.ino || r.dev !== hostRoot.dev;
  } catch {
    // no access: treat as host
  }

  let hostExe: string | undefined;
  let exeDev: string | undefined;
  let exeIno: string | undefined;
  if (exeBytes !== undefined) {
    try {
      const st = statSync(`${base}/exe`, { bigint: true });
      exeDev = st.dev.toString();
      exeIno = st.ino.toString();
      if (typeof exe === 'string' && !exe.endsWith(' (deleted)')) {
        const candidate = `${base}/root${exe}`;
        const c = statSync(candidate, { bigint: true });
        if (c.ino === st.ino && c.dev === st.dev) hostExe = candidate;
      }
    } catch {
      // deleted executable or no permission: keep what we have
    }
  }
  return {
    pid,
    ...(exe !== undefined && { exe }),
    ...(hostExe !== undefined && { hostExe }),
    ownRoot,
    argv: parts.map((p) => kernelString(p)),
    argvTruncated: cut,
    ...(exeDev !== undefined && { exeDev }),
    ...(exeIno !== undefined && { exeIno }),
  };
}
