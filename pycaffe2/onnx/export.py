"""NetDef -> ONNX: a predict net and its init net as one ONNX ModelProto.

    from pycaffe2.onnx.export import export_model
    model = export_model(predict_net, init_net, {"data": (1, 3, 224, 224)})

The init net runs once (seeded: its random fills become fixed values) and every blob
the predict net reads from it becomes an initializer, of whatever dtype. The predict
net then runs once, op by op, on zeros of the input shapes (or on `inputs`), which
gives every version of every blob its shape and dtype, and the values of those computed
from constants only. Each op goes through its converter (export_ops.py, export_nn.py);
in-place writes become new names (single assignment: the last write of a blob keeps
the blob's name unless that name is a graph input). Ops computed from constants only
(fills, a Reshape of a weight, ...) are folded into initializers. Every op that cannot
be exported is listed at once in one ConversionError; the model passes
`onnx.checker.check_model(full_check=True)` before it is returned.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from pycaffe2.errors import ConversionError, PyCaffe2Error
from pycaffe2.onnx import export_nn, export_ops  # noqa: F401 (they register the converters)
from pycaffe2.onnx.export_files import INSTALL_HINT
from pycaffe2.onnx.export_graph import EXPORTERS, Graph, OpView, Unexportable, Value
from pycaffe2.proto import caffe2_pb2

DEFAULT_OPSET, MIN_OPSET, MAX_OPSET = 17, 13, 21
RANDOM_OPS = frozenset({"GaussianFill", "UniformFill", "UniformIntFill", "UniqueUniformFill",
                        "XavierFill", "MSRAFill", "Dropout"})
SIDE_EFFECT_ONLY = frozenset({"Print"})  # no outputs, nothing ONNX computes: left out
_PROTOBUF_LIMIT = 2**31 - 2**20  # a little room for the graph itself
_FOLD_LIMIT = 1 << 24  # elements: a larger constant is computed by ONNX nodes instead


def import_onnx():
    """The onnx package, or a PyCaffe2Error saying how to install it."""
    try:
        import onnx
        from onnx import helper, numpy_helper  # noqa: F401
    except ImportError as exc:
        raise ConversionError(f"ONNX support needs the onnx package ({exc}): {INSTALL_HINT}") from None
    return onnx


def export_model(predict_net: caffe2_pb2.NetDef, init_net=None, input_shapes=None, *, inputs=None,
                 outputs=None, opset: int = DEFAULT_OPSET, check: bool = True, name: str | None = None):
    """An onnx.ModelProto computing `predict_net` after `init_net`.

    `init_net`: a NetDef, or a mapping of blob name -> array (weights), or None.
    `input_shapes`: blob -> dims, or -> (dims, dtype) as netfile.Model.input_shapes holds
    them, for every blob the predict net reads that the init net does not make; a blob
    named here is a graph input even when the init net fills it. `inputs`: blob -> array,
    instead of (or beside) shapes, to trace with real values. `outputs`: the graph
    outputs (default: the predict net's external_output). `opset`: 13 to 21."""
    onnx = import_onnx()
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConversionError(f"opset {opset} is not supported for export (choose {MIN_OPSET} to {MAX_OPSET})")
    weights = _init_values(init_net)
    feeds = _feeds(predict_net, weights, input_shapes or {}, inputs or {})
    for blob in feeds:
        weights.pop(blob, None)
    outputs = list(outputs if outputs is not None else predict_net.external_output)
    if not outputs:
        raise ConversionError(f"net '{predict_net.name}' names no external_output: say which blobs the "
                          "ONNX graph returns (outputs=[...])")
    builder = _Builder(onnx, predict_net, weights, feeds, opset)
    builder.trace()
    builder.convert(outputs)
    model = builder.model(outputs, name or predict_net.name or "pycaffe2_net")
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    if size >= _PROTOBUF_LIMIT:  # one protobuf message cannot hold it; external data is not written
        raise ConversionError(f"the model's initializers hold {size / 2**30:.1f} GiB, past protobuf's "
                              "2 GiB for one message")
    if check:
        check_model(model)
    return model


def check_model(model) -> None:
    onnx = import_onnx()
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ConversionError(f"the exported model fails onnx.checker: {_first_lines(str(exc))}") from None


def save_model(model, path) -> None:
    """Write `model` to `path` atomically (a temporary file beside it, then renamed)."""
    import os
    import tempfile
    path = Path(path)
    data = model.SerializeToString()
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except OSError as exc:
        if "temp" in locals() and os.path.exists(temp):
            os.unlink(temp)
        raise ConversionError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _first_lines(text: str, count: int = 3) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[:count])


