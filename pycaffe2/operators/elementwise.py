"""Elementwise kernels (NumPy): math (Exp, Log, Sqrt, Abs, Negative, Sqr, Pow,
Clip, Scale, Sinh, Cosh, Cbrt, Cube, Reciprocal, Rsqrt, Sign) with the
AbsGradient, ClipGradient and Sinh..Rsqrt gradient ops, logic (Not, And, Or, Xor),
bitwise ops (BitwiseAnd, BitwiseOr, BitwiseXor), comparisons (EQ, LT, GT, LE,
GE) and Where. Kernels check input types as
Caffe2's typed dispatch does (float only for the math ops, bool for logic) and
always return arrays, also for 0-d inputs. Binary ops are kernel factories: at
CreateNet their args pick NumPy-style broadcasting or Caffe2's legacy rule
(B lined up with A at `axis`, the result of A's shape); Caffe2's Pow has only
the legacy rule, so without broadcast=1 its exponent tensor must have X's shape.
ONNX's forms are opt-in: Pow and Where with numpy_broadcast=1 (Pow then takes
any numeric types, Y of X's), Clip with bound tensors (any numeric X); their
CUDA launchers refuse them.
Each math op's gradient maker sits beside its kernel, built from Caffe2's ops
(Exp's from Mul, Sqrt's from Scale and Div, ...); in place, a maker that
needs the overwritten X is refused by the backward pass (version check).
All but the Sinh..Sign, Xor, bitwise ops and their gradients also run on CUDA (elementwise.cu): the math ops and Pow in float32,
comparisons and Where on float32, int32, int64 and bool, logic ops on bool.
Type and shape checks are schema.inference.elementwise's, shared with the rules.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.arithmetic import _binary_cuda
from pycaffe2.operators.registry import (
    GradientError,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema.inference import info_of, same_shape
from pycaffe2.schema.inference.arithmetic import binary_layout, broadcast_axis, check_same_type
from pycaffe2.schema.inference.elementwise import (
    BOOL,
    FLOAT,
    INT_BOOL,
    NUMERIC,
    POW_NAMES,
    SIGNED,
    check_clip_bounds,
    check_pow_exponent,
    check_unary_gradient,
    check_where,
    numpy_broadcast_shape,
    pow_layout,
    require_dtype,
)

# --- unary math -----------------------------------------------------------------------------

def _float_unary(op_type: str, function) -> None:
    """Register Y = function(X) for a float X, as an array also for a 0-d X."""
    def kernel(x):
        require_dtype(x, FLOAT)
        return np.asarray(function(x))
    kernel.__name__ = op_type.lower()
    register_cpu(op_type)(kernel)


_float_unary("Exp", np.exp)
_float_unary("Log", np.log)
_float_unary("Sqrt", np.sqrt)
_float_unary("Abs", np.abs)
_float_unary("Sqr", lambda x: x * x)
gradient_op("Exp", "O0 GO0", gradient_type="Mul")  # dX = Y * dY
gradient_op("Abs", "I0 GO0")


@register_gradient("Log")
def make_log_gradient(g):  # dX = dY / X
    return [g.Op("Div", [g.GO(0), g.I(0)], [g.GI(0)])]


@register_gradient("Sqrt")
def make_sqrt_gradient(g):  # dX = 0.5 * dY / Y
    return [g.Op("Scale", [g.GO(0)], [g.GI(0)], scale=0.5),
            g.Op("Div", [g.GI(0), g.O(0)], [g.GI(0)])]


@register_gradient("Sqr")
def make_sqr_gradient(g):  # dX = 2 * dY * X; unlike Caffe2, dY itself is not scaled in place
    return [g.Op("Scale", [g.GO(0)], [g.GI(0)], scale=2.0),
            g.Op("Mul", [g.GI(0), g.I(0)], [g.GI(0)])]


_float_unary("Sinh", np.sinh)
_float_unary("Cosh", np.cosh)
_float_unary("Cbrt", np.cbrt)
_float_unary("Cube", lambda x: x * x * x)
_float_unary("Reciprocal", np.reciprocal)
_float_unary("Rsqrt", lambda x: 1 / np.sqrt(x))
_float_unary("Sign", np.sign)

# (op type, the gradient op's inputs as Caffe2 orders them, dX from its two inputs)
UNARY_GRADIENTS = [
    ("Sinh", ("dY", "X"), lambda dy, x: dy * np.cosh(x)),
    ("Cosh", ("dY", "X"), lambda dy, x: dy * np.sinh(x)),
    ("Cbrt", ("dY", "Y"), lambda dy, y: dy / (3 * y * y)),
    ("Cube", ("dY", "X"), lambda dy, x: 3 * x * x * dy),
    ("Reciprocal", ("Y", "dY"), lambda y, dy: -dy * y * y),
    ("Rsqrt", ("dY", "Y"), lambda dy, y: -0.5 * dy * y * y * y),
]
_TOKENS = {"dY": "GO0", "X": "I0", "Y": "O0"}


def _unary_gradient(op_type: str, names: tuple, function) -> None:
    def kernel(first, second):
        check_unary_gradient(names, info_of(first), info_of(second))
        return np.asarray(function(first, second), dtype=first.dtype)
    kernel.__name__ = f"{op_type.lower()}_gradient"
    register_cpu(f"{op_type}Gradient")(kernel)
    gradient_op(op_type, " ".join(_TOKENS[name] for name in names))


for _type, _names, _function in UNARY_GRADIENTS:
    _unary_gradient(_type, _names, _function)


def _check_gradient_inputs(first, dy, name: str) -> None:
    """AbsGradient's X, ClipGradient's Y: a float tensor of dY's shape."""
    require_dtype(first, FLOAT, name)
    same_shape(first.shape, dy.shape, (name, "dY"))


