import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedManifestFields, publishedPackages, repoRoot } from '../scripts/packages.js';

// The publishing contract of every @stellaops package: what a consumer such
// as the Scanner relies on when it installs just one of them.
const packages = await publishedPackages();
const rootManifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
const versionOf = new Map<string, string>(
  packages.map((p) => {
    const m = JSON.parse(readFileSync(p.manifestPath, 'utf8'));
    return [m.name, m.version];
  }),
);

describe('published packages', () => {
  it('are released together: one version, managed by changesets, past 0.0.0', () => {
    const versions = new Set(versionOf.values());
    expect([...versions]).toHaveLength(1);
    expect([...versions][0]).toMatch(/^\d+\.\d+\.\d+$/);
    expect([...versions][0]).not.toBe('0.0.0');
    const changesets = JSON.parse(readFileSync(join(repoRoot, '.changeset/config.json'), 'utf8'));
    expect(changesets.fixed).toEqual([[...versionOf.keys()].sort()]);
  });

  it('covers all eight packages of the design', () => {
    expect(packages.map((p) => basename(p.dir))).toEqual([
      'bpf-loader',
      'cli',
      'enrich',
      'evidence-chain',
      'ndjson',
      'probes',
      'reachability',
      'signals',
    ]);
  });

  for (const pkg of packages) {
    const manifest = JSON.parse(readFileSync(pkg.manifestPath, 'utf8'));
    const name = basename(pkg.dir);
    describe(`@stellaops/${name}`, () => {
      it('is scoped, public, and requires Node >= 22.22', () => {
        expect(manifest.name).toBe(`@stellaops/${name}`);
        expect(manifest.private).not.toBe(true);
        expect(manifest.publishConfig?.access).toBe('public');
        expect(manifest.engines?.node).toBe(rootManifest.engines.node);
        expect(manifest.license).toBe('Apache-2.0');
      });

      it('derives exports from its tsup entry list (run scripts/sync-exports.ts)', () => {
        const want = expectedManifestFields(pkg);
        expect({
          main: manifest.main,
          module: manifest.module,
          types: manifest.types,
          exports: manifest.exports,
        }).toEqual(want);
      });

      it('ships dist and a README that states its purpose', () => {
        expect(manifest.files).toContain('dist');
        const readme = join(pkg.dir, 'README.md');
        expect(existsSync(readme), `${readme} is missing`).toBe(true);
        expect(readFileSync(readme, 'utf8')).toMatch(new RegExp(`^# @stellaops/${name}`));
      });

      it('depends on sibling packages at exactly their current version', () => {
        const deps = { ...manifest.dependencies, ...manifest.peerDependencies };
        for (const [dep, range] of Object.entries(deps)) {
          if (dep.startsWith('@stellaops/')) expect(range, dep).toBe(versionOf.get(dep));
        }
      });

      it('ships the Apache-2.0 LICENSE and names its repository directory', () => {
        expect(manifest.files).toContain('LICENSE');
        const license = join(pkg.dir, 'LICENSE');
        expect(existsSync(license), `${license} is missing`).toBe(true);
        expect(readFileSync(license, 'utf8')).toBe(readFileSync(join(repoRoot, 'LICENSE'), 'utf8'));
        expect(manifest.repository).toEqual({
          type: 'git',
          url: rootManifest.repository.url,
          directory: `packages/${name}`,
        });
      });

      it('runs only on Linux when it needs the kernel', () => {
        if (['bpf-loader', 'probes', 'enrich', 'signals', 'cli'].includes(name)) {
          expect(manifest.os).toEqual(['linux']);
        }
        // The addon's prebuild and the BPF objects are built for x86-64.
        if (['bpf-loader', 'probes'].includes(name)) expect(manifest.cpu).toEqual(['x64']);
      });
    });
  }
});