# ---------------------------------------------------------------- weights and inputs

def _init_values(init_net) -> dict[str, np.ndarray]:
    if init_net is None:
        return {}
    if not isinstance(init_net, caffe2_pb2.NetDef):
        return {name: np.asarray(value) for name, value in dict(init_net).items()}
    from pycaffe2.executor import Workspace
    ws = Workspace("onnx_export_init", seed=0)
    on_cpu = init_net
    if _off_cpu(init_net) or any(on_cpu_op(op) is not op for op in init_net.op):
        on_cpu = caffe2_pb2.NetDef()  # a copy only then: a CPU net's random fills stay as seeded
        on_cpu.CopyFrom(init_net)
        on_cpu.ClearField("device_option")
        del on_cpu.op[:]
        on_cpu.op.extend(on_cpu_op(op) for op in init_net.op)
    try:
        ws.RunNetOnce(on_cpu)
    except PyCaffe2Error as exc:
        raise ConversionError(f"the init net failed to run: {exc}") from None
    return {name: value for name, value in ws.blobs.items() if isinstance(value, np.ndarray)}


def on_cpu_op(op):
    """A copy of `op` placed on the CPU (the values are the same on every device), a
    cross-device copy made a plain Copy; `op` itself when it names no device."""
    if not _off_cpu(op) and op.type not in _CROSS_DEVICE:
        return op
    copy = caffe2_pb2.OperatorDef()
    copy.CopyFrom(op)
    copy.ClearField("device_option")
    if copy.type in _CROSS_DEVICE:
        copy.type = "Copy"
    return copy


_CROSS_DEVICE = ("CopyCPUToGPU", "CopyGPUToCPU")


def _off_cpu(owner) -> bool:
    return owner.HasField("device_option") and owner.device_option.device_type != caffe2_pb2.PROTO_CPU


def _shape_spec(name: str, spec):
    """(dims, dtype) from dims or (dims, dtype)."""
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], str):
        dims, dtype = spec
    else:
        dims, dtype = spec, "float32"
    try:
        return tuple(int(d) for d in dims), np.dtype(dtype)
    except (TypeError, ValueError):
        raise ConversionError(f"input shape of '{name}': expected dims or (dims, dtype), got {spec!r}") from None


