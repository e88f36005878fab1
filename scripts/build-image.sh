#!/usr/bin/env bash
# Builds Rampart's container image from deploy/container/Containerfile
# with buildah (no daemon, no base image to pull: it starts FROM scratch).
#
#   scripts/build-image.sh [TAG] [-- BUILDAH GLOBAL OPTIONS...]
#
# The binary is static (CGO_ENABLED=0) and reproducible (-trimpath); the CA
# bundle is the build machine's (/etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-rampart:dev}
shift || true
[ "${1:-}" != "--" ] || shift
if ! command -v buildah >/dev/null 2>&1; then
	echo "installing buildah (Debian package)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq buildah >/dev/null
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$ctx/rampart" ./cmd/rampart
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
buildah "$@" build --quiet --format docker -f deploy/container/Containerfile -t "$tag" "$ctx"
