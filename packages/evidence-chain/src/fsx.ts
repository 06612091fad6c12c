import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { EvidenceChainError, errnoCode, ioError } from './errors.js';

/** Mode of the evidence directory: owner rwx, group rx (STYLE: no world access to evidence). */
export const DIR_MODE = 0o750;
/** Mode of every evidence file: owner rw, group r. */
export const FILE_MODE = 0o640;

const { O_WRONLY, O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_APPEND, O_DIRECTORY } = fs.constants;

/**
 * Make sure `dir` is a real directory (created 0750 if missing, mode forced
 * to 0750). Throws SYMLINK_REFUSED when `dir` is a symbolic link and
 * NOT_A_DIRECTORY when it is something else.
 */
export function ensureEvidenceDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw ioError('cannot inspect output directory', dir, err);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    } catch (err2) {
      throw ioError('cannot create output directory', dir, err2);
    }
    st = fs.lstatSync(dir);
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
    });
  }
  if ((st.mode & 0o777) !== DIR_MODE) {
    try {
      fs.chmodSync(dir, DIR_MODE);
    } catch (err) {
      throw ioError('cannot set mode 0750 on output directory', dir, err);
    }
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
