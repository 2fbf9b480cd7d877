"""Builds tiny ONNX graphs whose outputs are known, for the onnx-cpu
serving runtime's tests and benchmark. Usage: make_onnx.py OUTDIR.

classifier.onnx  input "images" [1,3,8,8] -> "logits" [1,3]:
                 logits = m*[-4,0,4] + [2,0,-2], m = mean of the input.
yolo.onnx        input "images" [1,3,32,32] -> "output0" [1,6,4]
                 (YOLOv8 layout: cx,cy,w,h then 2 class scores per anchor),
                 a constant plus 0*mean(input).
nhwc.onnx        input "input" [1,8,8,3] (NHWC) -> "logits" [1,3] as classifier.
conv.onnx        input "images" [1,3,224,224] -> "logits" [1,10]: four 3x3
                 convolutions, for the benchmark (weights from a fixed seed).
"""
import sys
import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

out = sys.argv[1]


def save(graph, name):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, f"{out}/{name}")


def mean_head(inp, shape, name):
    w = numpy_helper.from_array(np.array([[-4, 0, 4]], dtype=np.float32), "w")
    b = numpy_helper.from_array(np.array([2, 0, -2], dtype=np.float32), "b")
    nodes = [
        helper.make_node("ReduceMean", [inp], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "ax"], ["m2"]),
        helper.make_node("MatMul", ["m2", "w"], ["mw"]),
        helper.make_node("Add", ["mw", "b"], ["logits"]),
    ]
    ax = numpy_helper.from_array(np.array([1], dtype=np.int64), "ax")
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info(inp, TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
                          [w, b, ax])
    return g


save(mean_head("images", [1, 3, 8, 8], "classifier"), "classifier.onnx")
save(mean_head("input", [1, 8, 8, 3], "nhwc"), "nhwc.onnx")

# YOLOv8 layout [1, 4+C, N]: rows cx, cy, w, h, score(class0), score(class1).
anchors = np.array([
    # cx, cy, w, h, s0, s1
    [10, 10, 8, 8, 0.9, 0.1],   # A: class 0, kept
    [11, 10, 8, 8, 0.8, 0.0],   # B: class 0, IoU with A = 0.78: suppressed
    [24, 24, 6, 6, 0.1, 0.7],   # C: class 1, kept
    [20, 4, 4, 4, 0.1, 0.2],    # D: under the 0.25 threshold
], dtype=np.float32).T[None]  # [1, 6, 4]
const = numpy_helper.from_array(anchors, "anchors")
nodes = [
    helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),
    helper.make_node("Mul", ["m", "zero"], ["z"]),
    helper.make_node("Add", ["anchors", "z"], ["output0"]),
]
zero = numpy_helper.from_array(np.array(0, dtype=np.float32), "zero")
g = helper.make_graph(nodes, "yolo",
                      [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
                      [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 4])],
                      [const, zero])
save(g, "yolo.onnx")

rng = np.random.default_rng(7)
inits, nodes, prev, ch = [], [], "images", 3
for i, co in enumerate([16, 32, 32, 32]):
    w = numpy_helper.from_array((rng.standard_normal((co, ch, 3, 3)) * 0.1).astype(np.float32), f"cw{i}")
    inits.append(w)
    nodes.append(helper.make_node("Conv", [prev, f"cw{i}"], [f"c{i}"], pads=[1, 1, 1, 1], strides=[2, 2] if i else [1, 1]))
    nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
    prev, ch = f"r{i}", co
nodes.append(helper.make_node("GlobalAveragePool", [prev], ["gap"]))
nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
inits.append(numpy_helper.from_array((rng.standard_normal((ch, 10)) * 0.1).astype(np.float32), "fw"))
nodes.append(helper.make_node("MatMul", ["flat", "fw"], ["logits"]))
g = helper.make_graph(nodes, "conv",
                      [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 224, 224])],
                      [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
save(g, "conv.onnx")
