import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { link, put, tarOf } from '../test/support/fixtures.js';
import { ReachabilityError } from './errors.js';
import { readTar, type TarEntry } from './tar.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const LONG_DIR = `deep/${'d'.repeat(90)}/${'e'.repeat(90)}`;
const LONG_NAME = `${LONG_DIR}/${'f'.repeat(120)}.txt`; // > 255 bytes: needs pax or GNU long names

function tree(): string {
  const d = mkdtempSync(join(tmpdir(), 'reach-tar-'));
  dirs.push(d);
  put(d, 'usr/bin/tool', 'tool body\n', true);
  put(d, LONG_NAME, 'long body\n');
  put(d, 'empty', '');
  put(d, 'big.bin', Buffer.alloc(3000, 7));
  link(d, 'usr/bin/alias', 'tool');
  link(d, 'longlink', `/${LONG_NAME}`);
  mkdirSync(join(d, 'emptydir'));
  return d;
}

interface Seen extends TarEntry {
  body?: string;
}

async function read(tar: Buffer, chunkSize = tar.length): Promise<Seen[]> {
  const out: Seen[] = [];
  async function* chunks() {
    for (let i = 0; i < tar.length; i += chunkSize) yield tar.subarray(i, i + chunkSize);
  }
  await readTar(
    chunks(),
    (e) => {
      const s: Seen = { ...e };
      out.push(s);
      if (e.type !== 'file') return undefined;
      const parts: Buffer[] = [];
      return {
        write: (c) => parts.push(Buffer.from(c)),
        end: () => (s.body = Buffer.concat(parts).toString('latin1')),
      };
    },
    'test.tar',
  );
  return out;
}

const norm = (p: string) => p.replace(/^\.\//, '').replace(/\/$/, '');

describe('readTar', () => {
  const d = tree();
  for (const format of ['pax', 'gnu'] as const) {
    it(`reads what GNU tar --format=${format} wrote: long names, links, bodies, in any chunking`, async () => {
      const tar = tarOf(d, format, false);
      for (const size of [tar.length, 512, 7]) {
        const entries = await read(tar, size);
        const by = new Map(entries.map((e) => [norm(e.path), e]));
        expect(by.get('usr/bin/tool')).toMatchObject({ type: 'file', body: 'tool body\n', mode: 0o755 });
        expect(by.get(LONG_NAME)).toMatchObject({ type: 'file', body: 'long body\n' });
        expect(by.get('empty')).toMatchObject({ type: 'file', body: '' });
        expect(by.get('big.bin')?.body).toBe(Buffer.alloc(3000, 7).toString('latin1'));
        expect(by.get('usr/bin/alias')).toMatchObject({ type: 'symlink', linkpath: 'tool' });
        expect(by.get('longlink')).toMatchObject({ type: 'symlink', linkpath: `/${LONG_NAME}` });
        expect(by.get('emptydir')?.type).toBe('directory');
        // Meta members (pax headers, GNU long names) are applied, never visited.
        expect(entries.some((e) => e.type === 'other')).toBe(false);
      }
    });
  }

  it('reads ustar names split into prefix and name', async () => {
    const u = mkdtempSync(join(tmpdir(), 'reach-ustar-'));
    dirs.push(u);
    const path = `${'p'.repeat(80)}/${'q'.repeat(80)}/file.txt`; // > 100 bytes, fits prefix + name
    put(u, path, 'x');
    const entries = await read(tarOf(u, 'ustar', false));
    expect(entries.map((e) => norm(e.path))).toContain(path);
  });

  it('reads hard links as links to the first member', async () => {
    const h = mkdtempSync(join(tmpdir(), 'reach-hard-'));
    dirs.push(h);
    writeFileSync(join(h, 'a'), 'same');
    const { linkSync } = await import('node:fs');
    linkSync(join(h, 'a'), join(h, 'b'));
    const entries = await read(tarOf(h, 'pax', false));
    const b = entries.find((e) => norm(e.path) === 'b');
    expect(b).toMatchObject({ type: 'hardlink' });
    expect(norm(b?.linkpath ?? '')).toBe('a');
  });

  it('refuses a corrupt header and a truncated stream with TAR_INVALID', async () => {
    const tar = tarOf(d, 'pax', false);
    const bad = Buffer.from(tar);
    bad[10] = (bad[10] as number) ^ 0xff; // inside the first header's name: checksum no longer matches
    await expect(read(bad)).rejects.toMatchObject({ code: 'TAR_INVALID', name: 'ReachabilityError' });
    const cut = tar.subarray(0, 512 + 100); // first header, then part of its body
    const err = await read(cut).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReachabilityError);
    expect((err as ReachabilityError).message).toMatch(/truncated/);
  });
});
