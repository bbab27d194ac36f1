"""NetDef -> ONNX converters for elementwise ops and tensor plumbing.

Unary and n-ary ops map one to one; binary ops with Caffe2's legacy broadcast
(`broadcast=1`, `axis`) get B reshaped to line up with A first (folded into the
constant when B is one); shapes, axes, starts/ends become int64 constants, Slice's
Caffe2-style ends (-1: to the end) absolute ones from the traced shape; Concat's
`add_axis` unsqueezes each input and its split_info output becomes a constant.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.onnx.export_graph import Unexportable, canonical_axis, exports

# Caffe2 type -> ONNX type, where the two agree on inputs, outputs and meaning.
UNARY = {
    "Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt",
    "Abs": "Abs", "Negative": "Neg", "Neg": "Neg", "Sign": "Sign", "Floor": "Floor", "Ceil": "Ceil",
    "Reciprocal": "Reciprocal", "Softsign": "Softsign", "Softplus": "Softplus", "Erf": "Erf",
    "Sin": "Sin", "Cos": "Cos", "Tan": "Tan", "Asin": "Asin", "Acos": "Acos", "Atan": "Atan",
    "Sinh": "Sinh", "Cosh": "Cosh", "Not": "Not", "Round": "Round", "IsNaN": "IsNaN",
    "Copy": "Identity", "Alias": "Identity", "StopGradient": "Identity", "EnsureCPUOutput": "Identity",
    "CopyCPUToGPU": "Identity", "CopyGPUToCPU": "Identity", "CopyFromCPUInput": "Identity",
    "EnsureDense": "Identity",
}
NARY = {"Sum": "Sum", "Max": "Max", "Min": "Min", "Mean": "Mean"}
BINARY = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Pow": "Pow", "And": "And", "Or": "Or",
          "Xor": "Xor", "EQ": "Equal", "LT": "Less", "LE": "LessOrEqual", "GT": "Greater",
          "GE": "GreaterOrEqual", "BitwiseAnd": "BitwiseAnd", "BitwiseOr": "BitwiseOr",
          "BitwiseXor": "BitwiseXor"}
# activation args Caffe2 name -> ONNX attribute name
ACTIVATIONS = {"LeakyRelu": {"alpha": "alpha"}, "Elu": {"alpha": "alpha"},
               "Selu": {"alpha": "alpha", "scale": "gamma"}, "HardSigmoid": {"alpha": "alpha", "beta": "beta"},
               "ThresholdedRelu": {"alpha": "alpha"}}
_FLOATS = ("float16", "float32", "float64")


@exports(*UNARY)
def _unary(op, g):
    g.one(UNARY[op.type], [op.x(0)], op.y(0))


@exports(*ACTIVATIONS)
def _activation(op, g):
    attrs = {onnx_name: float(op.args[name]) for name, onnx_name in ACTIVATIONS[op.type].items()}
    g.one(op.type, [op.x(0)], op.y(0), **attrs)


@exports(*NARY)
def _nary(op, g):
    if op.type == "Sum" and op.inputs[0].dtype.name not in _FLOATS:  # ONNX's Sum is float-only
        acc = op.x(0)
        for i in range(1, len(op.inputs)):
            acc = g.one("Add", [acc, op.x(i)], op.y(0) if i == len(op.inputs) - 1 else None)
        if len(op.inputs) == 1:
            g.one("Identity", [acc], op.y(0))
        return
    g.one(NARY[op.type], [v.name for v in op.inputs], op.y(0))


def lined_up_b(op, g, b_index: int = 1) -> str:
    """B of a binary op, reshaped so that ONNX's NumPy broadcasting does Caffe2's legacy one."""
    from pycaffe2.schema.inference.arithmetic import binary_layout, broadcast_axis
    axis = broadcast_axis(op.args.get("broadcast"), op.args.get("axis", -1), op.args.get("axis_str"),
                          op.order())
    a, b = op.inputs[0], op.inputs[b_index]
    if axis is None:
        return b.name
    lined, _ = binary_layout(tuple(a.shape), tuple(b.shape), axis)
    if tuple(lined) == tuple(b.shape):
        return b.name
    if b.value is not None:
        return g.constant(b.value.reshape(lined), "b_lined")
    return g.reshape(b.name, lined)


@exports(*BINARY)
def _binary(op, g):
    if op.type == "Pow" and len(op.inputs) == 1:
        exponent = op.args.get("exponent")
        if exponent is None:
            raise Unexportable("no exponent (give the arg or a second input)")
        g.one("Pow", [op.x(0), g.scalar(exponent, op.inputs[0].dtype, "exponent")], op.y(0))
        return
    g.one(BINARY[op.type], [op.x(0), lined_up_b(op, g)], op.y(0))


@exports("NE")
def _not_equal(op, g):
    g.one("Not", [g.one("Equal", [op.x(0), lined_up_b(op, g)])], op.y(0))


@exports("Sqr")
def _sqr(op, g):
    g.one("Mul", [op.x(0), op.x(0)], op.y(0))


@exports("Rsqrt")
def _rsqrt(op, g):
    g.one("Reciprocal", [g.one("Sqrt", [op.x(0)])], op.y(0))


@exports("Scale")
def _scale(op, g):
    g.one("Mul", [op.x(0), g.scalar(op.args["scale"], op.inputs[0].dtype, "scale")], op.y(0))


@exports("Swish")
def _swish(op, g):
    g.one("Mul", [op.x(0), g.one("Sigmoid", [op.x(0)])], op.y(0))


@exports("Gelu")
def _gelu(op, g):
    fast = bool(op.args.get("fast_gelu"))
    if g.opset >= 20:
        g.one("Gelu", [op.x(0)], op.y(0), approximate="tanh" if fast else "none")
        return
    dtype = op.inputs[0].dtype
    x = op.x(0)
    if fast:  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.one("Mul", [g.one("Mul", [x, x]), x])
        inner = g.one("Add", [x, g.one("Mul", [cube, g.scalar(0.044715, dtype)])])
        core = g.one("Tanh", [g.one("Mul", [inner, g.scalar(np.sqrt(2 / np.pi), dtype)])])
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        core = g.one("Erf", [g.one("Mul", [x, g.scalar(1 / np.sqrt(2), dtype)])])
    half_x = g.one("Mul", [x, g.scalar(0.5, dtype)])
    g.one("Mul", [half_x, g.one("Add", [core, g.scalar(1, dtype)])], op.y(0))


@exports("PRelu")
def _prelu(op, g):
    x, slope = op.inputs[0], op.inputs[1]
    slope_name = slope.name
    if slope.rank == 1 and slope.shape[0] != 1 and x.rank > 2:  # per channel: line it up with C
        lined = (slope.shape[0],) + (1,) * (x.rank - 2) if op.order() == "NCHW" else slope.shape
        slope_name = g.constant(slope.value.reshape(lined), "slope") if slope.value is not None \
            else g.reshape(slope.name, lined)
    g.one("PRelu", [x.name, slope_name], op.y(0))


@exports("Clip")
def _clip(op, g):
    dtype = op.inputs[0].dtype
    low, high = op.args["min"], op.args["max"]
    if dtype.kind == "f":
        info = np.finfo(dtype)
        low, high = max(low, float(info.min)), min(high, float(info.max))
    g.one("Clip", [op.x(0), g.scalar(low, dtype, "min"), g.scalar(high, dtype, "max")], op.y(0))


@exports("Cast")
def _cast(op, g):
    from onnx import helper
    g.one("Cast", [op.x(0)], op.y(0), to=helper.np_dtype_to_tensor_dtype(op.outputs[0].dtype))


@exports("Where")
def _where(op, g):
    if op.args.get("broadcast_on_rows"):
        cond = op.inputs[0]
        lined = cond.shape + (1,) * (op.inputs[1].rank - cond.rank)
        g.one("Where", [g.reshape(cond.name, lined), op.x(1), op.x(2)], op.y(0))
        return
    g.one("Where", [op.x(0), op.x(1), op.x(2)], op.y(0))


# ---------------------------------------------------------------- shapes and layout

@exports("Reshape")
def _reshape(op, g):
    if len(op.inputs) > 1:
        shape = op.inputs[1]
        target = g.ints(shape.value, "shape") if shape.value is not None else \
            (shape.name if shape.dtype == np.int64 else g.one("Cast", [shape.name], to=7))
    else:
        if op.args.get("shape") is None:
            raise Unexportable("no shape (give the arg or a second input)")
        target = g.ints(op.args["shape"], "shape")
    g.one("Reshape", [op.x(0), target], op.y(0))
    if len(op.outputs) > 1 and op.used[1]:  # old_shape: X's shape, int64 as Caffe2's
        g.one("Shape", [op.x(0)], op.y(1))


@exports("Flatten")
def _flatten(op, g):
    g.one("Flatten", [op.x(0)], op.y(0), axis=canonical_axis(op.args["axis"], max(op.inputs[0].rank, 1)))


@exports("FlattenToVec")
def _flatten_to_vec(op, g):
    g.reshape(op.x(0), [-1], op.y(0))


@exports("Transpose")
def _transpose(op, g):
    axes = op.args.get("axes")
    perm = list(axes) if axes else list(reversed(range(op.inputs[0].rank)))
    g.one("Transpose", [op.x(0)], op.y(0), perm=perm)


@exports("Squeeze")
def _squeeze(op, g):
    dims = op.args.get("dims") or [i for i, d in enumerate(op.inputs[0].shape) if d == 1]
    g.squeeze(op.x(0), sorted(dims), op.y(0))


@exports("ExpandDims")
def _expand_dims(op, g):
    g.unsqueeze(op.x(0), sorted(op.args["dims"]), op.y(0))


def concat_axis(op, rank: int) -> int:
    axis = op.args.get("axis")
    if axis is None:
        axis = 3 if op.order() == "NHWC" else 1
    return canonical_axis(axis, rank + 1 if op.args.get("add_axis") else rank)


@exports("Concat")
def _concat(op, g):
    rank = op.inputs[0].rank
    axis = concat_axis(op, rank)
    names = [v.name for v in op.inputs]
    if op.args.get("add_axis"):
        names = [g.unsqueeze(name, [axis]) for name in names]
    g.one("Concat", names, op.y(0), axis=axis)
    if len(op.outputs) > 1 and op.used[1]:  # split_info: each input's size along the axis
        sizes = [1 if op.args.get("add_axis") else v.shape[axis] for v in op.inputs]
        g.constant(np.asarray(sizes, op.outputs[1].dtype), name=op.y(1))


@exports("Split")
def _split(op, g):
    rank = op.inputs[0].rank
    axis = concat_axis(op, rank - 1 if op.args.get("add_axis") else rank)
    sizes = [v.shape[axis] if not op.args.get("add_axis") else 1 for v in op.outputs]
    outs = [v.name for v in op.outputs]
    if op.args.get("add_axis"):
        pieces = g.node("Split", [op.x(0), g.ints(sizes, "split")], len(outs), axis=axis)
        for piece, out in zip(pieces, outs):
            g.squeeze(piece, [axis], out)
        return
    g.node("Split", [op.x(0), g.ints(sizes, "split")], outs, axis=axis)


@exports("Slice")
def _slice(op, g):
    from pycaffe2.errors import ShapeError
    from pycaffe2.schema.inference.indexing import slice_ranges
    starts = op.args.get("starts") if len(op.inputs) < 2 else op.require(1, "starts").tolist()
    ends = op.args.get("ends") if len(op.inputs) < 3 else op.require(2, "ends").tolist()
    try:
        ranges = slice_ranges(tuple(op.inputs[0].shape), starts, ends)
    except ShapeError as exc:
        raise Unexportable(str(exc)) from None
    axes = list(range(len(ranges)))
    g.one("Slice", [op.x(0), g.ints([r[0] for r in ranges], "starts"), g.ints([r[1] for r in ranges], "ends"),
                    g.ints(axes, "axes")], op.y(0))


@exports("Gather")
def _gather(op, g):
    if op.args.get("match_outer"):
        raise Unexportable("match_outer=1 (ONNX's Gather has no batched form)")
    g.one("Gather", [op.x(0), op.x(1)], op.y(0), axis=op.args.get("axis", 0))


@exports("Shape")
def _shape(op, g):
    axes = op.args.get("axes")
    if not axes:
        g.one("Shape", [op.x(0)], op.y(0))
        return
    g.one("Gather", [g.one("Shape", [op.x(0)]), g.ints(axes, "axes")], op.y(0), axis=0)


@exports("Size")
def _size(op, g):
    g.one("Size", [op.x(0)], op.y(0))


@exports("Tile")
def _tile(op, g):
    if len(op.inputs) > 1:
        tiles = int(op.require(1, "tiles"))
        axis = int(op.require(2, "axis")) if len(op.inputs) > 2 else op.args["axis"]
    else:
        tiles, axis = op.args["tiles"], op.args["axis"]
    rank = op.inputs[0].rank
    repeats = [1] * rank
    repeats[canonical_axis(axis, rank)] = tiles
    g.one("Tile", [op.x(0), g.ints(repeats, "repeats")], op.y(0))


@exports("Expand")
def _expand(op, g):
    shape = op.inputs[1]
    target = g.ints(shape.value, "shape") if shape.value is not None else \
        (shape.name if shape.dtype == np.int64 else g.one("Cast", [shape.name], to=7))
    g.one("Expand", [op.x(0), target], op.y(0))


REDUCE = {"ReduceSum": "ReduceSum", "ReduceMean": "ReduceMean", "ReduceMax": "ReduceMax",
          "ReduceMin": "ReduceMin", "ReduceL1": "ReduceL1", "ReduceL2": "ReduceL2", "ReduceProd": "ReduceProd"}
FRONT_BACK = {"ReduceFrontSum": "ReduceSum", "ReduceBackSum": "ReduceSum", "ReduceFrontMean": "ReduceMean",
              "ReduceBackMean": "ReduceMean", "ReduceFrontMax": "ReduceMax", "ReduceBackMax": "ReduceMax"}


@exports(*REDUCE)
def _reduce(op, g):
    axes = op.args.get("axes")
    rank = op.inputs[0].rank
    axes = None if axes is None else sorted(canonical_axis(a, rank) for a in axes)
    g.reduce(REDUCE[op.type], op.x(0), axes, int(bool(op.args["keepdims"])), op.y(0))


@exports(*FRONT_BACK)
def _reduce_front_back(op, g):
    if len(op.inputs) > 1:
        raise Unexportable("the lengths input (ONNX reductions have no per-row lengths)")
    rank, count = op.inputs[0].rank, op.args["num_reduce_dim"]
    axes = list(range(count)) if "Front" in op.type else list(range(rank - count, rank))
    g.reduce(FRONT_BACK[op.type], op.x(0), axes, 0, op.y(0))


@exports("ArgMax", "ArgMin")
def _arg(op, g):
    axis = canonical_axis(op.args["axis"], op.inputs[0].rank)
    g.one(op.type, [op.x(0)], op.y(0), axis=axis, keepdims=int(bool(op.args["keepdims"])))


@exports("Dropout")
def _dropout(op, g):
    if not op.args["is_test"]:
        raise Unexportable("training mode (is_test=0): export the test-mode net")
    g.one("Identity", [op.x(0)], op.y(0))


# ---------------------------------------------------------------- a few more Caffe2 ops

@exports("NCHW2NHWC", "NHWC2NCHW")
def _layout(op, g):
    rank = op.inputs[0].rank
    perm = [0, *range(2, rank), 1] if op.type == "NCHW2NHWC" else [0, rank - 1, *range(1, rank - 1)]
    g.one("Transpose", [op.x(0)], op.y(0), perm=perm)


@exports("Mod")
def _mod(op, g):
    dtype = op.inputs[0].dtype
    fmod = 0 if op.args["sign_follow_divisor"] else 1  # ONNX's fmod=1: the sign of the dividend, as C's %
    g.one("Mod", [op.x(0), g.scalar(op.args["divisor"], dtype, "divisor")], op.y(0), fmod=fmod)


@exports("WeightedSum")
def _weighted_sum(op, g):
    terms = [g.one("Mul", [op.x(i), op.x(i + 1)]) for i in range(0, len(op.inputs), 2)]
    g.one("Sum", terms, op.y(0))


@exports("TopK")
def _top_k(op, g):
    if len(op.outputs) > 2 and op.used[2]:
        raise Unexportable("the Flattened_indices output (ONNX's TopK has none)")
    k = op.args.get("k")
    if k is None:
        raise Unexportable("no k")
    axis = canonical_axis(op.args["axis"], op.inputs[0].rank)
    want_indices = len(op.outputs) > 1 and op.used[1]
    indices = g.fresh("indices") if want_indices and op.outputs[1].dtype != np.int64 else \
        (op.y(1) if want_indices else g.fresh("indices"))
    g.node("TopK", [op.x(0), g.ints([k], "k")], [op.y(0), indices], axis=axis, largest=1, sorted=1)
    if want_indices and indices != op.y(1):
        from onnx import helper
        g.one("Cast", [indices], op.y(1), to=helper.np_dtype_to_tensor_dtype(op.outputs[1].dtype))


@exports("BatchGather")
def _batch_gather(op, g):
    if op.args.get("match_outer"):
        raise Unexportable("match_outer=1 (ONNX's Gather has no batched form)")
    g.one("Gather", [op.x(0), op.x(1)], op.y(0), axis=op.args["axis"])


@exports("Cube")
def _cube(op, g):
    g.one("Mul", [g.one("Mul", [op.x(0), op.x(0)]), op.x(0)], op.y(0))


@exports("Log1p")
def _log1p(op, g):
    g.one("Log", [g.one("Add", [op.x(0), g.scalar(1, op.inputs[0].dtype, "one")])], op.y(0))


def _rows(g, name: str) -> str:
    return g.one("Flatten", [name], axis=1)  # [N, D]: Caffe2's distance ops read rows


@exports("DotProduct")
def _dot_product(op, g):
    product = g.one("Mul", [_rows(g, op.x(0)), _rows(g, op.x(1))])
    g.reduce("ReduceSum", product, [1], 0, op.y(0))


@exports("SquaredL2Distance")
def _squared_l2_distance(op, g):
    diff = g.one("Sub", [_rows(g, op.x(0)), _rows(g, op.x(1))])
    total = g.reduce("ReduceSumSquare", diff, [1], 0)
    g.one("Mul", [total, g.scalar(0.5, op.inputs[0].dtype, "half")], op.y(0))


@exports("SumSqrElements")
def _sum_sqr_elements(op, g):
    x, y = op.inputs[0], op.outputs[0]
    total = g.reduce("ReduceSumSquare", x.name, None, 0)
    if op.args["average"]:
        total = g.one("Div", [total, g.scalar(max(int(np.prod(x.shape)), 1), x.dtype, "count")])
    g.reshape(total, list(y.shape), op.y(0))


@exports("ElementwiseLinear")
def _elementwise_linear(op, g):
    x = op.inputs[0]
    inner = list(x.shape[canonical_axis(op.args["axis"], x.rank):])
    a, b = (g.constant(v.value.reshape(inner), "el") if v.value is not None else g.reshape(v.name, inner)
            for v in op.inputs[1:3])
    g.one("Add", [g.one("Mul", [x.name, a]), b], op.y(0))
