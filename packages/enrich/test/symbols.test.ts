import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnrichError, parseMaps, readElf, SymbolResolver } from '@stellaops/enrich';
import { commandUnavailableReason, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConnectPrograms, type ConnectPrograms } from './fixtures/build.js';

const reason =
  commandUnavailableReason('cc') ??
  commandUnavailableReason('strip') ??
  (process.getuid?.() !== 0 ? 'needs root for /proc/<pid>/map_files' : undefined);

/** Start a program, collect its `tag 0x…` lines until `fd` is printed. */
async function startProgram(
  path: string,
  port: number,
): Promise<{ child: ChildProcessWithoutNullStreams; lines: Map<string, string> }> {
  const child = spawn(path, [String(port)]);
  const lines = new Map<string, string>();
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const l of buf.split('\n').slice(0, -1)) {
        const [k, v] = l.split(' ');
        if (k && v) lines.set(k, v);
      }
      if (lines.has('fd')) resolve();
    });
  });
  return { child, lines };
}

describe.runIf(gate('ELF reader and symbolizer (C test program)', reason))(
  'ELF symbolization of a real process',
  () => {
    let progs: ConnectPrograms;
    let server: Server;
    let port: number;
    const children: ChildProcessWithoutNullStreams[] = [];

    beforeAll(async () => {
      progs = buildConnectPrograms();
      server = createServer((s) => s.destroy());
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => {
      for (const c of children) c.kill('SIGKILL');
      server?.close();
      if (progs) rmSync(progs.dir, { recursive: true, force: true });
      for (const f of [`stella-not-elf-${process.pid}`, `stella-cut-elf-${process.pid}`])
        rmSync(join(tmpdir(), f), { force: true });
    });

    it('reads .symtab, segments and the GNU build id (checked against readelf)', () => {
      const elf = readElf(progs.pie);
      expect(elf.symbolSource).toBe('symtab');
      expect(elf.type).toBe(3); // ET_DYN: PIE
      expect(elf.symbols.map((s) => s.name)).toContain('stella_named_connect');
      const oracle = /Build ID: ([0-9a-f]+)/.exec(
        execFileSync('readelf', ['-n', progs.pie], { encoding: 'utf8' }),
      )?.[1];
      expect(oracle).toMatch(/^[0-9a-f]{40}$/);
      expect(elf.buildId).toBe(oracle);
      expect(elf.segments.some((s) => (s.flags & 1) === 1)).toBe(true);
    });

    it('falls back to .dynsym for a stripped binary', () => {
      const elf = readElf(progs.stripped);
      expect(elf.symbolSource).toBe('dynsym');
      expect(elf.symbols.map((s) => s.name)).not.toContain('stella_named_connect');
      expect(elf.buildId).toBe(readElf(progs.pie).buildId);
    });

    it('names the function that called connect, and libc for connect itself', async () => {
      const { child, lines } = await startProgram(progs.pie, port);
      children.push(child);
      expect(Number(lines.get('fd'))).toBeGreaterThanOrEqual(0); // the connect really happened
      const caller = BigInt(lines.get('caller')!);
      const libc = BigInt(lines.get('connect')!);
      const r = new SymbolResolver();
      const [f0, f1, f2] = r.resolve(child.pid!, [caller, libc, 0x10n]);
      expect(f0).toMatchObject({
        module: progs.pie,
        symbol: 'stella_named_connect',
        offsetKind: 'vaddr',
        buildId: readElf(progs.pie).buildId,
      });
      expect(f0!.symbolOffset).toBeGreaterThan(0);
      expect(f1!.module).toMatch(/libc\.so/);
      expect(['connect', '__connect', '__libc_connect']).toContain(f1!.symbol);
      expect(f1!.symbolOffset).toBe(0);
      expect(f2).toEqual({ address: 0x10n }); // unmapped: address only
      // Second call: the parsed files come from the (device, inode) cache.
      r.resolve(child.pid!, [caller]);
      expect(r.stats.moduleHits).toBeGreaterThan(0);
    });

    it('keeps module and offset when no symbol covers a frame (stripped binary)', async () => {
      const { child, lines } = await startProgram(progs.stripped, port);
      children.push(child);
      const [f] = new SymbolResolver().resolve(child.pid!, [BigInt(lines.get('caller')!)]);
      expect(f!.module).toBe(progs.stripped);
      expect(f!.symbol).toBeUndefined();
      expect(f!.offset).toBeGreaterThan(0n);
      expect(f!.buildId).toMatch(/^[0-9a-f]{40}$/);
    });

    it('marks only words in executable code of a file as executable, with their file offset', async () => {
      const { child, lines } = await startProgram(progs.pie, port);
      children.push(child);
      const maps = parseMaps(readFileSync(`/proc/${child.pid}/maps`, 'utf8'));
      const data = maps.find((m) => m.path === progs.pie && m.perms.startsWith('rw'));
      const heap = maps.find((m) => m.path === '[heap]' || (m.inode === 0n && m.perms.startsWith('rw')));
      expect(data).toBeDefined();
      expect(heap).toBeDefined();
      const caller = BigInt(lines.get('caller')!);
      const [code, dataWord, heapWord] = new SymbolResolver().resolve(child.pid!, [
        caller,
        data!.start + 8n,
        heap!.start + 8n,
      ]);
      const text = maps.find((m) => m.path === progs.pie && caller >= m.start && caller < m.end)!;
      // `caller` is a return address (__builtin_return_address): a call ends right before it.
      expect(code).toMatchObject({
        executable: true,
        afterCall: true,
        fileOffset: caller - text.start + text.offset,
      });
      const elf = readElf(progs.pie);
      const off = Number(code!.fileOffset);
      expect(
        elf.segments.some((s) => (s.flags & 1) === 1 && off >= s.offset && off < s.offset + s.filesz),
      ).toBe(true);
      // A data word of the program file and a heap word: mapped, never code.
      expect(dataWord).toMatchObject({ module: progs.pie, executable: false });
      expect(heapWord?.executable).toBe(false);
    });

    it('bounds the depth it symbolizes', async () => {
      const { child, lines } = await startProgram(progs.pie, port);
      children.push(child);
      const a = BigInt(lines.get('caller')!);
      expect(new SymbolResolver({ maxDepth: 2 }).resolve(child.pid!, [a, a, a, a])).toHaveLength(2);
    });

    it('rejects a non-ELF and a truncated ELF with a typed error naming the file', () => {
      const text = join(tmpdir(), `stella-not-elf-${process.pid}`);
      writeFileSync(
        text,
        'just text, long enough to hold a header............................................',
      );
      expect(() => readElf(text)).toThrow(
        expect.objectContaining({ code: 'ELF_INVALID', message: expect.stringContaining(text) }),
      );
      const cut = join(tmpdir(), `stella-cut-elf-${process.pid}`);
      copyFileSync(progs.pie, cut);
      execFileSync('truncate', ['-s', '4096', cut]);
      const err = (() => {
        try {
          readElf(cut);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(EnrichError);
      expect((err as EnrichError).code).toBe('ELF_INVALID');
    });

    it('reports a process that is gone as PROC_UNAVAILABLE', () => {
      expect(() => new SymbolResolver().resolve(2 ** 22 + 7, [1n])).toThrow(
        expect.objectContaining({ code: 'PROC_UNAVAILABLE' }),
      );
    });
  },
);
