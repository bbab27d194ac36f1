"""Pooling family (MaxPool, AveragePool, their aliases and gradient ops, LpPool, and LRN): each
op against a loop-over-positions NumPy reference on both devices, NHWC against NCHW,
gradients against numeric differentiation, the registered gradient makers, shape
inference (Caffe's ceil-mode pooling sizes included), and clear shape errors alike on
both devices. CUDA against the CPU twin runs pooling over geometries the schema's
`window` resolves (pads, strides, dilation, legacy_pad=3, global pooling, windows wholly
in padding, over 1M elements), in NCHW and NHWC, at 1 to 3 spatial dims through the
aliases; MaxPoolGradient also on tie-heavy inputs (small integers), where every tied
max gets dY."""
import math

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.operators import pooling
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import CUDA, check_devices, check_gradient_op, check_reference, make_op, run_op
from tests.operators import DEVICES
from tests.operators.test_conv import nhwc, out_size, randn, rng
from tests.schema import infer


def ref_pool(x, kind, kernel, stride, head, out, count_include_pad=False, p=2.0):
    """Max, average or L_p pooling (NCHW) by loops over output positions; windows clipped to X."""
    y = np.zeros(x.shape[:2] + tuple(out))
    for pos in np.ndindex(*out):
        cells = tuple(slice(max(p * s - h, 0), min(p * s - h + k, size))
                      for p, k, s, h, size in zip(pos, kernel, stride, head, x.shape[2:]))
        window = x[(slice(None), slice(None)) + cells].astype(np.float64)
        axes = tuple(range(2, x.ndim))
        if kind == "MaxPool":
            y[(slice(None), slice(None)) + pos] = window.max(axis=axes)
        elif kind == "LpPool":
            y[(slice(None), slice(None)) + pos] = (np.abs(window) ** p).sum(axis=axes) ** (1 / p)
        else:
            count = math.prod(kernel) if count_include_pad else math.prod(window.shape[2:])
            y[(slice(None), slice(None)) + pos] = window.sum(axis=axes) / count
    return y


def ref_lrn(x, size, alpha, beta, bias):
    """LRN (NCHW) by a loop over channels: the window of c starts at c - (size - 1) // 2."""
    scale = np.empty(x.shape)
    for c in range(x.shape[1]):
        lo = c - (size - 1) // 2
        scale[:, c] = bias + alpha / size * np.sum(x[:, max(lo, 0):lo + size].astype(np.float64) ** 2, axis=1)
    return x * scale ** -beta, scale


def caffe_pool_size(size, k, s, pad):
    """Caffe's pooling size: rounded up, then the last window must start inside X or the head pad."""
    out = math.ceil((size + 2 * pad - k) / s) + 1
    return out - 1 if pad and (out - 1) * s >= size + pad else out


