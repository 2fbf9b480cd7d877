#!/usr/bin/env bash
# The one command that runs every check: formatting, vet, lint, all tests
# (against the real PostgreSQL, MariaDB and NATS when they are reachable),
# and a few seconds of each fuzz target. README's test command runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-tools.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

# The module's packages, without anything npm put under node_modules.
pkg_list=$(bash scripts/packages.sh) # a failing go list stops here (set -e)
mapfile -t pkgs <<< "$pkg_list"

echo "== go vet"
go vet "${pkgs[@]}"

echo "== staticcheck"
if [ -x .tools/bin/staticcheck ]; then
  .tools/bin/staticcheck "${pkgs[@]}"
elif [ "${TIANSHU_CI:-}" = 1 ]; then
  echo "staticcheck missing in CI"; exit 1
else
  echo "staticcheck not installed; skipped"
fi

echo "== console: eslint, tsc --noEmit, vitest"
# The browser test and the check that web/dist is fresh are Go tests of
# package web (go test below); they skip, or fail in CI, the same way.
if ! command -v npm >/dev/null; then
  [ "${TIANSHU_CI:-}" = 1 ] && { echo "npm missing in CI"; exit 1; }
  echo "npm not installed; console checks skipped"
elif [ ! -d web/node_modules ]; then
  [ "${TIANSHU_CI:-}" = 1 ] && { echo "web/node_modules missing in CI (npm ci --prefix web)"; exit 1; }
  echo "web/node_modules missing (run: npm ci --prefix web); console checks skipped"
else
  (cd web && npx --no-install eslint . && npx --no-install tsc --noEmit && npx --no-install vitest run)
fi

echo "== go test"
# -json through scripts/testsummary: each package's result, the output of
# failed tests, and at the end every skipped test by name with its reason.
go test -json -count=1 -timeout 20m "${pkgs[@]}" | go run ./scripts/testsummary

echo "== fuzz (${FUZZTIME:=5s} per target)"
# Every Fuzz* function in the repository, found rather than listed, so new
# targets run without editing this script.
# Go's fuzzing coordinator can fail a run with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is mid-input on a busy machine
# (golang/go#51484, #75804): nothing found, no input written. Such a run is
# retried once; a run that wrote a failing input, or fails twice, fails.
fuzz_log=$(mktemp "${TMPDIR:-/tmp}/tianshu-fuzz.XXXXXX")
trap 'rm -f "$fuzz_log"' EXIT
grep -rl --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.tools '^func Fuzz' . | while read -r f; do
  dir=$(dirname "$f")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "-- $dir $fn"
    for attempt in 1 2; do
      if go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$dir" > "$fuzz_log" 2>&1; then
        break
      fi
      if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$fuzz_log" && ! grep -q 'Failing input written' "$fuzz_log"; then
        echo "   the fuzz run ended with the coordinator's deadline race and found nothing; running it again"
        continue
      fi
      cat "$fuzz_log"; exit 1
    done
  done
done
echo "== all checks passed"
