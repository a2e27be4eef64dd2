#!/usr/bin/env bash
# scripts/fuzz.sh [TIME [DIR...]]
# Runs every native fuzz target in the module (or in the package directories
# given) for TIME each (default 20s), one after the other. Each package's test binary is built
# once, with the fuzzing instrumentation, and then run once per target: the
# build is most of the cost of a short run, and `go test -fuzz` would build
# again for every target.
#
# Fails at the first target that finds a failing input. As with
# `go test -fuzz`, the input is saved under the package's
# testdata/fuzz/<target>/ (rerun with `go test -run <target>/<file> ./pkg`),
# and the generated corpus is kept in the Go build cache.
set -euo pipefail
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
cd "$(dirname "$0")/.."
time=${1:-20s}
[ $# -gt 0 ] && shift
root=$PWD
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cache=$(go env GOCACHE)/fuzz
start=$SECONDS
targets=0

dirs=$(grep -rl --include='*_test.go' '^func Fuzz' "${@:-.}" | xargs -n1 dirname | sort -u)
for dir in $dirs; do
  pkg=./${dir#./}
  importpath=$(go list "$pkg")
  fns=$(cat "$dir"/*_test.go | sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p')
  echo "== $pkg: build"
  go test -c -fuzz=. -o "$bin/pkg.test" "$pkg"
  for fn in $fns; do
    echo "== $pkg $fn"
    # Go's fuzzing engine sometimes ends a short run with "context deadline
    # exceeded" although no input failed (its coordinator's deadline races
    # a slow worker). That, and only that, is run once more: a real failure
    # saves its input under testdata/fuzz/<target>/ and fails at once.
    for try in 1 2; do
      saved_before=$( (ls "$root/$dir/testdata/fuzz/$fn" 2>/dev/null || true) | wc -l)
      if (cd "$root/$dir" && "$bin/pkg.test" -test.run='^$' -test.fuzz="^$fn\$" -test.fuzztime="$time" \
        -test.fuzzcachedir="$cache/$importpath") > "$bin/out" 2>&1; then
        cat "$bin/out"
        break
      fi
      cat "$bin/out"
      saved_after=$( (ls "$root/$dir/testdata/fuzz/$fn" 2>/dev/null || true) | wc -l)
      if [ "$try" = 1 ] && [ "$saved_before" = "$saved_after" ] && grep -q 'context deadline exceeded' "$bin/out"; then
        echo "== $pkg $fn: the engine's deadline, no failing input; running it once more"
        continue
      fi
      exit 1
    done
    targets=$((targets + 1))
  done
done
echo "fuzz: $targets targets, $time each, $((SECONDS - start))s in all"