# (X shape, args, kernel, stride, head pads, output size)
POOL = [
    ((2, 3, 6, 7), {"kernel": 2, "stride": 2}, (2, 2), (2, 2), (0, 0), (3, 3)),
    ((2, 3, 6, 7), {"kernel": 3, "stride": 2, "pad": 1}, (3, 3), (2, 2), (1, 1), (3, 4)),
    ((2, 3, 5, 6), {"kernels": [3, 2], "strides": [1, 2], "pads": [1, 0, 2, 1]}, (3, 2), (1, 2), (1, 0), (6, 3)),
    ((2, 3, 9), {"kernel": 4, "stride": 2, "pad": 2}, (4,), (2,), (2,), (5,)),
    ((1, 2, 4, 5, 3), {"kernel": 2, "stride": 2, "pad": 1}, (2,) * 3, (2,) * 3, (1,) * 3, (3, 3, 2)),
    ((1, 2, 4, 4), {"kernel": 2, "stride": 3, "pad": 1, "legacy_pad": 3}, (2, 2), (3, 3), (1, 1),
     (caffe_pool_size(4, 2, 3, 1),) * 2),
    ((1, 2, 8, 6), {"kernel": 3, "stride": 2, "legacy_pad": 3}, (3, 3), (2, 2), (0, 0),
     (caffe_pool_size(8, 3, 2, 0), caffe_pool_size(6, 3, 2, 0))),
    ((1, 2, 7, 7), {"kernel": 3, "stride": 2, "legacy_pad": 2}, (3, 3), (2, 2), (1, 1), (4, 4)),
    ((2, 3, 5, 4), {"global_pooling": 1, "kernel": 0, "legacy_pad": 3}, (5, 4), (1, 1), (0, 0), (1, 1)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("x_shape, args, kernel, stride, head, out", POOL)
def test_pool_matches_reference_in_both_orders(op_type, x_shape, args, kernel, stride, head, out, device):
    x = randn(*x_shape)
    (y,) = check_reference(op_type, [x], lambda *_, **__: ref_pool(x, op_type, kernel, stride, head, out), args,
                           device=device)
    assert y.dtype == np.float32
    check_reference(op_type, [nhwc(x)], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"}, device=device)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
@pytest.mark.parametrize("x_shape, args, kernel, stride, head, out", POOL)
def test_lp_pool_matches_reference_in_both_orders(p, x_shape, args, kernel, stride, head, out):
    x = randn(*x_shape)
    args = {**args, "p": p}
    def reference(*_, **__):
        return ref_pool(x, "LpPool", kernel, stride, head, out, p=p)

    (y,) = check_reference("LpPool", [x], reference, args, rtol=1e-4)
    assert y.dtype == np.float32
    check_reference("LpPool", [nhwc(x)], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"}, rtol=1e-4)


def test_lp_pool_defaults_to_the_2_norm_and_passes_no_gradient_through_a_zero_window():
    x = np.array([[[[3.0, 4.0], [0.0, 0.0]]]], np.float32)
    (y,) = run_op("LpPool", [x], {"kernel_h": 1, "kernel_w": 2})
    np.testing.assert_allclose(y, [[[[5.0], [0.0]]]])
    (dx,) = run_op("LpPoolGradient", [x, y, np.ones_like(y)], {"kernel_h": 1, "kernel_w": 2})
    np.testing.assert_allclose(dx, [[[[0.6, 0.8], [0.0, 0.0]]]])


@pytest.mark.parametrize("device", DEVICES)
def test_average_pool_count_include_pad(device):
    x = randn(2, 3, 5, 6)
    args = {"kernel": 3, "stride": 2, "pad": 1, "count_include_pad": 1}
    check_reference("AveragePool", [x], lambda *_, **__: ref_pool(x, "AveragePool", (3, 3), (2, 2), (1, 1),
                                                                  (3, 3), count_include_pad=True), args,
                    device=device)



def test_squeezenet_pool_sizes():
    """SqueezeNet's pool1 (3x3/2, legacy_pad=3) on 111 gives 55; its global pool gives 1x1."""
    (y,) = run_op("MaxPool", [randn(1, 2, 111, 111)], {"kernel": 3, "stride": 2, "pad": 0, "legacy_pad": 3})
    assert y.shape == (1, 2, 55, 55)
    x = randn(1, 4, 13, 13)
    (y,) = run_op("AveragePool", [x], {"kernel": 0, "global_pooling": 1, "legacy_pad": 3, "stride": 1})
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size, alpha, beta, bias", [(3, 0.1, 0.75, 2.0), (5, 1e-4, 0.75, 1.0), (4, 0.5, 0.5, 1.5),
                                                     (1, 0.3, 1.0, 1.0)])
def test_lrn_matches_reference_in_both_orders(size, alpha, beta, bias, device):
    x = randn(2, 6, 3, 4)
    args = {"size": size, "alpha": alpha, "beta": beta, "bias": bias}
    y, scale = check_reference("LRN", [x], lambda *_, **__: ref_lrn(x, size, alpha, beta, bias), args,
                               num_outputs=2, device=device)
    assert y.dtype == scale.dtype == np.float32
    check_reference("LRN", [nhwc(x)], lambda *_, **__: (nhwc(y), nhwc(scale)), {**args, "order": "NHWC"},
                    num_outputs=2, device=device)


def test_float64_keeps_its_dtype():
    x = randn(1, 2, 5, 5, dtype=np.float64)
    for op_type in ("MaxPool", "AveragePool"):
        assert run_op(op_type, [x], {"kernel": 2})[0].dtype == np.float64
    assert run_op("LRN", [x], {"size": 3, "alpha": 0.1, "beta": 0.5})[0].dtype == np.float64



def distinct(*shape):
    """Values at least 0.05 apart, so max pooling has no ties within numeric steps."""
    return (rng.permutation(math.prod(shape)).reshape(shape) * 0.05 - 1).astype(np.float64)


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, args", [
    ((2, 2, 5, 4), {"kernel": 3, "stride": 2, "pad": 1}),
    ((1, 2, 6, 5), {"kernel": 3, "stride": 2, "legacy_pad": 3}),
    ((1, 2, 7), {"kernel": 2, "stride": 1, "dilation": 2, "pads": [1, 0]}),
    ((1, 2, 3, 4), {"global_pooling": 1}),
    ((1, 2, 3, 4, 3), {"kernel": 2, "stride": 2, "pad": 1, "count_include_pad": 1}),
])
def test_pool_gradient_matches_numeric(op_type, order, x_shape, args):
    if op_type != "AveragePool" and "count_include_pad" in args:
        args = {k: v for k, v in args.items() if k != "count_include_pad"}
    x, tol = distinct(*x_shape), 1e-6
    if op_type == "LpPool":  # curved: central differences err by ~delta^2; X kept off |x|'s kink at 0
        args, x, tol = {**args, "p": 3.0}, x + 0.025, 1e-4
    x = nhwc(x) if order == "NHWC" else x
    args = {**args, "order": order}
    (y,) = run_op(op_type, [x], args)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op(op_type, [x], op_type + "Gradient", [x, y, dy], {0: 0}, [dy], args, atol=tol, rtol=tol)


