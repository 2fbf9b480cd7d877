#!/usr/bin/env bash
# bench-cameras.sh runs BenchmarkCameras (bench/cameras_test.go): N replay
# cameras of 1280×720 JPEG frames at 5 fps through the platform and the
# face-structuring template, on each generated input, and prints its table:
# server CPU per frame, sustained fps, drops, and the face tracks found
# against full-frame detection on every frame.
#
#   scripts/bench-cameras.sh            # 8 cameras, 20 s per input
#   scripts/bench-cameras.sh 4          # 4 cameras
#   BENCH_DURATION=60s scripts/bench-cameras.sh 8
#   TIANSHU_VTEST=/path/to/vtest.avi scripts/bench-cameras.sh 8
#   BENCH_OFFLINE=1 scripts/bench-cameras.sh   # tracks and detect CPU only, no platform
#   BENCH_VARIANTS='[{"localScales":-1}]' BENCH_OFFLINE=1 scripts/bench-cameras.sh
#                                   # also other face-detect inputs, same run
#
# Needs ffmpeg; OpenCV's column needs python3-opencv (/usr/bin/python3).
set -uo pipefail

cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/tianshu-bench-cameras.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TIANSHU_BENCH_OUT="$work/rows.jsonl"
export BENCH_CAMERAS="${1:-8}"

go build -o "$work/benchtable" ./bench/cmd/benchtable || exit 1
go test -count=1 -timeout=30m -run '^$' -bench '^BenchmarkCameras$' -benchtime=1x -v ./bench 2>&1 | tee "$work/gotest.txt"
status=${PIPESTATUS[0]}
echo
"$work/benchtable" -gotest "$work/gotest.txt" "$TIANSHU_BENCH_OUT" || status=1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
