"""Conv family (Conv, ConvTranspose, their aliases and gradient ops): each op against
a loop-over-positions NumPy reference on both devices, NHWC against NCHW, gradients
against numeric differentiation, the registered gradient makers, shape inference from
the output-size formulas, and clear shape errors alike on both devices. CUDA against
the CPU twin (gradient ops, with and without bias and dX) runs over window geometries
in every spelling (pads, strides, dilation, groups, legacy_pad), in NCHW and NHWC, at 1
to 3 spatial dims through the aliases, on empty batches and on images larger than the
emulator's grid."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.schema.inference.conv import image_shape
from pycaffe2.testing import (
    CUDA,
    assert_outputs_close,
    check_devices,
    check_gradient_op,
    check_reference,
    make_op,
    run_op,
)
from tests.operators import DEVICES
from tests.schema import infer

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def out_size(size, k, s=1, d=1, head=0, tail=0):
    return (size + head + tail - (d * (k - 1) + 1)) // s + 1


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


# (X shape, filter shape, args, reference keyword args): 1-D, 2-D, 3-D, groups, dilation,
# strides and stride 1, every padding spelling.
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




@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("x_shape, w_shape, args, ref_args", CONV)
def test_conv_matches_reference_in_both_orders(x_shape, w_shape, args, ref_args, device, algorithm):
    x, w, b = randn(*x_shape), randn(*w_shape), randn(w_shape[0])
    (y,) = check_reference("Conv", [x, w, b], lambda *_, **__: ref_conv(x, w, b, **ref_args), args,
                           device=device)
    assert y.dtype == np.float32
    check_reference("Conv", [x, w], lambda *_, **__: ref_conv(x, w, **ref_args), args, device=device)
    check_reference("Conv", [nhwc(x), nhwc(w), b], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"},
                    device=device)


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


@pytest.mark.parametrize("group", [1, 2])
def test_conv_takes_a_big_batch_in_slices(monkeypatch, group):
    """Columns over the limit: the batch is convolved a few images at a time, same result."""
    from pycaffe2.operators import _conv_cpu as conv
    x, w, b = randn(5, 4, 6, 5), randn(6, 4 // group, 3, 2), randn(6)
    monkeypatch.setattr(conv, "COLUMNS_LIMIT", 2 * 4 * 3 * 2 * 4 * 4)  # two images' columns
    check_reference("Conv", [x, w, b], lambda *_, **__: ref_conv(x, w, b, group=group),
                    {"kernel_h": 3, "kernel_w": 2, "group": group})
    monkeypatch.setattr(conv, "COLUMNS_LIMIT", 1)  # one image at a time
    check_reference("Conv", [x, w, b], lambda *_, **__: ref_conv(x, w, b, group=group),
                    {"kernel_h": 3, "kernel_w": 2, "group": group})


def ref_conv_gradients(x, w, dy, stride=None, dilation=None, head=None, tail=None, group=1):
    """(dfilter, dX) of ref_conv by the same loop over output positions (float64)."""
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    head, tail = head or (0,) * nd, tail or (0,) * nd
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(zip(head, tail)))
    dxp, dw = np.zeros_like(xp), np.zeros(w.shape)
    cg, mg = x.shape[1] // group, w.shape[0] // group
    for pos, cells in windows(w.shape[2:], stride, dilation, head, dy.shape[2:]):
        for g in range(group):
            grad = dy[(slice(None), slice(g * mg, (g + 1) * mg)) + pos].astype(np.float64)  # [N, M/group]
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + cells]
            dw[g * mg:(g + 1) * mg] += np.tensordot(grad, patch, axes=(0, 0))
            dxp[(slice(None), slice(g * cg, (g + 1) * cg)) + cells] += np.tensordot(grad, w[g * mg:(g + 1) * mg], 1)
    return dw, dxp[(slice(None), slice(None)) + tuple(slice(h, h + s) for h, s in zip(head, x.shape[2:]))]


# Each CPU algorithm of _conv_cpu on its own: (N, C, spatial, M, kernel, args, ref args).
# Pointwise (1x1), im2col, Winograd (3x3 stride 1, forced on small channel counts
# below), depthwise (flat rows at stride 1, strided views otherwise), grouped, dX as
# the flipped Conv (a pad wider than the kernel's reach crops dY) or by col2im (M > 2C,
# strides), 1-D and 3-D, odd sizes that leave Winograd's last tiles partial.
ALGORITHMS = [
    (2, 4, (5, 6), 3, (1, 1), {}, {}),
    (2, 4, (5, 6), 3, (1, 1), {"stride": 2}, {"stride": (2, 2)}),
    (2, 3, (7, 5), 4, (3, 3), {"pad": 1}, {"head": (1, 1), "tail": (1, 1)}),
    (1, 3, (9, 6), 2, (3, 3), {"pad_t": 2, "pad_l": 0, "pad_b": 1, "pad_r": 3},
     {"head": (2, 0), "tail": (1, 3)}),
    (2, 2, (4, 5), 3, (3, 3), {"pad": 3}, {"head": (3, 3), "tail": (3, 3)}),
    (2, 4, (6, 6), 4, (3, 3), {"group": 2, "pad": 1}, {"group": 2, "head": (1, 1), "tail": (1, 1)}),
    (3, 1, (8, 7), 5, (5, 5), {"pad": 2}, {"head": (2, 2), "tail": (2, 2)}),
    (2, 2, (9, 9), 3, (3, 2), {"stride": 2, "pads": [1, 0, 2, 1], "dilations": [1, 2]},
     {"stride": (2, 2), "dilation": (1, 2), "head": (1, 0), "tail": (2, 1)}),
    (2, 5, (6, 7), 5, (3, 3), {"group": 5, "pad": 1}, {"group": 5, "head": (1, 1), "tail": (1, 1)}),
    (2, 5, (7, 7), 5, (3, 2), {"group": 5, "dilation": 2, "pads": [2, 0, 1, 1]},
     {"group": 5, "dilation": (2, 2), "head": (2, 0), "tail": (1, 1)}),
    (2, 4, (7, 8), 4, (3, 3), {"group": 4, "stride": 2, "pad": 1},
     {"group": 4, "stride": (2, 2), "head": (1, 1), "tail": (1, 1)}),
    (2, 3, (9,), 4, (3,), {"pads": [1, 2]}, {"head": (1,), "tail": (2,)}),
    (1, 3, (4, 5, 3), 3, (3, 2, 2), {"group": 3, "pads": [1, 0, 1, 1, 1, 0]},
     {"group": 3, "head": (1, 0, 1), "tail": (1, 1, 0)}),
    (1, 2, (4, 5, 3), 3, (2, 3, 2), {"pad": 1}, {"head": (1, 1, 1), "tail": (1, 1, 1)}),
]


def _every_shape_takes_winograd(monkeypatch):
    from pycaffe2.operators import _conv_cpu
    for name in ("WINOGRAD_CHANNELS", "WINOGRAD_TILES"):
        monkeypatch.setattr(_conv_cpu, name, 1)


@pytest.fixture(params=["default", "winograd", "sliced"])
def algorithm(request, monkeypatch):
    """Thresholds lowered so that tiny shapes take Winograd, or one image per slice."""
    from pycaffe2.operators import _conv_cpu
    if request.param == "winograd":
        _every_shape_takes_winograd(monkeypatch)
    if request.param == "sliced":
        monkeypatch.setattr(_conv_cpu, "COLUMNS_LIMIT", 1)
    return request.param


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("n, c, spatial, m, kernel, args, ref_args", ALGORITHMS, ids=str)
def test_every_cpu_algorithm_matches_the_loop_reference(n, c, spatial, m, kernel, args, ref_args, order, algorithm):
    group = args.get("group", 1)
    x, w, b = randn(n, c, *spatial), randn(m, c // group, *kernel), randn(m)
    y = ref_conv(x, w, b, **ref_args)
    dy = randn(*y.shape)
    dw, dx = ref_conv_gradients(x, w, dy, **ref_args)
    inputs, to_order = [x, w, dy], (lambda a: a) if order == "NCHW" else nhwc
    args = {**args, "order": order}
    (got_y,) = run_op("Conv", [to_order(x), to_order(w), b], args)
    got = run_op("ConvGradient", [to_order(a) for a in inputs], args, num_outputs=3)
    assert got_y.dtype == got[0].dtype == got[2].dtype == np.float32
    assert_outputs_close([got_y, *got], [to_order(y), to_order(dw), dy.sum(axis=(0, *range(2, dy.ndim))),
                                         to_order(dx)], atol=2e-4, rtol=2e-4)


@pytest.mark.parametrize("n, c, spatial, m, kernel, args, ref_args", ALGORITHMS[2:6], ids=str)
def test_winograd_float32_agrees_with_im2col_in_float64(n, c, spatial, m, kernel, args, ref_args, monkeypatch):
    """Winograd (float32 only) against the exact path: float64 inputs keep im2col."""
    _every_shape_takes_winograd(monkeypatch)
    x, w = randn(n, c, *spatial), randn(m, c // args.get("group", 1), *kernel)
    (fast,) = run_op("Conv", [x, w], args)
    (exact,) = run_op("Conv", [x.astype(np.float64), w.astype(np.float64)], args)
    assert fast.dtype == np.float32 and exact.dtype == np.float64
    np.testing.assert_allclose(fast, exact, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("x_shape, m, pad, winograd", [
    ((1, 128, 28, 28), 128, 1, True),  # ResNet-50: 49 tiles
    ((1, 256, 14, 14), 256, 1, False),  # 16 tiles
    ((1, 512, 7, 7), 512, 1, False),  # 4 tiles: the filter transform outweighs the saving
    ((8, 512, 7, 7), 512, 1, True),
    ((1, 64, 13, 13), 256, 1, False),  # SqueezeNet
    ((8, 64, 13, 13), 256, 1, True),
    ((8, 32, 27, 27), 128, 1, False),  # too few channels
    ((1, 64, 22, 30), 64, 0, True),  # 5 x 7 tiles
])
def test_winograd_rule_and_its_result(x_shape, m, pad, winograd):
    """The rule on SqueezeNet and ResNet-50 shapes; with the default thresholds the
    small shape it takes agrees with the exact float64 path (forward and gradients)."""
    from pycaffe2.operators import _conv_cpu
    from pycaffe2.schema.inference.conv import Window
    out = tuple(s + 2 * pad - 2 for s in x_shape[2:])
    g = Window((3, 3), (1, 1), (1, 1), (pad, pad), (pad, pad), out)
    x, w = np.empty(x_shape, np.float32), np.empty((m, x_shape[1], 3, 3), np.float32)
    assert _conv_cpu._winograd_fits(x, w, m, g, 1) == winograd
    if x.size < 50000 and winograd:
        x, w = randn(*x_shape), randn(m, x_shape[1], 3, 3) / np.float32(np.sqrt(9 * x_shape[1]))
        dy = randn(x_shape[0], m, *out) / np.float32(np.sqrt(np.prod(out)))
        fast = run_op("Conv", [x, w], {"pad": pad}) + run_op("ConvGradient", [x, w, dy], {"pad": pad}, num_outputs=3)
        exact = [a.astype(np.float64) for a in (x, w, dy)]
        exact = run_op("Conv", exact[:2], {"pad": pad}) + run_op("ConvGradient", exact, {"pad": pad}, num_outputs=3)
        assert_outputs_close(fast, exact, atol=1e-4, rtol=1e-4)


def test_conv_on_non_contiguous_inputs():
    x, w = randn(2, 6, 7, 9)[:, ::2, :, ::2], randn(4, 6, 3, 3)[:, ::2]
    check_reference("Conv", [x, w], lambda *_, **__: ref_conv(x, w, head=(1, 1), tail=(1, 1)), {"pad": 1})


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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("x_shape, w_shape, args, ref_args", CONV_TRANSPOSE)
def test_conv_transpose_matches_reference_in_both_orders(x_shape, w_shape, args, ref_args, device, algorithm):
    group = args.get("group", 1)
    x, w, b = randn(*x_shape), randn(*w_shape), randn(w_shape[1] * group)
    (y,) = check_reference("ConvTranspose", [x, w, b],
                           lambda *_, **__: ref_conv_transpose(x, w, b, **ref_args), args, device=device)
    check_reference("ConvTranspose", [nhwc(x), nhwc(w), b], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"},
                    device=device)


def test_float64_keeps_its_dtype():
    x, w = randn(1, 2, 5, 5, dtype=np.float64), randn(3, 2, 3, 3, dtype=np.float64)
    assert run_op("Conv", [x, w])[0].dtype == np.float64
    assert run_op("ConvTranspose", [x, randn(2, 3, 3, 3, dtype=np.float64)])[0].dtype == np.float64



# Gradients: tiny float64 shapes, gradient op against central differences of the forward op.
CONV_GRADIENT = [
    ((2, 4, 5, 4), (6, 2, 3, 2), {"group": 2, "pad": 1, "stride": 2}),
    ((1, 2, 6), (3, 2, 3), {"dilation": 2, "pads": [1, 0]}),
    ((1, 2, 3, 3, 3), (2, 2, 2, 2, 2), {"pad": 1}),
    ((2, 3, 5, 4), (3, 1, 3, 3), {"group": 3, "pads": [1, 0, 2, 1]}),  # depthwise, flat rows
    ((1, 3, 5, 6), (3, 1, 3, 2), {"group": 3, "stride": 2, "dilation": 2}),  # depthwise, strided
    ((2, 2, 5, 5), (3, 2, 3, 3), {"pad": 3}),  # dX as the flipped Conv, dY cropped
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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("Conv", [randn(2, 6, 5, 5), randn(4, 4, 3, 3)], {},
     r"op 0 \(Conv\) failed: X \[2, 6, 5, 5\] has 6 channels but filter \[4, 4, 3, 3\] .* takes 4 per group"),
    ("Conv", [randn(2, 6, 5, 5), randn(4, 2, 3, 3)], {"group": 4}, "group 4 does not divide X's 6 channels"),
    ("Conv", [randn(1, 1, 2, 2), randn(1, 1, 3, 3)], {}, r"the kernel \(extent 3\) is larger than X"),
    ("Conv", [randn(1, 2, 5, 5), randn(3, 2, 3, 3), randn(4)], {},
     r"bias is \[4\] but the filter \[3, 2, 3, 3\] gives M = 3"),
    ("ConvGradient", [randn(1, 2, 5, 5), randn(3, 2, 3, 3), randn(1, 3, 2, 2)], {},
     r"dY is \[1, 3, 2, 2\] but Y is \[1, 3, 3, 3\]"),
])
def test_shape_errors_are_clear(op_type, inputs, args, message, device):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, num_outputs=3 if op_type == "ConvGradient" else None,
               device_option=CUDA if device == "cuda" else None)


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


# -- shape inference ---------------------------------------------------------------------------

# (X, filter, args, Y): NCHW, NHWC, groups, 1-D / 3-D, every spelling of the args.
CONV_SHAPES = [
    ((2, 3, 9, 9), (4, 3, 3, 3), {}, (2, 4, 7, 7)),
    ((2, 3, 9, 9), (4, 3, 3, 3), {"kernel": 3, "pad": 1, "stride": 2}, (2, 4, 5, 5)),
    ((2, 3, 9, 8), (4, 3, 3, 2), {"kernels": [3, 2], "strides": [2, 1], "pads": [1, 0, 2, 1],
                                  "dilations": [2, 3]},
     (2, 4, out_size(9, 3, 2, 2, 1, 2), out_size(8, 2, 1, 3, 0, 1))),
    ((2, 3, 9, 8), (4, 3, 3, 2), {"kernel_h": 3, "kernel_w": 2, "stride_h": 2, "stride_w": 3,
                                  "pad_t": 1, "pad_l": 0, "pad_b": 0, "pad_r": 2},
     (2, 4, out_size(9, 3, 2, 1, 1, 0), out_size(8, 2, 3, 1, 0, 2))),
    ((2, 9, 9, 3), (4, 3, 3, 3), {"order": "NHWC", "pad": 1}, (2, 9, 9, 4)),
    ((2, 6, 7, 7), (9, 2, 3, 3), {"group": 3}, (2, 9, 5, 5)),
    ((2, 7, 7, 6), (9, 3, 3, 2), {"group": 3, "order": "NHWC"}, (2, 5, 5, 9)),
    ((2, 3, 10), (5, 3, 4), {"stride": 3}, (2, 5, 3)),
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), {"pads": [1, 0, 1, 1, 0, 1]}, (1, 3, 5, 4, 7)),
    ((1, 1, 7, 7), (2, 1, 3, 3), {"legacy_pad": 1, "stride": 2}, (1, 2, 3, 3)),
    ((1, 1, 7, 8), (2, 1, 3, 3), {"legacy_pad": 2, "stride": 2}, (1, 2, 4, 4)),  # ceil(in / stride)
    ((1, 1, 5, 5), (2, 1, 5, 5), {"global_pooling": 1}, (1, 2, 1, 1)),
]


@pytest.mark.parametrize("x, w, args, y", CONV_SHAPES)
def test_conv_output_shapes(x, w, args, y):
    m = w[0]
    assert infer("Conv", [x, w, (m,)], **args) == [TensorInfo(y)]
    assert infer("Conv2D", [x, w], **args) == [TensorInfo(y)]
    dw, db, dx = infer("ConvGradient", [x, w, y], n_out=3, **args)
    assert (dw.shape, db.shape, dx.shape) == (w, (m,), x)
    assert [i.shape for i in infer("ConvGradient", [x, w, y], n_out=2, no_bias=1, **args)] == [w, x]


def test_conv_keeps_float64_and_unknown_inputs():
    assert infer("Conv", [(1, 2, 5, 5), (3, 2, 3, 3)], dtype="float64") == [TensorInfo((1, 3, 3, 3), "float64")]
    assert infer("Conv", [None, (3, 2, 3, 3), (3,)]) == [None]
    assert infer("Conv", [(1, 2, 5, 5), None]) == [None]


# (X, filter, args, Y) for ConvTranspose: (in - 1) * stride + dilated kernel + adj - pads.
CONV_TRANSPOSE_SHAPES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), {}, (2, 2, 6, 7)),
    ((2, 3, 4, 5), (3, 2, 3, 3), {"stride": 2, "pad": 1, "adj": 1}, (2, 2, 8, 10)),
    ((2, 4, 4, 5), (4, 3, 3, 2), {"strides": [2, 3], "pads": [0, 1, 1, 0], "adjs": [2, 0], "group": 2},
     (2, 6, 3 * 2 + 3 + 2 - 1, 4 * 3 + 2 - 1)),
    ((2, 4, 5, 3), (3, 3, 3, 2), {"order": "NHWC", "stride": 2}, (2, 9, 11, 2)),
    ((1, 2, 4), (2, 1, 3), {"dilation": 2, "legacy_pad": 2}, (1, 1, 3 + 5)),
]


@pytest.mark.parametrize("x, w, args, y", CONV_TRANSPOSE_SHAPES)
def test_conv_transpose_output_shapes(x, w, args, y):
    m = y[1] if args.get("order", "NCHW") == "NCHW" else y[-1]
    assert infer("ConvTranspose", [x, w, (m,)], **args) == [TensorInfo(y)]
    dw, db, dx = infer("ConvTransposeGradient", [x, w, y], n_out=3, **args)
    assert (dw.shape, db.shape, dx.shape) == (w, (m,), x)


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("Conv", [(2, 6, 8, 8), (4, 4, 3, 3)], {},
     (r"^X \[2, 6, 8, 8\] has 6 channels but filter \[4, 4, 3, 3\] \(\[M, C/group, kernel...\]\) "
      r"takes 4 per group x group 1 = 4")),
    ("Conv", [(2, 8, 8, 6), (4, 3, 3, 4)], {"order": "NHWC"}, r"\[M, kernel..., C/group\]"),
    ("Conv", [(2, 6, 8, 8), (4, 2, 3, 3)], {"group": 4}, "group 4 does not divide X's 6 channels"),
    ("Conv", [(2, 6, 8, 8), (5, 2, 3, 3)], {"group": 3}, "group 3 does not divide the filter's 5 output"),
    ("Conv", [(2, 3, 4, 4), (4, 3, 5, 5)], {"pad": 0},
     r"the kernel \(extent 5\) is larger than X \[2, 3, 4, 4\] along spatial axis 0: 4 \+ pads 0 \+ 0 = 4"),
    ("Conv", [(2, 3, 4, 4), (4, 3, 3, 3)], {"dilation": 3}, r"kernel \(extent 7\) is larger"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3), (5,)], {}, r"bias is \[5\] but the filter \[4, 3, 3, 3\] gives M = 4"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3)], {}, r"filter \[4, 3, 3\] must have X's rank 4"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"kernel": 5}, r"kernel args give \[5, 5\] but the filter's"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"pad": 1, "pads": [1, 1, 2, 1]},
     r"the args disagree: pad \[1, 1, 1, 1\], pads \[1, 1, 2, 1\]"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"legacy_pad": 2, "pad": 1}, r"legacy_pad 2 \(SAME\) computes"),
    ("Conv", [(2, 3, 8, 8, 8), (4, 3, 3, 3, 3)], {"kernel_h": 3, "kernel_w": 3}, "are for 2-D ops"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"pad_t": 1}, "give all of pad_t, pad_l, pad_b, pad_r"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"strides": [1, 1, 1]}, r"strides \[1, 1, 1\] has 3 values"),
    ("Conv", [(3, 8), (4, 3, 3)], {}, r"X \[3, 8\] must be \[N, C, spatial...\]"),
    ("ConvTranspose", [(2, 3, 4, 4), (4, 2, 3, 3)], {}, r"X \[2, 3, 4, 4\] has 3 channels but filter"),
    ("ConvTranspose", [(2, 3, 4, 4), (3, 2, 3, 3)], {"stride": 2, "adj": 3}, r"adj \[3, 3\] may not exceed"),
    ("ConvTranspose", [(2, 3, 4, 4), (3, 2, 3, 3)], {"legacy_pad": 3}, "is for Conv and pooling only"),
    ("ConvTranspose", [(2, 3, 1, 1), (3, 2, 3, 3)], {"pad": 2}, "leave an empty output"),
    ("ConvGradient", [(2, 3, 8, 8), (4, 3, 3, 3), (2, 4, 5, 5)], {}, r"dY is \[2, 4, 5, 5\] but Y is \[2, 4, 6, 6\]"),
])
def test_inference_errors_name_the_shapes(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out=3 if op_type == "ConvGradient" else 1, **args)


def test_conv_gradient_with_no_bias_has_at_most_two_outputs():
    with pytest.raises(ShapeError, match="with no_bias=1 the outputs are dfilter and dX, got 3"):
        infer("ConvGradient", [(1, 1, 4, 4), (1, 1, 3, 3), (1, 1, 2, 2)], n_out=3, no_bias=1)


# -- CUDA against the CPU twin ------------------------------------------------------------------

CONV_TYPES = ["Conv", "ConvGradient", "ConvTranspose", "ConvTransposeGradient"]
CONV_ALIASES = sorted(alias for op_type in CONV_TYPES for alias in get_schema(op_type).aliases)
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = set(CONV_TYPES) | set(CONV_ALIASES)


# Convolutions: (N, C, spatial, M, kernel, args); shapes are built in each order. C and M
# are X's and Y's channels for both Conv and ConvTranspose.
CONV_GEOMETRY = [
    (2, 3, (7, 9), 4, (3, 3), {"stride": 2, "pad": 1}),
    (1, 2, (6, 11), 3, (2, 3), {"stride_h": 1, "stride_w": 2, "pad_t": 0, "pad_l": 1, "pad_b": 2,
                                "pad_r": 0}),
    (2, 4, (9, 8), 6, (2, 2), {"dilation": 2, "pads": [1, 0, 0, 2], "group": 2}),
    (2, 6, (5, 7), 3, (3, 1), {"group": 3, "strides": [2, 1], "dilations": [1, 2]}),
    (1, 1, (1, 1), 1, (1, 1), {}),
    (0, 3, (5, 5), 2, (3, 3), {"pad": 1}),  # an empty batch
    (3, 8, (30, 30), 8, (3, 3), {"pad": 1}),  # more elements than the emulator's grid holds threads
    (2, 3, (4, 5), 70, (1, 1), {}),  # more channels (dbias rows) than the emulator's grid has blocks
]
CONV_ONLY_GEOMETRY = [  # legacy_pad SAME, VALID and Caffe's pooling mode (ConvTranspose refuses the last)
    (2, 3, (8, 7), 2, (3, 2), {"stride": 2, "legacy_pad": 2}),
    (2, 3, (8, 7), 2, (3, 3), {"stride": 2, "legacy_pad": 1}),
    (2, 3, (8, 7), 2, (2, 2), {"stride": 2, "pad": 1, "legacy_pad": 3}),
]
TRANSPOSE_ONLY_GEOMETRY = [
    (2, 3, (4, 5), 4, (3, 3), {"stride": 2, "adj": 1, "pad": 1}),
    (1, 4, (3, 4), 2, (2, 3), {"stride_h": 3, "stride_w": 2, "adj_h": 2, "adj_w": 0, "group": 2}),
]


def conv_shapes(n, c, spatial, m, kernel, group, order, transposed):
    """(X, filter) shapes: Conv's filter is [M, C/group, kernel...], ConvTranspose's
    [C, M/group, kernel...] (NHWC: the channel dim last)."""
    rows, inner = (c, m // group) if transposed else (m, c // group)
    w = (rows, inner, *kernel) if order == "NCHW" else (rows, *kernel, inner)
    return image_shape(n, c, spatial, order), w


def conv_inputs(op_type, geometry, order, bias=True):
    """Inputs of `op_type` (a forward op, a gradient op or an alias): X, filter, then the
    bias or dY (shaped by the CPU forward op)."""
    n, c, spatial, m, kernel, args = geometry
    forward = op_type.replace("Gradient", "").rstrip("123D")
    transposed = forward == "ConvTranspose"
    x_shape, w_shape = conv_shapes(n, c, spatial, m, kernel, args.get("group", 1), order, transposed)
    x, w = randn(*x_shape), randn(*w_shape) / np.sqrt(np.prod(w_shape[1:]), dtype=np.float32)
    if not op_type.endswith("Gradient"):
        return [x, w, randn(m)] if bias else [x, w]
    (y,) = run_op(forward, [x, w], {**args, "order": order})
    return [x, w, randn(*y.shape)]


def check_conv(op_type, geometry, order, variant):
    """variant: 'bias', 'no_bias' (no bias input, or no_bias=1 and outputs dfilter, dX)
    or 'no_dX' (dfilter and dbias only)."""
    args = {**geometry[-1], "order": order}
    num_outputs = None
    if op_type.endswith("Gradient"):
        num_outputs = 2 if variant != "bias" else 3
        args.update({"no_bias": 1} if variant == "no_bias" else {})
    inputs = conv_inputs(op_type, geometry, order, bias=variant != "no_bias")
    check_devices(op_type, inputs, args, num_outputs, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bias", "no_bias", "no_dX"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRY + CONV_ONLY_GEOMETRY, ids=str)
@pytest.mark.parametrize("op_type", ["Conv", "ConvGradient"])
def test_cuda_conv_matches_cpu(op_type, geometry, order, variant):
    if variant == "no_dX" and op_type == "Conv":
        pytest.skip("no_dX is the gradient op's")
    check_conv(op_type, geometry, order, variant)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["bias", "no_bias", "no_dX"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRY + CONV_ONLY_GEOMETRY[:2] + TRANSPOSE_ONLY_GEOMETRY,
                         ids=str)
@pytest.mark.parametrize("op_type", ["ConvTranspose", "ConvTransposeGradient"])
def test_cuda_conv_transpose_matches_cpu(op_type, geometry, order, variant):
    if variant == "no_dX" and op_type == "ConvTranspose":
        pytest.skip("no_dX is the gradient op's")
    check_conv(op_type, geometry, order, variant)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("alias", CONV_ALIASES)
def test_cuda_conv_aliases_cover_1_to_3_spatial_dims(alias, order):
    nd = int(alias[4])
    geometry = (2, 4, (7, 6, 5)[:nd], 6, (3, 2, 2)[:nd], {"stride": 2, "pad": 1, "dilation": 1, "group": 2})
    check_conv(alias, geometry, order, "bias")


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("op_type", CONV_TYPES)
def test_cuda_conv_3d_with_groups_and_dilation(op_type, order):
    geometry = (2, 4, (5, 6, 4), 2, (2, 3, 2), {"strides": [1, 2, 1], "dilations": [2, 1, 1],
                                                "pads": [1, 0, 1, 0, 1, 1], "group": 2})
    check_conv(op_type, geometry, order, "bias")


def op_error(op_type, inputs, args, num_outputs=None, device_option=None) -> str:
    with pytest.raises(Exception) as error:
        run_op(op_type, inputs, args, num_outputs, device_option=device_option)
    return str(error.value)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, shapes, args, num_outputs, message", [
    ("Conv", [(1, 4, 5, 5), (2, 3, 3, 3)], {}, None, "takes 3 per group"),
    ("Conv", [(1, 4, 5, 5), (3, 2, 3, 3)], {"group": 2}, None, "does not divide the filter's 3"),
    ("Conv", [(1, 2, 5, 5), (3, 2, 3, 3), (4,)], {}, None, "bias is"),
    ("Conv", [(1, 2, 2, 5), (3, 2, 3, 3)], {}, None, "larger than X"),
    ("ConvGradient", [(1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 4, 3)], {}, 3, "dY is"),
    ("ConvGradient", [(1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 3, 3)], {"no_bias": 1}, 3, "with no_bias=1"),
    ("ConvTranspose", [(1, 2, 3, 3), (3, 2, 3, 3)], {}, None, "has 2 channels"),
    ("ConvTranspose", [(1, 2, 3, 3), (2, 2, 3, 3)], {"stride": 2, "adj": 3}, None, "may not exceed"),
    ("ConvTransposeGradient", [(1, 2, 3, 3), (2, 2, 3, 3), (1, 2, 4, 4)], {}, 3, "dY is"),
])
def test_cuda_conv_errors_say_what_the_cpu_kernel_says(op_type, shapes, args, num_outputs, message):
    """Bad inputs the checker at CreateNet cannot see (runtime shapes) fail alike on both devices."""
    inputs = [randn(*shape) for shape in shapes]
    cpu = op_error(op_type, inputs, args, num_outputs)
    gpu = op_error(op_type, inputs, args, num_outputs, CUDA)
    assert message in cpu
    assert gpu.split("failed: ")[-1].split(" [inputs")[0] == cpu.split("failed: ")[-1].split(" [inputs")[0]


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_conv_over_4_spatial_dims_says_the_gpu_takes_3():
    inputs = [randn(1, 1, 2, 2, 2, 2), randn(1, 1, 1, 1, 1, 1)]
    gpu = op_error("Conv", inputs, {}, device_option=CUDA)
    assert "the CUDA kernels take 1 to 3 spatial dims" in gpu
