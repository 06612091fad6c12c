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
# Tests stretch their own child-process deadlines by this (tools/testing/src/time.ts).
export STELLA_TIME_SCALE=20
# The summary reporter prints each test as it starts (with the uptime): a console that ends in a
# hang or a kernel lockup then says which tests were running.
export STELLA_TEST_PROGRESS=1
# Tests gate on this: no container runtime runs in the VM.
export STELLA_KERNEL_VM
STELLA_KERNEL_VM=$(uname -r)
# Skips (containers, missing tools) are allowed here; failures are not.
unset STELLA_REQUIRE_BPF
uname -r >"$out/uname"
cd "$repo" || exit 1
# vitest's module cache: the host's copy (read through 9p) changes under the VM
# when tests run on the host meanwhile; the VM gets an empty one of its own.
mkdir -p node_modules/.vitest-cache && mount -t tmpfs tmpfs node_modules/.vitest-cache
# shellcheck disable=SC2086 # tests is a list of paths
# TCG runs 10-30x slower than the host: the suite's 30 s/60 s limits become 10/20 min.
# The BTF layout checks compile C and read the object: build checks, not kernel tests.
node node_modules/vitest/vitest.mjs run --reporter=default --reporter=./tools/testing/src/summary-reporter.ts \
  --testTimeout=600000 --hookTimeout=1200000 --exclude '**/*-layout.test.ts' --exclude '**/node_modules/**' $tests 2>&1 |
  tee "$out/vitest.log"
echo "${PIPESTATUS[0]}" >"$out/rc"
# Which hook and fallback each probe takes on this kernel, for the matrix summary.
node node_modules/tsx/dist/cli.mjs tools/kernel-vm/status.ts >"$out/hooks.txt" 2>&1
