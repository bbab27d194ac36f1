"""RoI detection family (RoIAlign, RoIAlignRotated, RoIPool, BatchPermutation and their gradient ops): each op
against a direct loop-over-bins NumPy reference (RoIAlign: every bilinear sample of every bin
on tiny inputs) on both devices and in both orders, gradients against central differences and
through the registered makers, shape inference, and clear errors for bad RoIs on both devices.
CUDA against the CPU twin runs larger maps, RoIs partly outside X, adaptive and fixed grids,
aligned=1, and RoIs sharing cells (the gradients' atomic adds)."""
import itertools
import math

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import (
    CUDA,
    check_devices,
    check_gradient_op,
    check_reference,
    device_option,
    make_op,
    run_op,
)
from tests.operators import DEVICES
from tests.schema import infer

rng = np.random.default_rng(7)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def bilinear(image, y, x):
    """image [C, H, W] at (y, x) as Caffe2's RoIAlign samples it: zero more than a cell
    outside, clamped to the border within one."""
    height, width = image.shape[1:]
    if y < -1 or y > height or x < -1 or x > width:
        return np.zeros(image.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * image[:, y0, x0] + (1 - ly) * lx * image[:, y0, x1]
            + ly * (1 - lx) * image[:, y1, x0] + ly * lx * image[:, y1, x1])


def ref_roi_align(x, rois, pooled_h=1, pooled_w=1, spatial_scale=1.0, sampling_ratio=-1, aligned=0, **_):
    """RoIAlign (NCHW) by a loop over RoIs, bins and the bilinear samples of each bin."""
    x = x.astype(np.float64)
    out = np.zeros((len(rois), x.shape[1], pooled_h, pooled_w))
    for r, roi in enumerate(rois.astype(np.float64)):
        b = int(roi[0]) if len(roi) == 5 else 0
        offset = 0.5 if aligned else 0.0
        x1, y1, x2, y2 = (v * spatial_scale - offset for v in roi[-4:])
        w, h = x2 - x1, y2 - y1
        if not aligned:
            w, h = max(w, 1.0), max(h, 1.0)
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(h / pooled_h)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(w / pooled_w)
        for p in range(pooled_h):
            for q in range(pooled_w):
                total = np.zeros(x.shape[1])
                for iy in range(gh):
                    for ix in range(gw):
                        total += bilinear(x[b], y1 + (p + (iy + 0.5) / gh) * h / pooled_h,
                                          x1 + (q + (ix + 0.5) / gw) * w / pooled_w)
                out[r, :, p, q] = total / max(gh * gw, 1)
    return out


def ref_roi_pool(x, rois, pooled_h=1, pooled_w=1, spatial_scale=1.0, **_):
    """RoIPool (NCHW): Y and argmaxes by a loop over RoIs, bins and cells (first max in row-major order)."""
    height, width = x.shape[2:]
    y = np.zeros((len(rois), x.shape[1], pooled_h, pooled_w), x.dtype)
    where = np.full(y.shape, -1, np.int32)
    for r, roi in enumerate(rois):
        b = int(roi[0])
        x1, y1, x2, y2 = (int(math.floor(abs(v * spatial_scale) + 0.5) * np.sign(v)) for v in roi[1:])
        h, w = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for p in range(pooled_h):
            hs = min(max(math.floor(p * h / pooled_h) + y1, 0), height)
            he = min(max(math.ceil((p + 1) * h / pooled_h) + y1, 0), height)
            for q in range(pooled_w):
                ws = min(max(math.floor(q * w / pooled_w) + x1, 0), width)
                we = min(max(math.ceil((q + 1) * w / pooled_w) + x1, 0), width)
                for c in range(x.shape[1]):
                    best, at = (0.0, -1) if he <= hs or we <= ws else (-np.inf, -1)
                    for i in range(hs, he):
                        for j in range(ws, we):
                            if x[b, c, i, j] > best:
                                best, at = x[b, c, i, j], i * width + j
                    y[r, c, p, q], where[r, c, p, q] = best, at
    return y, where


ROIS5 = np.array([[0, 1.0, 1.5, 6.2, 5.1], [1, 0.3, 2.2, 7.7, 6.6], [1, -3.0, -2.0, 9.5, 11.0],
                  [0, 4.0, 3.0, 4.2, 3.1], [1, 6.5, 5.5, 12.0, 9.0]], np.float32)

