'use strict';
// tianshu-v1.js: what the Node.js example algorithms share to speak
// tianshu-v1 (docs/protocol-tianshu-v1.md) on one image: decoding a JPEG or
// PNG body within limits, resizing a region of it, reading parameters, and
// the HTTP server (/v1/health, /v1/metadata, /v1/infer) with `--check`.
//
// Each package links it as lib/ (a link to ../lib in this repository) and
// its pack.sh copies the file into the install package.

const fs = require('node:fs');
const http = require('node:http');
const { createRequire } = require('node:module');

// The decoders are the package's dependencies: resolve them from its
// server.js, not from this file's real path (lib/ is a link here).
const pkgRequire = createRequire(require.main ? require.main.filename : __filename);
const jpeg = pkgRequire('jpeg-js');
const { PNG } = pkgRequire('pngjs');

function envInt(name, def) {
  const v = Number.parseInt(process.env[name] || '', 10);
  return Number.isFinite(v) && v > 0 ? v : def;
}
const MAX_BODY_BYTES = envInt('MAX_BODY_BYTES', 8 << 20); // request body limit
const MAX_PIXELS = envInt('MAX_PIXELS', 4096 * 4096); // decoded image limit
const MIN_SIDE = 8; // smaller crops carry no usable face

class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
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

// blankPNG is a grey square, the input of --check without an image.
function blankPNG(side) {
  const png = new PNG({ width: side, height: side });
  png.data.fill(200);
  return PNG.sync.write(png);
}

// ---- resizing -------------------------------------------------------------

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

// resizeRegion resizes the region [x, x+w) x [y, y+h) of an RGBA image to
// size x size and returns RGB in 0..1 (HWC). Pixels outside the image
// repeat its edge.
function resizeRegion(img, x, y, w, h, size) {
  const { width, data } = img;
  const tx = resample(width, size, x, w);
  const ty = resample(img.height, size, y, h);
  // Horizontal pass over the rows used: rows x size x 3.
  const y0 = Math.min(...ty.map((t) => t.idx[0]));
  const y1 = Math.max(...ty.map((t) => t.idx[t.idx.length - 1])) + 1;
  const tmp = new Float32Array((y1 - y0) * size * 3);
  for (let yy = y0; yy < y1; yy++) {
    for (let o = 0; o < size; o++) {
      let r = 0; let g = 0; let b = 0;
      const t = tx[o];
      for (let k = 0; k < t.idx.length; k++) {
        const p = (yy * width + t.idx[k]) * 4;
        r += data[p] * t.w[k]; g += data[p + 1] * t.w[k]; b += data[p + 2] * t.w[k];
      }
      const q = ((yy - y0) * size + o) * 3;
      tmp[q] = r; tmp[q + 1] = g; tmp[q + 2] = b;
    }
  }
  // Vertical pass: size x size x 3, scaled to 0..1.
  const rgb = new Float32Array(size * size * 3);
  for (let o = 0; o < size; o++) {
    const t = ty[o];
    for (let xx = 0; xx < size; xx++) {
      let r = 0; let g = 0; let b = 0;
      for (let k = 0; k < t.idx.length; k++) {
        const q = ((t.idx[k] - y0) * size + xx) * 3;
        r += tmp[q] * t.w[k]; g += tmp[q + 1] * t.w[k]; b += tmp[q + 2] * t.w[k];
      }
      const q = (o * size + xx) * 3;
      rgb[q] = r / 255; rgb[q + 1] = g / 255; rgb[q + 2] = b / 255;
    }
  }
  return rgb;
}

// ---- parameters -----------------------------------------------------------

// readParams returns the call's parameters: X-Tianshu-Params (a JSON
// object) over the query string (for trying by hand), by name.
function readParams(header, query, names) {
  const out = {};
  for (const n of names) {
    const v = query.get(n);
    if (v !== null) out[n] = v;
  }
  if (header) {
    let p;
    try { p = JSON.parse(header); } catch (err) { throw new HTTPError(400, `X-Tianshu-Params is not JSON: ${err.message}`); }
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new HTTPError(400, 'X-Tianshu-Params must be a JSON object');
    for (const n of names) if (p[n] !== undefined && p[n] !== null) out[n] = p[n];
  }
  return out;
}

