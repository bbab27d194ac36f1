"""CUDA kernels of the elementwise family (elementwise.cu) against their CPU twins (marked gpu):
the math ops, comparisons and logic under every broadcast mode, Pow, Not and Where; and the
CPU's errors for bad inputs on CUDA too."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

rng = np.random.default_rng(0)
SHAPES = [(1,), (7,), (3, 5, 4), (2, 3, 7, 11), (1 << 20,), (1000, 1025)]
CLIP = {"min": -0.5, "max": 0.7}
CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)


def normal(shape):
    return rng.standard_normal(shape).astype(np.float32)


def positive(shape):
    return rng.uniform(0.01, 10, shape).astype(np.float32)


def away_from_zero(shape):
    x = normal(shape)
    return np.where(np.abs(x) < 1e-3, 0.5, x).astype(np.float32)


def clip_gradient_inputs(shape):
    y = run_op("Clip", [normal(shape)], CLIP)[0]  # many entries sit exactly on a bound
    return [y, normal(shape)]


# op type -> (inputs for a shape, args)
CASES = {
    "Exp": (lambda s: [normal(s) * 3], {}),
    "Log": (lambda s: [positive(s)], {}),
    "Sqrt": (lambda s: [positive(s)], {}),
    "Abs": (lambda s: [normal(s)], {}),
    "AbsGradient": (lambda s: [away_from_zero(s), normal(s)], {}),
    "Negative": (lambda s: [normal(s)], {}),
    "Neg": (lambda s: [normal(s)], {}),
    "Sqr": (lambda s: [normal(s)], {}),
    "Scale": (lambda s: [normal(s)], {"scale": -2.5}),
    "Clip": (lambda s: [normal(s)], CLIP),
    "ClipGradient": (clip_gradient_inputs, CLIP),
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_kernel_matches_cpu(op_type, shape):
    make_inputs, args = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("op_type", ["Clip", "AbsGradient", "Exp", "Log", "Sqrt"])
def test_special_values_match_cpu(op_type):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -2.0, 3.0], np.float32)
    inputs = [x, normal(x.shape)] if op_type == "AbsGradient" else [x]
    with np.errstate(all="ignore"):
        check_devices(op_type, inputs, CLIP if op_type == "Clip" else {})


@pytest.mark.gpu
def test_clip_defaults_leave_every_float_alone():
    check_devices("Clip", [normal((5, 7)) * 1e30], {})


@pytest.mark.gpu
def test_integer_input_is_refused_clearly():
    from pycaffe2.devices import cuda
    from pycaffe2.operators import CUDA_KERNELS, load_kernels
    load_kernels()
    with pytest.raises(ValueError, match="Negative: the CUDA kernel takes float32, got int32"):
        CUDA_KERNELS["Negative"].function(np.arange(4, dtype=np.int32))
    assert cuda.unavailable_reason() is None


# --- comparisons, logic, Pow, Not and Where: broadcast strided kernels, bool outputs ----------

# (A shape, B shape, args): NumPy-style, legacy, 0-d, empty, and more elements than the
# emulator's 64-block grid covers in one pass.
BINARY_SHAPES = [
    ((3, 4), (3, 4), {}),
    ((2, 3, 5), (5,), {}),
    ((4, 1), (1, 5), {}),
    ((), (2, 3), {}),
    ((), (), {}),
    ((0, 3), (3,), {}),
    ((2, 3, 4), (3,), {"broadcast": 1, "axis": 1}),
    ((2, 3, 4), (3, 4), {"broadcast": 1}),
    ((2, 3, 4, 5), (3,), {"broadcast": 1, "axis_str": "C"}),
    ((2, 3, 4, 5), (5,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}),
    ((2, 3), (1, 1), {"broadcast": 1}),
    ((300, 257), (300, 257), {}),
    ((300, 7, 9), (7, 1), {}),
]
COMPARE_TYPES = ["EQ", "LT", "GT", "LE", "GE"]


def small_values(shape, dtype):
    """Values from a small range, so equal pairs are common (bools: random)."""
    return (rng.integers(-2, 3, shape) if dtype != np.bool_ else rng.random(shape) > 0.5).astype(dtype)


def check_bool_output(op_type, inputs, args):
    (out,) = check_devices(op_type, inputs, args)
    assert out.dtype == np.bool_


@pytest.mark.gpu
@pytest.mark.parametrize("a_shape, b_shape, args", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op_type", COMPARE_TYPES)
def test_comparisons_match_cpu(op_type, a_shape, b_shape, args):
    a, b = small_values(a_shape, np.float32), small_values(b_shape, np.float32)
    check_bool_output(op_type, [a, b], args)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("op_type", COMPARE_TYPES)
def test_comparisons_of_other_types_match_cpu(op_type, dtype):
    a, b = small_values((3, 5, 4), dtype), small_values((5, 1), dtype)
    check_bool_output(op_type, [a, b], {})
    check_bool_output(op_type, [a, b[:, 0]], {"broadcast": 1, "axis": 1})


@pytest.mark.gpu
@pytest.mark.parametrize("op_type", COMPARE_TYPES)
def test_comparisons_of_special_values_match_cpu(op_type):
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float32)
    check_bool_output(op_type, [values[:, None], values], {})  # every pair


@pytest.mark.gpu
@pytest.mark.parametrize("a_shape, b_shape, args", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op_type", ["And", "Or"])
def test_logic_ops_match_cpu(op_type, a_shape, b_shape, args):
    a, b = small_values(a_shape, np.bool_), small_values(b_shape, np.bool_)
    check_bool_output(op_type, [a, b], args)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5, 4), (300, 257)], ids=str)
def test_not_matches_cpu(shape):
    check_bool_output("Not", [small_values(shape, np.bool_)], {})


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(), (0, 3), (7,), (3, 5, 4), (300, 257)], ids=str)
@pytest.mark.parametrize("exponent", [2.0, -1.5, 0.0, 0.5, 3.0])
def test_pow_with_the_arg_matches_cpu(exponent, shape):
    x = positive(shape) if exponent % 1 else normal(shape)
    check_devices("Pow", [x], {"exponent": exponent}, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("x_shape, e_shape, args", [
    ((), (), {}), ((0, 3), (0, 3), {}), ((2, 3), (2, 3), {}), ((300, 257), (300, 257), {}),
    ((2, 3, 4), (4,), {"broadcast": 1}),
    ((2, 3, 4), (3, 4), {"broadcast": 1}),
    ((2, 3, 4, 5), (3, 1), {"broadcast": 1, "axis": 1}),
    ((2, 3, 4, 5), (4,), {"broadcast": 1, "axis_str": "H"}),
    ((2, 3, 4, 5), (5,), {"broadcast": 1, "axis_str": "C", "order": "NHWC"}),
    ((2, 3), (1,), {"broadcast": 1}),
    ((300, 7, 9), (7,), {"broadcast": 1, "axis": 1}),
], ids=str)
def test_pow_with_an_exponent_tensor_matches_cpu(x_shape, e_shape, args):
    x, e = positive(x_shape), normal(e_shape)
    check_devices("Pow", [x, e], args, atol=1e-6, rtol=2e-6)


@pytest.mark.gpu
def test_pow_special_values_match_cpu():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -2.0, 2.0, 1.0], np.float32)
    with np.errstate(all="ignore"):
        for exponent in [0.0, -1.0, 0.5, 3.0, np.nan]:
            check_devices("Pow", [x], {"exponent": float(exponent)})
        check_devices("Pow", [x, x[::-1].copy()], {})
        for exponent in [0.5, 2.0, -1.0]:  # one exponent for all: NumPy's fast paths
            check_devices("Pow", [x, np.array([exponent], np.float32)], {"broadcast": 1})
        check_devices("Pow", [x, np.full(x.shape, 0.5, np.float32)], {})


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(), (0, 2), (7,), (3, 5, 4), (300, 257)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.bool_])
def test_where_matches_cpu(dtype, shape):
    c = small_values(shape, np.bool_)
    (z,) = check_devices("Where", [c, small_values(shape, dtype), small_values(shape, dtype)], {})
    assert z.dtype == dtype


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 0), (4, 2, 3), (300, 57)], ids=str)
def test_where_on_rows_matches_cpu(shape):
    c = small_values(shape[:1], np.bool_)
    check_devices("Where", [c, normal(shape), normal(shape)], {"broadcast_on_rows": 1})


DEVICE_CHECKED.update(COMPARE_TYPES + ["And", "Or", "Not", "Pow", "Where"])


def run_on_cuda(op_type, inputs, args):
    return run_op(op_type, inputs, args, device_option=CUDA)


@pytest.mark.gpu
@pytest.mark.parametrize("op_type, inputs, args, pattern", [
    ("EQ", [np.ones((2, 3), np.float32), np.ones(4, np.float32)], {},
     r"A is \[2, 3\] and B is \[4\]: dims 3 and 4 do not"),
    ("And", [np.ones((2, 3), bool), np.ones(2, bool)], {"broadcast": 1},
     r"B's dim 0 \(2\) must equal A's dim 1 \(3\)"),
    ("LT", [np.ones(2, np.float32), np.ones(2, np.int64)], {}, "A is float32 but B is int64"),
    ("Or", [np.ones(3, np.float32)] * 2, {}, r"Or: A is float32 \[3\], must be bool"),
    ("Not", [np.ones(3, np.int32)], {}, r"Not: X is int32 \[3\], must be bool"),
    ("GE", [np.ones(3, np.uint8)] * 2, {}, "GE: the CUDA kernel takes float32, int32, int64 or bool, got uint8"),
    ("Pow", [np.ones((2, 3), np.float32)], {}, "got neither"),
    ("Pow", [np.ones((2, 3), np.float32), np.ones(3, np.float32)], {},
     r"X is \[2, 3\] and exponent is \[3\]: without broadcast=1 the shapes must be"),
    ("Pow", [np.ones((2, 3), np.float32), np.ones(2, np.float32)], {"broadcast": 1},
     r"exponent's dim 0 \(2\) must equal X's dim 1 \(3\)"),
    ("Pow", [np.ones(3, np.int32)], {"exponent": 2.0}, r"Pow: X is int32 \[3\], must be a float tensor"),
    ("Where", [np.ones(3, bool), np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)],
     {"broadcast_on_rows": 1}, r"one entry per row of X and Y \(\[2, 3\]\), got \[3\]"),
    ("Where", [np.ones(2, bool), np.ones(2, np.float32), np.ones(2, np.int32)], {},
     "X is \\[2\\] float32 but Y is \\[2\\] int32"),
])
def test_bad_inputs_get_the_cpu_error_on_cuda(op_type, inputs, args, pattern):
    runs = [run_on_cuda] if "CUDA kernel" in pattern else [run_op, run_on_cuda]
    for run in runs:
        with pytest.raises((OpFailure, NetError), match=pattern):
            run(op_type, inputs, args)
