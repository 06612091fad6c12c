#!/usr/bin/env node
// prepack: copies build/Release/stella_bpf.node to its prebuild place so the
// tarball carries it; postpack (`--clean`) removes it again, so the
// repository's own tests keep loading build/Release.
//
// Refuses an addon that needs libbpf.so.1 (built against the system libbpf
// because scripts/build-libbpf.sh did not run): the prebuild must run on
// hosts without libbpf.
'use strict';
const { copyFileSync, existsSync, mkdirSync, rmSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { execFileSync } = require('node:child_process');
const { prebuildPath } = require('./prebuild-name.cjs');

const root = join(__dirname, '..');
const built = join(root, 'build', 'Release', 'stella_bpf.node');
const fail = (msg) => {
  process.stderr.write(`@stellaops/bpf-loader prepack: ${msg}\n`);
  process.exit(1);
};

if (process.argv[2] === '--clean') {
  rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`prebuilds are made on linux-x64, this is ${process.platform}-${process.arch}`);
}
if (!existsSync(built)) fail(`${built} is missing: run npm run build:native -w @stellaops/bpf-loader`);
let needed;
try {
  needed = execFileSync('readelf', ['-d', built], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('(NEEDED)'))
    .map((l) => l.replace(/.*\[(.*)\].*/, '$1'));
} catch (e) {
  fail(`readelf (binutils) is needed to check the addon's dependencies: ${e.message}`);
}
// glibc itself (libc, libm, the dynamic loader), the C++ runtime that node
// itself links, libelf and zlib: libbpf must not be among them.
const allowed = /^(libc|libm|libstdc\+\+|libgcc_s|libelf|libz|ld-linux-x86-64)\.so\./;
const extra = needed.filter((n) => !allowed.test(n));
if (extra.length > 0) {
  fail(
    `${built} needs ${extra.join(', ')} at run time; a prebuild may need only ${needed.filter((n) => allowed.test(n)).join(', ')}. ` +
      'Build libbpf statically first: bash scripts/build-libbpf.sh && npx node-gyp rebuild (npm run build:native does both)',
  );
}
// glibc only: the build host is Debian.
const dest = prebuildPath(root, 'linux', 'x64', 'glibc');
mkdirSync(dirname(dest), { recursive: true });
copyFileSync(built, dest);
