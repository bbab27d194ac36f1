"""Arithmetic kernels (NumPy): Add, Sub, Mul, Div and their gradients,
SumReduceLike, and the variadic Sum, Mean, Max, Min. The binary ops are kernel
factories: at CreateNet their args pick NumPy-style broadcasting (the kernel
is then the bare NumPy ufunc) or Caffe2's legacy rule with its axis resolved
once; under the legacy rule B is reshaped per run with 1s so that it lines up
with A at that axis, through a small cache keyed by the two shapes. Gradients
sum back over the broadcast axes, so dA and dB take A's and B's shapes. Each
op's gradient maker sits beside it; Sum's emits no op (every input shares dY).
The variadic ops take inputs of one shape, or with numpy_broadcast=1 (ONNX's
form, CPU only, no gradient) shapes that broadcast.
The CUDA launchers at the end run arithmetic.cu (float32) for all of these.
Shape checks are schema.inference.arithmetic's, shared with the inference rules.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators._strided import _collapse, _device_ints, _reduction_layout, _strides_over
from pycaffe2.operators.registry import (
    GradientError,
    gradient_op,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.arithmetic import (
    binary_layout,
    broadcast_axis,
    check_alike,
    check_broadcastable,
    check_gradient_shape,
    check_mean_type,
    legacy_axis,
)

# --- broadcasting layouts -------------------------------------------------------------------

def b_layout(broadcast, axis, axis_str, order):
    """A function (A's shape, B's shape) -> the shape B takes when lined up with A."""
    axis = broadcast_axis(broadcast, axis, axis_str, order)
    return lambda a_shape, b_shape: binary_layout(a_shape, b_shape, axis)[0]


@lru_cache(maxsize=512)
def _sum_axes(shape: tuple, target: tuple) -> tuple:
    """The axes of `shape` that NumPy broadcasting added or stretched to reach it from `target`."""
    lead = len(shape) - len(target)
    stretched = (lead + i for i, dim in enumerate(target) if dim == 1 and shape[lead + i] != 1)
    return tuple(range(lead)) + tuple(stretched)


def reduce_like(x, target: tuple, shape: tuple | None = None):
    """x summed down to the broadcast shape `target`, then reshaped to `shape` (default target)."""
    shape = target if shape is None else shape
    if x.shape != target:
        x = x.sum(axis=_sum_axes(x.shape, target), dtype=x.dtype)
    return x if x.shape == shape else x.reshape(shape)


# --- Add, Sub, Mul, Div ---------------------------------------------------------------------

def _true_or_integer_divide(a, b):
    if a.dtype.kind not in "iu":
        return np.divide(a, b)
    if not np.all(b):
        raise ValueError(f"integer division by zero (B {list(np.shape(b))} {b.dtype} has a 0)")
    quotient = np.floor_divide(a, b)
    # NumPy floors; Caffe2 (C++ integer division) truncates toward zero, so negative
    # inexact quotients move up by one.
    return quotient + ((quotient < 0) & (quotient * b != a))


def _binary(function, broadcast, axis, axis_str, order):
    """`function` itself for NumPy broadcasting, else a kernel lining B up with A first."""
    if not broadcast:
        return function
    layout = b_layout(broadcast, axis, axis_str, order)

    def legacy_broadcast(a, b):
        return function(a, b.reshape(layout(a.shape, b.shape)))
    return legacy_broadcast


@register_cpu("Add", specialize=True)
def add(*, broadcast, axis, axis_str, order):
    return _binary(np.add, broadcast, axis, axis_str, order)


@register_cpu("Sub", specialize=True)
def sub(*, broadcast, axis, axis_str, order):
    return _binary(np.subtract, broadcast, axis, axis_str, order)


@register_cpu("Mul", specialize=True)
def mul(*, broadcast, axis, axis_str, order):
    return _binary(np.multiply, broadcast, axis, axis_str, order)


@register_cpu("Div", specialize=True)
def div(*, broadcast, axis, axis_str, order):
    return _binary(_true_or_integer_divide, broadcast, axis, axis_str, order)


# --- their gradients ------------------------------------------------------------------------

# One gradient op each (Caffe2's later form, not SetDense + SumReduceLike): it reduces over the
# broadcast axes itself, under the broadcast/axis/axis_str/order it inherits.
gradient_op("Add", "GO0 I0 I1", "GI0 GI1")
gradient_op("Sub", "GO0 I0 I1", "GI0 GI1")
gradient_op("Mul", "GO0 I0 I1", "GI0 GI1")
gradient_op("Div", "GO0 I0 I1 O0", "GI0 GI1")


def gradient_layout(broadcast, axis, axis_str, order):
    """A function (dC's shape, A's shape, B's shape) -> B's shape lined up with A, which
    first checks that dC has the forward output's shape."""
    axis = broadcast_axis(broadcast, axis, axis_str, order)

    def layout(dc_shape: tuple, a_shape: tuple, b_shape: tuple) -> tuple:
        b_view, c_shape = binary_layout(a_shape, b_shape, axis)
        check_gradient_shape(dc_shape, c_shape)
        return b_view
    return layout


def div_gradient_inputs(inputs) -> tuple:
    """(dC, B, C, A's shape) from DivGradient's (dC, A, B, C), or from the older (B, C, dC),
    whose A has C's shape."""
    if len(inputs) == 3:
        b, c, dc = inputs
        return dc, b, c, tuple(c.shape)
    dc, a, b, c = inputs
    return dc, b, c, tuple(a.shape)


def div_gradient_layout(broadcast, axis, axis_str, order):
    """gradient_layout for DivGradient, which also checks that C has dC's shape."""
    layout = gradient_layout(broadcast, axis, axis_str, order)

    def checked(dc_shape: tuple, a_shape: tuple, b_shape: tuple, c_shape: tuple) -> tuple:
        b_view = layout(dc_shape, a_shape, b_shape)
        check_gradient_shape(c_shape, dc_shape, "C")
        return b_view
    return checked


@register_cpu("AddGradient", specialize=True)
def add_gradient(*, broadcast, axis, axis_str, order):
    layout = gradient_layout(broadcast, axis, axis_str, order)

    def kernel(dc, a, b):
        return reduce_like(dc, a.shape), reduce_like(dc, layout(dc.shape, a.shape, b.shape), b.shape)
    return kernel


@register_cpu("SubGradient", specialize=True)
def sub_gradient(*, broadcast, axis, axis_str, order):
    layout = gradient_layout(broadcast, axis, axis_str, order)

    def kernel(dc, a, b):
        db = reduce_like(dc, layout(dc.shape, a.shape, b.shape), b.shape)
        return reduce_like(dc, a.shape), np.negative(db)
    return kernel


@register_cpu("MulGradient", specialize=True)
def mul_gradient(*, broadcast, axis, axis_str, order):
    layout = gradient_layout(broadcast, axis, axis_str, order)

    def kernel(dc, a, b):
        b_view = layout(dc.shape, a.shape, b.shape)
        da = reduce_like(dc * b.reshape(b_view), a.shape)
        return da, reduce_like(dc * a, b_view, b.shape)
    return kernel


@register_cpu("DivGradient", specialize=True)
def div_gradient(*, broadcast, axis, axis_str, order):
    layout = div_gradient_layout(broadcast, axis, axis_str, order)

    def kernel(*inputs):
        dc, b, c, a_shape = div_gradient_inputs(inputs)
        b_view = layout(dc.shape, a_shape, b.shape, c.shape)
        da = dc / b.reshape(b_view)
        db = reduce_like(-da * c, b_view, b.shape)
        return reduce_like(da, a_shape), db
    return kernel


@register_cpu("SumReduceLike", specialize=True)
def sum_reduce_like(*, axis, axis_str, order):
    axis = legacy_axis(axis, axis_str, order)

    def kernel(a, b):
        return reduce_like(a, binary_layout(a.shape, b.shape, axis)[0], b.shape)
    return kernel


# --- Sum, Mean, Max, Min --------------------------------------------------------------------

def check_inputs_alike(xs) -> None:
    check_alike([info_of(x) for x in xs])


def _fold(ufunc, xs, numpy_broadcast=0):
    """`ufunc` folded over inputs of one type (and one shape, unless numpy_broadcast) into a
    new array (X0 itself when alone)."""
    if numpy_broadcast:
        shape = check_broadcastable([info_of(x) for x in xs]).shape
    else:
        check_inputs_alike(xs)
        shape = xs[0].shape
    if len(xs) == 1:
        return xs[0]
    out = ufunc(xs[0], xs[1], out=np.empty(shape, xs[0].dtype))
    for x in xs[2:]:
        ufunc(out, x, out=out)
    return out


@register_cpu("Sum")
def sum_(*xs, numpy_broadcast):
    return _fold(np.add, xs, numpy_broadcast)


@register_cpu("Mean")
def mean(*xs, numpy_broadcast):
    check_mean_type(xs[0].dtype.name)
    return np.asarray(_fold(np.add, xs, numpy_broadcast) / xs[0].dtype.type(len(xs)))


def _check_differentiable(g) -> None:
    # Under NumPy broadcasting each input's gradient would need summing down to its shape.
    if g.arg("numpy_broadcast"):
        raise GradientError(f"{g.op.type} with numpy_broadcast=1 has no gradient")


@register_gradient("Sum")
def make_sum_gradient(g):
    _check_differentiable(g)
    # No op: every input's gradient is the output's (SetDense pass-through, as Caffe2).
    for i in range(len(g.op.input)):
        g.SetDense(i, g.GO(0))
    return []


@register_gradient("Mean")
def make_mean_gradient(g):
    _check_differentiable(g)
    return [g.Op("MeanGradient", [g.GO(0)], [g.GI(i) for i in range(len(g.op.input))])]


@register_cpu("MeanGradient")
def mean_gradient(dy, *, num_outputs):
    return (dy / dy.dtype.type(num_outputs),) * num_outputs


@register_cpu("Max")
def max_(*xs, numpy_broadcast):
    return _fold(np.maximum, xs, numpy_broadcast)


@register_cpu("Min")
def min_(*xs, numpy_broadcast):
    return _fold(np.minimum, xs, numpy_broadcast)


@register_gradient("Max", "Min")
def make_max_min_gradient(g):
    _check_differentiable(g)
    n = len(g.op.input)
    inputs = [g.O(0), g.GO(0)] + [g.I(i) for i in range(n)]
    return [g.Op(g.op.type + "Gradient", inputs, [g.GI(i) for i in range(n)])]


@register_cpu("MaxGradient", "MinGradient")
def select_gradient(y, dy, *xs):
    """dX_i = dY where X_i is the selected value Y (every tie receives it), else 0."""
    zero = dy.dtype.type(0)
    return tuple(np.where(x == y, dy, zero) for x in xs)


# --- CUDA launchers (arithmetic.cu): operands walked over C's shape by _strided's layouts -------

CU = "arithmetic.cu"


def _binary_cuda(kernel: str, a, b, a_shape: tuple, b_shape: tuple, out_shape: tuple,
                 dtype=np.float32, source: str = CU):
    """A new C of out_shape: a `kernel` b, each operand (of the given shape) broadcast over C,
    by `<kernel>_same` (both of C's layout) or `<kernel>_strided` of `source`."""
    out = cuda.empty(out_shape, dtype)
    dims, (a_strides, b_strides) = _collapse(out_shape, _strides_over(a_shape, out_shape),
                                             _strides_over(b_shape, out_shape))
    n = np.int64(out.size)
    if len(dims) <= 1 and all(s == 1 for s in a_strides + b_strides):
        cuda.launch(source, f"{kernel}_same", out.size, a, b, out, n)
    else:
        meta = _device_ints(tuple(dims + a_strides + b_strides))
        cuda.launch(source, f"{kernel}_strided", out.size, a, b, out, meta, np.int32(len(dims)), n)
    return out


def _reduce_cuda(x, target: tuple, shape: tuple | None = None, scale: float = 1.0):
    """scale * x (contiguous) summed down to `target`, which broadcasts to x's shape; the
    result takes `shape` (default target, same size). x itself when there is nothing to do."""
    shape = target if shape is None else shape
    if x.shape == target == shape and scale == 1.0:
        return x
    y = cuda.empty(shape)
    if y.size == 0:
        return y
    if x.size == 0:  # a sum over nothing
        y.fill(np.float32(0))
        return y
    meta, n_kept, n_reduced, n_red = _reduction_layout(x.shape, target)
    args = (x, y, meta, n_kept, n_reduced, np.int64(y.size), np.int64(n_red), np.float32(scale))
    if n_red <= 32 or y.size >= 65536:
        cuda.launch(CU, "reduce_serial", y.size, *args)
    else:  # one block per target element; the kernel assumes 256 threads
        cuda.function(CU, "reduce_blocks")(*args, block=(256, 1, 1), grid=(min(y.size, cuda.max_blocks()), 1))
    return y


def _binary_launcher(op_type: str, kernel: str):
    def factory(*, broadcast, axis, axis_str, order):
        axis = broadcast_axis(broadcast, axis, axis_str, order)

        def run(a, b):
            a, b = cuda.float32_inputs(a, b)
            b_view, c_shape = binary_layout(a.shape, b.shape, axis)
            return _binary_cuda(kernel, a, b, a.shape, b_view, c_shape)
        return run
    register_cuda(op_type, specialize=True)(factory)


for _type, _kernel in (("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Div", "div")):
    _binary_launcher(_type, _kernel)


def _sum_gradient_launcher(op_type: str, b_scale: float):
    """AddGradient (dB = dC) and SubGradient (dB = -dC), summed to A's and B's shapes."""
    def factory(*, broadcast, axis, axis_str, order):
        layout = gradient_layout(broadcast, axis, axis_str, order)

        def run(dc, a, b):
            (dc,) = cuda.float32_inputs(dc)
            b_view = layout(dc.shape, a.shape, b.shape)
            return _reduce_cuda(dc, a.shape), _reduce_cuda(dc, b_view, b.shape, b_scale)
        return run
    register_cuda(op_type, specialize=True)(factory)


_sum_gradient_launcher("AddGradient", 1.0)
_sum_gradient_launcher("SubGradient", -1.0)


@register_cuda("MulGradient", specialize=True)
def mul_gradient_cuda(*, broadcast, axis, axis_str, order):
    layout = gradient_layout(broadcast, axis, axis_str, order)

    def run(dc, a, b):
        dc, a, b = cuda.float32_inputs(dc, a, b)
        b_view = layout(dc.shape, a.shape, b.shape)
        da = _reduce_cuda(_binary_cuda("mul", dc, b, dc.shape, b_view, dc.shape), a.shape)
        return da, _reduce_cuda(_binary_cuda("mul", dc, a, dc.shape, a.shape, dc.shape), b_view, b.shape)
    return run


@register_cuda("DivGradient", specialize=True)
def div_gradient_cuda(*, broadcast, axis, axis_str, order):
    layout = div_gradient_layout(broadcast, axis, axis_str, order)

    def run(*inputs):
        dc, b, c, a_shape = div_gradient_inputs(inputs)
        dc, b, c = cuda.float32_inputs(dc, b, c)
        b_view = layout(dc.shape, a_shape, b.shape, c.shape)
        da = _binary_cuda("div", dc, b, dc.shape, b_view, dc.shape)  # dC / B, C's shape
        terms = _binary_cuda("mul", da, c, dc.shape, c.shape, dc.shape)
        return _reduce_cuda(da, a_shape), _reduce_cuda(terms, b_view, b.shape, -1.0)
    return run


@register_cuda("SumReduceLike", specialize=True)
def sum_reduce_like_cuda(*, axis, axis_str, order):
    axis = legacy_axis(axis, axis_str, order)

    def run(a, b):
        (a,) = cuda.float32_inputs(a)
        return _reduce_cuda(a, binary_layout(a.shape, tuple(b.shape), axis)[0], b.shape)
    return run


# --- Sum, Mean, Max, Min on CUDA: folded in input order, as on the CPU ------------------------

def _fold_cuda(op_type: str, kernel: str, xs, numpy_broadcast=0):
    if numpy_broadcast:
        raise ValueError(f"the CUDA {op_type} takes inputs of one shape; numpy_broadcast=1 runs on the CPU")
    xs = cuda.float32_inputs(*xs)
    check_inputs_alike(xs)
    if len(xs) == 1:
        return xs[0]
    out, n = cuda.empty_like(xs[0]), np.int64(xs[0].size)
    cuda.launch(CU, f"{kernel}_same", out.size, xs[0], xs[1], out, n)
    for x in xs[2:]:
        cuda.launch(CU, f"{kernel}_into", out.size, x, out, n)
    return out


def _divide_cuda(x, d: int):
    out = cuda.empty_like(x)
    cuda.launch(CU, "divide_by", out.size, x, out, np.float32(d), np.int64(out.size))
    return out


@register_cuda("Sum")
def sum_cuda(*xs, numpy_broadcast):
    return _fold_cuda("Sum", "add", xs, numpy_broadcast)


@register_cuda("Mean")
def mean_cuda(*xs, numpy_broadcast):
    return _divide_cuda(_fold_cuda("Mean", "add", xs, numpy_broadcast), len(xs))


@register_cuda("MeanGradient")
def mean_gradient_cuda(dy, *, num_outputs):
    (dy,) = cuda.float32_inputs(dy)
    return (_divide_cuda(dy, num_outputs),) * num_outputs


@register_cuda("Max")
def max_cuda(*xs, numpy_broadcast):
    return _fold_cuda("Max", "max", xs, numpy_broadcast)


@register_cuda("Min")
def min_cuda(*xs, numpy_broadcast):
    return _fold_cuda("Min", "min", xs, numpy_broadcast)


def _select_gradient_launcher(op_type: str) -> None:
    """MaxGradient, MinGradient: dX_i = dY where X_i equals Y, else 0."""
    def run(y, dy, *xs):
        y, dy, *xs = cuda.float32_inputs(y, dy, *xs)
        check_inputs_alike([y, dy, *xs])
        outputs = tuple(cuda.empty_like(dy) for _ in xs)
        for x, dx in zip(xs, outputs):
            cuda.launch(CU, "select_gradient", dx.size, x, y, dy, dx, np.int64(dx.size))
        return outputs
    register_cuda(op_type)(run)


_select_gradient_launcher("MaxGradient")
_select_gradient_launcher("MinGradient")
