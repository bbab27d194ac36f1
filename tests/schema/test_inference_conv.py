"""Inference rules of the conv family: output sizes from the formulas, and clear errors."""
import math

import pytest

from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer


def out_size(size, k, s=1, d=1, head=0, tail=0):
    return (size + head + tail - (d * (k - 1) + 1)) // s + 1


# (X, filter, args, Y): NCHW, NHWC, groups, 1-D / 3-D, every spelling of the args.
CONV = [
    ((2, 3, 9, 9), (4, 3, 3, 3), {}, (2, 4, 7, 7)),
    ((2, 3, 9, 9), (4, 3, 3, 3), {"kernel": 3, "pad": 1, "stride": 2}, (2, 4, 5, 5)),
    ((2, 3, 9, 8), (4, 3, 3, 2), {"kernels": [3, 2], "strides": [2, 1], "pads": [1, 0, 2, 1],
                                  "dilations": [2, 3]},
     (2, 4, out_size(9, 3, 2, 2, 1, 2), out_size(8, 2, 1, 3, 0, 1))),
    ((2, 3, 9, 8), (4, 3, 3, 2), {"kernel_h": 3, "kernel_w": 2, "stride_h": 2, "stride_w": 3,
                                  "pad_t": 1, "pad_l": 0, "pad_b": 0, "pad_r": 2},
     (2, 4, out_size(9, 3, 2, 1, 1, 0), out_size(8, 2, 3, 1, 0, 2))),
    ((2, 9, 9, 3), (4, 3, 3, 3), {"order": "NHWC", "pad": 1}, (2, 9, 9, 4)),
    ((2, 6, 7, 7), (9, 2, 3, 3), {"group": 3}, (2, 9, 5, 5)),
    ((2, 7, 7, 6), (9, 3, 3, 2), {"group": 3, "order": "NHWC"}, (2, 5, 5, 9)),
    ((2, 3, 10), (5, 3, 4), {"stride": 3}, (2, 5, 3)),
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), {"pads": [1, 0, 1, 1, 0, 1]}, (1, 3, 5, 4, 7)),
    ((1, 1, 7, 7), (2, 1, 3, 3), {"legacy_pad": 1, "stride": 2}, (1, 2, 3, 3)),
    ((1, 1, 7, 8), (2, 1, 3, 3), {"legacy_pad": 2, "stride": 2}, (1, 2, 4, 4)),  # ceil(in / stride)
    ((1, 1, 5, 5), (2, 1, 5, 5), {"global_pooling": 1}, (1, 2, 1, 1)),
]


@pytest.mark.parametrize("x, w, args, y", CONV)
def test_conv_output_shapes(x, w, args, y):
    m = w[0]
    assert infer("Conv", [x, w, (m,)], **args) == [TensorInfo(y)]
    assert infer("Conv2D", [x, w], **args) == [TensorInfo(y)]
    dw, db, dx = infer("ConvGradient", [x, w, y], n_out=3, **args)
    assert (dw.shape, db.shape, dx.shape) == (w, (m,), x)
    assert [i.shape for i in infer("ConvGradient", [x, w, y], n_out=2, no_bias=1, **args)] == [w, x]


def test_conv_keeps_float64_and_unknown_inputs():
    assert infer("Conv", [(1, 2, 5, 5), (3, 2, 3, 3)], dtype="float64") == [TensorInfo((1, 3, 3, 3), "float64")]
    assert infer("Conv", [None, (3, 2, 3, 3), (3,)]) == [None]
    assert infer("Conv", [(1, 2, 5, 5), None]) == [None]


# (X, filter, args, Y) for ConvTranspose: (in - 1) * stride + dilated kernel + adj - pads.
CONV_TRANSPOSE = [
    ((2, 3, 4, 5), (3, 2, 3, 3), {}, (2, 2, 6, 7)),
    ((2, 3, 4, 5), (3, 2, 3, 3), {"stride": 2, "pad": 1, "adj": 1}, (2, 2, 8, 10)),
    ((2, 4, 4, 5), (4, 3, 3, 2), {"strides": [2, 3], "pads": [0, 1, 1, 0], "adjs": [2, 0], "group": 2},
     (2, 6, 3 * 2 + 3 + 2 - 1, 4 * 3 + 2 - 1)),
    ((2, 4, 5, 3), (3, 3, 3, 2), {"order": "NHWC", "stride": 2}, (2, 9, 11, 2)),
    ((1, 2, 4), (2, 1, 3), {"dilation": 2, "legacy_pad": 2}, (1, 1, 3 + 5)),
]


