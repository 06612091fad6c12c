#!/bin/bash
# Runs inside the kernel VM, in the host's root (read-only, under a tmpfs
# overlay): the kernel test suites with the project's Node. Results go to
# /kvm-out (a writable 9p share of the host's .cache/kernel-vm/<version>/out).
set -u
repo=$1
tests=${2//,/ }
out=/kvm-out
export PATH="$repo/.toolchain/node/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export HOME=/tmp TMPDIR=/tmp CI=1 NO_COLOR=1
# Tests gate on this: no container runtime runs in the VM.
export STELLA_KERNEL_VM
STELLA_KERNEL_VM=$(uname -r)
# Skips (containers, missing tools) are allowed here; failures are not.
unset STELLA_REQUIRE_BPF
uname -r >"$out/uname"
cd "$repo" || exit 1
# shellcheck disable=SC2086 # tests is a list of paths
node node_modules/vitest/vitest.mjs run --reporter=default --reporter=./tools/testing/src/summary-reporter.ts $tests 2>&1 |
  tee "$out/vitest.log"
echo "${PIPESTATUS[0]}" >"$out/rc"