@register_cpu("AbsGradient")
def abs_gradient(x, dy):
    _check_gradient_inputs(x, dy, "X")
    return np.asarray(np.sign(x) * dy)  # sign(0) = 0: no gradient at the kink


@register_cpu("Negative", "Neg")
def negative(x):
    require_dtype(x, SIGNED)
    return np.asarray(np.negative(x))


gradient_op("Negative", "GO0", gradient_type="Negative")  # also Neg, its alias


@register_cpu("Scale")
def scale(x, *, scale):
    require_dtype(x, FLOAT)
    return np.asarray(x * x.dtype.type(scale))


gradient_op("Scale", "GO0", gradient_type="Scale")  # the same scale, inherited


@register_cpu("Clip")
def clip(x, *bounds, min, max):  # Caffe2 names the bounds min and max
    if bounds:
        return _clip_by_tensors(x, bounds)
    require_dtype(x, FLOAT)
    t = x.dtype.type
    return np.asarray(np.clip(x, t(min), t(max)))


def _clip_by_tensors(x, bounds):
    """ONNX's Clip: X of any numeric type between one-element bounds of its type."""
    check_clip_bounds(info_of(x), [info_of(b) for b in bounds])
    y = np.maximum(x, bounds[0].reshape(()))
    if len(bounds) == 2:
        y = np.minimum(y, bounds[1].reshape(()))
    return np.asarray(y)


@register_gradient("Clip")
def make_clip_gradient(g):
    if len(g.op.input) > 1:
        raise GradientError("Clip with bound tensors has no gradient (give the bounds as args)")
    return [g.Op("ClipGradient", [g.O(0), g.GO(0)], [g.GI(0)])]


@register_cpu("ClipGradient")
def clip_gradient(y, dy, *, min, max):
    _check_gradient_inputs(y, dy, "Y")
    t = y.dtype.type
    # Strict inequalities on Y: an input clipped to a bound gets no gradient.
    inside = (y > t(min)) & (y < t(max))
    return np.asarray(np.where(inside, dy, dy.dtype.type(0)))


# --- broadcasting binary ops ----------------------------------------------------------------

def _check_operands(names: tuple, allowed: tuple | None, a, b) -> None:
    """A and B share a type (of `allowed`, when given)."""
    if allowed is not None:
        require_dtype(a, allowed, names[0])
    check_same_type(a.dtype.name, b.dtype.name, names)


def _broadcasting(ufunc, allowed: tuple | None, layout, names=("A", "B")):
    """A kernel applying ufunc(a, b) with B lined up by `layout`, after the type checks."""
    def kernel(a, b):
        b_view, _ = layout(a.shape, b.shape)
        _check_operands(names, allowed, a, b)
        return np.asarray(ufunc(a, b.reshape(b_view)))
    return kernel


def _register_binary(op_type: str, ufunc, allowed: tuple | None = None) -> None:
    """Register a comparison, logic or bitwise op: A and B of one type, broadcast, to C
    (bool, or A's type for a bitwise op)."""
    @register_cpu(op_type, specialize=True)
    def factory(*, broadcast, axis, axis_str, order):
        axis = broadcast_axis(broadcast, axis, axis_str, order)
        return _broadcasting(ufunc, allowed, lambda a, b: binary_layout(a, b, axis))


