"""A benchmark-only NetDef -> ONNX converter, so ONNX Runtime can run the bundled models.

It covers exactly the ops that LeNet, SqueezeNet 1.1 and ResNet-50 use (Conv,
SpatialBN in test mode, Relu, MaxPool, AveragePool, FC, Sum, Concat, Dropout in
test mode, Softmax, Flatten, Reshape with a `shape` arg), NCHW only, and refuses
anything else. It is not pycaffe2's ONNX exporter (that is a later issue): it
needs every blob's shape from one run of the net (`shapes`), so that windows,
Caffe's ceil-mode pooling (legacy_pad 3) included, become explicit ONNX pads
through the same `window()` arithmetic the kernels use. Opset 11, whose Softmax
coerces its input to 2-D at `axis` as Caffe2's does. The benchmarks check its
outputs against pycaffe2's on every run. onnx and pycaffe2 are imported only
by the converter, so that a process that only runs a saved model through
`session` (benchmarks/memory.py's) holds no more than onnxruntime.
"""
from __future__ import annotations

import numpy as np

OPSET = 11


class _Graph:
    """Nodes and initializers, with each in-place write of a blob given a fresh ONNX name."""

    def __init__(self, weights: dict):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.version = [], {}
        self.initializers = [numpy_helper.from_array(np.ascontiguousarray(v), name) for name, v in weights.items()]

    def read(self, blob: str) -> str:
        count = self.version.get(blob, 0)
        return blob if count == 0 else f"{blob}__{count}"

    def write(self, blob: str) -> str:
        self.version[blob] = self.version.get(blob, -1) + 1
        return self.read(blob)

    def node(self, op_type: str, inputs: list, outputs: list, **attrs) -> None:
        self.nodes.append(self.helper.make_node(op_type, inputs, outputs, **attrs))

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(value, name))
        return name


def _pads(win, x_shape) -> list[int]:
    """Head and tail pads, each tail cut to what the last window reaches: Caffe's ceil mode
    pads the tail by a whole stride, which ONNX Runtime refuses once it reaches the kernel."""
    reached = [(out - 1) * stride + dilated - size - head for out, stride, dilated, size, head
               in zip(win.out, win.stride, win.dilated, x_shape[2:], win.head)]
    return [*win.head, *(max(0, min(tail, need)) for tail, need in zip(win.tail, reached))]


def _conv(graph, args, x, inputs, out, shapes):
    from pycaffe2.schema.inference.conv import window
    win = window(args, shapes[inputs[0]], shapes[inputs[1]][2:])
    graph.node("Conv", x, [out], kernel_shape=list(win.kernel), strides=list(win.stride),
               dilations=list(win.dilation), pads=_pads(win, shapes[inputs[0]]), group=args["group"])


def _pool(onnx_type):
    def convert(graph, args, x, inputs, out, shapes):
        if args.get("global_pooling"):
            return graph.node(f"Global{onnx_type}", x[:1], [out])
        from pycaffe2.schema.inference.conv import window
        win = window(args, shapes[inputs[0]])
        attrs = {"kernel_shape": list(win.kernel), "strides": list(win.stride),
                 "pads": _pads(win, shapes[inputs[0]])}
        if any(d != 1 for d in win.dilation):
            raise NotImplementedError(f"{onnx_type} with dilation (opset {OPSET} has none for AveragePool)")
        if onnx_type == "AveragePool":
            attrs["count_include_pad"] = int(bool(args["count_include_pad"]))
        graph.node(onnx_type, x[:1], [out], **attrs)
    return convert


def _spatial_bn(graph, args, x, inputs, out, shapes):
    if not args["is_test"]:
        raise NotImplementedError("SpatialBN in training mode")
    graph.node("BatchNormalization", x[:5], [out], epsilon=args["epsilon"])


def _fc(graph, args, x, inputs, out, shapes):
    w_shape = shapes[inputs[1]]
    if args["axis_w"] != 1 or len(w_shape) != 2:
        raise NotImplementedError("FC with a W of more than two dims")
    flat = x[0]
    if len(shapes[inputs[0]]) != 2 or args["axis"] != 1:
        flat = out + "__flat"
        graph.node("Flatten", [x[0]], [flat], axis=args["axis"])
    graph.node("Gemm", [flat, x[1], x[2]], [out], transB=1)


