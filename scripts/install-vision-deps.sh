#!/bin/sh
# Installs what the vision tests and benchmarks compare against: OpenCV's
# cascades (opencv-data), Debian's OpenCV for Python (python3-opencv, run
# with /usr/bin/python3), scikit-image's sample photos (python3-skimage) and
# OpenCV's sample images (opencv-doc). Idempotent: installs only what is
# missing and runs apt-get update at most once. Needs root (or sudo).
set -eu

pkgs="opencv-data python3-opencv python3-skimage opencv-doc"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "vision deps: all installed ($pkgs)"
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
echo "vision deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is wanted
$sudo apt-get install -y -qq $missing
/usr/bin/python3 -c 'import cv2' || { echo "vision deps: python3-opencv installed but cv2 does not import" >&2; exit 1; }