def test_max_pool_gradient_goes_to_every_tied_max():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]], np.float32)
    (dx,) = run_op("MaxPoolGradient", [x, np.array([[[[3.0]]]], np.float32), np.array([[[[2.0]]]], np.float32)],
                   {"kernel": 2})
    np.testing.assert_array_equal(dx, [[[[0, 2], [2, 0]]]])


def ref_pool_gradient(x, dy, kind, kernel, stride, head, out, count_include_pad=False):
    """dX of max or average pooling (NCHW) by loops over windows clipped to X: every cell
    equal to its window's max gets the window's dY (ties all do), summed over windows."""
    dx = np.zeros(x.shape)
    for pos in np.ndindex(*out):
        cells = (slice(None), slice(None)) + tuple(
            slice(max(p * s - h, 0), min(p * s - h + k, size))
            for p, k, s, h, size in zip(pos, kernel, stride, head, x.shape[2:]))
        window = x[cells].astype(np.float64)
        share = dy[(slice(None), slice(None)) + pos].astype(np.float64).reshape(x.shape[:2] + (1,) * len(out))
        if kind == "MaxPool":
            top = window.max(axis=tuple(range(2, x.ndim)), keepdims=True)
            dx[cells] += (window == top) * share
        else:
            dx[cells] += share / (math.prod(kernel) if count_include_pad else math.prod(window.shape[2:]))
    return dx


