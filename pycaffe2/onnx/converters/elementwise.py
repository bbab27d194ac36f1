"""Elementwise ONNX ops: arithmetic, comparisons, logic and bitwise ops, Where,
Clip and the unary math ops. Binary ops broadcast NumPy-style (pycaffe2's
default for Add, the comparisons, ...; `numpy_broadcast=1` for Pow, Where and
the variadic ops); ONNX's opset-1..6 `broadcast`/`axis` attributes map onto
Caffe2's legacy broadcasting, which has the same meaning. The activations are
in elementwise_activation.py.
"""
from __future__ import annotations

from pycaffe2.onnx.registry import Unsupported, converter

# ONNX type -> pycaffe2 type, for ops whose only difference is the name.
UNARY = {
    "Neg": "Negative", "Reciprocal": "Reciprocal", "Sqrt": "Sqrt", "Exp": "Exp",
    "Log": "Log", "Floor": "Floor", "Ceil": "Ceil", "Round": "Round", "Sign": "Sign", "Erf": "Erf",
    "Sin": "Sin", "Cos": "Cos", "Tan": "Tan", "Asin": "Asin", "Acos": "Acos", "Atan": "Atan",
    "Sinh": "Sinh", "Cosh": "Cosh", "Asinh": "Asinh", "Acosh": "Acosh", "Atanh": "Atanh",
    "IsNaN": "IsNaN", "Not": "Not", "BitwiseNot": "BitwiseNot",
}
# Binary ops whose pycaffe2 twin broadcasts NumPy-style, or by ONNX's legacy attributes.
BINARY = {
    "Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div",
    "Equal": "EQ", "Greater": "GT", "Less": "LT", "GreaterOrEqual": "GE", "LessOrEqual": "LE",
    "And": "And", "Or": "Or", "Xor": "Xor",
    "BitwiseAnd": "BitwiseAnd", "BitwiseOr": "BitwiseOr", "BitwiseXor": "BitwiseXor",
}
VARIADIC = ("Sum", "Mean", "Max", "Min")


def _inputs(node, count: int) -> list:
    names = [node.input(i) for i in range(count)]
    if None in names:
        raise Unsupported(f"{node.op_type} needs {count} inputs, got {node.inputs}")
    return names


def legacy_broadcast(node) -> dict:
    """Caffe2's broadcast args for ONNX's opset<7 `broadcast`/`axis` attributes (the
    same rule: B matches a run of A's dims starting at `axis`, by default A's tail)."""
    if not node.attr("broadcast", 0):
        return {}
    return {"broadcast": 1, "axis": int(node.attr("axis", -1))}


@converter(*UNARY)
def _unary(node, ctx):
    ctx.op(UNARY[node.op_type], _inputs(node, 1), node.outputs[:1])


@converter("Abs")
def _abs(node, ctx):
    # Caffe2's Abs is float only; an integer |X| is max(X, -X) (X itself when unsigned).
    x, out = _inputs(node, 1)[0], node.outputs[:1]
    kind = getattr(ctx.dtype(x), "kind", "f")
    if kind == "u":
        ctx.op("Copy", [x], out)
    elif kind == "i":
        negated = ctx.fresh("abs_negated")
        ctx.op("Negative", [x], [negated])
        ctx.op("Max", [x, negated], out, numpy_broadcast=1)
    else:
        ctx.op("Abs", [x], out)


@converter(*BINARY)
def _binary(node, ctx):
    ctx.op(BINARY[node.op_type], _inputs(node, 2), node.outputs[:1], **legacy_broadcast(node))


@converter("Pow")
def _pow(node, ctx):
    args = legacy_broadcast(node) or {"numpy_broadcast": 1}
    ctx.op("Pow", _inputs(node, 2), node.outputs[:1], **args)


@converter("Mod")
def _mod(node, ctx):
    fmod = int(node.attr("fmod", 0))
    if fmod not in (0, 1):
        raise Unsupported(f"fmod {fmod} (ONNX allows 0 or 1)")
    ctx.op("Mod", _inputs(node, 2), node.outputs[:1], sign_follow_divisor=1 - fmod)


@converter(*VARIADIC)
def _variadic(node, ctx):
    inputs = [name for name in node.inputs if name]
    if not inputs:
        raise Unsupported(f"{node.op_type} needs at least one input")
    ctx.op(node.op_type, inputs, node.outputs[:1], numpy_broadcast=1)


@converter("Where")
def _where(node, ctx):
    ctx.op("Where", _inputs(node, 3), node.outputs[:1], numpy_broadcast=1)


@converter("BitShift")
def _bit_shift(node, ctx):
    direction = node.attr("direction")
    if direction not in ("LEFT", "RIGHT"):
        raise Unsupported(f"direction {direction!r} (LEFT or RIGHT)")
    ctx.op("BitShift", _inputs(node, 2), node.outputs[:1], direction=direction)


@converter("IsInf")
def _is_inf(node, ctx):
    ctx.op("IsInf", _inputs(node, 1), node.outputs[:1],
           detect_positive=int(node.attr("detect_positive", 1)),
           detect_negative=int(node.attr("detect_negative", 1)))


@converter("Clip")
def _clip_6(node, ctx):
    # opset 1..10: the bounds are attributes (default the float32 extremes, Caffe2's too)
    args = {name: float(node.attr(name)) for name in ("min", "max") if node.has_attr(name)}
    ctx.op("Clip", _inputs(node, 1), node.outputs[:1], **args)


@converter("Clip", since=11)
def _clip_11(node, ctx):
    x, low, high = _inputs(node, 1)[0], node.input(1), node.input(2)
    out = node.outputs[:1]
    if low is None and high is None:
        ctx.op("Copy", [x], out)
    elif low is None:  # an upper bound alone: Min against it
        ctx.op("Min", [x, high], out, numpy_broadcast=1)
    else:
        ctx.op("Clip", [x, low] + ([high] if high else []), out)
