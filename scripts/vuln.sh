#!/usr/bin/env bash
# govulncheck over the module without the vulnerability database's own host.
# The Go vulnerability database is published as OSV files in the
# golang.org/x/vulndb module, which the Go module proxy serves like any
# module; vulndb-index (its cmd/indexdb) turns those files into the layout
# that `govulncheck -db file://DIR` reads.
#
# VULNDB_VERSION picks the database (default: the newest the proxy has).
# Needs govulncheck and vulndb-index from scripts/install-deps.sh.
# Exits non-zero when the code calls a function with a known vulnerability.
set -euo pipefail
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
TOOLS=${GATEHOUSE_TOOLS:-$HOME/.cache/gatehouse-tools}
export PATH="$TOOLS/bin:$PATH"
for tool in govulncheck vulndb-index; do
  command -v "$tool" >/dev/null 2>&1 || { echo "vuln: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done

# Download outside this module so that go.mod and go.sum stay as they are.
json=$(cd "${TMPDIR:-/tmp}" && GOFLAGS= go mod download -json "golang.org/x/vulndb@${VULNDB_VERSION:-latest}")
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$json"; }
version=$(field Version)
src=$(field Dir)
if [ -z "$version" ] || [ ! -d "$src/data/osv" ]; then
  echo "vuln: no OSV data in golang.org/x/vulndb@${VULNDB_VERSION:-latest}:" >&2
  echo "$json" >&2
  exit 1
fi

# One indexed database per vulndb version, kept beside the tools.
db=$TOOLS/vulndb/$version
if [ ! -f "$db/index/db.json" ]; then
  rm -rf "$db.tmp"
  mkdir -p "$(dirname "$db")"
  vulndb-index -vulns "$src/data/osv" -out "$db.tmp"
  rm -rf "$db"
  mv "$db.tmp" "$db"
fi

echo "vuln: govulncheck with golang.org/x/vulndb@$version"
govulncheck -db "file://$db" ./...
