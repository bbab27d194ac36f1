"""CUDA pooling and LRN kernels against their CPU twins (marked gpu: skipped
without a GPU and PyCUDA). Pooling runs over window geometries the CPU kernel's
`window` resolves (pads, strides, dilation, legacy_pad=3, global pooling), in
NCHW and NHWC, at 1 to 3 spatial dims through the aliases; MaxPoolGradient also
on tie-heavy inputs (small integers), where every tied max gets dY."""
import numpy as np
import pytest

from pycaffe2.operators import load_kernels
from pycaffe2.schema import get_schema
from pycaffe2.testing import check_devices, run_op
from tests.cuda import DEVICE_CHECKED

load_kernels()
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
ALIASES = sorted(alias for op_type in POOL_TYPES for alias in get_schema(op_type).aliases)
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.update(ALIASES)

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
