#!/usr/bin/env bash
# What a user of the published packages gets, tested end to end:
#
#   1. packs the seven @stellaops packages (npm pack, with their prepack
#      steps: the addon's prebuild goes into the bpf-loader tarball);
#   2. creates a fresh project outside the repository and installs the
#      tarballs there with npm, on a PATH holding only node, npm and core
#      utilities (no cc, gcc, g++, make, python3), and with the system's
#      libbpf.so.1 hidden (a private mount namespace binds /dev/null over it):
#      the install must keep the shipped prebuild, and the addon must load
#      without libbpf installed;
#   3. runs collect() there from an ES module (.mjs) and from CommonJS (.cjs),
#      each against a real file open by a child process, and requires the
#      file_open record for that file; runs the installed `stella` binary;
#   4. installs the tarballs with `npm install -g` into a temporary prefix and
#      runs that `stella`: keygen, start for 2 s, verify-chain (the server
#      install of docs/deployment-guide.md, as the systemd unit runs it).
#
# Our packages come only from the local tarballs; their third-party
# dependencies come from the npm cache or the registry. Needs root (BPF,
# mount namespace), a built tree (npm run build, npm run build:native).
#
#   bash scripts/packed-install-test.sh            # prints "packed-install: ok" last
#   STELLA_KEEP_WORK=1 bash scripts/packed-install-test.sh   # keep the temp dir
set -euo pipefail

PACKAGES=(ndjson bpf-loader probes enrich evidence-chain reachability signals cli)
# Bounds (seconds): the whole install, and each collect() run.
INSTALL_TIMEOUT=${STELLA_PACKED_INSTALL_TIMEOUT:-300}
RUN_TIMEOUT=60

log() { printf '[packed-install +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() {
  log "FAIL: $*"
  exit 1
}

# --- inside the private mount namespace --------------------------------------
if [ "${1:-}" = "--inner" ]; then
  work=$2
  app="$work/app"
  # Hide the system libbpf: the prebuild must not need it.
  mount --make-rprivate /
  for lib in $(ldconfig -p | awk '/libbpf\.so/ {print $NF}' | xargs -r readlink -f | sort -u); do
    mount --bind /dev/null "$lib"
    log "hid $lib"
  done
  clean_env=(env -i "HOME=$HOME" "PATH=$work/bin" "TMPDIR=${TMPDIR:-/tmp}" "npm_config_update_notifier=false")
  # Network settings pass through (the registry serves the third-party deps).
  for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy \
    npm_config_registry npm_config_cafile npm_config_cache; do
    [ -z "${!v:-}" ] || clean_env+=("$v=${!v}")
  done
  # The restricted PATH must not reach a compiler, make or python.
  for tool in cc c++ gcc g++ clang make python3 python; do
    if "${clean_env[@]}" sh -c "command -v $tool" >/dev/null 2>&1; then
      die "$tool is reachable on the restricted PATH"
    fi
  done

  mkdir -p "$app"
  # Our packages from the tarballs only, also where they depend on each other.
  node "$(dirname "${BASH_SOURCE[0]}")/tarball-project.cjs" "$app" "$work/packs" packed-install-app "${PACKAGES[@]}"
  log "npm install of the tarballs (no compiler on PATH, no libbpf.so.1)"
  (cd "$app" && timeout "$INSTALL_TIMEOUT" "${clean_env[@]}" npm install --no-audit --no-fund \
    --prefer-offline --loglevel=http > "$work/npm-install.log" 2>&1) || {
    tail -n 40 "$work/npm-install.log" >&2
    die "npm install failed (log above)"
  }
  if grep -i 'GET .*@stellaops' "$work/npm-install.log" >&2; then
    die "npm asked the registry for an @stellaops package (above)"
  fi
  loader="$app/node_modules/@stellaops/bpf-loader"
  [ ! -e "$loader/build" ] || die "the install built the addon from source ($loader/build exists)"

  cat > "$app/collect.mjs" <<'EOF'
import { spawnSync } from 'node:child_process';
import { loadedBindingPath } from '@stellaops/bpf-loader';
import { collect } from '@stellaops/signals';

