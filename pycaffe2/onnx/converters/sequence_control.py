"""Converters of ONNX's control flow: If (pycaffe2's If), Loop and Scan (pycaffe2's Loop and
Scan ops, which run a body net per iteration).

A sub-graph is translated node by node like the main graph, in a translation state of
its own that shares the outer one's names, scratch workspace, constants and what is
known (so a body folds what depends on outer constants only), and keeps its own ops.
The outer names a sub-graph reads become inputs of the control op, and join the node's
inputs, so the core folds the node only when they are known too and counts them among
its dependencies."""
from __future__ import annotations

import copy

import numpy as np

from pycaffe2.onnx import translate as core
from pycaffe2.onnx.context import Context
from pycaffe2.onnx.converters.sequence import named_outputs
from pycaffe2.onnx.registry import NeedValue, Unsupported, converter, np_dtype
from pycaffe2.proto import caffe2_pb2


def _graph_info(graph) -> dict:
    """name -> (dtype, shape) from a sub-graph's declared inputs, outputs and value_info."""
    info = {}
    for entry in [*graph.input, *graph.value_info, *graph.output]:
        if not entry.type.HasField("tensor_type"):
            continue
        tensor_type = entry.type.tensor_type
        shape = None
        if tensor_type.HasField("shape"):
            shape = tuple(dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim)
        info[entry.name] = (np_dtype(tensor_type.elem_type), shape)
    return info


def _sub_state(parent, graph, formal: list[str], formal_shapes: dict):
    """A translation state for `graph` inside `parent`'s translation."""
    state = copy.copy(parent)  # shares names, ws, deps, baked and constants
    state.info = {**parent.info, **_graph_info(graph), **_inferred_info(parent, graph, formal_shapes)}
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
    return _graph_info(inferred.graph)


def _traced(parent) -> bool:
    """Whether this is the traced translation (every fed input has its value)."""
    fed = [name for name, deps in parent.deps.items() if deps == frozenset({name})]
    return bool(fed) and parent.known.issuperset(fed)


def subgraph(ctx, graph, formal: list[str], name: str,
             formal_shapes: dict | None = None) -> tuple[caffe2_pb2.NetDef, list[str]]:
    """(the body net, the outer names it reads) of `graph`, whose inputs are `formal`
    (`formal_shapes`: their (dtype, shape) where known, hints for the body's converters)."""
    from onnx import numpy_helper
    parent = ctx._state  # the core has no sub-graph entry point yet
    state = _sub_state(parent, graph, formal, formal_shapes or {})
    for tensor in graph.initializer:
        state.add_constant(tensor.name, numpy_helper.to_array(tensor))
    inner = Context(state)
    for index, proto in enumerate(graph.node):
        try:
            core._translate_node(proto, index, state, inner)
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


def _join_inputs(node, reads: list[str]) -> None:
    node.inputs.extend(name for name in reads if name not in node.inputs)


def _branch(ctx, node, key: str, outputs: list[str]):
    graph = node.attr(key)
    if graph is None:
        raise Unsupported(f"no {key}")
    if len(graph.output) != len(node.outputs):
        raise Unsupported(f"{key} has {len(graph.output)} outputs, the node {len(node.outputs)}")
    net, reads = subgraph(ctx, graph, [], f"{node.name or 'If'}.{key}")
    for inner, outer in zip(list(net.external_output), outputs):
        net.op.append(caffe2_pb2.OperatorDef(type="Copy", input=[inner], output=[outer]))
    del net.external_output[:]
    net.external_output.extend(outputs)
    return net, reads


@converter("If")
def _if(node, ctx):
    outputs = [name or ctx.fresh("if_unused") for name in node.outputs]
    then_net, then_reads = _branch(ctx, node, "then_branch", outputs)
    else_net, else_reads = _branch(ctx, node, "else_branch", outputs)
    reads = list(dict.fromkeys(then_reads + else_reads))
    ctx.op("If", [node.input(0), *reads], outputs, then_net=then_net, else_net=else_net)
    _join_inputs(node, reads)


@converter("Loop")
def _loop(node, ctx):
    body = node.attr("body")
    formal = [entry.name for entry in body.input]
    if len(formal) < 2 or len(body.output) < len(formal) - 1:
        raise Unsupported(f"the body takes {len(formal)} inputs and gives {len(body.output)} outputs "
                          "(it needs the iteration number, the condition and the loop-carried values in, "
                          "the condition and the loop-carried values out)")
    carried = list(node.inputs[2:])
    if not all(carried):
        raise Unsupported("an omitted loop-carried input")
    # ranks only: a loop-carried value may change its size from one iteration to the next
    shapes = {formal[0]: (np.int64, ()), formal[1]: (np.bool_, ())}
    for name, value in zip(formal[2:], carried):
        shape = ctx.shape(value)
        if shape is not None:
            shapes[name] = (ctx.dtype(value), (None,) * len(shape))
    net, reads = subgraph(ctx, body, formal, f"{node.name or 'Loop'}.body", shapes)
    trips = node.input(0) or ctx.constant(np.zeros(0, np.int64))
    condition = node.input(1) or ctx.constant(np.zeros(0, np.bool_))
    ctx.op("Loop", [trips, condition, *carried, *reads], named_outputs(node, ctx), body=net, body_inputs=formal)
    _join_inputs(node, reads)


def _slice_shapes(ctx, formal, given, num_scan: int, axes, batched: int) -> dict:
    """The body's formal inputs' (dtype, shape) from the Scan's inputs: states as they
    are, scan inputs without their scan axis (batched: without the batch axis too)."""
    shapes, n_states = {}, len(formal) - num_scan
    for k, (name, value) in enumerate(zip(formal, given)):
        shape = ctx.shape(value)
        if shape is None:
            continue
        shape = shape[batched:]
        if k >= n_states:
            axis = axes[k - n_states] if k - n_states < len(axes) else 0
            if not -len(shape) <= axis < len(shape):
                continue
            shape = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
        shapes[name] = (ctx.dtype(value), shape)
    return shapes


def _scan(node, ctx, leading: list[str], directions_attr: str, batched: int):
    body = node.attr("body")
    formal = [entry.name for entry in body.input]
    num_scan = node.attr("num_scan_inputs")
    if num_scan is None or not 0 < num_scan <= len(formal):
        raise Unsupported(f"num_scan_inputs {num_scan} for a body of {len(formal)} inputs")
    args = {"num_scan_inputs": num_scan, "batched": batched, "scan_input_directions": node.attr(directions_attr, [])}
    for name in ("scan_input_axes", "scan_output_directions", "scan_output_axes"):
        if node.has_attr(name):
            args[name] = node.attr(name)
    shapes = _slice_shapes(ctx, formal, leading[batched:], num_scan, args.get("scan_input_axes", []), batched)
    net, reads = subgraph(ctx, body, formal, f"{node.name or 'Scan'}.body", shapes)
    ctx.op("Scan", [*leading, *reads], named_outputs(node, ctx), body=net, body_inputs=formal, **args)
    _join_inputs(node, reads)


@converter("Scan", since=9)
def _scan9(node, ctx):
    _scan(node, ctx, list(node.inputs), "scan_input_directions", 0)


@converter("Scan", since=8)
def _scan8(node, ctx):
    lengths = node.input(0) or ctx.constant(np.zeros(0, np.int32))
    _scan(node, ctx, [lengths, *node.inputs[1:]], "directions", 1)
