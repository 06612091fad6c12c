import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, buildRootfs, ContentStore, put, sha256, tarOf } from '../test/support/fixtures.js';
import { inventoryFromImage, inventoryFromRootfs } from './image.js';
import type { Inventory, InventoryPackage } from './types.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const byName = (inv: Inventory) => new Map<string, InventoryPackage>(inv.packages.map((p) => [p.name, p]));

/** What every reader of the fixture rootfs must find, wherever it reads it from. */
function expectFixturePackages(inv: Inventory): void {
  const p = byName(inv);
  expect([...p.keys()].sort()).toEqual(
    [
      '@types/node',
      'coreutils',
      'dash',
      'debug',
      'express',
      'left-pad',
      'libc6',
      'no-list',
      'six',
      'tzdata',
      'zlib1g',
    ].sort(),
  );
  // dpkg: directories and files missing from the image (path-excluded docs) are dropped; old /bin paths kept as listed.
  expect(p.get('dash')).toMatchObject({
    ecosystem: 'deb',
    version: '0.5.12-2',
    purl: 'pkg:deb/debian/dash@0.5.12-2?arch=amd64',
    files: ['/bin/dash', '/usr/bin/sh'],
  });
  expect(p.get('dash')?.digests).toEqual({ '/bin/dash': `sha256:${sha256(BIN.dash)}` });
  // Multi-Arch: same packages have their list as <name>:<arch>.list.
  expect(p.get('libc6')?.files).toEqual(['/lib/x86_64-linux-gnu/libc.so.6']);
  expect(p.get('libc6')?.digests).toEqual({
    '/lib/x86_64-linux-gnu/libc.so.6': `sha256:${sha256(BIN.libc)}`,
  });
  expect(p.get('zlib1g')?.files).toEqual([
    '/usr/lib/x86_64-linux-gnu/libz.so.1',
    '/usr/lib/x86_64-linux-gnu/libz.so.1.2.13',
  ]);
  expect(p.get('no-list')?.files).toEqual([]);
  expect(p.has('removed-pkg')).toBe(false);
  // npm: files of the package directory, never those of nested node_modules.
  expect(p.get('express')).toMatchObject({
    ecosystem: 'npm',
    purl: 'pkg:npm/express@4.19.2',
    files: ['/app/node_modules/express/index.js', '/app/node_modules/express/package.json'],
  });
  expect(p.get('debug')?.files).toEqual([
    '/app/node_modules/express/node_modules/debug/package.json',
    '/app/node_modules/express/node_modules/debug/src/index.js',
  ]);
  expect(p.get('@types/node')?.purl).toBe('pkg:npm/%40types/node@20.0.0');
  // Python: RECORD paths relative to site-packages, its sha256 kept.
  expect(p.get('six')).toMatchObject({
    ecosystem: 'pypi',
    version: '1.16.0',
    purl: 'pkg:pypi/six@1.16.0',
  });
  expect(p.get('six')?.files).toContain('/usr/lib/python3/dist-packages/six.py');
  expect(p.get('six')?.digests?.['/usr/lib/python3/dist-packages/six.py']).toBe(`sha256:${sha256(BIN.six)}`);
  // The image's own symlinks, for matching.
  expect(inv.symlinks).toMatchObject({ '/bin': 'usr/bin', '/lib': 'usr/lib', '/usr/bin/sh': 'dash' });
}