def _feeds(net, weights: dict, input_shapes: dict, inputs: dict) -> dict[str, np.ndarray]:
    """Every graph input's tracing value: `inputs`, else zeros of its declared shape."""
    from pycaffe2.files import check_alloc
    read = _read_before_written(net)
    feeds = {name: np.asarray(value) for name, value in inputs.items()}
    for name, spec in input_shapes.items():
        if name not in feeds:
            dims, dtype = _shape_spec(name, spec)
            check_alloc(dims, dtype, f"input '{name}'")
            feeds[name] = np.zeros(dims, dtype)
    missing = [name for name in read if name not in weights and name not in feeds]
    if missing:
        listed = ", ".join(repr(m) for m in missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        hint = f"give data inputs input_shapes (--input-shape {missing[0]}=d0,d1,...)"
        raise ConversionError(f"no shape for input(s) {listed}: {hint}" + ("" if len(missing) == 1 else
                              ", and the weights an init net"))
    unread = [name for name in feeds if name not in read]
    if unread:
        raise ConversionError(f"input shape given for {', '.join(repr(u) for u in unread)}, which net "
                          f"'{net.name}' never reads before writing")
    return {name: feeds[name] for name in read if name in feeds}


def _read_before_written(net) -> list[str]:
    written, read = set(), {}
    for op in net.op:
        for name in op.input:
            if name not in written:
                read.setdefault(name, None)
        written.update(op.output)
    return list(read)


# ---------------------------------------------------------------- the single-assignment graph

class _Builder:
    def __init__(self, onnx, net, weights: dict, feeds: dict, opset: int):
        from onnx import helper, numpy_helper
        self.onnx, self.net, self.opset = onnx, net, opset
        read = set(_read_before_written(net))
        self.weights = {name: value for name, value in weights.items() if name in read}
        self.feeds = feeds
        self.versions: dict[str, int] = {}  # blob -> its current version while walking
        self.last: dict[str, int] = {}  # blob -> its final version
        for op in net.op:
            for name in op.output:
                self.last[name] = self.last.get(name, 0) + 1
        taken = {*read, *self.last, *(f"{n}__{v}" for n, last in self.last.items() for v in range(last + 1))}
        self.graph = Graph(helper, numpy_helper, opset, taken)
        self.values: dict[tuple[str, int], Value] = {}
        for name, value in {**self.weights, **feeds}.items():
            self.values[(name, 0)] = Value(name, value.shape, value.dtype,
                                           value if name in self.weights else None)
        self.produced: list[list[Value]] = []  # per op: its outputs' traced Values
        self.errors: list[str] = []

    def onnx_name(self, blob: str, version: int) -> str:
        if version == 0 or (version == self.last.get(blob) and blob not in self.feeds and blob not in self.weights):
            return blob
        return f"{blob}__{version}"

    # ------------------------------------------------------------ tracing
    def trace(self) -> None:
        from pycaffe2.executor import Workspace
        ws = Workspace("onnx_export_trace", seed=0)
        for name, value in {**self.weights, **self.feeds}.items():
            ws.FeedBlob(name, value)
        inputs_of, versions = [], {}
        for index, op in enumerate(self.net.op):
            read = [self.values.get((name, versions.get(name, 0))) for name in op.input]
            inputs_of.append(read)
            if not op.output and op.type in SIDE_EFFECT_ONLY:
                self.produced.append([])
                continue
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ws.RunOperatorOnce(on_cpu_op(op))
            except PyCaffe2Error as exc:
                raise ConversionError(f"op {index} ({op.type}) failed while tracing the net on the input "
                                  f"shapes: {_first_lines(str(exc), 2)}") from None
            constant = op.type not in RANDOM_OPS and all(v is not None and v.value is not None for v in read)
            outs = []
            for name in op.output:
                versions[name] = versions.get(name, 0) + 1
                blob = ws.blobs.get(name)
                if not isinstance(blob, np.ndarray):
                    outs.append(None)
                    continue
                known = blob.copy() if constant and blob.size <= _FOLD_LIMIT else None
                value = Value(self.onnx_name(name, versions[name]), blob.shape, blob.dtype, known)
                self.values[(name, versions[name])] = value
                outs.append(value)
            self.produced.append(outs)
        self._inputs_of = inputs_of

    # ------------------------------------------------------------ converting
    def convert(self, outputs: list[str]) -> None:
        from pycaffe2.schema import get_schema
        from pycaffe2.schema.bind import bind_args
        used = self._used(set(outputs))
        for index, op in enumerate(self.net.op):
            outs = self.produced[index]
            if not op.output and op.type in SIDE_EFFECT_ONLY:
                continue
            wanted = used[index]
            problem = self._convert_one(index, op, outs, wanted, get_schema, bind_args)
            if problem:
                self.errors.append(f"op {index} ({op.type}): {problem}")
        if self.errors:
            count = len(self.errors)
            raise ConversionError(f"net '{self.net.name}': {count} op{'s' if count != 1 else ''} cannot be "
                              "exported to ONNX:\n  " + "\n  ".join(self.errors))

    def _convert_one(self, index, op, outs, wanted, get_schema, bind_args) -> str | None:
        ins = self._inputs_of[index]
        if any(v is None for v in ins):
            bad = [name for name, v in zip(op.input, ins) if v is None]
            return f"input(s) {', '.join(repr(b) for b in bad)} hold no tensor ONNX can carry"
        if any(v is None for v, w in zip(outs, wanted) if w):
            return "an output it makes (read later) is not a tensor"
        if all(v.value is not None for v, w in zip(outs, wanted) if w) and op.type not in RANDOM_OPS:
            for value, w in zip(outs, wanted):  # computed from constants only: an initializer
                if w:
                    self.graph.constant(value.value, name=value.name)
            return None
        schema = get_schema(op.type)
        if schema is None:
            return "unknown op type"
        converter = EXPORTERS.get(op.type) or EXPORTERS.get(schema.type)  # an alias (Conv2D) as its op
        if converter is None:
            return "no ONNX conversion for this op type"
        view = OpView(index, schema.type, bind_args(schema, op), list(ins),
                      [v if v is not None else Value("", (), np.dtype("float32")) for v in outs],
                      wanted, self.opset)
        before = len(self.graph.nodes), len(self.graph.initializers)
        try:
            converter(view, self.graph)
        except Unexportable as exc:
            del self.graph.nodes[before[0]:], self.graph.initializers[before[1]:]
            return str(exc)
        made = {o for node in self.graph.nodes[before[0]:] for o in node.output}
        made |= {t.name for t in self.graph.initializers[before[1]:]}
        missing = [i for i, (v, w) in enumerate(zip(view.outputs, wanted)) if w and v.name not in made]
        if missing:
            del self.graph.nodes[before[0]:], self.graph.initializers[before[1]:]
            names = ", ".join(f"{i} ('{op.output[i]}')" for i in missing)
            return f"output {names} is read later, and its ONNX conversion does not make it"
        return None

    def _used(self, outputs: set[str]) -> list[list[bool]]:
        """Per op, per output: is this version read by a later op or returned by the graph?"""
        readers: set[tuple[str, int]] = set()
        versions: dict[str, int] = {}
        for op in self.net.op:
            readers.update((name, versions.get(name, 0)) for name in op.input)
            for name in op.output:
                versions[name] = versions.get(name, 0) + 1
        self._final = dict(versions)
        used, versions = [], {}
        for op in self.net.op:
            flags = []
            for name in op.output:
                versions[name] = versions.get(name, 0) + 1
                flags.append((name, versions[name]) in readers
                             or (name in outputs and versions[name] == self._final[name]))
            used.append(flags)
        return used

    # ------------------------------------------------------------ the model
    def model(self, outputs: list[str], name: str):
        helper = self.graph.helper
        referenced = {blob for node in self.graph.nodes for blob in node.input}
        for blob, value in self.weights.items():  # those a conversion reshaped are left out
            if blob in referenced or blob in outputs:
                self.graph.constant(value, name=blob)
        graph_inputs = [_info(helper, blob, value.shape, value.dtype) for blob, value in self.feeds.items()]
        graph_outputs = []
        for blob in outputs:
            version = self._final.get(blob, 0)
            value = self.values.get((blob, version))
            if value is None:
                raise ConversionError(f"output '{blob}': no such tensor in net '{self.net.name}'")
            if version == 0:  # an input or weight returned as it is: ONNX wants a node's output
                value = Value(self.graph.one("Identity", [value.name], self.graph.fresh(blob)),
                              value.shape, value.dtype)
            graph_outputs.append(_info(helper, value.name, value.shape, value.dtype))
        graph = helper.make_graph(self.graph.nodes, name, graph_inputs, graph_outputs, self.graph.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="pycaffe2")
        model.ir_version = helper.find_min_ir_version_for(opsets)
        return model


def _info(helper, name: str, shape, dtype):
    try:
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    except (KeyError, TypeError, ValueError):
        raise ConversionError(f"tensor '{name}' has dtype {dtype}, which ONNX has no type for") from None
    return helper.make_tensor_value_info(name, elem, list(shape))
