'use strict';
// Tianshu serving runtime "onnx-cpu": one ONNX model behind a small Open
// Inference Protocol v2 (KServe v2) REST server, run by ONNX Runtime on
// the CPU. The platform starts it as a supervised process with
//   PORT        the loopback port to listen on
//   MODEL_PATH  the .onnx file
//   MODEL_NAME  the model's name in URLs (default "model")
//   THREADS     intra-op threads (default 1)
//   EXTRA_MODELS more models served beside it, as name=path pairs
//               separated by ";" (an OCR version's recognizer)
// Requests carry FP32 tensors as JSON data, with the binary tensor data
// extension (Inference-Header-Content-Length), or in a system shared
// memory region (the extension of Triton's name: a file under /dev/shm the
// caller registered, named by the input's shared_memory_region); outputs
// are sent binary when the request asks for it ("binary_data_output": true).

const fs = require('fs');
const http = require('http');
const ort = require('onnxruntime-node');

const port = Number(process.env.PORT || 8080);
const modelPath = process.env.MODEL_PATH;
const modelName = process.env.MODEL_NAME || 'model';
const threads = Number(process.env.THREADS || 1);
const maxBody = Number(process.env.MAX_BODY_BYTES || 64 << 20);

if (!modelPath) {
  console.error('MODEL_PATH is not set');
  process.exit(2);
}

const dtypes = { FP32: 'float32', FP64: 'float64', INT64: 'int64', INT32: 'int32', UINT8: 'uint8', INT8: 'int8', BOOL: 'bool' };
const arrays = { FP32: Float32Array, FP64: Float64Array, INT64: BigInt64Array, INT32: Int32Array, UINT8: Uint8Array, INT8: Int8Array };
const names = Object.fromEntries(Object.entries(dtypes).map(([k, v]) => [v, k]));

