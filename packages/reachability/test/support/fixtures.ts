/**
 * Test fixtures: a small Debian-like root filesystem (usr-merged, dpkg
 * database, npm tree, a Python dist-info), packed into real layers with GNU
 * tar in a containerd-layout content store, and schema v1 records.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  type CollectorStatusRecord,
  type EvidenceRecord,
  type FileOpenRecord,
  type ProcessExecRecord,
  validateRecord,
} from '@stellaops/ndjson';

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Write a file (parents created), optionally executable. */
export function put(root: string, path: string, content: string | Buffer, exec = false): void {
  const p = join(root, path);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
  if (exec) chmodSync(p, 0o755);
}

/** Create a symlink `path` → `target` inside root. */
export function link(root: string, path: string, target: string): void {
  const p = join(root, path);
  mkdirSync(dirname(p), { recursive: true });
  symlinkSync(target, p);
}

/** Contents that give each binary a distinct digest. */
export const BIN = {
  dash: 'ELF dash\n',
  ls: 'ELF ls\n',
  libc: 'ELF libc.so.6\n',
  libz: 'ELF libz.so.1.2.13\n',
  python: 'ELF python3.11\n',
  six: 'import sys\n# six\n',
};

const STATUS = `Package: dash
Status: install ok installed
Architecture: amd64
Version: 0.5.12-2
Description: POSIX shell
 a long description line

Package: libc6
Status: install ok installed
Multi-Arch: same
Architecture: amd64
Version: 2.36-9

Package: zlib1g
Status: install ok installed
Multi-Arch: same
Architecture: amd64
Version: 1:1.2.13.dfsg-1

Package: coreutils
Status: install ok installed
Architecture: amd64
Version: 9.1-1

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: no-list
Status: install ok installed
Architecture: amd64
Version: 1.0
`;

/**
 * A usr-merged root filesystem: `/bin` → `usr/bin`, `/lib` → `usr/lib`;
 * dpkg lists some files under the old paths (`/bin/dash`, `/lib/...`), as
 * Debian packages still do.
 */
export function buildRootfs(): string {
  const r = mkdtempSync(join(tmpdir(), 'reach-rootfs-'));
  for (const d of ['usr/bin', 'usr/lib/x86_64-linux-gnu', 'etc', 'tmp'])
    mkdirSync(join(r, d), { recursive: true });
  link(r, 'bin', 'usr/bin');
  link(r, 'lib', 'usr/lib');
  link(r, 'lib64', 'usr/lib64');
  put(r, 'etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
  put(r, 'usr/bin/dash', BIN.dash, true);
  link(r, 'usr/bin/sh', 'dash');
  put(r, 'usr/bin/ls', BIN.ls, true);
  put(r, 'usr/bin/python3.11', BIN.python, true);
  put(r, 'usr/lib/x86_64-linux-gnu/libc.so.6', BIN.libc);
  put(r, 'usr/lib/x86_64-linux-gnu/libz.so.1.2.13', BIN.libz);
  link(r, 'usr/lib/x86_64-linux-gnu/libz.so.1', 'libz.so.1.2.13');
  put(r, 'usr/share/zoneinfo/UTC', 'TZif\n');
  put(r, 'var/lib/dpkg/status', STATUS);
  put(
    r,
    'var/lib/dpkg/info/dash.list',
    '/.\n/bin\n/bin/dash\n/usr\n/usr/bin\n/usr/bin/sh\n/usr/share/doc/dash/copyright\n',
  );
  put(
    r,
    'var/lib/dpkg/info/libc6:amd64.list',
    '/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n',
  );
  put(
    r,
    'var/lib/dpkg/info/zlib1g:amd64.list',
    '/.\n/usr/lib/x86_64-linux-gnu/libz.so.1\n/usr/lib/x86_64-linux-gnu/libz.so.1.2.13\n',
  );
  put(r, 'var/lib/dpkg/info/coreutils.list', '/.\n/bin\n/bin/ls\n');
  put(r, 'var/lib/dpkg/info/tzdata.list', '/.\n/usr/share/zoneinfo\n/usr/share/zoneinfo/UTC\n');
  put(r, 'var/lib/dpkg/info/removed-pkg.list', '/usr/bin/removed\n');
  // npm: two packages at the top, one nested inside express.
  put(r, 'app/package.json', '{"name":"app","version":"1.0.0"}');
  put(r, 'app/server.js', 'require("express")\n');
  put(r, 'app/node_modules/express/package.json', '{"name":"express","version":"4.19.2"}');
  put(r, 'app/node_modules/express/index.js', 'module.exports = 1\n');
  put(r, 'app/node_modules/express/node_modules/debug/package.json', '{"name":"debug","version":"2.6.9"}');
  put(r, 'app/node_modules/express/node_modules/debug/src/index.js', 'module.exports = 2\n');
  put(r, 'app/node_modules/@types/node/package.json', '{"name":"@types/node","version":"20.0.0"}');
  put(r, 'app/node_modules/@types/node/index.d.ts', 'export {}\n');
  put(r, 'app/node_modules/left-pad/package.json', '{"name":"left-pad","version":"1.3.0"}');
  put(r, 'app/node_modules/left-pad/index.js', 'module.exports = 3\n');
  // Python: RECORD paths are relative to site-packages, sha256 in urlsafe base64.
  const sp = 'usr/lib/python3/dist-packages';
  put(r, `${sp}/six.py`, BIN.six);
  put(r, `${sp}/six-1.16.0.dist-info/METADATA`, 'Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n');
  const b64 = createHash('sha256').update(BIN.six).digest('base64url');
  put(
    r,
    `${sp}/six-1.16.0.dist-info/RECORD`,
    `six.py,sha256=${b64},${BIN.six.length}\nsix-1.16.0.dist-info/METADATA,,\nsix-1.16.0.dist-info/RECORD,,\n`,
  );
  return r;
}

/** A containerd-layout content store. */
export class ContentStore {
  readonly root = mkdtempSync(join(tmpdir(), 'reach-content-'));

  /** Store a blob; returns its digest. */
  put(data: Buffer | string): string {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const hex = sha256(buf);
    mkdirSync(join(this.root, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(this.root, 'blobs', 'sha256', hex), buf);
    return `sha256:${hex}`;
  }

  /** Store layers, a config and an OCI manifest; returns the manifest digest. */
  image(layers: Buffer[]): string {
    const layerDescs = layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: this.put(l),
      size: l.length,
    }));
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }),
    );
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: this.put(config),
        size: config.length,
      },
      layers: layerDescs,
    };
    return this.put(JSON.stringify(manifest));
  }
}

