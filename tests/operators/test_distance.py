"""Distance family (SquaredL2Distance, which has a CUDA kernel, is in
test_loss.py): each op against an independent NumPy reference (float64), each
gradient op against numeric differentiation of its forward op and through its
registered maker, refusals, and the shape-inference rules. CPU only: none of
these ops has a CUDA kernel."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

ERRORS = (OpFailure, NetError)


def cosine_reference(x, y):
    xx, yy = (np.maximum((v.astype(np.float64) ** 2).sum(axis=1), 1e-12) for v in (x, y))
    return (x.astype(np.float64) * y).sum(axis=1) / np.sqrt(xx * yy)


# (op type, its gradient op, reference on [N, D] rows): CPU only
DISTANCES = [
    ("L1Distance", "L1DistanceGradient", lambda x, y: np.abs(x.astype(np.float64) - y).sum(axis=1)),
    ("DotProduct", "DotProductGradient", lambda x, y: (x.astype(np.float64) * y).sum(axis=1)),
    ("CosineSimilarity", "CosineSimilarityGradient", cosine_reference),
]


@pytest.mark.parametrize("op_type, gradient_type, rows_reference", DISTANCES, ids=[d[0] for d in DISTANCES])
@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 2), ()])
def test_distances(op_type, gradient_type, rows_reference, shape):
    rng = np.random.default_rng(len(shape) + 20)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    x = np.where(np.abs(x - y) < 0.05, y + 0.1, x)  # off L1's kink at X = Y
    n = shape[0] if shape else 1
    reference = lambda x, y: rows_reference(x.reshape(n, -1), y.reshape(n, -1))
    (z,) = check_reference(op_type, [x.astype(np.float32), y.astype(np.float32)], reference)
    assert z.shape == (n,) and z.dtype == np.float32
    dz = rng.standard_normal(n)
    check_gradient_op(op_type, [x, y], gradient_type, [x, y, dz], {0: 0, 1: 1}, [dz], rtol=1e-5, atol=1e-6)
    for wrt in (0, 1):
        report = check_op_gradient(make_op(op_type, ["X", "Y"], ["Z"]), [x, y], wrt)
        assert report.ok, report


@pytest.mark.parametrize("op_type, gradient_type, rows_reference", DISTANCES, ids=[d[0] for d in DISTANCES])
def test_distance_errors_and_inference(op_type, gradient_type, rows_reference):
    with pytest.raises(ERRORS, match=r"X is \[4, 3\] but Y is \[4, 2\]"):
        run_op(op_type, [np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)])
    with pytest.raises(ERRORS, match=r"dZ is \[3\] but the batch has N=4"):
        run_op(gradient_type, [np.ones((4, 3), np.float32)] * 2 + [np.zeros(3, np.float32)], num_outputs=2)
    with pytest.raises(ERRORS, match="must be float, got int32"):
        run_op(op_type, [np.zeros(3, np.int32)] * 2)
    assert infer(op_type, [(4, 3), None]) == [TensorInfo((4,))]
    assert infer(gradient_type, [(4, 3), (4, 3), (4,)], n_out=2) == [TensorInfo((4, 3))] * 2
    with pytest.raises(ShapeError, match="must be float, got int64"):
        infer(op_type, [(4, 3), (4, 3)], dtype="int64")


def test_cosine_similarity_of_zero_rows_is_zero():
    x = np.array([[0, 0], [1, 0]], np.float32)
    (z,) = run_op("CosineSimilarity", [x, np.array([[1, 2], [2, 0]], np.float32)])
    np.testing.assert_allclose(z, [0, 1])


def test_every_op_of_the_family_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "distance"}
    forward = ("L1Distance", "DotProduct", "DotProductWithPadding", "CosineSimilarity")
    assert sorted(family) == sorted(op + suffix for op in forward for suffix in ("", "Gradient"))
    assert all(s.inference != "none" and s.devices == ("cpu",) for s in family.values())


# DotProductWithPadding ---------------------------------------------------------------

def ref_dot_product_with_padding(x, y, pad_value=0.0, replicate=0):
    """Each pair of rows made equally long by hand (the shorter padded with pad_value,
    or tiled), then multiplied and summed in float64."""
    n = x.shape[0] if x.ndim else 1
    rows = [v.reshape(n, int(np.prod(v.shape[1:]))).astype(np.float64) for v in (x, y)]
    long, short = sorted(rows, key=lambda r: r.shape[1], reverse=True)
    widened = np.full(long.shape, pad_value, np.float64)
    if replicate:
        for start in range(0, long.shape[1], max(short.shape[1], 1)):
            widened[:, start:start + short.shape[1]] = short
    else:
        widened[:, :short.shape[1]] = short
    return (long * widened).sum(axis=1)


# (X shape, Y shape, args)
PADDED = [
    ((4, 3), (4, 5), {"pad_value": 0.7}),  # Y longer
    ((4, 6), (4, 2), {"pad_value": -1.5}),  # X longer
    ((3, 4), (3, 4), {"pad_value": 3.0}),  # equal rows: a plain dot product
    ((4, 3), (4, 5), {}),  # default pad 0
    ((3, 2), (3, 6), {"replicate": 1}),
    ((3, 8), (3, 4), {"replicate": 1, "pad_value": 9.0}),  # pad_value unused
    ((2, 5), (2, 5), {"replicate": 1}),
    ((2, 1), (2, 7), {"replicate": 1}),
    ((5,), (5,), {"pad_value": 2.0}),  # 1-D: five rows of one element
    ((2, 3, 2), (2, 2, 2), {"pad_value": 0.5}),  # rows over all but the first axis
    ((2, 2, 3), (2, 3, 4), {"replicate": 1}),
    ((), (), {}),  # 0-d: one row of one
    ((0, 3), (0, 5), {"pad_value": 1.0}),  # no rows
    ((3, 0), (3, 2), {"pad_value": 2.0}),  # empty X rows: the padding alone
]
PADDED_IDS = [f"{list(x)}-{list(y)}-{args}" for x, y, args in PADDED]


@pytest.mark.parametrize("x_shape, y_shape, args", PADDED, ids=PADDED_IDS)
def test_dot_product_with_padding(x_shape, y_shape, args):
    rng = np.random.default_rng(len(x_shape) + sum(y_shape))
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    n = x_shape[0] if x_shape else 1
    (z,) = check_reference("DotProductWithPadding", [x.astype(np.float32), y.astype(np.float32)],
                           ref_dot_product_with_padding, args, atol=1e-5)
    assert z.shape == (n,) and z.dtype == np.float32
    dz = rng.standard_normal(n)
    check_gradient_op("DotProductWithPadding", [x, y], "DotProductWithPaddingGradient", [x, y, dz],
                      {0: 0, 1: 1}, [dz], args, num_outputs=1, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("input_to_check", [0, 1])
@pytest.mark.parametrize("x_shape, y_shape, args", PADDED[:9], ids=PADDED_IDS[:9])
def test_dot_product_with_padding_registered_gradient(x_shape, y_shape, args, input_to_check):
    """Through the maker, which must hand pad_value and replicate on to the gradient op."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    op = make_op("DotProductWithPadding", ["X", "Y"], ["Z"], args)
    report = check_op_gradient(op, [x, y], input_to_check)
    assert report.ok, report


