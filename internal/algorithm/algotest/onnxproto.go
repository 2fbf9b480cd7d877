package algotest

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The graphs below are written as ONNX's protobuf directly (field numbers
// are onnx.proto's), so that tests using them need no Python. They are the
// graphs make_onnx.py builds where the two overlap.

// TinyClassifier is make_onnx.py's classifier.onnx: input "images" float32
// [1,3,8,8], output "logits" [1,3] = m*[-4,0,4] + [2,0,-2] with m the
// input's mean (opset 13). A dark image is class 0, a bright one class 2.
func TinyClassifier() []byte {
	return model(graph("classifier", meanNodes("logits", "w"),
		[][]byte{floats("w", []int64{1, 3}, -4, 0, 4), floats("b", []int64{3}, 2, 0, -2), int64s("ax", 1)},
		valueInfo("images", 1, 3, 8, 8), valueInfo("logits", 1, 3)))
}

// HungryClassifier has TinyClassifier's input and a classification output
// "logits" [1,classes]: the input's mean repeated classes times (Expand),
// so that a run allocates 4×classes bytes for its output, and more for the
// runtime's copies of it. It is the model that runs out of memory.
func HungryClassifier(classes int64) []byte {
	nodes := [][]byte{
		node("ReduceMean", []string{"images"}, "m", attrInts("axes", 1, 2, 3), attrInt("keepdims", 0)),
		node("Unsqueeze", []string{"m", "ax"}, "m2"),
		node("Expand", []string{"m2", "shape"}, "logits"),
	}
	return model(graph("hungry", nodes, [][]byte{int64s("ax", 1), int64s("shape", 1, classes)},
		valueInfo("images", 1, 3, 8, 8), valueInfo("logits", 1, classes)))
}

func meanNodes(out, w string) [][]byte {
	return [][]byte{
		node("ReduceMean", []string{"images"}, "m", attrInts("axes", 1, 2, 3), attrInt("keepdims", 0)),
		node("Unsqueeze", []string{"m", "ax"}, "m2"),
		node("MatMul", []string{"m2", w}, "mw"),
		node("Add", []string{"mw", "b"}, out),
	}
}

func cat(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func bytesField(n protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), v)
}

func str(n protowire.Number, s string) []byte { return bytesField(n, []byte(s)) }

func varint(n protowire.Number, v int64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, n, protowire.VarintType), uint64(v))
}

// model is a ModelProto: ir_version 1 (7), graph 7, opset_import 8 (version 2: 13).
func model(g []byte) []byte {
	return cat(varint(1, 7), bytesField(7, g), bytesField(8, varint(2, 13)))
}

// graph is a GraphProto: node 1, name 2, initializer 5, input 11, output 12.
func graph(name string, nodes, inits [][]byte, in, out []byte) []byte {
	var f [][]byte
	for _, n := range nodes {
		f = append(f, bytesField(1, n))
	}
	f = append(f, str(2, name))
	for _, t := range inits {
		f = append(f, bytesField(5, t))
	}
	return cat(append(f, bytesField(11, in), bytesField(12, out))...)
}

// node is a NodeProto: input 1, output 2, op_type 4, attribute 5.
func node(op string, in []string, out string, attrs ...[]byte) []byte {
	var f [][]byte
	for _, i := range in {
		f = append(f, str(1, i))
	}
	f = append(f, str(2, out), str(4, op))
	for _, a := range attrs {
		f = append(f, bytesField(5, a))
	}
	return cat(f...)
}

// attrInts and attrInt are AttributeProtos: name 1, i 3, ints 8, type 20 (INT 2, INTS 7).
func attrInts(name string, vs ...int64) []byte {
	f := [][]byte{str(1, name)}
	for _, v := range vs {
		f = append(f, varint(8, v))
	}
	return cat(append(f, varint(20, 7))...)
}

func attrInt(name string, v int64) []byte { return cat(str(1, name), varint(3, v), varint(20, 2)) }

// floats and int64s are TensorProtos: dims 1, data_type 2 (FLOAT 1, INT64 7), name 8, raw_data 9.
func floats(name string, dims []int64, vs ...float32) []byte {
	raw := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	var f [][]byte
	for _, d := range dims {
		f = append(f, varint(1, d))
	}
	return cat(append(f, varint(2, 1), str(8, name), bytesField(9, raw))...)
}

func int64s(name string, vs ...int64) []byte {
	raw := make([]byte, 8*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return cat(varint(1, int64(len(vs))), varint(2, 7), str(8, name), bytesField(9, raw))
}

// valueInfo is a ValueInfoProto of a float32 tensor: name 1, type 2 ->
// tensor_type 1 -> elem_type 1, shape 2 -> dim 1 -> dim_value 1.
func valueInfo(name string, dims ...int64) []byte {
	var shape [][]byte
	for _, d := range dims {
		shape = append(shape, bytesField(1, varint(1, d)))
	}
	return cat(str(1, name), bytesField(2, bytesField(1, cat(varint(1, 1), bytesField(2, cat(shape...))))))
}
