"""ONNX ModelProto -> pycaffe2 init and predict NetDefs.

The translation walks the graph's nodes in order and hands each to its converter
(`registry.lookup`), which emits pycaffe2 ops through a `context.Context`. Every
node whose inputs are all known is run at once in a scratch workspace, so its
outputs' values are known to later converters (constant folding: axes computed
by Constant -> Cast -> Unsqueeze chains reach the op that needs them). With
`feeds` (the traced translation, done at a rep's first run when the static one
needed a value it did not have) the fed inputs are known too, so every node
runs and every value and shape is known; the names of the fed inputs whose
values went into the net are kept in `baked`, so the rep knows when a later run
needs a new translation. Every produced net is checked against the schemas.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np

from pycaffe2.errors import ConversionError, PyCaffe2Error
from pycaffe2.executor.workspace import Workspace
from pycaffe2.onnx.checks import check_model, schema_problem, tensor_array, walk_graphs
from pycaffe2.onnx.context import FILL_OPS, Context, fill_op
from pycaffe2.onnx.registry import MAX_OPSET, MIN_OPSET, NeedValue, Unsupported, decode_node, lookup, np_dtype
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.checker import check_net

# Ops whose outputs depend only on their input's shape, not its values.
_SHAPE_ONLY = frozenset({"Shape", "Size"})
_DEFAULT_DOMAINS = ("", "ai.onnx")
# Ops whose folded value would freeze one draw: they stay in the net.
_RANDOM = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
                     "Multinomial"})


@dataclass
class Translation:
    predict_net: caffe2_pb2.NetDef
    constants: dict     # name -> array: what the init net fills
    inputs: list        # the graph inputs a run feeds (initializers excluded), in order
    outputs: list       # the graph outputs, in order
    workspace: Workspace  # holds the constants (and, when traced, every value)
    traced: bool
    baked: frozenset    # fed inputs whose values the net depends on (traced only)

    @functools.cached_property
    def init_net(self) -> caffe2_pb2.NetDef:
        """The constants as GivenTensor*Fill ops (built on demand: the workspace holds
        them already, and a large model's fills take a while to build)."""
        init_net = caffe2_pb2.NetDef(name=f"{self.predict_net.name}_init")
        init_net.op.extend(fill_op(name, array) for name, array in self.constants.items())
        init_net.external_output.extend(self.constants)
        return init_net


def model_opset(model, model_file=None) -> int:
    """The model's opset of the default domain (warns above MAX_OPSET)."""
    versions = [entry.version for entry in model.opset_import if entry.domain in _DEFAULT_DOMAINS]
    if not versions:
        raise ConversionError("the model imports no opset of the default ONNX domain", file=model_file)
    if len(set(versions)) > 1:
        raise ConversionError(f"the model imports the default ONNX domain at several opsets {versions[:4]}",
                              file=model_file)
    opset = versions[0]
    if opset < MIN_OPSET:
        raise ConversionError(f"opset {opset} is not an ONNX opset", file=model_file)
    if opset > MAX_OPSET:
        warnings.warn(f"{model_file or 'the model'}: opset {opset} is newer than pycaffe2's ONNX "
                      f"converters ({MAX_OPSET}); translating it as opset {MAX_OPSET}", stacklevel=3)
    return min(opset, MAX_OPSET)


class _State:
    """The translation in progress: the scratch workspace and what is known."""

    def __init__(self, opset, model_file, names, info):
        self.opset, self.model_file = opset, model_file
        self.names, self.counter = names, 0
        self.info = info                  # name -> (dtype or None, shape or None) from ONNX
        self.ws = Workspace("onnx_translation")
        self.known: set = set()           # names whose values are in self.ws
        self.deps: dict = {}              # name -> fed inputs its value comes from
        self.baked: set = set()
        self.constants, self.ops, self.pending = {}, [], []
        self.model_opset = opset          # the opset the model imports (ONNX's schemas know newer ones)
        self.traced = False               # every input fed: every node runs
        self.folded: set = set()          # ids of ops run on constant inputs alone

    def fresh(self, hint: str) -> str:
        while True:
            self.counter += 1
            name = f"__onnx_{hint}_{self.counter}"
            if name not in self.names:
                self.names.add(name)
                return name

    def emit(self, op) -> None:
        self.pending.append(op)

    def add_constant(self, name: str, array: np.ndarray) -> None:
        if array.dtype not in FILL_OPS:
            raise Unsupported(f"a constant of dtype {array.dtype} (pycaffe2's fills hold "
                              f"{', '.join(sorted(str(d) for d in FILL_OPS))})")
        self.constants[name] = array
        self.ws.FeedBlob(name, array)
        self.known.add(name)
        self.deps[name] = frozenset()

    def feed(self, name: str, array: np.ndarray) -> None:
        self.ws.FeedBlob(name, array)
        self.known.add(name)
        self.deps[name] = frozenset({name})

    def _array(self, name):
        value = self.ws.blobs.get(name) if name in self.known else None
        return value if isinstance(value, np.ndarray) else None

    def value(self, name: str):
        value = self._array(name)
        if value is not None:
            self.baked |= self.deps.get(name, frozenset())
        return value

    def shape(self, name: str):
        value = self._array(name)
        if value is not None:
            return tuple(value.shape)
        return self.info.get(name, (None, None))[1]

    def dtype(self, name: str):
        value = self._array(name)
        if value is not None:
            return value.dtype
        return self.info.get(name, (None, None))[0]


def _value_info(model) -> dict:
    """name -> (dtype, shape) from the graph's declared types and ONNX shape inference."""
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001  (inference is a hint: a model it rejects is still translated)
        inferred = model
    return graph_info(inferred.graph)


def graph_info(graph) -> dict:
    """name -> (dtype, shape) of a graph's declared inputs, outputs and value_info."""
    info = {}
    for entry in [*graph.input, *graph.value_info, *graph.output]:
        if not entry.type.HasField("tensor_type"):
            continue
        tensor_type = entry.type.tensor_type
        shape = None
        if tensor_type.HasField("shape"):
            # a negative dim (a hostile declaration) is as good as an unknown one
            shape = tuple(dim.dim_value if dim.HasField("dim_value") and dim.dim_value >= 0 else None
                          for dim in tensor_type.shape.dim)
        info[entry.name] = (np_dtype(tensor_type.elem_type), shape)
    return info


def _all_names(graph, names: set) -> set:
    for current, _, _ in walk_graphs(graph):
        for entry in [*current.input, *current.output, *current.value_info, *current.initializer]:
            names.add(entry.name)
        for node in current.node:
            names.update(node.input)
            names.update(node.output)
    return names


def _located(message: str, state: _State, node) -> ConversionError:
    return ConversionError(message, file=state.model_file, op_index=node.index, op_type=node.describe())


def translate(model, *, feeds: dict | None = None, model_file: str | None = None) -> Translation:
    """Translate `model` (a ModelProto). Raises NeedValue when a converter needs a value
    known only at run time and `feeds` is None; ConversionError for what cannot be done."""
    opset = model_opset(model, model_file)
    graph = model.graph
    check_model(model, model_file)  # depth, names, external data: before anything walks the graph
    _check_converters(graph, opset, model_file)
    if graph.sparse_initializer:
        raise ConversionError("sparse initializers are not supported", file=model_file)
    state = _State(opset, model_file, _all_names(graph, set()), _value_info(model))
    state.traced = feeds is not None
    state.model_opset = next(entry.version for entry in model.opset_import if entry.domain in _DEFAULT_DOMAINS)
    initializers = set()
    for tensor in graph.initializer:
        try:
            array = tensor_array(tensor, f"initializer {tensor.name!r}")
            state.add_constant(tensor.name, array)
        except Unsupported as exc:
            prefix = "" if str(exc).startswith("initializer") else f"initializer {tensor.name!r}: "
            raise ConversionError(f"{prefix}{exc}", file=model_file) from None
        initializers.add(tensor.name)
    inputs = [entry.name for entry in graph.input if entry.name not in initializers]
    for name in inputs:
        if feeds is not None:
            state.feed(name, feeds[name])
        else:
            state.deps[name] = frozenset({name})
    ctx = Context(state)
    for index, proto in enumerate(graph.node):
        try:
            _translate_node(proto, index, state, ctx)
        except NeedValue as exc:
            if feeds is None:
                raise
            # traced, every input is known: a value still missing is one no op made
            raise ConversionError(f"a value is still unknown with every input fed: {exc}", file=model_file,
                                  op_index=index, op_type=proto.op_type) from None
    outputs = [entry.name for entry in graph.output]
    _hoist_folded(state, outputs)
    produced = {out for op in state.ops for out in op.output} | set(inputs) | set(state.constants)
    missing = [name for name in outputs if name not in produced]
    if missing:
        raise ConversionError(f"graph outputs {missing} are made by no node", file=model_file)
    name = graph.name or "onnx_model"
    predict_net = caffe2_pb2.NetDef(name=name)
    predict_net.op.extend(state.ops)
    predict_net.external_input.extend(inputs + [t.name for t in graph.initializer])
    predict_net.external_output.extend(outputs)
    problems = check_net(predict_net, known_blobs=set(state.constants) | set(inputs))
    if problems:
        listed = "\n  ".join(str(problem) for problem in problems)
        raise ConversionError(f"the translated net breaks pycaffe2's schemas (a converter's fault):\n  {listed}",
                              file=model_file)
    return Translation(predict_net, state.constants, inputs, outputs, state.ws, feeds is not None,
                       frozenset(state.baked))


def _nodes(graph):
    """The graph's nodes and those of its subgraphs (check_model has bounded the depth)."""
    for current, _, _ in walk_graphs(graph):
        yield from current.node


def _hoist_folded(state: _State, outputs: list) -> None:
    """Ops run on constants alone leave the predict net; the values they made that the rest
    reads become constants of the init net (weights made by ConstantOfShape, scales
    unsqueezed at translation), so a run does not make them again and the inference
    transforms see them as parameters. A value no fill holds keeps every op in place."""
    kept = [op for op in state.ops if id(op) not in state.folded]
    if len(kept) == len(state.ops):
        return
    needed = {name for op in kept for name in op.input} | set(outputs)
    hoisted = {}
    for op in state.ops:
        for name in op.output if id(op) in state.folded else ():
            if name in needed:
                value = state.ws.blobs.get(name)
                if not isinstance(value, np.ndarray) or value.dtype not in FILL_OPS:
                    return
                hoisted[name] = value
    state.constants.update(hoisted)
    state.ops = kept


def _check_converters(graph, opset: int, model_file) -> None:
    """Every node type without a converter, at once."""
    missing = sorted({repr(node.op_type) if node.domain in _DEFAULT_DOMAINS else repr(f"{node.domain}.{node.op_type}")
                      for node in _nodes(graph)
                      if node.domain not in _DEFAULT_DOMAINS or lookup(node.op_type, opset) is None})
    if missing:
        shown = ", ".join(name.strip("'\"") if name[1:-1].isidentifier() else name for name in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise ConversionError(f"no pycaffe2 converter for ONNX op(s) {shown}{more} at opset {opset}",
                              file=model_file)


def _translate_node(proto, index: int, state: _State, ctx: Context) -> None:
    try:
        problem = schema_problem(proto, state.model_opset)  # arity, required attributes, attribute types
        if problem:
            raise Unsupported(problem)
        node = decode_node(proto, state.opset, index)
    except Unsupported as exc:
        where = f"{proto.op_type} {proto.name!r}" if proto.name else proto.op_type
        raise ConversionError(str(exc), file=state.model_file, op_index=index, op_type=where) from None
    convert = lookup(node.op_type, state.opset)
    ctx.node, state.pending = node, []
    try:
        convert(node, ctx)
    except Unsupported as exc:
        raise _located(str(exc), state, node) from None
    except NeedValue:
        if state.known.issuperset(name for name in node.inputs if name):
            raise _located("a converter needed a value that is not a tensor", state, node) from None
        raise
    except PyCaffe2Error as exc:  # an op refusing the args a bad attribute gave it
        raise _located(f"cannot be translated: {exc}", state, node) from None
    except Exception as exc:  # noqa: BLE001  (a converter tripping on a bad attribute: its bug, named)
        missing = schema_problem(proto, state.model_opset, required=True)
        raise _located(missing or f"the converter for {node.op_type} failed on this node: "
                       f"{type(exc).__name__}: {exc}", state, node) from None
    pending, state.pending = state.pending, []
    state.ops.extend(pending)
    deps = frozenset() if node.op_type in _SHAPE_ONLY else frozenset().union(
        *(state.deps.get(name, frozenset()) for name in node.inputs if name))
    written = [out for op in pending for out in op.output]
    for name in written:
        state.deps[name] = deps
    # Folding runs a node at prepare(); a Loop of constant trip count 10**12 would hang it, so
    # nodes with subgraphs run only in the traced translation (which is the model's run).
    foldable = state.traced or not any(a.HasField("g") or len(a.graphs) for a in proto.attribute)
    if pending and foldable and state.known.issuperset(n for n in node.inputs if n):
        try:
            state.ws.RunOperatorsOnce(pending)
        except Exception as exc:  # noqa: BLE001  (kernels' faults arrive as OpFailure; anything else, named)
            cause = str(exc) if isinstance(exc, PyCaffe2Error) else f"{type(exc).__name__}: {exc}"
            raise _located(f"fails on its {'fed' if deps else 'constant'} inputs: {cause}", state, node) from None
        state.known.update(written)
        if not deps and node.op_type not in _RANDOM:
            state.folded.update(id(op) for op in pending)
