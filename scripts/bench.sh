#!/usr/bin/env bash
# bench.sh runs every benchmark in the repository and prints one table —
# metric, Tianshu, baseline, ratio, target — of what they recorded with
# bench/benchtable, plus a row for each benchmark that recorded none.
#
#   scripts/bench.sh                         # all benchmarks, a few minutes
#   BENCHTIME=2s scripts/bench.sh            # longer b.N-driven runs
#   BENCH_DURATION=10s scripts/bench.sh      # longer gateway load per side
#   TIANSHU_BENCH_COLD_BUILD=1 scripts/bench.sh   # also time a cold build
#
# Only benchmarks run (-run '^$'), one package at a time (-p 1) so that no
# compile competes with a measurement. Self-timed benchmarks (BenchmarkGateway,
# BenchmarkColdStart) run once at a time-based -benchtime; a metric recorded
# more than once keeps its last value. The raw go test output is printed
# first; the exit status is go test's.
set -uo pipefail

cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/tianshu-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TIANSHU_BENCH_OUT="$work/rows.jsonl"

# Every package with a Benchmark function; listing them (instead of ./...)
# skips building and starting test binaries that have nothing to run.
mapfile -t pkgs < <(grep -rlE --include='*_test.go' '^func Benchmark' . | xargs -r -n1 dirname | sort -u)
if [ ${#pkgs[@]} -eq 0 ]; then
	echo "bench.sh: no benchmarks found" >&2
	exit 1
fi

go build -o "$work/benchtable" ./bench/cmd/benchtable || exit 1

go test -p 1 -count=1 -timeout=30m -run '^$' -bench . -benchtime="${BENCHTIME:-1s}" "$@" "${pkgs[@]}" 2>&1 | tee "$work/gotest.txt"
status=${PIPESTATUS[0]}

echo
"$work/benchtable" -gotest "$work/gotest.txt" "$TIANSHU_BENCH_OUT" || status=1
exit "$status"
