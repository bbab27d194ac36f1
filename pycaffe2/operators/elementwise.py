"""Elementwise kernels (NumPy): math (Exp, Log, Sqrt, Abs, Negative, Sqr, Pow,
Clip, Scale) with the AbsGradient and ClipGradient ops, logic (Not, And, Or),
comparisons (EQ, LT, GT, LE, GE) and Where. Kernels check input types as
Caffe2's typed dispatch does (float only for the math ops, bool for logic) and
always return arrays, also for 0-d inputs. Binary ops are kernel factories: at
CreateNet their args pick NumPy-style broadcasting or Caffe2's legacy rule
(B lined up with A at `axis`, the result of A's shape); Pow has only the
legacy rule, so without broadcast=1 its exponent tensor must have X's shape.
Each math op's gradient maker sits beside its kernel, built from Caffe2's ops
(Exp's from Mul, Sqrt's from Scale and Div, ...); in place, a maker that
needs the overwritten X is refused by the backward pass (version check).
All of them also run on CUDA (elementwise.cu): the math ops and Pow in float32,
comparisons and Where on float32, int32, int64 and bool, logic ops on bool.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.arithmetic import _binary_cuda, broadcast_axis, legacy_view
from pycaffe2.operators.registry import (
    GradientError,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema.inference import OpView
from pycaffe2.schema.inference.arithmetic import numpy_broadcast


def _require(op_type: str, name: str, x, kinds: str, what: str) -> None:
    if x.dtype.kind not in kinds:
        raise ValueError(f"{op_type}: {name} is {x.dtype} {list(x.shape)}, must be {what}")


def _float(op_type: str, x, name: str = "X") -> None:
    _require(op_type, name, x, "f", "a float tensor")


def _same_shape(op_type: str, a, b, names: tuple) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{op_type}: {names[0]} is {list(a.shape)} but {names[1]} is "
                         f"{list(b.shape)}: the shapes must match")


# --- unary math -----------------------------------------------------------------------------

@register_cpu("Exp")
def exp(x):
    _float("Exp", x)
    return np.asarray(np.exp(x))


gradient_op("Exp", "O0 GO0", gradient_type="Mul")  # dX = Y * dY


@register_cpu("Log")
def log(x):
    _float("Log", x)
    return np.asarray(np.log(x))


@register_gradient("Log")
def make_log_gradient(g):  # dX = dY / X
    return [g.Op("Div", [g.GO(0), g.I(0)], [g.GI(0)])]


@register_cpu("Sqrt")
def sqrt(x):
    _float("Sqrt", x)
    return np.asarray(np.sqrt(x))


@register_gradient("Sqrt")
def make_sqrt_gradient(g):  # dX = 0.5 * dY / Y
    return [g.Op("Scale", [g.GO(0)], [g.GI(0)], scale=0.5),
            g.Op("Div", [g.GI(0), g.O(0)], [g.GI(0)])]


@register_cpu("Abs")
def abs_(x):
    _float("Abs", x)
    return np.asarray(np.abs(x))


gradient_op("Abs", "I0 GO0")


@register_cpu("AbsGradient")
def abs_gradient(x, dy):
    _float("AbsGradient", x)
    _same_shape("AbsGradient", x, dy, ("X", "dY"))
    return np.asarray(np.sign(x) * dy)  # sign(0) = 0: no gradient at the kink


@register_cpu("Negative", "Neg")
def negative(x):
    _require("Negative", "X", x, "fi", "a float or signed integer tensor")
    return np.asarray(np.negative(x))


gradient_op("Negative", "GO0", gradient_type="Negative")  # also Neg, its alias


@register_cpu("Sqr")
def sqr(x):
    _float("Sqr", x)
    return np.asarray(x * x)


@register_gradient("Sqr")
def make_sqr_gradient(g):  # dX = 2 * dY * X; unlike Caffe2, dY itself is not scaled in place
    return [g.Op("Scale", [g.GO(0)], [g.GI(0)], scale=2.0),
            g.Op("Mul", [g.GI(0), g.I(0)], [g.GI(0)])]


@register_cpu("Scale")
def scale(x, *, scale):
    _float("Scale", x)
    return np.asarray(x * x.dtype.type(scale))


gradient_op("Scale", "GO0", gradient_type="Scale")  # the same scale, inherited


@register_cpu("Clip")
def clip(x, *, min, max):  # Caffe2 names the bounds min and max
    _float("Clip", x)
    t = x.dtype.type
    return np.asarray(np.clip(x, t(min), t(max)))


gradient_op("Clip", "O0 GO0")


@register_cpu("ClipGradient")
def clip_gradient(y, dy, *, min, max):
    _float("ClipGradient", y, "Y")
    _same_shape("ClipGradient", y, dy, ("Y", "dY"))
    t = y.dtype.type
    # Strict inequalities on Y: an input clipped to a bound gets no gradient.
    inside = (y > t(min)) & (y < t(max))
    return np.asarray(np.where(inside, dy, dy.dtype.type(0)))


# --- broadcasting binary ops ----------------------------------------------------------------

def _layout(op_type: str, names: tuple, broadcast, axis, axis_str, order):
    """A function (A's shape, B's shape) -> (B's shape lined up with A, C's shape) under the
    broadcast args (resolved once); it raises ValueError naming the operands when they do not fit."""
    if broadcast:
        axis = broadcast_axis(op_type, axis, axis_str, order)
        # legacy_view fits B inside A, so C takes A's shape
        return lambda a, b: (legacy_view(op_type, a, b, axis, names), a)
    return lambda a, b: (b, numpy_broadcast(OpView(op_type, {}, 2, 1), a, b, names))


def _check_operands(op_type: str, names: tuple, kinds: str | None, a, b) -> None:
    """A and B share a type (of `kinds`, when given)."""
    if kinds is not None:
        _require(op_type, names[0], a, kinds, "bool" if kinds == "b" else "a float tensor")
    if a.dtype != b.dtype:
        raise ValueError(f"{op_type}: {names[0]} is {a.dtype} but {names[1]} is {b.dtype}: "
                         f"the operands must share a type")


def _broadcasting(op_type: str, ufunc, names: tuple, kinds: str | None, layout):
    """A kernel applying ufunc(a, b) with B lined up by `layout`, after the type checks."""
    def kernel(a, b):
        b_view, _ = layout(a.shape, b.shape)
        _check_operands(op_type, names, kinds, a, b)
        return np.asarray(ufunc(a, b.reshape(b_view)))
    return kernel


def _register_binary(op_type: str, ufunc, kinds: str | None = None) -> None:
    """Register a comparison or logic op: A and B of one type, broadcast, to a bool C."""
    names = ("A", "B")

    @register_cpu(op_type, specialize=True)
    def factory(*, broadcast, axis, axis_str, order):
        layout = _layout(op_type, names, broadcast, axis, axis_str, order)
        return _broadcasting(op_type, ufunc, names, kinds, layout)


_register_binary("EQ", np.equal)
_register_binary("LT", np.less)
_register_binary("GT", np.greater)
_register_binary("LE", np.less_equal)
_register_binary("GE", np.greater_equal)
_register_binary("And", np.logical_and, kinds="b")
_register_binary("Or", np.logical_or, kinds="b")

POW_NAMES = ("X", "exponent")


def _pow_exponent_given(exponent, e) -> None:
    if (e is None) == (exponent is None):
        given = "neither" if e is None else "both"
        raise ValueError(f"Pow: give the exponent as the arg or as input 1; got {given}")


def _pow_layout(broadcast, axis, axis_str, order):
    """Pow's layout: the legacy rule under broadcast=1, else equal shapes only."""
    layout = _layout("Pow", POW_NAMES, broadcast, axis, axis_str, order)

    def shapes(x_shape: tuple, e_shape: tuple) -> tuple:
        if e_shape != x_shape and not broadcast:
            raise ValueError(f"Pow: X is {list(x_shape)} and exponent is {list(e_shape)}: "
                             f"without broadcast=1 the shapes must be equal")
        return layout(x_shape, e_shape)
    return shapes