# (X shape (NCHW), RoIs, args)
ALIGN = [
    ((2, 3, 7, 8), ROIS5, {"pooled_h": 2, "pooled_w": 3}),
    ((2, 3, 7, 8), ROIS5, {"pooled_h": 3, "pooled_w": 2, "sampling_ratio": 2}),
    ((2, 2, 9, 6), ROIS5, {"pooled_h": 2, "pooled_w": 2, "spatial_scale": 0.5, "sampling_ratio": 0}),
    ((2, 2, 7, 8), ROIS5, {"pooled_h": 2, "pooled_w": 2, "aligned": 1}),
    ((1, 3, 5, 6), ROIS5[[0, 3], 1:], {"pooled_h": 2, "pooled_w": 2, "sampling_ratio": 1}),
    ((2, 3, 5, 6), np.zeros((0, 5), np.float32), {"pooled_h": 2, "pooled_w": 2}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("x_shape, rois, args", ALIGN)
def test_roi_align_matches_reference_in_both_orders(x_shape, rois, args, device):
    x = randn(*x_shape)
    (y,) = check_reference("RoIAlign", [x, rois], ref_roi_align, args, device=device)
    assert y.dtype == np.float32
    check_reference("RoIAlign", [nhwc(x), rois], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"},
                    device=device)


def weighted_corners_max(image, y, x):
    """ONNX's RoIAlign mode max at one sample: the largest of the four weighted corners."""
    height, width = image.shape[1:]
    if y < -1 or y > height or x < -1 or x > width:
        return np.zeros(image.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = min(int(y), height - 1), min(int(x), width - 1)
    y = float(y0) if y0 == height - 1 else y
    x = float(x0) if x0 == width - 1 else x
    y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
    ly, lx = y - y0, x - x0
    return np.max([(1 - ly) * (1 - lx) * image[:, y0, x0], (1 - ly) * lx * image[:, y0, x1],
                   ly * (1 - lx) * image[:, y1, x0], ly * lx * image[:, y1, x1]], axis=0)


def ref_roi_align_max(x, rois, pooled_h=1, pooled_w=1, spatial_scale=1.0, sampling_ratio=-1, aligned=0, **_):
    out = np.zeros((len(rois), x.shape[1], pooled_h, pooled_w))
    for r, roi in enumerate(rois.astype(np.float64)):
        b, offset = int(roi[0]), 0.5 if aligned else 0.0
        x1, y1, x2, y2 = (v * spatial_scale - offset for v in roi[1:])
        w, h = (x2 - x1, y2 - y1) if aligned else (max(x2 - x1, 1.0), max(y2 - y1, 1.0))
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(h / pooled_h)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(w / pooled_w)
        for p, q in itertools.product(range(pooled_h), range(pooled_w)):
            samples = [weighted_corners_max(x[b].astype(np.float64), y1 + (p + (iy + 0.5) / gh) * h / pooled_h,
                                            x1 + (q + (ix + 0.5) / gw) * w / pooled_w)
                       for iy in range(gh) for ix in range(gw)]
            out[r, :, p, q] = np.max(samples, axis=0)
    return out


@pytest.mark.parametrize("args", [{"pooled_h": 2, "pooled_w": 3}, {"pooled_h": 3, "pooled_w": 2, "aligned": 1,
                                                                   "sampling_ratio": 2, "spatial_scale": 0.7}])
def test_roi_align_mode_max(args):
    x = randn(2, 3, 7, 8)
    check_reference("RoIAlign", [x, ROIS5], ref_roi_align_max, {**args, "mode": "max"}, atol=1e-5)
    with pytest.raises(ShapeError, match="mode 'max' has no gradient"):
        infer("RoIAlignGradient", [(2, 3, 7, 8), (5, 5), (5, 3, 2, 2)], mode="max")


@pytest.mark.gpu
@pytest.mark.slow
def test_roi_align_mode_max_has_no_cuda_kernel():
    with pytest.raises((OpFailure, NetError), match="mode 'max' has no CUDA kernel"):
        run_op("RoIAlign", [randn(2, 3, 7, 8), ROIS5], {"mode": "max"}, device_option=device_option("cuda"))


def test_roi_align_rejects_a_negative_roi_when_aligned():
    rois = np.array([[0, 5.0, 1.0, 2.0, 4.0]], np.float32)
    with pytest.raises(OpFailure, match="RoI row 0 has a negative size"):
        run_op("RoIAlign", [randn(1, 1, 6, 6), rois], {"aligned": 1})
    (y,) = run_op("RoIAlign", [randn(1, 1, 6, 6), rois], {})  # legacy: made 1x1
    assert y.shape == (1, 1, 1, 1)


def ref_roi_align_rotated(x, rois, pooled_h=1, pooled_w=1, spatial_scale=1.0, sampling_ratio=-1, aligned=0, **_):
    """RoIAlignRotated (NCHW): each bin's samples on the RoI's own axes, turned by the angle about its centre."""
    x = x.astype(np.float64)
    out = np.zeros((len(rois), x.shape[1], pooled_h, pooled_w))
    for r, roi in enumerate(rois.astype(np.float64)):
        b = int(roi[0]) if len(roi) == 6 else 0
        offset = 0.5 if aligned else 0.0
        cx, cy = roi[-5] * spatial_scale - offset, roi[-4] * spatial_scale - offset
        w, h, theta = roi[-3] * spatial_scale, roi[-2] * spatial_scale, math.radians(roi[-1])
        if not aligned:
            w, h = max(w, 1.0), max(h, 1.0)
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(h / pooled_h)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(w / pooled_w)
        for p in range(pooled_h):
            for q in range(pooled_w):
                total = np.zeros(x.shape[1])
                for iy in range(gh):
                    for ix in range(gw):
                        dy = -h / 2 + (p + (iy + 0.5) / gh) * h / pooled_h
                        dx = -w / 2 + (q + (ix + 0.5) / gw) * w / pooled_w
                        total += bilinear(x[b], cy + dy * math.cos(theta) - dx * math.sin(theta),
                                          cx + dx * math.cos(theta) + dy * math.sin(theta))
                out[r, :, p, q] = total / max(gh * gw, 1)
    return out


ROTATED = np.array([[0, 4.0, 3.5, 5.0, 3.0, 30.0], [1, 5.2, 4.1, 6.5, 2.2, -75.0], [1, 1.0, 6.0, 9.0, 4.0, 0.0],
                    [0, 3.0, 3.0, 2.5, 2.0, 180.0]], np.float32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rois, args", [
    (ROTATED, {"pooled_h": 2, "pooled_w": 3}),
    (ROTATED, {"pooled_h": 3, "pooled_w": 2, "sampling_ratio": 2, "aligned": 1}),
    (ROTATED[[0, 3], 1:], {"pooled_h": 2, "pooled_w": 2, "spatial_scale": 0.5}),
])
def test_roi_align_rotated_matches_reference_in_both_orders(rois, args, device):
    x = randn(2, 3, 7, 8)
    (y,) = check_reference("RoIAlignRotated", [x, rois], ref_roi_align_rotated, args, device=device)
    check_reference("RoIAlignRotated", [nhwc(x), rois], lambda *_, **__: nhwc(y), {**args, "order": "NHWC"},
                    device=device)


def test_roi_align_rotated_at_angle_0_is_roi_align():
    x, rois = randn(2, 2, 9, 9), ROTATED.copy()
    rois[:, 5] = 0
    corners = np.concatenate([rois[:, :1], rois[:, 1:3] - rois[:, 3:5] / 2, rois[:, 1:3] + rois[:, 3:5] / 2], 1)
    args = {"pooled_h": 3, "pooled_w": 2}
    np.testing.assert_allclose(run_op("RoIAlignRotated", [x, rois], args)[0],
                               run_op("RoIAlign", [x, corners], args)[0], atol=1e-5)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_roi_align_rotated_gradient_matches_numeric(order):
    x = randn(2, 1, 7, 8, dtype=np.float64)
    x = nhwc(x) if order == "NHWC" else x
    args = {"pooled_h": 2, "pooled_w": 2, "order": order}
    (y,) = run_op("RoIAlignRotated", [x, ROTATED], args)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op("RoIAlignRotated", [x, ROTATED], "RoIAlignRotatedGradient", [x, ROTATED, dy], {0: 0}, [dy],
                      args, atol=1e-6, rtol=1e-6)


POOL = [
    ((2, 3, 7, 8), ROIS5, {"pooled_h": 2, "pooled_w": 3}),
    ((2, 2, 9, 6), ROIS5, {"pooled_h": 3, "pooled_w": 3, "spatial_scale": 0.5}),
    ((2, 2, 5, 5), ROIS5, {"pooled_h": 4, "pooled_w": 4}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("x_shape, rois, args", POOL)
def test_roi_pool_matches_reference_in_both_orders(x_shape, rois, args, device):
    x = randn(*x_shape)
    y, where = check_reference("RoIPool", [x, rois], ref_roi_pool, args, num_outputs=2, device=device)
    assert where.dtype == np.int32
    check_reference("RoIPool", [nhwc(x), rois], lambda *_, **__: (nhwc(y), nhwc(where)),
                    {**args, "order": "NHWC"}, num_outputs=2, device=device)
    (alone,) = run_op("RoIPool", [x, rois], {**args, "is_test": 1})
    np.testing.assert_array_equal(alone, y)


def test_roi_pool_argmax_is_the_first_max_in_row_major_order():
    x = np.array([[[[1, 5, 5], [5, 0, 2], [5, 1, 1]]]], np.float32)
    y, where = run_op("RoIPool", [x, np.array([[0, 0, 0, 2, 2]], np.float32)], num_outputs=2)
    assert y.item() == 5 and where.item() == 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, indices", [((4, 3), [2, 0, 1, 3]), ((3, 2, 2), [2, 1, 0]), ((1,), [0]),
                                            ((0, 3), [])])
def test_batch_permutation_matches_reference(shape, indices, device):
    x = randn(*shape)
    for dtype in (np.int32, np.int64):
        idx = np.array(indices, dtype)
        check_reference("BatchPermutation", [x, idx], lambda x, i: x[i], device=device)
        dy = randn(*shape)
        expected = np.zeros_like(dy)
        expected[idx] = dy
        check_reference("BatchPermutationGradient", [idx, dy], lambda *_, e=expected: e, device=device)


# -- gradients ----------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, rois, args", ALIGN[:5])
def test_roi_align_gradient_matches_numeric(x_shape, rois, args, order):
    x = randn(x_shape[0], 1, *x_shape[2:], dtype=np.float64)  # one channel: numeric steps cost per element
    x = nhwc(x) if order == "NHWC" else x
    args = {**args, "order": order}
    (y,) = run_op("RoIAlign", [x, rois], args)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op("RoIAlign", [x, rois], "RoIAlignGradient", [x, rois, dy], {0: 0}, [dy], args,
                      atol=1e-6, rtol=1e-6)


def distinct(*shape):
    """Values at least 0.05 apart: max pooling has no ties within a numeric step."""
    return (rng.permutation(math.prod(shape)).reshape(shape) * 0.05 - 1).astype(np.float64)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, rois, args", [((2, 1, 5, 6), ROIS5, {"pooled_h": 2, "pooled_w": 3}),
                                                 ((2, 1, 6, 5), ROIS5, {"pooled_h": 3, "pooled_w": 3,
                                                                        "spatial_scale": 0.5})])
