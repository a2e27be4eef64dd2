#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests
# need, runs the linters, the unit tests (with the race detector) and the
# integration tests against real components, which the tests start on
# 127.0.0.1 and stop again. Conformance reports land in results/.
set -euo pipefail
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
export GATEHOUSE_TOOLS=${GATEHOUSE_TOOLS:-$HOME/.cache/gatehouse-tools}
export PATH="$GATEHOUSE_TOOLS/bin:$PATH"

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi

echo "== go vet"
go vet ./...
go vet -tags integration ./...

echo "== golangci-lint"
golangci-lint run --timeout 10m --build-tags integration ./...

echo "== unit tests"
go test -race -count=1 -timeout 20m ./...

echo "== integration tests"
mkdir -p results
go test -tags integration -count=1 -p 1 -timeout 60m ./test/...
