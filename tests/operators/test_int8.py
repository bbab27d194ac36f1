"""The int8 family: the fills, Int8Quantize/Dequantize, Int8Conv(Relu),
Int8ConvTranspose, Int8FC and Int8Add/Sum(Relu) against float references on the
dequantized inputs (within one output step), QNNPACK's requantization on
hand-computed cases, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.proto import caffe2_pb2
from pycaffe2.qtensor import Int8Tensor, add_quantized, average_requantize, requantize
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import make_op, run_op
from tests.operators._int8_util import check_int8, q8
from tests.schema import infer

U8 = "uint8"


# ---- QNNPACK's arithmetic, exactly

def test_requantize_rounds_as_qnnpack():
    # scale 0.25: the Q31 product rounds half up, then the shift rounds ties away from zero,
    # so 5 * 0.25 = 1.25 comes out 2 (QNNPACK's double rounding) and -6 * 0.25 = -1.5 is -2
    acc = np.array([6, -6, 2, -2, 5, 4, -4, 0])
    assert requantize(acc, 0.25, 100).tolist() == [102, 98, 101, 99, 102, 101, 99, 100]
    # scale 0.5 (shift 0): only the Q31 rounding, half up
    assert requantize(np.array([3, -3, 5, -5]), 0.5, 128).tolist() == [130, 127, 131, 126]
    # clamped to [qmin, qmax] after the zero point
    assert requantize(np.array([-1000, 3000, 40]), 0.1, 10, qmin=10, qmax=200).tolist() == [10, 200, 14]


def test_requantize_wraps_int32_and_rounds_scales_qnnpack_refuses_in_float():
    assert requantize(np.array([2**31 + 8]), 0.5, 128).tolist() == [0]  # wraps to -2**31 + 8
    # scale >= 1: QNNPACK refuses; the product rounds half away from zero
    assert requantize(np.array([1, -1, 3, 100]), 2.5, 100).tolist() == [103, 97, 108, 255]
    a = Int8Tensor(np.array([3, 0], np.uint8), 1.0, 0)
    assert add_quantized(a, a, 1e-11, 5).tolist() == [255, 5]  # ratio 1e11 > 2**8


def test_average_requantize_and_add_on_hand_cases():
    # (acc + bias) * 1/3: 10 / 3 = 3.33 -> 3, 11 / 3 -> 4, -11 / 3 -> -4
    assert average_requantize(np.array([10, 11, -11]), 0, 1 / 3, 50).tolist() == [53, 54, 46]
    a = Int8Tensor(np.array([10, 20, 0], np.uint8), 1.0, 10)
    b = Int8Tensor(np.array([10, 5, 0], np.uint8), 0.5, 0)
    # real a = [0, 10, -10], b = [5, 2.5, 0]; sum at scale 1, zero point 100 = [105, 112.5, 90]
    assert add_quantized(a, b, 1.0, 100).tolist() == [105, 113, 90]


# ---- fills, Quantize, Dequantize

def test_given_fills():
    y, = run_op("Int8GivenTensorFill", [], {"values": b"\x00\x01\x80\xff", "shape": [2, 2],
                                            "Y_scale": 0.5, "Y_zero_point": 128})
    assert y.data.dtype == np.uint8 and y.data.tolist() == [[0, 1], [128, 255]]
    assert (y.scale, y.zero_point) == (0.5, 128)
    z, = run_op("Int8GivenIntTensorFill", [], {"values": [7, -3], "shape": [2], "Y_scale": 0.01})
    assert z.data.dtype == np.int32 and z.data.tolist() == [7, -3] and z.zero_point == 0


def test_quantize_dequantize_round_trip():
    x = np.array([-1.0, 0.0, 0.26, 0.25, 100.0, -100.0], np.float32)
    y, = run_op("Int8Quantize", [x], {"Y_scale": 0.5, "Y_zero_point": 10})
    # x / 0.5 rounds half to even: 0.52 -> 1, 0.5 -> 0
    assert y.data.tolist() == [8, 10, 11, 10, 210, 0]
    back, = run_op("Int8Dequantize", [y])
    assert back.dtype == np.float32 and back.tolist() == [-1.0, 0.0, 0.5, 0.0, 100.0, -5.0]
    # the qparams from inputs 1 and 2 override the args
    y2, = run_op("Int8Quantize", [x, np.array([0.25], np.float32), np.array([0], np.int32)])
    assert (y2.scale, y2.zero_point) == (0.25, 0) and y2.data[2] == 1


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("order", ["NHWC", "NCHW"])
@pytest.mark.parametrize("group,stride,pad", [(1, 1, 1), (2, 2, 0), (1, 1, 0)])
def test_conv(relu, order, group, stride, pad):
    rng = np.random.default_rng(group * 10 + stride + pad)
    c, m = 4, 6
    x = q8(rng, (2, 5, 5, c) if order == "NHWC" else (2, c, 5, 5), 0.05, 128)
    w = q8(rng, (m, 3, 3, c // group) if order == "NHWC" else (m, c // group, 3, 3), 0.01, 120)
    b = Int8Tensor(rng.integers(-500, 500, m).astype(np.int32), 0.0005, 0)
    args = {"kernel": 3, "stride": stride, "pad": pad, "group": group, "order": order,
            "Y_scale": 0.03, "Y_zero_point": 100}

    def reference(xf, wf, bf):
        y, = run_op("Conv", [xf, wf, (b.data * np.float32(0.05 * 0.01)).astype(np.float32)],
                    {k: v for k, v in args.items() if not k.startswith("Y_")})
        return np.maximum(y, 0) if relu else y
    y, = check_int8("Int8ConvRelu" if relu else "Int8Conv", [x, w, b], reference, args)
    if relu:
        assert y.data.min() >= 100


def test_conv_bias_forms_and_no_bias():
    rng = np.random.default_rng(3)
    x, w = q8(rng, (1, 4, 4, 2), 0.1, 128), q8(rng, (3, 1, 1, 2), 0.02, 128)
    args = {"kernel": 1, "order": "NHWC", "Y_scale": 0.1, "Y_zero_point": 128}
    no_bias, = run_op("Int8Conv", [x, w], args)
    zero32 = Int8Tensor(np.zeros(3, np.int32), 1.0, 0)
    assert np.array_equal(run_op("Int8Conv", [x, w, zero32], args)[0].data, no_bias.data)
    # a float bias and a uint8 Int8 bias are read by their real values
    float_bias = np.array([0.5, -0.5, 0.0], np.float32)
    int32_bias = Int8Tensor(np.rint(float_bias / np.float32(0.1 * 0.02)).astype(np.int32), 9.0, 0)
    expected = run_op("Int8Conv", [x, w, int32_bias], args)[0].data
    assert np.array_equal(run_op("Int8Conv", [x, w, float_bias], args)[0].data, expected)
    uint8_bias = Int8Tensor(np.array([15, 5, 10], np.uint8), 0.1, 10)
    assert np.array_equal(run_op("Int8Conv", [x, w, uint8_bias], args)[0].data, expected)


def test_conv_transpose():
    rng = np.random.default_rng(5)
    x = q8(rng, (1, 3, 3, 2), 0.05, 128)
    w = q8(rng, (2, 2, 2, 3), 0.02, 128)  # [C, kH, kW, M]
    b = Int8Tensor(np.array([10, -20, 0], np.int32), 0.001, 0)
    args = {"kernel": 2, "stride": 2, "order": "NHWC", "Y_scale": 0.01, "Y_zero_point": 128}

    def reference(xf, wf, bf):
        y, = run_op("ConvTranspose", [xf, wf, (b.data * np.float32(0.05 * 0.02)).astype(np.float32)],
                    {"kernel": 2, "stride": 2, "order": "NHWC"})
        return y
    y, = check_int8("Int8ConvTranspose", [x, w, b], reference, args)
    assert y.shape == (1, 6, 6, 3)


@pytest.mark.parametrize("axis,x_shape", [(1, (3, 4)), (1, (2, 2, 2)), (2, (2, 3, 4))])
def test_fc(axis, x_shape):
    rng = np.random.default_rng(axis)
    k = int(np.prod(x_shape[axis:]))
    x, w = q8(rng, x_shape, 0.05, 128), q8(rng, (5, k), 0.02, 128)
    b = Int8Tensor(rng.integers(-300, 300, 5).astype(np.int32), 0.001, 0)
    args = {"axis": axis, "Y_scale": 0.02, "Y_zero_point": 120}

    def reference(xf, wf, bf):
        m = int(np.prod(x_shape[:axis]))
        y = xf.reshape(m, k) @ wf.T + b.data * np.float32(0.05 * 0.02)
        return y.reshape(x_shape[:axis] + (5,))
    check_int8("Int8FC", [x, w, b], reference, args)


def test_fc_dynamic_quantization_and_float_output():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
    w = Int8Tensor(np.arange(12, dtype=np.uint8).reshape(4, 3), 1.0, 0)
    b = np.array([0, 1, 2, 3], np.float32)
    y, = run_op("Int8FC", [x, w, b], {"dequantize_output": 1})
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x @ w.data.T.astype(np.float32) + b, atol=0.1)


@pytest.mark.parametrize("op_type", ["Int8Add", "Int8AddRelu", "Int8Sum", "Int8SumRelu"])
def test_add(op_type):
    rng = np.random.default_rng(1)
    a, b = q8(rng, (2, 3, 4), 0.1, 128), q8(rng, (2, 3, 4), 0.05, 100)
    relu = op_type.endswith("Relu")
    args = {"Y_scale": 0.12, "Y_zero_point": 110}
    check_int8(op_type, [a, b], lambda af, bf: np.maximum(af + bf, 0) if relu else af + bf, args)


def test_add_in_place():
    rng = np.random.default_rng(2)
    a, b = q8(rng, (5,), 0.1, 128), q8(rng, (5,), 0.1, 128)
    y, = run_op("Int8Add", [a, b], {"Y_scale": 0.2, "Y_zero_point": 128}, input_names=["a", "b"],
                output_names=["a"])
    assert np.array_equal(y.data, add_quantized(a, b, 0.2, 128))


# ---- inference

def test_inference():
    assert infer("Int8GivenTensorFill", [], values=b"\x01\x02", shape=[2]) == [TensorInfo((2,), U8)]
    assert infer("Int8GivenIntTensorFill", [], values=[1, 2], shape=[1, 2]) == [TensorInfo((1, 2), "int32")]
    assert infer("Int8Quantize", [(2, 3)]) == [TensorInfo((2, 3), U8)]
    assert infer("Int8Dequantize", [(2, 3)], dtype=U8) == [TensorInfo((2, 3), "float32")]
    assert infer("Int8Conv", [(1, 8, 8, 4), (6, 3, 3, 4)], dtype=U8, kernel=3, order="NHWC") == [
        TensorInfo((1, 6, 6, 6), U8)]
    assert infer("Int8ConvTranspose", [(1, 3, 3, 4), (4, 2, 2, 5), (5,)], dtype=U8, kernel=2, stride=2,
                 order="NHWC") == [TensorInfo((1, 6, 6, 5), U8)]
    assert infer("Int8FC", [(2, 3, 4), (5, 12), (5,)], dtype=U8) == [TensorInfo((2, 5), U8)]
    assert infer("Int8FC", [(2, 3, 4), (5, 4), (5,)], dtype=U8, axis=2, dequantize_output=1) == [
        TensorInfo((2, 3, 5), "float32")]
    assert infer("Int8Add", [(2, 3), None], dtype=U8) == [TensorInfo((2, 3), U8)]


@pytest.mark.parametrize("op_type,shapes,args,match", [
    ("Int8GivenTensorFill", [], {"values": b"\x01", "shape": [2]}, "1 elements"),
    ("Int8Conv", [(1, 8, 8, 4), (6, 3, 3, 3)], {"kernel": 3, "order": "NHWC"}, "channels"),
    ("Int8Conv", [(1, 8, 8, 4), (6, 3, 3, 4), (5,)], {"kernel": 3, "order": "NHWC"}, "bias"),
    ("Int8Conv", [(8, 8, 4), (6, 3, 4)], {"kernel": 3, "order": "NHWC"}, "4-D"),
    ("Int8FC", [(2, 3), (5, 4), (5,)], {}, "K"),
    ("Int8FC", [(2, 3), (5, 3), (4,)], {}, "N = 5"),
    ("Int8Add", [(2, 3), (3, 2)], {}, "same shape"),
    ("Int8Quantize", [(2, 3), (2,)], {}, "one value"),
])
def test_inference_errors(op_type, shapes, args, match):
    with pytest.raises(ShapeError, match=match):
        infer(op_type, shapes, dtype=U8, **args)


def test_scales_qnnpack_refuses():
    rng = np.random.default_rng(0)
    x, w = q8(rng, (1, 4, 4, 2), 0.5, 128), q8(rng, (3, 1, 1, 2), 0.5, 128)
    args = {"kernel": 1, "order": "NHWC", "Y_scale": 0.1, "Y_zero_point": 128}  # 0.5 * 0.5 / 0.1 >= 1
    check_int8("Int8Conv", [x, w], lambda xf, wf: np.einsum("nhwc,mc->nhwm", xf, wf[:, 0, 0]), args,
               steps=0.5)
    check_int8("Int8Add", [x, x], lambda a, b: a + b, {"Y_scale": 1e-4}, steps=0.5)


def test_run_errors():
    rng = np.random.default_rng(0)
    x, w = q8(rng, (1, 4, 4, 2), 0.5, 128), q8(rng, (3, 1, 1, 2), 0.5, 128)
    with pytest.raises(OpFailure, match="not an Int8 tensor"):
        run_op("Int8Conv", [x.dequantize(), w], {"kernel": 1, "order": "NHWC"})
    with pytest.raises(OpFailure, match="float"):
        run_op("Int8Quantize", [np.array([1, 2], np.int32)])


def test_no_gradients():
    for op_type in ("Int8Conv", "Int8FC", "Int8Add", "Int8Quantize"):
        op = make_op(op_type, ["x", "w", "b"][:2 if op_type == "Int8Add" else 3], ["y"])
        ops, grads = GetGradientForOp(op, ["y_grad"])
        assert ops == [] and all(g is None for g in grads)


def test_front_end_fetches_int8_blobs():
    from pycaffe2 import core, workspace
    workspace.ResetWorkspace()
    workspace.FeedBlob("x", np.array([[0.5, -1.0]], np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("Int8Quantize", ["x"], ["q"], Y_scale=0.5, Y_zero_point=4))
    q = workspace.FetchInt8Blob("q")
    assert isinstance(q, workspace.Int8Tensor) and q.data.tolist() == [[5, 2]] and q.zero_point == 4
    assert workspace.FetchBlob("q").data.tolist() == [[5, 2]]
    np.testing.assert_array_equal(workspace.FetchInt8BlobRealVal("q"), [[0.5, -1.0]])
    with pytest.raises(RuntimeError, match="not fetching an Int8Blob"):
        workspace.FetchInt8Blob("x")
    net = core.Net("n")
    net.Int8Relu(["q"], ["r"], Y_scale=0.5, Y_zero_point=4)
    shapes, types = workspace.InferShapesAndTypes([net])
    assert shapes["r"] == [1, 2] and types["r"] == caffe2_pb2.TensorProto.UINT8
    workspace.ResetWorkspace()
