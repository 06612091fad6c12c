import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { EvidenceChainError, errnoCode, ioError } from './errors.js';

/** Mode of the evidence directory: owner rwx, group rx (STYLE: no world access to evidence). */
export const DIR_MODE = 0o750;
/** Mode of every evidence file: owner rw, group r. */
export const FILE_MODE = 0o640;

/** The sticky bit: in a directory with it, only an entry's owner may rename or remove the entry. */
const S_ISVTX = 0o1000;

const { O_WRONLY, O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_APPEND, O_DIRECTORY } = fs.constants;

/**
 * Filesystems that keep no files of their own (statfs `f_type`, from
 * include/uapi/linux/magic.h; mqueue from ipc/mqueue.c). Evidence written
 * there is lost or refused, and Node's recursive mkdir spins forever under
 * /proc/self (mkdir answers ENOENT while the parent exists).
 */
const PSEUDO_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x1cd1, 'devpts'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0xf97cff8c, 'selinuxfs'],
  [0x43415d53, 'smackfs'],
  [0x7655821, 'resctrl'],
  [0x6e736673, 'nsfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x65735543, 'fusectl'],
  [0x958458f6, 'hugetlbfs'],
  [0x19800202, 'mqueue'],
]);

/** The pseudo filesystem `path` lives on, or undefined for a real one (or when statfs fails). */
function pseudoFilesystem(path: string): string | undefined {
  try {
    return PSEUDO_FILESYSTEMS.get(Number(fs.statfsSync(path).type));
  } catch {
    return undefined;
  }
}

function refusePseudo(dir: string, at: string): void {
  const kind = pseudoFilesystem(at);
  if (kind === undefined) return;
  throw new EvidenceChainError(
    'UNSUPPORTED_FILESYSTEM',
    `output directory ${dir} is on a ${kind} pseudo filesystem (${at}); evidence needs a real, persistent filesystem`,
    { path: dir, hint: 'choose a directory on disk, e.g. /var/lib/stellaops/evidence' },
  );
}

/**
 * Refuse a directory that another user can replace or fill: owned by someone
 * else, writable by group or others, or under a parent that any user may
 * write to without the sticky bit (any user could rename it away and put
 * their own in its place). Ancestors are checked up to `/`.
 */
function refuseUnsafe(dir: string, st: fs.Stats, created: boolean): void {
  const uid = process.geteuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new EvidenceChainError(
      'UNSAFE_DIRECTORY',
      `output directory ${dir} is owned by uid ${st.uid}, but the collector runs as uid ${uid}; another user must not own the evidence directory`,
      { path: dir, hint: `chown ${uid} ${dir}, or choose a directory owned by uid ${uid}` },
    );
  }
  if (!created && (st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
    throw new EvidenceChainError(
      'UNSAFE_DIRECTORY',
      `output directory ${dir} has mode ${mode}: ${st.mode & 0o002 ? 'every user' : 'its group'} may add, replace or remove evidence files`,
      {
        path: dir,
        hint: `chmod 0750 ${dir} (the collector never changes the mode of a directory it did not create)`,
      },
    );
  }
  refuseWritableAncestors(dir, dirname(safeRealpathOr(dir)));
}

/**
 * Refuse when `from` or any directory above it is writable by every user
 * without the sticky bit: anyone could rename the evidence directory away and
 * put their own in its place.
 */
function refuseWritableAncestors(dir: string, from: string): void {
  let parent = from;
  for (let i = 0; i < 4096; i++) {
    let pst: fs.Stats;
    try {
      pst = fs.statSync(parent);
    } catch {
      break;
    }
    if ((pst.mode & 0o002) !== 0 && (pst.mode & S_ISVTX) === 0) {
      const mode = (pst.mode & 0o7777).toString(8).padStart(4, '0');
      throw new EvidenceChainError(
        'UNSAFE_DIRECTORY',
        `${parent}, a parent of output directory ${dir}, is writable by every user without the sticky bit (mode ${mode}): anyone can replace the evidence directory`,
        { path: dir, hint: `chmod o-w ${parent} (or chmod +t ${parent}), or choose a directory elsewhere` },
      );
    }
    const up = dirname(parent);
    if (up === parent) break;
    parent = up;
  }
}

/** Where a path stands: its nearest existing ancestor and the components below it that are missing. */
export interface DirectoryPlan {
  /** The nearest existing path at or above the target. */
  readonly existing: string;
  /** Whether `existing` is a directory (else a file stands in the way). */
  readonly existingIsDirectory: boolean;
  /** The pseudo filesystem `existing` lives on (proc, sysfs, ...), if any. */
  readonly pseudo?: string;
  /** Missing components, outermost first; empty when the target exists. */
  readonly missing: readonly string[];
}

