"""Conv family: each op against a loop-over-positions NumPy reference, gradients
against numeric differentiation, NHWC against NCHW, and clear shape errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def windows(kernel, stride, dilation, head, out):
    """For each output position, the per-axis (start, stop, step) its window reads on the padded input."""
    for pos in np.ndindex(*out):
        yield pos, tuple(slice(p * s, p * s + d * (k - 1) + 1, d)
                         for p, k, s, d in zip(pos, kernel, stride, dilation))


def ref_conv(x, w, b=None, stride=None, dilation=None, head=None, tail=None, group=1):
    """Conv (NCHW, any spatial rank) by loops over output positions."""
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    head, tail = head or (0,) * nd, tail or (0,) * nd
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(zip(head, tail)))
    kernel, m = w.shape[2:], w.shape[0]
    out = [(xp.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1 for a in range(nd)]
    y = np.zeros((x.shape[0], m, *out))
    cg, mg = x.shape[1] // group, m // group
    for pos, cells in windows(kernel, stride, dilation, head, out):
        patch = xp[(slice(None), slice(None)) + cells]
        for g in range(group):
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + pos] = np.tensordot(
                patch[:, g * cg:(g + 1) * cg], w[g * mg:(g + 1) * mg], axes=(range(1, 2 + nd), range(1, 2 + nd)))
    if b is not None:
        y += b.reshape((-1,) + (1,) * nd)
    return y


def ref_conv_transpose(x, w, b=None, stride=None, dilation=None, head=None, tail=None, adj=None, group=1):
    """ConvTranspose (NCHW) by scattering every input position's filter-weighted values."""
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    head, tail, adj = head or (0,) * nd, tail or (0,) * nd, adj or (0,) * nd
    kernel, mg = w.shape[2:], w.shape[1]
    full = [(i - 1) * s + d * (k - 1) + 1 + a for i, k, s, d, a in zip(x.shape[2:], kernel, stride, dilation, adj)]
    y = np.zeros((x.shape[0], mg * group, *full))
    cg = x.shape[1] // group
    for pos, cells in windows(kernel, stride, dilation, head, x.shape[2:]):
        for g in range(group):
            values = np.tensordot(x[(slice(None), slice(g * cg, (g + 1) * cg)) + pos], w[g * cg:(g + 1) * cg], 1)
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + cells] += values
    y = y[(slice(None), slice(None)) + tuple(slice(h, f - t) for h, f, t in zip(head, full, tail))]
    return y if b is None else y + b.reshape((-1,) + (1,) * nd)


def ref_pool(x, kind, kernel, stride, head, out, count_include_pad=False):
    """Max or average pooling (NCHW) by loops over output positions; windows clipped to X."""
    y = np.zeros(x.shape[:2] + tuple(out))
    for pos in np.ndindex(*out):
        cells = tuple(slice(max(p * s - h, 0), min(p * s - h + k, size))
                      for p, k, s, h, size in zip(pos, kernel, stride, head, x.shape[2:]))
        window = x[(slice(None), slice(None)) + cells].astype(np.float64)
        axes = tuple(range(2, x.ndim))
        if kind == "MaxPool":
            y[(slice(None), slice(None)) + pos] = window.max(axis=axes)
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


def nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


# (X shape, filter shape, args, reference keyword args): 1-D, 2-D, 3-D, groups, dilation,
# strides (the im2col path) and stride 1 (the shifted-GEMM path), every padding spelling.
CONV = [
    ((2, 3, 6, 5), (4, 3, 3, 3), {"pad": 1}, {"head": (1, 1), "tail": (1, 1)}),
    ((2, 3, 7, 6), (4, 3, 3, 2), {"stride": 2, "pads": [1, 0, 2, 1]},
     {"stride": (2, 2), "head": (1, 0), "tail": (2, 1)}),
    ((2, 4, 7, 8), (6, 2, 3, 3), {"group": 2, "dilations": [2, 1], "pad_t": 2, "pad_l": 1, "pad_b": 0,
                                  "pad_r": 1}, {"group": 2, "dilation": (2, 1), "head": (2, 1), "tail": (0, 1)}),
    ((2, 6, 7, 7), (6, 1, 3, 3), {"group": 6, "stride_h": 2, "stride_w": 1, "dilation": 2},
     {"group": 6, "stride": (2, 1), "dilation": (2, 2)}),
    ((3, 2, 9), (3, 2, 4), {"strides": [2], "pads": [2, 1]}, {"stride": (2,), "head": (2,), "tail": (1,)}),
    ((3, 2, 9), (3, 2, 2), {"dilation": 3}, {"dilation": (3,)}),
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), {"pad": 1, "stride": 2},
     {"stride": (2, 2, 2), "head": (1, 1, 1), "tail": (1, 1, 1)}),
    ((1, 2, 4, 5, 4), (4, 1, 2, 2, 3), {"group": 2, "pads": [0, 1, 1, 1, 0, 1]},
     {"group": 2, "head": (0, 1, 1), "tail": (1, 0, 1)}),
    ((2, 5, 6, 6), (7, 5, 1, 1), {}, {}),
    ((1, 1, 7, 8), (2, 1, 3, 3), {"legacy_pad": 2, "stride": 2}, {"stride": (2, 2), "head": (1, 0),
                                                                  "tail": (1, 1)}),
]


