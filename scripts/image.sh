#!/usr/bin/env bash
# Builds the container image IMAGE (default gatehouse:dev) with the local
# Docker engine and nothing pulled: a static binary built here, and the
# final stage of Dockerfile as Dockerfile.local, on a build context made in a
# temporary folder (rootfs/ with the binary, the CA bundle, passwd and group
# entries; an empty data/). `make image` runs it with the Makefile's version
# stamps.
#
# Environment: IMAGE, DOCKER (the docker CLI, default docker), GO (default
# go), GO_LDFLAGS (-ldflags for go build), CA_BUNDLE (default Debian's
# /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-gatehouse:dev}
DOCKER=${DOCKER:-docker}
GO=${GO:-go}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if [ ! -r "$CA_BUNDLE" ]; then
  echo "image: no CA bundle at $CA_BUNDLE (install ca-certificates or set CA_BUNDLE)" >&2
  exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/data"

CGO_ENABLED=0 "$GO" build -trimpath -ldflags "${GO_LDFLAGS:-}" -o "$ctx/rootfs/gatehouse" ./cmd/gatehouse
cp "$CA_BUNDLE" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
echo 'gatehouse:x:65532:65532:gatehouse:/data:/nonexistent' > "$ctx/rootfs/etc/passwd"
echo 'gatehouse:x:65532:' > "$ctx/rootfs/etc/group"
chmod -R u=rwX,go=rX "$ctx/rootfs"
cp Dockerfile.local "$ctx/Dockerfile"

"$DOCKER" build --tag "$IMAGE" "$ctx"
echo "image: built $IMAGE"
