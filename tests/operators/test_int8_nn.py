"""The int8_nn family: Int8 pooling and activations against float references on the
dequantized inputs (within one output step; the lookup tables against QNNPACK's
formulas), Y's quantization rules, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.operators.int8_nn import softargmax
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import make_op, run_op
from tests.operators._int8_util import check_int8, q8
from tests.schema import infer

U8 = "uint8"


def float_pool(op_type, x, args):
    y, = run_op(op_type, [np.asarray(x, np.float64)], args)  # float32 rounding would blur half steps
    return y


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("order", ["NHWC", "NCHW"])
@pytest.mark.parametrize("window", [{"kernel": 2, "stride": 2}, {"kernel": 3, "pad": 1},
                                    {"global_pooling": 1}])
def test_max_pool(relu, order, window):
    rng = np.random.default_rng(0)
    x = q8(rng, (2, 5, 5, 3) if order == "NHWC" else (2, 3, 5, 5), 0.1, 128)
    args = {**window, "order": order}

    def reference(xf):
        y = float_pool("MaxPool", xf, args)
        return np.maximum(y, 0) if relu else y
    y, = check_int8("Int8MaxPoolRelu" if relu else "Int8MaxPool", [x], reference, args, steps=0)
    assert (y.scale, y.zero_point) == (x.scale, x.zero_point)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("order", ["NHWC", "NCHW"])
@pytest.mark.parametrize("window", [{"kernel": 2, "stride": 2}, {"kernel": 3, "pad": 1},
                                    {"global_pooling": 1}])
@pytest.mark.parametrize("y_quantization", [{}, {"Y_scale": 0.05, "Y_zero_point": 100}])
def test_average_pool(relu, order, window, y_quantization):
    rng = np.random.default_rng(1)
    x = q8(rng, (2, 5, 5, 3) if order == "NHWC" else (2, 3, 5, 5), 0.1, 128)
    args = {**window, "order": order, **y_quantization}

    def reference(xf):  # QNNPACK counts padded cells (as zero) in every window
        y = float_pool("AveragePool", xf, {**window, "order": order, "count_include_pad": 1})
        return np.maximum(y, 0) if relu else y
    check_int8("Int8AveragePoolRelu" if relu else "Int8AveragePool", [x], reference, args, steps=0.5)


def test_relu_keeps_quantization_and_checks_y_args():
    x = Int8Tensor(np.array([0, 99, 100, 101, 255], np.uint8), 0.5, 100)
    y, = run_op("Int8Relu", [x])
    assert y.data.tolist() == [100, 100, 100, 101, 255] and (y.scale, y.zero_point) == (0.5, 100)
    assert run_op("Int8Relu", [x], {"Y_scale": 0.5, "Y_zero_point": 100})[0].data.tolist() == y.data.tolist()
    with pytest.raises(OpFailure, match="must equal X's zero point"):
        run_op("Int8Relu", [x], {"Y_zero_point": 0})
    with pytest.raises(OpFailure, match="must equal X's scale"):
        run_op("Int8MaxPool", [Int8Tensor(x.data.reshape(1, 1, 1, 5), 0.5, 100)],
               {"kernel": 1, "Y_scale": 1.0})


@pytest.mark.parametrize("y_quantization", [{}, {"Y_scale": 0.02, "Y_zero_point": 50}])
def test_leaky_relu(y_quantization):
    rng = np.random.default_rng(2)
    x = q8(rng, (3, 4), 0.05, 128)
    args = {"alpha": 0.2, **y_quantization}
    check_int8("Int8LeakyRelu", [x], lambda xf: np.where(xf < 0, 0.2 * xf, xf), args, steps=0.5)


def test_sigmoid():
    x = Int8Tensor(np.arange(256, dtype=np.uint8).reshape(4, 64), 0.05, 128)
    y, = check_int8("Int8Sigmoid", [x], lambda xf: 1 / (1 + np.exp(-xf)), steps=0.5)
    assert (y.scale, y.zero_point) == (1 / 256, 0) and y.data[0, 0] == 0 and y.data[-1, -1] == 255


def test_softmax():
    rng = np.random.default_rng(3)
    x = q8(rng, (3, 2, 4), 0.05, 128)

    def reference(xf):
        rows = xf.reshape(3, -1)
        e = np.exp(rows - rows.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).reshape(xf.shape)
    check_int8("Int8Softmax", [x], reference, steps=1)


def test_softargmax_on_hand_cases():
    # equal codes: each of 4 gets 256 / 4 = 64; one code far above the rest takes all (255 cap)
    assert softargmax(np.full((1, 4), 7, np.uint8), 0.1).tolist() == [[64, 64, 64, 64]]
    assert softargmax(np.array([[255, 0]], np.uint8), 1.0).tolist() == [[255, 0]]


def test_inference():
    assert infer("Int8MaxPool", [(1, 6, 6, 3)], dtype=U8, kernel=2, stride=2, order="NHWC") == [
        TensorInfo((1, 3, 3, 3), U8)]
    assert infer("Int8AveragePool", [(1, 3, 6, 6)], dtype=U8, global_pooling=1) == [
        TensorInfo((1, 3, 1, 1), U8)]
    for op_type in ("Int8Relu", "Int8LeakyRelu", "Int8Sigmoid", "Int8Softmax"):
        assert infer(op_type, [(2, 3)], dtype=U8) == [TensorInfo((2, 3), U8)]


@pytest.mark.parametrize("op_type,shapes,args,match", [
    ("Int8MaxPool", [(6, 6, 3)], {"kernel": 2}, "4-D"),
    ("Int8AveragePool", [(1, 6, 6, 3)], {}, "no kernel"),
    ("Int8LeakyRelu", [(2,)], {"alpha": 1.5}, "alpha"),
    ("Int8Sigmoid", [(2,)], {"Y_scale": 0.5}, "1/256"),
    ("Int8Softmax", [(2,)], {"Y_zero_point": 3}, "1/256"),
    ("Int8Softmax", [()], {}, "batch dim"),
])
def test_inference_errors(op_type, shapes, args, match):
    with pytest.raises(ShapeError, match=match):
        infer(op_type, shapes, dtype=U8, **args)


def test_run_errors():
    x = Int8Tensor(np.zeros((2, 3), np.uint8), 1.0, 0)
    with pytest.raises(OpFailure, match="2\\*\\*-8"):
        run_op("Int8LeakyRelu", [x], {"Y_scale": 1e-4})
    with pytest.raises(OpFailure, match="not an Int8 tensor"):
        run_op("Int8Relu", [np.zeros(3, np.float32)])


def test_no_gradients():
    for op_type in ("Int8MaxPool", "Int8AveragePool", "Int8Relu", "Int8Softmax"):
        ops, grads = GetGradientForOp(make_op(op_type, ["x"], ["y"]), ["y_grad"])
        assert ops == [] and grads == [None]


def float_roi_align(x, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio, empty_value=0.0):
    """Caffe2's RoIAlign (float, NHWC, not aligned) in NumPy, loops over the few bins; a
    sample outside the map counts as empty_value (0; the Int8 kernel's is code 0's value)."""
    out = np.zeros((len(rois), pooled_h, pooled_w, x.shape[3]))
    h, w = x.shape[1:3]
    for r, roi in enumerate(rois):
        batch, (x1, y1, x2, y2) = int(roi[0]), roi[1:] * spatial_scale
        rw, rh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        gh = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rh / pooled_h))
        gw = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rw / pooled_w))
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                total = 0.0
                for iy in range(gh):
                    for ix in range(gw):
                        yy = y1 + ph * rh / pooled_h + (iy + 0.5) * rh / pooled_h / gh
                        xx = x1 + pw * rw / pooled_w + (ix + 0.5) * rw / pooled_w / gw
                        if yy < -1 or yy > h or xx < -1 or xx > w:
                            total += empty_value
                            continue
                        yy, xx = max(yy, 0), max(xx, 0)
                        y0, x0 = min(int(yy), h - 1), min(int(xx), w - 1)
                        y1_, x1_ = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                        ly, lx = (yy - y0 if y0 < h - 1 else 0), (xx - x0 if x0 < w - 1 else 0)
                        img = x[batch]
                        total += ((1 - ly) * (1 - lx) * img[y0, x0] + (1 - ly) * lx * img[y0, x1_]
                                  + ly * (1 - lx) * img[y1_, x0] + ly * lx * img[y1_, x1_])
                out[r, ph, pw] = total / (gh * gw)
    return out


@pytest.mark.parametrize("sampling_ratio", [2, -1])
def test_roi_align(sampling_ratio):
    rng = np.random.default_rng(4)
    x = q8(rng, (2, 6, 7, 3), 0.1, 128)
    rois = np.array([[0, 0.0, 0.0, 6.0, 5.0], [1, 2.5, 1.0, 9.0, 11.0], [1, -3.0, -2.0, 1.0, 2.0]], np.float32)
    args = {"spatial_scale": 0.5, "pooled_h": 2, "pooled_w": 3, "sampling_ratio": sampling_ratio,
            "Y_scale": 0.05, "Y_zero_point": 128}
    # the kernel rounds each bilinear weight to a multiple of 1/255 (allow 2 steps), and a
    # sample outside the map adds 0 - X's zero point in codes (Caffe2's kernel does)
    check_int8("Int8RoIAlign", [x, rois],
               lambda xf, r: float_roi_align(xf, r, 0.5, 2, 3, sampling_ratio, -128 * 0.1), args, steps=2)
    four, = run_op("Int8RoIAlign", [x, rois[:1, 1:]], args)
    np.testing.assert_array_equal(four.data, run_op("Int8RoIAlign", [x, rois[:1]], args)[0].data)


def test_roi_align_errors():
    x = Int8Tensor(np.zeros((1, 4, 4, 2), np.uint8), 0.1, 0)
    with pytest.raises(OpFailure, match="batch indices"):
        run_op("Int8RoIAlign", [x, np.array([[3, 0, 0, 1, 1]], np.float32)])
    with pytest.raises(OpFailure, match="byte cap"):
        run_op("Int8RoIAlign", [x, np.array([[0, 0, 0, 1, 1]], np.float32)], {"pooled_h": 10**6, "pooled_w": 10**6})
    with pytest.raises(OpFailure, match="too many"):
        run_op("Int8RoIAlign", [x, np.array([[0, 0, 0, 1e9, 1e9]], np.float32)])
    with pytest.raises(ShapeError, match="\\[R, 4\\] or \\[R, 5\\]"):
        infer("Int8RoIAlign", [(1, 4, 4, 2), (3, 3)], dtype=U8)
    assert infer("Int8RoIAlign", [(1, 4, 4, 2), TensorInfo((3, 5), "float32")], dtype=U8, pooled_h=2,
                 pooled_w=2) == [TensorInfo((3, 2, 2, 2), U8)]