@pytest.mark.parametrize("x_shape, w_shape, args, ref_args", CONV)
def test_conv_matches_reference_in_both_orders(x_shape, w_shape, args, ref_args):
    x, w, b = randn(*x_shape), randn(*w_shape), randn(w_shape[0])
    (y,) = check_reference("Conv", [x, w, b], lambda *_, **__: ref_conv(x, w, b, **ref_args), args)
    assert y.dtype == np.float32
    check_reference("Conv", [x, w], lambda *_, **__: ref_conv(x, w, **ref_args), args)
    check_reference("Conv", [nhwc(x), nhwc(w), b], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"})


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), cg=st.integers(1, 3), mg=st.integers(1, 3), group=st.integers(1, 3),
       size=st.tuples(st.integers(1, 7), st.integers(1, 7)), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 2)] * 4))
def test_conv_random_geometry(n, cg, mg, group, size, kernel, stride, dilation, pads):
    padded = [s + pads[a] + pads[a + 2] for a, s in enumerate(size)]
    kernel = tuple(min(k, (p - 1) // d + 1) for k, p, d in zip(kernel, padded, dilation))
    x, w = randn(n, cg * group, *size), randn(mg * group, cg, *kernel)
    args = {"kernels": list(kernel), "strides": list(stride), "dilations": list(dilation), "pads": list(pads),
            "group": group}
    check_reference("Conv", [x, w], lambda *_, **__: ref_conv(x, w, None, stride, dilation, pads[:2], pads[2:],
                                                             group), args)


CONV_TRANSPOSE = [
    ((2, 3, 4, 3), (3, 2, 3, 3), {}, {}),
    ((2, 3, 4, 3), (3, 2, 3, 2), {"stride": 2, "pads": [1, 0, 0, 1], "adjs": [1, 2]},
     {"stride": (2, 2), "head": (1, 0), "tail": (0, 1), "adj": (1, 2)}),
    ((2, 4, 3, 4), (4, 3, 2, 3), {"group": 2, "stride_h": 3, "stride_w": 1, "pad": 1, "dilation": 2},
     {"group": 2, "stride": (3, 1), "dilation": (2, 2), "head": (1, 1), "tail": (1, 1)}),
    ((2, 2, 5), (2, 3, 3), {"strides": [2], "adj": 1}, {"stride": (2,), "adj": (1,)}),
    ((1, 2, 2, 3, 2), (2, 2, 2, 2, 3), {"stride": 2, "pad": 1}, {"stride": (2,) * 3, "head": (1,) * 3,
                                                                "tail": (1,) * 3}),
]


@pytest.mark.parametrize("x_shape, w_shape, args, ref_args", CONV_TRANSPOSE)
def test_conv_transpose_matches_reference_in_both_orders(x_shape, w_shape, args, ref_args):
    group = args.get("group", 1)
    x, w, b = randn(*x_shape), randn(*w_shape), randn(w_shape[1] * group)
    (y,) = check_reference("ConvTranspose", [x, w, b],
                           lambda *_, **__: ref_conv_transpose(x, w, b, **ref_args), args)
    check_reference("ConvTranspose", [nhwc(x), nhwc(w), b], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"})


def caffe_pool_size(size, k, s, pad):
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


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("x_shape, args, kernel, stride, head, out", POOL)
def test_pool_matches_reference_in_both_orders(op_type, x_shape, args, kernel, stride, head, out):
    x = randn(*x_shape)
    (y,) = check_reference(op_type, [x], lambda *_, **__: ref_pool(x, op_type, kernel, stride, head, out), args)
    assert y.dtype == np.float32
    check_reference(op_type, [nhwc(x)], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"})


def test_average_pool_count_include_pad():
    x = randn(2, 3, 5, 6)
    args = {"kernel": 3, "stride": 2, "pad": 1, "count_include_pad": 1}
    check_reference("AveragePool", [x], lambda *_, **__: ref_pool(x, "AveragePool", (3, 3), (2, 2), (1, 1),
                                                                  (3, 3), count_include_pad=True), args)


def test_squeezenet_pool_sizes():
    """SqueezeNet's pool1 (3x3/2, legacy_pad=3) on 111 gives 55; its global pool gives 1x1."""
    (y,) = run_op("MaxPool", [randn(1, 2, 111, 111)], {"kernel": 3, "stride": 2, "pad": 0, "legacy_pad": 3})
    assert y.shape == (1, 2, 55, 55)
    x = randn(1, 4, 13, 13)
    (y,) = run_op("AveragePool", [x], {"kernel": 0, "global_pooling": 1, "legacy_pad": 3, "stride": 1})
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("size, alpha, beta, bias", [(3, 0.1, 0.75, 2.0), (5, 1e-4, 0.75, 1.0), (4, 0.5, 0.5, 1.5),
                                                     (1, 0.3, 1.0, 1.0)])
def test_lrn_matches_reference_in_both_orders(size, alpha, beta, bias):
    x = randn(2, 6, 3, 4)
    args = {"size": size, "alpha": alpha, "beta": beta, "bias": bias}
    y, scale = check_reference("LRN", [x], lambda *_, **__: ref_lrn(x, size, alpha, beta, bias), args,
                               num_outputs=2)
    assert y.dtype == scale.dtype == np.float32
    check_reference("LRN", [nhwc(x)], lambda *_, **__: (nhwc(y), nhwc(scale)), {**args, "order": "NHWC"},
                    num_outputs=2)


def test_float64_keeps_its_dtype():
    x, w = randn(1, 2, 5, 5, dtype=np.float64), randn(3, 2, 3, 3, dtype=np.float64)
    assert run_op("Conv", [x, w])[0].dtype == np.float64
    assert run_op("ConvTranspose", [x, randn(2, 3, 3, 3, dtype=np.float64)])[0].dtype == np.float64
    for op_type in ("MaxPool", "AveragePool"):
        assert run_op(op_type, [x], {"kernel": 2})[0].dtype == np.float64
    assert run_op("LRN", [x], {"size": 3, "alpha": 0.1, "beta": 0.5})[0].dtype == np.float64


# Gradients: tiny float64 shapes, gradient op against central differences of the forward op.
CONV_GRADIENT = [
    ((2, 4, 5, 4), (6, 2, 3, 2), {"group": 2, "pad": 1, "stride": 2}),
    ((1, 2, 6), (3, 2, 3), {"dilation": 2, "pads": [1, 0]}),
    ((1, 2, 3, 3, 3), (2, 2, 2, 2, 2), {"pad": 1}),
]


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, w_shape, args", CONV_GRADIENT)
def test_conv_gradient_matches_numeric(x_shape, w_shape, args, order):
    x, w, b = randn(*x_shape, dtype=np.float64), randn(*w_shape, dtype=np.float64), randn(w_shape[0], dtype=np.float64)
    if order == "NHWC":
        x, w = nhwc(x), nhwc(w)
    args = {**args, "order": order}
    (y,) = run_op("Conv", [x, w, b], args)
    dy = randn(*y.shape, dtype=np.float64)
    dw, _, dx = check_gradient_op("Conv", [x, w, b], "ConvGradient", [x, w, dy], {0: 1, 1: 2, 2: 0}, [dy],
                                   args, atol=1e-6, rtol=1e-6)
    # Without a bias (Caffe2's no_bias=1) the outputs are dfilter and dX.
    for got, expected in zip(run_op("ConvGradient", [x, w, dy], {**args, "no_bias": 1}, num_outputs=2), [dw, dx]):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    (only_dw,) = run_op("ConvGradient", [x, w, dy], {**args, "no_bias": 1}, num_outputs=1)
    np.testing.assert_allclose(only_dw, dw, rtol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, args", [
    ((2, 4, 3, 2), (4, 2, 3, 2), {"group": 2, "stride": 2, "pad": 1, "adj": 1}),
    ((1, 2, 4), (2, 3, 3), {"dilation": 2, "strides": [3], "adjs": [3]}),
])
def test_conv_transpose_gradient_matches_numeric(x_shape, w_shape, args):
    x, w = randn(*x_shape, dtype=np.float64), randn(*w_shape, dtype=np.float64)
    b = randn(w_shape[1] * args.get("group", 1), dtype=np.float64)
    (y,) = run_op("ConvTranspose", [x, w, b], args)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op("ConvTranspose", [x, w, b], "ConvTransposeGradient", [x, w, dy], {0: 1, 1: 2, 2: 0}, [dy],
                      args, atol=1e-6, rtol=1e-6)


def distinct(*shape):
    """Values at least 0.05 apart, so max pooling has no ties within numeric steps."""
    return (rng.permutation(math.prod(shape)).reshape(shape) * 0.05 - 1).astype(np.float64)


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, args", [
    ((2, 2, 5, 4), {"kernel": 3, "stride": 2, "pad": 1}),
    ((1, 2, 6, 5), {"kernel": 3, "stride": 2, "legacy_pad": 3}),
    ((1, 2, 7), {"kernel": 2, "stride": 1, "dilation": 2, "pads": [1, 0]}),
    ((1, 2, 3, 4), {"global_pooling": 1}),
    ((1, 2, 3, 4, 3), {"kernel": 2, "stride": 2, "pad": 1, "count_include_pad": 1}),
])
def test_pool_gradient_matches_numeric(op_type, order, x_shape, args):
    if op_type == "MaxPool" and "count_include_pad" in args:
        args = {k: v for k, v in args.items() if k != "count_include_pad"}
    x = distinct(*x_shape)
    x = nhwc(x) if order == "NHWC" else x
    args = {**args, "order": order}
    (y,) = run_op(op_type, [x], args)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op(op_type, [x], op_type + "Gradient", [x, y, dy], {0: 0}, [dy], args, atol=1e-6, rtol=1e-6)


def test_max_pool_gradient_goes_to_every_tied_max():
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]], np.float32)
    (dx,) = run_op("MaxPoolGradient", [x, np.array([[[[3.0]]]], np.float32), np.array([[[[2.0]]]], np.float32)],
                   {"kernel": 2})
    np.testing.assert_array_equal(dx, [[[[0, 2], [2, 0]]]])


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("size", [3, 4])
def test_lrn_gradient_matches_numeric(size, order):
    x = randn(2, 5, 2, 3, dtype=np.float64)
    x = nhwc(x) if order == "NHWC" else x
    args = {"size": size, "alpha": 0.4, "beta": 0.75, "bias": 1.5, "order": order}
    (y,) = run_op("LRN", [x], args)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op("LRN", [x], "LRNGradient", [x, y, dy], {0: 0}, [dy], args, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("Conv", [randn(2, 6, 5, 5), randn(4, 4, 3, 3)], {},
     r"op 0 \(Conv\) failed: X \[2, 6, 5, 5\] has 6 channels but filter \[4, 4, 3, 3\] .* takes 4 per group"),
    ("Conv", [randn(2, 6, 5, 5), randn(4, 2, 3, 3)], {"group": 4}, "group 4 does not divide X's 6 channels"),
    ("Conv", [randn(1, 1, 2, 2), randn(1, 1, 3, 3)], {}, r"the kernel \(extent 3\) is larger than X"),
    ("Conv", [randn(1, 2, 5, 5), randn(3, 2, 3, 3), randn(4)], {}, r"bias is \[4\] but the filter \[3, 2, 3, 3\] gives M = 3"),
    ("ConvGradient", [randn(1, 2, 5, 5), randn(3, 2, 3, 3), randn(1, 3, 2, 2)], {},
     r"dY is \[1, 3, 2, 2\] but Y is \[1, 3, 3, 3\]"),
    ("MaxPool", [randn(1, 2, 5, 5)], {}, "no kernel size"),
    ("AveragePoolGradient", [randn(1, 1, 4, 4), randn(1, 1, 2, 2), randn(1, 1, 2, 3)], {"kernel": 2, "stride": 2},
     r"dY is \[1, 1, 2, 3\] but pooling X \[1, 1, 4, 4\] gives \[1, 1, 2, 2\]"),
    ("LRNGradient", [randn(1, 3, 2), randn(1, 3, 2), randn(1, 3, 3)], {"size": 3}, "must have one shape"),
])
def test_shape_errors_are_clear(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, num_outputs=3 if op_type == "ConvGradient" else None)


