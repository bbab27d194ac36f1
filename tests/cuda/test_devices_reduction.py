"""CUDA kernels of the reduction family (reduction.cu, and arithmetic.cu's sums) against their
CPU twins (marked gpu): ReduceSum/Mean/Max and their gradients over every kind of axes set,
with and without keepdims, ArgMax along each axis (ties, NaN, integer data), and the errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

rng = np.random.default_rng(0)
CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax"]
GRADIENTS = [t + "Gradient" for t in REDUCE]
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(REDUCE + GRADIENTS + ["ArgMax"])

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
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("shape, axes", CASES, ids=IDS)
@pytest.mark.parametrize("op_type", REDUCE)
def test_reduce(op_type, shape, axes, keepdims):
    check_devices(op_type, [normal(shape)], reduce_args(axes, keepdims), **tolerance(shape, axes))


@pytest.mark.gpu
@pytest.mark.parametrize("shape, axes", CASES, ids=IDS)
@pytest.mark.parametrize("op_type", REDUCE)
def test_reduce_gradient(op_type, shape, axes):
    x = np.round(normal(shape) * 2)  # ReduceMax: ties, each of which receives dY
    y = run_op(op_type, [x], reduce_args(axes, 0))[0]  # dY without keepdims: taken as kept dims
    check_devices(op_type + "Gradient", [normal(y.shape), x, y], reduce_args(axes), atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's mean of nothing: NaN, warned
@pytest.mark.parametrize("shape, axes", EMPTY, ids=str)
@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMean"])
def test_empty_reductions(op_type, shape, axes):
    check_devices(op_type, [normal(shape)], reduce_args(axes))
    y = run_op(op_type, [normal(shape)], reduce_args(axes, 0))[0]
    x = normal(shape)
    check_devices(op_type + "Gradient", [normal(y.shape), x, y], reduce_args(axes), atol=0, rtol=0)


@pytest.mark.gpu
def test_reduce_max_propagates_nan():
    x = np.array([[1, np.nan, 3], [4, 5, 6], [np.nan, np.nan, -1]], np.float32)
    for axes in (None, [0], [1]):
        check_devices("ReduceMax", [x], reduce_args(axes))
    check_devices("ReduceMax", [np.full((2, 300), np.nan, np.float32)], {"axes": [1]})


@pytest.mark.gpu
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 4), (2, 1, 3, 1), (300, 67), (20000, 3), (2, 5000)],
                         ids=str)
def test_argmax_every_axis(shape, keepdims):
    x = np.round(normal(shape) * 2)  # ties: the first maximum wins
    for axis in range(-len(shape), len(shape)):
        (index,) = check_devices("ArgMax", [x], {"axis": axis, "keepdims": keepdims}, atol=0, rtol=0)
        assert index.dtype == np.int64


@pytest.mark.gpu
def test_argmax_default_axis_and_empty_outputs():
    check_devices("ArgMax", [normal((4, 6))], atol=0, rtol=0)
    check_devices("ArgMax", [normal((0, 6))], {"axis": 1}, atol=0, rtol=0)
    check_devices("ArgMax", [normal((3, 0, 6))], {"axis": -1, "keepdims": 0}, atol=0, rtol=0)


@pytest.mark.gpu
def test_argmax_ties_nan_and_signed_zeros():
    x = np.array([[1, 3, 3, 0], [np.nan, 5, np.nan, 9], [-0.0, 0.0, -1, -0.0], [2, 2, 2, 2]], np.float32)
    for axis in (0, 1):
        check_devices("ArgMax", [x], {"axis": axis}, atol=0, rtol=0)
    long_rows = np.zeros((3, 1000), np.float32)
    long_rows[0, [5, 700]] = 1  # a tie far apart: different threads of one block
    long_rows[1, [600, 900]] = np.nan
    long_rows[2, 999] = np.nan
    check_devices("ArgMax", [long_rows], {"axis": 1}, atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_argmax_of_integers(dtype):
    x = rng.integers(-3, 3, (40, 70)).astype(dtype)
    for axis in (0, 1):
        check_devices("ArgMax", [x], {"axis": axis}, atol=0, rtol=0)


def errors(op_type, inputs, args, match):
    """The op fails with the same message on both devices."""
    for device in (None, CUDA):
        with pytest.raises((OpFailure, NetError), match=match):
            run_op(op_type, inputs, args, device_option=device)


@pytest.mark.gpu
def test_errors_match_the_cpu():
    x = np.zeros((2, 3, 4), np.float32)
    errors("ReduceSum", [x], {"axes": [3]}, "axes entry 3 is out of range")
    errors("ReduceMax", [np.zeros((2, 0), np.float32)], {"axes": [1]}, r"ReduceMax: data \[2, 0\] is empty")
    errors("ReduceMean", [np.zeros((2, 3), np.int32)], {}, "ReduceMean: data must be float, got int32")
    errors("ArgMax", [x], {"axis": 3}, "ArgMax: axis 3 is out of range")
    errors("ArgMax", [np.zeros((2, 0), np.float32)], {"axis": 1}, r"ArgMax: X \[2, 0\] is empty along axis 1")
    y = np.zeros((2, 1, 4), np.float32)
    for op_type in GRADIENTS:
        errors(op_type, [np.zeros(3, np.float32), x, y], {"axes": [1]}, r"dY is \[3\] but reducing X")
    errors("ReduceMaxGradient", [y, x, np.zeros(3, np.float32)], {"axes": [1]}, r"Y is \[3\] but reducing X")


@pytest.mark.gpu
def test_integer_sums_are_refused_clearly_on_cuda():
    with pytest.raises((OpFailure, NetError), match="ReduceSum: the CUDA kernel takes float32, got int32"):
        run_op("ReduceSum", [np.arange(4, dtype=np.int32)], device_option=CUDA)
