'use strict';
// The baseline of BenchmarkONNXServing: ONNX Runtime called directly from
// Node.js, with the session options of the onnx-cpu runtime. Usage:
//   node onnx_direct.js ORT_MODULE_DIR MODEL INPUT_NAME N,C,H,W
// then, per line "run K" on stdin, it runs the model K times on a fixed
// input and answers one line: the wall nanoseconds those K runs took and
// the CPU microseconds (user + system) the process used meanwhile.
const ort = require(process.argv[2]);
const readline = require('readline');

async function main() {
  const [model, inputName, dims] = process.argv.slice(3);
  const shape = dims.split(',').map(Number);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const feeds = { [inputName]: new ort.Tensor('float32', data, shape) };
  await session.run(feeds);
  console.log('ready');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const k = Number(line.split(' ')[1]);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < k; i++) await session.run(feeds);
    const wall = process.hrtime.bigint() - t0;
    const c = process.cpuUsage(c0);
    console.log(`${wall} ${c.user + c.system}`);
  }
}
main().catch((e) => { console.error(e.message); process.exit(1); });
