#!/usr/bin/env node
// npm "install" script of @stellaops/bpf-loader.
//
// Keeps a prebuilt addon when one fits this machine and loads, and builds
// from source (node-gyp) only when none does, the way node-gyp-build
// packages behave. Without this script npm would run `node-gyp rebuild` for
// every install because the package ships binding.gyp, replacing the
// prebuild and failing on hosts without a compiler.
//
//   npm install --build-from-source   (or STELLA_BPF_BUILD_FROM_SOURCE=1)
//   forces the source build.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');
const { candidates, libc } = require('./prebuild-name.cjs');

const root = join(__dirname, '..');
const say = (msg) => process.stderr.write(`@stellaops/bpf-loader: ${msg}\n`);

/** Loads the addon in a child process (a crash there must not fail us). */
function tryLoad(file) {
  const r = spawnSync(process.execPath, ['-e', 'process.dlopen({ exports: {} }, process.argv[1])', file], {
    encoding: 'utf8',
  });
  if (r.status === 0) return undefined;
  const line = (r.stderr || '').split('\n').find((l) => /Error|cannot|undefined symbol/.test(l));
  return (line || `exit ${r.status}`).trim();
}

const forced = /^(1|true)$/.test(
  process.env.npm_config_build_from_source || process.env.STELLA_BPF_BUILD_FROM_SOURCE || '',
);
const tried = [];
if (!forced) {
  for (const file of candidates(root)) {
    if (!existsSync(file)) continue;
    const err = tryLoad(file);
    if (err === undefined) process.exit(0);
    tried.push(`${file}: ${err}`);
  }
}

const here = `${process.platform}-${process.arch}${libc() ? ` (${libc()})` : ''}, Node ${process.version}`;
if (!existsSync(join(root, 'binding.gyp'))) {
  say(`cannot install: no usable addon for ${here} and no sources to build one`);
  for (const t of tried) say(`  prebuild did not load: ${t}`);
  process.exit(1);
}
say(forced ? 'building from source (requested)' : `no prebuilt addon loads on ${here}; building from source`);
for (const t of tried) say(`  prebuild did not load: ${t}`);
const gyp = process.env.npm_config_node_gyp;
const build = gyp
  ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit' })
  : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit', shell: false });
if (build.status === 0) process.exit(0);

say(
  `cannot install: no prebuilt addon loads on ${here}, and the build from source failed${build.error ? ` (${build.error.message})` : ''}.`,
);
for (const t of tried) say(`  ${t}`);
if (tried.some((t) => /libelf\.so|libz\.so/.test(t))) {
  say(
    'the prebuild needs libelf.so.1 and libz.so.1: install libelf1 and zlib1g (Debian/Ubuntu) or elfutils-libelf and zlib (Fedora/RHEL), then run `npm rebuild @stellaops/bpf-loader`.',
  );
} else {
  say(
    'prebuilds ship for linux-x64 with glibc. To build from source install a C++ compiler, make, python3, pkg-config, libbpf-dev, libelf-dev and zlib1g-dev, then run `npm rebuild @stellaops/bpf-loader`.',
  );
}
process.exit(1);