_register_binary("EQ", np.equal)
_register_binary("LT", np.less)
_register_binary("GT", np.greater)
_register_binary("LE", np.less_equal)
_register_binary("GE", np.greater_equal)
_register_binary("And", np.logical_and, BOOL)
_register_binary("Or", np.logical_or, BOOL)
_register_binary("Xor", np.logical_xor, BOOL)
_register_binary("BitwiseAnd", np.bitwise_and, INT_BOOL)
_register_binary("BitwiseOr", np.bitwise_or, INT_BOOL)
_register_binary("BitwiseXor", np.bitwise_xor, INT_BOOL)


def _pow_layout(broadcast, axis, axis_str, order):
    axis = broadcast_axis(broadcast, axis, axis_str, order)
    return lambda x_shape, e_shape: pow_layout(tuple(x_shape), tuple(e_shape), axis)


@register_cpu("Pow", specialize=True)
def pow_(*, exponent, numpy_broadcast, broadcast, axis, axis_str, order):
    """Y = X ** exponent, the exponent from the arg or (exclusively) from input 1."""
    power = _broadcasting(np.power, FLOAT, _pow_layout(broadcast, axis, axis_str, order), POW_NAMES)

    def kernel(x, e=None):
        check_pow_exponent(exponent is not None, e is not None)
        if e is not None:
            return numpy_power(x, e) if numpy_broadcast else power(x, e)
        require_dtype(x, FLOAT)
        return np.asarray(np.power(x, x.dtype.type(exponent)))
    return kernel


def numpy_power(x, e):
    """ONNX's Pow: broadcast, any numeric types, Y of X's type."""
    require_dtype(x, NUMERIC, "X")
    require_dtype(e, NUMERIC, "exponent")
    numpy_broadcast_shape(x.shape, e.shape, POW_NAMES)
    if x.dtype.kind in "iu" and e.dtype.kind in "iu":
        if e.dtype.kind == "i" and np.any(e < 0):
            raise ValueError("an integer X takes no negative integer exponent")
        e = e.astype(np.uint64 if e.dtype.kind == "u" else np.int64)
    with np.errstate(all="ignore"):
        return np.asarray(np.power(x, e)).astype(x.dtype, copy=False)


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
    if g.op.input[0] == g.op.output[0]:  # the base is Y, as the forward op left it
        power, powered, base = (exponent - 1.0) / exponent, g.GI(0) + "_autogen_pow", g.O(0)
    else:
        power, powered, base = exponent - 1.0, g.GI(0), g.I(0)
    return [g.Op("Pow", [base], [powered], exponent=power),
            g.Op("Mul", [powered, g.GO(0)], [g.GI(0)]),
            g.Op("Scale", [g.GI(0)], [g.GI(0)], scale=exponent)]


def _pow_tensor_gradient(g) -> list:
    """Caffe2's ops for Y = X^E: dX = E * X^(E-1) * dY and dE = ln(X) * Y * dY,
    summed down to E's shape under broadcast=1. Only the ops that line E up
    with X take the broadcast args."""
    if g.arg("numpy_broadcast"):
        raise GradientError("Pow with numpy_broadcast=1 has no gradient")
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
    require_dtype(x, BOOL)
    return np.asarray(np.logical_not(x))


@register_cpu("Where")
def where(c, x, y, *, broadcast_on_rows, numpy_broadcast):
    check_where(info_of(c), info_of(x), info_of(y), broadcast_on_rows, numpy_broadcast)
    if not broadcast_on_rows or numpy_broadcast:
        return np.asarray(np.where(c, x, y))
    return np.where(c.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)


# --- CUDA launchers (elementwise.cu): (op types, kernel, float args after the arrays, check) ---

def _checked(check, launcher):
    """`launcher` after the CPU kernel's input check."""
    def run(*inputs, **args):
        check(*inputs)
        return launcher(*inputs, **args)
    run.__name__ = launcher.__name__
    return run


def _float_check(x):
    require_dtype(x, FLOAT)


def _clip_check(x, *bounds):
    if bounds:
        raise ValueError("the CUDA Clip takes its bounds as args; bound tensors run on the CPU")
    require_dtype(x, FLOAT)


