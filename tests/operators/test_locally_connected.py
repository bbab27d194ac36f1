"""Locally connected family (LC, LC1D/LC2D/LC3D and LCGradient with its aliases):
each op against a loop-over-positions NumPy reference in NCHW and NHWC at 1 to 3
spatial dims, with strides, pads, dilation and groups; the gradient op against
numeric differentiation; Caffe2's gradient maker; shape inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def out_size(size, k, s=1, d=1, head=0, tail=0):
    return (size + head + tail - (d * (k - 1) + 1)) // s + 1


def ref_lc(x, w, b=None, stride=None, dilation=None, pads=None, group=1, order="NCHW"):
    """LC by loops over output positions and groups (float64)."""
    nd = x.ndim - 2
    if order == "NHWC":
        x, w = np.moveaxis(x, -1, 1), np.moveaxis(w, -1, nd + 1)
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pads = pads or (0,) * (2 * nd)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(zip(pads[:nd], pads[nd:])))
    out, m, kernel = w.shape[:nd], w.shape[nd], w.shape[nd + 2:]
    y = np.zeros((x.shape[0], m, *out))
    cg, mg = x.shape[1] // group, m // group
    for pos in np.ndindex(*out):
        cells = tuple(slice(p * s, p * s + d * (k - 1) + 1, d) for p, k, s, d in zip(pos, kernel, stride, dilation))
        patch = xp[(slice(None), slice(None)) + cells]
        for g in range(group):
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + pos] = np.tensordot(
                patch[:, g * cg:(g + 1) * cg], w[pos][g * mg:(g + 1) * mg], axes=(range(1, 2 + nd), range(1, 2 + nd)))
        if b is not None:
            y[(slice(None), slice(None)) + pos] += b[pos]
    return [y if order == "NCHW" else np.moveaxis(y, 1, -1)]


def filter_shape(out, m, cg, kernel, order):
    return (*out, m, cg, *kernel) if order == "NCHW" else (*out, m, *kernel, cg)


# (op, X [N, C, spatial...], M, kernel, args, reference kwargs)
CASES = [
    ("LC", (2, 3, 5, 4), 2, (2, 2), {}, {}),
    ("LC2D", (1, 2, 4, 5), 3, (3, 2), {"order": "NHWC"}, {}),
    ("LC1D", (2, 3, 6), 2, (2,), {}, {}),
    ("LC3D", (1, 2, 3, 3, 4), 2, (2, 2, 2), {}, {}),
    ("LC", (2, 2, 6, 7), 2, (3, 2), {"strides": [2, 1], "pads": [1, 0, 0, 1], "dilations": [1, 2]},
     {"stride": (2, 1), "pads": (1, 0, 0, 1), "dilation": (1, 2)}),
    ("LC", (1, 4, 4, 4), 6, (2, 2), {"group": 2}, {"group": 2}),
    ("LC", (1, 4, 5, 4), 2, (2, 3), {"group": 2, "order": "NHWC", "pad": 1}, {"group": 2, "pads": (1,) * 4}),
]


def _inputs(x_shape, m, kernel, args, ref_args, with_bias, dtype=np.float32):
    order = args.get("order", "NCHW")
    nd = len(x_shape) - 2
    stride, dilation = ref_args.get("stride", (1,) * nd), ref_args.get("dilation", (1,) * nd)
    pads = ref_args.get("pads", (0,) * (2 * nd))
    out = tuple(out_size(x_shape[2 + a], kernel[a], stride[a], dilation[a], pads[a], pads[nd + a]) for a in range(nd))
    x = randn(*x_shape, dtype=dtype)
    if order == "NHWC":
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    w = randn(*filter_shape(out, m, x_shape[1] // ref_args.get("group", 1), kernel, order), dtype=dtype)
    return [x, w] + ([randn(*out, m, dtype=dtype)] if with_bias else [])


@pytest.mark.parametrize("op_type, x_shape, m, kernel, args, ref_args", CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_lc_matches_reference(op_type, x_shape, m, kernel, args, ref_args, with_bias):
    inputs = _inputs(x_shape, m, kernel, args, ref_args, with_bias)
    check_reference(op_type, inputs, lambda *a, **_: ref_lc(*a, order=args.get("order", "NCHW"), **ref_args),
                    {**args, "kernels": list(kernel)})


@pytest.mark.parametrize("op_type, x_shape, m, kernel, args, ref_args", CASES)
def test_lc_gradient_matches_numeric(op_type, x_shape, m, kernel, args, ref_args):
    x, w, b = _inputs(x_shape, m, kernel, args, ref_args, True, dtype=np.float64)
    dy = randn(*run_op(op_type, [x, w, b], args)[0].shape, dtype=np.float64)
    dw, _, dx = check_gradient_op(op_type, [x, w, b], op_type + "Gradient", [x, w, dy], {0: 1, 1: 2, 2: 0},
                                  [dy], args, atol=1e-5, rtol=1e-5)
    # without a bias: dfilter, dX
    got = run_op(op_type + "Gradient", [x, w, dy], {**args, "no_bias": 1}, num_outputs=2)
    np.testing.assert_allclose(got[0], dw)
    np.testing.assert_allclose(got[1], dx)


def test_lc_gradient_without_dx():
    x, w = _inputs((1, 2, 4, 4), 2, (2, 2), {}, {}, False, dtype=np.float64)
    dy = randn(1, 2, 3, 3, dtype=np.float64)
    dw, db = run_op("LCGradient", [x, w, dy], num_outputs=2)
    assert dw.shape == w.shape and db.shape == (3, 3, 2)
    np.testing.assert_allclose(db, np.moveaxis(dy.sum(0), 0, -1))


@pytest.mark.parametrize("op_type", ["LC", "LC1D", "LC2D", "LC3D"])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("no_gradient_to_input", [0, 1])
def test_lc_maker_outputs(op_type, with_bias, no_gradient_to_input):
    inputs = ["X", "W", "b"][:2 + with_bias]
    op = make_op(op_type, inputs, ["Y"], {"no_gradient_to_input": no_gradient_to_input})
    (grad,), g_input = GetGradientForOp(op, ["Y_grad"])
    expected = ["W_grad"] + ["b_grad"] * with_bias + ["X_grad"] * (1 - no_gradient_to_input)
    assert (grad.type, list(grad.input), list(grad.output)) == ("LCGradient", ["X", "W", "Y_grad"], expected)
    assert any(a.name == "no_bias" and a.i == 1 for a in grad.arg) == (not with_bias)
    assert g_input == [None if no_gradient_to_input else "X_grad", "W_grad"] + ["b_grad"] * with_bias


# -- shape inference ---------------------------------------------------------------------------

def test_lc_inference():
    assert infer("LC", [(2, 3, 5, 4), (4, 3, 2, 3, 2, 2), (4, 3, 2)]) == [TensorInfo((2, 2, 4, 3))]
    assert infer("LC", [(2, 5, 4, 3), (4, 3, 2, 2, 2, 3)], order="NHWC") == [TensorInfo((2, 4, 3, 2))]
    assert infer("LC1D", [(2, 3, 6), (2, 2, 3, 4)], stride=2) == [TensorInfo((2, 2, 2))]
    assert infer("LC", [None, (4, 3, 2, 3, 2, 2)]) == [None]
    dw, db, dx = infer("LCGradient", [(2, 3, 5, 4), (4, 3, 2, 3, 2, 2), (2, 2, 4, 3)], n_out=3)
    assert (dw.shape, db.shape, dx.shape) == ((4, 3, 2, 3, 2, 2), (4, 3, 2), (2, 3, 5, 4))
    dw, dx = infer("LCGradient", [(2, 3, 5, 4), (4, 3, 2, 3, 2, 2), (2, 2, 4, 3)], n_out=2, no_bias=1)
    assert (dw.shape, dx.shape) == ((4, 3, 2, 3, 2, 2), (2, 3, 5, 4))


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("LC", [(2, 3), (1, 1)], {}, r"X \[2, 3\] must be \[N, C, spatial...\]"),
    ("LC", [(2, 3, 5, 4), (4, 3, 2, 3, 2)], {}, r"must be \[out..., M, C/group, kernel...\]: rank 6"),
    ("LC", [(2, 3, 5, 4), (4, 3, 2, 2, 2, 2)], {}, "has 3 channels but filter"),
    ("LC", [(2, 4, 5, 4), (4, 3, 3, 2, 2, 2)], {"group": 2}, "does not divide the filter's M = 3"),
    ("LC", [(2, 3, 5, 4), (3, 3, 2, 3, 2, 2)], {}, r"output positions \[3, 3\] but the window gives \[4, 3\]"),
    ("LC", [(2, 3, 5, 4), (4, 3, 2, 3, 2, 2)], {"kernel": 3}, "the kernel args give"),
    ("LC", [(2, 3, 5, 4), (4, 3, 2, 3, 2, 2), (2,)], {}, r"bias is \[2\] but must be \[out..., M\]"),
    ("LC", [(2, 3, 1, 4), (4, 3, 2, 3, 2, 2)], {}, "larger than X"),
    ("LCGradient", [(2, 3, 5, 4), (4, 3, 2, 3, 2, 2), (2, 2, 3, 3)], {}, r"dY is \[2, 2, 3, 3\] but Y"),
])
def test_lc_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out=3 if op_type == "LCGradient" else 1, **args)
    inputs = [np.zeros(s, np.float32) for s in shapes]
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, num_outputs=3 if op_type == "LCGradient" else 1)
