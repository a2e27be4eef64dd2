#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (run as root):
# Debian packages for the real peers (OpenLDAP, Redis, registry 2.8.2, Docker engine,
# skopeo, podman, ...) and pinned Go tools (registry v3, MinIO, crane, oras, regctl, Helm,
# cosign, golangci-lint, govulncheck, the OCI conformance suite). Idempotent: what is there
# is kept.
#
# Go tools go to $GATEHOUSE_TOOLS/bin (default ~/.cache/gatehouse-tools/bin).
set -euo pipefail
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

TOOLS=${GATEHOUSE_TOOLS:-$HOME/.cache/gatehouse-tools}
BIN=$TOOLS/bin
mkdir -p "$BIN"

APT_PACKAGES=(
  slapd ldap-utils          # OpenLDAP server and clients (LDAP tests)
  redis-server              # blob descriptor cache tests
  docker-registry           # distribution 2.8.2, token consumer and layout peer
  docker.io                 # the real Docker engine as a client
  skopeo podman umoci       # clients and offline image building
  haproxy                   # load balancer in front of replicas (test/ha)
  jq curl openssl ca-certificates apache2-utils
  systemd                   # systemd-analyze verify/security of the unit files
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "install-deps: need root to install packages" >&2; exit 1; fi
  apt-get update -qq
  # Debian's policy-rc.d on these machines keeps services from starting; the tests start what they need.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# go_tool NAME PACKAGE@VERSION: build once per version.
go_tool() {
  local name=$1 pkg=$2 stamp="$BIN/.$1.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then return; fi
  echo "install-deps: go install $pkg"
  local tmp; tmp=$(mktemp -d)
  if ! GOBIN=$tmp GOFLAGS=-mod=mod go install "$pkg" > "$tmp.log" 2>&1; then
    cat "$tmp.log" >&2; rm -rf "$tmp" "$tmp.log"; exit 1
  fi
  rm -f "$tmp.log"
  mv "$tmp"/* "$BIN/$name"
  rmdir "$tmp"
  echo "$pkg" > "$stamp"
}

go_tool registry-v3   github.com/distribution/distribution/v3/cmd/registry@v3.1.2
go_tool crane         github.com/google/go-containerregistry/cmd/crane@v0.22.1
go_tool oras          oras.land/oras/cmd/oras@v1.3.6
go_tool regctl        github.com/regclient/regclient/cmd/regctl@v0.11.7
go_tool helm          helm.sh/helm/v3/cmd/helm@v3.21.4                  # charts as OCI artifacts
go_tool cosign        github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5   # signatures as sha256-<hex>.sig tags
go_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
# govulncheck, and the indexer that turns the OSV files of the golang.org/x/vulndb
# module (fetched through the Go module proxy by scripts/vuln.sh) into the
# database layout govulncheck reads with -db file://.
go_tool govulncheck   golang.org/x/vuln/cmd/govulncheck@v1.10.0
go_tool vulndb-index  golang.org/x/vulndb/cmd/indexdb@v0.0.0-20261105234957-e22db6528018
go_tool minio         github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c   # S3 server for the S3 driver tests (~5 min to build)

# The OCI distribution-spec conformance suite, built in a scratch module.
CONF_VERSION=v0.0.0-20260831232431-97274622c111
if [ "$(cat "$BIN/.conformance.version" 2>/dev/null)" != "$CONF_VERSION" ] || [ ! -x "$BIN/conformance.test" ]; then
  echo "install-deps: OCI conformance suite $CONF_VERSION"
  src=$(mktemp -d)
  (
    cd "$src"
    go mod init gatehouse.local/conformance >/dev/null 2>&1
    go get "github.com/opencontainers/distribution-spec/conformance@$CONF_VERSION" >/dev/null 2>&1
    go test -c -o "$BIN/conformance.test" github.com/opencontainers/distribution-spec/conformance >/dev/null
  )
  rm -rf "$src"
  echo "$CONF_VERSION" > "$BIN/.conformance.version"
fi

echo "install-deps: tools in $BIN"
