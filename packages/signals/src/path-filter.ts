/**
 * Path globs from the config (`/etc/**`, `/usr/lib/*.so*`) split into what
 * the kernel can evaluate (byte prefixes) and what must be matched exactly in
 * user space. The kernel side only ever narrows conservatively: an allow
 * prefix admits a superset of the glob, a deny prefix is used only when the
 * glob is exactly "everything under this prefix".
 *
 * Glob syntax: `**` matches any run of bytes including `/`; `*` any run
 * without `/`; `?` one byte other than `/`. No character classes or braces:
 * a glob holding `[`, `]`, `{` or `}` is rejected rather than misread.
 */
export interface CompiledPathFilter {
  /** Prefixes for the in-kernel allow list; empty means allow all. */
  readonly kernelAllowPrefixes: readonly string[];
  /** Prefixes for the in-kernel deny list (only exact `prefix/**` globs). */
  readonly kernelDenyPrefixes: readonly string[];
  /** True when user space must re-check paths the kernel let through. */
  readonly needsUserCheck: boolean;
  /** The exact decision for a path the kernel let through. */
  allows(path: string): boolean;
}

/** Thrown for a glob the filter cannot represent faithfully. */
export class PathGlobError extends Error {
  readonly code = 'PATH_GLOB' as const;
  constructor(
    readonly glob: string,
    reason: string,
  ) {
    super(`path glob '${glob}': ${reason}`);
    this.name = this.constructor.name;
  }
}

interface Glob {
  source: string;
  /** Literal prefix before the first wildcard. */
  prefix: string;
  /** True when the glob is `<prefix>**` with nothing after. */
  prefixOnly: boolean;
  /** True when there is no wildcard at all. */
  literal: boolean;
  re: RegExp;
}

function compileGlob(source: string): Glob {
  if (!source.startsWith('/')) throw new PathGlobError(source, 'must be an absolute path starting with /');
  if (/[[\]{}]/.test(source))
    throw new PathGlobError(source, 'character classes and braces are not supported');
  const firstWild = source.search(/[*?]/);
  const prefix = firstWild === -1 ? source : source.slice(0, firstWild);
  let re = '^';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '*' && source[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  re += '$';
  return {
    source,
    prefix,
    prefixOnly: firstWild !== -1 && source.slice(firstWild) === '**',
    literal: firstWild === -1,
    re: new RegExp(re, 's'),
  };
}

/**
 * Compile allow and deny globs. A path is kept when it matches some allow
 * glob (or the allow list is empty) and no deny glob.
 * @throws PathGlobError for a relative path or unsupported syntax.
 */
export function compilePathFilter(allow: readonly string[], deny: readonly string[]): CompiledPathFilter {
  const a = allow.map(compileGlob);
  const d = deny.map(compileGlob);
  // An allow glob that is not `prefix/**` admits more in the kernel than it
  // should, and a deny glob that is not `prefix/**` cannot be denied there.
  const needsUserCheck = a.some((g) => !g.prefixOnly) || d.some((g) => !g.prefixOnly);
  return {
    kernelAllowPrefixes: dedupePrefixes(a.map((g) => g.prefix)),
    kernelDenyPrefixes: dedupePrefixes(d.filter((g) => g.prefixOnly).map((g) => g.prefix)),
    needsUserCheck,
    allows(path: string): boolean {
      if (a.length > 0 && !a.some((g) => g.re.test(path))) return false;
      return !d.some((g) => g.re.test(path));
    },
  };
}

/** Drop prefixes covered by a shorter one; sorted for a stable kernel map. */
function dedupePrefixes(prefixes: string[]): string[] {
  const sorted = [...new Set(prefixes)].sort();
  return sorted.filter((p, i) => !sorted.slice(0, i).some((q) => p.startsWith(q)));
}
