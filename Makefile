# The two commands of the README, and a few helpers.
.PHONY: run test bench build docs

# Run the whole platform on the embedded backends (./tianshu-data).
run: build
	./bin/tianshu serve

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