/** A tar of `dir` written by GNU tar in `format` (gzip when `gzip`). */
export function tarOf(dir: string, format: 'pax' | 'gnu' | 'ustar' = 'pax', gzip = true): Buffer {
  const tar = execFileSync('tar', ['-C', dir, `--format=${format}`, '--sort=name', '-cf', '-', '.'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return gzip ? gzipSync(tar) : tar;
}

export const IMAGE = `sha256:${'1'.repeat(64)}`;
export const OTHER_IMAGE = `sha256:${'2'.repeat(64)}`;

let seq = 100n;
const T0 = 1_760_000_000_000_000_000n;

function envelope(offsetMs: number) {
  const s = seq++;
  const wall = T0 + BigInt(offsetMs) * 1_000_000n;
  return {
    schema_version: 1 as const,
    seq: s.toString(),
    mono_ns: (wall - T0 + 1000n).toString(),
    wall_ns: wall.toString(),
    host_id: 'host-a',
  };
}

function proc(image: string, container = 'c1') {
  return {
    pid: 42,
    tid: 42,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: 'sh',
    cgroup_id: '7',
    container: {
      id: container,
      runtime: 'containerd',
      image_manifest_digest: image,
      status: 'resolved' as const,
    },
  };
}

function checked<T extends EvidenceRecord>(r: T): T {
  const issues = validateRecord(r);
  if (issues.length > 0) throw new Error(`test record is not valid v1: ${JSON.stringify(issues)}`);
  return r;
}

/** A process_exec record. */
export function exec(
  at: number,
  filename: string,
  o: Partial<ProcessExecRecord> & { image?: string } = {},
): ProcessExecRecord {
  const { image = IMAGE, ...rest } = o;
  return checked({
    ...envelope(at),
    type: 'process_exec',
    ...proc(image),
    filename,
    argv: [filename],
    argv_truncated: false,
    exe_dev: '1',
    exe_ino: '2',
    ret: 0,
    ...rest,
  } as ProcessExecRecord);
}

/** A file_open record (read-only, successful unless overridden). */
export function open(
  at: number,
  path: string,
  o: Partial<FileOpenRecord> & { image?: string } = {},
): FileOpenRecord {
  const { image = IMAGE, ...rest } = o;
  return checked({
    ...envelope(at),
    type: 'file_open',
    ...proc(image),
    path,
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 0o2000000, // O_RDONLY | O_CLOEXEC
    mode: 0,
    dirfd: -100,
    ret: 3,
    syscall: 'openat',
    ...rest,
  } as FileOpenRecord);
}

/** A collector_status record covering [startMs, endMs]. */
export function status(
  startMs: number,
  endMs: number,
  o: { lost?: number; final?: boolean; attached?: boolean } = {},
) {
  const env = envelope(endMs);
  const probe = (name: string, lost: number) => ({
    name,
    attached: o.attached ?? true,
    attach_type: 'tp_btf',
    seen: String(100 + lost),
    filtered: '0',
    deduplicated: '0',
    emitted: '100',
    lost: String(lost),
  });
  return checked({
    ...env,
    type: 'collector_status',
    window_start_wall_ns: (T0 + BigInt(startMs) * 1_000_000n).toString(),
    window_end_wall_ns: env.wall_ns,
    probes: [probe('file_open', o.lost ?? 0), probe('process_exec', 0)],
    ...(o.final ? { final: true } : {}),
  } as CollectorStatusRecord);
}

/** Wall-clock ns of a test offset. */
export const wallAt = (ms: number) => (T0 + BigInt(ms) * 1_000_000n).toString();

/** Read a JSON fixture. */
export const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