# Gradient makers: each registered gradient against central differences of the forward op,
# for every differentiable input (X, filter, bias), on tiny shapes.
CONV_MAKER = [  # (type, X shape (NCHW), filter shape (NCHW), with bias, args)
    ("Conv", (1, 4, 4, 3), (4, 2, 2, 2), True, {"group": 2, "stride": 2, "pad": 1}),
    ("Conv", (1, 2, 4, 4), (2, 2, 2, 2), True, {"dilation": 2, "order": "NHWC"}),
    ("Conv", (2, 2, 5), (3, 2, 2), False, {"dilation": 2, "pads": [1, 0]}),
    ("Conv", (1, 2, 3, 3, 2), (2, 2, 2, 2, 2), True, {"pad": 1}),
    ("Conv", (1, 1, 5, 4), (2, 1, 3, 3), False, {"legacy_pad": 2, "stride": 2}),
    ("Conv2D", (1, 2, 3, 3), (2, 2, 2, 2), True, {"kernel_h": 2, "kernel_w": 2, "order": "NHWC"}),
    ("ConvTranspose", (1, 4, 2, 2), (4, 1, 3, 2), True, {"group": 2, "stride": 2, "pad": 1, "adj": 1}),
    ("ConvTranspose", (1, 2, 3), (2, 2, 2), False, {"dilation": 2, "strides": [2]}),
    ("ConvTranspose", (1, 2, 2, 3), (2, 2, 2, 2), True, {"order": "NHWC"}),
]


