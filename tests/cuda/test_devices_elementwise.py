"""CUDA kernels of the elementwise family (elementwise.cu) against their CPU twins (marked gpu),
and the clear error for a non-float32 input."""
import numpy as np
import pytest

from pycaffe2.testing import check_devices, run_op
from tests.cuda import DEVICE_CHECKED

rng = np.random.default_rng(0)
SHAPES = [(1,), (7,), (3, 5, 4), (2, 3, 7, 11), (1 << 20,), (1000, 1025)]
CLIP = {"min": -0.5, "max": 0.7}


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
    from pycaffe2.executor.devices import cuda
    from pycaffe2.operators import CUDA_KERNELS, load_kernels
    load_kernels()
    with pytest.raises(ValueError, match="Negative: the CUDA kernel takes float32, got int32"):
        CUDA_KERNELS["Negative"].function(np.arange(4, dtype=np.int32))
    assert cuda.unavailable_reason() is None