def test_roi_pool_gradient_matches_numeric(x_shape, rois, args, order):
    x = distinct(x_shape[0], 1, *x_shape[2:])
    x = nhwc(x) if order == "NHWC" else x
    args = {**args, "order": order}
    y, where = run_op("RoIPool", [x, rois], args, num_outputs=2)
    dy = randn(*y.shape, dtype=np.float64)
    check_gradient_op("RoIPool", [x, rois], "RoIPoolGradient", [x, rois, where, dy], {0: 0}, [dy, None], args,
                      num_outputs=2, atol=1e-6, rtol=1e-6)


def test_batch_permutation_gradient_matches_numeric():
    x, idx = randn(4, 2, 3, dtype=np.float64), np.array([3, 0, 2, 1], np.int32)
    dy = randn(4, 2, 3, dtype=np.float64)
    check_gradient_op("BatchPermutation", [x, idx], "BatchPermutationGradient", [idx, dy], {0: 0}, [dy],
                      atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("op_type, inputs, args, outputs", [
    ("RoIAlign", [randn(2, 1, 6, 7, dtype=np.float64), ROIS5], {"pooled_h": 2, "pooled_w": 2}, ["Y"]),
    ("RoIAlign", [nhwc(randn(2, 1, 5, 6, dtype=np.float64)), ROIS5],
     {"pooled_h": 3, "pooled_w": 2, "sampling_ratio": 2, "order": "NHWC"}, ["Y"]),
    ("RoIPool", [distinct(2, 1, 6, 7), ROIS5], {"pooled_h": 2, "pooled_w": 2}, ["Y", "argmax"]),
    ("RoIAlignRotated", [randn(2, 1, 6, 7, dtype=np.float64), ROTATED], {"pooled_h": 2, "pooled_w": 2}, ["Y"]),
    ("BatchPermutation", [randn(3, 4, dtype=np.float64), np.array([1, 2, 0], np.int32)], {}, ["Y"]),
])
def test_registered_gradients(op_type, inputs, args, outputs):
    report = check_op_gradient(make_op(op_type, ["X", "R"], outputs, args), inputs, 0)
    assert report.ok, report


def test_roi_pool_without_argmaxes_has_no_gradient():
    from pycaffe2.errors import GradientError
    from pycaffe2.gradient import GetGradientForOp

    with pytest.raises(GradientError, match="RoIPool's gradient needs its argmaxes output"):
        GetGradientForOp(make_op("RoIPool", ["X", "R"], ["Y"], {"is_test": 1}), ["Y_grad"])


# -- shape inference and errors -------------------------------------------------------------------

def test_output_shapes():
    assert infer("RoIAlign", [(2, 3, 8, 8), (5, 5)], pooled_h=7, pooled_w=6) == [TensorInfo((5, 3, 7, 6))]
    assert infer("RoIAlign", [(2, 8, 8, 3), (5, 4)], pooled_h=2, order="NHWC") == [TensorInfo((5, 2, 1, 3))]
    assert infer("RoIAlignGradient", [(2, 3, 8, 8), (5, 5), (5, 3, 1, 1)]) == [TensorInfo((2, 3, 8, 8))]
    assert infer("RoIAlignRotated", [(2, 3, 8, 8), (5, 6)], pooled_w=2) == [TensorInfo((5, 3, 1, 2))]
    assert infer("RoIAlignRotatedGradient", [(2, 3, 8, 8), (5, 5), (5, 3, 1, 1)]) == [TensorInfo((2, 3, 8, 8))]
    assert infer("RoIPool", [(2, 3, 8, 8), (4, 5)], n_out=2, pooled_h=2, pooled_w=2) == [
        TensorInfo((4, 3, 2, 2)), TensorInfo((4, 3, 2, 2), "int32")]
    assert infer("RoIPoolGradient", [(2, 3, 8, 8), (4, 5), TensorInfo((4, 3, 1, 1), "int32"),
                                     (4, 3, 1, 1)]) == [TensorInfo((2, 3, 8, 8))]
    assert infer("BatchPermutation", [(4, 5), TensorInfo((4,), "int32")]) == [TensorInfo((4, 5))]
    assert infer("BatchPermutationGradient", [TensorInfo((4,), "int64"), (4, 5)]) == [TensorInfo((4, 5))]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("RoIAlign", [(2, 3, 8), (5, 5)], {}, r"X is \[2, 3, 8\] but must be a 4-D feature map"),
    ("RoIAlign", [(2, 3, 8, 8), (5, 6)], {}, r"RoIs is \[5, 6\] but must be \[R, 4 or 5\]"),
    ("RoIPool", [(2, 3, 8, 8), (5, 4)], {}, r"rois is \[5, 4\] but must be \[R, 5\]"),
    ("RoIAlignRotated", [(2, 3, 8, 8), (5, 4)], {}, r"RoIs is \[5, 4\] but must be \[R, 5 or 6\]"),
    ("RoIAlignGradient", [(2, 3, 8, 8), (5, 5), (5, 3, 2, 2)], {},
     r"dY is \[5, 3, 2, 2\] but the forward op's Y is \[5, 3, 1, 1\]"),
    ("BatchPermutation", [(4, 5), TensorInfo((3,), "int32")], {}, r"indices is \[3\] but must be \[4\]"),
    ("BatchPermutation", [(4, 5), (4,)], {}, "indices is float32 but must be int32 or int64"),
])
def test_inference_errors_name_the_shapes(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("RoIAlign", [randn(2, 1, 4, 4), np.array([[2, 0, 0, 1, 1]], np.float32)], {},
     r"RoIs row 0 has batch index 2.0 but X holds 2 image\(s\)"),
    ("RoIAlign", [randn(1, 1, 4, 4), np.array([[0, 0, 0, np.nan, 1]], np.float32)], {},
     "RoIs row 0 holds a non-finite coordinate"),
    ("RoIAlign", [randn(1, 1, 4, 4), np.array([[0, 0, 0, 1e9, 1e9]], np.float32)], {},
     "bilinear samples .* give sampling_ratio > 0"),
    ("RoIPool", [randn(1, 1, 4, 4), np.array([[-1, 0, 0, 1, 1]], np.float32)], {},
     "rois row 0 has batch index -1.0"),
    ("BatchPermutation", [randn(3, 2), np.array([0, 3, 1], np.int32)], {}, r"indices\[1\] is 3 but must lie in"),
    ("RoIPoolGradient", [randn(1, 1, 4, 4), np.array([[0, 0, 0, 1, 1]], np.float32),
                         np.array([[[[16]]]], np.int32), randn(1, 1, 1, 1)], {}, "argmaxes holds 16"),
])
def test_bad_values_are_clear_errors(op_type, inputs, args, message, device):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, device_option=CUDA if device == "cuda" else None)


