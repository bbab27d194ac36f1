"""Normalization CUDA kernels (SpatialBN and its statistics ops) against their CPU
twins, in both layouts, test and training mode, and the num_batches paths; marked
gpu and skipped without a GPU and PyCUDA."""
import numpy as np
import pytest

from pycaffe2.operators.normalization import channel_stats
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op
from tests.cuda import many_rows

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

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
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
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


# ---- LayerNorm, GroupNorm, InstanceNorm: one block per normalized row ----------------------

def randn(shape, seed, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(np.float32)


def layer_inputs(shape, axis, affine):
    axis %= len(shape)
    params = [randn(shape[axis:], 1), randn(shape[axis:], 2)] if affine else []
    return [randn(shape, 0, 2, 3), *params]


def layer_gradient_inputs(shape, axis, affine):
    x, *params = layer_inputs(shape, axis, affine)
    y, mean, std = run_op("LayerNorm", [x, *params], {"axis": axis, "elementwise_affine": affine},
                          num_outputs=3)
    return [randn(shape, 3), y, mean, std, x, *params[:1]]


def group_inputs(shape, order):
    c = channels(shape, order)
    return [randn(shape, 0, 2, 3), randn(c, 1), randn(c, 2)]


def group_gradient_inputs(shape, group, order):
    x, gamma, beta = group_inputs(shape, order)
    _, mean, inv_std = run_op("GroupNorm", [x, gamma, beta], {"group": group, "order": order},
                              num_outputs=3)
    return [randn(shape, 3), x, gamma, beta, mean, inv_std]


def instance_gradient_inputs(shape, order, saved):
    x, scale, bias = group_inputs(shape, order)
    stats = run_op("InstanceNorm", [x, scale, bias], {"order": order}, num_outputs=3)[1:] if saved else []
    return [x, scale, bias, randn(shape, 3), *stats]


# (shape, axis): rank 2 to 4, axis 0 (one row), negative, rows longer than a block of
# threads, more rows than the emulator's 64 blocks, and empty shapes.
LAYER_SHAPES = [((3, 5), 1), ((3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), 1), ((2, 3, 4, 5), 2),
                ((3, 1000), 1), ((200, 7), 1), ((1, 1), 1), ((0, 4), 1), ((3, 0), 1)]
# (shape, group, order): rank 2 to 5, group 1 and C, odd sizes, > 64 rows, empty.
GROUP_SHAPES = [((2, 6, 4, 5), 3, "NCHW"), ((2, 4, 5, 6), 3, "NHWC"), ((3, 4), 2, "NCHW"),
                ((3, 4), 4, "NHWC"), ((2, 8, 3, 3, 2), 4, "NCHW"), ((2, 3, 3, 2, 8), 2, "NHWC"),
                ((2, 5, 7), 1, "NCHW"), ((2, 7, 5), 5, "NHWC"), ((40, 6, 3), 3, "NCHW"),
                ((40, 3, 6), 3, "NHWC"), ((2, 4, 33, 17), 2, "NCHW"), ((0, 4, 3), 2, "NCHW"),
                ((2, 4, 0), 2, "NHWC")]
INSTANCE_SHAPES = [((2, 3, 4, 5), "NCHW"), ((2, 4, 5, 3), "NHWC"), ((3, 5, 7), "NCHW"),
                   ((3, 7, 5), "NHWC"), ((30, 4, 5), "NCHW"), ((30, 5, 4), "NHWC"),
                   ((2, 3, 1, 1), "NCHW"), ((0, 3, 4), "NCHW"), ((2, 0, 3), "NHWC")]


def norm_cases():
    """(op type, shape, inputs maker, its arguments, op args, number of outputs) for every
    shape and arg combination."""
    for shape, axis in LAYER_SHAPES:
        for affine in (0, 1):
            args = {"axis": axis, "elementwise_affine": affine}
            yield ("LayerNorm", shape, layer_inputs, (shape, axis, affine),
                   {**args, "epsilon": 1e-3 if affine else 1e-5}, 3)
            for num_outputs in (1, 3) if affine else (1,):
                yield "LayerNormGradient", shape, layer_gradient_inputs, (shape, axis, affine), args, num_outputs
    for shape, group, order in GROUP_SHAPES:
        args = {"group": group, "order": order}
        yield "GroupNorm", shape, group_inputs, (shape, order), {**args, "epsilon": 0.1}, 3
        yield "GroupNormGradient", shape, group_gradient_inputs, (shape, group, order), args, 3
    for shape, order in INSTANCE_SHAPES:
        yield "InstanceNorm", shape, group_inputs, (shape, order), {"order": order, "epsilon": 1e-3}, 3
        for saved in (True, False):
            yield ("InstanceNormGradient", shape, instance_gradient_inputs, (shape, order, saved),
                   {"order": order}, 3)


NORM_CASES = [pytest.param(*case, id=f"{case[0]}-{'x'.join(map(str, case[1]))}-{index}")
              for index, case in enumerate(norm_cases())]
DEVICE_CHECKED.update(case.values[0] for case in NORM_CASES)


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")  # CPU, empty X
@pytest.mark.parametrize("op_type, shape, make_inputs, make_args, args, num_outputs", NORM_CASES)
def test_row_normalization_matches_cpu(op_type, shape, make_inputs, make_args, args, num_outputs):
    check_devices(op_type, make_inputs(*make_args), args, num_outputs, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [many_rows((70000, 3))])
def test_layer_norm_rows_past_a_real_grid(shape):
    args = {"axis": 1, "elementwise_affine": 1}
    check_devices("LayerNorm", layer_inputs(shape, 1, 1), args, 3, atol=ATOL, rtol=RTOL)
    check_devices("LayerNormGradient", layer_gradient_inputs(shape, 1, 1), args, 3, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@pytest.mark.parametrize("op_type, make_inputs, args, message", [
    ("LayerNorm", lambda: [randn((2, 3), 0), randn(4, 1), randn(4, 2)], {"elementwise_affine": 1},
     "gamma has shape"),
    ("LayerNorm", lambda: [randn((2, 3), 0)], {"elementwise_affine": 1}, "takes 3 input"),
    ("LayerNormGradient", lambda: layer_gradient_inputs((2, 3), 1, 0), {}, "dgamma and dbeta need the gamma input"),
    ("GroupNorm", lambda: group_inputs((2, 6, 3), "NCHW"), {"group": 4}, "does not divide"),
    ("GroupNormGradient", lambda: group_gradient_inputs((2, 6, 3), 3, "NCHW")[:4] + [randn(5, 0), randn(6, 1)],
     {"group": 3}, "saved_mean has shape"),
    ("InstanceNormGradient", lambda: group_inputs((2, 3, 4), "NCHW") + [randn((2, 3, 5), 3)], {},
     "dY has shape"),
])
def test_row_normalization_errors_match_cpu(op_type, make_inputs, args, message):
    """A bad input gives the CPU kernel's error on both devices."""
    inputs, num_outputs = make_inputs(), 3
    for device in (None, CUDA):
        with pytest.raises(Exception, match=message):
            run_op(op_type, inputs, args, num_outputs, device_option=device)
