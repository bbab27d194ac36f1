"""Running ONNX models on pycaffe2: Caffe2's `caffe2.python.onnx.backend` in shape.

    rep = backend.prepare(model)          # a ModelProto (or a path via load_model)
    outputs = rep.run([x])                # or {name: array}; a named tuple of arrays
    rep.init_net, rep.predict_net         # the pycaffe2 NetDefs

The module itself is an ONNX backend (`prepare`, `run_model`, `run_node`,
`supports_device`, `is_compatible` at module level), so
`onnx.backend.test.BackendTest(pycaffe2.onnx.backend, __name__)` runs ONNX's
suite on it. A model whose converters need values known only at run time
(axes or shapes fed as graph inputs, say) is translated at its first run with
the fed values, and again only when a later run feeds different shapes or
different values of the inputs that were baked in.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx.backend.base import BackendRep, namedtupledict

from pycaffe2.errors import ConversionError, NetFileError, PyCaffe2Error
from pycaffe2.files import read_regular_file
from pycaffe2.onnx.checks import check_model, walk_graphs
from pycaffe2.onnx.registry import NeedValue, lookup, np_dtype
from pycaffe2.onnx.translate import Translation, model_opset, translate

_DEVICES = ("CPU",)


def load_model(path) -> onnx.ModelProto:
    """A ModelProto from a file, read under the file cap; NetFileError when it is not one.
    External data is refused: it would make a model file name other files to read."""
    data = read_regular_file(path, NetFileError)
    return _parse_model(data, str(path), NetFileError)


def _parse_model(data: bytes, model_file, error) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001  (protobuf's DecodeError and friends)
        raise error(f"not an ONNX model (or nested past protobuf's depth limit): {exc}", file=model_file) from None
    if not model.graph.node and not model.graph.output:
        raise error("not an ONNX model (no graph)", file=model_file)
    try:
        check_model(model, model_file)  # external data, depth, names: refused at load already
    except ConversionError as exc:
        raise error(exc.message, file=model_file, op_index=exc.op_index, op_type=exc.op_type) from None
    return model


class PyCaffe2Rep(BackendRep):
    """A prepared model: run it with `run(inputs)`."""

    def __init__(self, model: onnx.ModelProto, device: str = "CPU", model_file: str | None = None):
        self.model, self.device, self.model_file = model, device, model_file
        self._translation: Translation | None = None
        self._key = None
        graph = model.graph
        initializers = {t.name for t in graph.initializer}
        self._declared = {entry.name: _declared(entry) for entry in graph.input if entry.name not in initializers}
        try:
            self._use(translate(model, model_file=model_file), None)
        except NeedValue:
            self.inputs = [entry.name for entry in graph.input if entry.name not in initializers]
            self.outputs = [entry.name for entry in graph.output]

    def _use(self, translation: Translation, key) -> None:
        # the net is created before the rep takes the translation: a refusal changes nothing
        translation.workspace.CreateNet(translation.predict_net, overwrite=True)
        self._translation, self._key = translation, key
        self.inputs, self.outputs = translation.inputs, translation.outputs

    @property
    def init_net(self):
        return self._nets().init_net

    @property
    def predict_net(self):
        return self._nets().predict_net

    def _nets(self) -> Translation:
        if self._translation is None:
            raise ConversionError("the model's translation needs values known only when it runs "
                                  "(axes or shapes fed as inputs): run it once first", file=self.model_file)
        return self._translation

    def run(self, inputs, **kwargs):
        feeds = self._bind(inputs)
        translation = self._translation
        if translation is None or translation.traced:
            key = self._trace_key(feeds, translation)
            if translation is None or key != self._key:
                translation = translate(self.model, feeds=feeds, model_file=self.model_file)
                self._use(translation, self._trace_key(feeds, translation))
                return self._fetch(translation)  # the tracing run computed everything
        for name, value in feeds.items():
            translation.workspace.FeedBlob(name, value)
        translation.workspace.RunNet(translation.predict_net.name)
        return self._fetch(translation)

    def _bind(self, inputs) -> dict:
        """The fed arrays by input name, each checked against the type the model declares
        (PyCaffe2Error before anything is fed: a refused run changes nothing)."""
        if isinstance(inputs, dict):
            unknown = sorted(set(inputs) - set(self.inputs), key=repr)  # keys of any type
            if unknown:
                raise PyCaffe2Error(f"the model has no inputs {unknown[:5]} (its inputs: {self.inputs})")
            feeds = {name: inputs[name] for name in self.inputs if name in inputs}
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            if not isinstance(inputs, (list, tuple)):
                raise PyCaffe2Error(f"inputs are a list of arrays in the model's input order, a dict by "
                                    f"name or one array, not {type(inputs).__name__}")
            if len(inputs) > len(self.inputs):
                raise PyCaffe2Error(f"{len(inputs)} inputs fed, the model takes {len(self.inputs)}: {self.inputs}")
            feeds = dict(zip(self.inputs, inputs))
        missing = [name for name in self.inputs if name not in feeds]
        if missing:
            raise PyCaffe2Error(f"inputs {missing} are not fed")
        return {name: self._checked(name, value) for name, value in feeds.items()}

    def _checked(self, name: str, value) -> np.ndarray:
        try:
            array = np.asarray(value)
        except Exception as exc:  # noqa: BLE001  (ragged lists and objects NumPy refuses)
            raise PyCaffe2Error(f"input {name!r} is not an array: {type(exc).__name__}: {exc}") from None
        dtype, shape = self._declared.get(name, (None, None))
        if dtype is None and array.dtype.kind not in "biufc":
            raise PyCaffe2Error(f"input {name!r} is a {type(value).__name__} of {array.dtype}, not an array of "
                                "numbers or booleans")
        if isinstance(dtype, np.dtype) and array.dtype != dtype:
            raise PyCaffe2Error(f"input {name!r} is {array.dtype}, the model declares {dtype}")
        if isinstance(dtype, str) and array.dtype.kind not in "OSU":
            raise PyCaffe2Error(f"input {name!r} is {array.dtype}, the model declares strings")
        if shape is not None and (len(shape) != array.ndim or any(
                want is not None and want != got for want, got in zip(shape, array.shape))):
            declared = ["?" if dim is None else dim for dim in shape]
            raise PyCaffe2Error(f"input {name!r} has shape {list(array.shape)}, the model declares {declared}")
        return array

    @staticmethod
    def _trace_key(feeds: dict, translation: Translation | None):
        baked = translation.baked if translation is not None else frozenset()
        return (tuple((name, value.shape, value.dtype.str) for name, value in feeds.items()),
                tuple((name, hashlib.sha256(np.ascontiguousarray(feeds[name]).tobytes()).hexdigest())
                      for name in sorted(baked)))

    def _fetch(self, translation: Translation):
        values = [translation.workspace.FetchBlob(name) for name in translation.outputs]
        return namedtupledict("Outputs", translation.outputs)(*values)


def prepare(model, device: str = "CPU", **kwargs) -> PyCaffe2Rep:
    """A rep for `model` (a ModelProto, or a path to an .onnx file)."""
    model_file = None
    if isinstance(model, (str, Path)):
        model_file = str(model)
        model = load_model(model)
    elif isinstance(model, (bytes, bytearray, memoryview)):  # a serialized model
        model = _parse_model(bytes(model), None, ConversionError)
    elif not isinstance(model, onnx.ModelProto):
        raise ConversionError(f"prepare takes an onnx.ModelProto, its bytes or a path to an .onnx file, "
                              f"not {type(model).__name__}")
    if not supports_device(device):
        raise ConversionError(f"device '{device}' is not supported (pycaffe2's ONNX backend runs on "
                              f"{', '.join(_DEVICES)})", file=model_file)
    return PyCaffe2Rep(model, device, model_file)


def run_model(model, inputs, device: str = "CPU", **kwargs):
    return prepare(model, device, **kwargs).run(inputs)


def run_node(node, inputs, device: str = "CPU", outputs_info=None, **kwargs):
    """Run one NodeProto on `inputs` (a list in the node's input order, or a dict)."""
    from onnx import helper
    if isinstance(inputs, dict):
        feeds = {name: np.asarray(value) for name, value in inputs.items()}
    else:
        feeds = {name: np.asarray(value) for name, value in zip([n for n in node.input if n], inputs)}
    graph_inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
                    for name, value in feeds.items()]
    graph_outputs = [helper.make_empty_tensor_value_info(name) for name in node.output if name]
    graph = helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
    opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return prepare(model, device).run(feeds)


