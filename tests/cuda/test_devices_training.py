"""CUDA training kernels against their CPU twins (marked gpu: skipped without a GPU
and PyCUDA), with the learning rate and counter on the GPU (check_devices feeds
every input there) and, as LearningRate and Iter leave them, on the CPU."""
import numpy as np
import pytest

from pycaffe2.executor import Workspace
from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import assert_outputs_close, check_devices, make_op, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

load_kernels()
rng = np.random.default_rng(0)


def randn(shape):
    return rng.standard_normal(shape).astype(np.float32)


def scalar(value):
    return np.array([value], np.float32)


def weighted_sum_inputs(pairs):
    return lambda s: [v for i in range(pairs) for v in (randn(s), scalar(0.5 - 0.7 * i))]


# op type -> (inputs for a shape, args, outputs compared)
CASES = {
    "WeightedSum": (weighted_sum_inputs(3), {}, 1),
    "MomentumSGDUpdate": (lambda s: [randn(s), randn(s), scalar(-0.1), randn(s)], {"momentum": 0.9}, 3),
    "Adagrad": (lambda s: [randn(s), np.abs(randn(s)), randn(s), scalar(-0.01)], {"epsilon": 1e-4, "decay": 0.95},
                2),
    "Adam": (lambda s: [randn(s), randn(s), np.abs(randn(s)), randn(s), scalar(-0.001), np.array([4], np.int64)],
             {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}, 4),
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
SHAPES = [(7,), (3, 5, 4), (1 << 20,)]
DEVICE_CHECKED.update({"WeightedSumGradient", "LearningRate"})  # tested below


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_update_matches_cpu(op_type, shape):
    make_inputs, args, count = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, count)


@pytest.mark.gpu
@pytest.mark.parametrize("pairs", [1, 2, 5])
@pytest.mark.parametrize("shape", SHAPES)
def test_cuda_weighted_sum_any_number_of_pairs(pairs, shape):
    check_devices("WeightedSum", weighted_sum_inputs(pairs)(shape), {})


@pytest.mark.gpu
@pytest.mark.parametrize("nesterov", [0, 1])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_cuda_momentum_sgd_both_kinds(nesterov, momentum):
    s = (1001, 3)
    check_devices("MomentumSGDUpdate", [randn(s), randn(s), scalar(-0.05), randn(s)],
                  {"momentum": momentum, "nesterov": nesterov}, 3)


@pytest.mark.gpu
def test_cuda_updates_keep_each_blobs_shape():
    """Sizes must agree, shapes need not: each output keeps its blob's shape."""
    outputs = check_devices("Adam", [randn((4, 6)), randn(24), np.abs(randn((2, 12))), randn((6, 4)), scalar(-0.01),
                                     np.array([0], np.int64)], {}, 4)
    assert [o.shape for o in outputs] == [(4, 6), (24,), (2, 12), (6, 4)]


def run_mixed(op_type, inputs, on_cpu, args, count):
    """The op on CUDA with inputs `on_cpu` (indices) left on the CPU."""
    cuda_option = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
    workspace = Workspace("_mixed")
    names = [f"in{i}" for i in range(len(inputs))]
    for index, (name, value) in enumerate(zip(names, inputs)):
        workspace.FeedBlob(name, value, device_option=None if index in on_cpu else cuda_option)
    op = make_op(op_type, names, [f"out{i}" for i in range(count)], args)
    op.device_option.CopyFrom(cuda_option)
    workspace.RunOperatorOnce(op)
    return [workspace.FetchBlob(f"out{i}") for i in range(count)]


@pytest.mark.gpu
@pytest.mark.parametrize("op_type, on_cpu", [("MomentumSGDUpdate", {2}), ("Adagrad", {3}), ("Adam", {4, 5}),
                                             ("WeightedSum", {1, 3, 5})])
