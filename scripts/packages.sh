#!/usr/bin/env bash
# Prints the packages of the module in the current directory that the
# checks run on: `go list ./...` without any package under a node_modules
# directory. go skips only directories starting with "." or "_" and
# testdata, and an npm package may ship .go files of its own.
set -euo pipefail
go list ./... | awk '!/\/node_modules(\/|$)/'
