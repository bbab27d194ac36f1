"""Reduction family: ReduceSum/Mean/Max and ArgMax against NumPy references, the
reduction gradient ops against references and numeric differentiation, the CUDA
kernels (reduction.cu, and arithmetic.cu's sums) against their CPU twins over every
kind of axes set, shape inference against NumPy's shapes, and the errors (the same
words at CreateNet, on the CPU and on CUDA)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

REDUCE = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max}
REDUCE_GRADIENTS = ["ReduceSumGradient", "ReduceMeanGradient", "ReduceMaxGradient"]

arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=4),
                    elements=st.floats(-3, 3, width=32))


@st.composite
def reductions(draw):
    """(x, args): an array and a random `axes` (absent, or a subset, maybe negative) and keepdims."""
    x = draw(arrays)
    args = {"keepdims": draw(st.sampled_from([0, 1]))}
    if draw(st.booleans()):
        chosen = draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))
        args["axes"] = [a - x.ndim if draw(st.booleans()) else a for a in chosen]
    return x, args


def reduce_reference(function):
    def reference(x, axes=None, keepdims=1):
        axis = None if axes is None else tuple(axes)
        return np.asarray(function(x.astype(np.float64), axis=axis, keepdims=bool(keepdims)))
    return reference


def kept(dy, x, axes):
    """dy with X's reduced axes as size-1 dims."""
    axes = range(x.ndim) if axes is None else [a % x.ndim for a in axes]
    return dy.reshape([1 if i in axes else d for i, d in enumerate(x.shape)])


@pytest.mark.parametrize("op_type", REDUCE)
@settings(max_examples=20, deadline=None)
@given(case=reductions())
def test_reduce_matches_reference(op_type, case):
    x, args = case
    (y,) = check_reference(op_type, [x], reduce_reference(REDUCE[op_type]), args)
    assert y.dtype == np.float32 and isinstance(y, np.ndarray)


def test_reduce_defaults_reduce_everything_and_keep_dims():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    (y,) = check_reference("ReduceSum", [x], lambda x: x.sum(keepdims=True))
    assert y.shape == (1, 1, 1) and y.dtype == np.float64


@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMax"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_reductions_keep_their_dtype(op_type, dtype):
    x = np.arange(-6, 18, dtype=dtype).reshape(2, 3, 4)
    reference = lambda x, **_: REDUCE[op_type](x, axis=1)
    (y,) = check_reference(op_type, [x], reference, {"axes": [1], "keepdims": 0})
    assert y.dtype == dtype


@pytest.mark.parametrize("op_type", REDUCE)
@settings(max_examples=15, deadline=None)
@given(case=reductions(), seed=st.integers(0, 2**16))
def test_reduce_gradient_matches_reference(op_type, case, seed):
    x, args = case
    y = reduce_reference(REDUCE[op_type])(x, **args).astype(np.float32)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
    dy_kept, y_kept = kept(dy, x, args.get("axes")), kept(y, x, args.get("axes"))
    expected = {
        "ReduceSum": lambda: np.broadcast_to(dy_kept, x.shape),
        "ReduceMean": lambda: np.broadcast_to(dy_kept, x.shape) * (y.size / x.size),
        "ReduceMax": lambda: np.where(x == y_kept, dy_kept, 0),  # ties all get dY
    }[op_type]()
    (dx,) = check_reference(f"{op_type}Gradient", [dy, x, y], lambda *_, **__: expected, args)
    assert dx.dtype == np.float32 and dx.shape == x.shape


@pytest.mark.parametrize("op_type", REDUCE)
@pytest.mark.parametrize("shape, args", [
    ((2, 3), {}), ((2, 3, 2), {"axes": [1]}), ((2, 3, 2), {"axes": [0, -1], "keepdims": 0}),
    ((3,), {"keepdims": 0}),
])
def test_reduce_gradient_op_matches_numeric(op_type, shape, args):
    # Distinct, well-spaced values: ReduceMax has no ties to make it non-differentiable.
    rng = np.random.default_rng(0)
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5).astype(np.float32)
    y = run_op(op_type, [x], args)[0]
    dy = rng.standard_normal(y.shape).astype(np.float32)
    check_gradient_op(op_type, [x], f"{op_type}Gradient", [dy, x, y], {0: 0}, [dy], args)