function send(res, status, obj) {
  const b = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': b.length });
  res.end(b);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > maxBody) {
        reject(Object.assign(new Error(`request larger than ${maxBody} bytes`), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// System shared memory regions by name: the open file, where the
// region starts in it and its size, and a buffer of that size that a
// request's tensor is read into (one request uses a region at a time).
const maxRegions = 64;
const regions = new Map();

async function registerRegion(req, name) {
  const body = await readBody(req);
  let r;
  try {
    r = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw bad('request is not JSON: ' + e.message);
  }
  if (!r || typeof r.key !== 'string' || !/^\/[A-Za-z0-9._-]{1,200}$/.test(r.key)) throw bad('key: a shared memory key "/name" is required');
  const offset = r.offset || 0;
  if (!Number.isInteger(offset) || offset < 0) throw bad('offset: must be a non-negative integer');
  if (!Number.isInteger(r.byte_size) || r.byte_size < 1 || r.byte_size > maxBody) throw bad(`byte_size: must be between 1 and ${maxBody}`);
  if (regions.has(name)) throw bad(`shared memory region ${name} is already registered`);
  if (regions.size >= maxRegions) throw bad(`at most ${maxRegions} shared memory regions`);
  let fd;
  try {
    fd = fs.openSync('/dev/shm' + r.key, 'r');
  } catch (e) {
    throw bad(`cannot open shared memory ${r.key}: ${e.message}`);
  }
  regions.set(name, { fd, offset, size: r.byte_size, buf: Buffer.allocUnsafeSlow(r.byte_size) });
}

function unregisterRegion(name) {
  const r = regions.get(name);
  if (!r) throw bad(`no shared memory region ${name}`);
  fs.closeSync(r.fd);
  regions.delete(name);
}

// regionData reads an input's tensor from the shared memory region its
// parameters name.
function regionData(t, p) {
  const r = regions.get(p.shared_memory_region);
  if (!r) throw bad(`input ${t.name}: unknown shared memory region ${p.shared_memory_region}`);
  const size = p.shared_memory_byte_size;
  const off = p.shared_memory_offset || 0;
  if (!Number.isInteger(size) || !Number.isInteger(off) || off < 0 || size < 0 || off + size > r.size) {
    throw bad(`input ${t.name}: ${size} bytes at ${off} do not fit in shared memory region ${p.shared_memory_region} of ${r.size}`);
  }
  const n = fs.readSync(r.fd, r.buf, 0, size, r.offset + off);
  if (n !== size) throw bad(`input ${t.name}: read ${n} of ${size} bytes from shared memory region ${p.shared_memory_region}`);
  return r.buf.subarray(0, size);
}

function bad(msg) {
  return Object.assign(new Error(msg), { status: 400 });
}

// toOrt builds one input tensor from its JSON header and, with the binary
// extension, its bytes.
function toOrt(t, bin) {
  const Arr = arrays[t.datatype];
  if (!Arr) throw bad(`input ${t.name}: datatype ${t.datatype} is not supported`);
  const count = t.shape.reduce((a, b) => a * b, 1);
  let data;
  if (bin) {
    if (bin.length !== count * Arr.BYTES_PER_ELEMENT) {
      throw bad(`input ${t.name}: ${bin.length} bytes for shape [${t.shape}] of ${t.datatype}`);
    }
    if (bin.byteOffset % Arr.BYTES_PER_ELEMENT === 0) {
      data = new Arr(bin.buffer, bin.byteOffset, count); // aligned: a view, no copy
    } else {
      data = new Arr(count);
      Buffer.from(data.buffer).set(bin);
    }
  } else {
    const flat = Array.isArray(t.data) ? t.data.flat(Infinity) : [];
    if (flat.length !== count) throw bad(`input ${t.name}: ${flat.length} elements for shape [${t.shape}]`);
    data = Arr === BigInt64Array ? BigInt64Array.from(flat.map(BigInt)) : Arr.from(flat);
  }
  return new ort.Tensor(dtypes[t.datatype], data, t.shape);
}

async function main() {
  const paths = { [modelName]: modelPath };
  for (const pair of (process.env.EXTRA_MODELS || '').split(';')) {
    const i = pair.indexOf('=');
    if (i > 0) paths[pair.slice(0, i)] = pair.slice(i + 1);
  }
  const sessions = {};
  for (const [name, path] of Object.entries(paths)) {
    sessions[name] = await ort.InferenceSession.create(path, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
  }
  const session = sessions[modelName];

  async function infer(req, res, session, modelName) {
    const body = await readBody(req);
    const hlen = req.headers['inference-header-content-length'];
    const headLen = hlen === undefined ? body.length : Number(hlen);
    if (!Number.isInteger(headLen) || headLen < 0 || headLen > body.length) throw bad('bad Inference-Header-Content-Length');
    let head;
    try {
      head = JSON.parse(body.subarray(0, headLen).toString('utf8'));
    } catch (e) {
      throw bad('request is not JSON: ' + e.message);
    }
    if (!head || !Array.isArray(head.inputs)) throw bad('request has no inputs');
    const feeds = {};
    let off = headLen;
    for (const t of head.inputs) {
      if (!session.inputNames.includes(t.name)) throw bad(`no input ${t.name}; the model takes ${session.inputNames.join(', ')}`);
      if (!Array.isArray(t.shape)) throw bad(`input ${t.name}: no shape`);
      const size = t.parameters && t.parameters.binary_data_size;
      let bin = null;
      if (t.parameters && t.parameters.shared_memory_region !== undefined) {
        bin = regionData(t, t.parameters);
      } else if (size !== undefined) {
        if (off + size > body.length) throw bad(`input ${t.name}: binary data runs past the body`);
        bin = body.subarray(off, off + size);
        off += size;
      }
      feeds[t.name] = toOrt(t, bin);
    }
    const binaryOut = !!(head.parameters && head.parameters.binary_data_output);
    let results;
    try {
      results = await session.run(feeds);
    } catch (e) {
      // Out of memory is this process's limit (resources.addressSpaceMB), not the caller's input.
      if (/Failed to allocate memory|Cannot allocate memory|bad_alloc/.test(e.message)) {
        const err = new Error('out of memory: ' + e.message);
        err.status = 507;
        throw err;
      }
      throw bad('inference failed: ' + e.message);
    }
    const outputs = [];
    const bufs = [];
    for (const name of session.outputNames) {
      const r = results[name];
      const out = { name, shape: r.dims.map(Number), datatype: names[r.type] || r.type };
      if (binaryOut && r.data.buffer) {
        const b = Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
        out.parameters = { binary_data_size: b.length };
        bufs.push(b);
      } else {
        out.data = Array.from(r.data, (x) => (typeof x === 'bigint' ? Number(x) : x));
      }
      outputs.push(out);
    }
    const headOut = Buffer.from(JSON.stringify({ model_name: modelName, outputs }));
    const headers = { 'Content-Type': bufs.length ? 'application/octet-stream' : 'application/json' };
    if (bufs.length) headers['Inference-Header-Content-Length'] = headOut.length;
    const all = Buffer.concat([headOut, ...bufs]);
    headers['Content-Length'] = all.length;
    res.writeHead(200, headers);
    res.end(all);
  }

  const server = http.createServer((req, res) => {
    const url = req.url.split('?')[0];
    if (req.method === 'GET' && (url === '/v2/health/ready' || url === '/v2/health/live')) {
      return send(res, 200, { ready: true });
    }
    const shm = /^\/v2\/systemsharedmemory\/region\/([A-Za-z0-9._-]{1,200})\/(register|unregister)$/.exec(url);
    if (shm && req.method === 'POST') {
      const done = shm[2] === 'register' ? registerRegion(req, shm[1]) : (async () => unregisterRegion(shm[1]))();
      done.then(() => send(res, 200, {}), (e) => send(res, e.status || 500, { error: e.message }));
      return;
    }
    const m = /^\/v2\/models\/([^/]+)(\/ready|\/infer)?$/.exec(url);
    const name = m && m[1];
    const session = m && Object.hasOwn(sessions, name) ? sessions[name] : null;
    if (session && req.method === 'GET' && m[2] === '/ready') {
      return send(res, 200, { ready: true });
    }
    if (session && req.method === 'GET' && !m[2]) {
      return send(res, 200, { name, platform: 'onnxruntime', inputs: session.inputNames.map((n) => ({ name: n })), outputs: session.outputNames.map((n) => ({ name: n })) });
    }
    if (session && req.method === 'POST' && m[2] === '/infer') {
      infer(req, res, session, name).catch((e) => {
        if (!res.headersSent) send(res, e.status || 500, { error: e.message });
      });
      return;
    }
    send(res, 404, { error: `no route ${req.method} ${url}` });
  });
  server.keepAliveTimeout = 60000;
  server.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ msg: 'listening', port, models: paths, inputs: session.inputNames, outputs: session.outputNames })));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((e) => {
  console.error('cannot load model: ' + e.message);
  process.exit(1);
});
