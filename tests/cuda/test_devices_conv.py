"""CUDA conv-family kernels against their CPU twins (marked gpu: skipped without a GPU
and PyCUDA). Convolutions (Conv, ConvTranspose and their gradient ops, with and without
bias, with and without dX) run over window geometries in every spelling (pads, strides,
dilation, groups, legacy_pad), in NCHW and NHWC, at 1 to 3 spatial dims through the
aliases, on empty batches and on images larger than the emulator's grid. Pooling runs
over geometries the CPU kernel's `window` resolves (pads, strides, dilation,
legacy_pad=3, global pooling), in NCHW and NHWC, at 1 to 3 spatial dims through the
aliases; MaxPoolGradient also on tie-heavy inputs (small integers), where every tied
max gets dY."""
import numpy as np
import pytest

from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.inference.conv import image_shape
from pycaffe2.testing import check_devices, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

load_kernels()
CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
rng = np.random.default_rng(0)


def randn(shape):
    return rng.standard_normal(shape).astype(np.float32)


def ties(shape):
    """Small integers: max pooling windows hold many tied maxima."""
    return rng.integers(0, 4, shape).astype(np.float32)


def pool_gradient_inputs(forward, make=randn):
    """(X, Y, dY) for a pooling gradient op, Y from the CPU forward op."""
    def inputs(shape, args):
        x = make(shape)
        (y,) = run_op(forward, [x], args)
        return [x, y, randn(y.shape)]
    return inputs


def lrn_gradient_inputs(shape, args):
    x = randn(shape)
    y = run_op("LRN", [x], args)[0]
    return [x, y, randn(shape)]


# op type -> (inputs for (shape, args), outputs compared)
CASES = {
    "MaxPool": (lambda s, a: [randn(s)], 1),
    "AveragePool": (lambda s, a: [randn(s)], 1),
    "MaxPoolGradient": (pool_gradient_inputs("MaxPool"), 1),
    "AveragePoolGradient": (pool_gradient_inputs("AveragePool"), 1),
    "LRN": (lambda s, a: [randn(s)], 2),
    "LRNGradient": (lrn_gradient_inputs, 1),
}
POOL_TYPES = ["MaxPool", "AveragePool", "MaxPoolGradient", "AveragePoolGradient"]
CONV_TYPES = ["Conv", "ConvGradient", "ConvTranspose", "ConvTransposeGradient"]
ALIASES = sorted(alias for op_type in POOL_TYPES for alias in get_schema(op_type).aliases)
CONV_ALIASES = sorted(alias for op_type in CONV_TYPES for alias in get_schema(op_type).aliases)
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.update(ALIASES)
DEVICE_CHECKED.update(CONV_TYPES)
DEVICE_CHECKED.update(CONV_ALIASES)

# (shape, args) of 2-D windows; shapes are read in the args' order.
POOL_GEOMETRY = [
    ((2, 3, 7, 9), {"kernel": 3, "stride": 2, "pad": 1}),
    ((2, 7, 9, 3), {"kernel": 3, "stride": 2, "pad": 1, "order": "NHWC"}),
    ((1, 5, 6, 11), {"kernel_h": 2, "kernel_w": 3, "stride_h": 1, "stride_w": 2, "pads": [0, 1, 1, 0]}),
    ((3, 2, 13, 13), {"kernel": 3, "stride": 2, "legacy_pad": 3}),
    ((2, 4, 12, 10), {"kernel": 3, "stride": 2, "pad": 1, "legacy_pad": 3, "order": "NHWC"}),
    ((2, 3, 9, 8), {"kernel": 2, "stride": 1, "dilation": 2, "pad": 1}),
    ((2, 5, 7, 6), {"kernel": 3, "stride": 2, "pads": [4, 0, 0, 4]}),  # windows wholly in padding
    ((2, 3, 13, 13), {"global_pooling": 1}),
    ((2, 13, 13, 3), {"global_pooling": 1, "order": "NHWC"}),
    ((1, 1, 1, 1), {"kernel": 1}),
    ((8, 32, 64, 64), {"kernel": 3, "stride": 2, "pad": 1}),  # 1M elements
    ((8, 64, 64, 32), {"kernel": 2, "stride": 2, "order": "NHWC"}),
]


def pool_args(op_type: str, args: dict) -> dict:
    if op_type.startswith("Average"):
        return args
    return {k: v for k, v in args.items() if k != "count_include_pad"}




@pytest.mark.gpu
@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("shape, args", POOL_GEOMETRY)
@pytest.mark.parametrize("op_type", POOL_TYPES)
def test_cuda_pooling_matches_cpu(op_type, shape, args, count_include_pad):
    if count_include_pad and not op_type.startswith("Average"):
        pytest.skip("count_include_pad is AveragePool's")
    args = pool_args(op_type, {**args, "count_include_pad": count_include_pad})
    make_inputs, count = CASES[op_type]
    check_devices(op_type, make_inputs(shape, args), args, count)


