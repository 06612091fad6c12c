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
  // Fast path: evidence and inventory paths are nearly always clean already.
  if (p.startsWith('/') && !p.includes('//') && !p.includes('/.') && (p.length === 1 || !p.endsWith('/')))
    return p;
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
    if (this.#links.size === 0 || path === '/') return path;
    const slash = path.lastIndexOf('/');
    const dir = this.#real(slash === 0 ? '/' : path.slice(0, slash), 0);
    const own = dir === '/' ? path.slice(slash) : `${dir}${path.slice(slash)}`;
    return followLast ? this.#real(own, 0) : own;
  }

  /**
   * The real path of a normalised path, each directory prefix resolved once
   * and cached: the parent's real path, then the last component followed if
   * it is a link (its target taken from the parent's real path).
   */
  #real(path: string, hops: number): string {
    if (path === '/') return path;
    const hit = this.#cache.get(path);
    if (hit !== undefined) return hit;
    const slash = path.lastIndexOf('/');
    const dir = this.#real(slash === 0 ? '/' : path.slice(0, slash), hops);
    const own = dir === '/' ? path.slice(slash) : `${dir}${path.slice(slash)}`;
    const target = this.#links.get(own);
    let out = own;
    if (target !== undefined) {
      // Past 40 links (a loop), the kernel gives ELOOP: keep the path as resolved so far.
      out =
        hops >= MAX_SYMLINKS
          ? own
          : this.#real(normalizePath(target.startsWith('/') ? target : `${dir}/${target}`), hops + 1);
    }
    if (hops === 0) this.#cache.set(path, out);
    return out;
  }
}
