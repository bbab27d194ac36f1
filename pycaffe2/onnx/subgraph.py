"""Sub-graphs (If's branches, Loop's and Scan's bodies) translated to NetDefs.

A sub-graph is translated node by node like the main graph, in a translation state of
its own that shares the outer one's names, scratch workspace, constants and what is
known (so a body folds what depends on outer constants only), and keeps its own ops.
Its converters see shapes from ONNX's shape inference run on the body, given the
formal inputs' shapes and the outer values it reads. What it returns besides the net
is the outer names it reads, which the control op must take as inputs.
"""
from __future__ import annotations

import copy

import numpy as np

from pycaffe2.onnx.checks import tensor_array
from pycaffe2.onnx.context import Context
from pycaffe2.onnx.registry import NeedValue, Unsupported
from pycaffe2.onnx.translate import _translate_node, graph_info
from pycaffe2.proto import caffe2_pb2


def _sub_state(parent, graph, formal: list[str], formal_shapes: dict):
    """A translation state for `graph` inside `parent`'s translation."""
    state = copy.copy(parent)  # shares names, ws, deps, baked and constants
    state.info = {**parent.info, **graph_info(graph), **_inferred_info(parent, graph, formal_shapes)}
    state.known = parent.known - set(formal)
    state.ops, state.pending = [], []
    return state


def _free_names(graph, defined: set | None = None) -> list[str]:
    """The names `graph` (and the graphs nested in it) read from outside."""
    defined = set(defined or ()) | {entry.name for entry in [*graph.input, *graph.initializer]}
    free = []
    for node in graph.node:
        free += [name for name in node.input if name and name not in defined]
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs]:
                if sub.node:
                    free += _free_names(sub, defined)
        defined.update(node.output)
    return list(dict.fromkeys(free))


def _inferred_info(parent, graph, formal_shapes: dict) -> dict:
    """name -> (dtype, shape) inside `graph` by ONNX's shape inference, given the formal
    inputs' shapes and what the outer translation knows of the names it reads (small
    known values as initializers, so axes and shapes propagate)."""
    import onnx
    from onnx import helper, numpy_helper
    inputs, initializers = [], list(graph.initializer)
    for entry in graph.input:
        dtype, shape = formal_shapes.get(entry.name, (None, None))
        elem = entry.type.tensor_type.elem_type if entry.type.HasField("tensor_type") else 0
        if not elem and dtype is not None:  # a function body's inputs may leave the type open
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        if elem and shape is not None:
            entry = helper.make_tensor_value_info(entry.name, elem, list(shape))
        inputs.append(entry)
    for name in _free_names(graph):
        value = parent._array(name)  # not value(): a shape hint must not bake a fed value in
        dtype, shape = parent.dtype(name), parent.shape(name)
        if value is not None and value.size <= 64 and value.dtype.kind in "biuf":
            initializers.append(numpy_helper.from_array(value, name))
        elif dtype is not None and shape is not None:
            inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), list(shape)))
    body = helper.make_graph(graph.node, "body", inputs, graph.output, initializer=initializers)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", parent.opset)])
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001  (hints only: a body inference rejects is still translated)
        return {}
    return graph_info(inferred.graph)


def _traced(parent) -> bool:
    """Whether this is the traced translation (every fed input has its value)."""
    fed = [name for name, deps in parent.deps.items() if deps == frozenset({name})]
    return bool(fed) and parent.known.issuperset(fed)


def translate_subgraph(ctx, graph, formal: list[str], name: str,
                       formal_shapes: dict | None = None) -> tuple[caffe2_pb2.NetDef, list[str]]:
    """(the body net, the outer names it reads) of `graph`, whose inputs are `formal`
    (`formal_shapes`: their (dtype, shape) where known, hints for the body's converters)."""
    parent = ctx._state
    state = _sub_state(parent, graph, formal, formal_shapes or {})
    for tensor in graph.initializer:
        state.add_constant(tensor.name, tensor_array(tensor, f"{name}: initializer {tensor.name!r}"))
    inner = Context(state)
    for index, proto in enumerate(graph.node):
        try:
            _translate_node(proto, index, state, inner)
        except NeedValue as exc:
            if _traced(parent):
                raise Unsupported(f"{name}: a node needs a value that changes with each run of the "
                                  f"sub-graph ({exc})") from None
            raise
    outputs = [entry.name for entry in graph.output]
    made, reads = set(formal), []
    for op in state.ops:
        reads += [blob for blob in op.input if blob not in made]
        made.update(op.output)
    reads += [blob for blob in outputs if blob not in made]
    net = caffe2_pb2.NetDef(name=name, op=state.ops)
    reads = list(dict.fromkeys(reads))
    net.external_input.extend(formal + reads)
    net.external_output.extend(outputs)
    return net, reads
