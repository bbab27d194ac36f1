"""The int8_tensor family: the code-moving Int8 ops against the float ops on the codes
(exact), Y's quantization kept, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import assert_inference_agrees, make_op, run_op
from tests.operators._int8_util import q8
from tests.schema import infer

U8 = "uint8"


def check_codes(op_type, inputs, float_type, args=None, float_args=None, num_outputs=None):
    """The Int8 op's codes equal the float op's result on the codes; Y keeps X's quantization."""
    args = args or {}
    got = run_op(op_type, inputs, args, num_outputs=num_outputs)
    expected = run_op(float_type, [x.data if isinstance(x, Int8Tensor) else x for x in inputs],
                      float_args if float_args is not None else args, num_outputs=num_outputs)
    y = got[0]
    assert isinstance(y, Int8Tensor) and (y.scale, y.zero_point) == (inputs[0].scale, inputs[0].zero_point)
    np.testing.assert_array_equal(y.data, expected[0])
    for g, e in zip(got[1:], expected[1:]):
        np.testing.assert_array_equal(g, e)
    assert_inference_agrees(op_type, inputs, args, got)
    return got


@pytest.fixture
def x():
    return q8(np.random.default_rng(0), (2, 3, 4, 6), 0.1, 128)


def test_reshape(x):
    reshaped, old = check_codes("Int8Reshape", [x], "Reshape", {"shape": [0, -1, 6]})
    assert reshaped.shape == (2, 12, 6) and old.tolist() == [2, 3, 4, 6]
    check_codes("Int8Reshape", [x, np.array([6, 0, -1], np.int64)], "Reshape")


@pytest.mark.parametrize("axis", [0, 1, 3])
def test_flatten(x, axis):
    check_codes("Int8Flatten", [x], "Flatten", {"axis": axis})


@pytest.mark.parametrize("axes", [None, [0, 3, 1, 2]])
def test_transpose(x, axes):
    check_codes("Int8Transpose", [x], "Transpose", {} if axes is None else {"axes": axes})


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_channel_shuffle(x, order):
    args = {"group": 3 if order == "NCHW" else 2, "order": order}
    check_codes("Int8ChannelShuffle", [x], "ChannelShuffle", args)


@pytest.mark.parametrize("args,float_axis", [({}, 0), ({"order": "NHWC"}, 3), ({"order": "NCHW"}, 1),
                                             ({"axis": 2, "order": "NHWC"}, 2), ({"axis": 1, "add_axis": 1}, 1)])
def test_concat(x, args, float_axis):
    other = Int8Tensor(x.data[::-1].copy(), x.scale, x.zero_point)
    float_args = {"axis": float_axis, "add_axis": args.get("add_axis", 0)}
    check_codes("Int8Concat", [x, other], "Concat", args, float_args, num_outputs=2)


def test_slice(x):
    check_codes("Int8Slice", [x], "Slice", {"starts": [0, 1], "ends": [-1, 3]})
    check_codes("Int8Slice", [x, np.array([1, 0]), np.array([2, -1])], "Slice")
    by_dim, = run_op("Int8Slice", [x], {"dim": 2, "start_idx": 1, "end_idx": -1})
    np.testing.assert_array_equal(by_dim.data, x.data[:, :, 1:])


@pytest.mark.parametrize("height_scale,width_scale", [(2.0, 2.0), (0.5, 1.5), (1.0, 3.0)])
def test_resize_nearest(x, height_scale, width_scale):
    y, = run_op("Int8ResizeNearest", [x], {"height_scale": height_scale, "width_scale": width_scale})
    _, h, w, _ = x.shape
    rows = [min(int(i / height_scale), h - 1) for i in range(int(h * height_scale))]
    cols = [min(int(j / width_scale), w - 1) for j in range(int(w * width_scale))]
    np.testing.assert_array_equal(y.data, x.data[:, rows][:, :, cols])
    assert_inference_agrees("Int8ResizeNearest", [x], {"height_scale": height_scale,
                                                        "width_scale": width_scale}, [y])


def test_inference():
    assert infer("Int8Reshape", [(2, 6)], n_out=2, dtype=U8, shape=[3, 4]) == [TensorInfo((3, 4), U8),
                                                                       TensorInfo((2,), "int64")]
    assert infer("Int8Flatten", [(2, 3, 4)], dtype=U8) == [TensorInfo((2, 12), U8)]
    assert infer("Int8Concat", [(1, 2, 2, 3), (1, 2, 2, 5)], n_out=2, dtype=U8, order="NHWC") == [
        TensorInfo((1, 2, 2, 8), U8), TensorInfo((2,), "int32")]
    assert infer("Int8Transpose", [(2, 3)], dtype=U8) == [TensorInfo((3, 2), U8)]
    assert infer("Int8Slice", [(4, 5)], dtype=U8, dim=1, start_idx=1, end_idx=3) == [TensorInfo((4, 2), U8)]
    assert infer("Int8ResizeNearest", [(1, 3, 4, 2)], dtype=U8, height_scale=2.0, width_scale=0.5) == [
        TensorInfo((1, 6, 2, 2), U8)]


@pytest.mark.parametrize("op_type,shapes,args,match", [
    ("Int8Reshape", [(2, 6)], {"shape": [5, -1]}, "cannot infer"),
    ("Int8Concat", [(1, 2), (2, 2)], {"axis": 1}, "every dim but 1"),
    ("Int8ChannelShuffle", [(1, 4, 2, 2)], {"group": 3}, "does not divide"),
    ("Int8Slice", [(4, 5)], {"dim": 3, "start_idx": 0, "end_idx": 1}, "out of range"),
    ("Int8Slice", [(4, 5)], {"dim": 1}, "give all of"),
    ("Int8ResizeNearest", [(3, 4, 2)], {}, "NHWC"),
    ("Int8ResizeNearest", [(1, 4, 4, 2)], {"width_scale": 1e9, "height_scale": 1e9}, "byte cap"),
])
def test_inference_errors(op_type, shapes, args, match):
    with pytest.raises(ShapeError, match=match):
        infer(op_type, shapes, dtype=U8, **args)


def test_run_errors(x):
    other = Int8Tensor(x.data, 0.2, x.zero_point)
    with pytest.raises(OpFailure, match="must share"):
        run_op("Int8Concat", [x, other], {"axis": 0})
    with pytest.raises(OpFailure, match="must equal X's scale"):
        run_op("Int8Transpose", [x], {"Y_scale": 1.0})


def test_no_gradients():
    for op_type in ("Int8Reshape", "Int8Concat", "Int8Slice"):
        op = make_op(op_type, ["x"], ["y"])
        ops, grads = GetGradientForOp(op, ["y_grad"])
        assert ops == [] and grads == [None]
