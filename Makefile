# The two commands of the README, and a few helpers.
.PHONY: run test bench build docs

# Run the whole platform on the embedded backends (./tianshu-data), with the
# face structuring demo: a replay camera, a flow, a running task, an app and
# an SSE subscription, created once.
run: build
	./bin/tianshu serve --demo

# Run every check and test (see scripts/test.sh).
test:
	bash scripts/test.sh

# Run every benchmark and print one table with the baselines.
bench:
	bash scripts/bench.sh

build:
	go build -o bin/tianshu ./cmd/tianshu

# Regenerate the API reference from the action registry.
docs:
	go run ./cmd/tianshu docs > docs/api.md