/**
 * Walk up from `abs` to its nearest existing ancestor, creating nothing.
 * Errors other than ENOENT/ENOTDIR (EACCES on a parent) are thrown as they are.
 */
export function planDirectories(abs: string): DirectoryPlan {
  const missing: string[] = [];
  let cur = abs;
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(cur);
    } catch (err) {
      // ENOTDIR: a component above is a file; keep walking up to name it.
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    const up = dirname(cur);
    if (st || up === cur) {
      const pseudo = st ? pseudoFilesystem(cur) : undefined;
      return {
        existing: cur,
        existingIsDirectory: st?.isDirectory() ?? false,
        ...(pseudo ? { pseudo } : {}),
        missing,
      };
    }
    missing.unshift(cur);
    cur = up;
  }
}

/**
 * Create `missing` (from {@link planDirectories}) one component at a time,
 * never with Node's recursive mkdir, which loops forever where mkdir answers
 * ENOENT although the parent exists (under /proc/self). Each directory made
 * here gets exactly `mode` (the umask may narrow it); one that appears
 * meanwhile is left as it is. Returns the directories created.
 */
export function makeDirectories(missing: readonly string[], mode: number): string[] {
  const created: string[] = [];
  for (const p of missing) {
    try {
      fs.mkdirSync(p, { mode });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST' && fs.statSync(p).isDirectory()) continue;
      throw err;
    }
    fs.chmodSync(p, mode);
    created.push(p);
  }
  return created;
}

/** Create the missing components of `abs` (mode 0750); true when it created `abs` itself. */
function createDirs(dir: string, abs: string): boolean {
  let plan: DirectoryPlan;
  try {
    plan = planDirectories(abs);
  } catch (err) {
    throw ioError('cannot inspect output directory', abs, err);
  }
  if (!plan.existingIsDirectory) {
    throw new EvidenceChainError(
      'NOT_A_DIRECTORY',
      `output directory ${dir} cannot be created: ${plan.existing} is not a directory`,
      { path: dir, hint: `choose a path whose parents are directories (${plan.existing} is a file)` },
    );
  }
  refusePseudo(dir, plan.existing);
  // Before creating anything below it.
  refuseWritableAncestors(dir, safeRealpathOr(plan.existing));
  let created: string[];
  try {
    created = makeDirectories(plan.missing, DIR_MODE);
  } catch (err) {
    throw ioError('cannot create output directory', (err as NodeJS.ErrnoException).path ?? abs, err);
  }
  return created[created.length - 1] === abs;
}

/**
 * Make sure `dir` is a safe evidence directory, creating it (and missing
 * parents) 0750 when absent. Throws, each with a `hint`:
 * SYMLINK_REFUSED (`dir` is a symbolic link), NOT_A_DIRECTORY (it, or a
 * parent, is something else), UNSUPPORTED_FILESYSTEM (proc, sysfs and other
 * pseudo filesystems), UNSAFE_DIRECTORY (owned by another user, writable by
 * its group or others, or under a world-writable directory without the
 * sticky bit, checked before anything is created), PERMISSION_DENIED (this
 * user may not create or write it).
 *
 * The mode of a directory the collector did not create is never changed: one
 * that others may read or search (a kubelet `DirectoryOrCreate` hostPath is
 * 0755) is used as it is, with a warning in the result; the files inside are
 * 0640, so others see names only.
 */
export function ensureEvidenceDir(dir: string): EvidenceDirReport {
  const abs = resolve(dir);
  let st: fs.Stats;
  let created = false;
  try {
    st = fs.lstatSync(abs);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError('cannot inspect output directory', dir, err);
    created = createDirs(dir, abs);
    st = fs.lstatSync(abs);
  }
  if (st.isSymbolicLink()) {
    throw new EvidenceChainError(
      'SYMLINK_REFUSED',
      `output directory ${dir} is a symbolic link; refusing to write evidence through it — use the real path (${safeRealpath(dir)})`,
      { path: dir },
    );
  }
  if (!st.isDirectory()) {
    throw new EvidenceChainError('NOT_A_DIRECTORY', `output path ${dir} exists and is not a directory`, {
      path: dir,
      hint: 'give a directory (it is created when missing), not a file',
    });
  }
  refusePseudo(dir, abs);
  refuseUnsafe(dir, st, created);
  try {
    fs.accessSync(abs, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw ioError('cannot write to output directory', dir, err);
  }
  if (created && (st.mode & 0o777) !== DIR_MODE) {
    // umask may have narrowed the mode of the directory just created.
    try {
      fs.chmodSync(abs, DIR_MODE);
    } catch (err) {
      throw ioError('cannot set mode 0750 on output directory', dir, err);
    }
  }
  const warnings: string[] = [];
  if (!created && (st.mode & 0o007) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
    warnings.push(
      `output directory ${dir} has mode ${mode}: every user can list the evidence file names (the files are 0640); chmod 0750 ${dir} to hide them`,
    );
  }
  return { created, warnings };
}

/** What {@link ensureEvidenceDir} did and what an operator should know. */
export interface EvidenceDirReport {
  /** True when the directory did not exist and was created (0750). */
  created: boolean;
  /** Non-fatal findings, each with the fix (a directory others may read). */
  warnings: string[];
}

function safeRealpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return resolve(p);
  }
}

function safeRealpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return 'unresolvable';
  }
}

/** Create a new file (never an existing one, never through a symlink), mode 0640; returns the fd. */
export function createNewFile(path: string): number {
  let fd: number;
  try {
    fd = fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND, FILE_MODE);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST' && isSymlink(path)) {
      throw new EvidenceChainError(
        'SYMLINK_REFUSED',
        `${path} is a symbolic link; refusing to write evidence through it`,
        {
          path,
          cause: err,
        },
      );
    }
    throw ioError('cannot create', path, err);
  }
  // umask may have narrowed the mode; evidence files are exactly 0640.
  fs.fchmodSync(fd, FILE_MODE);
  return fd;
}

/** Open an existing file read-write without following a symlink (recovery only). */
export function openExistingRw(path: string): number {
  try {
    return fs.openSync(path, O_RDWR | O_NOFOLLOW);
  } catch (err) {
    throw ioError('cannot open', path, err);
  }
}

function isSymlink(path: string): boolean {
  try {
    return fs.lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Read a whole file without following a symlink. Throws SYMLINK_REFUSED on a symlink. */
export function readFileNoFollow(path: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(path, O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    throw ioError('cannot read', path, err);
  }
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory so a create/rename/unlink in it is durable. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    fs.fsyncSync(fd);
  } catch (err) {
    throw ioError('cannot fsync directory', dir, err);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Write all of `data` to `fd` (writeSync may write less than asked). */
export function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) {
    off += fs.writeSync(fd, data, off, data.length - off);
  }
}

/**
 * Atomically write `dir/name`: a fresh temporary file (O_EXCL, no symlink
 * follow, 0640), fsync, rename over the target, fsync the directory. A crash
 * leaves either the old file or the new one, plus at most a `.tmp-` file
 * that recovery removes.
 */
export function writeFileAtomic(dir: string, name: string, data: Buffer | string): void {
  const tmp = join(dir, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = createNewFile(tmp);
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    safeUnlink(tmp);
    throw ioError('cannot write', join(dir, name), err);
  }
  fs.closeSync(fd);
  const target = join(dir, name);
  if (isSymlink(target)) {
    safeUnlink(tmp);
    throw new EvidenceChainError('SYMLINK_REFUSED', `${target} is a symbolic link; refusing to replace it`, {
      path: target,
    });
  }
  try {
    fs.renameSync(tmp, target);
  } catch (err) {
    safeUnlink(tmp);
    throw ioError('cannot rename into place', target, err);
  }
  fsyncDir(dir);
}

/** Unlink, ignoring a missing file. */
export function safeUnlink(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw ioError('cannot remove', path, err);
  }
}

/**
 * Take the single-writer lock of an evidence directory (`.lock`, holding the
 * owner's pid). A lock left by a dead process (SIGKILL) is taken over.
 * Throws DIRECTORY_LOCKED while another live process holds it.
 */
export function acquireDirLock(dir: string): () => void {
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, FILE_MODE);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(path, 'utf8').trim() === String(process.pid)) fs.unlinkSync(path);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw ioError('cannot create lock', path, err);
    }
    let owner = Number.NaN;
    try {
      owner = Number.parseInt(readFileNoFollow(path).toString('utf8').trim(), 10);
    } catch {
      // unreadable or vanished: retry
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
      throw new EvidenceChainError(
        'DIRECTORY_LOCKED',
        `evidence directory ${dir} is in use by process ${owner}; stop that collector or choose another directory (if no collector is running, remove ${path})`,
        { path },
      );
    }
    safeUnlink(path);
  }
  throw new EvidenceChainError('DIRECTORY_LOCKED', `could not take the lock ${path}`, { path });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
