#!/usr/bin/env bash
# pack.sh [OUT]: build the install package of face-descriptor-node, a tar.gz
# with manifest.json at its root and only the files the server loads: its
# code, lib/tianshu-v1.js (shared with the other Node.js examples), the
# TF.js runtime (the union package @tensorflow/tfjs, which face-api's Node
# WASM build requires, with its parts), the SIMD .wasm binary, face-api's
# code and its landmark and recognition models, the JPEG and PNG decoders,
# and their licences.
#
# Runs `npm ci --omit=dev --ignore-scripts` first when node_modules is
# missing. The packed tree is unpacked and checked (`node server.js --check`
# loads the models and runs once) unless PACK_CHECK=0. OUT defaults to
# face-descriptor-node.tar.gz here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/face-descriptor-node.tar.gz}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$here"

if [ ! -d node_modules ]; then
	npm ci --omit=dev --ignore-scripts --no-audit --no-fund
fi

nm=node_modules
tfjs=$nm/@tensorflow
faceapi=$nm/@vladmandic/face-api
files=(
	manifest.json package.json server.js README.md lib/tianshu-v1.js
	$tfjs/tfjs/package.json $tfjs/tfjs/dist/tf.node.js
	$tfjs/tfjs-core/package.json $tfjs/tfjs-core/dist/tf-core.node.js
	$tfjs/tfjs-converter/package.json $tfjs/tfjs-converter/dist/tf-converter.node.js
	$tfjs/tfjs-layers/package.json $tfjs/tfjs-layers/dist/tf-layers.node.js
	$tfjs/tfjs-data/package.json $tfjs/tfjs-data/dist/tf-data.node.js
	$tfjs/tfjs-backend-cpu/package.json $tfjs/tfjs-backend-cpu/dist/tf-backend-cpu.node.js
	$tfjs/tfjs-backend-webgl/package.json $tfjs/tfjs-backend-webgl/dist/tf-backend-webgl.node.js
	$tfjs/tfjs-backend-wasm/package.json $tfjs/tfjs-backend-wasm/dist/tf-backend-wasm.node.js
	$tfjs/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-simd.wasm
	$faceapi/package.json $faceapi/LICENSE $faceapi/dist/face-api.node-wasm.js
	$faceapi/model/face_landmark_68_model-weights_manifest.json $faceapi/model/face_landmark_68_model.bin
	$faceapi/model/face_recognition_model-weights_manifest.json $faceapi/model/face_recognition_model.bin
	$nm/seedrandom/package.json $nm/seedrandom/README.md $nm/seedrandom/index.js $nm/seedrandom/seedrandom.js
	$nm/long/package.json $nm/long/LICENSE $nm/long/src/long.js
	$nm/jpeg-js/package.json $nm/jpeg-js/LICENSE $nm/jpeg-js/index.js $nm/jpeg-js/lib/decoder.js $nm/jpeg-js/lib/encoder.js
	$nm/pngjs/package.json $nm/pngjs/LICENSE
)
for f in $nm/pngjs/lib/*.js; do files+=("$f"); done
for f in alea xor128 xorwow xorshift7 xor4096 tychei; do files+=("$nm/seedrandom/lib/$f.js"); done

# The TF.js files carry their Apache-2.0 notice in their header (their npm
# packages have no LICENSE file).
. lib/pack.sh
pack_tree "$out" "${files[@]}"
