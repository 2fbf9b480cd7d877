#!/usr/bin/env bash
# install-helm.sh installs the tools the chart checks run (deploy/helm):
# helm (helm.sh/helm/v3/cmd/helm) and kubeconform
# (github.com/yannh/kubeconform/cmd/kubeconform), built from the Go module
# proxy at the versions scripts/helm pins (no prebuilt binary is
# downloaded). Like install-kube.sh, the programs are built once per pinned
# version into a cache outside the checkout ($TIANSHU_HELM_CACHE, default
# ~/.cache/tianshu/helm-VERSION-HASH) and linked into .tools/helm/bin.
# kubeconform's schemas are not downloaded: the chart test generates them
# from the test API server's OpenAPI document (see docs/kubernetes.md).
# The chart's ServiceMonitor is checked against the Prometheus operator's
# own CustomResourceDefinition, taken from its module
# (github.com/prometheus-operator/prometheus-operator@$promop, through the
# module proxy and checked against the checksum database) into
# .tools/helm/crds.
# Idempotent: does nothing when everything is in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="$root/scripts/helm"
ver=$(awk '$1 == "helm.sh/helm/v3" {print $2}' "$mod/go.mod")
[ -n "$ver" ] || { echo "install-helm: no helm.sh/helm/v3 version in $mod/go.mod" >&2; exit 1; }
hash=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-12)
cache="${TIANSHU_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tianshu/helm-$ver-$hash}"
bin="$root/.tools/helm/bin"
progs=(helm kubeconform)
promop=v0.85.0
crd=example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml
declare -A pkg=(
	[helm]=helm.sh/helm/v3/cmd/helm
	[kubeconform]=github.com/yannh/kubeconform/cmd/kubeconform
)

missing=()
for p in "${progs[@]}"; do [ -x "$cache/$p" ] || missing+=("$p"); done
if ((${#missing[@]})); then
	echo "install-helm: building ${missing[*]} (helm $ver; a cold build takes several minutes)…"
	start=$(date +%s)
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/install-helm.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# helm prints its version from these variables (helm version).
	ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$ver"
	pkgs=()
	for p in "${missing[@]}"; do pkgs+=("${pkg[$p]}"); done
	(cd "$mod" && go build -trimpath -ldflags="$ldflags" -o "$tmp/" "${pkgs[@]}")
	mkdir -p "$cache"
	for p in "${missing[@]}"; do mv -f "$tmp/$p" "$cache/$p"; done
	echo "install-helm: built in $(($(date +%s) - start))s into $cache"
fi

if [ ! -s "$cache/crds/servicemonitors.yaml" ]; then
	dir=$(cd / && GO111MODULE=on go mod download -json "github.com/prometheus-operator/prometheus-operator@$promop" |
		awk -F'"' '$2 == "Dir" {print $4}')
	[ -s "$dir/$crd" ] || { echo "install-helm: $crd not in prometheus-operator $promop" >&2; exit 1; }
	mkdir -p "$cache/crds"
	cp "$dir/$crd" "$cache/crds/servicemonitors.yaml.tmp"
	mv -f "$cache/crds/servicemonitors.yaml.tmp" "$cache/crds/servicemonitors.yaml"
fi

mkdir -p "$bin"
for p in "${progs[@]}"; do ln -sfn "$cache/$p" "$bin/$p"; done
ln -sfn "$cache/crds" "$root/.tools/helm/crds"
echo "install-helm: helm $ver and kubeconform ready in .tools/helm/bin"
