/** Narrowing helpers for JSON replies from runtimes: never trust their shape. */
export type Json = Record<string, unknown>;

export function obj(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

export function strMap(v: unknown): Record<string, string> {
  const o = obj(v);
  const out: Record<string, string> = {};
  if (o === undefined) return out;
  for (const [k, val] of Object.entries(o)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** `sha256:<hex>` for a bare hex id, unchanged when already prefixed. */
export function asDigest(id: string): string {
  return id.includes(':') ? id : `sha256:${id}`;
}

/** The repository part of an image reference (`docker.io/x/y:tag` → `docker.io/x/y`). */
export function repoOf(ref: string): string {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/** Docker Hub short names: `busybox` ≡ `docker.io/library/busybox`, `x/y` ≡ `docker.io/x/y`. */
export function normalizeRepo(repo: string): string {
  const first = repo.split('/')[0] ?? '';
  const hasRegistry =
    repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return repo;
  return repo.includes('/') ? `docker.io/${repo}` : `docker.io/library/${repo}`;
}

/** Pick the digest of `repo@sha256:…` among repo digests whose repository matches `ref`'s. */
export function repoDigestFor(ref: string | undefined, repoDigests: readonly string[]): string | undefined {
  const parsed = repoDigests
    .map((d) => {
      const at = d.indexOf('@');
      return at < 0 ? undefined : { repo: normalizeRepo(d.slice(0, at)), digest: d.slice(at + 1) };
    })
    .filter((x): x is { repo: string; digest: string } => x !== undefined);
  if (ref !== undefined) {
    const want = normalizeRepo(repoOf(ref));
    const hit = parsed.find((p) => p.repo === want);
    if (hit) return hit.digest;
  }
  // All repo digests of one image name the same manifest unless pushed differently; take the first.
  return parsed[0]?.digest;
}
