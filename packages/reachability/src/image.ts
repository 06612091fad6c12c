/**
 * Inventories read from the image itself: its layers in containerd's content
 * store (manifest → layers, applied in order with OCI whiteouts), or an
 * unpacked root filesystem. No SBOM needed.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { ReachabilityError } from './errors.js';
import { type FsNode, type FsView, isDatabaseFile, isDigested, symlinksOf } from './fsview.js';
import { normalizePath } from './paths.js';
import { readPackages } from './pkgdb.js';
import { readTar, type TarBodySink, type TarEntry } from './tar.js';
import type { ImageInventoryOptions, Inventory } from './types.js';

/** containerd's default content store. */
export const DEFAULT_CONTENT_STORE = '/var/lib/containerd/io.containerd.content.v1.content';

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

interface Descriptor {
  mediaType?: string;
  digest: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

function blobPath(store: string, digest: string): string {
  return join(store, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

function readJsonBlob(store: string, digest: string, what: string): Record<string, unknown> {
  const p = blobPath(store, digest);
  let data: Buffer;
  try {
    data = fs.readFileSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ReachabilityError(
        'IMAGE_NOT_FOUND',
        `${what} ${digest} is not in the content store ${store}`,
        {
          path: p,
          hint: 'pull the image on this host first (ctr image pull / nerdctl pull), pass the content store with contentStore, or use an SBOM',
        },
      );
    }
    throw new ReachabilityError(
      'IO_ERROR',
      `cannot read ${what} ${digest} at ${p}: ${(err as Error).message}`,
      {
        path: p,
        cause: err,
      },
    );
  }
  const actual = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  if (actual !== digest) {
    throw new ReachabilityError(
      'IMAGE_INVALID',
      `${p}: content is ${actual}, not ${digest}: the content store is corrupt`,
      {
        path: p,
      },
    );
  }
  try {
    return JSON.parse(data.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ReachabilityError('IMAGE_INVALID', `${what} ${digest} is not JSON`, { path: p, cause: err });
  }
}

const GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  s390x: 's390x',
  ppc64: 'ppc64le',
  riscv64: 'riscv64',
};

function runningPlatform(): { os: string; architecture: string } {
  return { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch };
}

/** The manifest of the image: `digest` itself, or the platform's entry when it is an index. */
function resolveManifest(
  store: string,
  digest: string,
  platform: NonNullable<ImageInventoryOptions['platform']>,
): { digest: string; manifest: Record<string, unknown> } {
  const doc = readJsonBlob(store, digest, 'image manifest');
  if (!Array.isArray(doc.manifests)) return { digest, manifest: doc };
  const entries = doc.manifests as Descriptor[];
  const hit = entries.find(
    (m) =>
      m.platform?.os === platform.os &&
      m.platform?.architecture === platform.architecture &&
      (platform.variant === undefined || m.platform?.variant === platform.variant),
  );
  if (!hit || !DIGEST_RE.test(hit.digest)) {
    const have = entries.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ');
    throw new ReachabilityError(
      'IMAGE_NOT_FOUND',
      `image index ${digest} has no ${platform.os}/${platform.architecture} manifest (it has: ${have || 'none'})`,
      { hint: 'pass platform, or the digest of the platform manifest' },
    );
  }
  return { digest: hit.digest, manifest: readJsonBlob(store, hit.digest, 'platform manifest') };
}

/** One layer's changes, applied to the lower layers at once (whiteouts apply to lower layers only). */
interface LayerChanges {
  nodes: Map<string, FsNode>;
  data: Map<string, Buffer>;
  hardlinks: [string, string][];
  whiteouts: string[];
  opaque: string[];
}

function deleteSubtree(nodes: Map<string, FsNode>, data: Map<string, Buffer>, dir: string, keepDir: boolean) {
  const prefix = dir === '/' ? '/' : `${dir}/`;
  for (const k of nodes.keys()) {
    if (k.startsWith(prefix) || (!keepDir && k === dir)) {
      nodes.delete(k);
      data.delete(k);
    }
  }
}

/** Builds an image filesystem view layer by layer. */
class LayeredView implements FsView {
  readonly nodes = new Map<string, FsNode>();
  readonly #data = new Map<string, Buffer>();

  /** Sink for one tar member of a layer. */
  visit(ch: LayerChanges, e: TarEntry): TarBodySink | undefined {
    const path = normalizePath(e.path);
    const base = path.slice(path.lastIndexOf('/') + 1);
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    if (base === '.wh..wh..opq') {
      ch.opaque.push(dir);
      return undefined;
    }
    if (base.startsWith('.wh.')) {
      ch.whiteouts.push(dir === '/' ? `/${base.slice(4)}` : `${dir}/${base.slice(4)}`);
      return undefined;
    }
    if (e.type === 'hardlink') {
      ch.hardlinks.push([path, normalizePath(e.linkpath)]);
      return undefined;
    }
    const kind =
      e.type === 'directory'
        ? 'dir'
        : e.type === 'symlink'
          ? 'symlink'
          : e.type === 'file'
            ? 'file'
            : 'other';
    const node: FsNode = { kind, mode: e.mode };
    if (kind === 'symlink') node.target = e.linkpath;
    ch.nodes.set(path, node);
    if (kind !== 'file') return undefined;
    const keepData = isDatabaseFile(path);
    const hash = isDigested(path, e.mode) ? createHash('sha256') : undefined;
    if (!keepData && !hash) return undefined;
    const parts: Buffer[] = [];
    return {
      write: (chunk) => {
        hash?.update(chunk);
        if (keepData) parts.push(Buffer.from(chunk));
      },
      end: () => {
        if (hash) node.digest = `sha256:${hash.digest('hex')}`;
        if (keepData) ch.data.set(path, Buffer.concat(parts));
      },
    };
  }

  apply(ch: LayerChanges): void {
    for (const d of ch.opaque) deleteSubtree(this.nodes, this.#data, d, true);
    for (const w of ch.whiteouts) deleteSubtree(this.nodes, this.#data, w, false);
    for (const [p, n] of ch.nodes) {
      const old = this.nodes.get(p);
      // A non-directory replacing a directory hides the directory's whole subtree.
      if (old?.kind === 'dir' && n.kind !== 'dir') deleteSubtree(this.nodes, this.#data, p, false);
      this.nodes.set(p, n);
      const d = ch.data.get(p);
      if (d) this.#data.set(p, d);
      else this.#data.delete(p);
    }
    for (const [p, target] of ch.hardlinks) {
      const t = ch.nodes.get(target) ?? this.nodes.get(target);
      this.nodes.set(p, {
        kind: t?.kind ?? 'file',
        mode: t?.mode ?? 0,
        ...(t?.digest ? { digest: t.digest } : {}),
      });
      const d = ch.data.get(target) ?? this.#data.get(target);
      if (d) this.#data.set(p, d);
    }
  }

  async read(path: string): Promise<Buffer | undefined> {
    return this.#data.get(path);
  }

  async digest(path: string): Promise<string | undefined> {
    return this.nodes.get(path)?.digest;
  }
}

/** Hashes a blob as it streams, so a layer's bytes are checked against its digest. */
function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

function decompressorFor(magic: Buffer, where: string): Transform | undefined {
  if (magic[0] === 0x1f && magic[1] === 0x8b) return zlib.createGunzip();
  if (magic.readUInt32LE(0) === 0xfd2fb528) {
    const z = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
    if (!z) {
      throw new ReachabilityError(
        'IMAGE_INVALID',
        `${where}: zstd layer, and this Node has no zstd decompressor`,
        {
          hint: 'use Node >= 22.15, or an SBOM',
        },
      );
    }
    return z();
  }
  return undefined;
}

async function readLayer(store: string, digest: string, view: LayeredView): Promise<void> {
  const p = blobPath(store, digest);
  const magic = Buffer.alloc(4);
  try {
    const fd = fs.openSync(p, 'r');
    try {
      fs.readSync(fd, magic, 0, 4, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ReachabilityError(
      missing ? 'IMAGE_NOT_FOUND' : 'IO_ERROR',
      `layer ${digest}: ${missing ? `not in the content store ${store}` : (err as Error).message}`,
      {
        path: p,
        cause: err,
        ...(missing
          ? {
              hint: 'the image was not fully pulled (or was unpacked and its layers garbage-collected): pull it again, or use an SBOM',
            }
          : {}),
      },
    );
  }
  const where = `layer ${digest}`;
  const hash = createHash('sha256');
  const changes: LayerChanges = {
    nodes: new Map(),
    data: new Map(),
    hardlinks: [],
    whiteouts: [],
    opaque: [],
  };
  const dec = decompressorFor(magic, where);
  const consume = (source: AsyncIterable<Buffer>) => readTar(source, (e) => view.visit(changes, e), where);
  try {
    if (dec) await pipeline(fs.createReadStream(p), hashing(hash), dec, consume);
    else await pipeline(fs.createReadStream(p), hashing(hash), consume);
  } catch (err) {
    if (err instanceof ReachabilityError) throw err;
    throw new ReachabilityError('IMAGE_INVALID', `${where}: cannot read (${(err as Error).message})`, {
      path: p,
      cause: err,
    });
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== digest) {
    throw new ReachabilityError(
      'IMAGE_INVALID',
      `${where}: content is ${actual}: the content store is corrupt`,
      {
        path: p,
      },
    );
  }
  view.apply(changes);
}

/**
 * Inventory of an image read from containerd's content store: the manifest
 * (or the running platform's manifest of an index), its layers applied in
 * order (gzip, zstd or plain tar; OCI whiteouts), then the package databases
 * found in the result. Each blob is checked against its digest.
 * @throws ReachabilityError IMAGE_NOT_FOUND (a blob is missing), IMAGE_INVALID, TAR_INVALID, INVALID_OPTION, IO_ERROR
 */
export async function inventoryFromImage(o: ImageInventoryOptions): Promise<Inventory> {
  if (typeof o?.manifestDigest !== 'string' || !DIGEST_RE.test(o.manifestDigest)) {
    throw new ReachabilityError(
      'INVALID_OPTION',
      `manifestDigest must be "sha256:" and 64 lowercase hex digits, got ${JSON.stringify(o?.manifestDigest)}`,
      { hint: 'find it with `ctr -n <namespace> images ls` (the DIGEST column)' },
    );
  }
  const store = o.contentStore ?? DEFAULT_CONTENT_STORE;
  const { digest, manifest } = resolveManifest(store, o.manifestDigest, o.platform ?? runningPlatform());
  const layers = (manifest.layers ?? []) as Descriptor[];
  const config = manifest.config as Descriptor | undefined;
  if (!Array.isArray(layers) || !config || !DIGEST_RE.test(config.digest)) {
    throw new ReachabilityError(
      'IMAGE_INVALID',
      `manifest ${digest} has no config or layers: not an image manifest`,
    );
  }
  const view = new LayeredView();
  for (const l of layers) {
    if (!DIGEST_RE.test(l.digest)) {
      throw new ReachabilityError(
        'IMAGE_INVALID',
        `manifest ${digest} lists a layer with digest ${l.digest}`,
      );
    }
    await readLayer(store, l.digest, view);
  }
  return {
    source: {
      kind: 'image',
      manifestDigest: o.manifestDigest,
      configDigest: config.digest,
      layers: layers.map((l) => l.digest),
    },
    packages: await readPackages(view),
    symlinks: symlinksOf(view),
  };
}

/** A view of an unpacked root filesystem on disk (symlinks are read, never followed). */
class RootfsView implements FsView {
  readonly nodes = new Map<string, FsNode>();
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    this.#walk('/');
  }

  #walk(rel: string): void {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(join(this.#dir, rel), { withFileTypes: true });
    } catch {
      return; // unreadable directory: its files are unknown
    }
    for (const e of entries) {
      const p = rel === '/' ? `/${e.name}` : `${rel}/${e.name}`;
      const full = join(this.#dir, p);
      if (e.isDirectory()) {
        this.nodes.set(p, { kind: 'dir', mode: 0o755 });
        this.#walk(p);
      } else if (e.isSymbolicLink()) {
        this.nodes.set(p, { kind: 'symlink', mode: 0o777, target: fs.readlinkSync(full) });
      } else if (e.isFile()) {
        this.nodes.set(p, { kind: 'file', mode: fs.lstatSync(full).mode & 0o7777 });
      } else {
        this.nodes.set(p, { kind: 'other', mode: 0 });
      }
    }
  }

  async read(path: string): Promise<Buffer | undefined> {
    if (this.nodes.get(path)?.kind !== 'file') return undefined;
    return fs.promises.readFile(join(this.#dir, path));
  }

  async digest(path: string): Promise<string | undefined> {
    const n = this.nodes.get(path);
    if (n?.kind !== 'file' || !isDigested(path, n.mode)) return undefined;
    if (n.digest === undefined) {
      const hash = createHash('sha256');
      await pipeline(fs.createReadStream(join(this.#dir, path)), hashing(hash), async (s) => {
        for await (const _ of s);
      });
      n.digest = `sha256:${hash.digest('hex')}`;
    }
    return n.digest;
  }
}

/**
 * Inventory of an unpacked root filesystem (a directory holding the image's
 * `/`): its package databases, with the directory's symlinks read as the
 * image's own (never followed on the host).
 * @throws ReachabilityError IO_ERROR when `dir` is not a readable directory
 */
export async function inventoryFromRootfs(dir: string): Promise<Inventory> {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    throw new ReachabilityError('IO_ERROR', `rootfs ${dir}: ${(err as Error).message}`, {
      path: dir,
      cause: err,
    });
  }
  if (!st.isDirectory()) {
    throw new ReachabilityError('INVALID_OPTION', `rootfs ${dir} is not a directory`, { path: dir });
  }
  const view = new RootfsView(dir);
  return { source: { kind: 'rootfs', dir }, packages: await readPackages(view), symlinks: symlinksOf(view) };
}
