"""resize family (ResizeNearest, UpsampleBilinear and their gradient ops): each op
against loop references written here from Caffe2's formulas (on the CPU and on CUDA),
the gradient ops against numeric derivatives, the registered gradients against
central differences, shape inference against the kernels, errors (one message from
inference and both kernels), and the CUDA kernels against their CPU twins."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

f32 = np.float32


def randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def nearest_source(o, scale, size):
    return min(int(f32(o) / f32(scale)), size - 1)


def nearest_reference(x, scales=None, order="NCHW", height_scale=1.0, width_scale=1.0):
    if scales is not None:
        height_scale, width_scale = scales
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    n, c, h, w = xc.shape
    oh, ow = int(f32(h) * f32(height_scale)), int(f32(w) * f32(width_scale))
    y = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = xc[:, :, nearest_source(i, height_scale, h), nearest_source(j, width_scale, w)]
    return np.moveaxis(y, 1, -1) if order == "NHWC" else y


def nearest_gradient_reference(dy, x, scales=None, order="NCHW", height_scale=1.0, width_scale=1.0):
    if scales is not None:
        height_scale, width_scale = scales
    dyc = np.moveaxis(dy, -1, 1) if order == "NHWC" else dy
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    dx = np.zeros(xc.shape, np.float64)
    h, w = xc.shape[2:]
    for i in range(dyc.shape[2]):
        for j in range(dyc.shape[3]):
            dx[:, :, nearest_source(i, height_scale, h), nearest_source(j, width_scale, w)] += dyc[:, :, i, j]
    return np.moveaxis(dx, 1, -1) if order == "NHWC" else dx


def bilinear_taps(out, size):
    """(low, low + step, weight low, weight high) per output position, Caffe2's float32 formula."""
    ratio = f32(size - 1) / f32(out - 1) if out > 1 else f32(0)
    taps = []
    for o in range(out):
        r = ratio * f32(o)
        low = int(r)
        taps.append((low, low + (1 if low < size - 1 else 0), f32(1) - (r - f32(low)), r - f32(low)))
    return taps


def bilinear_reference(x, scales=None, height_scale=1.0, width_scale=1.0):
    if scales is not None:
        height_scale, width_scale = scales
    n, c, h, w = x.shape
    oh, ow = int(f32(h) * f32(height_scale)), int(f32(w) * f32(width_scale))
    y = np.zeros((n, c, oh, ow), np.float64)
    for i, (h0, h1, a0, a1) in enumerate(bilinear_taps(oh, h)):
        for j, (w0, w1, b0, b1) in enumerate(bilinear_taps(ow, w)):
            y[:, :, i, j] = (a0 * (b0 * x[:, :, h0, w0] + b1 * x[:, :, h0, w1])
                             + a1 * (b0 * x[:, :, h1, w0] + b1 * x[:, :, h1, w1]))
    return y


def bilinear_gradient_reference(dy, x, scales=None, height_scale=1.0, width_scale=1.0):
    dx = np.zeros(x.shape, np.float64)
    for i, (h0, h1, a0, a1) in enumerate(bilinear_taps(dy.shape[2], x.shape[2])):
        for j, (w0, w1, b0, b1) in enumerate(bilinear_taps(dy.shape[3], x.shape[3])):
            g = dy[:, :, i, j]
            dx[:, :, h0, w0] += a0 * b0 * g
            dx[:, :, h0, w1] += a0 * b1 * g
            dx[:, :, h1, w0] += a1 * b0 * g
            dx[:, :, h1, w1] += a1 * b1 * g
    return dx


# (shape NCHW, height_scale, width_scale)
NEAREST_CASES = [((2, 3, 4, 5), 2.0, 2.0), ((1, 2, 5, 4), 1.5, 0.5), ((2, 1, 7, 3), 0.3, 3.7),
                 ((1, 1, 4, 4), 1.0, 1.0), ((1, 2, 3, 6), 0.25, 0.7), ((1, 1, 1, 1), 4.0, 2.5)]