@pytest.mark.parametrize("x, w, args, y", CONV_TRANSPOSE)
def test_conv_transpose_output_shapes(x, w, args, y):
    m = y[1] if args.get("order", "NCHW") == "NCHW" else y[-1]
    assert infer("ConvTranspose", [x, w, (m,)], **args) == [TensorInfo(y)]
    dw, db, dx = infer("ConvTransposeGradient", [x, w, y], n_out=3, **args)
    assert (dw.shape, db.shape, dx.shape) == (w, (m,), x)


def caffe_pool_size(size, k, s, pad):
    """Caffe's pooling size: rounded up, then the last window must start inside X or the head pad."""
    out = math.ceil((size + 2 * pad - k) / s) + 1
    return out - 1 if pad and (out - 1) * s >= size + pad else out


@pytest.mark.parametrize("size, k, s, pad, expected", [
    (111, 3, 2, 0, 55),  # SqueezeNet's pool1 on conv1's output
    (112, 3, 2, 0, 56), (113, 3, 2, 0, 56), (6, 2, 2, 0, 3), (7, 2, 2, 0, 4),
    (5, 3, 2, 1, 3), (6, 3, 2, 1, 4), (4, 2, 3, 1, 2),
])
def test_legacy_caffe_pooling_size(size, k, s, pad, expected):
    assert caffe_pool_size(size, k, s, pad) == expected
    for op_type in ("MaxPool", "AveragePool"):
        (y,) = infer(op_type, [(1, 2, size, size)], kernel=k, stride=s, pad=pad, legacy_pad=3)
        assert y.shape == (1, 2, expected, expected)
    assert infer("MaxPool", [(1, 2, size, size)], kernel=k, stride=s, pad=pad)[0].shape[2] == \
        out_size(size, k, s, 1, pad, pad)


@pytest.mark.parametrize("x, args, y", [
    ((2, 3, 8, 8), {"kernel": 2, "stride": 2}, (2, 3, 4, 4)),
    ((2, 8, 8, 3), {"kernel": 3, "pad": 1, "order": "NHWC"}, (2, 8, 8, 3)),
    ((2, 3, 13, 13), {"kernel": 0, "global_pooling": 1, "legacy_pad": 3}, (2, 3, 1, 1)),
    ((2, 3, 9), {"kernels": [3], "strides": [2]}, (2, 3, 4)),
    ((1, 2, 4, 5, 6), {"kernel": 2, "stride": 2, "pad": 1}, (1, 2, 3, 3, 4)),
    ((1, 1, 7, 7), {"kernel": 3, "stride": 2, "legacy_pad": 2}, (1, 1, 4, 4)),
    ((1, 1, 7, 7), {"kernel": 3, "stride": 2, "legacy_pad": 1}, (1, 1, 3, 3)),
])
def test_pool_output_shapes(x, args, y):
    for op_type in ("MaxPool", "AveragePool", "MaxPool2D"):
        assert infer(op_type, [x], **args) == [TensorInfo(y)]
    assert infer("MaxPoolGradient", [x, y, y], **args) == [TensorInfo(x)]