@register_cpu("Pow", specialize=True)
def pow_(*, exponent, broadcast, axis, axis_str, order):
    """Y = X ** exponent, the exponent from the arg or (exclusively) from input 1."""
    power = _broadcasting("Pow", np.power, POW_NAMES, "f", _pow_layout(broadcast, axis, axis_str, order))

    def kernel(x, e=None):
        _pow_exponent_given(exponent, e)
        if e is not None:
            return power(x, e)
        _float("Pow", x)
        return np.asarray(np.power(x, x.dtype.type(exponent)))
    return kernel


@register_gradient("Pow")
def make_pow_gradient(g):
    exponent = g.arg("exponent")
    if exponent is None:
        return _pow_tensor_gradient(g)
    if exponent == 0:  # Y = 1: a zero gradient, also at X = 0 (where 0 * 0^-1 would be NaN)
        return [g.Op("Scale", [g.GO(0)], [g.GI(0)], scale=0.0)]
    # dX = exponent * X^(exponent-1) * dY. In place, X is gone and Caffe2 takes
    # X^(exponent-1) = Y^((exponent-1)/exponent), which holds for X > 0 only;
    # there dX and dY share a blob, so the power goes to a temporary first.
    power, powered = exponent - 1.0, g.GI(0)
    if g.I(0) == g.O(0):
        power, powered = (exponent - 1.0) / exponent, g.GI(0) + "_autogen_pow"
    return [g.Op("Pow", [g.I(0)], [powered], exponent=power),
            g.Op("Mul", [powered, g.GO(0)], [g.GI(0)]),
            g.Op("Scale", [g.GI(0)], [g.GI(0)], scale=exponent)]


