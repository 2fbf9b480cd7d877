'use strict';
// face-descriptor-node: a tianshu-v1 algorithm (docs/protocol-tianshu-v1.md)
// that describes one face crop with 128 numbers, for face search.
//
// Models: the pretrained networks shipped in the npm package
// @vladmandic/face-api (see README.md for their origin and licences), run by
// that package's own code on TensorFlow.js's WebAssembly backend:
//   face_landmark_68_model   68 facial landmarks       112x112 RGB -> 68 points
//   face_recognition_model   dlib's ResNet-34 face      150x150 RGB -> 128 values
//                            recognition network
// Alignment (parameter align, default true): the landmarks place the face
// on dlib's face chip, the 150x150 picture the recognition network was
// trained on (eyes level, a fixed size and position), before it is
// described. Every file is read from node_modules, nothing is downloaded.
//
// Usage: PORT=8080 node server.js        serve on 127.0.0.1:$PORT ($HOST when
//                                        set: an image sets 0.0.0.0)
//        node server.js --check [image]  load the models, run once, print, exit

const path = require('node:path');

const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const {
  HTTPError, decode, resizeRegion, boolParam, numberParam, main,
} = require('./lib/tianshu-v1.js');

const { tf } = faceapi;
const NAME = 'face-descriptor-node';
const VERSION = require('./package.json').version;

const MODEL_DIR = process.env.MODEL_DIR ||
  path.join(__dirname, 'node_modules', '@vladmandic', 'face-api', 'model');
const WASM_DIR = path.join(__dirname, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'wasm-out');

const DIM = 128; // the descriptor's length
const CHIP = 150; // the recognition network's input side
const LANDMARK_INPUT = 112; // the landmark network's input side
const DEFAULT_MARGIN = 0.4;

const CONTRACT = {
  // embedding: accepted so that a flow written for the face-attributes package
  // ({"embedding": true}) runs unchanged; this package always answers one.
  inputs: [{ name: 'image', type: 'image', required: true }, { name: 'margin', type: 'number' }, { name: 'align', type: 'bool' },
    { name: 'embedding', type: 'bool' }],
  outputs: [{ name: 'embedding', type: 'embedding', dim: DIM }],
};

// dlib's mean face (dlib/image_transforms/interpolation.h,
// get_face_chip_details): landmarks 17..67 of the 68-point scheme (brows,
// nose, eyes, mouth; not the jaw line) in a unit square. A chip of side S
// with padding P places point (x, y) at ((P + x) / (1 + 2P) * S, ...):
// the recognition network was trained on such chips (S 150, P 0.25).
const MEAN_X = [
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004,
  0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373,
  0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335,
  0.254149, 0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532, 0.338094,
  0.290379, 0.428096, 0.490127, 0.552157, 0.689874, 0.553364, 0.490127, 0.42689,
];
const MEAN_Y = [
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454,
  0.203352, 0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326,
  0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
  0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192, 0.864805,
  0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182,
];
const FIRST_POINT = 17;
const CHIP_PADDING = 0.25;
const TEMPLATE = MEAN_X.map((x, i) => [
  ((CHIP_PADDING + x) / (1 + 2 * CHIP_PADDING)) * CHIP,
  ((CHIP_PADDING + MEAN_Y[i]) / (1 + 2 * CHIP_PADDING)) * CHIP,
]);

async function load() {
  // One thread: the platform scales with replicas, and threads would need
  // worker_threads plus the threaded .wasm binary.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tf.setWasmPaths(WASM_DIR + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('the TF.js WASM backend did not initialise');
  await tf.ready();
  await faceapi.nets.faceLandmark68Net.loadFromDisk(MODEL_DIR);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(MODEL_DIR);
  // Warm up: the first execution of a network compiles its kernels.
  const grey = { width: CHIP, height: CHIP, data: new Uint8Array(CHIP * CHIP * 4).fill(128) };
  await describe(grey, DEFAULT_MARGIN, true);
  return faceapi.nets;
}

// landmarks finds the 68 points of the face whose box is the square
// [x, y, side] of img, in img's pixels.
async function landmarks(img, x, y, side) {
  const rgb = resizeRegion(img, x, y, side, side, LANDMARK_INPUT);
  const input = tf.tensor3d(rgb.map((v) => v * 255), [LANDMARK_INPUT, LANDMARK_INPUT, 3]);
  try {
    const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(input);
    const k = side / LANDMARK_INPUT;
    return lm.positions.map((p) => [x + p.x * k, y + p.y * k]);
  } finally {
    input.dispose();
  }
}