// boolParam reads a bool parameter (true, false, or their strings).
function boolParam(p, name, def) {
  const v = p[name];
  if (v === undefined || v === '') return def;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new HTTPError(400, `${name} must be true or false, not ${JSON.stringify(v)}`);
}

// numberParam reads a number parameter within [lo, hi].
function numberParam(p, name, def, lo, hi) {
  const v = p[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < lo || n > hi) throw new HTTPError(400, `${name} must be a number in [${lo}, ${hi}], not ${JSON.stringify(v)}`);
  return n;
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

// main runs an algorithm: `node server.js` serves it, `node server.js
// --check [image]` loads its models, runs it on the image (a grey square
// without one) with checkParams, prints the answer and its time, and exits.
//
// alg: {name, version, contract, params: the parameter names,
//       load(): Promise of the models, infer(models, body, contentType,
//       params): the answer (throws HTTPError for bad input), checkParams}.
function main(alg) {
  if (process.argv[2] === '--check') {
    check(alg, process.argv[3]).catch((err) => { console.error(err); process.exit(1); });
  } else {
    serve(alg);
  }
}

// check's answer carries the median wall and CPU time (user + system, of
// this one-threaded process) per call: of CHECK_RUNS calls (default 1)
// after the first, which compiles kernels. CHECK_PARAMS (a JSON object)
// adds parameters.
async function check(alg, file) {
  const models = await alg.load();
  const body = file ? fs.readFileSync(file) : blankPNG(32);
  const params = { ...alg.checkParams(models), ...JSON.parse(process.env.CHECK_PARAMS || '{}') };
  let out = await alg.infer(models, body, '', params);
  const runs = envInt('CHECK_RUNS', 1);
  const wall = [];
  const cpu = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    out = await alg.infer(models, body, '', params);
    const c = process.cpuUsage(c0);
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
    cpu.push((c.user + c.system) / 1e3);
  }
  const median = (l) => Math.round(l.sort((a, b) => a - b)[l.length >> 1] * 10) / 10;
  console.log(JSON.stringify({ ...out, ms: median(wall), cpuMs: median(cpu), runs }));
}

function serve(alg) {
  let models = null; // set once loaded: health turns 200
  const handle = async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/v1/health') {
      reply(res, models ? 200 : 503, models ? { status: 'ready' } : { status: 'loading models' });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/v1/metadata') {
      reply(res, 200, { name: alg.name, version: alg.version, contract: alg.contract });
      return;
    }
    if (url.pathname !== '/v1/infer') {
      reply(res, 404, { error: `no ${req.method} ${url.pathname}` });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      reply(res, 405, { error: 'use POST' });
      return;
    }
    try {
      const body = await readBody(req);
      if (!models) throw new HTTPError(503, 'models are still loading');
      const p = readParams(req.headers['x-tianshu-params'], url.searchParams, alg.params);
      reply(res, 200, await alg.infer(models, body, req.headers['content-type'], p));
    } catch (err) {
      if (err instanceof HTTPError) {
        if (err.status === 413) res.setHeader('Connection', 'close');
        reply(res, err.status, { error: err.message });
      } else {
        console.error('infer:', err);
        reply(res, 500, { error: String(err && err.message ? err.message : err) });
      }
    }
  };
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
  server.listen(port, host, () => console.log(`${alg.name} ${alg.version} listening on ${host}:${port}`));
  const t0 = Date.now();
  alg.load().then((m) => {
    models = m;
    console.log(`models loaded in ${Date.now() - t0} ms`);
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

module.exports = {
  HTTPError, decode, resizeRegion, readParams, boolParam, numberParam, main,
};
