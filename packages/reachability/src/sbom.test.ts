import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_COMPONENT_DEPTH, parseCycloneDx, parseSbom, parseSpdx } from './sbom.js';
import type { Inventory, InventoryPackage } from './types.js';

// Real generator output (see test/fixtures/sboms/README.md), plus small documents for what they do not show.
const fixture = (name: string) =>
  readFileSync(new URL(`../test/fixtures/sboms/${name}`, import.meta.url), 'utf8');
const byName = (inv: Inventory) => new Map<string, InventoryPackage>(inv.packages.map((p) => [p.name, p]));

describe('parseCycloneDx on real generator output', () => {
  it('cdxgen on a Debian root: package files come from dependencies[].provides and command paths', () => {
    const inv = parseCycloneDx(fixture('reach-debian.cdx.json'));
    expect(inv.source).toMatchObject({
      kind: 'cyclonedx',
      specVersion: '1.6',
      tool: expect.stringContaining('cdxgen'),
    });
    const p = byName(inv);
    expect(p.get('jq')).toMatchObject({ ecosystem: 'deb', version: '1.6-2.1+deb12u2' });
    expect(p.get('jq')?.purl).toMatch(/^pkg:deb\/debian\/jq@/);
    expect(p.get('jq')?.files).toContain('/usr/bin/jq');
    expect(p.get('libc6')?.files).toContain('/lib/x86_64-linux-gnu/libc.so.6');
    expect(p.get('busybox-static')?.files).toContain('/bin/busybox');
    // Where the generator found a package (its database) is never one of its files.
    for (const pkg of inv.packages)
      expect(pkg.files.filter((f) => f.startsWith('/var/lib/dpkg/'))).toEqual([]);
    // Unlinked file components (pkg:generic/...) are files, not packages.
    expect(inv.packages.every((x) => x.ecosystem === 'deb')).toBe(true);
  });

  it('cyclonedx-npm: each package owns its directory under the given application root', () => {
    const inv = parseCycloneDx(fixture('reach-node-app.cdx.json'), { root: '/app' });
    const p = byName(inv);
    expect(p.get('left-pad')).toMatchObject({
      ecosystem: 'npm',
      purl: 'pkg:npm/left-pad@1.3.0',
      files: [],
      directories: ['/app/node_modules/left-pad'],
    });
    // Without a root, the relative paths are taken from /.
    expect(byName(parseCycloneDx(fixture('reach-node-app.cdx.json'))).get('left-pad')?.directories).toEqual([
      '/node_modules/left-pad',
    ]);
  });
});

