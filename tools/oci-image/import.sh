#!/usr/bin/env bash
# Imports an archive made by build.sh into containerd.
#   tools/oci-image/import.sh <image.tar> [namespace]   (default namespace: default)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <image.tar> [namespace]" >&2; exit 2; }
ns=${2:-default}
ctr -n "$ns" image import --all-platforms "$1"