def test_lrn_shapes():
    assert infer("LRN", [(2, 5, 3, 3)], n_out=2, size=3) == [TensorInfo((2, 5, 3, 3))] * 2
    assert infer("LRNGradient", [(2, 5, 3, 3)] * 3, size=3) == [TensorInfo((2, 5, 3, 3))]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("Conv", [(2, 6, 8, 8), (4, 4, 3, 3)], {},
     (r"^X \[2, 6, 8, 8\] has 6 channels but filter \[4, 4, 3, 3\] \(\[M, C/group, kernel...\]\) "
      r"takes 4 per group x group 1 = 4")),
    ("Conv", [(2, 8, 8, 6), (4, 3, 3, 4)], {"order": "NHWC"}, r"\[M, kernel..., C/group\]"),
    ("Conv", [(2, 6, 8, 8), (4, 2, 3, 3)], {"group": 4}, "group 4 does not divide X's 6 channels"),
    ("Conv", [(2, 6, 8, 8), (5, 2, 3, 3)], {"group": 3}, "group 3 does not divide the filter's 5 output"),
    ("Conv", [(2, 3, 4, 4), (4, 3, 5, 5)], {"pad": 0},
     r"the kernel \(extent 5\) is larger than X \[2, 3, 4, 4\] along spatial axis 0: 4 \+ pads 0 \+ 0 = 4"),
    ("Conv", [(2, 3, 4, 4), (4, 3, 3, 3)], {"dilation": 3}, r"kernel \(extent 7\) is larger"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3), (5,)], {}, r"bias is \[5\] but the filter \[4, 3, 3, 3\] gives M = 4"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3)], {}, r"filter \[4, 3, 3\] must have X's rank 4"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"kernel": 5}, r"kernel args give \[5, 5\] but the filter's"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"pad": 1, "pads": [1, 1, 2, 1]},
     r"the args disagree: pad \[1, 1, 1, 1\], pads \[1, 1, 2, 1\]"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"legacy_pad": 2, "pad": 1}, r"legacy_pad 2 \(SAME\) computes"),
    ("Conv", [(2, 3, 8, 8, 8), (4, 3, 3, 3, 3)], {"kernel_h": 3, "kernel_w": 3}, "are for 2-D ops"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"pad_t": 1}, "give all of pad_t, pad_l, pad_b, pad_r"),
    ("Conv", [(2, 3, 8, 8), (4, 3, 3, 3)], {"strides": [1, 1, 1]}, r"strides \[1, 1, 1\] has 3 values"),
    ("Conv", [(3, 8), (4, 3, 3)], {}, r"X \[3, 8\] must be \[N, C, spatial...\]"),
    ("ConvTranspose", [(2, 3, 4, 4), (4, 2, 3, 3)], {}, r"X \[2, 3, 4, 4\] has 3 channels but filter"),
    ("ConvTranspose", [(2, 3, 4, 4), (3, 2, 3, 3)], {"stride": 2, "adj": 3}, r"adj \[3, 3\] may not exceed"),
    ("ConvTranspose", [(2, 3, 4, 4), (3, 2, 3, 3)], {"legacy_pad": 3}, "is for Conv and pooling only"),
    ("ConvTranspose", [(2, 3, 1, 1), (3, 2, 3, 3)], {"pad": 2}, "leave an empty output"),
    ("MaxPool", [(2, 3, 8, 8)], {}, "no kernel size: give kernel"),
    ("MaxPool", [(2, 3, 8, 8)], {"kernel": 0}, r"kernel \[0, 0\] must be positive"),
    ("AveragePool", [(2, 3, 2, 2)], {"kernel": 3}, "is larger than X"),
    ("ConvGradient", [(2, 3, 8, 8), (4, 3, 3, 3), (2, 4, 5, 5)], {}, r"dY is \[2, 4, 5, 5\] but Y is \[2, 4, 6, 6\]"),
    ("MaxPoolGradient", [(2, 3, 8, 8), (2, 3, 4, 4), (2, 3, 3, 4)], {"kernel": 2, "stride": 2},
     r"dY is \[2, 3, 3, 4\] but pooling X \[2, 3, 8, 8\] gives \[2, 3, 4, 4\]"),
])
def test_errors_name_the_shapes(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out=3 if op_type == "ConvGradient" else 1, **args)


def test_conv_gradient_with_no_bias_has_at_most_two_outputs():
    with pytest.raises(ShapeError, match="with no_bias=1 the outputs are dfilter and dX, got 3"):
        infer("ConvGradient", [(1, 1, 4, 4), (1, 1, 3, 3), (1, 1, 2, 2)], n_out=3, no_bias=1)