def _pow_tensor_gradient(g) -> list:
    """Caffe2's ops for Y = X^E: dX = E * X^(E-1) * dY and dE = ln(X) * Y * dY,
    summed down to E's shape under broadcast=1. Only the ops that line E up
    with X take the broadcast args."""
    if g.O(0) in (g.I(0), g.I(1)):
        raise GradientError("Pow with an exponent tensor cannot be differentiated in place")
    x, e, dx, de = g.I(0), g.I(1), g.GI(0), g.GI(1)
    pre = de + "_autogen_pre_red"
    broadcast = g.arg("broadcast")
    return [
        g.Op("ConstantFill", [e], [de], value=1.0),
        g.Op("Sub", [e, de], [de], inherit_args=False),  # E - 1
        g.Op("Pow", [x, de], [dx]),
        g.Op("Mul", [dx, g.GO(0)], [dx], inherit_args=False),
        g.Op("Mul", [dx, e], [dx]),
        g.Op("Log", [x], [pre]),
        g.Op("Mul", [pre, g.O(0)], [pre], inherit_args=False),
        g.Op("Mul", [pre, g.GO(0)], [pre if broadcast else de], inherit_args=False),
    ] + ([g.Op("SumReduceLike", [pre, e], [de])] if broadcast else [])


# --- Not, Where -----------------------------------------------------------------------------

@register_cpu("Not")
def not_(x):
    _require("Not", "X", x, "b", "bool")
    return np.asarray(np.logical_not(x))


def _check_where(c, x, y, broadcast_on_rows) -> None:
    _require("Where", "C", c, "b", "bool")
    if x.shape != y.shape or x.dtype != y.dtype:
        raise ValueError(f"Where: X is {list(x.shape)} {x.dtype} but Y is {list(y.shape)} "
                         f"{y.dtype}: they must match")
    if not broadcast_on_rows:
        if c.shape != x.shape:
            raise ValueError(f"Where: C is {list(c.shape)} but X and Y are {list(x.shape)}: "
                             f"the shapes must match")
    elif len(c.shape) != 1 or len(x.shape) == 0 or c.shape[0] != x.shape[0]:
        raise ValueError(f"Where: with broadcast_on_rows=1 C must be 1-D with one entry per row "
                         f"of X and Y ({list(x.shape)}), got {list(c.shape)}")


@register_cpu("Where")
def where(c, x, y, *, broadcast_on_rows):
    _check_where(c, x, y, broadcast_on_rows)
    if not broadcast_on_rows:
        return np.asarray(np.where(c, x, y))
    return np.where(c.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)