def _declared(entry):
    """(dtype, shape) an input's declaration fixes: dtype None when it says none (or
    one NumPy lacks), "string" for strings; shape None when the rank is not given,
    else a tuple with None for each dim without a fixed size."""
    if not entry.type.HasField("tensor_type"):
        return None, None
    tensor_type = entry.type.tensor_type
    dtype = "string" if tensor_type.elem_type == onnx.TensorProto.STRING else np_dtype(tensor_type.elem_type)
    shape = None
    if tensor_type.HasField("shape"):
        shape = tuple(dim.dim_value if dim.HasField("dim_value") and dim.dim_value >= 0 else None
                      for dim in tensor_type.shape.dim)
    return dtype, shape


def supports_device(device: str) -> bool:
    return str(device).split(":")[0].upper() in _DEVICES


def is_compatible(model, device: str = "CPU", **kwargs) -> bool:
    """Whether every node of `model` has a converter at its opset."""
    try:
        opset = model_opset(model)
        return supports_device(device) and all(
            node.domain in ("", "ai.onnx") and lookup(node.op_type, opset) is not None
            for graph, _, _ in walk_graphs(model.graph) for node in graph.node)
    except ConversionError:  # no opset, or subgraphs nested too deep
        return False


class Caffe2Backend:
    """Caffe2's class-shaped backend (`from caffe2.python.onnx.backend import Caffe2Backend as c2`),
    for ported scripts: the module's functions as class methods, plus `onnx_graph_to_caffe2_net`."""
    prepare = staticmethod(prepare)
    run_model = staticmethod(run_model)
    run_node = staticmethod(run_node)
    supports_device = staticmethod(supports_device)
    is_compatible = staticmethod(is_compatible)

    @staticmethod
    def onnx_graph_to_caffe2_net(model, device: str = "CPU", opset_version: int | None = None):
        """(init_net, predict_net) of a ModelProto, or of a bare GraphProto at `opset_version`
        (default: the installed onnx's newest)."""
        if isinstance(model, onnx.GraphProto):
            from onnx import helper
            opset = opset_version or onnx.defs.onnx_opset_version()
            model = helper.make_model(model, opset_imports=[helper.make_opsetid("", opset)])
        rep = prepare(model, device)
        return rep.init_net, rep.predict_net
