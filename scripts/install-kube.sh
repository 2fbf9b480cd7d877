#!/usr/bin/env bash
# install-kube.sh installs the Kubernetes control plane the tests run
# (internal/kube/kubetest): Debian's etcd-server, and kube-apiserver and
# kube-controller-manager built from the k8s.io/kubernetes module through
# the Go module proxy (scripts/kube pins the version and every k8s.io
# staging module; no prebuilt binary is downloaded). The programs are built
# once per pinned version into a cache outside the checkout
# ($TIANSHU_KUBE_CACHE, default ~/.cache/tianshu/kube-VERSION-HASH), so a
# fresh clone on the same machine reuses them, and linked into
# .tools/kube/bin. A cold build takes about 10-25 minutes on 2 busy cores.
# Idempotent: does nothing when everything is in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="$root/scripts/kube"
ver=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$mod/go.mod")
[ -n "$ver" ] || { echo "install-kube: no k8s.io/kubernetes version in $mod/go.mod" >&2; exit 1; }
hash=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-12)
cache="${TIANSHU_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tianshu/kube-$ver-$hash}"
bin="$root/.tools/kube/bin"
progs=(kube-apiserver kube-controller-manager)

# --no-etcd: build and link the Kubernetes programs only (.ci/run builds
# them in the background while apt is busy, and installs etcd after).
no_etcd=0
for a in "$@"; do
	case "$a" in
	--no-etcd) no_etcd=1 ;;
	*) echo "install-kube: unknown argument $a (only --no-etcd)" >&2; exit 2 ;;
	esac
done

if ((!no_etcd)) && ! command -v etcd >/dev/null; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "install-kube: need root to install etcd-server" >&2
		exit 1
	fi
	echo "install-kube: installing etcd-server"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi

missing=()
for p in "${progs[@]}"; do [ -x "$cache/$p" ] || missing+=("$p"); done
if ((${#missing[@]})); then
	echo "install-kube: building ${missing[*]} $ver (a cold build takes 10-25 minutes)…"
	start=$(date +%s)
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/install-kube.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# The version variables kube's own build sets, so /version and
	# kubectl's skew check see a real release.
	major=${ver#v}; major=${major%%.*}
	minor=${ver#v*.}; minor=${minor%%.*}
	ldflags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$ver -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
		ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	pkgs=()
	for p in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$p"); done
	(cd "$mod" && go build -trimpath -ldflags="$ldflags" -o "$tmp/" "${pkgs[@]}")
	mkdir -p "$cache"
	for p in "${missing[@]}"; do mv -f "$tmp/$p" "$cache/$p"; done
	echo "install-kube: built in $(($(date +%s) - start))s into $cache"
fi

mkdir -p "$bin"
for p in "${progs[@]}"; do ln -sfn "$cache/$p" "$bin/$p"; done
if command -v etcd >/dev/null; then
	echo "install-kube: $ver ready in .tools/kube/bin ($(command -v etcd) $(etcd --version | awk 'NR==1{print $3}'))"
else
	echo "install-kube: $ver ready in .tools/kube/bin (etcd not installed yet)"
fi