def test_dot_product_with_padding_values():
    x = np.array([[1, 2], [3, 4]], np.float32)
    y = np.array([[1, 1, 1, 1], [2, 0, 1, 0]], np.float32)
    (z,) = run_op("DotProductWithPadding", [x, y], {"pad_value": 10.0})
    np.testing.assert_array_equal(z, [1 + 2 + 10 * 2, 6 + 10 * 1])
    (z,) = run_op("DotProductWithPadding", [x, y], {"replicate": 1})
    np.testing.assert_array_equal(z, [1 + 2 + 1 + 2, 6 + 3])
    dx, dy = run_op("DotProductWithPaddingGradient", [x, y, np.array([1, 2], np.float32)],
                    {"pad_value": 10.0}, num_outputs=2)
    np.testing.assert_array_equal(dx, [[1, 1], [4, 0]])
    np.testing.assert_array_equal(dy, [[1, 2, 10, 10], [6, 8, 20, 20]])
    dx, dy = run_op("DotProductWithPaddingGradient", [x, y, np.array([1, 2], np.float32)],
                    {"replicate": 1}, num_outputs=2)
    np.testing.assert_array_equal(dx, [[2, 2], [6, 0]])
    np.testing.assert_array_equal(dy, [[1, 2, 1, 2], [6, 8, 6, 8]])