def nchw_to(order, shape):
    n, c, h, w = shape
    return (n, h, w, c) if order == "NHWC" else shape


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape, hs, ws", NEAREST_CASES)
def test_resize_nearest(shape, hs, ws, order, device):
    x = randn(nchw_to(order, shape), 1)
    args = {"order": order, "height_scale": hs, "width_scale": ws}
    check_reference("ResizeNearest", [x], nearest_reference, args, device=device)
    scales = np.array([hs, ws], np.float32)
    check_reference("ResizeNearest", [x, scales], nearest_reference, {"order": order}, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape, hs, ws", NEAREST_CASES)
def test_resize_nearest_gradient(shape, hs, ws, order, device):
    x = randn(nchw_to(order, shape), 2)
    (y,) = run_op("ResizeNearest", [x], {"order": order, "height_scale": hs, "width_scale": ws})
    dy = randn(y.shape, 3)
    args = {"order": order, "height_scale": hs, "width_scale": ws}
    check_reference("ResizeNearestGradient", [dy, x], nearest_gradient_reference, args, device=device)
    check_reference("ResizeNearestGradient", [dy, x, np.array([hs, ws], np.float32)],
                    nearest_gradient_reference, {"order": order}, device=device)


# (shape, height_scale, width_scale)
BILINEAR_CASES = [((2, 3, 4, 5), 2.0, 2.0), ((1, 2, 5, 4), 1.5, 3.3), ((2, 1, 3, 3), 1.0, 1.0),
                  ((1, 1, 1, 4), 2.0, 1.7), ((1, 2, 6, 2), 0.5, 0.6), ((1, 1, 2, 2), 0.4, 3.0)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, hs, ws", BILINEAR_CASES)
def test_upsample_bilinear(shape, hs, ws, device):
    x = randn(shape, 4)
    args = {"height_scale": hs, "width_scale": ws}
    check_reference("UpsampleBilinear", [x], bilinear_reference, args, device=device)
    check_reference("UpsampleBilinear", [x, np.array([hs, ws], np.float32)], bilinear_reference, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, hs, ws", BILINEAR_CASES)
def test_upsample_bilinear_gradient(shape, hs, ws, device):
    x = randn(shape, 5)
    args = {"height_scale": hs, "width_scale": ws}
    (y,) = run_op("UpsampleBilinear", [x], args)
    dy = randn(y.shape, 6)
    check_reference("UpsampleBilinearGradient", [dy, x], bilinear_gradient_reference, args, device=device)
    check_reference("UpsampleBilinearGradient", [dy, x, np.array([hs, ws], np.float32)],
                    bilinear_gradient_reference, device=device)


# ---- gradient ops against numeric derivatives, and the registered gradients --------------------

@pytest.mark.parametrize("op_type, args", [
    ("ResizeNearest", {"height_scale": 1.5, "width_scale": 0.7}),
    ("ResizeNearest", {"height_scale": 2.0, "width_scale": 2.5, "order": "NHWC"}),
    ("UpsampleBilinear", {"height_scale": 1.7, "width_scale": 2.0}),
    ("UpsampleBilinear", {"height_scale": 0.6, "width_scale": 1.0}),
])
def test_gradient_ops_match_numeric_derivatives(op_type, args):
    x = randn((1, 2, 3, 4), 7).astype(np.float64)
    (y,) = run_op(op_type, [x], args)
    dy = randn(y.shape, 8).astype(np.float64)
    check_gradient_op(op_type, [x], f"{op_type}Gradient", [dy, x], {0: 0}, [dy], args, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("op_type", ["ResizeNearest", "UpsampleBilinear"])
@pytest.mark.parametrize("with_scales", [False, True])
def test_registered_gradient(op_type, with_scales):
    x = np.random.default_rng(9).standard_normal((2, 2, 3, 3))
    scales = np.array([1.5, 2.0], np.float32)
    inputs = ["X", "scales"] if with_scales else ["X"]
    args = {} if with_scales else {"height_scale": 1.5, "width_scale": 2.0}
    op = make_op(op_type, inputs, ["Y"], args)
    report = check_op_gradient(op, [x, scales][:len(inputs)], 0)
    assert report.ok, report
    grad_ops, g_input = GetGradientForOp(op, ["Y_grad"])
    assert [list(o.input) for o in grad_ops] == [["Y_grad", *inputs]]
    assert g_input == ["X_grad", None][:len(inputs)]


# ---- shape inference and errors ------------------------------------------------------------

INFERENCE_CASES = [
    ("ResizeNearest", [(2, 3, 4, 5)], {"height_scale": 1.5, "width_scale": 0.5}),
    ("ResizeNearest", [(2, 4, 5, 3)], {"height_scale": 2.0, "width_scale": 1.5, "order": "NHWC"}),
    ("ResizeNearestGradient", [(2, 3, 6, 2), (2, 3, 4, 5)], {"height_scale": 1.5, "width_scale": 0.5}),
    ("UpsampleBilinear", [(1, 2, 3, 4)], {"height_scale": 2.5, "width_scale": 1.0}),
    ("UpsampleBilinearGradient", [(1, 2, 7, 4), (1, 2, 3, 4)], {"height_scale": 2.5}),
]


@pytest.mark.parametrize("op_type, shapes, args", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_matches_the_kernel(op_type, shapes, args):
    got = run_op(op_type, [randn(s, 10) for s in shapes], args)
    assert infer(op_type, shapes, **args) == [TensorInfo(v.shape, v.dtype.name) for v in got]


def test_inference_with_a_scales_input_is_unknown():
    assert infer("ResizeNearest", [(1, 2, 3, 4), (2,)]) == [None]
    assert infer("UpsampleBilinear", [(1, 2, 3, 4), (2,)]) == [None]
    assert infer("UpsampleBilinearGradient", [(1, 2, 6, 8), (1, 2, 3, 4), (2,)]) == [
        TensorInfo((1, 2, 3, 4), "float32")]


# (op type, inputs, args, message)
ERRORS = [
    ("ResizeNearest", lambda: [randn((2, 3, 4), 0)], {}, r"X must be 4-D, got \[2, 3, 4\]"),
    ("ResizeNearest", lambda: [np.ones((1, 1, 2, 2), np.int32)], {}, "X must be float, got int32"),
    ("ResizeNearest", lambda: [randn((1, 1, 2, 2), 0), randn(3, 1)], {},
     r"scales must be a 1-D float tensor of 2 elements \[height_scale, width_scale\], got \[3\] float32"),
    ("ResizeNearest", lambda: [randn((1, 1, 2, 2), 0)], {"height_scale": 3e9, "width_scale": 3e9},
     r"X \[1, 1, 2, 2\] scaled by \[3e\+09, 3e\+09\] is too large: more than 2147483647 output elements"),
    ("ResizeNearestGradient", lambda: [randn((2, 3, 4, 4), 0), randn((2, 2, 2, 2), 1)], {},
     r"dY \[2, 3, 4, 4\] and X \[2, 2, 2, 2\] must have the same batch and channel dims \(order NCHW\)"),
    ("UpsampleBilinear", lambda: [randn((1, 1, 2, 2, 2), 0)], {}, r"X must be 4-D, got \[1, 1, 2, 2, 2\]"),
    ("UpsampleBilinearGradient", lambda: [randn((1, 1, 4, 4), 0), randn((2, 1, 2, 2), 1)], {},
     r"dY \[1, 1, 4, 4\] and X \[2, 1, 2, 2\] must have the same batch and channel dims"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, make_inputs, args, message", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, args, message, device):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], **args)
    if device == "cuda" and inputs[0].dtype != np.float32:
        return  # the CUDA launchers take float32 only
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args, device_option=device_option(device))


def test_scales_input_values_are_checked():
    with pytest.raises((OpFailure, NetError), match="height_scale must be positive and finite, got -1.0"):
        run_op("ResizeNearest", [randn((1, 1, 2, 2), 0), np.array([-1, 2], np.float32)])


# ---- CUDA kernels against their CPU twins --------------------------------------------------

def device_cases():
    shapes = [((2, 3, 5, 7), 1.7, 0.6), ((1, 2, 4, 4), 2.0, 2.0), ((3, 1, 9, 2), 0.35, 4.2),
              ((1, 1, 1, 1), 3.0, 1.0), ((0, 2, 3, 3), 2.0, 2.0), ((1, 2, 33, 65), 1.3, 0.8)]
    for shape, hs, ws in shapes:
        args = {"height_scale": hs, "width_scale": ws}
        for order in ("NCHW", "NHWC"):
            x = randn(nchw_to(order, shape), 11)
            (y,) = run_op("ResizeNearest", [x], {**args, "order": order})
            yield "ResizeNearest", [x], {**args, "order": order}
            yield "ResizeNearestGradient", [randn(y.shape, 12), x], {**args, "order": order}
        x = randn(shape, 13)
        (y,) = run_op("UpsampleBilinear", [x], args)
        yield "UpsampleBilinear", [x], args
        yield "UpsampleBilinearGradient", [randn(y.shape, 14), x], args
    for order in ("NCHW", "NHWC"):  # a dY not of the scaled size: sources past the edge are clamped
        args = {"height_scale": 1e-30, "width_scale": 0.3, "order": order}
        yield "ResizeNearestGradient", [randn(nchw_to(order, (1, 2, 5, 7)), 15), randn(nchw_to(order, (1, 2, 4, 3)), 16)], args


DEVICE_CASES = [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(device_cases())]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, inputs, args", DEVICE_CASES)
def test_cuda_matches_cpu(op_type, inputs, args):
    check_devices(op_type, inputs, args, atol=1e-5, rtol=1e-5)


# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = {case.values[0] for case in DEVICE_CASES}


# ---- Resize (ONNX's) ---------------------------------------------------------------------------

def _source(o, n_in, n_out, scale, mode, roi):
    """ONNX's coordinate transformation of output index o (scalar)."""
    width = scale * n_in
    if mode == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        return n_in / 2 * (1 - n_out / width) + (o + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if width > 1 else -0.5
    if mode == "align_corners":
        return o * (n_in - 1) / (width - 1) if width != 1 else 0.0
    if mode == "asymmetric":
        return o / scale
    if mode == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale
    start, end = roi
    if width == 1:
        return (end - start) * (n_in - 1) / 2 + start * (n_in - 1)
    return start * (n_in - 1) + o * (end - start) * (n_in - 1) / (width - 1)


def _resize_1d(v, n_out, scale, roi, args):
    n_in = len(v)
    out = np.zeros(n_out)
    mode = args.get("mode", "nearest")
    ctm = args.get("coordinate_transformation_mode", "half_pixel")
    a = args.get("cubic_coeff_a", -0.75)
    for o in range(n_out):
        x = _source(o, n_in, n_out, scale, ctm, roi)
        if ctm == "tf_crop_and_resize" and not 0 <= x <= n_in - 1:
            out[o] = args.get("extrapolation_value", 0.0)
            continue
        if mode == "nearest":
            nm = args.get("nearest_mode", "round_prefer_floor")
            frac = x - np.floor(x)
            pick = {"floor": np.floor(x), "ceil": np.ceil(x),
                    "round_prefer_floor": np.floor(x) if frac <= 0.5 else np.ceil(x),
                    "round_prefer_ceil": np.floor(x) if frac < 0.5 else np.ceil(x)}[nm]
            out[o] = v[int(min(max(pick, 0), n_in - 1))]
            continue
        s = min(scale, 1.0) if args.get("antialias") else 1.0
        reach = (1 if mode == "linear" else 2) / s
        taps = [i for i in range(int(np.floor(x - reach)) - 1, int(np.ceil(x + reach)) + 2) if abs(i - x) * s < (1 if mode == "linear" else 2)]
        if mode == "linear":
            weights = [max(0.0, 1 - abs(i - x) * s) for i in taps]
        else:
            def k(t):
                t = abs(t)
                return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1 if t <= 1 else a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
            weights = [k((i - x) * s) for i in taps]
        if args.get("exclude_outside"):
            weights = [w if 0 <= i < n_in else 0.0 for i, w in zip(taps, weights)]
        total = sum(weights)
        if args.get("antialias") or args.get("exclude_outside"):
            weights = [w / total for w in weights]
        out[o] = sum(w * v[min(max(i, 0), n_in - 1)] for i, w in zip(taps, weights))
    return out


def resize_reference(x, **args):
    axes = [a % x.ndim for a in args.get("axes", range(x.ndim))]
    scales, sizes, roi = args.get("scales"), args.get("sizes"), args.get("roi")
    y = x.astype(np.float64)
    for k, axis in enumerate(sorted(axes)):
        i = axes.index(axis)
        n_in = x.shape[axis]
        if sizes is not None:
            scale = sizes[i] / n_in
            n_out = sizes[i]
            policy = args.get("keep_aspect_ratio_policy", "stretch")
            if policy != "stretch":
                pick = min if policy == "not_larger" else max
                scale = pick(s / x.shape[a] for s, a in zip(sizes, axes))
                n_out = int(scale * n_in + 0.5)
        else:
            scale = float(np.float32(scales[i]))
            n_out = int(np.float32(scale) * np.float32(n_in))
        span = (roi[i], roi[len(axes) + i]) if roi else (0.0, 1.0)
        y = np.apply_along_axis(_resize_1d, axis, y, n_out, scale, span, args)
    return y.astype(x.dtype)


RESIZE_CASES = [
    {"scales": [1, 1, 2.0, 3.0]},
    {"scales": [1, 1, 0.6, 0.5], "nearest_mode": "ceil", "coordinate_transformation_mode": "asymmetric"},
    {"sizes": [1, 2, 7, 3], "nearest_mode": "round_prefer_ceil", "coordinate_transformation_mode": "align_corners"},
    {"mode": "linear", "scales": [1, 1, 1.7, 0.6]},
    {"mode": "linear", "sizes": [1, 2, 1, 3], "coordinate_transformation_mode": "pytorch_half_pixel"},
    {"mode": "linear", "scales": [1, 1, 0.4, 0.7], "antialias": 1},
    {"mode": "linear", "scales": [1, 1, 1.5, 0.8], "coordinate_transformation_mode": "half_pixel_symmetric"},
    {"mode": "cubic", "scales": [1, 1, 2.0, 0.5]},
    {"mode": "cubic", "scales": [1, 1, 1.3, 0.6], "cubic_coeff_a": -0.5, "exclude_outside": 1},
    {"mode": "cubic", "sizes": [1, 2, 3, 2], "antialias": 1, "coordinate_transformation_mode": "align_corners"},
    {"mode": "linear", "sizes": [1, 2, 3, 3], "coordinate_transformation_mode": "tf_crop_and_resize",
     "roi": [0, 0, 0.4, 0.6, 1, 1, 1.2, 0.7], "extrapolation_value": 5.0},
    {"sizes": [7, 4], "axes": [2, -1], "keep_aspect_ratio_policy": "not_larger"},
    {"sizes": [7, 4], "axes": [3, 2], "keep_aspect_ratio_policy": "not_smaller", "mode": "linear"},
    {"scales": [2.0], "axes": [1]},
    {"scales": [1, 1, 1.5, 0.7], "coordinate_transformation_mode": "tf_half_pixel_for_nn"},
]


@pytest.mark.parametrize("args", RESIZE_CASES, ids=[str(i) for i in range(len(RESIZE_CASES))])
def test_resize_onnx(args):
    check_reference("Resize", [randn((1, 2, 4, 5), 20)], resize_reference, args, atol=1e-4, rtol=1e-4)


def test_resize_keeps_integer_types():
    x = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4) * 15
    check_reference("Resize", [x], resize_reference, {"mode": "linear", "scales": [1, 1, 1.5, 1.5]}, atol=1)


@pytest.mark.parametrize("args, message", [
    ({}, "give exactly one of scales and sizes"),
    ({"scales": [1.5, 2.5]}, r"scales has 2 values but 4 axes are resized \(X has rank 4\)"),
    ({"sizes": [1, 1], "axes": [1, 1]}, r"axes \[1, 1\] must be distinct axes of X's rank 4"),
    ({"scales": [1.5, 1.0, -0.5, 1.0]}, r"scales \[1.5, 1.0, -0.5, 1.0\] must be positive and finite"),
    ({"scales": [1.0, 1.0, 2.0, 2.0], "antialias": 1}, "antialias is for modes linear and cubic"),
])
def test_resize_onnx_errors(args, message):
    x = randn((1, 2, 3, 4), 21)
    with pytest.raises(ShapeError, match=message):
        infer("Resize", [x.shape], **args)
    with pytest.raises((OpFailure, NetError), match=rf"\(Resize\)(:| failed:) {message}"):
        run_op("Resize", [x], args)


@pytest.mark.parametrize("args", [RESIZE_CASES[i] for i in (0, 3, 5, 8, 10, 12)])
def test_resize_onnx_gradient(args):
    x = randn((1, 2, 4, 5), 22).astype(np.float64)
    (y,) = run_op("Resize", [x], args)
    dy = randn(y.shape, 23).astype(np.float64)
    check_gradient_op("Resize", [x], "ResizeGradient", [dy, x], {0: 0}, [dy], args, atol=1e-6, rtol=1e-6)
    grad_ops, g_input = GetGradientForOp(make_op("Resize", ["X"], ["Y"], args), ["Y_grad"])
    assert [list(o.input) for o in grad_ops] == [["Y_grad", "X"]] and g_input == ["X_grad"]


def test_resize_onnx_gradient_checks_dy():
    with pytest.raises(ShapeError, match=r"dY is \[1, 1, 4, 4\] but Resize's Y is \[1, 1, 3, 3\]"):
        infer("ResizeGradient", [(1, 1, 4, 4), (1, 1, 2, 2)], scales=[1.0, 1.0, 1.5, 1.5])
