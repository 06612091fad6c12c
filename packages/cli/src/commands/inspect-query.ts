import { CliError } from '../errors.js';

/** An image reference split into its parts, normalised as Docker does (`busybox` → `docker.io/library/busybox:latest`). */
export interface ImageRef {
  /** Registry and repository: `docker.io/library/busybox`, `localhost/app`. */
  name: string;
  tag?: string;
  digest?: string;
}

/** What `stella signals inspect IMAGE` was asked about. */
export type ImageQuery =
  | { kind: 'digest'; text: string; digest: string }
  | { kind: 'prefix'; text: string; prefix: string }
  | { kind: 'ref'; text: string; ref: ImageRef };

const HEX = /^[0-9a-f]+$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/** The shortest bare hex string taken as a digest prefix (shorter ones read as image names). */
export const MIN_BARE_PREFIX = 4;

/**
 * Parse an image reference (`nginx`, `nginx:1.25`, `ghcr.io/org/app:v1`,
 * `app@sha256:…`), normalised as Docker does: no registry means
 * `docker.io`, a one-part Docker Hub name is under `library/`, and no tag
 * and no digest means `:latest`. Undefined when it is not a reference.
 */
export function parseImageRef(text: string): ImageRef | undefined {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  const parts = rest.split('/');
  let domain = 'docker.io';
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) return undefined;
    domain = first === 'index.docker.io' ? 'docker.io' : first;
    parts.shift();
  }
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p))) return undefined;
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library');
  return {
    name: `${domain}/${parts.join('/')}`,
    ...(tag !== undefined || digest === undefined ? { tag: tag ?? 'latest' } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** A normalised reference as text: `docker.io/library/busybox:latest`. */
export function formatImageRef(r: ImageRef): string {
  return `${r.name}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/**
 * Parse the IMAGE argument: a full digest (`sha256:` + 64 hex), a digest
 * prefix (`sha256:3f1c`, or bare hex of at least {@link MIN_BARE_PREFIX}
 * digits as `docker images` shows ids), or an image reference.
 * @throws CliError `USAGE` saying what the argument may be.
 */
export function parseImageQuery(text: string): ImageQuery {
  const usage = (why: string) =>
    new CliError('USAGE', `inspect: '${text}' ${why}`, {
      hint: 'give a digest (sha256: and 64 hex digits), a unique digest prefix (sha256:3f1c9a, or 3f1c9a), or an image reference (docker.io/library/nginx:1.25); list what the evidence saw with --list-images',
    });
  if (text.startsWith('sha256:')) {
    const hex = text.slice('sha256:'.length);
    if (hex.length === 0 || hex.length > 64 || !HEX.test(hex)) throw usage('is not an image digest');
    return hex.length === 64
      ? { kind: 'digest', text, digest: text }
      : { kind: 'prefix', text, prefix: text };
  }
  if (HEX.test(text) && text.length >= MIN_BARE_PREFIX && text.length <= 64) {
    const d = `sha256:${text}`;
    return text.length === 64 ? { kind: 'digest', text, digest: d } : { kind: 'prefix', text, prefix: d };
  }
  const ref = parseImageRef(text);
  if (!ref) throw usage('is neither an image digest nor an image reference');
  // name@digest names one image by its digest; the name only has to agree.
  return { kind: 'ref', text, ref };
}

/** The digests and reference a record's `container` member names. */
export interface ImageIdentity {
  manifestDigest?: string;
  configDigest?: string;
  imageRef?: string;
}

/**
 * Whether a container's image is the one `ref` names: same registry and
 * repository (after normalisation), same tag when the query has one (an
 * untagged query means `latest`, as for `docker run`), and, when the query
 * has a digest, one of the container's digests is it.
 */
export function refMatches(ref: ImageRef, c: ImageIdentity): boolean {
  if (c.imageRef === undefined) return false;
  const theirs = parseImageRef(c.imageRef);
  if (!theirs || theirs.name !== ref.name) return false;
  if (ref.digest !== undefined) {
    return [theirs.digest, c.manifestDigest, c.configDigest].includes(ref.digest);
  }
  return theirs.tag === ref.tag;
}