@pytest.mark.parametrize("op_type, x_shape, w_shape, with_bias, args", CONV_MAKER)
def test_conv_registered_gradient(op_type, x_shape, w_shape, with_bias, args):
    x, w = randn(*x_shape, dtype=np.float64), randn(*w_shape, dtype=np.float64)
    if args.get("order") == "NHWC":
        x, w = nhwc(x), nhwc(w)
    m = w_shape[1] * args.get("group", 1) if op_type == "ConvTranspose" else w_shape[0]
    inputs = [x, w] + ([randn(m, dtype=np.float64)] if with_bias else [])
    op = make_op(op_type, ["X", "W", "b"][:len(inputs)], ["Y"], args)
    for i in range(len(inputs)):
        report = check_op_gradient(op, inputs, i)
        assert report.ok, report


@pytest.mark.parametrize("op_type", ["Conv", "ConvTranspose"])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("no_gradient_to_input", [0, 1])
def test_conv_maker_outputs(op_type, with_bias, no_gradient_to_input):
    inputs = ["X", "W", "b"][:2 + with_bias]
    op = make_op(op_type, inputs, ["Y"], {"no_gradient_to_input": no_gradient_to_input})
    (grad,), g_input = GetGradientForOp(op, ["Y_grad"])
    expected = ["W_grad"] + ["b_grad"] * with_bias + ["X_grad"] * (1 - no_gradient_to_input)
    assert (grad.type, list(grad.input), list(grad.output)) == (op_type + "Gradient", ["X", "W", "Y_grad"], expected)
    assert any(a.name == "no_bias" and a.i == 1 for a in grad.arg) == (not with_bias)
    assert g_input == [None if no_gradient_to_input else "X_grad", "W_grad"] + ["b_grad"] * with_bias


def test_conv_maker_skips_dx_and_keeps_the_rest():
    x, w, b = randn(1, 2, 3, 3, dtype=np.float64), randn(2, 2, 2, 2, dtype=np.float64), randn(2, dtype=np.float64)
    op = make_op("Conv", ["X", "W", "b"], ["Y"], {"no_gradient_to_input": 1, "pad": 1})
    for i in (1, 2):
        report = check_op_gradient(op, [x, w, b], i)
        assert report.ok, report


POOL_MAKER = [  # (X shape (NCHW), args)
    ((1, 2, 5, 4), {"kernel": 3, "stride": 2, "pad": 1}),
    ((1, 1, 6, 5), {"kernel": 3, "stride": 2, "legacy_pad": 3, "order": "NHWC"}),
    ((2, 1, 7), {"kernel": 2, "dilation": 2, "pads": [1, 0]}),
    ((1, 2, 3, 4), {"global_pooling": 1, "order": "NHWC"}),
    ((1, 1, 3, 4, 3), {"kernel": 2, "stride": 2, "pad": 1}),
]


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
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