@pytest.mark.parametrize("op_type", ["DotProductWithPadding", "DotProductWithPaddingGradient"])
def test_dot_product_with_padding_errors(op_type):
    def run(x_shape, y_shape, args=None, dtype=np.float32):
        x, y = np.ones(x_shape, dtype), np.ones(y_shape, dtype)
        n = x_shape[0] if x_shape else 1
        grad = [np.ones(n, np.float32)] if op_type.endswith("Gradient") else []
        return run_op(op_type, [x, y] + grad, args, num_outputs=2 if grad else 1)
    with pytest.raises(ERRORS, match=r"X is \[4, 3\] but Y is \[5, 3\]: they must have the same number "
                                     r"of dims and the same first dim"):
        run((4, 3), (5, 3))
    with pytest.raises(ERRORS, match=r"X is \[4, 3\] but Y is \[4\]"):
        run((4, 3), (4,))
    with pytest.raises(ERRORS, match=r"X is \[\] but Y is \[1\]"):
        run((), (1,))
    with pytest.raises(ERRORS, match="X rows have 3 elements and Y rows 5: the longer must be a multiple"):
        run((2, 3), (2, 5), {"replicate": 1})
    with pytest.raises(ERRORS, match="X rows have 4 elements and Y rows 0"):
        run((2, 4), (2, 0), {"replicate": 1})
    with pytest.raises(ERRORS, match="must be float, got int32"):
        run((2, 3), (2, 5), dtype=np.int32)


def test_dot_product_with_padding_gradient_checks_dz():
    x, y = np.ones((4, 3), np.float32), np.ones((4, 6), np.float32)
    with pytest.raises(ERRORS, match=r"dZ is \[3\] but the batch has N=4"):
        run_op("DotProductWithPaddingGradient", [x, y, np.ones(3, np.float32)], num_outputs=2)
    with pytest.raises(ERRORS, match=r"dZ is \[4, 1\] but the batch has N=4"):
        run_op("DotProductWithPaddingGradient", [x, y, np.ones((4, 1), np.float32)], num_outputs=2)


def test_dot_product_with_padding_inference():
    assert infer("DotProductWithPadding", [(10, 5), (10, 4)]) == [TensorInfo((10,))]
    assert infer("DotProductWithPadding", [(10,), (10,)]) == [TensorInfo((10,))]
    assert infer("DotProductWithPadding", [(), ()]) == [TensorInfo((1,))]
    assert infer("DotProductWithPadding", [None, (6, 2)]) == [TensorInfo((6,))]
    assert infer("DotProductWithPadding", [None, None]) == [None]
    assert infer("DotProductWithPadding", [(3, 2), (3, 6)], dtype="float64", replicate=1) == [
        TensorInfo((3,), "float64")]
    assert infer("DotProductWithPaddingGradient", [(4, 3), (4, 5), (4,)], n_out=2) == [
        TensorInfo((4, 3)), TensorInfo((4, 5))]
    assert infer("DotProductWithPaddingGradient", [(4, 3), None, None], n_out=2) == [TensorInfo((4, 3)), None]
    with pytest.raises(ShapeError, match=r"^X is \[4, 3\] but Y is \[2, 3\]: they must have"):
        infer("DotProductWithPadding", [(4, 3), (2, 3)])
    with pytest.raises(ShapeError, match="X rows have 3 elements and Y rows 5"):
        infer("DotProductWithPadding", [(2, 3), (2, 5)], replicate=1)
    with pytest.raises(ShapeError, match=r"dZ is \[3\] but the batch has N=4"):
        infer("DotProductWithPaddingGradient", [(4, 3), (4, 6), (3,)], n_out=2)
    with pytest.raises(ShapeError, match="must be float, got int64"):
        infer("DotProductWithPadding", [(4, 3), (4, 2)], dtype="int64")


def test_dot_product_with_padding_in_a_net_trains_both_inputs():
    """From the Caffe2 front end: the backward pass gives X and Y gradients of their own shapes."""
    from pycaffe2 import core, workspace
    net = core.Net("padded_dot")
    net.DotProductWithPadding(["x", "y"], "z", pad_value=0.5)
    net.AveragedLoss("z", "loss")
    grads = net.AddGradientOperators(["loss"])
    workspace.ResetWorkspace()
    x, y = np.ones((2, 3), np.float32), np.full((2, 5), 2.0, np.float32)
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("y", y)
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("z"), [6 + 0.5 * 4] * 2)
    np.testing.assert_allclose(workspace.FetchBlob(grads["x"]), np.full((2, 3), 1.0))  # dz = 1/2 each
    np.testing.assert_allclose(workspace.FetchBlob(grads["y"]), [[0.5] * 3 + [0.25] * 2] * 2)