# (X shape, args, kernel, stride, head pads, output size): tiled windows (kernel = stride, with
# and without cells past the last window), overlapping ones with and without padding, 1-D, 3-D
POOL_GRADIENT = [
    ((2, 3, 6, 8), {"kernel": 2, "stride": 2}, (2, 2), (2, 2), (0, 0), (3, 4)),
    ((1, 2, 7, 5), {"kernel": 2, "stride": 2}, (2, 2), (2, 2), (0, 0), (3, 2)),
    ((2, 2, 7, 9), {"kernel": 3, "stride": 2, "pad": 1}, (3, 3), (2, 2), (1, 1), (4, 5)),
    ((2, 2, 7, 7), {"kernel": 3, "stride": 2}, (3, 3), (2, 2), (0, 0), (3, 3)),
    ((1, 3, 5, 6), {"kernels": [3, 2], "strides": [1, 2], "pads": [1, 0, 2, 1]}, (3, 2), (1, 2), (1, 0), (6, 3)),
    ((2, 2, 9), {"kernel": 3, "stride": 3}, (3,), (3,), (0,), (3,)),
    ((1, 2, 4, 5, 6), {"kernel": 2, "stride": 2}, (2,) * 3, (2,) * 3, (0,) * 3, (2, 2, 3)),
]


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("kind, count_include_pad", [("MaxPool", 0), ("AveragePool", 0), ("AveragePool", 1)])
@pytest.mark.parametrize("x_shape, args, kernel, stride, head, out", POOL_GRADIENT)
def test_pool_and_gradient_match_loops_on_ties(kind, count_include_pad, order, x_shape, args, kernel, stride,
                                               head, out):
    x = rng.integers(-2, 3, x_shape).astype(np.float32)  # small integers: many tied maxima
    dy = randn(*x_shape[:2], *out)
    args = {**args, "count_include_pad": count_include_pad} if kind == "AveragePool" else args
    y = ref_pool(x, kind, kernel, stride, head, out, count_include_pad=bool(count_include_pad))
    dx = ref_pool_gradient(x, dy, kind, kernel, stride, head, out, bool(count_include_pad))
    if order == "NHWC":
        x, y, dy, dx = nhwc(x), nhwc(y), nhwc(dy), nhwc(dx)
    args = {**args, "order": order}
    (got,) = run_op(kind, [x], args)
    np.testing.assert_allclose(got, y, rtol=1e-6, atol=1e-6)
    (got,) = run_op(kind + "Gradient", [x, got, dy], args)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, dx, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, args, kernel, stride, head, out", POOL_GRADIENT + [
    ((1, 2, 9, 10), {"kernel": 3, "stride": 3, "pad": 1}, (3, 3), (3, 3), (1, 1), (3, 4)),
    ((1, 2, 6, 11), {"kernels": [2, 3], "strides": [1, 3], "pads": [0, 2, 1, 1]}, (2, 3), (1, 3), (0, 2), (6, 4)),
])
def test_max_pool_gradient_in_column_phases_matches_loops(x_shape, args, kernel, stride, head, out, order,
                                                          monkeypatch):
    """Big X takes the gradient through column phases; here every size does."""
    monkeypatch.setattr(pooling, "PHASED_SIZE", 0)
    x = rng.integers(-2, 3, x_shape).astype(np.float32)
    y = ref_pool(x, "MaxPool", kernel, stride, head, out).astype(np.float32)
    dy = randn(*y.shape)
    dx = ref_pool_gradient(x, dy, "MaxPool", kernel, stride, head, out)
    if order == "NHWC":
        x, y, dy, dx = nhwc(x), nhwc(y), nhwc(dy), nhwc(dx)
    (got,) = run_op("MaxPoolGradient", [x, y, dy], {**args, "order": order})
    np.testing.assert_allclose(got, dx, rtol=1e-6, atol=1e-6)


