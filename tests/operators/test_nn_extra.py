"""nn_extra family (Hardmax, MaxPoolWithArgmax, MaxUnpool, MeanVarianceNormalization,
Col2ImND, DeformConv): each op against loop references written here from ONNX's
definitions, shape inference against the kernels, and errors (one message from
inference and the kernel)."""
import itertools

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, run_op
from tests.schema import infer


def randn(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- Hardmax ----------------------------------------------------------------------------------

def hardmax_reference(x, axis=-1):
    moved = np.moveaxis(x, axis, -1)
    y = np.zeros_like(moved)
    for index in np.ndindex(*moved.shape[:-1]):
        row = moved[index]
        y[index + (int(np.argmax(row)),)] = 1  # np.argmax: the first of ties
    return np.moveaxis(y, -1, axis)


@pytest.mark.parametrize("shape, axis", [((3, 4), -1), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -2), ((5,), 0)])
def test_hardmax(shape, axis):
    check_reference("Hardmax", [randn(shape, 1)], hardmax_reference, {"axis": axis})


def test_hardmax_ties_take_the_first():
    x = np.array([[1, 3, 3], [2, 2, 2]], np.float32)
    (y,) = run_op("Hardmax", [x])
    np.testing.assert_array_equal(y, [[0, 1, 0], [1, 0, 0]])


# ---- MaxPoolWithArgmax and MaxUnpool ----------------------------------------------------------

def argmax_pool_reference(x, kernels, strides=None, pads=None, dilations=None, storage_order=0):
    nd = x.ndim - 2
    strides, dilations = strides or [1] * nd, dilations or [1] * nd
    pads = pads or [0] * (2 * nd)
    out = [(s + pads[a] + pads[nd + a] - dilations[a] * (k - 1) - 1) // strides[a] + 1
           for a, (s, k) in enumerate(zip(x.shape[2:], kernels))]
    y = np.zeros(x.shape[:2] + tuple(out), x.dtype)
    index = np.zeros(y.shape, np.int64)
    for n, c, *o in itertools.product(*map(range, y.shape)):
        best, where = None, None
        for k in itertools.product(*map(range, kernels)):
            cell = [o[a] * strides[a] - pads[a] + k[a] * dilations[a] for a in range(nd)]
            if all(0 <= v < s for v, s in zip(cell, x.shape[2:])) and (best is None or x[(n, c, *cell)] > best):
                best, where = x[(n, c, *cell)], cell
        y[(n, c, *o)] = best
        if storage_order:
            flat = where[0] + where[1] * x.shape[2]
        else:
            flat = int(np.ravel_multi_index(where, x.shape[2:]))
        index[(n, c, *o)] = (n * x.shape[1] + c) * int(np.prod(x.shape[2:])) + flat
    return y, index


ARGMAX_CASES = [
    ((1, 2, 5, 5), {"kernels": [2, 2], "strides": [2, 2]}),
    ((2, 1, 6, 5), {"kernels": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]}),
    ((1, 2, 7, 6), {"kernels": [2, 2], "dilations": [2, 1], "storage_order": 1}),
    ((1, 3, 9), {"kernels": [3], "strides": [2], "pads": [1, 1]}),
    ((1, 1, 4, 4, 5), {"kernels": [2, 2, 3], "strides": [1, 2, 2]}),
]


@pytest.mark.parametrize("shape, args", ARGMAX_CASES)
def test_max_pool_with_argmax(shape, args):
    check_reference("MaxPoolWithArgmax", [randn(shape, 2)], argmax_pool_reference, args)


@pytest.mark.parametrize("shape, args", ARGMAX_CASES[:3])
def test_max_pool_with_argmax_gradient(shape, args):
    x = np.random.default_rng(13).permutation(int(np.prod(shape))).reshape(shape) * 0.01  # no near ties
    y, indices = run_op("MaxPoolWithArgmax", [x], args, num_outputs=2)
    dy = randn(y.shape, 14).astype(np.float64)
    check_gradient_op("MaxPoolWithArgmax", [x], "MaxPoolWithArgmaxGradient", [x, indices, dy], {0: 0},
                      [dy, None], args, num_outputs=2, atol=1e-6, rtol=1e-6)