CUDA_ELEMENTWISE = [
    (("Exp",), "exp_forward", (), _float_check), (("Log",), "log_forward", (), _float_check),
    (("Sqrt",), "sqrt_forward", (), _float_check), (("Abs",), "abs_forward", (), _float_check),
    (("AbsGradient",), "abs_gradient", (), lambda x, dy: _check_gradient_inputs(x, dy, "X")),
    (("Negative", "Neg"), "negative", (), lambda x: require_dtype(x, SIGNED)),
    (("Sqr",), "sqr", (), _float_check), (("Scale",), "scale", ("scale",), _float_check),
    (("Clip",), "clip", ("min", "max"), _clip_check),
    (("ClipGradient",), "clip_gradient", ("min", "max"), lambda y, dy: _check_gradient_inputs(y, dy, "Y")),
]
for _types, _kernel, _args, _check in CUDA_ELEMENTWISE:
    register_cuda(*_types, args=_args)(_checked(_check, cuda.elementwise("elementwise.cu",
                                                                          _kernel, _args)))


# --- CUDA launchers for comparisons, logic, Pow and Where (elementwise.cu) -------------------
# Every operand is walked over the output's shape with strides (arithmetic's _binary_cuda);
# kernels are instantiated per element type, so these ops keep their int and bool inputs.

CU = "elementwise.cu"
_SUFFIXES = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32",
             np.dtype(np.int64): "i64", np.dtype(np.bool_): "b8"}


def _suffix(x) -> str:
    suffix = _SUFFIXES.get(x.dtype)
    if suffix is None:
        raise ValueError(f"the CUDA kernel takes float32, int32, int64 or bool, got {x.dtype}")
    return suffix


def _register_binary_cuda(op_type: str, kernel: str, allowed: tuple | None = None) -> None:
    names = ("A", "B")

    @register_cuda(op_type, specialize=True)
    def factory(*, broadcast, axis, axis_str, order):
        axis = broadcast_axis(broadcast, axis, axis_str, order)

        def run(a, b):
            b_view, c_shape = binary_layout(tuple(a.shape), tuple(b.shape), axis)
            _check_operands(names, allowed, a, b)
            a, b = cuda.as_gpu(a), cuda.as_gpu(b)
            return _binary_cuda(f"{kernel}_{_suffix(a)}", a, b, a.shape, b_view, c_shape,
                                np.bool_, source=CU)
        return run


for _type, _kernel, _allowed in (("EQ", "eq", None), ("LT", "lt", None), ("GT", "gt", None),
                                 ("LE", "le", None), ("GE", "ge", None), ("And", "and", BOOL),
                                 ("Or", "or", BOOL)):
    _register_binary_cuda(_type, _kernel, _allowed)


@register_cuda("Pow", specialize=True)
def pow_cuda(*, exponent, numpy_broadcast, broadcast, axis, axis_str, order):
    shapes = _pow_layout(broadcast, axis, axis_str, order)
    if numpy_broadcast:
        raise ValueError("the CUDA Pow has no numpy_broadcast=1; that runs on the CPU")

    def run(x, e=None):
        check_pow_exponent(exponent is not None, e is not None)
        if e is None:
            require_dtype(x, FLOAT)
            (x,) = cuda.float32_inputs(x)
            y = cuda.empty_like(x)
            cuda.launch(CU, "pow_scalar", y.size, x, y, np.float32(exponent), np.int64(y.size))
            return y
        e_view, y_shape = shapes(x.shape, e.shape)
        _check_operands(POW_NAMES, FLOAT, x, e)
        x, e = cuda.float32_inputs(x, e)
        kernel = "pow_one_exponent" if e.size == 1 else "pow"  # NumPy's sqrt for a lone 0.5
        return _binary_cuda(kernel, x, e, x.shape, e_view, y_shape, source=CU)
    return run


@register_cuda("Not")
def not_cuda(x):
    require_dtype(x, BOOL)
    x = cuda.as_gpu(x)
    y = cuda.empty_like(x)
    cuda.launch(CU, "not_b8", y.size, x, y, np.int64(y.size))
    return y


@register_cuda("Where")
def where_cuda(c, x, y, *, broadcast_on_rows, numpy_broadcast):
    if numpy_broadcast:
        raise ValueError("the CUDA Where has no numpy_broadcast=1; that runs on the CPU")
    check_where(info_of(c), info_of(x), info_of(y), broadcast_on_rows)
    kernel = f"where_{_suffix(x)}"
    c, x, y = cuda.as_gpu(c), cuda.as_gpu(x), cuda.as_gpu(y)
    z = cuda.empty_like(x)
    inner = z.size // x.shape[0] if broadcast_on_rows and z.size else 1  # C picks whole rows
    cuda.launch(CU, kernel, z.size, c, x, y, z, np.int64(inner), np.int64(z.size))
    return z