@pytest.mark.gpu
@pytest.mark.parametrize("shape, args", POOL_GEOMETRY[:6] + POOL_GEOMETRY[7:9])
def test_cuda_max_pool_gradient_gives_every_tied_max_dy(shape, args):
    check_devices("MaxPoolGradient", pool_gradient_inputs("MaxPool", ties)(shape, args), args)


@pytest.mark.gpu
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("alias", ALIASES)
def test_cuda_pooling_aliases_cover_1_to_3_spatial_dims(alias, order):
    nd = int(alias.split("Pool")[1][0])
    shape = (2, 3, 7, 6, 5)[:2 + nd] if order == "NCHW" else (2, 7, 6, 5)[:1 + nd] + (3,)
    args = pool_args(alias, {"kernel": 2, "stride": 2, "pad": 1, "count_include_pad": 1, "order": order})
    forward = alias.replace("Gradient", "").rstrip("123D")
    make_inputs = pool_gradient_inputs(forward) if alias.endswith("Gradient") else (lambda s, a: [randn(s)])
    check_devices(alias, make_inputs(shape, args), args)


@pytest.mark.gpu
@pytest.mark.parametrize("shape, order", [((2, 6, 3, 5), "NCHW"), ((2, 3, 5, 6), "NHWC"), ((3, 7), "NCHW"),
                                          ((2, 3, 4, 5, 9), "NHWC"), ((4, 64, 64, 64), "NCHW"),
                                          ((4, 64, 64, 64), "NHWC")])
@pytest.mark.parametrize("size, alpha, beta, bias", [(5, 0.5, 0.75, 2.0), (4, 0.3, 0.5, 1.0),
                                                     (1, 0.2, 1.0, 1.5)])
@pytest.mark.parametrize("op_type", ["LRN", "LRNGradient"])
def test_cuda_lrn_matches_cpu(op_type, shape, order, size, alpha, beta, bias):
    args = {"size": size, "alpha": alpha, "beta": beta, "bias": bias, "order": order}
    make_inputs, count = CASES[op_type]
    check_devices(op_type, make_inputs(shape, args), args, count, atol=1e-5, rtol=1e-4)


# Convolutions: (N, C, spatial, M, kernel, args); shapes are built in each order. C and M
# are X's and Y's channels for both Conv and ConvTranspose.
CONV_GEOMETRY = [
    (2, 3, (7, 9), 4, (3, 3), {"stride": 2, "pad": 1}),
    (1, 2, (6, 11), 3, (2, 3), {"stride_h": 1, "stride_w": 2, "pad_t": 0, "pad_l": 1, "pad_b": 2,
                                "pad_r": 0}),
    (2, 4, (9, 8), 6, (2, 2), {"dilation": 2, "pads": [1, 0, 0, 2], "group": 2}),
    (2, 6, (5, 7), 3, (3, 1), {"group": 3, "strides": [2, 1], "dilations": [1, 2]}),
    (1, 1, (1, 1), 1, (1, 1), {}),
    (0, 3, (5, 5), 2, (3, 3), {"pad": 1}),  # an empty batch
    (3, 8, (30, 30), 8, (3, 3), {"pad": 1}),  # more elements than the emulator's grid holds threads
    (2, 3, (4, 5), 70, (1, 1), {}),  # more channels (dbias rows) than the emulator's grid has blocks
]
CONV_ONLY_GEOMETRY = [  # legacy_pad SAME, VALID and Caffe's pooling mode (ConvTranspose refuses the last)
    (2, 3, (8, 7), 2, (3, 2), {"stride": 2, "legacy_pad": 2}),
    (2, 3, (8, 7), 2, (3, 3), {"stride": 2, "legacy_pad": 1}),
    (2, 3, (8, 7), 2, (2, 2), {"stride": 2, "pad": 1, "legacy_pad": 3}),
]
TRANSPOSE_ONLY_GEOMETRY = [
    (2, 3, (4, 5), 4, (3, 3), {"stride": 2, "adj": 1, "pad": 1}),
    (1, 4, (3, 4), 2, (2, 3), {"stride_h": 3, "stride_w": 2, "adj_h": 2, "adj_w": 0, "group": 2}),
]


