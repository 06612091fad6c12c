/**
 * Paths in the image's view: normalisation and symlink resolution against
 * the symlinks of the image's filesystem (its layers or rootfs), never the
 * host's.
 */
import { posix } from 'node:path';
import type { SymlinkMap } from './types.js';

/** Linux follows at most 40 symlinks while resolving one path (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

/**
 * Normalise an absolute path: no `.`/`..` components, no repeated or
 * trailing slash. A relative path is taken from `/` (tar members and SBOM
 * locations are often written `./usr/bin/x` or `usr/bin/x`).
 */
export function normalizePath(p: string): string {
  const n = posix.normalize(`/${p}`);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * Resolves paths through an image's symlinks, as the kernel would inside the
 * container: every directory component, and the last one when `followLast`.
 * A loop or a chain longer than 40 links stops resolution (the path is kept
 * as resolved so far).
 */
export class PathResolver {
  readonly #links: Map<string, string>;
  readonly #cache = new Map<string, string>();

  constructor(symlinks: SymlinkMap | undefined) {
    this.#links = new Map();
    for (const [link, target] of Object.entries(symlinks ?? {})) {
      this.#links.set(normalizePath(link), target);
    }
  }

  /** True when the image has no symlinks to follow. */
  get empty(): boolean {
    return this.#links.size === 0;
  }

  /** The real path of `p`: every symlink followed, the last component too. */
  real(p: string): string {
    return this.#resolve(normalizePath(p), true);
  }

  /** `p` with its directory resolved, its last component kept (the path of a symlink itself). */
  parentReal(p: string): string {
    return this.#resolve(normalizePath(p), false);
  }

  #resolve(path: string, followLast: boolean): string {
    if (this.#links.size === 0) return path;
    const key = `${followLast ? 'r' : 'p'}${path}`;
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    const out = this.#walk(path, followLast);
    this.#cache.set(key, out);
    return out;
  }

  #walk(path: string, followLast: boolean): string {
    let pending = path.split('/').filter((c) => c !== '');
    let done: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const c = pending[0] as string;
      pending = pending.slice(1);
      if (c === '.') continue;
      if (c === '..') {
        done.pop();
        continue;
      }
      const candidate = `/${[...done, c].join('/')}`;
      const isLast = pending.length === 0;
      const target = isLast && !followLast ? undefined : this.#links.get(candidate);
      if (target === undefined) {
        done.push(c);
        continue;
      }
      if (++hops > MAX_SYMLINKS) return `/${[...done, c, ...pending].join('/')}`;
      if (target.startsWith('/')) done = [];
      pending = [...target.split('/').filter((t) => t !== ''), ...pending];
    }
    return `/${done.join('/')}`;
  }
}
