#!/usr/bin/env bash
# install-device-deps.sh installs what the device driver tests and the device
# benchmark need: ffmpeg (the rtsp driver's decoder and the video replay), a
# GStreamer RTSP server usable from Debian's python3-gi (the tests' RTSP peer),
# protoc for regenerating api/adapter (the generated code is committed, so only
# `make`-style regeneration needs it), and the protoc Go plugins in .tools/bin.
# Idempotent: installs only what is missing; runs apt-get update at most once.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"

pkgs=(ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0
	python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
	gstreamer1.0-plugins-ugly gstreamer1.0-libav
	protobuf-compiler libprotobuf-dev)
missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-device-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "install-device-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "install-device-deps: Debian packages already installed"
fi

# protoc plugins, versions pinned to match the committed generated code. Built
# outside the module so go.mod is neither read nor touched.
mkdir -p "$bin"
if [[ ! -x "$bin/protoc-gen-go" || ! -x "$bin/protoc-gen-go-grpc" ]]; then
	(cd "$(mktemp -d)" &&
		GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 &&
		GOBIN="$bin" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2)
fi
echo "install-device-deps: done"
