"""Tensor_extra family (ONNX's layout ops Caffe2 lacks): Pad (+PadGradient), Trilu,
EyeLike, DepthToSpace, SpaceToDepth, CenterCropPad and CastLike against NumPy
references written here, gradients against numeric differentiation, inference rows
and error rows (the same words at CreateNet and at run time)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

FAILS = (OpFailure, NetError, ShapeError)
RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def i64(*values):
    return np.array(values, np.int64)


# -- Pad ------------------------------------------------------------------------------------

def reference_pad(x, pads, mode="constant", value=0.0, axes=None):
    """Crop the negative pads away, then np.pad the rest."""
    axes = [a % x.ndim for a in axes] if axes else list(range(x.ndim))
    widths = [(0, 0)] * x.ndim
    for i, axis in enumerate(axes):
        widths[axis] = (pads[i], pads[i + len(axes)])
    crop = tuple(slice(max(-b, 0), x.shape[d] - max(-a, 0)) for d, (b, a) in enumerate(widths))
    positive = [(max(b, 0), max(a, 0)) for b, a in widths]
    if mode == "constant":
        return np.pad(x[crop], positive, mode, constant_values=value)
    return np.pad(x[crop], positive, mode)


PAD_CASES = [
    ((3, 4), [1, 2, 2, 1], None), ((2, 3, 4), [0, 1, 0, 1, 2, 0], None), ((5,), [3, 4], None),
    ((3, 4), [-1, 1, 0, -2], None), ((2, 3, 4), [2, -1], [-1]), ((2, 3, 4), [1, 0, 0, 2], [0, 2]),
    ((3, 2), [4, 5, 0, 0], None),  # pads wider than the dim: repeated reflections and wraps
]


@pytest.mark.parametrize("dims, pads, axes", PAD_CASES)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes_against_numpy(dims, pads, axes, mode):
    x = rand(*dims)
    args = {"mode": mode, "pads": pads, **({"axes": axes} if axes else {})}
    (y,) = check_reference("Pad", [x], lambda x, **_: reference_pad(x, pads, mode, axes=axes), args)
    inputs = [x, i64(*pads), np.array(0.0, np.float32)] + ([i64(*axes)] if axes else [])
    check_reference("Pad", inputs, lambda *_, **__: y, {"mode": mode})


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64, np.bool_, np.uint8])
def test_pad_constant_value_keeps_the_type(dtype):
    x = (np.arange(6).reshape(2, 3) % 2).astype(dtype)
    fill = np.array([1], dtype)
    (y,) = check_reference("Pad", [x, i64(1, 0, 0, 2), fill],
                           lambda *_: np.pad(x, [(1, 0), (0, 2)], constant_values=dtype(1)))
    assert y.dtype == dtype
    (z,) = run_op("Pad", [x], {"pads": [0, 1, 0, 0], "value": 1.0})
    assert z.dtype == dtype and z[0, 0] == dtype(1)


def test_pad_empty_dims():
    x = rand(0, 3)
    check_reference("Pad", [x], lambda x, **_: np.pad(x, [(1, 1), (0, 0)]), {"pads": [1, 0, 1, 0]})
    check_reference("Pad", [rand(2, 3)], lambda x, **_: x[:, :0], {"pads": [0, -2, 0, -1], "mode": "edge"})


@pytest.mark.parametrize("inputs, args, message", [
    ([rand(2, 3)], {"pads": [1, 1]}, r"pads \[1, 1\] has 2 entries, 4 needed"),
    ([rand(2, 3)], {"pads": [0, -4, 0, 0]}, r"crop more than the dim's 3 elements"),
    ([rand(0, 3)], {"pads": [1, 0, 0, 0], "mode": "edge"}, "mode edge cannot pad an empty dim"),
    ([rand(2, 3)], {"pads": [1, 1], "axes": [2]}, "axes entry 2 is out of range"),
    ([rand(2, 3)], {"pads": [1, 1, 1, 1], "axes": [0, -2]}, "name a dim twice"),
    ([rand(2, 3)], {}, "needs the `pads` arg"),
    ([rand(2, 3), i64(1, 1, 1, 1)], {"pads": [1, 1, 1, 1]}, "do not also give"),
    ([rand(2, 3), np.ones(4, np.float32)], {}, "input pads must be a 1-D int tensor"),
    ([rand(2, 3), i64(0, 0, 0, 0), np.ones(2, np.float32)], {}, "input constant_value must hold one value"),
    ([rand(2, 3)], {"pads": [0, 1 << 40, 0, 0]}, "over the"),
])
def test_pad_errors(inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op("Pad", inputs, args)


@pytest.mark.parametrize("dims, pads, axes", PAD_CASES)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_gradient(dims, pads, axes, mode):
    x = rand(*dims)
    args = {"mode": mode, "pads": pads, **({"axes": axes} if axes else {})}
    (y,) = run_op("Pad", [x], args)
    dy = rand(*y.shape)
    check_gradient_op("Pad", [x], "PadGradient", [dy], {0: 0}, [dy], args)
    check_gradient_op("Pad", [x, i64(*pads)], "PadGradient", [dy, i64(*pads)], {0: 0}, [dy], {"mode": mode,
                      **({"axes": axes} if axes else {})})


def test_pad_gradient_maker():
    op = make_op("Pad", ["X", "pads", "v"], ["Y"], {"mode": "wrap"})
    grads, g_input = GetGradientForOp(op, ["Y_grad"])
    assert [(g.type, list(g.input)) for g in grads] == [("PadGradient", ["Y_grad", "pads", "v"])]
    assert g_input[0] == "X_grad"
    report = check_op_gradient(make_op("Pad", ["X"], ["Y"], {"pads": [1, 2, 0, 1], "mode": "reflect"}),
                               [rand(3, 4)], 0)
    assert report.ok


def test_pad_inference():
    assert infer("Pad", [(2, 3)], pads=[1, 0, 2, -1]) == [TensorInfo((5, 2))]
    assert infer("Pad", [(2, 3, 4)], pads=[1, 1], axes=[-2]) == [TensorInfo((2, 5, 4))]
    assert infer("Pad", [(2, 3), TensorInfo((4,), "int64")]) == [None]
    assert infer("Pad", [None], pads=[1, 1]) == [None]
    assert infer("PadGradient", [(5, 2)], pads=[1, 0, 2, -1]) == [TensorInfo((2, 3))]
    with pytest.raises(ShapeError, match="4 needed"):
        infer("Pad", [(2, 3)], pads=[1, 1, 1])
    with pytest.raises(ShapeError, match="input pads must be a 1-D int tensor"):
        infer("Pad", [(2, 3), TensorInfo((4,), "float32")])
    with pytest.raises(ShapeError, match="smaller than its pads"):
        infer("PadGradient", [(1, 2)], pads=[1, 0, 2, 0])


# -- Trilu, EyeLike ---------------------------------------------------------------------------

@pytest.mark.parametrize("dims", [(4, 5), (3, 3), (2, 3, 4), (1, 5), (5, 1)])
@pytest.mark.parametrize("k", [-7, -1, 0, 1, 2, 9])
@pytest.mark.parametrize("upper", [0, 1])
def test_trilu(dims, k, upper):
    x = rand(*dims)
    rows, cols = np.indices(dims[-2:])
    keep = (cols - rows >= k) if upper else (cols - rows <= k)
    expected = np.where(keep, x, 0)
    check_reference("Trilu", [x], lambda x, **_: expected, {"upper": upper, "k": k})
    check_reference("Trilu", [x, np.array(k, np.int64)], lambda *_, **__: expected, {"upper": upper})
    check_reference("Trilu", [x.astype(np.int32), i64(k)], lambda *_, **__: expected.astype(np.int32),
                    {"upper": upper})


def test_trilu_gradient_and_errors():
    x = rand(3, 4)
    dy = rand(3, 4)
    check_gradient_op("Trilu", [x], "Trilu", [dy], {0: 0}, [dy], {"k": 1, "upper": 0})
    grads, _ = GetGradientForOp(make_op("Trilu", ["X", "k"], ["Y"], {"upper": 0}), ["Y_grad"])
    assert [(g.type, list(g.input)) for g in grads] == [("Trilu", ["Y_grad", "k"])]
    with pytest.raises(FAILS, match=r"input \[4\] must have at least 2 dims"):
        run_op("Trilu", [rand(4)])
    with pytest.raises(FAILS, match="input k must hold one value"):
        run_op("Trilu", [x, i64(1, 2)])
    with pytest.raises(FAILS, match="input k must be an int tensor"):
        run_op("Trilu", [x, np.array(1.0)])
    assert infer("Trilu", [(2, 3, 4)]) == [TensorInfo((2, 3, 4))]
    assert infer("Trilu", [None]) == [None]


@pytest.mark.parametrize("dims, k, dtype, expected_dtype", [
    ((3, 4), 0, None, np.float32), ((4, 3), 1, "INT32", np.int32), ((3, 3), -2, 13, np.float64),
    ((2, 5), 7, "UINT64", np.uint64), ((3, 2), 0, "BOOL", np.bool_),
])
def test_eye_like(dims, k, dtype, expected_dtype):
    x = rand(*dims)
    rows, cols = np.indices(dims)
    expected = (cols - rows == k).astype(expected_dtype)
    args = {"k": k, **({"dtype": dtype} if dtype is not None else {})}
    (y,) = check_reference("EyeLike", [x], lambda x, **_: expected, args)
    assert y.dtype == expected_dtype
    assert run_op("EyeLike", [x.astype(np.int64)])[0].dtype == np.int64


def test_eye_like_errors():
    with pytest.raises(FAILS, match=r"input \[2, 3, 4\] must be 2-D"):
        run_op("EyeLike", [rand(2, 3, 4)])
    with pytest.raises(FAILS, match="not a data type"):
        run_op("EyeLike", [rand(2, 3)], {"dtype": "COMPLEX"})
    assert infer("EyeLike", [TensorInfo((2, 3), "int64")]) == [TensorInfo((2, 3), "int64")]
    assert infer("EyeLike", [None]) == [None]


# -- DepthToSpace, SpaceToDepth -------------------------------------------------------------------

def reference_depth_to_space(x, blocksize, mode):
    """Element by element: output (n, c, h, w) reads its channel from the block position."""
    n, c, h, w = x.shape
    b, out_c = blocksize, c // (blocksize * blocksize)
    y = np.empty((n, out_c, h * b, w * b), x.dtype)
    for ci in range(out_c):
        for i in range(b):
            for j in range(b):
                channel = (i * b + j) * out_c + ci if mode == "DCR" else ci * b * b + i * b + j
                y[:, ci, i::b, j::b] = x[:, channel]
    return y


@pytest.mark.parametrize("dims, blocksize", [((1, 8, 2, 3), 2), ((2, 9, 1, 2), 3), ((1, 3, 2, 2), 1)])
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space_and_back(dims, blocksize, mode):
    x = rand(*dims)
    args = {"blocksize": blocksize, "mode": mode}
    (y,) = check_reference("DepthToSpace", [x], lambda x, **_: reference_depth_to_space(x, blocksize, mode), args)
    check_reference("SpaceToDepth", [y], lambda y, **_: x, args)
    dy = rand(*y.shape)
    check_gradient_op("DepthToSpace", [x], "SpaceToDepth", [dy], {0: 0}, [dy], args)
    check_gradient_op("SpaceToDepth", [y], "DepthToSpace", [x], {0: 0}, [x], args)


def test_depth_to_space_errors_and_inference():
    with pytest.raises(FAILS, match="blocksize\\^2 = 4 does not divide the 6 channels"):
        run_op("DepthToSpace", [rand(1, 6, 2, 2)], {"blocksize": 2})
    with pytest.raises(FAILS, match="blocksize 2 does not divide H 3 and W 2"):
        run_op("SpaceToDepth", [rand(1, 1, 3, 2)], {"blocksize": 2})
    with pytest.raises(FAILS, match=r"must be 4-D \(NCHW\)"):
        run_op("SpaceToDepth", [rand(4, 4)], {"blocksize": 2})
    assert infer("DepthToSpace", [(1, 8, 2, 3)], blocksize=2) == [TensorInfo((1, 2, 4, 6))]
    assert infer("SpaceToDepth", [(1, 2, 4, 6)], blocksize=2) == [TensorInfo((1, 8, 2, 3))]
    assert infer("SpaceToDepth", [None], blocksize=2) == [None]


# -- CenterCropPad, CastLike ------------------------------------------------------------------------

def reference_center_crop_pad(x, sizes, axes=None):
    """Crop each axis from floor((dim - size) / 2), or zero-pad with the odd element at the end."""
    axes = [a % x.ndim for a in axes] if axes else list(range(x.ndim))
    for axis, size in zip(axes, sizes):
        dim = x.shape[axis]
        if size <= dim:
            x = np.take(x, np.arange((dim - size) // 2, (dim - size) // 2 + size), axis=axis)
        else:
            widths = [(0, 0)] * x.ndim
            widths[axis] = ((size - dim) // 2, size - dim - (size - dim) // 2)
            x = np.pad(x, widths)
    return x


@pytest.mark.parametrize("dims, sizes, axes", [
    ((5, 6), [3, 9], None), ((4, 7, 3), [2, 4], [0, 1]), ((4, 7, 3), [8, 2], [-3, -2]),
    ((3, 3), [3, 3], None), ((2, 5), [0, 4], None),
])
def test_center_crop_pad(dims, sizes, axes):
    x = rand(*dims)
    args = {"axes": axes} if axes else {}
    check_reference("CenterCropPad", [x, i64(*sizes)],
                    lambda x, s, **_: reference_center_crop_pad(x, sizes, axes), args)
    report = check_op_gradient(make_op("CenterCropPad", ["X", "S"], ["Y"], args), [x, i64(*sizes)], 0)
    assert report.ok


def test_center_crop_pad_errors_and_inference():
    with pytest.raises(FAILS, match="shape has 1 sizes for 2 axes"):
        run_op("CenterCropPad", [rand(2, 3), i64(4)])
    with pytest.raises(FAILS, match="negative size"):
        run_op("CenterCropPad", [rand(2, 3), i64(4, -1)])
    with pytest.raises(ShapeError, match="shape has 1 sizes for 2 axes"):
        infer("CenterCropPad", [(2, 3), TensorInfo((1,), "int64")])
    assert infer("CenterCropPad", [(2, 3), TensorInfo((2,), "int64")]) == [None]


@pytest.mark.parametrize("src, dst", [(np.float32, np.float16), (np.float64, np.int8), (np.int64, np.uint32),
                                      (np.float32, np.bool_), (np.uint8, np.float64)])
def test_cast_like(src, dst):
    x = (rand(2, 3) * 10).astype(src)
    (y,) = check_reference("CastLike", [x, np.zeros(1, dst)], lambda x, t: x.astype(dst))
    assert y.dtype == dst
    dy = rand(2, 3)
    check_gradient_op("CastLike", [x.astype(np.float64), np.zeros(1, np.float32)], "CastLike",
                      [dy, x.astype(np.float64)], {0: 0}, [dy])


def test_cast_like_errors_and_inference():
    strings = np.array([b"a"], dtype=object)
    with pytest.raises(FAILS, match="is not numeric"):
        run_op("CastLike", [strings, rand(1)])
    assert infer("CastLike", [(2, 3), TensorInfo((1,), "int8")]) == [TensorInfo((2, 3), "int8")]
    assert infer("CastLike", [(2, 3), None]) == [None]
