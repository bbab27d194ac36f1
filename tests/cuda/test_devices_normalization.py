"""Normalization CUDA kernels (SpatialBN and its statistics ops) against their CPU
twins, in both layouts, test and training mode, and the num_batches paths; marked
gpu and skipped without a GPU and PyCUDA."""
import numpy as np
import pytest

from pycaffe2.operators.normalization import channel_stats
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op
from tests.cuda import DEVICE_CHECKED

CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
BN_IN = ["X", "scale", "bias", "mean", "var"]
BN_OUT = ["Y", "mean", "var", "saved_mean", "saved_inv_std"]  # running stats in place, as enforced
ATOL, RTOL = 1e-4, 1e-4

# (shape, order): small, odd, spatial size 1, rank 3 and 5, and two of >= 1M elements.
SHAPES = [((2, 3, 4, 5), "NCHW"), ((2, 4, 5, 3), "NHWC"), ((3, 5, 7), "NCHW"), ((3, 7, 5), "NHWC"),
          ((2, 3, 2, 3, 2), "NCHW"), ((1, 2, 3, 2, 4), "NHWC"), ((4, 5, 1, 1), "NCHW"),
          ((3, 70, 33), "NHWC"), ((3, 257, 43, 31), "NCHW"), ((16, 32, 32, 64), "NHWC")]


def channels(shape, order):
    return shape[1] if order == "NCHW" else shape[-1]


def bn_inputs(shape, order, seed=0):
    """X (mean 3, std 2: a mean the statistics must not cancel), scale, bias, mean, var."""
    rng = np.random.default_rng(seed)
    c = channels(shape, order)
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    return [x, rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32),
            (rng.standard_normal(c) + 3).astype(np.float32), (rng.random(c) * 4 + 2).astype(np.float32)]


def saved_stats(x, scale, bias, order):
    """SpatialBN's saved mean and inverse std of X, from the CPU kernel."""
    c = channels(x.shape, order)
    zeros = np.zeros(c, np.float32)
    out = run_op("SpatialBN", [x, scale, bias, zeros, zeros], {"is_test": 0, "order": order},
                 input_names=BN_IN, output_names=BN_OUT)
    return out[3], out[4]


def dy_like(x, seed=1):
    return np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)


def all_sums(x, order):
    """sums and sumsq over X and a second batch of its shape: num_batches = 2."""
    return channel_stats(np.concatenate([x, x[::-1] * 0.5 + 1]), order=order)


def gradient_inputs(aggregates=False, test=False):
    def make(shape, order):
        x, scale, bias, mean, var = bn_inputs(shape, order)
        stats = [mean, var] if test else list(saved_stats(x, scale, bias, order))
        extra = []
        if aggregates:
            rng = np.random.default_rng(2)
            extra = [rng.standard_normal(len(scale)).astype(np.float32) * 10 for _ in range(2)]
        return [x, scale, dy_like(x), *stats, *extra]
    return make


def backprop_stats_inputs(shape, order):
    x, scale, bias, _, _ = bn_inputs(shape, order)
    return [x, *saved_stats(x, scale, bias, order), dy_like(x)]


# op type -> variants of (inputs for (shape, order), args, number of outputs, layouts)
BOTH = ("NCHW", "NHWC")
CASES = {
    "ChannelStats": [(lambda s, o: bn_inputs(s, o)[:1], {}, 2, BOTH)],
    "ChannelBackpropStats": [(backprop_stats_inputs, {}, 2, ("NCHW",))],
    "SpatialBN": [
        (lambda s, o: bn_inputs(s, o), {"is_test": 1, "epsilon": 1e-3}, 1, BOTH),
        (lambda s, o: bn_inputs(s, o), {"is_test": 0}, 5, BOTH),
        (lambda s, o: bn_inputs(s, o), {"is_test": 0, "momentum": 0.3, "epsilon": 0.5}, 5, BOTH),
        (lambda s, o: [*bn_inputs(s, o), *all_sums(bn_inputs(s, o)[0], o)],
         {"is_test": 0, "num_batches": 2}, 5, BOTH),
    ],
    "SpatialBNGradient": [
        (gradient_inputs(), {"is_test": 0}, 3, BOTH),
        (gradient_inputs(test=True), {"is_test": 1, "epsilon": 1e-3}, 3, BOTH),
        (gradient_inputs(aggregates=True), {"is_test": 0, "num_batches": 3}, 3, BOTH),
    ],
}
DEVICE_CHECKED.update(CASES)

PARAMS = [pytest.param(op_type, index, shape, order, id=f"{op_type}-{index}-{order}-{'x'.join(map(str, shape))}")
          for op_type, variants in sorted(CASES.items()) for index, variant in enumerate(variants)
          for shape, order in SHAPES if order in variant[3]]


@pytest.mark.gpu
@pytest.mark.parametrize("op_type, index, shape, order", PARAMS)
def test_cuda_kernel_matches_cpu(op_type, index, shape, order):
    make_inputs, args, num_outputs, _ = CASES[op_type][index]
    args = {**args, "order": order} if op_type != "ChannelBackpropStats" else args
    check_devices(op_type, make_inputs(shape, order), args, num_outputs, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@pytest.mark.parametrize("shape, order", [((2, 3, 4, 5), "NCHW"), ((3, 7, 5), "NHWC")])
def test_empty_running_statistics_start_at_zero(shape, order):
    inputs = bn_inputs(shape, order)
    inputs[3] = inputs[4] = np.zeros(0, np.float32)
    check_devices("SpatialBN", inputs, {"is_test": 0, "order": order}, 5, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
def test_statistics_of_a_large_mean_do_not_cancel():
    x, scale, bias, mean, var = bn_inputs((8, 4, 64, 64), "NCHW")
    x = (x * 1e-2 + 1e3).astype(np.float32)  # std 0.02 under a mean of 1000
    *_, saved_mean, saved_inv_std = run_op("SpatialBN", [x, scale, bias, mean, var], {"is_test": 0},
                                           num_outputs=5, device_option=CUDA)
    rows = np.moveaxis(x, 1, -1).reshape(-1, 4).astype(np.float64)
    np.testing.assert_allclose(saved_mean, rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(saved_inv_std, 1 / np.sqrt(rows.var(axis=0) + 1e-5), rtol=1e-3)
