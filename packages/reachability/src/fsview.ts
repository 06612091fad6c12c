/**
 * The image's filesystem as the package-database readers see it: every path
 * with its kind, symlink targets, the content of package-database files, and
 * SHA-256 digests of the files the collector digests (executables and
 * shared objects). Built from image layers (`layers.ts`) or a rootfs
 * directory (`rootfs.ts`).
 */
import { posix } from 'node:path';
import { normalizePath, PathResolver } from './paths.js';
import type { SymlinkMap } from './types.js';

/** One path of the image. */
export interface FsNode {
  kind: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  /** Symlink target as stored. */
  target?: string;
  /** `sha256:<hex>` of a digested file's content. */
  digest?: string;
}

/** Read access to an image's filesystem. */
export interface FsView {
  /** Every path (normalised, absolute) and its node. */
  readonly nodes: ReadonlyMap<string, FsNode>;
  /** Content of a package-database file (see {@link isDatabaseFile}); undefined when absent. */
  read(path: string): Promise<Buffer | undefined>;
  /** `sha256:<hex>` of a digested file (see {@link isDigested}); undefined when not known. */
  digest(path: string): Promise<string | undefined>;
}

const DB_FILE =
  /^(?:\/var\/lib\/dpkg\/status|\/var\/lib\/dpkg\/status\.d\/[^/]+|\/var\/lib\/dpkg\/info\/[^/]+\.list|\/(?:usr\/)?lib\/apk\/db\/installed|\/(?:usr\/lib|etc)\/os-release|.*\/node_modules\/(?:@[^/]+\/)?[^/@][^/]*\/package\.json|.*\/[^/]+\.dist-info\/(?:RECORD|METADATA))$/;

/** True for files whose content the package-database readers need. */
export function isDatabaseFile(path: string): boolean {
  return DB_FILE.test(path);
}

const SHARED_OBJECT = /\.so(?:\.[0-9][^/]*)?$/;

/**
 * True for files whose SHA-256 is worth computing: what the collector digests
 * (executed files: anything with an execute bit; shared objects).
 */
export function isDigested(path: string, mode: number): boolean {
  return (mode & 0o111) !== 0 || SHARED_OBJECT.test(path);
}

/** True for a shared-object file name (`libx.so`, `libx.so.1`, `libx.so.1.2.3`). */
export function isSharedObject(path: string): boolean {
  return SHARED_OBJECT.test(posix.basename(path));
}

/** The symlinks of a view, for {@link PathResolver}. */
export function symlinksOf(view: FsView): SymlinkMap {
  const out: SymlinkMap = {};
  for (const [p, n] of view.nodes) if (n.kind === 'symlink' && n.target !== undefined) out[p] = n.target;
  return out;
}

/**
 * Helpers over a view for the database readers: existence and kind through
 * the image's symlinks, and the regular files under a directory.
 */
export class ViewIndex {
  readonly resolver: PathResolver;
  readonly #view: FsView;
  #sorted: string[] | undefined;

  constructor(view: FsView) {
    this.#view = view;
    this.resolver = new PathResolver(symlinksOf(view));
  }

  /** The node at `p`, following symlinks in the directories and, when `follow`, the last component. */
  node(p: string, follow: boolean): FsNode | undefined {
    const r = follow ? this.resolver.real(p) : this.resolver.parentReal(p);
    return this.#view.nodes.get(r);
  }

  /**
   * The inventory's view of a listed path: kept when it names a file or a
   * symlink to a file in the image; dropped (undefined) when it names a
   * directory (dpkg lists them) or nothing (excluded by dpkg path-exclude,
   * deleted by a later layer).
   */
  keepFile(p: string): string | undefined {
    const n = normalizePath(p);
    const own = this.node(n, false);
    if (!own) return undefined;
    if (own.kind === 'dir') return undefined;
    if (own.kind === 'symlink') {
      const real = this.node(n, true);
      if (real?.kind === 'dir') return undefined;
    }
    return n;
  }

  /** Paths of the non-directory entries under `dir`, skipping nested `node_modules`. */
  filesUnder(dir: string): string[] {
    if (!this.#sorted) {
      this.#sorted = [...this.#view.nodes.entries()]
        .filter(([, n]) => n.kind !== 'dir')
        .map(([p]) => p)
        .sort();
    }
    const prefix = `${dir}/`;
    const out: string[] = [];
    const s = this.#sorted;
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((s[mid] as string) < prefix) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < s.length && (s[i] as string).startsWith(prefix); i++) {
      const p = s[i] as string;
      if (p.slice(prefix.length).split('/').includes('node_modules')) continue;
      out.push(p);
    }
    return out;
  }
}