# --- CUDA launchers (elementwise.cu): (op types, kernel, float args after the arrays) ---------
CUDA_ELEMENTWISE = [
    (("Exp",), "exp_forward", ()), (("Log",), "log_forward", ()), (("Sqrt",), "sqrt_forward", ()),
    (("Abs",), "abs_forward", ()), (("AbsGradient",), "abs_gradient", ()),
    (("Negative", "Neg"), "negative", ()), (("Sqr",), "sqr", ()), (("Scale",), "scale", ("scale",)),
    (("Clip",), "clip", ("min", "max")), (("ClipGradient",), "clip_gradient", ("min", "max")),
]
for _types, _kernel, _args in CUDA_ELEMENTWISE:
    register_cuda(*_types, args=_args)(cuda.elementwise(_types[0], "elementwise.cu", _kernel, _args))


# --- CUDA launchers for comparisons, logic, Pow and Where (elementwise.cu) -------------------
# Every operand is walked over the output's shape with strides (arithmetic.py's helpers);
# kernels are instantiated per element type, so these ops keep their int and bool inputs.

CU = "elementwise.cu"
_SUFFIXES = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32",
             np.dtype(np.int64): "i64", np.dtype(np.bool_): "b8"}


def _suffix(op_type: str, x) -> str:
    suffix = _SUFFIXES.get(x.dtype)
    if suffix is None:
        raise ValueError(f"{op_type}: the CUDA kernel takes float32, int32, int64 or bool, got {x.dtype}")
    return suffix


def _register_binary_cuda(op_type: str, kernel: str, kinds: str | None = None) -> None:
    names = ("A", "B")

    @register_cuda(op_type, specialize=True)
    def factory(*, broadcast, axis, axis_str, order):
        layout = _layout(op_type, names, broadcast, axis, axis_str, order)

        def run(a, b):
            b_view, c_shape = layout(tuple(a.shape), tuple(b.shape))
            _check_operands(op_type, names, kinds, a, b)
            a, b = cuda.as_gpu(a), cuda.as_gpu(b)
            return _binary_cuda(f"{kernel}_{_suffix(op_type, a)}", a, b, a.shape, b_view, c_shape,
                                np.bool_, source=CU)
        return run


for _type, _kernel, _kinds in (("EQ", "eq", None), ("LT", "lt", None), ("GT", "gt", None),
                               ("LE", "le", None), ("GE", "ge", None), ("And", "and", "b"),
                               ("Or", "or", "b")):
    _register_binary_cuda(_type, _kernel, _kinds)


@register_cuda("Pow", specialize=True)
def pow_cuda(*, exponent, broadcast, axis, axis_str, order):
    shapes = _pow_layout(broadcast, axis, axis_str, order)

    def run(x, e=None):
        _pow_exponent_given(exponent, e)
        if e is None:
            _float("Pow", x)
            (x,) = cuda.float32_inputs("Pow", x)
            y = cuda.empty_like(x)
            cuda.launch(CU, "pow_scalar", y.size, x, y, np.float32(exponent), np.int64(y.size))
            return y
        e_view, y_shape = shapes(tuple(x.shape), tuple(e.shape))
        _check_operands("Pow", POW_NAMES, "f", x, e)
        x, e = cuda.float32_inputs("Pow", x, e)
        kernel = "pow_one_exponent" if e.size == 1 else "pow"  # NumPy's sqrt for a lone 0.5
        return _binary_cuda(kernel, x, e, x.shape, e_view, y_shape, source=CU)
    return run


@register_cuda("Not")
def not_cuda(x):
    _require("Not", "X", x, "b", "bool")
    x = cuda.as_gpu(x)
    y = cuda.empty_like(x)
    cuda.launch(CU, "not_b8", y.size, x, y, np.int64(y.size))
    return y


@register_cuda("Where")
def where_cuda(c, x, y, *, broadcast_on_rows):
    _check_where(c, x, y, broadcast_on_rows)
    kernel = f"where_{_suffix('Where', x)}"
    c, x, y = cuda.as_gpu(c), cuda.as_gpu(x), cuda.as_gpu(y)
    z = cuda.empty_like(x)
    inner = z.size // x.shape[0] if broadcast_on_rows and z.size else 1  # C picks whole rows
    cuda.launch(CU, kernel, z.size, c, x, y, z, np.int64(inner), np.int64(z.size))
    return z