describe('inventoryFromRootfs', () => {
  it('reads dpkg, npm and Python databases and the symlinks of an unpacked root', async () => {
    const root = buildRootfs();
    dirs.push(root);
    const inv = await inventoryFromRootfs(root);
    expect(inv.source).toEqual({ kind: 'rootfs', dir: root });
    expectFixturePackages(inv);
  });

  it('reads apk databases (F: directory, R: files)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'reach-apk-'));
    dirs.push(root);
    put(root, 'etc/os-release', 'ID=alpine\n');
    put(root, 'lib/ld-musl-x86_64.so.1', 'ELF musl');
    put(root, 'bin/busybox', 'ELF busybox', true);
    put(
      root,
      'lib/apk/db/installed',
      'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nF:lib\nR:ld-musl-x86_64.so.1\nZ:Q1xyz=\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nF:bin\nR:busybox\n\n',
    );
    const p = byName(await inventoryFromRootfs(root));
    expect(p.get('musl')).toMatchObject({
      ecosystem: 'apk',
      purl: 'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64',
      files: ['/lib/ld-musl-x86_64.so.1'],
    });
    expect(p.get('busybox')?.files).toEqual(['/bin/busybox']);
  });

  it('says what is wrong with a path that is not a directory', async () => {
    await expect(inventoryFromRootfs('/nonexistent/rootfs')).rejects.toMatchObject({ code: 'IO_ERROR' });
    const f = join(mkdtempSync(join(tmpdir(), 'reach-f-')), 'file');
    dirs.push(f.slice(0, f.lastIndexOf('/')));
    writeFileSync(f, 'x');
    await expect(inventoryFromRootfs(f)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('inventoryFromImage', () => {
  const root = buildRootfs();
  dirs.push(root);
  const store = new ContentStore();
  dirs.push(store.root);
  // Layer 2 deletes left-pad (whiteout), empties /app/node_modules/express/node_modules (opaque) and adds a file there.
  const upper = mkdtempSync(join(tmpdir(), 'reach-upper-'));
  dirs.push(upper);
  put(upper, 'app/node_modules/.wh.left-pad', '');
  put(upper, 'app/node_modules/express/node_modules/.wh..wh..opq', '');
  put(upper, 'app/node_modules/express/node_modules/ms/package.json', '{"name":"ms","version":"2.0.0"}');
  put(upper, 'app/node_modules/express/node_modules/ms/index.js', 'x');
  const lower = tarOf(root, 'pax', true);
  const layer2 = tarOf(upper, 'gnu', false); // an uncompressed layer
  const manifest = store.image([lower, layer2]);

  it('applies the layers in order with whiteouts, then reads the package databases', async () => {
    const inv = await inventoryFromImage({ manifestDigest: manifest, contentStore: store.root });
    expect(inv.source).toMatchObject({
      kind: 'image',
      manifestDigest: manifest,
      layers: [expect.any(String), expect.any(String)],
    });
    const p = byName(inv);
    expect(p.has('left-pad')).toBe(false);
    expect(p.has('debug')).toBe(false);
    expect(p.get('ms')?.files).toEqual([
      '/app/node_modules/express/node_modules/ms/index.js',
      '/app/node_modules/express/node_modules/ms/package.json',
    ]);
    expect(p.get('dash')?.files).toEqual(['/bin/dash', '/usr/bin/sh']);
    expect(p.get('dash')?.digests).toEqual({ '/bin/dash': `sha256:${sha256(BIN.dash)}` });
    expect(inv.symlinks?.['/bin']).toBe('usr/bin');
  });

  it('reads the same packages as the rootfs reader for a one-layer image', async () => {
    const one = store.image([lower]);
    expectFixturePackages(await inventoryFromImage({ manifestDigest: one, contentStore: store.root }));
  });

  it('reads zstd-compressed layers', async () => {
    const zstd = (await import('node:zlib')) as unknown as { zstdCompressSync?: (b: Buffer) => Buffer };
    if (!zstd.zstdCompressSync) throw new Error('this Node has no zstd: the package needs Node >= 22.15');
    const z = store.image([zstd.zstdCompressSync(tarOf(root, 'pax', false))]);
    expect(
      byName(await inventoryFromImage({ manifestDigest: z, contentStore: store.root })).has('dash'),
    ).toBe(true);
  });

  it('picks the platform manifest of an image index', async () => {
    const index = store.put(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { digest: `sha256:${'9'.repeat(64)}`, platform: { os: 'linux', architecture: 's390x' } },
          { digest: manifest, platform: { os: 'linux', architecture: 'amd64' } },
        ],
      }),
    );
    const inv = await inventoryFromImage({
      manifestDigest: index,
      contentStore: store.root,
      platform: { os: 'linux', architecture: 'amd64' },
    });
    expect(byName(inv).has('ms')).toBe(true);
    await expect(
      inventoryFromImage({
        manifestDigest: index,
        contentStore: store.root,
        platform: { os: 'linux', architecture: 'arm64' },
      }),
    ).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      message: expect.stringContaining('linux/s390x, linux/amd64'),
    });
  });

  it('names a missing blob, a corrupt blob and a bad digest', async () => {
    await expect(
      inventoryFromImage({ manifestDigest: `sha256:${'3'.repeat(64)}`, contentStore: store.root }),
    ).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND', hint: expect.stringContaining('pull') });
    await expect(
      inventoryFromImage({ manifestDigest: 'sha256:xyz', contentStore: store.root }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    const s2 = new ContentStore();
    dirs.push(s2.root);
    const m2 = s2.image([layer2]);
    const layerDigest = `sha256:${sha256(layer2)}`;
    writeFileSync(
      join(s2.root, 'blobs', 'sha256', layerDigest.slice(7)),
      Buffer.concat([layer2, Buffer.from('x')]),
    );
    await expect(inventoryFromImage({ manifestDigest: m2, contentStore: s2.root })).rejects.toMatchObject({
      code: 'IMAGE_INVALID',
      message: expect.stringContaining('corrupt'),
    });
  });
});
