import { describe, expect, it } from 'vitest';
import { CliError } from '../errors.js';
import { formatImageRef, parseImageQuery, parseImageRef, refMatches } from './inspect-query.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('image references, normalised as Docker does', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['stellaops/app:1.2', 'docker.io/stellaops/app:1.2'],
    ['docker.io/stellaops/app:1.2', 'docker.io/stellaops/app:1.2'],
    ['index.docker.io/library/nginx', 'docker.io/library/nginx:latest'],
    ['localhost/app:dev', 'localhost/app:dev'],
    ['registry.local:5000/team/app:v1', 'registry.local:5000/team/app:v1'],
    [`app@${D}`, `docker.io/library/app@${D}`],
    [`ghcr.io/acme/tool:v3@${D}`, `ghcr.io/acme/tool:v3@${D}`],
  ])('%s → %s', (text, normal) => {
    expect(formatImageRef(parseImageRef(text)!)).toBe(normal);
  });

  it.each(['Busybox', 'app:', 'a//b', 'app@sha256:12', 'app:bad tag'])('%s is not a reference', (text) => {
    expect(parseImageRef(text)).toBeUndefined();
  });

  it('matches a container by repository and tag however its runtime spelled the reference', () => {
    const q = parseImageRef('nginx:1.25')!;
    expect(refMatches(q, { imageRef: 'docker.io/library/nginx:1.25' })).toBe(true);
    expect(refMatches(q, { imageRef: 'nginx:1.25' })).toBe(true);
    expect(refMatches(q, { imageRef: 'nginx:1.26' })).toBe(false);
    expect(refMatches(parseImageRef('nginx')!, { imageRef: 'nginx:1.25' })).toBe(false);
    expect(refMatches(parseImageRef(`nginx@${D}`)!, { imageRef: 'nginx:1.25', manifestDigest: D })).toBe(
      true,
    );
    expect(refMatches(parseImageRef(`nginx@${D}`)!, { imageRef: 'nginx:1.25' })).toBe(false);
  });
});

describe('the IMAGE argument', () => {
  it('tells digests, prefixes and references apart', () => {
    expect(parseImageQuery(D)).toMatchObject({ kind: 'digest', digest: D });
    expect(parseImageQuery(D.slice(7))).toMatchObject({ kind: 'digest', digest: D });
    expect(parseImageQuery('sha256:ab')).toMatchObject({ kind: 'prefix', prefix: 'sha256:ab' });
    expect(parseImageQuery('abab')).toMatchObject({ kind: 'prefix', prefix: 'sha256:abab' });
    // Shorter bare hex is an image name.
    expect(parseImageQuery('abc')).toMatchObject({ kind: 'ref' });
    expect(parseImageQuery('nginx')).toMatchObject({ kind: 'ref' });
  });

  it('refuses what is neither, with a usage error that says what may be given', () => {
    for (const bad of ['sha256:', 'sha256:XYZ', `${D}0`, 'Nginx']) {
      let err: unknown;
      try {
        parseImageQuery(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).code).toBe('USAGE');
      expect((err as CliError).hint).toContain('a unique digest prefix');
    }
  });
});
