# The two commands of the README, and a few helpers.
.PHONY: run test bench build docs web

# Run the whole platform on the embedded backends (./tianshu-data), with the
# face structuring demo: a replay camera, a flow, a running task, an app and
# an SSE subscription, created once.
run: bin/tianshu
	bin/tianshu serve --demo

# Run every check and test (see scripts/test.sh).
test:
	bash scripts/test.sh

# Run every benchmark and print one table with the baselines.
bench:
	bash scripts/bench.sh

build: bin/tianshu

# The binary's inputs: the Go sources and the files they embed (examples,
# migrations, cascades). make builds only when one of them is newer than
# the binary, and says so first: a first build compiles every dependency.
SOURCES := go.mod go.sum $(shell find cmd internal api examples -type f -not -name '*_test.go' \
	-not -path '*/testdata/*' -not -path '*/node_modules/*' 2>/dev/null) \
	$(filter-out %_test.go,$(wildcard web/*.go)) $(shell find web/dist -type f 2>/dev/null)

# How the shipped binary is built: without the symbol table and DWARF
# (-s -w), which takes about a third off its size (the issue's ceiling is
# 90 MB). Stack traces and pprof keep working: they read pclntab, which
# stays. No -trimpath: it would change every package's build cache key, so
# a first `make build` after `go test` would compile everything again.
# bench/startup_test.go measures the binary built with these flags.
SHIP_LDFLAGS := -s -w

bin/tianshu: $(SOURCES)
	@if [ -e bin/tianshu ]; then echo "building bin/tianshu (sources changed)…"; \
	else echo "building bin/tianshu (a first build compiles every dependency: several minutes, about 20 on a busy 2-core machine; later ones take seconds)…"; fi
	go build -ldflags='$(SHIP_LDFLAGS)' -o bin/tianshu ./cmd/tianshu
	@touch bin/tianshu

# Rebuild the web console into web/dist (committed, embedded in the binary,
# so that `make run` needs Go alone). Needs Node.js and npm; see docs/console.md.
web:
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run build

# Regenerate the API reference from the action registry.
docs:
	go run ./cmd/tianshu docs > docs/api.md
