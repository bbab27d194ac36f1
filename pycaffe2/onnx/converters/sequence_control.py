"""Converters of ONNX's control flow: If (pycaffe2's If), Loop and Scan (pycaffe2's Loop and
Scan ops, which run a body net per iteration).

Bodies and branches are translated by `ctx.subgraph` (pycaffe2/onnx/subgraph.py). The
outer names a sub-graph reads become inputs of the control op, and join the node's
inputs, so the core folds the node only when they are known too and counts them among
its dependencies."""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.converters.sequence import named_outputs
from pycaffe2.onnx.registry import Unsupported, converter
from pycaffe2.proto import caffe2_pb2


def _join_inputs(node, reads: list[str]) -> None:
    node.inputs.extend(name for name in reads if name not in node.inputs)


def _branch(ctx, node, key: str, outputs: list[str]):
    graph = node.attr(key)
    if graph is None:
        raise Unsupported(f"no {key}")
    if len(graph.output) != len(node.outputs):
        raise Unsupported(f"{key} has {len(graph.output)} outputs, the node {len(node.outputs)}")
    net, reads = ctx.subgraph(graph, [], f"{node.name or 'If'}.{key}")
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
    net, reads = ctx.subgraph(body, formal, f"{node.name or 'Loop'}.body", shapes)
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
    net, reads = ctx.subgraph(body, formal, f"{node.name or 'Scan'}.body", shapes)
    ctx.op("Scan", [*leading, *reads], named_outputs(node, ctx), body=net, body_inputs=formal, **args)
    _join_inputs(node, reads)


@converter("Scan", since=9)
def _scan9(node, ctx):
    _scan(node, ctx, list(node.inputs), "scan_input_directions", 0)


@converter("Scan", since=8)
def _scan8(node, ctx):
    lengths = node.input(0) or ctx.constant(np.zeros(0, np.int32))
    _scan(node, ctx, [lengths, *node.inputs[1:]], "directions", 1)