// similarity fits, in least squares, the rotation, scale and shift that
// take the points from onto the points to: [a -b; b a] p + [tx ty].
function similarity(from, to) {
  const n = from.length;
  let fx = 0; let fy = 0; let tx = 0; let ty = 0;
  for (let i = 0; i < n; i++) { fx += from[i][0]; fy += from[i][1]; tx += to[i][0]; ty += to[i][1]; }
  fx /= n; fy /= n; tx /= n; ty /= n;
  let num = 0; let cross = 0; let den = 0;
  for (let i = 0; i < n; i++) {
    const sx = from[i][0] - fx; const sy = from[i][1] - fy;
    const dx = to[i][0] - tx; const dy = to[i][1] - ty;
    num += sx * dx + sy * dy; cross += sx * dy - sy * dx; den += sx * sx + sy * sy;
  }
  const a = num / den; const b = cross / den;
  return { a, b, tx: tx - (a * fx - b * fy), ty: ty - (b * fx + a * fy) };
}

// warp samples the chip (side CHIP, RGB 0..255) whose pixel p comes from
// img at the inverse of t. The face region is first resized to about the
// chip's scale (an antialiased resize), so a large face is not aliased.
function warp(img, t) {
  const s = Math.hypot(t.a, t.b); // chip pixels per image pixel
  const inv = (u, v) => { // chip -> image
    const x = u - t.tx; const y = v - t.ty;
    return [(t.a * x + t.b * y) / (s * s), (-t.b * x + t.a * y) / (s * s)];
  };
  const corners = [inv(0, 0), inv(CHIP, 0), inv(0, CHIP), inv(CHIP, CHIP)];
  const x0 = Math.min(...corners.map((c) => c[0])); const x1 = Math.max(...corners.map((c) => c[0]));
  const y0 = Math.min(...corners.map((c) => c[1])); const y1 = Math.max(...corners.map((c) => c[1]));
  const side = Math.max(x1 - x0, y1 - y0);
  const n = Math.max(CHIP, Math.ceil(side * s)); // the region at the chip's scale
  const region = resizeRegion(img, x0, y0, side, side, n); // RGB 0..1
  const k = n / side; // region pixels per image pixel
  const out = new Float32Array(CHIP * CHIP * 3);
  for (let v = 0; v < CHIP; v++) {
    for (let u = 0; u < CHIP; u++) {
      const [ix, iy] = inv(u + 0.5, v + 0.5);
      const rx = Math.min(n - 1, Math.max(0, (ix - x0) * k - 0.5));
      const ry = Math.min(n - 1, Math.max(0, (iy - y0) * k - 0.5));
      const xa = Math.floor(rx); const ya = Math.floor(ry);
      const xb = Math.min(n - 1, xa + 1); const yb = Math.min(n - 1, ya + 1);
      const wx = rx - xa; const wy = ry - ya;
      for (let c = 0; c < 3; c++) {
        const top = region[(ya * n + xa) * 3 + c] * (1 - wx) + region[(ya * n + xb) * 3 + c] * wx;
        const bottom = region[(yb * n + xa) * 3 + c] * (1 - wx) + region[(yb * n + xb) * 3 + c] * wx;
        out[(v * CHIP + u) * 3 + c] = (top * (1 - wy) + bottom * wy) * 255;
      }
    }
  }
  return out;
}

// describe returns the descriptor of the face in img, a crop whose face box
// has margin (a fraction of the box side) on each side, and the eye centres
// it was aligned on.
async function describe(img, margin, align) {
  const bw = img.width / (1 + 2 * margin);
  const bh = img.height / (1 + 2 * margin);
  const side = Math.max(bw, bh);
  const bx = (img.width - side) / 2; const by = (img.height - side) / 2;
  let chip;
  let eyes = null;
  if (align) {
    const pts = await landmarks(img, bx, by, side);
    const centre = (lo, hi) => {
      const ps = pts.slice(lo, hi);
      return [ps.reduce((s, p) => s + p[0], 0) / ps.length, ps.reduce((s, p) => s + p[1], 0) / ps.length];
    };
    eyes = [centre(36, 42), centre(42, 48)].map((e) => e.map((v) => Math.round(v * 10) / 10));
    chip = warp(img, similarity(pts.slice(FIRST_POINT), TEMPLATE));
  } else {
    // As face-api describes a detection: the box, resized.
    chip = resizeRegion(img, bx, by, side, side, CHIP).map((v) => v * 255);
  }
  const input = tf.tensor3d(chip, [CHIP, CHIP, 3]);
  try {
    const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(input);
    return { embedding: Array.from(d, (v) => Math.round(v * 1e5) / 1e5), eyes };
  } finally {
    input.dispose();
  }
}

async function infer(m, body, contentType, p) {
  const img = decode(body, contentType);
  const margin = numberParam(p, 'margin', DEFAULT_MARGIN, 0, 2);
  const align = boolParam(p, 'align', true);
  boolParam(p, 'embedding', true); // checked, and always answered
  const { embedding, eyes } = await describe(img, margin, align);
  const out = { embedding };
  if (eyes) out.eyes = eyes;
  return out;
}

main({
  name: NAME,
  version: VERSION,
  contract: CONTRACT,
  params: ['margin', 'align', 'embedding'],
  load,
  infer,
  checkParams: () => ({}),
});
