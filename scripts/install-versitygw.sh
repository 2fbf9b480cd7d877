#!/usr/bin/env bash
# install-versitygw.sh builds versitygw (a real S3 gateway) into .tools/bin so
# the s3blob tests can run against a genuine S3 implementation. It uses
# `go install mod@version`, which keeps versitygw out of our go.mod.
# Idempotent: does nothing when the binary already exists.
set -euo pipefail

VERSION="${VERSITYGW_VERSION:-v1.8.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"

if [[ -x "$bin/versitygw" ]]; then
	echo "versitygw already installed at $bin/versitygw"
	exit 0
fi

mkdir -p "$bin"
echo "building versitygw $VERSION into $bin (this can take several minutes)..."
# Run outside the module so the main module's go.mod is neither read nor touched.
cd "$(mktemp -d)"
GOBIN="$bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
echo "installed $bin/versitygw"