def conv_shapes(n, c, spatial, m, kernel, group, order, transposed):
    """(X, filter) shapes: Conv's filter is [M, C/group, kernel...], ConvTranspose's
    [C, M/group, kernel...] (NHWC: the channel dim last)."""
    rows, inner = (c, m // group) if transposed else (m, c // group)
    w = (rows, inner, *kernel) if order == "NCHW" else (rows, *kernel, inner)
    return image_shape(n, c, spatial, order), w


def conv_inputs(op_type, geometry, order, bias=True):
    """Inputs of `op_type` (a forward op, a gradient op or an alias): X, filter, then the
    bias or dY (shaped by the CPU forward op)."""
    n, c, spatial, m, kernel, args = geometry
    forward = op_type.replace("Gradient", "").rstrip("123D") if op_type.startswith("Conv") else op_type
    transposed = forward == "ConvTranspose"
    x_shape, w_shape = conv_shapes(n, c, spatial, m, kernel, args.get("group", 1), order, transposed)
    x, w = randn(x_shape), randn(w_shape) / np.sqrt(np.prod(w_shape[1:]), dtype=np.float32)
    if not op_type.endswith("Gradient"):
        return [x, w, randn(m)] if bias else [x, w]
    (y,) = run_op(forward, [x, w], {**args, "order": order})
    return [x, w, randn(y.shape)]


def check_conv(op_type, geometry, order, variant):
    """variant: 'bias', 'no_bias' (no bias input, or no_bias=1 and outputs dfilter, dX)
    or 'no_dX' (dfilter and dbias only)."""
    args = {**geometry[-1], "order": order}
    num_outputs = None
    if op_type.endswith("Gradient"):
        num_outputs = 2 if variant != "bias" else 3
        args.update({"no_bias": 1} if variant == "no_bias" else {})
    inputs = conv_inputs(op_type, geometry, order, bias=variant != "no_bias")
    check_devices(op_type, inputs, args, num_outputs, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["bias", "no_bias", "no_dX"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRY + CONV_ONLY_GEOMETRY, ids=str)
@pytest.mark.parametrize("op_type", ["Conv", "ConvGradient"])
def test_cuda_conv_matches_cpu(op_type, geometry, order, variant):
    if variant == "no_dX" and op_type == "Conv":
        pytest.skip("no_dX is the gradient op's")
    check_conv(op_type, geometry, order, variant)


@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["bias", "no_bias", "no_dX"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRY + CONV_ONLY_GEOMETRY[:2] + TRANSPOSE_ONLY_GEOMETRY,
                         ids=str)
@pytest.mark.parametrize("op_type", ["ConvTranspose", "ConvTransposeGradient"])
def test_cuda_conv_transpose_matches_cpu(op_type, geometry, order, variant):
    if variant == "no_dX" and op_type == "ConvTranspose":
        pytest.skip("no_dX is the gradient op's")
    check_conv(op_type, geometry, order, variant)


@pytest.mark.gpu
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("alias", CONV_ALIASES)
def test_cuda_conv_aliases_cover_1_to_3_spatial_dims(alias, order):
    nd = int(alias[4])
    geometry = (2, 4, (7, 6, 5)[:nd], 6, (3, 2, 2)[:nd], {"stride": 2, "pad": 1, "dilation": 1, "group": 2})
    check_conv(alias, geometry, order, "bias")


@pytest.mark.gpu
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("op_type", CONV_TYPES)
def test_cuda_conv_3d_with_groups_and_dilation(op_type, order):
    geometry = (2, 4, (5, 6, 4), 2, (2, 3, 2), {"strides": [1, 2, 1], "dilations": [2, 1, 1],
                                                "pads": [1, 0, 1, 0, 1, 1], "group": 2})
    check_conv(op_type, geometry, order, "bias")


def op_error(op_type, inputs, args, num_outputs=None, device_option=None) -> str:
    with pytest.raises(Exception) as error:
        run_op(op_type, inputs, args, num_outputs, device_option=device_option)
    return str(error.value)


@pytest.mark.gpu
@pytest.mark.parametrize("op_type, shapes, args, num_outputs, message", [
    ("Conv", [(1, 4, 5, 5), (2, 3, 3, 3)], {}, None, "takes 3 per group"),
    ("Conv", [(1, 4, 5, 5), (3, 2, 3, 3)], {"group": 2}, None, "does not divide the filter's 3"),
    ("Conv", [(1, 2, 5, 5), (3, 2, 3, 3), (4,)], {}, None, "bias is"),
    ("Conv", [(1, 2, 2, 5), (3, 2, 3, 3)], {}, None, "larger than X"),
    ("ConvGradient", [(1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 4, 3)], {}, 3, "dY is"),
    ("ConvGradient", [(1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 3, 3)], {"no_bias": 1}, 3, "with no_bias=1"),
    ("ConvTranspose", [(1, 2, 3, 3), (3, 2, 3, 3)], {}, None, "has 2 channels"),
    ("ConvTranspose", [(1, 2, 3, 3), (2, 2, 3, 3)], {"stride": 2, "adj": 3}, None, "may not exceed"),
    ("ConvTransposeGradient", [(1, 2, 3, 3), (2, 2, 3, 3), (1, 2, 4, 4)], {}, 3, "dY is"),
])
def test_cuda_conv_errors_say_what_the_cpu_kernel_says(op_type, shapes, args, num_outputs, message):
    """Bad inputs the checker at CreateNet cannot see (runtime shapes) fail alike on both devices."""
    inputs = [randn(shape) for shape in shapes]
    cpu = op_error(op_type, inputs, args, num_outputs)
    gpu = op_error(op_type, inputs, args, num_outputs, CUDA)
    assert message in cpu
    assert gpu.split("failed: ")[-1].split(" [inputs")[0] == cpu.split("failed: ")[-1].split(" [inputs")[0]


@pytest.mark.gpu
def test_cuda_conv_over_4_spatial_dims_says_the_gpu_takes_3():
    inputs = [randn((1, 1, 2, 2, 2, 2)), randn((1, 1, 1, 1, 1, 1))]
    gpu = op_error("Conv", inputs, {}, device_option=CUDA)
    assert "the CUDA kernels take 1 to 3 spatial dims" in gpu