def test_max_pool_with_argmax_integers():
    x = np.random.default_rng(3).integers(0, 255, (1, 2, 4, 4)).astype(np.uint8)
    check_reference("MaxPoolWithArgmax", [x], argmax_pool_reference, {"kernels": [2, 2], "strides": [2, 2]})


def unpool_reference(x, indices, kernels, strides=None, pads=None, output_shape=None):
    nd = x.ndim - 2
    strides, pads = strides or [1] * nd, pads or [0] * (2 * nd)
    unpooled = list(x.shape[:2]) + [(s - 1) * st - pads[a] - pads[nd + a] + k
                                    for a, (s, st, k) in enumerate(zip(x.shape[2:], strides, kernels))]
    flat = np.zeros(int(np.prod(unpooled)), x.dtype)
    for value, where in zip(x.ravel(), indices.ravel()):
        flat[where] = value
    y = np.zeros(output_shape or unpooled, x.dtype)
    y[tuple(slice(0, n) for n in unpooled)] = flat.reshape(unpooled)
    return y


@pytest.mark.parametrize("output_shape", [None, [1, 2, 6, 7]])
def test_max_unpool(output_shape):
    x = randn((1, 2, 4, 4), 4)
    y, indices = run_op("MaxPoolWithArgmax", [x], {"kernels": [2, 2], "strides": [2, 2]}, num_outputs=2)
    args = {"kernels": [2, 2], "strides": [2, 2]}
    if output_shape:
        args["output_shape"] = output_shape
    check_reference("MaxUnpool", [y, indices], unpool_reference, args)


# ---- MeanVarianceNormalization -----------------------------------------------------------------

def mvn_reference(x, axes=(0, 2, 3)):
    mean = x.mean(axis=tuple(axes), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=tuple(axes), keepdims=True)
    return (x - mean) / (np.sqrt(var) + 1e-9)


@pytest.mark.parametrize("shape, axes", [((2, 3, 4, 5), [0, 2, 3]), ((3, 4), [1]), ((2, 3, 4), [-1, 0])])
def test_mean_variance_normalization(shape, axes):
    check_reference("MeanVarianceNormalization", [randn(shape, 5)], mvn_reference, {"axes": axes}, atol=1e-4)


# ---- Col2ImND ----------------------------------------------------------------------------------

def col2im_reference(x, image_shape, block_shape, dilations=None, pads=None, strides=None):
    nd = len(image_shape)
    dilations, strides = dilations or [1] * nd, strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    out = [(i + pads[a] + pads[nd + a] - dilations[a] * (b - 1) - 1) // strides[a] + 1
           for a, (i, b) in enumerate(zip(image_shape, block_shape))]
    n, c = x.shape[0], x.shape[1] // int(np.prod(block_shape))
    y = np.zeros((n, c, *image_shape), np.float64)
    columns = x.reshape(n, c, int(np.prod(block_shape)), -1)
    for ch in range(c):
        for bi, b in enumerate(itertools.product(*map(range, block_shape))):
            for li, o in enumerate(itertools.product(*map(range, out))):
                cell = [o[a] * strides[a] - pads[a] + b[a] * dilations[a] for a in range(nd)]
                if all(0 <= v < s for v, s in zip(cell, image_shape)):
                    y[(slice(None), ch, *cell)] += columns[:, ch, bi, li]
    return y


COL2IM_CASES = [
    ((1, 5, 5), {"image_shape": [5, 5], "block_shape": [1, 5]}),
    ((1, 4, 16), {"image_shape": [4, 4], "block_shape": [2, 2], "pads": [1, 1, 0, 0], "strides": [1, 1]}),
    ((2, 8, 4), {"image_shape": [5, 5], "block_shape": [2, 2], "strides": [2, 2], "dilations": [2, 2], "pads": [1, 0, 0, 1]}),
    ((1, 6, 8), {"image_shape": [3, 3, 4], "block_shape": [2, 1, 3], "strides": [1, 2, 1]}),
]