def test_pool_gradients_take_non_contiguous_inputs():
    x = rng.integers(-2, 3, (2, 3, 8, 16)).astype(np.float32)[:, :, :, ::2]
    dy = randn(2, 3, 4, 8)[:, ::-1, :, ::2]
    for kind in ("MaxPool", "AveragePool"):
        (y,) = run_op(kind, [x], {"kernel": 2, "stride": 2})
        (dx,) = run_op(kind + "Gradient", [x, y, dy], {"kernel": 2, "stride": 2})
        expected = ref_pool_gradient(x, dy, kind, (2, 2), (2, 2), (0, 0), (4, 4))
        np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("size", [3, 4])
def test_lrn_gradient_matches_numeric(size, order):
    x = randn(2, 5, 2, 3, dtype=np.float64)
    x = nhwc(x) if order == "NHWC" else x
    args = {"size": size, "alpha": 0.4, "beta": 0.75, "bias": 1.5, "order": order}
    (y,) = run_op("LRN", [x], args)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op("LRN", [x], "LRNGradient", [x, y, dy], {0: 0}, [dy], args, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("MaxPool", [randn(1, 2, 5, 5)], {}, "no kernel size"),
    ("AveragePoolGradient", [randn(1, 1, 4, 4), randn(1, 1, 2, 2), randn(1, 1, 2, 3)], {"kernel": 2, "stride": 2},
     r"dY is \[1, 1, 2, 3\] but pooling X \[1, 1, 4, 4\] gives \[1, 1, 2, 2\]"),
    ("LRNGradient", [randn(1, 3, 2), randn(1, 3, 2), randn(1, 3, 3)], {"size": 3}, "must have one shape"),
    ("LRN", [randn(5)], {"size": 3}, r"X \[5\] needs a channel axis"),
])
def test_shape_errors_are_clear(op_type, inputs, args, message, device):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, device_option=CUDA if device == "cuda" else None)


POOL_MAKER = [  # (X shape (NCHW), args)
    ((1, 2, 5, 4), {"kernel": 3, "stride": 2, "pad": 1}),
    ((1, 1, 6, 5), {"kernel": 3, "stride": 2, "legacy_pad": 3, "order": "NHWC"}),
    ((2, 1, 7), {"kernel": 2, "dilation": 2, "pads": [1, 0]}),
    ((1, 2, 3, 4), {"global_pooling": 1, "order": "NHWC"}),
    ((1, 1, 3, 4, 3), {"kernel": 2, "stride": 2, "pad": 1}),
]


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("x_shape, args", POOL_MAKER)
def test_pool_registered_gradient(op_type, x_shape, args):
    x = distinct(*x_shape)  # no ties within a numeric step
    x = nhwc(x) if args.get("order") == "NHWC" else x
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("op_type, x_shape", [("MaxPool2D", (1, 2, 4, 4)), ("AveragePool1D", (1, 2, 5))])
def test_pool_alias_registered_gradient(op_type, x_shape):
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], {"kernel": 2, "stride": 1}), [distinct(*x_shape)], 0)
    assert report.ok, report


def test_average_pool_registered_gradient_counting_padding():
    op = make_op("AveragePool", ["X"], ["Y"], {"kernel": 3, "stride": 2, "pad": 1, "count_include_pad": 1})
    report = check_op_gradient(op, [randn(1, 2, 4, 3, dtype=np.float64)], 0)
    assert report.ok, report


@pytest.mark.parametrize("size, order, outputs", [(3, "NCHW", ["Y"]), (4, "NHWC", ["Y"]), (5, "NCHW", ["Y", "S"])])
def test_lrn_registered_gradient(size, order, outputs):
    x = randn(1, 5, 2, 2, dtype=np.float64)
    x = nhwc(x) if order == "NHWC" else x
    op = make_op("LRN", ["X"], outputs, {"size": size, "alpha": 0.4, "beta": 0.75, "bias": 1.5, "order": order})
    report = check_op_gradient(op, [x], 0)
    assert report.ok, report


# -- shape inference ---------------------------------------------------------------------------

