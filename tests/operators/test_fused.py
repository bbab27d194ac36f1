"""The fused family: ConvRelu against Conv then Relu (CPU and CUDA), FbFCPacked against
FC with float16-rounded weights; inference and errors."""
import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_reference, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = {"ConvRelu"}


def conv_relu_reference(args):
    return lambda *inputs, **_: np.maximum(run_op("Conv", list(inputs), args)[0], 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_relu(device, order, bias):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 5, 5) if order == "NCHW" else (2, 5, 5, 2)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3) if order == "NCHW" else (4, 3, 3, 2)).astype(np.float32)
    inputs = [x, w] + ([rng.standard_normal(4).astype(np.float32)] if bias else [])
    args = {"kernel": 3, "pad": 1, "order": order}
    y, = check_reference("ConvRelu", inputs, conv_relu_reference(args), args, device=device)
    assert y.min() == 0 and y.max() > 0


@pytest.mark.gpu
@pytest.mark.slow
def test_conv_relu_devices():
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((1, 4, 6, 6)).astype(np.float32),
              rng.standard_normal((6, 2, 3, 3)).astype(np.float32), rng.standard_normal(6).astype(np.float32)]
    check_devices("ConvRelu", inputs, {"kernel": 3, "group": 2, "stride": 2})


@pytest.mark.parametrize("w_dtype", [np.float16, np.float32])
@pytest.mark.parametrize("axis,axis_w,x_shape,w_shape", [
    (1, 1, (3, 4), (5, 4)), (2, 1, (2, 3, 4), (5, 4)), (1, 2, (2, 3), (5, 1, 3)),
])
def test_fb_fc_packed(w_dtype, axis, axis_w, x_shape, w_shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(w_dtype)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)

    def reference(x, w, b, axis, axis_w):
        m, n = int(np.prod(x.shape[:axis])), int(np.prod(w.shape[:axis_w]))
        w16 = w.astype(np.float16).astype(np.float64).reshape(n, -1)
        return (x.reshape(m, -1).astype(np.float64) @ w16.T + b).reshape(x.shape[:axis] + (n,))
    y, = check_reference("FbFCPacked", [x, w, b], reference, {"axis": axis, "axis_w": axis_w},
                         atol=1e-5, rtol=1e-5)
    assert y.dtype == np.float32


def test_inference():
    assert infer("ConvRelu", [(1, 3, 8, 8), (4, 3, 3, 3)], kernel=3) == [TensorInfo((1, 4, 6, 6))]
    assert infer("FbFCPacked", [(2, 3, 4), TensorInfo((5, 12), "float16"), (5,)]) == [
        TensorInfo((2, 5))]
    assert infer("FbFCPacked", [(2, 3, 4), (5, 4), (5,)], axis=2) == [TensorInfo((2, 3, 5))]


@pytest.mark.parametrize("op_type,shapes,args,match", [
    ("ConvRelu", [(1, 3, 8, 8), (4, 2, 3, 3)], {"kernel": 3}, "channels"),
    ("FbFCPacked", [(2, 3), (5, 4), (5,)], {}, "K"),
    ("FbFCPacked", [(2, 3), (5, 3), (4,)], {}, "b"),
    ("FbFCPacked", [(2, 3), TensorInfo((5, 3), "int32"), (5,)], {}, "float16"),
])
def test_inference_errors(op_type, shapes, args, match):
    with pytest.raises(ShapeError, match=match):
        infer(op_type, shapes, **args)


@pytest.mark.parametrize("op_type", ["ConvRelu", "FbFCPacked"])
def test_no_gradient(op_type):
    with pytest.raises(GradientError, match="not implemented"):
        GetGradientForOp(make_op(op_type, ["x", "w", "b"], ["y"]), ["y_grad"])