@pytest.mark.parametrize("shape, args", COL2IM_CASES)
def test_col2im_nd(shape, args):
    check_reference("Col2ImND", [randn(shape, 6)], col2im_reference, args)


@pytest.mark.parametrize("shape, args", COL2IM_CASES)
def test_col2im_nd_gradient(shape, args):
    x = randn(shape, 15).astype(np.float64)
    (y,) = run_op("Col2ImND", [x], args)
    dy = randn(y.shape, 16).astype(np.float64)
    check_gradient_op("Col2ImND", [x], "Col2ImNDGradient", [dy], {0: 0}, [dy], args, atol=1e-6, rtol=1e-6)


# ---- DeformConv --------------------------------------------------------------------------------

def bilinear_or_zero(plane, h, w):
    total = 0.0
    for y in (int(np.floor(h)), int(np.floor(h)) + 1):
        for x in (int(np.floor(w)), int(np.floor(w)) + 1):
            if 0 <= y < plane.shape[0] and 0 <= x < plane.shape[1]:
                total += (1 - abs(h - y)) * (1 - abs(w - x)) * plane[y, x]
    return total


def deform_reference(x, w, offset, bias=None, mask=None, group=1, offset_group=1, dilations=(1, 1),
                     pads=(0, 0, 0, 0), strides=(1, 1)):
    n, c, _, _ = x.shape
    m, cg, kh, kw = w.shape
    oh, ow = offset.shape[2:]
    off = offset.reshape(n, offset_group, kh, kw, 2, oh, ow)
    msk = np.ones((n, offset_group, kh, kw, oh, ow)) if mask is None else mask.reshape(n, offset_group, kh, kw, oh, ow)
    y = np.zeros((n, m, oh, ow))
    for b, mo, i, j in itertools.product(range(n), range(m), range(oh), range(ow)):
        g = mo // (m // group)
        for ci in range(cg):
            ch = g * cg + ci
            og = ch // (c // offset_group)
            for ki, kj in itertools.product(range(kh), range(kw)):
                h = i * strides[0] - pads[0] + ki * dilations[0] + off[b, og, ki, kj, 0, i, j]
                v = j * strides[1] - pads[1] + kj * dilations[1] + off[b, og, ki, kj, 1, i, j]
                y[b, mo, i, j] += w[mo, ci, ki, kj] * msk[b, og, ki, kj, i, j] * bilinear_or_zero(x[b, ch], h, v)
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


