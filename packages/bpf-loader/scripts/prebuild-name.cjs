// Where the addon is looked for, shared by the install script and
// scripts/prebuild.cjs (src/binding.ts follows the same convention; the
// packed-install test checks that they agree).
//
// prebuildify's layout: prebuilds/<platform>-<arch>/<name>.napi.<libc>.node,
// tagged with the ABI (Node-API, so one file serves every Node version) and
// the C library (a glibc build does not load on musl).
'use strict';
const { join } = require('node:path');

const ADDON = 'stella_bpf';

/** 'glibc' or 'musl' on Linux, undefined elsewhere. */
function libc() {
  if (process.platform !== 'linux') return undefined;
  // The report's network section can take long to gather; it is not needed.
  const excludeNetwork = process.report.excludeNetwork;
  process.report.excludeNetwork = true;
  try {
    return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
  } finally {
    process.report.excludeNetwork = excludeNetwork;
  }
}

/** The prebuild file for this machine (or for the given tags). */
function prebuildPath(root, platform = process.platform, arch = process.arch, lib = libc()) {
  const tags = ['napi', lib].filter(Boolean).join('.');
  return join(root, 'prebuilds', `${platform}-${arch}`, `${ADDON}.${tags}.node`);
}

/** The order the addon is looked for: prebuild, then build/Release. */
function candidates(root) {
  return [prebuildPath(root), join(root, 'build', 'Release', `${ADDON}.node`)];
}

module.exports = { ADDON, libc, prebuildPath, candidates };