@pytest.mark.parametrize("size, k, s, pad, expected", [
    (111, 3, 2, 0, 55),  # SqueezeNet's pool1 on conv1's output
    (112, 3, 2, 0, 56), (113, 3, 2, 0, 56), (6, 2, 2, 0, 3), (7, 2, 2, 0, 4),
    (5, 3, 2, 1, 3), (6, 3, 2, 1, 4), (4, 2, 3, 1, 2),
])
def test_legacy_caffe_pooling_size(size, k, s, pad, expected):
    assert caffe_pool_size(size, k, s, pad) == expected
    for op_type in ("MaxPool", "AveragePool"):
        (y,) = infer(op_type, [(1, 2, size, size)], kernel=k, stride=s, pad=pad, legacy_pad=3)
        assert y.shape == (1, 2, expected, expected)
    assert infer("MaxPool", [(1, 2, size, size)], kernel=k, stride=s, pad=pad)[0].shape[2] == \
        out_size(size, k, s, 1, pad, pad)


@pytest.mark.parametrize("x, args, y", [
    ((2, 3, 8, 8), {"kernel": 2, "stride": 2}, (2, 3, 4, 4)),
    ((2, 8, 8, 3), {"kernel": 3, "pad": 1, "order": "NHWC"}, (2, 8, 8, 3)),
    ((2, 3, 13, 13), {"kernel": 0, "global_pooling": 1, "legacy_pad": 3}, (2, 3, 1, 1)),
    ((2, 3, 9), {"kernels": [3], "strides": [2]}, (2, 3, 4)),
    ((1, 2, 4, 5, 6), {"kernel": 2, "stride": 2, "pad": 1}, (1, 2, 3, 3, 4)),
    ((1, 1, 7, 7), {"kernel": 3, "stride": 2, "legacy_pad": 2}, (1, 1, 4, 4)),
    ((1, 1, 7, 7), {"kernel": 3, "stride": 2, "legacy_pad": 1}, (1, 1, 3, 3)),
])
def test_pool_output_shapes(x, args, y):
    for op_type in ("MaxPool", "AveragePool", "MaxPool2D", "LpPool"):
        assert infer(op_type, [x], **args) == [TensorInfo(y)]
    for op_type in ("MaxPoolGradient", "LpPoolGradient"):
        assert infer(op_type, [x, y, y], **args) == [TensorInfo(x)]


def test_lrn_shapes():
    assert infer("LRN", [(2, 5, 3, 3)], n_out=2, size=3) == [TensorInfo((2, 5, 3, 3))] * 2
    assert infer("LRNGradient", [(2, 5, 3, 3)] * 3, size=3) == [TensorInfo((2, 5, 3, 3))]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("MaxPool", [(2, 3, 8, 8)], {}, "no kernel size: give kernel"),
    ("MaxPool", [(2, 3, 8, 8)], {"kernel": 0}, r"kernel \[0, 0\] must be positive"),
    ("AveragePool", [(2, 3, 2, 2)], {"kernel": 3}, "is larger than X"),
    ("MaxPoolGradient", [(2, 3, 8, 8), (2, 3, 4, 4), (2, 3, 3, 4)], {"kernel": 2, "stride": 2},
     r"dY is \[2, 3, 3, 4\] but pooling X \[2, 3, 8, 8\] gives \[2, 3, 4, 4\]"),
    ("LRN", [(5,)], {"size": 3}, r"^X \[5\] needs a channel axis \(rank 2 or more\)"),
    ("LRNGradient", [(1, 3, 2), None, (1, 3, 3)], {"size": 3},
     r"^X \[1, 3, 2\], Y unknown and dY \[1, 3, 3\] must have one shape"),
    ("LpPool", [(2, 3, 8, 8)], {"kernel": 2, "p": 0.0}, r"^p is 0.0 but must be positive"),
    ("LpPoolGradient", [(2, 3, 8, 8), (2, 3, 4, 4), (2, 3, 4, 5)], {"kernel": 2, "stride": 2},
     r"dY is \[2, 3, 4, 5\] but pooling X \[2, 3, 8, 8\] gives \[2, 3, 4, 4\]"),
])
def test_inference_errors_name_the_shapes(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)



