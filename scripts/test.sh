#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests
# need, checks that go.mod is tidy, runs the linters, govulncheck, the unit
# tests (with the race detector), a short run of every fuzz target
# (FUZZTIME each, default 3s) and the integration tests against real
# components, which the tests start on 127.0.0.1 and stop again. Conformance
# reports land in results/.
set -euo pipefail
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
# go.mod names the toolchain the project is built and tested with (a Go
# release without the standard-library vulnerabilities govulncheck knows);
# "auto" lets an older installed Go fetch it through the module proxy.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

bash scripts/install-deps.sh
export GATEHOUSE_TOOLS=${GATEHOUSE_TOOLS:-$HOME/.cache/gatehouse-tools}
export PATH="$GATEHOUSE_TOOLS/bin:$PATH"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

echo "== go mod tidy"
# -diff changes nothing; it prints what tidy would change and fails if anything.
if ! go mod tidy -diff; then
  echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result (diff above)" >&2
  exit 1
fi

echo "== go vet"
go vet ./...
go vet -tags integration ./...

echo "== golangci-lint"
golangci-lint run --timeout 10m --build-tags integration ./...

echo "== govulncheck"
bash scripts/vuln.sh

echo "== unit tests"
go test -race -count=1 -timeout 20m ./...

echo "== fuzz (${FUZZTIME:-3s} per target)"
bash scripts/fuzz.sh "${FUZZTIME:-3s}"

echo "== integration tests"
mkdir -p results
go test -tags integration -count=1 -p 1 -timeout 60m ./test/...
