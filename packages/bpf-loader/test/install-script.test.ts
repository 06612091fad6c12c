import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { addonPath } from './helpers.js';

// scripts/install.cjs is npm's "install" step of the published package. It
// runs here in a scratch package directory laid out like the tarball, with a
// PATH that holds only node: no compiler, make or python, as on a server.
const pkgRoot = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = join(pkgRoot, '..', '..');
const nodeGyp = join(repoRoot, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const prebuild = join('prebuilds', `${process.platform}-${process.arch}`, 'stella_bpf.napi.glibc.node');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A package directory with the install script, and a bin dir holding only node. */
function scratchPackage(withSources: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'stella-install-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'scripts'));
  mkdirSync(join(dir, 'bin'));
  symlinkSync(process.execPath, join(dir, 'bin', 'node'));
  for (const f of ['install.cjs', 'prebuild-name.cjs', 'libbpf-flags.cjs']) {
    copyFileSync(join(pkgRoot, 'scripts', f), join(dir, 'scripts', f));
  }
  if (withSources) copyFileSync(join(pkgRoot, 'binding.gyp'), join(dir, 'binding.gyp'));
  mkdirSync(join(dir, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
  return dir;
}

function install(dir: string) {
  return spawnSync(process.execPath, ['scripts/install.cjs'], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: join(dir, 'bin'), HOME: dir, npm_config_node_gyp: nodeGyp },
    timeout: 60_000,
  });
}

describe('install script', () => {
  it('keeps a prebuild that loads and builds nothing', () => {
    const dir = scratchPackage(true);
    copyFileSync(addonPath, join(dir, prebuild));
    const r = install(dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('without a usable prebuild and without a compiler, fails saying why and what to install', () => {
    const dir = scratchPackage(true);
    writeFileSync(join(dir, prebuild), 'not a shared object');
    const r = install(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /no prebuilt addon loads on linux-x64 \(glibc\), Node v\d+.*; building from source/,
    );
    expect(r.stderr).toMatch(
      /prebuild did not load: .*stella_bpf\.napi\.glibc\.node: .*(invalid ELF|too short)/,
    );
    expect(r.stderr).toMatch(
      /cannot install: no prebuilt addon loads on linux-x64 \(glibc\).*build from source failed/,
    );
    expect(r.stderr).toMatch(
      /install a C\+\+ compiler, make, python3, .* then run `npm rebuild @stellaops\/bpf-loader`/,
    );
  });

  it('without sources to build from, names the platform and the failed prebuild', () => {
    const dir = scratchPackage(false);
    writeFileSync(join(dir, prebuild), 'not a shared object');
    const r = install(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot install: no usable addon for linux-x64 \(glibc\)/);
    expect(r.stderr).toMatch(/prebuild did not load: /);
  });
});
