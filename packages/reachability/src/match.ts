/**
 * Which package files an evidence path or digest names, in the image's view:
 * both sides are brought to the same path through the image's symlinks (a
 * listed `/bin/sh` and an executed `/usr/bin/dash` meet at the real file),
 * and SHA-256 digests match where the inventory has them.
 */
import { normalizePath, PathResolver } from './paths.js';
import type { Inventory, SymlinkMap } from './types.js';

/** One package file a path or digest matched. */
export interface Owner {
  /** Index into the inventory's packages. */
  pkg: number;
  /** The file as the inventory lists it (or, for a directory-owned package, the evidence path). */
  path: string;
}

/** usr-merge aliases, used only when the image's symlinks are not known (an SBOM alone). */
const USR_MERGE: [string, string][] = [
  ['/bin/', '/usr/bin/'],
  ['/sbin/', '/usr/sbin/'],
  ['/lib/', '/usr/lib/'],
  ['/lib32/', '/usr/lib32/'],
  ['/lib64/', '/usr/lib64/'],
  ['/libx32/', '/usr/libx32/'],
];

function usrMergeAliases(p: string): string[] {
  for (const [a, b] of USR_MERGE) {
    if (p.startsWith(a)) return [b + p.slice(a.length)];
    if (p.startsWith(b)) return [a + p.slice(b.length)];
  }
  return [];
}

/** Distinct evidence paths remembered before the memo starts over (bounds memory on unowned temp files). */
const MEMO_LIMIT = 200_000;

/** Index of an inventory's files by path (symlink-resolved) and by digest. */
export class Matcher {
  readonly #resolver: PathResolver;
  readonly #byPath = new Map<string, Owner[]>();
  readonly #byDigest = new Map<string, Owner[]>();
  readonly #dirs: { dir: string; pkg: number }[] = [];
  readonly #memo = new Map<string, Owner[]>();
  /** True when the image's symlinks were not given, so usr-merge aliases are tried instead. */
  readonly guessedUsrMerge: boolean;

  constructor(inventory: Inventory, symlinks: SymlinkMap | undefined) {
    this.#resolver = new PathResolver(symlinks ?? inventory.symlinks);
    this.guessedUsrMerge = this.#resolver.empty;
    inventory.packages.forEach((p, pkg) => {
      for (const f of p.files) {
        const owner = { pkg, path: f };
        for (const k of this.#keys(f)) add(this.#byPath, k, owner);
      }
      for (const [path, d] of Object.entries(p.digests ?? {})) add(this.#byDigest, d, { pkg, path });
      for (const dir of p.directories ?? []) this.#dirs.push({ dir: this.#resolver.real(dir), pkg });
    });
  }

  /** The path itself (directories resolved) and its real path; usr-merge aliases when symlinks are unknown. */
  #keys(p: string): Set<string> {
    const n = normalizePath(p);
    const keys = new Set([this.#resolver.parentReal(n), this.#resolver.real(n)]);
    if (this.guessedUsrMerge) for (const k of [...keys]) for (const a of usrMergeAliases(k)) keys.add(a);
    return keys;
  }

  /** The real path of an evidence path in the image's view. */
  real(p: string): string {
    return this.#resolver.real(p);
  }

  /** Package files named by an absolute evidence path (memoised: evidence names the same files again and again). */
  byPath(p: string): Owner[] {
    let hit = this.#memo.get(p);
    if (hit === undefined) {
      if (this.#memo.size >= MEMO_LIMIT) this.#memo.clear();
      hit = this.#lookup(p);
      this.#memo.set(p, hit);
    }
    return hit;
  }

  #lookup(p: string): Owner[] {
    const out: Owner[] = [];
    for (const k of this.#keys(p)) out.push(...(this.#byPath.get(k) ?? []));
    if (this.#dirs.length > 0) {
      const real = this.#resolver.real(p);
      for (const { dir, pkg } of this.#dirs) {
        if (!real.startsWith(`${dir}/`)) continue;
        if (
          real
            .slice(dir.length + 1)
            .split('/')
            .includes('node_modules')
        )
          continue;
        out.push({ pkg, path: normalizePath(p) });
      }
    }
    return out;
  }

  /** Package files whose content has this `sha256:<hex>` digest. */
  byDigest(d: string): Owner[] {
    return this.#byDigest.get(d) ?? [];
  }
}

function add(m: Map<string, Owner[]>, k: string, o: Owner): void {
  const l = m.get(k);
  if (l) {
    if (!l.some((x) => x.pkg === o.pkg && x.path === o.path)) l.push(o);
  } else m.set(k, [o]);
}