# -- CUDA against the CPU twin ------------------------------------------------------------------

def many_rois(count, images, height, width, scale):
    """RoIs over the image (in image coordinates), some reaching outside, some tiny."""
    corners = rng.uniform(-4, max(height, width) / scale + 4, (count, 4)).astype(np.float32)
    corners[:, [0, 2]].sort(axis=1)
    lo, hi = np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])
    return np.concatenate([rng.integers(0, images, (count, 1)).astype(np.float32), lo, hi], axis=1)


# (X shape (NCHW), RoI count, args)
CUDA_CASES = [
    ((2, 4, 23, 31), 17, {"pooled_h": 7, "pooled_w": 7, "spatial_scale": 0.25}),
    ((2, 3, 16, 20), 9, {"pooled_h": 3, "pooled_w": 5, "sampling_ratio": 2, "spatial_scale": 0.5}),
    ((1, 5, 12, 12), 11, {"pooled_h": 2, "pooled_w": 2, "aligned": 1, "spatial_scale": 0.5}),
]
DEVICE_CHECKED = {"RoIAlign", "RoIAlignGradient", "RoIAlignRotated", "RoIAlignRotatedGradient", "RoIPool",
                  "RoIPoolGradient", "BatchPermutation", "BatchPermutationGradient"}


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, count, args", CUDA_CASES)
def test_cuda_roi_ops_match_cpu(x_shape, count, args, order):
    x = distinct(*x_shape).astype(np.float32)
    x = nhwc(x) if order == "NHWC" else x
    rois = many_rois(count, x_shape[0], *x_shape[2:], args["spatial_scale"])
    args = {**args, "order": order}
    (y,) = check_devices("RoIAlign", [x, rois], args)
    check_devices("RoIAlignGradient", [x, rois, randn(*y.shape)], args)
    pool_args = {k: v for k, v in args.items() if k not in ("aligned", "sampling_ratio")}
    y, where = check_devices("RoIPool", [x, rois], pool_args, num_outputs=2)
    check_devices("RoIPoolGradient", [x, rois, where, randn(*y.shape)], pool_args)