def test_cuda_updates_take_a_cpu_learning_rate_and_counter(op_type, on_cpu):
    make_inputs, args, count = CASES[op_type]
    inputs = make_inputs((5, 3))
    got = run_mixed(op_type, inputs, on_cpu, args, count)
    assert_outputs_close(got, run_op(op_type, inputs, args, count), atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
def test_cuda_adam_without_its_optional_step_output():
    make_inputs, args, _ = CASES["Adam"]
    check_devices("Adam", make_inputs((9, 2)), args, 3)


def weighted_sum_gradient_inputs(shape, pairs):
    """{dY, X_0, weight_0, X_1, weight_1, ...}."""
    return [randn(shape), *weighted_sum_inputs(pairs)(shape)]


@pytest.mark.gpu
@pytest.mark.parametrize("grad_on_w", [0, 1])
@pytest.mark.parametrize("pairs", [1, 3])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5, 4), (0, 3), (1 << 20,)], ids=str)
def test_cuda_weighted_sum_gradient_matches_cpu(shape, pairs, grad_on_w):
    inputs = weighted_sum_gradient_inputs(shape, pairs)
    args = {"grad_on_w": grad_on_w}
    count = pairs * (2 if grad_on_w else 1)
    # dX to the bit; dw sums in double on the GPU, in float32 (vdot) on the CPU
    gpu = check_devices("WeightedSumGradient", inputs, args, count, atol=1e-4, rtol=1e-4)
    cpu = run_op("WeightedSumGradient", inputs, args, count)
    assert_outputs_close(gpu[:pairs], cpu[:pairs], atol=0, rtol=0)
    for dw, x in zip(gpu[pairs:], inputs[1::2]):
        exact = np.vdot(inputs[0].astype(np.float64), x.astype(np.float64))
        assert dw.shape == (1,) and dw.dtype == np.float32
        np.testing.assert_allclose(dw, exact, rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
def test_cuda_weighted_sum_gradient_refusals_as_on_the_cpu():
    from pycaffe2.executor import NetError, OpFailure
    inputs = weighted_sum_gradient_inputs((4, 3), 2)
    with pytest.raises((OpFailure, NetError), match="give 4 outputs, not 2"):
        check_devices("WeightedSumGradient", inputs, {"grad_on_w": 1}, 2)
    inputs[3] = randn((3, 4))
    with pytest.raises((OpFailure, NetError), match="must have the same shape"):
        check_devices("WeightedSumGradient", inputs, {}, 2)


LEARNING_RATES = [
    {"policy": "fixed"},
    {"policy": "step", "gamma": 0.5, "stepsize": 3},
    {"policy": "exp", "gamma": 0.99},
    {"policy": "inv", "gamma": 0.01, "power": 0.75},
    {"policy": "multistep", "gamma": 0.3, "stepsizes": [2, 5, 9]},
    {"policy": "poly", "max_iter": 20, "power": 2.0},
    {"policy": "linearWarmup", "start_multiplier": 0.1, "num_iter": 5},
    {"policy": "constantWarmup", "multiplier": 0.2, "num_iter": 5},
    {"policy": "alter", "active_period": 3, "inactive_period": 2},
    {"policy": "alter", "active_period": 3, "inactive_period": 2, "active_first": 0},
    {"policy": "hill", "num_iter": 4, "start_multiplier": 0.1, "gamma": 0.1, "power": 0.5,
     "end_multiplier": 0.2},
]


@pytest.mark.gpu
@pytest.mark.parametrize("iteration", [0, 1, 4, 7, 100, 10**6])
@pytest.mark.parametrize("args", LEARNING_RATES, ids=str)
def test_cuda_learning_rate_matches_cpu(args, iteration):
    args = {"base_lr": -0.1, "lr_scale": 0.7, **args}
    counter = np.array([iteration], np.int64)
    gpu = check_devices("LearningRate", [counter], args, atol=0, rtol=0)[0]  # the counter fed to the GPU
    assert gpu.dtype == np.float32 and gpu.shape == ()
    on_cpu = run_mixed("LearningRate", [counter], {0}, args, 1)[0]  # the counter left on the CPU
    assert_outputs_close([on_cpu], run_op("LearningRate", [counter], args), atol=0, rtol=0)


@pytest.mark.gpu
def test_cuda_learning_rate_refusals_as_on_the_cpu():
    from pycaffe2.executor import NetError, OpFailure
    with pytest.raises((OpFailure, NetError), match="iter must be a one-element int64 tensor"):
        run_mixed("LearningRate", [np.array([1, 2], np.int64)], {0}, {"base_lr": 0.1, "policy": "fixed"}, 1)
    with pytest.raises((OpFailure, NetError), match="stepsize must be > 0"):
        run_mixed("LearningRate", [np.array([1], np.int64)], {0}, {"base_lr": 0.1, "policy": "step"}, 1)