describe('parseSpdx', () => {
  it('reads packages, their CONTAINS files and SHA-256 checksums (real document of a Debian root)', () => {
    const inv = parseSpdx(fixture('reach-debian.spdx.json'));
    expect(inv.source).toMatchObject({ kind: 'spdx', spdxVersion: 'SPDX-2.3' });
    const jq = byName(inv).get('jq');
    expect(jq?.files).toContain('/usr/bin/jq');
    expect(jq?.digests?.['/usr/bin/jq']).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('also reads hasFiles and CONTAINED_BY, and relative file names', () => {
    const inv = parseSpdx({
      spdxVersion: 'SPDX-2.3',
      packages: [
        { SPDXID: 'SPDXRef-a', name: 'a', hasFiles: ['SPDXRef-f1'] },
        {
          SPDXID: 'SPDXRef-b',
          name: 'b',
          versionInfo: '2',
          externalRefs: [{ referenceType: 'purl', referenceLocator: 'pkg:pypi/b@2' }],
        },
      ],
      files: [
        {
          SPDXID: 'SPDXRef-f1',
          fileName: './usr/bin/a',
          checksums: [{ algorithm: 'MD5', checksumValue: '00' }],
        },
        {
          SPDXID: 'SPDXRef-f2',
          fileName: '/usr/lib/b.so',
          checksums: [{ algorithm: 'SHA256', checksumValue: 'AB'.repeat(32) }],
        },
      ],
      relationships: [
        { spdxElementId: 'SPDXRef-f2', relationshipType: 'CONTAINED_BY', relatedSpdxElement: 'SPDXRef-b' },
      ],
    });
    expect(inv.packages).toEqual([
      { ref: 'SPDXRef-a', name: 'a', ecosystem: 'generic', files: ['/usr/bin/a'] },
      {
        ref: 'pkg:pypi/b@2',
        name: 'b',
        version: '2',
        purl: 'pkg:pypi/b@2',
        ecosystem: 'pypi',
        files: ['/usr/lib/b.so'],
        digests: { '/usr/lib/b.so': `sha256:${'ab'.repeat(32)}` },
      },
    ]);
  });
});

describe('parseCycloneDx on documents of other generators', () => {
  it('reads nested components, evidence occurrences, location properties and nested file components', () => {
    const inv = parseCycloneDx({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      components: [
        {
          type: 'library',
          name: 'openssl',
          version: '3.0.11',
          purl: 'pkg:deb/debian/openssl@3.0.11',
          evidence: { occurrences: [{ location: '/usr/bin/openssl' }, { location: '/var/lib/dpkg/status' }] },
          properties: [
            { name: 'syft:location:0:path', value: '/usr/lib/ssl/openssl.cnf' },
            { name: 'syft:package:foundBy', value: 'dpkg-db-cataloger' },
          ],
          components: [
            {
              type: 'file',
              name: '/usr/lib/x86_64-linux-gnu/libssl.so.3',
              hashes: [{ alg: 'SHA-256', content: 'cd'.repeat(32) }],
            },
            {
              type: 'library',
              name: 'inner',
              'bom-ref': 'inner-1',
              properties: [{ name: 'x:file', value: 'opt/inner.so' }],
            },
          ],
        },
      ],
    } as unknown);
    const p = byName(inv);
    expect(p.get('openssl')?.files).toEqual([
      '/usr/bin/openssl',
      '/usr/lib/ssl/openssl.cnf',
      '/usr/lib/x86_64-linux-gnu/libssl.so.3',
    ]);
    expect(p.get('openssl')?.digests).toEqual({
      '/usr/lib/x86_64-linux-gnu/libssl.so.3': `sha256:${'cd'.repeat(32)}`,
    });
    expect(p.get('inner')).toMatchObject({ ref: 'inner-1', ecosystem: 'generic', files: ['/opt/inner.so'] });
  });

  it('refuses what it cannot read, saying what it expected', () => {
    expect(() => parseCycloneDx('{')).toThrow(expect.objectContaining({ code: 'SBOM_INVALID' }));
    expect(() => parseCycloneDx({ bomFormat: 'CycloneDX', specVersion: '1.2' })).toThrow(
      /1\.4, 1\.5 and 1\.6/,
    );
    expect(() => parseSpdx({ spdxVersion: 'SPDX-3.0' })).toThrow(
      expect.objectContaining({ code: 'SBOM_INVALID' }),
    );
    expect(() => parseSbom({ hello: 1 })).toThrow(/neither CycloneDX JSON/);
  });

  it('parseSbom tells the formats apart', () => {
    expect(parseSbom(fixture('reach-debian.spdx.json')).source.kind).toBe('spdx');
    expect(parseSbom(Buffer.from(fixture('reach-node-app.cdx.json'))).source.kind).toBe('cyclonedx');
  });
});

describe('malformed SBOMs are refused with the JSON path of the bad member, never read as empty', () => {
  const cdx = (components: unknown) => ({ bomFormat: 'CycloneDX', specVersion: '1.6', components });
  const spdx = (packages: unknown, spdxVersion = 'SPDX-2.3') => ({ spdxVersion, packages });
  const pkg = { type: 'library', name: 'a', purl: 'pkg:npm/a@1' };
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e as { code: string; message: string; hint?: string };
    }
    throw new Error('not refused');
  };

  it.each([
    ['components an object', cdx({ a: 1 }), 'components: expected an array, found an object'],
    ['a null component', cdx([null]), 'components[0]: expected an object, found null'],
    ['a component with no name', cdx([pkg, pkg, pkg, { type: 'library' }]), 'components[3].name: missing'],
    [
      'a nested component with no name',
      cdx([{ ...pkg, components: [{ type: 'file', name: 7 }] }]),
      'components[0].components[0].name: expected a non-empty string, found a number',
    ],
    ['packages a string', spdx('nope'), 'packages: expected an array, found a string'],
    ['a package with no SPDXID', spdx([{ name: 'x' }]), 'packages[0].SPDXID: missing'],
  ])('%s', (_what, doc, message) => {
    const e = refusal(() => parseSbom(doc));
    expect(e.code).toBe('SBOM_INVALID');
    expect(e.message).toBe(message);
    expect(e.hint).toMatch(/fix or regenerate the SBOM/);
  });

  it('refuses an SBOM that lists no package', () => {
    expect(refusal(() => parseSbom(cdx([]))).message).toBe('the CycloneDX SBOM lists no package');
    expect(refusal(() => parseSbom(spdx([]))).message).toBe('the SPDX SBOM lists no package');
  });

  it('reads a document that starts with a UTF-8 byte order mark', () => {
    const text = `\uFEFF${JSON.stringify(cdx([pkg]))}`;
    expect(parseSbom(text).packages.map((p) => p.name)).toEqual(['a']);
    expect(parseSbom(Buffer.from(text, 'utf8')).packages.map((p) => p.name)).toEqual(['a']);
  });

  it('reads SPDX 2.2 and 2.3, refuses others and says which it reads', () => {
    const p = [{ SPDXID: 'SPDXRef-a', name: 'a' }];
    expect(parseSpdx(spdx(p, 'SPDX-2.2')).source).toMatchObject({ spdxVersion: 'SPDX-2.2' });
    expect(parseSpdx(spdx(p, 'SPDX-2.3')).source).toMatchObject({ spdxVersion: 'SPDX-2.3' });
    expect(refusal(() => parseSpdx(spdx(p, 'SPDX-2.1'))).message).toMatch(
      /not an SPDX 2\.2 or 2\.3 JSON document .*found "SPDX-2\.1"/,
    );
  });

  it('reads deeply nested components without exhausting the stack, and refuses past the documented depth', () => {
    const nest = (depth: number) => {
      let c: Record<string, unknown> = { type: 'library', name: `p${depth}` };
      for (let i = depth - 1; i >= 1; i--) c = { type: 'library', name: `p${i}`, components: [c] };
      return cdx([c]);
    };
    expect(parseCycloneDx(nest(MAX_COMPONENT_DEPTH)).packages).toHaveLength(MAX_COMPONENT_DEPTH);
    const e = refusal(() => parseCycloneDx(nest(5000)));
    expect(e.code).toBe('SBOM_INVALID');
    expect(e.message).toMatch(/nested deeper than 256 levels/);
  });
});