def many_rotated_rois(count, images, height, width, scale):
    """Rotated RoIs [batch, ctr_x, ctr_y, w, h, angle] over the image, some reaching outside."""
    centre = rng.uniform(-2, np.array([width, height]) / scale + 2, (count, 2))
    size = rng.uniform(0.5, max(height, width) / scale / 2, (count, 2))
    angle = rng.uniform(-180, 180, (count, 1))
    batch = rng.integers(0, images, (count, 1))
    return np.concatenate([batch, centre, size, angle], axis=1).astype(np.float32)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("x_shape, count, args", CUDA_CASES)
def test_cuda_roi_align_rotated_matches_cpu(x_shape, count, args, order):
    x = randn(*x_shape)
    x = nhwc(x) if order == "NHWC" else x
    rois = many_rotated_rois(count, x_shape[0], *x_shape[2:], args["spatial_scale"])
    args = {**args, "order": order}
    (y,) = check_devices("RoIAlignRotated", [x, rois], args)
    check_devices("RoIAlignRotatedGradient", [x, rois, randn(*y.shape)], args)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_batch_permutation_matches_cpu():
    x, idx = randn(64, 3, 5), rng.permutation(64).astype(np.int32)
    check_devices("BatchPermutation", [x, idx])
    check_devices("BatchPermutationGradient", [idx, randn(64, 3, 5)])
