"""ONNX -> pycaffe2 converters for reductions and linear algebra: Reduce* (axes as
an attribute before opset 13/18 and as an optional input after, keepdims,
noop_with_empty_axes), ArgMax/ArgMin, Gemm, MatMul, Einsum and Det.

Caffe2's ReduceSum/Mean/Max/Min/L1/L2 and ArgMax/ArgMin carry ONNX's semantics
(pycaffe2 extends them with select_last_index and the identities of empty
reductions); ReduceProd, ReduceSumSquare, ReduceLogSum and ReduceLogSumExp are
pycaffe2's ONNX-named additions (math_reduce family). Gemm becomes FC where FC
means the same (the classic exported classifier: B transposed, alpha = beta = 1,
C a bias of N), else pycaffe2's Gemm; MatMul becomes BatchMatMul with numpy
broadcasting, or an Einsum for vector . vector, whose result ONNX makes 0-d.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.registry import Unsupported, converter
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.linalg_extra import parse_einsum

REDUCTIONS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")

FLOAT_ONLY = ("ReduceMean", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp")
INTEGER_TYPES = {"int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64", "uint8": "UINT8",
                 "uint16": "UINT16"}


def _axes(node, ctx) -> list[int] | None:
    """The reduced axes: the `axes` input (opset 13/18 on) or attribute; None when absent."""
    if node.input(1) is not None:
        value = np.asarray(ctx.require(node.input(1), "axes"))
        if value.dtype.kind not in "iu" or value.ndim > 1:
            raise Unsupported(f"axes must be a 1-D integer tensor, got {value.dtype} {list(value.shape)}")
        return [int(a) for a in value.ravel()]
    axes = node.attr("axes")
    return None if axes is None else [int(a) for a in axes]


@converter(*REDUCTIONS)
def _reduce(node, ctx):
    axes = _axes(node, ctx)
    if not axes:
        if node.attr("noop_with_empty_axes", 0):  # no axes: the data passes unchanged
            ctx.op("Copy", [node.input(0)], node.outputs)
            return
        axes = None  # empty or omitted: every axis, pycaffe2's default too
    args = {"keepdims": int(node.attr("keepdims", 1))}
    if axes is not None:
        args["axes"] = axes
    dtype = ctx.dtype(node.input(0))
    if node.op_type in FLOAT_ONLY and dtype is not None and dtype.name in INTEGER_TYPES:
        # pycaffe2's (Caffe2's) kernels take floats: reduce in float64, exact for the
        # integers these hold, and cast back as ONNX's integer result.
        wide, reduced = ctx.fresh("as_double"), ctx.fresh("reduced")
        ctx.op("Cast", [node.input(0)], [wide], to="DOUBLE")
        ctx.op(node.op_type, [wide], [reduced], **args)
        ctx.op("Cast", [reduced], node.outputs, to=INTEGER_TYPES[dtype.name])
        return
    ctx.op(node.op_type, [node.input(0)], node.outputs, **args)


@converter("ArgMax", "ArgMin")
def _arg(node, ctx):
    # ONNX's default axis is 0, Caffe2's -1: always say which.
    ctx.op(node.op_type, [node.input(0)], node.outputs, axis=int(node.attr("axis", 0)),
           keepdims=int(node.attr("keepdims", 1)), select_last_index=int(node.attr("select_last_index", 0)))


def _fc_fits(node, ctx, alpha, beta, trans_a, trans_b) -> bool:
    """Whether FC (Y = A B^T + b) computes this Gemm: B transposed, no scaling, 2-D A, and
    C a row of N values ([N] or [1, N]) -- an [N, 1] C of the same size would broadcast
    the other way."""
    if not (trans_b and not trans_a and alpha == 1.0 and beta == 1.0 and node.input(2) is not None):
        return False
    a, b, c = (ctx.shape(node.input(i)) for i in range(3))
    if a is None or b is None or c is None or len(a) != 2 or len(b) != 2 or b[0] is None:
        return False
    dtypes = {ctx.dtype(node.input(i)) for i in range(3)}
    return tuple(c) in ((b[0],), (1, b[0])) and dtypes == {np.dtype(np.float32)}


@converter("Gemm")
def _gemm(node, ctx):
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    if _fc_fits(node, ctx, alpha, beta, trans_a, trans_b):
        ctx.op("FC", [node.input(0), node.input(1), node.input(2)], node.outputs)
        return
    inputs = [node.input(0), node.input(1)] + ([node.input(2)] if node.input(2) is not None else [])
    ctx.op("Gemm", inputs, node.outputs, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b)


@converter("MatMul")
def _matmul(node, ctx):
    a, b = node.input(0), node.input(1)
    # A dot product is 0-d in ONNX but [1] from BatchMatMul. Ask for a rank (which may
    # mean a traced translation) only when no known shape already rules it out.
    ruled_out = any(shape is not None and len(shape) != 1 for shape in (ctx.shape(a), ctx.shape(b)))
    if not ruled_out and ctx.rank(a) == 1 and ctx.rank(b) == 1:
        ctx.op("Einsum", [a, b], node.outputs, equation="i,i->")
        return
    ctx.op("BatchMatMul", [a, b], node.outputs, broadcast=1)


@converter("Einsum")
def _einsum(node, ctx):
    equation = node.attr("equation")
    if not isinstance(equation, str):
        raise Unsupported("the equation attribute is missing")
    try:  # a bad equation is the model's fault: say so before the net is checked
        parse_einsum(equation, len(node.inputs))
    except ShapeError as exc:
        raise Unsupported(str(exc)) from None
    ctx.op("Einsum", list(node.inputs), node.outputs, equation=equation)


@converter("Det")
def _det(node, ctx):
    ctx.op("Det", [node.input(0)], node.outputs)