# -- CUDA against the CPU twin ------------------------------------------------------------------

def ties(*shape):
    """Small integers: max pooling windows hold many tied maxima."""
    return rng.integers(0, 4, shape).astype(np.float32)


def pool_gradient_inputs(forward, make=randn):
    """(X, Y, dY) for a pooling gradient op, Y from the CPU forward op."""
    def inputs(shape, args):
        x = make(*shape)
        (y,) = run_op(forward, [x], args)
        return [x, y, randn(*y.shape)]
    return inputs


def lrn_gradient_inputs(shape, args):
    x = randn(*shape)
    y = run_op("LRN", [x], args)[0]
    return [x, y, randn(*shape)]


# op type -> (inputs for (shape, args), outputs compared)
CASES = {
    "MaxPool": (lambda s, a: [randn(*s)], 1),
    "AveragePool": (lambda s, a: [randn(*s)], 1),
    "MaxPoolGradient": (pool_gradient_inputs("MaxPool"), 1),
    "AveragePoolGradient": (pool_gradient_inputs("AveragePool"), 1),
    "LRN": (lambda s, a: [randn(*s)], 2),
    "LRNGradient": (lrn_gradient_inputs, 1),
}
POOL_TYPES = ["MaxPool", "AveragePool", "MaxPoolGradient", "AveragePoolGradient"]
ALIASES = sorted(alias for op_type in POOL_TYPES for alias in get_schema(op_type).aliases)
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = set(CASES) | set(ALIASES)

# (shape, args) of 2-D windows; shapes are read in the args' order.
POOL_GEOMETRY = [
    ((2, 3, 7, 9), {"kernel": 3, "stride": 2, "pad": 1}),
    ((2, 7, 9, 3), {"kernel": 3, "stride": 2, "pad": 1, "order": "NHWC"}),
    ((1, 5, 6, 11), {"kernel_h": 2, "kernel_w": 3, "stride_h": 1, "stride_w": 2, "pads": [0, 1, 1, 0]}),
    ((3, 2, 13, 13), {"kernel": 3, "stride": 2, "legacy_pad": 3}),
    ((2, 4, 12, 10), {"kernel": 3, "stride": 2, "pad": 1, "legacy_pad": 3, "order": "NHWC"}),
    ((2, 3, 9, 8), {"kernel": 2, "stride": 1, "dilation": 2, "pad": 1}),
    ((2, 5, 7, 6), {"kernel": 3, "stride": 2, "pads": [4, 0, 0, 4]}),  # windows wholly in padding
    ((2, 3, 13, 13), {"global_pooling": 1}),
    ((2, 13, 13, 3), {"global_pooling": 1, "order": "NHWC"}),
    ((1, 1, 1, 1), {"kernel": 1}),
    ((8, 32, 64, 64), {"kernel": 3, "stride": 2, "pad": 1}),  # 1M elements
    ((8, 64, 64, 32), {"kernel": 2, "stride": 2, "order": "NHWC"}),
]


def pool_args(op_type: str, args: dict) -> dict:
    if op_type.startswith("Average"):
        return args
    return {k: v for k, v in args.items() if k != "count_include_pad"}




@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("shape, args", POOL_GEOMETRY)
@pytest.mark.parametrize("op_type", POOL_TYPES)
def test_cuda_pooling_matches_cpu(op_type, shape, args, count_include_pad):
    if count_include_pad and not op_type.startswith("Average"):
        pytest.skip("count_include_pad is AveragePool's")
    args = pool_args(op_type, {**args, "count_include_pad": count_include_pad})
    make_inputs, count = CASES[op_type]
    check_devices(op_type, make_inputs(shape, args), args, count)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape, args", POOL_GEOMETRY[:6] + POOL_GEOMETRY[7:9])