const marker = process.argv[2];
const c = collect({
  enrich: false,
  probes: { exec: false, tcp_state: false, libc_net: false, tls: false },
  filters: { pathAllowlist: [marker] },
  dedup: { enabled: false },
});
await c.ready;
// collect() never traces its own process: a child opens the file.
const child = spawnSync('cat', [marker]);
if (child.status !== 0) throw new Error(`cat ${marker} failed`);
const deadline = setTimeout(() => c.close(), 10_000);
let found;
for await (const r of c) {
  if (r.type === 'file_open' && r.path === marker && r.pid === child.pid) {
    found = r;
    break;
  }
}
clearTimeout(deadline);
console.log(JSON.stringify({ addon: loadedBindingPath(), record: found ?? null }));
EOF
  # The same, from CommonJS.
  sed -e "s/^import { spawnSync } from 'node:child_process';/const { spawnSync } = require('node:child_process');/" \
    -e "s/^import { loadedBindingPath } from '@stellaops\/bpf-loader';/const { loadedBindingPath } = require('@stellaops\/bpf-loader');/" \
    -e "s/^import { collect } from '@stellaops\/signals';/const { collect } = require('@stellaops\/signals');\n(async () => {/" \
    "$app/collect.mjs" > "$app/collect.cjs"
  echo '})().catch((e) => { console.error(e); process.exit(1); });' >> "$app/collect.cjs"

  for kind in mjs cjs; do
    marker="$work/marker-$kind.txt"
    echo "$kind" > "$marker"
    out=$(cd "$app" && timeout "$RUN_TIMEOUT" "${clean_env[@]}" node "collect.$kind" "$marker") ||
      die "collect.$kind failed"
    echo "$out" | grep -q '"record":{' || die "collect.$kind saw no file_open record for $marker: $out"
    echo "$out" | grep -q "\"addon\":\"$loader/prebuilds/linux-x64/stella_bpf.napi.glibc.node\"" ||
      die "collect.$kind did not load the shipped prebuild: $out"
    echo "$out" | grep -q '"comm":"cat"' || die "collect.$kind: the record is not from cat: $out"
    log "collect() from .$kind: file_open of $marker seen, addon from prebuilds/"
  done

  version=$(cd "$app" && "${clean_env[@]}" ./node_modules/.bin/stella --version) ||
    die "the installed stella binary does not run"
  log "installed stella --version: $version"

  # The server install of docs/deployment-guide.md: `npm install -g` of the
  # tarballs (into a temporary prefix here, /usr/local there), then what the
  # systemd unit runs: the installed binary, no wrapper, no repository.
  global="$work/global"
  timeout "$INSTALL_TIMEOUT" "${clean_env[@]}" npm install -g --prefix "$global" --no-audit --no-fund \
    --prefer-offline --loglevel=error "$work"/packs/*.tgz > "$work/npm-install-g.log" 2>&1 || {
    tail -n 40 "$work/npm-install-g.log" >&2
    die "npm install -g failed (log above)"
  }
  stella="$global/bin/stella"
  [ ! -e "$global/lib/node_modules/@stellaops/bpf-loader/build" ] || die "npm install -g built the addon from source"
  mkdir -p "$work/etc"
  "${clean_env[@]}" "$stella" signals keygen --out "$work/etc/signals-key.pem" >/dev/null ||
    die "stella signals keygen failed"
  timeout "$RUN_TIMEOUT" "${clean_env[@]}" "$stella" signals start --target "$work/evidence" \
    --key "$work/etc/signals-key.pem" --duration 2s 2> "$work/start.log" || {
    tail -n 20 "$work/start.log" >&2
    die "stella signals start (installed with npm install -g) failed"
  }
  "${clean_env[@]}" "$stella" signals verify-chain "$work/evidence" --key "$work/etc/signals-key.pub.pem" \
    > "$work/verify.log" 2>&1 || {
    cat "$work/verify.log" >&2
    die "the evidence of the globally installed stella does not verify"
  }
  log "npm install -g: stella signals start collected and verify-chain says: $(grep VERIFIED "$work/verify.log")"
  exit 0
fi

# --- outside: build checks, pack, then the namespace -------------------------
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || die "needs root (BPF, and a mount namespace to hide libbpf)"
[ -f packages/bpf-loader/build/Release/stella_bpf.node ] || die "addon not built: npm run build:native"
for o in fileexec net; do
  [ -f "packages/probes/bpf/$o.bpf.o" ] || die "packages/probes/bpf/$o.bpf.o not built: npm run build:native"
done
# Nothing above the temp project may hold a node_modules npm or node would use.
for d in /tmp/node_modules /tmp/package.json /node_modules; do [ ! -e "$d" ] || die "$d exists and would leak into the test"; done

work=$(mktemp -d /tmp/stella-packed.XXXXXX)
if [ -z "${STELLA_KEEP_WORK:-}" ]; then trap 'rm -rf "$work"' EXIT; else log "work dir: $work"; fi

log "building dist (nx, cached)"
projects=$(printf '@stellaops/%s,' "${PACKAGES[@]}")
npx nx run-many -t build --projects="${projects%,}" --output-style=static >/dev/null ||
  die "npm run build failed"

mkdir -p "$work/packs"
pack_args=()
for p in "${PACKAGES[@]}"; do pack_args+=(-w "@stellaops/$p"); done
log "packing"
npm pack --silent --pack-destination "$work/packs" "${pack_args[@]}" >/dev/null || die "npm pack failed"
# What the tarballs must carry for a compiler-free install.
for p in "${PACKAGES[@]}"; do
  tar -tzf "$work/packs/stellaops-$p-"*.tgz > "$work/packs/$p.list"
  grep -qx 'package/LICENSE' "$work/packs/$p.list" || die "@stellaops/$p ships no LICENSE"
done
grep -qx 'package/prebuilds/linux-x64/stella_bpf.napi.glibc.node' "$work/packs/bpf-loader.list" ||
  die "the bpf-loader tarball has no prebuild"
for o in fileexec net; do
  grep -qx "package/bpf/$o.bpf.o" "$work/packs/probes.list" || die "the probes tarball lacks bpf/$o.bpf.o"
done

# A PATH with node, npm and core utilities only.
mkdir -p "$work/bin"
ln -s "$(readlink -f "$(command -v node)")" "$work/bin/node"
ln -s "$(readlink -f "$(command -v npm)")" "$work/bin/npm"
for t in sh bash env cat ls mkdir rm cp mv ln chmod touch tar gzip sed grep head tail sort \
  uname id dirname basename readlink realpath true false sleep tr cut wc xargs mktemp; do
  p=$(command -v "$t") || die "core utility $t missing"
  ln -s "$p" "$work/bin/$t"
done

unshare --mount bash "${BASH_SOURCE[0]}" --inner "$work"
log "ok"
echo "packed-install: ok"
