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

echo "== go vet"
go vet ./...

echo "== staticcheck"
if [ -x .tools/bin/staticcheck ]; then
  .tools/bin/staticcheck ./...
elif [ "${TIANSHU_CI:-}" = 1 ]; then
  echo "staticcheck missing in CI"; exit 1
else
  echo "staticcheck not installed; skipped"
fi

echo "== go test"
go test -count=1 -timeout 20m ./...

echo "== fuzz (${FUZZTIME:=5s} per target)"
# Every Fuzz* function in the repository, found rather than listed, so new
# targets run without editing this script.
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  dir=$(dirname "$f")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "-- $dir $fn"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$dir" > /tmp/tianshu-fuzz.log 2>&1 || { cat /tmp/tianshu-fuzz.log; exit 1; }
  done
done
echo "== all checks passed"