def _concat(graph, args, x, inputs, out, shapes):
    if args.get("add_axis"):
        raise NotImplementedError("Concat with add_axis")
    axis = args["axis"] if args.get("axis") is not None else 1
    graph.node("Concat", x, [out], axis=axis)


def _dropout(graph, args, x, inputs, out, shapes):
    if not args["is_test"]:
        raise NotImplementedError("Dropout in training mode")
    graph.node("Identity", x[:1], [out])


def _reshape(graph, args, x, inputs, out, shapes):
    if len(inputs) != 1 or not args.get("shape"):
        raise NotImplementedError("Reshape with its shape as an input")
    shape = graph.constant(out + "__shape", np.array(args["shape"], dtype=np.int64))
    graph.node("Reshape", [x[0], shape], [out])


CONVERTERS = {
    "Conv": _conv,
    "SpatialBN": _spatial_bn,
    "Relu": lambda graph, args, x, inputs, out, shapes: graph.node("Relu", x, [out]),
    "MaxPool": _pool("MaxPool"),
    "AveragePool": _pool("AveragePool"),
    "FC": _fc,
    "Sum": lambda graph, args, x, inputs, out, shapes: graph.node("Sum", x, [out]),
    "Concat": _concat,
    "Dropout": _dropout,
    "Softmax": lambda graph, args, x, inputs, out, shapes: graph.node("Softmax", x, [out], axis=args["axis"]),
    "Flatten": lambda graph, args, x, inputs, out, shapes: graph.node("Flatten", x, [out], axis=args["axis"]),
    "Reshape": _reshape,
}


def _extra_outputs_read(net, op_index: int) -> list[str]:
    """Outputs past the first of op `op_index` (Concat's split_info, Dropout's mask, Reshape's
    old shape) that a later op reads: this converter does not produce them."""
    op = net.op[op_index]
    later = {name for other in net.op[op_index + 1:] for name in other.input}
    return [name for name in op.output[1:] if name in later]


def to_onnx(net, weights: dict, shapes: dict, outputs: list[str]):
    """`net` (a predict NetDef) as an ONNX model: `weights` (name -> array, the blobs its
    init net made) become initializers, its other external inputs graph inputs, and
    `outputs` the graph outputs, in that order. `shapes`: every blob's shape in one run."""
    import onnx
    from onnx import helper

    from pycaffe2.schema import get_schema
    from pycaffe2.schema.bind import bind_args
    graph = _Graph({name: weights[name] for name in net.external_input if name in weights})
    inputs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shapes[name]))
              for name in net.external_input if name not in weights]
    for index, op in enumerate(net.op):
        if op.type not in CONVERTERS:
            raise NotImplementedError(f"op {index} ({op.type}): not among the ops this converter knows")
        if _order(op) != "NCHW":
            raise NotImplementedError(f"op {index} ({op.type}): order {_order(op)} (NCHW only)")
        if _extra_outputs_read(net, index):
            raise NotImplementedError(f"op {index} ({op.type}): a later op reads its second output")
        args = bind_args(get_schema(op.type), op)
        x = [graph.read(name) for name in op.input]
        CONVERTERS[op.type](graph, args, x, list(op.input), graph.write(op.output[0]), shapes)
    results = [helper.make_tensor_value_info(graph.read(name), onnx.TensorProto.FLOAT, list(shapes[name]))
               for name in outputs]
    model = helper.make_model(helper.make_graph(graph.nodes, net.name or "net", inputs, results,
                                                graph.initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="pycaffe2-bench")
    model.ir_version = 7  # opset 11's IR: old enough for every ONNX Runtime that knows opset 11
    onnx.checker.check_model(model)
    return model


def _order(op) -> str:
    for arg in op.arg:
        if arg.name == "order":
            return arg.s.decode()
    return "NCHW"


def session(model, threads: int, profile_prefix: str | None = None):
    """An ONNX Runtime CPU session on `model` (a ModelProto or a file's path) with every
    graph optimization, `threads` intra-op threads and sequential execution
    (profiling to `profile_prefix`*.json if given)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # idle workers sleep rather than spin on the cores the next contestant in this process needs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