def test_cuda_max_pool_gradient_gives_every_tied_max_dy(shape, args):
    check_devices("MaxPoolGradient", pool_gradient_inputs("MaxPool", ties)(shape, args), args)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("alias", ALIASES)
def test_cuda_pooling_aliases_cover_1_to_3_spatial_dims(alias, order):
    nd = int(alias.split("Pool")[1][0])
    shape = (2, 3, 7, 6, 5)[:2 + nd] if order == "NCHW" else (2, 7, 6, 5)[:1 + nd] + (3,)
    args = pool_args(alias, {"kernel": 2, "stride": 2, "pad": 1, "count_include_pad": 1, "order": order})
    forward = alias.replace("Gradient", "").rstrip("123D")
    make_inputs = pool_gradient_inputs(forward) if alias.endswith("Gradient") else (lambda s, a: [randn(*s)])
    check_devices(alias, make_inputs(shape, args), args)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape, order", [((2, 6, 3, 5), "NCHW"), ((2, 3, 5, 6), "NHWC"), ((3, 7), "NCHW"),
                                          ((2, 3, 4, 5, 9), "NHWC"), ((4, 64, 64, 64), "NCHW"),
                                          ((4, 64, 64, 64), "NHWC")])
@pytest.mark.parametrize("size, alpha, beta, bias", [(5, 0.5, 0.75, 2.0), (4, 0.3, 0.5, 1.0),
                                                     (1, 0.2, 1.0, 1.5)])
@pytest.mark.parametrize("op_type", ["LRN", "LRNGradient"])
def test_cuda_lrn_matches_cpu(op_type, shape, order, size, alpha, beta, bias):
    args = {"size": size, "alpha": alpha, "beta": beta, "bias": bias, "order": order}
    make_inputs, count = CASES[op_type]
    check_devices(op_type, make_inputs(shape, args), args, count, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("p", [-1.0, 0.0])
def test_lp_pool_refuses_a_p_that_is_not_positive_when_it_runs(p):
    x = randn(1, 2, 4, 4)
    with pytest.raises((OpFailure, NetError), match=f"p is {p} but must be positive"):
        run_op("LpPool", [x], {"kernel": 2, "p": p})
    with pytest.raises((OpFailure, NetError), match=f"p is {p} but must be positive"):
        run_op("LpPoolGradient", [x, randn(1, 2, 3, 3), randn(1, 2, 3, 3)], {"kernel": 2, "p": p})


@pytest.mark.parametrize("kind", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("x_shape, args, kernel, stride, head, out", [
    ((2, 5, 7, 7), {"kernel": 3, "stride": 2, "pad": 1}, (3, 3), (2, 2), (1, 1), (4, 4)),
    ((2, 3, 8, 6), {"kernel": 3, "stride": 2, "legacy_pad": 3}, (3, 3), (2, 2), (0, 0),
     (caffe_pool_size(8, 3, 2, 0), caffe_pool_size(6, 3, 2, 0))),
    ((1, 4, 9), {"kernel": 4, "stride": 3, "pad": 2}, (4,), (3,), (2,), (4,)),
])
def test_pool_in_blocks_matches_loops(kind, x_shape, args, kernel, stride, head, out, monkeypatch):
    """Big X pools in blocks of images and channels, without a padded copy; here every size does."""
    monkeypatch.setattr(pooling, "CHUNK", 4)
    x = randn(*x_shape)
    y = ref_pool(x, kind, kernel, stride, head, out)
    (got,) = run_op(kind, [x], args)
    np.testing.assert_allclose(got, y, rtol=1e-6, atol=1e-6)
    (got,) = run_op(kind, [nhwc(x)], {**args, "order": "NHWC"})
    np.testing.assert_allclose(got, nhwc(y), rtol=1e-6, atol=1e-6)
