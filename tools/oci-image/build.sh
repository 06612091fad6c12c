#!/usr/bin/env bash
# Builds a small, reproducible container image from busybox-static, with no
# registry: the tests here cannot pull anything.
#
#   tools/oci-image/build.sh <out-dir> [--ref <image-ref>] [--cmd '<json array>'] [--add <host-file>:<path-in-image>]...
#   tools/oci-image/build.sh <out-dir> --rootfs <dir> [--ref …] [--entrypoint '<json array>'] [--cmd …]
#                            [--env '<json array>'] [--labels '<json object>'] [--gzip]
#
# --rootfs packs a prepared directory as the one layer instead of the busybox
# tree (deploy/image/build.sh uses it for the collector's image); --gzip
# compresses the layer (gzip -n, still reproducible; the diff_id stays the
# digest of the uncompressed tar).
#
# Writes into <out-dir>:
#   image.tar   one archive that is both an OCI image layout (oci-layout,
#               index.json, blobs/sha256/…) and a `docker save` archive
#               (manifest.json), so the same file feeds `ctr image import`,
#               `docker load` and `podman load`.
#   image.json  {"ref", "manifestDigest", "configDigest", "layerDigest"} so
#               tests can assert the digests a runtime reports.
#
# The layer is an uncompressed tar with fixed mtimes and owners, so the same
# inputs always give the same digests. Import with `import.sh` next to this.
set -euo pipefail

usage() { echo "usage: $0 <out-dir> [--ref <image-ref>] [--cmd '<json array>'] [--add <host-file>:<path-in-image>]... | --rootfs <dir> [--entrypoint '<json array>'] [--env '<json array>'] [--labels '<json object>'] [--gzip]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1; shift
ref=docker.io/stellaops/busybox:test
cmd='["/bin/sh"]'
adds=()
rootfs=
entrypoint=null
env='["PATH=/bin"]'
labels=null
gzip=
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) [ $# -ge 2 ] || usage; ref=$2; shift 2 ;;
    --add) [ $# -ge 2 ] || usage; adds+=("$2"); shift 2 ;;
    # The image's default command (a CRI pod sandbox runs it, e.g. '["/bin/sleep","2147483647"]').
    --cmd) [ $# -ge 2 ] || usage; cmd=$2; shift 2 ;;
    --rootfs) [ $# -ge 2 ] || usage; rootfs=$2; shift 2 ;;
    --entrypoint) [ $# -ge 2 ] || usage; entrypoint=$2; shift 2 ;;
    --env) [ $# -ge 2 ] || usage; env=$2; shift 2 ;;
    --labels) [ $# -ge 2 ] || usage; labels=$2; shift 2 ;;
    --gzip) gzip=1; shift ;;
    *) usage ;;
  esac
done
[ -z "$rootfs" ] || [ -d "$rootfs" ] || { echo "$0: --rootfs $rootfs is not a directory" >&2; exit 1; }

# A static busybox: the image has no libc. Override with BUSYBOX=<path>.
busybox=${BUSYBOX:-/bin/busybox}
[ -n "$rootfs" ] || [ -x "$busybox" ] || { echo "$0: $busybox not found; install busybox-static (apt-get install busybox-static)" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
if [ -n "$rootfs" ]; then
  root=$rootfs
else
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh cat sleep ls echo touch wget nc true false id env head; do
  ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
for a in "${adds[@]}"; do
  src=${a%%:*}; dst=${a#*:}
  [ -f "$src" ] || { echo "$0: --add $a: host file $src does not exist" >&2; exit 1; }
  case "$dst" in /*) ;; *) echo "$0: --add $a: image path must be absolute" >&2; exit 1 ;; esac
  mkdir -p "$root$(dirname "$dst")"
  cp "$src" "$root$dst"
done
fi

blobs="$work/image/blobs/sha256"
mkdir -p "$blobs"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$root" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
layer_type=application/vnd.oci.image.layer.v1.tar
if [ -n "$gzip" ]; then
  gzip -n -6 "$work/layer.tar"
  mv "$work/layer.tar.gz" "$work/layer.tar"
  layer_type=application/vnd.oci.image.layer.v1.tar+gzip
fi
layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar")
mv "$work/layer.tar" "$blobs/$layer"

case "$cmd" in \[*\]) ;; *) echo "$0: --cmd must be a JSON array of strings, got: $cmd" >&2; exit 1 ;; esac
case "$entrypoint" in null | \[*\]) ;; *) echo "$0: --entrypoint must be a JSON array of strings, got: $entrypoint" >&2; exit 1 ;; esac
case "$env" in \[*\]) ;; *) echo "$0: --env must be a JSON array of strings, got: $env" >&2; exit 1 ;; esac
case "$labels" in null | \{*\}) ;; *) echo "$0: --labels must be a JSON object, got: $labels" >&2; exit 1 ;; esac
# Entrypoint and Labels only when given: the busybox image's config stays byte-identical.
extra=
[ "$entrypoint" = null ] || extra="$extra\"Entrypoint\":$entrypoint,"
extra="$extra\"Env\":$env,"
[ "$labels" = null ] || extra="$extra\"Labels\":$labels,"
printf '{"architecture":"amd64","config":{"Cmd":%s,%s"WorkingDir":"/"},"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"tools/oci-image/build.sh"}],"os":"linux","rootfs":{"diff_ids":["sha256:%s"],"type":"layers"}}' \
  "$cmd" "$extra" "$diff_id" > "$work/config.json"
config=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$blobs/$config"

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer_type" "$layer" "$layer_size" > "$work/manifest.json"
manifest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$blobs/$manifest"

# The tag part of the ref, for the OCI ref.name annotation (podman reads it).
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$ref" "$ref" > "$work/image/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/image/oci-layout"
# docker 20.10 loads only the `docker save` shape: manifest.json at the top.
short=${ref#docker.io/}
printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":["blobs/sha256/%s"]}]' \
  "$config" "$short" "$layer" > "$work/image/manifest.json"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/image" -cf "$out/image.tar" .
printf '{"ref":"%s","manifestDigest":"sha256:%s","configDigest":"sha256:%s","layerDigest":"sha256:%s"}\n' \
  "$ref" "$manifest" "$config" "$layer" > "$out/image.json"
cat "$out/image.json"
