#!/usr/bin/env bash
# Installs what the tests need beyond Go itself, idempotently, into ./.tools
# (gitignored) and test/sdk-node/node_modules: the linter, a real S3 server
# (versitygw) and the official Node.js SDK. Everything comes from the Go
# module proxy and the npm registry; nothing is downloaded as a prebuilt
# binary. A failure is reported, not fatal: tests that need the missing tool
# skip with a reason (or fail in CI, where TIANSHU_CI=1).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
export GOBIN="$PWD/.tools/bin"

if [ ! -x .tools/bin/staticcheck ]; then
  echo "install-tools: staticcheck"
  (cd "$(mktemp -d)" && go install honnef.co/go/tools/cmd/staticcheck@v0.8.2) || echo "install-tools: staticcheck FAILED" >&2
fi
bash scripts/install-versitygw.sh || echo "install-tools: versitygw FAILED" >&2
if command -v npm >/dev/null 2>&1; then
  if [ ! -d test/sdk-node/node_modules/tencentcloud-sdk-nodejs-common ]; then
    echo "install-tools: npm ci test/sdk-node"
    npm ci --prefix test/sdk-node --no-audit --no-fund --loglevel=error || echo "install-tools: npm ci FAILED" >&2
  fi
else
  echo "install-tools: npm not found; the Node.js SDK test will skip" >&2
fi
exit 0
