#!/usr/bin/env node
// Compiler and linker flags for libbpf, printed for binding.gyp.
//
//   node scripts/libbpf-flags.cjs include   -> the include directory
//   node scripts/libbpf-flags.cjs libs      -> the link line
//
// Prefers the static PIC archive built by scripts/build-libbpf.sh (so the
// addon does not need libbpf.so.1 at run time; libelf and zlib stay dynamic
// because Debian's libelf.a and libz.a are not PIC either). Without it (a
// build from source outside this repository) it falls back to the system's
// libbpf through pkg-config, linked dynamically.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { execFileSync } = require('node:child_process');

const vendored = join(__dirname, '..', '.deps', 'libbpf');
const archive = join(vendored, 'lib', 'libbpf.a');
const what = process.argv[2];

function pkgConfig(flag) {
  try {
    return execFileSync('pkg-config', [flag, 'libbpf'], { encoding: 'utf8' }).trim();
  } catch {
    process.stderr.write(
      'libbpf not found: run packages/bpf-loader/scripts/build-libbpf.sh in the repository, ' +
        'or install libbpf-dev (Debian/Ubuntu) / libbpf-devel (Fedora/RHEL) with pkg-config\n',
    );
    process.exit(1);
  }
}

if (what === 'include') {
  // gyp needs one word here, so the system include dir stands in when
  // pkg-config names none.
  process.stdout.write(
    existsSync(archive) ? join(vendored, 'include') : pkgConfig('--variable=includedir') || '/usr/include',
  );
} else if (what === 'libs') {
  process.stdout.write(existsSync(archive) ? `${archive} -lelf -lz` : pkgConfig('--libs'));
} else {
  process.stderr.write(`usage: libbpf-flags.cjs include|libs (got ${what})\n`);
  process.exit(2);
}