@settings(max_examples=20, deadline=None)
@given(x=arrays, data=st.data())
def test_argmax_matches_reference(x, data):
    args = {"axis": data.draw(st.integers(-x.ndim, x.ndim - 1)),
            "keepdims": data.draw(st.sampled_from([0, 1]))}
    reference = lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=bool(keepdims))
    (y,) = check_reference("ArgMax", [x], reference, args)
    assert y.dtype == np.int64


def test_argmax_defaults_and_ties():
    x = np.array([[1, 3, 3], [5, 5, 0]], dtype=np.int32)
    (y,) = run_op("ArgMax", [x])
    np.testing.assert_array_equal(y, [[1], [0]])
    assert y.dtype == np.int64


X = np.zeros((2, 3, 4), np.float32)
Y_KEPT = np.zeros((2, 1, 4), np.float32)
# (op type, inputs, args, message): the same words on both devices
ERRORS = [
    ("ReduceSum", [X], {"axes": [3]}, "axes entry 3 is out of range"),
    ("ReduceMean", [np.zeros((2, 3), np.int32)], {}, r"\(ReduceMean\) failed: data must be float, got int32"),
    ("ArgMax", [X], {"axis": 3}, r"\(ArgMax\) failed: axis 3 is out of range"),
    ("ArgMax", [np.zeros((2, 0), np.float32)], {"axis": 1}, r"\(ArgMax\) failed: X \[2, 0\] is empty along axis 1"),
    ("ReduceMaxGradient", [Y_KEPT, X, np.zeros(3, np.float32)], {"axes": [1]}, r"Y is \[3\] but reducing X"),
] + [(f"{op_type}Gradient", [np.zeros(3, np.float32), X, Y_KEPT], {"axes": [1]},
      r"dY is \[3\] but reducing X \[2, 3, 4\]") for op_type in REDUCE]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, inputs, args, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_problem(op_type, inputs, args, message, device):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, device_option=device_option(device))


# Gradient makers: the registered gradient of each op against central differences.
@pytest.mark.parametrize("op_type", REDUCE)
@pytest.mark.parametrize("shape, args", [
    ((2, 3), {}), ((2, 3, 2), {"axes": [1]}), ((2, 3, 2), {"axes": [0, -1], "keepdims": 0}),
    ((3,), {"keepdims": 0}), ((2, 2, 2), {"axes": [-1, 1], "keepdims": 1}),
])
def test_reduce_registered_gradient(op_type, shape, args):
    # Distinct values 0.5 apart: no ReduceMax ties within the step of the differences.
    x = np.random.default_rng(1).permutation(int(np.prod(shape))).reshape(shape) * 0.5 - 1.0
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


@pytest.mark.parametrize("op_type", REDUCE)
def test_reduce_maker_follows_caffe2(op_type):
    op = make_op(op_type, ["X"], ["Y"], {"axes": [1], "keepdims": 0})
    (grad,), g_input = GetGradientForOp(op, ["Y_grad"])
    assert (grad.type, list(grad.input), list(grad.output)) == (
        f"{op_type}Gradient", ["Y_grad", "X", "Y"], ["X_grad"])
    assert list(next(a for a in grad.arg if a.name == "axes").ints) == [1]
    assert g_input == ["X_grad"]


# -- ReduceMin, ReduceL1, ReduceL2, ArgMin (CPU only) --------------------------------------

# each with a "<type>Gradient" op: "ReduceMinGradient", "ReduceL1Gradient", "ReduceL2Gradient"
MORE = {"ReduceMin": np.min, "ReduceL1": lambda x, **kw: np.sum(np.abs(x), **kw),
        "ReduceL2": lambda x, **kw: np.sqrt(np.sum(x * x, **kw))}


@pytest.mark.parametrize("op_type", MORE)
@settings(max_examples=15, deadline=None)
@given(case=reductions())
def test_more_reductions_match_reference(op_type, case):
    x, args = case
    (y,) = check_reference(op_type, [x], reduce_reference(MORE[op_type]), args)
    assert y.dtype == np.float32