@pytest.mark.parametrize("with_bias, with_mask, group, offset_group, args", [
    (False, False, 1, 1, {}),
    (True, True, 1, 2, {"pads": [1, 1, 1, 1]}),
    (True, False, 2, 1, {"strides": [2, 1], "dilations": [1, 2], "pads": [0, 1, 1, 0]}),
])
def test_deform_conv(with_bias, with_mask, group, offset_group, args):
    x, w = randn((2, 4, 5, 5), 7), randn((4, 4 // group, 2, 2), 8)
    dil, pads, st = args.get("dilations", [1, 1]), args.get("pads", [0] * 4), args.get("strides", [1, 1])
    out = [(s + pads[a] + pads[a + 2] - dil[a] - 1) // st[a] + 1 for a, s in enumerate((5, 5))]
    offset = randn((2, offset_group * 8, *out), 9)
    inputs = [x, w, offset]
    if with_bias or with_mask:
        inputs.append(randn((4,), 10) if with_bias else np.zeros(4, np.float32))
    if with_mask:
        inputs.append(np.random.default_rng(11).uniform(size=(2, offset_group * 4, *out)).astype(np.float32))
    check_reference("DeformConv", inputs, deform_reference, {"group": group, "offset_group": offset_group, **args})


# ---- shape inference and errors ------------------------------------------------------------------

INFERENCE_CASES = [
    ("Hardmax", [(2, 3)], {"axis": 0}),
    ("MaxPoolWithArgmax", [(1, 2, 5, 6)], {"kernels": [3, 2], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MeanVarianceNormalization", [(2, 3, 4, 2)], {}),
    ("Col2ImND", [(1, 8, 9)], {"image_shape": [4, 4], "block_shape": [2, 2]}),
]


@pytest.mark.parametrize("op_type, shapes, args", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_matches_the_kernel(op_type, shapes, args):
    got = run_op(op_type, [randn(s, 12) for s in shapes], args,
                 num_outputs=2 if op_type == "MaxPoolWithArgmax" else None)
    assert infer(op_type, shapes, n_out=len(got), **args) == [TensorInfo(v.shape, v.dtype.name) for v in got]


def test_inference_of_max_unpool_and_deform_conv():
    i = TensorInfo((1, 2, 3, 3), "int64")
    assert infer("MaxUnpool", [(1, 2, 3, 3), i], kernels=[2, 2], strides=[2, 2]) == [
        TensorInfo((1, 2, 6, 6), "float32")]
    assert infer("DeformConv", [(1, 4, 5, 5), (6, 2, 3, 3), (1, 18, 3, 3)], group=2) == [
        TensorInfo((1, 6, 3, 3), "float32")]


# (op type, inputs, args, message)
ERRORS = [
    ("Col2ImNDGradient", lambda: [randn((1, 2, 4, 5))], {"image_shape": [4, 4], "block_shape": [2, 2]},
     r"dY \[1, 2, 4, 5\] must be \[N, C, 4, 4\]"),
    ("MaxPoolWithArgmaxGradient", lambda: [randn((1, 2, 4, 4)), np.zeros((1, 2, 2, 2), np.int64), randn((1, 2, 2, 3))],
     {}, r"Indices \[1, 2, 2, 2\] and dY \[1, 2, 2, 3\] must have one shape"),
    ("Hardmax", lambda: [randn((2, 3))], {"axis": 2}, r"axis 2 is out of range for X \[2, 3\]"),
    ("MaxPoolWithArgmax", lambda: [randn((1, 1, 4))], {"kernels": [2], "storage_order": 1},
     r"storage_order 1 is for 2-D pooling, X is \[1, 1, 4\]"),
    ("MaxUnpool", lambda: [randn((1, 1, 2, 2)), np.zeros((1, 1, 2, 3), np.int64)], {"kernels": [2, 2]},
     r"Indices \[1, 1, 2, 3\] must have X's shape \[1, 1, 2, 2\]"),
    ("MaxUnpool", lambda: [randn((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64)],
     {"kernels": [2, 2], "output_shape": [1, 1, 2, 2]},
     r"output_shape \[1, 1, 2, 2\] must hold the unpooled shape \[1, 1, 3, 3\]"),
    ("MeanVarianceNormalization", lambda: [randn((2, 3))], {"axes": [0, 0]}, r"axes \[0, 0\] must be distinct"),
    ("Col2ImND", lambda: [randn((1, 4, 8))], {"image_shape": [4, 4], "block_shape": [2, 2]},
     r"X \[1, 4, 8\] has 8 columns but the windows number 9 \(\[3, 3\]\)"),
    ("DeformConv", lambda: [randn((1, 2, 4, 4)), randn((2, 2, 2, 2)), randn((1, 8, 2, 2))], {},
     r"offset \[1, 8, 2, 2\] must be \[1, 8, 3, 3\]"),
]


@pytest.mark.parametrize("op_type, make_inputs, args, message", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, args, message):
    inputs = make_inputs()
    n_out = 2 if op_type == "MaxPoolWithArgmax" else 1
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], n_out=n_out, **args)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args, num_outputs=n_out)


def test_max_unpool_refuses_indices_out_of_range():
    with pytest.raises((OpFailure, NetError), match=r"Indices must lie in \[0, 9\)"):
        run_op("MaxUnpool", [randn((1, 1, 2, 2)), np.full((1, 1, 2, 2), 9, np.int64)], {"kernels": [2, 2]})
