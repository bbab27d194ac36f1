"""tensor_utility family (Size, NanCheck, IsMemberOf, ScaleBlobs, EnsureDense, CopyRowsToTensor
and CopyRowsToTensorGradient): each op
against a NumPy reference, the gradient makers against numeric differentiation or
their op lists, shape inference and the errors."""
import numpy as np
import pytest

from pycaffe2.core import Net
from pycaffe2.executor import Workspace
from pycaffe2.gradient import GetGradientForOp, GradientError, GradientSlice
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.operators.test_tensor import FAILS, rand
from tests.schema import infer


@pytest.mark.parametrize("x", [rand(2, 3), np.zeros((4, 0, 2), np.int32), np.array(5.0),
                               np.array([b"a", b"b"], dtype=object)])
def test_size(x):
    (y,) = check_reference("Size", [x], lambda x: np.array(x.size, dtype=np.int64))
    assert y.dtype == np.int64 and y.shape == ()


def test_size_has_no_gradient():
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("Size", ["X"], ["n"]), ["n_grad"])


@pytest.mark.parametrize("inputs", [[rand(2, 3)], [rand(3), rand(2, 2, dtype=np.float64)], [np.zeros(0)]])
def test_nan_check_passes_input_0(inputs):
    check_reference("NanCheck", inputs, lambda *xs: xs[0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_check_fails_on_nan_or_infinity(bad):
    x = rand(3)
    x[1] = bad
    with pytest.raises(FAILS, match="input 1 holds a NaN or an infinity"):
        run_op("NanCheck", [rand(2), x])
    with pytest.raises(FAILS, match="input 0 holds a NaN or an infinity"):
        run_op("NanCheck", [x])


def test_nan_check_gradient():
    op = make_op("NanCheck", ["X", "other"], ["Y"])
    report = check_op_gradient(op, [rand(2, 3), rand(4)], 0, outputs_with_grads=(0,))
    assert report.ok, report
    grad_ops, g_input = GetGradientForOp(op, ["Y_grad"])
    assert [(o.type, list(o.input)) for o in grad_ops] == [("NanCheck", ["Y_grad"])]
    assert g_input == ["X_grad", None]


@pytest.mark.parametrize("x, value", [
    (np.array([[1, 5], [3, 9]], np.int64), [0, 3, 4, 6, 8, 9]),
    (np.array([7, 2, 2], np.int32), [2]),
    (np.array([True, False]), [1]),
    (np.array([b"ab", b"c", b""], dtype=object), ["c", ""]),
    (np.zeros((0, 3), np.int64), [1]),
])
def test_is_member_of(x, value):
    wanted = {v.encode() if isinstance(v, str) else v for v in value}
    (y,) = check_reference("IsMemberOf", [x], lambda x, value: np.vectorize(
        lambda item: item in wanted, otypes=[bool])(x) if x.size else np.zeros(x.shape, bool), {"value": value})
    assert y.dtype == np.bool_


@pytest.mark.parametrize("x, value, message", [
    (rand(3), [1], r"X must be int32, int64, bool or string, got \[3\] float32"),
    (np.array([1, 2]), ["a"], "`value` holds strings, X is int64"),
    (np.array([b"a"], dtype=object), [1], "`value` holds numbers, X is object"),
])
def test_is_member_of_errors(x, value, message):
    with pytest.raises(FAILS, match=message):
        run_op("IsMemberOf", [x], {"value": value})
    with pytest.raises(ShapeError, match=message):
        infer("IsMemberOf", [TensorInfo(x.shape, x.dtype.name)], value=value)


@pytest.mark.parametrize("scale", [1.0, -0.5, 3.0])
def test_scale_blobs(scale):
    inputs = [rand(2, 3), rand(4, dtype=np.float64, seed=1), rand(0, 2)]
    outputs = check_reference("ScaleBlobs", inputs, lambda *xs, scale: tuple(x * scale for x in xs),
                              {"scale": scale}, num_outputs=3)
    assert [y.dtype for y in outputs] == [x.dtype for x in inputs]


def test_scale_blobs_gradient():
    op = make_op("ScaleBlobs", ["A", "B"], ["A2", "B2"], {"scale": 1.5})
    for index in (0, 1):
        report = check_op_gradient(op, [rand(2, 3), rand(4, seed=1)], index, outputs_with_grads=(0, 1))
        assert report.ok, report
    grad_ops, g_input = GetGradientForOp(op, [None, "B2_grad"])
    assert [(o.type, list(o.input), list(o.output)) for o in grad_ops] == [("ScaleBlobs", ["B2_grad"], ["B_grad"])]
    assert g_input == [None, "B_grad"]


def test_scale_blobs_errors():
    with pytest.raises(FAILS, match="needs one output per input, got 2 inputs and 1 outputs"):
        run_op("ScaleBlobs", [rand(2), rand(2)], num_outputs=1)
    with pytest.raises(FAILS, match=r"input 1 must be a float tensor, got \[2\] int32"):
        run_op("ScaleBlobs", [rand(2), np.array([1, 2], np.int32)], num_outputs=2)


def test_ensure_dense_passes_through_and_so_does_its_gradient():
    x = rand(3, 2)
    check_reference("EnsureDense", [x], lambda x: x)  # also in place
    net = Net("dense")
    net.EnsureDense(["X"], ["X"])
    net.Scale(["X"], ["Y"], scale=2.0)
    net.AddGradientOperators(["Y"])
    assert [op.type for op in net.Proto().op][2:] == ["ConstantFill", "Scale"]  # no op for EnsureDense
    workspace = Workspace("dense")
    workspace.FeedBlob("X", x)
    workspace.RunNetOnce(net.Proto())
    np.testing.assert_allclose(workspace.FetchBlob("X_grad"), np.full((3, 2), 2.0))


def test_inference():
    assert infer("Size", [(2, 3)]) == [TensorInfo((), "int64")]
    assert infer("NanCheck", [(2, 3), (4,)]) == [TensorInfo((2, 3))]
    assert infer("IsMemberOf", [TensorInfo((2, 3), "int32")], value=[1]) == [TensorInfo((2, 3), "bool")]
    assert infer("ScaleBlobs", [(2,), (3,)], n_out=2) == [TensorInfo((2,)), TensorInfo((3,))]
    assert infer("EnsureDense", [(2, 3)]) == [TensorInfo((2, 3))]
    with pytest.raises(ShapeError, match="input 1 must be a float tensor"):
        infer("NanCheck", [(2, 3), TensorInfo((4,), "int64")])
    with pytest.raises(ShapeError, match="needs one output per input"):
        infer("ScaleBlobs", [(2,), (3,)], n_out=1)


def copy_rows_reference(tensor, indices, row):
    out = tensor.copy()
    for index in indices:
        out[index] = row
    return [out]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("indices", [[2, 0], [], [1, 1]])
def test_copy_rows_to_tensor(dtype, indices):
    tensor, row = (rand(3, 4) * 10).astype(dtype), (rand(4) * 10).astype(dtype)
    indices = np.array(indices, np.int64)
    check_reference("CopyRowsToTensor", [tensor, indices, row], copy_rows_reference)
    check_reference("CopyRowsToTensorGradient", [tensor], lambda dy: [dy])


def test_copy_rows_to_tensor_maker_passes_the_gradient_through():
    op = make_op("CopyRowsToTensor", ["T", "I", "R"], ["T"])
    (grad,), g_input = GetGradientForOp(op, ["T_grad_in"])
    assert (grad.type, list(grad.input), list(grad.output)) == ("CopyRowsToTensorGradient", ["T_grad_in"], ["T_grad"])
    assert g_input == ["T_grad", None, None]
    ops, g_input = GetGradientForOp(op, [GradientSlice("gi", "gv")])
    assert [(o.type, list(o.input), list(o.output)) for o in ops] == [
        ("CopyRowsToTensorGradient", ["gi"], ["T_grad_indices"]),
        ("CopyRowsToTensorGradient", ["gv"], ["T_grad_values"])]
    assert g_input[0] == GradientSlice("T_grad_indices", "T_grad_values")


def test_copy_rows_to_tensor_inference():
    assert infer("CopyRowsToTensor", [(3, 4), TensorInfo((2,), "int64"), (4,)]) == [TensorInfo((3, 4))]
    assert infer("CopyRowsToTensorGradient", [(3, 4)]) == [TensorInfo((3, 4))]


@pytest.mark.parametrize("tensor, indices, row, message", [
    (rand(3, 4), np.array([0]), rand(5), "width of input tensor should match lengths of row"),
    (rand(3), np.array([0]), rand(3), "input_tensor should be 2-d"),
    (rand(3, 4), np.array([[0]]), rand(4), "indices should be a 1-d int32 or int64"),
    (rand(3, 4), np.array([0]), rand(1, 4), "row should be 1-d"),
    (rand(3, 4), np.array([0]), rand(4, dtype=np.float64), "row is float64 but input_tensor is float32"),
    (np.zeros((3, 4), bool), np.array([0]), np.zeros(4, bool), "input_tensor must be one of"),
])
def test_copy_rows_to_tensor_shape_errors(tensor, indices, row, message):
    infos = [TensorInfo(v.shape, v.dtype.name) for v in (tensor, indices, row)]
    with pytest.raises(ShapeError, match=message):
        infer("CopyRowsToTensor", infos)
    with pytest.raises(FAILS, match=message):
        run_op("CopyRowsToTensor", [tensor, indices, row], input_names=["T", "I", "R"], output_names=["T"])


@pytest.mark.parametrize("indices", [[3], [-1]])
def test_copy_rows_to_tensor_refuses_out_of_range_rows(indices):
    with pytest.raises(FAILS, match="out of range for input_tensor's 3 rows"):
        run_op("CopyRowsToTensor", [rand(3, 4), np.array(indices), rand(4)], input_names=["T", "I", "R"],
               output_names=["T"])