@pytest.mark.parametrize("op_type", MORE)
@pytest.mark.parametrize("shape, args", [
    ((2, 3), {}), ((2, 3, 2), {"axes": [1]}), ((2, 3, 2), {"axes": [0, -1], "keepdims": 0}),
    ((3,), {"keepdims": 0}),
])
def test_more_reduction_gradients(op_type, shape, args):
    # Distinct nonzero values 0.5 apart: no ties for ReduceMin, no kink of |x| nearby.
    x = (np.random.default_rng(2).permutation(int(np.prod(shape))).reshape(shape) - 2.25) * 0.5
    x = x.astype(np.float32)
    y = run_op(op_type, [x], args)[0]
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    check_gradient_op(op_type, [x], f"{op_type}Gradient", [dy, x, y], {0: 0}, [dy], args)
    report = check_op_gradient(make_op(op_type, ["X"], ["Y"], args), [x], 0)
    assert report.ok, report


def test_reduce_l2_gradient_is_zero_where_the_norm_is():
    x = np.array([[0, 0], [3, 4]], np.float32)
    y = run_op("ReduceL2", [x], {"axes": [1]})[0]
    np.testing.assert_allclose(y, [[0], [5]])
    (dx,) = run_op("ReduceL2Gradient", [np.ones_like(y), x, y], {"axes": [1]})
    np.testing.assert_allclose(dx, [[0, 0], [0.6, 0.8]])


def test_reduce_min_keeps_integers_and_l1_refuses_them():
    x = np.array([[3, -1], [2, 5]], np.int32)
    (y,) = check_reference("ReduceMin", [x], lambda x, **_: x.min(axis=0), {"axes": [0], "keepdims": 0})
    assert y.dtype == np.int32
    with pytest.raises(OpFailure, match=r"\(ReduceL1\) failed: data must be float, got int32"):
        run_op("ReduceL1", [x])
    with pytest.raises(ShapeError, match="data must be float, got int64"):
        infer("ReduceL2", [(2, 3)], dtype="int64")


@settings(max_examples=15, deadline=None)
@given(x=arrays, data=st.data())
def test_argmin_matches_reference(x, data):
    args = {"axis": data.draw(st.integers(-x.ndim, x.ndim - 1)),
            "keepdims": data.draw(st.sampled_from([0, 1]))}
    reference = lambda x, axis, keepdims: np.argmin(x, axis=axis, keepdims=bool(keepdims))
    (y,) = check_reference("ArgMin", [x], reference, args)
    assert y.dtype == np.int64


def test_argmin_ties_and_errors():
    (y,) = run_op("ArgMin", [np.array([[1, 0, 0], [5, 5, 6]], np.int64)], {"keepdims": 0})
    np.testing.assert_array_equal(y, [1, 0])
    with pytest.raises(OpFailure, match=r"\(ArgMin\) failed: X \[2, 0\] is empty along axis 1"):
        run_op("ArgMin", [np.zeros((2, 0), np.float32)], {"axis": 1})
    assert GetGradientForOp(make_op("ArgMin", ["X"], ["Y"]), ["Y_grad"])[0] == []


