#!/usr/bin/env bash
# Builds libbpf as a static, position-independent archive for the addon.
#
# Debian's libbpf.a is compiled without -fPIC, so it cannot be linked into a
# shared object (the .node addon). This fetches Debian's libbpf source package
# (bookworm, the release the addon's API targets) like any other dependency,
# through a private apt configuration that leaves the system's sources, lists
# and caches untouched, and builds it with -fPIC into a git-ignored cache:
#
#   packages/bpf-loader/.deps/libbpf/{include/bpf/*.h, lib/libbpf.a, VERSION}
#
# Incremental: once the archive exists for the pinned source it returns
# at once. Needs apt-get (download), a C compiler, make, libelf-dev, zlib1g-dev.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps="$here/.deps"
out="$deps/libbpf"
# The source package and suite: bookworm ships libbpf 1.1.2.
SUITE=${STELLA_LIBBPF_SUITE:-bookworm}
MIRROR=${STELLA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '[libbpf] %s\n' "$*" >&2; }

if [ -f "$out/lib/libbpf.a" ] && [ -f "$out/VERSION" ] && [ "$(sed -n 2p "$out/VERSION")" = "$SUITE" ]; then
  exit 0
fi

command -v apt-get >/dev/null || {
  log "apt-get not found: the libbpf source comes from Debian's source package."
  log "Put a PIC libbpf.a and its headers in $out/{lib,include} by hand, or build on Debian/Ubuntu."
  exit 1
}
[ -f "$KEYRING" ] || { log "missing $KEYRING (package debian-archive-keyring)"; exit 1; }

apt_dir="$deps/apt"
src_dir="$deps/src"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$src_dir"
printf 'deb-src [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" > "$apt_dir/sources.list"
# Everything apt reads or writes is redirected to $apt_dir: the sources list
# (and no sources.list.d), the package lists and the binary caches.
apt_opts=(
  -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
  -o Dir::Etc::sourceparts=-
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
)
# apt drops to the _apt user for downloads, which cannot write into a root
# owned working tree; the files are checked against the signed index anyway.
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)

log "fetching Debian's libbpf source package ($SUITE)"
apt-get -qq "${apt_opts[@]}" update
(cd "$src_dir" && rm -f libbpf_* && apt-get -qq "${apt_opts[@]}" source --download-only libbpf >/dev/null)

dsc=$(ls "$src_dir"/libbpf_*.dsc)
orig=$(ls "$src_dir"/libbpf_*.orig.tar.*)
version=$(sed -n 's/^Version: //p' "$dsc")
# apt checked the .dsc against the signed Sources index; check the upstream
# tarball against the .dsc before building from it.
want=$(awk '/^Checksums-Sha256:/{f=1;next} /^[^ ]/{f=0} f && $3 ~ /orig\.tar/ {print $1}' "$dsc")
got=$(sha256sum "$orig" | cut -d' ' -f1)
[ "$want" = "$got" ] || { log "checksum mismatch for $orig (dsc says $want, file is $got)"; exit 1; }

work="$deps/work"
rm -rf "$work" "$out.partial"
mkdir -p "$work"
tar -xf "$orig" -C "$work" --strip-components=1
log "building libbpf $version with -fPIC (static only)"
make -s -C "$work/src" BUILD_STATIC_ONLY=1 OBJDIR="$work/obj" \
  CFLAGS="-fPIC -O2 -g -Wall" >/dev/null
make -s -C "$work/src" BUILD_STATIC_ONLY=1 OBJDIR="$work/obj" \
  DESTDIR="$out.partial" PREFIX= LIBDIR=/lib INCLUDEDIR=/include \
  install_headers >/dev/null
mkdir -p "$out.partial/lib"
cp "$work/obj/libbpf.a" "$out.partial/lib/libbpf.a"
printf '%s\n%s\n' "$version" "$SUITE" > "$out.partial/VERSION"
rm -rf "$out" "$work"
mv "$out.partial" "$out"
log "libbpf $version ready in $out"