@pytest.mark.parametrize("op_type", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis, keepdims", [(0, 1), (1, 0), (-1, 1)])
def test_arg_select_last_index(op_type, axis, keepdims):
    x = np.array([[2, 2, 1], [1, 1, 1], [0, 2, 0]], np.float32)
    search = np.argmax if op_type == "ArgMax" else np.argmin

    def reference(x, axis, keepdims, select_last_index):  # the last hit: scan backwards
        flipped = np.flip(x, axis)
        return x.shape[axis] - 1 - search(flipped, axis=axis, keepdims=bool(keepdims))
    args = {"axis": axis, "keepdims": keepdims, "select_last_index": 1}
    (y,) = check_reference(op_type, [x], reference, args)
    assert y.dtype == np.int64
    expected_last = {("ArgMax", 1): [1, 2, 1], ("ArgMin", 1): [2, 2, 2]}.get((op_type, axis))
    if expected_last:
        np.testing.assert_array_equal(y.ravel(), expected_last)


@pytest.mark.parametrize("op_type, dtype, expected", [
    ("ReduceSum", np.float32, 0.0), ("ReduceMax", np.float32, -np.inf), ("ReduceMin", np.float32, np.inf),
    ("ReduceMax", np.int32, np.iinfo(np.int32).min), ("ReduceMin", np.int64, np.iinfo(np.int64).max),
    ("ReduceMax", np.bool_, False), ("ReduceMin", np.bool_, True), ("ReduceL1", np.float32, 0.0),
])
def test_reductions_over_no_elements_give_the_identity(op_type, dtype, expected):
    x = np.zeros((2, 0, 3), dtype)
    reference = lambda x, axes, keepdims: np.full((2, 1, 3) if keepdims else (2, 3), expected, dtype)
    for keepdims in (0, 1):
        (y,) = check_reference(op_type, [x], reference, {"axes": [1], "keepdims": keepdims})
        assert y.dtype == dtype


def test_reduce_max_min_of_bool():
    x = np.array([[True, False], [False, False]])
    (y,) = check_reference("ReduceMax", [x], lambda x, axes, keepdims: np.array([True, False]),
                           {"axes": [1], "keepdims": 0})
    assert y.dtype == np.bool_
    check_reference("ReduceMin", [x], lambda x, axes, keepdims: np.array([False, False]),
                    {"axes": [1], "keepdims": 0})


# -- ReduceFront*/ReduceBack* (CPU only) -------------------------------------------------------

# op type: (reduces the front dims, NumPy reduction); each has a "<type>Gradient" op
FRONT_BACK = {"ReduceFrontSum": (True, np.sum), "ReduceFrontMean": (True, np.mean),
              "ReduceFrontMax": (True, np.max), "ReduceBackSum": (False, np.sum),
              "ReduceBackMean": (False, np.mean), "ReduceBackMax": (False, np.max)}
FRONT_BACK_GRADIENTS = ["ReduceFrontSumGradient", "ReduceFrontMeanGradient", "ReduceFrontMaxGradient",
                        "ReduceBackSumGradient", "ReduceBackMeanGradient", "ReduceBackMaxGradient"]
SHAPE4 = (3, 4, 2, 5)


def front_back_axes(front: bool, ndim: int, num_reduce_dim: int) -> tuple:
    return tuple(range(num_reduce_dim)) if front else tuple(range(ndim - num_reduce_dim, ndim))


def front_back_reference(op_type):
    front, function = FRONT_BACK[op_type]

    def reference(x, lengths=None, num_reduce_dim=1):
        axes = front_back_axes(front, x.ndim, num_reduce_dim)
        kept = [d for i, d in enumerate(x.shape) if i not in axes]
        if lengths is None:
            return function(x.astype(np.float64), axis=axes)
        n_reduced = int(np.prod([x.shape[a] for a in axes]))
        rows = x.reshape(n_reduced, -1).T if front else x.reshape(-1, n_reduced)
        return np.array([function(row[:n]) for row, n in zip(rows, lengths)]).reshape(kept)
    return reference


@pytest.mark.parametrize("op_type", FRONT_BACK)
@pytest.mark.parametrize("num_reduce_dim", [0, 1, 2, 4])
def test_front_back_match_reference(op_type, num_reduce_dim):
    x = np.random.default_rng(num_reduce_dim).standard_normal(SHAPE4).astype(np.float32)
    check_reference(op_type, [x], front_back_reference(op_type), {"num_reduce_dim": num_reduce_dim})


@pytest.mark.parametrize("op_type", FRONT_BACK)
@pytest.mark.parametrize("num_reduce_dim", [1, 2])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_front_back_with_lengths(op_type, num_reduce_dim, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(SHAPE4).astype(np.float32)
    front = FRONT_BACK[op_type][0]
    axes = front_back_axes(front, 4, num_reduce_dim)
    n_reduced = int(np.prod([SHAPE4[a] for a in axes]))
    lengths = rng.integers(1, n_reduced + 1, x.size // n_reduced).astype(dtype)
    check_reference(op_type, [x, lengths], front_back_reference(op_type), {"num_reduce_dim": num_reduce_dim})


@pytest.mark.parametrize("op_type", FRONT_BACK)
@pytest.mark.parametrize("num_reduce_dim, with_lengths", [(1, False), (2, False), (0, False), (1, True)])
def test_front_back_gradients(op_type, num_reduce_dim, with_lengths):
    rng = np.random.default_rng(5)
    x = (rng.permutation(24).reshape(2, 3, 4) * 0.5).astype(np.float32)  # no ties for Max
    args = {"num_reduce_dim": num_reduce_dim}
    inputs = [x]
    if with_lengths:
        n_kept = 12 if FRONT_BACK[op_type][0] else 6
        inputs.append(rng.integers(1, 24 // n_kept + 1, n_kept).astype(np.int32))
    y = run_op(op_type, inputs, args)[0]
    dy = rng.standard_normal(y.shape).astype(np.float32)
    gradient_inputs = [dy, x] + ([y] if op_type.endswith("Max") else []) + inputs[1:]
    gradient_type = FRONT_BACK_GRADIENTS[list(FRONT_BACK).index(op_type)]
    check_gradient_op(op_type, inputs, gradient_type, gradient_inputs, {0: 0}, [dy], args)
    report = check_op_gradient(make_op(op_type, ["X", "L"][:len(inputs)], ["Y"], args), inputs, 0)
    assert report.ok, report


@pytest.mark.parametrize("op_type", FRONT_BACK)
def test_front_back_maker_follows_caffe2(op_type):
    extra = ["Y"] if op_type.endswith("Max") else []
    (grad,), g_input = GetGradientForOp(make_op(op_type, ["X", "L"], ["Y"]), ["Y_grad"])
    assert (grad.type, list(grad.input)) == (f"{op_type}Gradient", ["Y_grad", "X"] + extra + ["L"])
    assert g_input == ["X_grad", None]
    (grad,), _ = GetGradientForOp(make_op(op_type, ["X"], ["Y"]), ["Y_grad"])
    assert list(grad.input) == ["Y_grad", "X"] + extra


@pytest.mark.parametrize("op_type", ["ReduceFrontSumGradient", "ReduceBackMeanGradient"])
def test_front_back_gradient_takes_x_or_its_shape(op_type):
    x = np.random.default_rng(6).standard_normal((2, 3, 4)).astype(np.float32)
    dy = np.ones((3, 4) if "Front" in op_type else (2, 3), np.float32)
    (from_x,) = run_op(op_type, [dy, x])
    (from_shape,) = check_reference(op_type, [dy, np.array(x.shape, np.int64)],
                                    lambda *_: from_x)
    assert from_shape.shape == x.shape


def test_front_back_empty_batch_sums_to_zeros():
    (y,) = run_op("ReduceFrontSum", [np.zeros((0, 4, 3), np.float32)])
    np.testing.assert_array_equal(y, np.zeros((4, 3)))


LENGTHS_ERRORS = [
    ("ReduceFrontSum", [X, np.ones(5, np.int32)], {}, r"lengths is \[5\] but the output \[3, 4\] needs \[12\]"),
    ("ReduceBackSum", [X, np.ones(6, np.float32)], {}, "lengths must be int32 or int64, got float32"),
    ("ReduceBackMean", [X, np.full(6, 5, np.int32)], {}, r"lengths entry 5 is out of range 0..4"),
    ("ReduceFrontMax", [X, np.zeros(12, np.int32)], {}, r"lengths entry 0 is out of range 1..2"),
    ("ReduceFrontMax", [np.zeros((0, 3), np.float32)], {}, r"data \[0, 3\] has no elements"),
    ("ReduceBackMean", [np.zeros(3, np.int32)], {}, "data must be float, got int32"),
    ("ReduceFrontSum", [X], {"num_reduce_dim": 4}, r"num_reduce_dim 4 is out of range for data \[2, 3, 4\]"),
    ("ReduceFrontSumGradient", [np.zeros(5, np.float32), X], {}, r"dY is \[5\] but reducing X \[2, 3, 4\] gives \[3, 4\]"),
]


@pytest.mark.parametrize("op_type, inputs, args, message", LENGTHS_ERRORS, ids=[e[0] for e in LENGTHS_ERRORS])
def test_front_back_errors(op_type, inputs, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args)


def test_inference_front_back():
    assert infer("ReduceFrontSum", [(2, 3, 4)], num_reduce_dim=2) == [TensorInfo((4,))]
    assert infer("ReduceBackMax", [(2, 3, 4), TensorInfo((6,), "int32")]) == [TensorInfo((2, 3))]
    assert infer("ReduceBackSum", [(2, 3)], dtype="int64") == [TensorInfo((2,), "int64")]
    assert infer("ReduceFrontMean", [None]) == [None]
    assert infer("ReduceFrontMaxGradient", [(3, 4), (2, 3, 4), (3, 4)]) == [TensorInfo((2, 3, 4))]
    assert infer("ReduceBackSumGradient", [(2, 3), TensorInfo((3,), "int64")]) == [None]
    with pytest.raises(ShapeError, match=r"lengths is \[5\] but the output \[2\] needs \[2\]"):
        infer("ReduceBackSum", [(2, 3), TensorInfo((5,), "int32")])
    with pytest.raises(ShapeError, match=r"dY is \[4\] but reducing X \[2, 3\] gives \[2\]"):
        infer("ReduceBackMeanGradient", [(4,), (2, 3)])
    with pytest.raises(ShapeError, match="num_reduce_dim 3 is out of range"):
        infer("ReduceBackMax", [(2, 3)], num_reduce_dim=3)


# -- shape inference ---------------------------------------------------------------------

@pytest.mark.parametrize("op_type", REDUCE)
@pytest.mark.parametrize("dims, axes", [((2, 3, 4), [1]), ((2, 3, 4), [0, -1]),
                                        ((2, 3, 4), None), ((5,), [0])])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_inference_reduce_matches_numpy(op_type, dims, axes, keepdims):
    args = {"keepdims": keepdims} if axes is None else {"keepdims": keepdims, "axes": axes}
    expected = REDUCE[op_type](np.zeros(dims), axis=None if axes is None else tuple(axes),
                               keepdims=bool(keepdims)).shape
    assert infer(op_type, [dims], **args) == [TensorInfo(expected, "float32")]


def test_inference_reduce_keeps_dims_by_default_and_handles_unknown():
    assert infer("ReduceSum", [(2, 3)], axes=[1])[0].shape == (2, 1)
    assert infer("ReduceMean", [None], axes=[1]) == [None]


@pytest.mark.parametrize("op_type", REDUCE)
def test_inference_reduce_axis_out_of_range(op_type):
    with pytest.raises(ShapeError, match="axes entry 3 is out of range for rank 3"):
        infer(op_type, [(2, 3, 4)], axes=[3])


@pytest.mark.parametrize("op_type", REDUCE_GRADIENTS)
def test_inference_reduce_gradient(op_type):
    x = (2, 3, 4)
    assert infer(op_type, [(2, 1, 4), x, (2, 1, 4)], axes=[1]) == [TensorInfo(x)]
    assert infer(op_type, [(2, 4), x, None], axes=[1], keepdims=0) == [TensorInfo(x)]
    assert infer(op_type, [None, None, (2, 1, 4)], axes=[1]) == [None]
    with pytest.raises(ShapeError, match=r"dY is \[2, 4\] but Y is \[2, 1, 4\]"):
        infer(op_type, [(2, 4), x, (2, 1, 4)], axes=[1])
    with pytest.raises(ShapeError, match=r"Y is \[2, 3\] but reducing X"):
        infer(op_type, [None, x, (2, 3)], axes=[1])
    with pytest.raises(ShapeError, match=r"dY is \[3\] but Y is \[2, 4\]"):
        infer(op_type, [(3,), x, None], axes=[1], keepdims=0)


@pytest.mark.parametrize("dims, axis", [((2, 3, 4), -1), ((2, 3, 4), 1), ((5,), 0)])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_inference_argmax_matches_numpy(dims, axis, keepdims):
    expected = np.argmax(np.zeros(dims), axis=axis, keepdims=bool(keepdims)).shape
    assert infer("ArgMax", [dims], axis=axis, keepdims=keepdims) == [
        TensorInfo(expected, "int64")]


def test_inference_argmax_default_and_errors():
    assert infer("ArgMax", [(2, 3)]) == [TensorInfo((2, 1), "int64")]
    assert infer("ArgMax", [None]) == [None]
    with pytest.raises(ShapeError, match=r"axis 2 is out of range for rank 2 \(X \[2, 3\]\)"):
        infer("ArgMax", [(2, 3)], axis=2)
    with pytest.raises(ShapeError, match=r"X \[2, 0\] is empty along axis 1"):
        infer("ArgMax", [(2, 0)], axis=1)
    with pytest.raises(ShapeError, match="data must be float, got int32"):
        infer("ReduceMean", [(2, 3)], dtype="int32")
    assert infer("ReduceMax", [(2, 0)], axes=[1]) == [TensorInfo((2, 1), "float32")]


# -- CUDA against the CPU twin -------------------------------------------------------------

rng = np.random.default_rng(0)
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(list(REDUCE) + REDUCE_GRADIENTS + ["ArgMax"])

# (X's shape, axes: None for the default, all): odd sizes, 0-d, size-1 dims, split and
# negative axes, and sizes that take the one-thread and the one-block-per-output kernels
# past the emulator's 64-block grid (300 outputs of 67 terms; 20000 outputs of 3).
CASES = [
    ((), None),
    ((7,), None),
    ((7,), [0]),
    ((3, 5, 4), None),
    ((3, 5, 4), [1]),
    ((3, 5, 4), [0, 2]),
    ((3, 5, 4), [-1, 0]),
    ((3, 5, 4), [2, -1]),  # one axis twice
    ((2, 1, 3, 1), [1, 3]),  # only size-1 dims: nothing summed
    ((2, 1, 3, 1), [0, 1]),
    ((2, 3, 4, 5), [1, 2]),
    ((300, 67), [1]),
    ((67, 300), [0]),
    ((20000, 3), [-1]),
    ((3, 4000), None),  # one output, many terms
]
IDS = [f"{shape}-{axes}" for shape, axes in CASES]
EMPTY = [((0,), None), ((2, 0, 3), [0]), ((2, 0, 3), [1]), ((4, 0), [0, 1])]


def reduce_args(axes, keepdims=None) -> dict:
    args = {} if axes is None else {"axes": axes}
    return args if keepdims is None else {**args, "keepdims": keepdims}


def tolerance(shape, axes) -> dict:
    """The CPU sums n terms in float32 (an error up to ~n ulps, typically ~sqrt(n)), the GPU in double."""
    reduced = range(len(shape)) if axes is None else {a % len(shape) for a in axes}
    terms = int(np.prod([shape[a] for a in reduced]))
    return {"atol": 1e-5 + 2e-7 * terms, "rtol": 1e-5}


def normal(shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("shape, axes", CASES, ids=IDS)
@pytest.mark.parametrize("op_type", list(REDUCE))
def test_cuda_reduce(op_type, shape, axes, keepdims):
    check_devices(op_type, [normal(shape)], reduce_args(axes, keepdims), **tolerance(shape, axes))


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape, axes", CASES, ids=IDS)
@pytest.mark.parametrize("op_type", list(REDUCE))
def test_cuda_reduce_gradient(op_type, shape, axes):
    x = np.round(normal(shape) * 2)  # ReduceMax: ties, each of which receives dY
    y = run_op(op_type, [x], reduce_args(axes, 0))[0]  # dY without keepdims: taken as kept dims
    check_devices(op_type + "Gradient", [normal(y.shape), x, y], reduce_args(axes), atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's mean of nothing: NaN, warned
@pytest.mark.parametrize("shape, axes", EMPTY, ids=str)
@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMean", "ReduceMax"])
def test_cuda_empty_reductions(op_type, shape, axes):
    check_devices(op_type, [normal(shape)], reduce_args(axes))
    y = run_op(op_type, [normal(shape)], reduce_args(axes, 0))[0]
    x = normal(shape)
    check_devices(op_type + "Gradient", [normal(y.shape), x, y], reduce_args(axes), atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_reduce_max_propagates_nan():
    x = np.array([[1, np.nan, 3], [4, 5, 6], [np.nan, np.nan, -1]], np.float32)
    for axes in (None, [0], [1]):
        check_devices("ReduceMax", [x], reduce_args(axes))
    check_devices("ReduceMax", [np.full((2, 300), np.nan, np.float32)], {"axes": [1]})


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 4), (2, 1, 3, 1), (300, 67), (20000, 3), (2, 5000)],
                         ids=str)
def test_cuda_argmax_every_axis(shape, keepdims):
    x = np.round(normal(shape) * 2)  # ties: the first maximum wins
    for axis in range(-len(shape), len(shape)):
        (index,) = check_devices("ArgMax", [x], {"axis": axis, "keepdims": keepdims}, atol=0, rtol=0)
        assert index.dtype == np.int64


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_argmax_refuses_select_last_index():
    with pytest.raises(OpFailure, match="finds the first extremum only"):
        run_op("ArgMax", [normal((2, 3))], {"select_last_index": 1}, device_option=device_option("cuda"))


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_argmax_default_axis_and_empty_outputs():
    check_devices("ArgMax", [normal((4, 6))], atol=0, rtol=0)
    check_devices("ArgMax", [normal((0, 6))], {"axis": 1}, atol=0, rtol=0)
    check_devices("ArgMax", [normal((3, 0, 6))], {"axis": -1, "keepdims": 0}, atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_argmax_ties_nan_and_signed_zeros():
    x = np.array([[1, 3, 3, 0], [np.nan, 5, np.nan, 9], [-0.0, 0.0, -1, -0.0], [2, 2, 2, 2]], np.float32)
    for axis in (0, 1):
        check_devices("ArgMax", [x], {"axis": axis}, atol=0, rtol=0)
    long_rows = np.zeros((3, 1000), np.float32)
    long_rows[0, [5, 700]] = 1  # a tie far apart: different threads of one block
    long_rows[1, [600, 900]] = np.nan
    long_rows[2, 999] = np.nan
    check_devices("ArgMax", [long_rows], {"axis": 1}, atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_cuda_argmax_of_integers(dtype):
    x = rng.integers(-3, 3, (40, 70)).astype(dtype)
    for axis in (0, 1):
        check_devices("ArgMax", [x], {"axis": axis}, atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.slow
def test_integer_sums_are_refused_clearly_on_cuda():
    with pytest.raises((OpFailure, NetError), match=r"\(ReduceSum\) failed: the CUDA kernel takes float32, got int32"):
        run_op("ReduceSum", [np.arange(4, dtype=np.int32)], device_option=device_option("cuda"))


# --- Summarize: min, max, mean, sample std (and the to_file log) ------------------------

def summarize_reference(x, to_file=0):
    values = x.astype(np.float64).ravel()
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return [np.array([values.min(), values.max(), values.mean(), std], np.float32)]


@settings(max_examples=20, deadline=None)
@given(x=arrays)
def test_summarize_matches_reference(x):
    (y,) = check_reference("Summarize", [x], summarize_reference, num_outputs=1)
    assert y.dtype == np.float32 and y.shape == (4,)


def test_summarize_one_element_and_doubles():
    (y,) = run_op("Summarize", [np.array([[2.5]], np.float32)], num_outputs=1)
    assert y.tolist() == [2.5, 2.5, 2.5, 0.0]
    (y,) = check_reference("Summarize", [np.array([1.0, 2.0, 4.0])], summarize_reference, num_outputs=1)
    assert y.dtype == np.float32


def test_summarize_to_file_starts_afresh_then_appends(tmp_path, monkeypatch):
    from pycaffe2.executor import Workspace
    from pycaffe2.proto import caffe2_pb2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.summary").write_text("stale\n")
    workspace = Workspace()
    workspace.FeedBlob("x", np.array([1, 2, 3, 4], np.float32))
    net = caffe2_pb2.NetDef(name="s", op=[make_op("Summarize", ["x"], [], {"to_file": 1})])
    workspace.CreateNet(net)
    workspace.RunNet("s", num_iter=2)
    assert (tmp_path / "x.summary").read_text() == "1 4 2.5 1.29099\n" * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.summary"]


def test_summarize_without_to_file_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_op("Summarize", [np.ones(3, np.float32)], num_outputs=1)
    run_op("Summarize", [np.ones(3, np.float32)], num_outputs=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("x, message", [
    (np.zeros((2, 0), np.float32), r"\(Summarize\) failed: data is empty \(\[2, 0\]\)"),
    (np.arange(3, dtype=np.int32), r"\(Summarize\) failed: data must be float, got int32"),
])
def test_summarize_errors(x, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("Summarize", [x], num_outputs=1)


def test_summarize_inference_and_no_gradient():
    assert infer("Summarize", [TensorInfo((3, 5), "float32")]) == [TensorInfo((4,), "float32")]
    assert infer("Summarize", [TensorInfo((3, 5), "float32")], n_out=0) == []
    with pytest.raises(ShapeError, match=r"data is empty \(\[0\]\)"):
        infer("Summarize", [TensorInfo((0,), "float32")])
    with pytest.raises(GradientError, match="should not call gradient for operator Summarize"):
        GetGradientForOp(make_op("Summarize", ["x"], ["s"]), ["s_grad"])
