"""The spatial family: Im2Col/Col2Im, SpaceToBatch/BatchToSpace, IntegralImage
and RMACRegions against loop references, the gradients against central
differences (IntegralImageGradient against Caffe2's formula), inference and
errors."""
import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, numeric_gradient, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)


def im2col_reference(x, kernel, stride=1, dilation=1, pad=0, order="NCHW"):
    image = x if order == "NCHW" else x.transpose(0, 3, 1, 2)
    n, c, h, w = image.shape
    ek = dilation * (kernel - 1) + 1
    oh, ow = (h + 2 * pad - ek) // stride + 1, (w + 2 * pad - ek) // stride + 1
    out = np.zeros((n, c, kernel, kernel, oh, ow), x.dtype)
    for y in range(oh):
        for xx in range(ow):
            for i in range(kernel):
                for j in range(kernel):
                    r, s = y * stride + i * dilation - pad, xx * stride + j * dilation - pad
                    if 0 <= r < h and 0 <= s < w:
                        out[:, :, i, j, y, xx] = image[:, :, r, s]
    if order == "NCHW":
        return [out.reshape(n, c * kernel * kernel, oh, ow)]
    return [out.transpose(0, 4, 5, 2, 3, 1).reshape(n, oh, ow, kernel * kernel * c)]


CASES = [{"kernel": 3}, {"kernel": 2, "stride": 2, "pad": 1}, {"kernel": 2, "dilation": 2, "pad": 2, "stride": 3},
         {"kernel": 1}]


@pytest.mark.parametrize("args", CASES)
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_im2col(args, order):
    shape = (2, 3, 5, 6) if order == "NCHW" else (2, 5, 6, 3)
    x = RNG.standard_normal(shape).astype(np.float32)
    check_reference("Im2Col", [x], im2col_reference, {**args, "order": order})


@pytest.mark.parametrize("args", CASES)
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_col2im_is_im2col_adjoint(args, order):
    """<Im2Col(x), c> == <x, Col2Im(c)> for every x and c."""
    shape = (1, 2, 5, 6) if order == "NCHW" else (1, 5, 6, 2)
    x = RNG.standard_normal(shape)
    args = {**args, "order": order}
    (cols,) = run_op("Im2Col", [x], args)
    c = RNG.standard_normal(cols.shape)
    (back,) = run_op("Col2Im", [c, x], args)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-9)
    check_reference("Col2Im", [c, x], lambda c_, z, **a: [back], args)


@pytest.mark.parametrize("args", CASES[:2])
def test_im2col_col2im_gradients(args):
    x = RNG.standard_normal((1, 2, 4, 5))
    (cols,) = run_op("Im2Col", [x], args)
    d_cols = RNG.standard_normal(cols.shape)
    (grad_op,), _ = GetGradientForOp(make_op("Im2Col", ["x"], ["y"], args), ["y_grad"])
    assert grad_op.type == "Col2Im" and list(grad_op.input) == ["y_grad", "x"]
    check_gradient_op("Im2Col", [x], "Col2Im", [d_cols, x], {0: 0}, [d_cols], args)
    (grad_op,), _ = GetGradientForOp(make_op("Col2Im", ["c", "z"], ["y"], args), ["y_grad"])
    assert grad_op.type == "Im2Col" and list(grad_op.input) == ["y_grad"]
    d_image = RNG.standard_normal(x.shape)
    check_gradient_op("Col2Im", [cols, x], "Im2Col", [d_image], {0: 0}, [d_image], args)


def space_to_batch_reference(x, block_size=2, pad=0, pad_t=None, order="NCHW"):
    top = pad if pad_t is None else pad_t
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + top + pad, w + 2 * pad), x.dtype)
    padded[:, :, top:top + h, pad:pad + w] = x
    oh, ow = padded.shape[2] // block_size, padded.shape[3] // block_size
    out = np.zeros((n * block_size ** 2, c, oh, ow), x.dtype)
    for ob in range(out.shape[0]):
        b, off_w, off_h = ob % n, (ob // n) % block_size, (ob // n) // block_size
        out[ob] = padded[b, :, off_h::block_size, off_w::block_size][:, :oh, :ow]
    return [out]


@pytest.mark.parametrize("args, shape", [({}, (2, 3, 4, 6)), ({"block_size": 3, "pad": 1}, (1, 2, 4, 1)),
                                         ({"pad": 1, "pad_t": 3}, (2, 1, 2, 4)), ({"block_size": 1}, (1, 1, 2, 2))])
def test_space_to_batch_and_back(args, shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    (y,) = check_reference("SpaceToBatch", [x], space_to_batch_reference, args)
    check_reference("BatchToSpace", [y], lambda y_, **a: [x], args)  # BatchToSpace undoes it


def test_space_batch_gradients():
    x = RNG.standard_normal((1, 2, 2, 4))
    args = {"pad": 1}
    (y,) = run_op("SpaceToBatch", [x], args)
    dy = RNG.standard_normal(y.shape)
    (grad_op,), _ = GetGradientForOp(make_op("SpaceToBatch", ["x"], ["y"], args), ["y_grad"])
    assert grad_op.type == "BatchToSpace"
    check_gradient_op("SpaceToBatch", [x], "BatchToSpace", [dy], {0: 0}, [dy], args)
    (grad_op,), _ = GetGradientForOp(make_op("BatchToSpace", ["y"], ["x"], args), ["x_grad"])
    assert grad_op.type == "SpaceToBatch"
    dx = RNG.standard_normal(x.shape)
    check_gradient_op("BatchToSpace", [y], "SpaceToBatch", [dx], {0: 0}, [dx], args)


def integral_reference(x):
    n, c, h, w = x.shape
    y = np.zeros((n, c, h + 1, w + 1), x.dtype)
    for i in range(1, h + 1):
        for j in range(1, w + 1):
            y[:, :, i, j] = x[:, :, :i, :j].sum(axis=(2, 3))
    return [y]


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (1, 2, 0, 3)])
def test_integral_image(shape):
    check_reference("IntegralImage", [RNG.standard_normal(shape).astype(np.float32)], integral_reference)


def test_integral_image_gradient():
    x = RNG.standard_normal((1, 2, 3, 4))
    dy = RNG.standard_normal((1, 2, 4, 5))
    (grad_op,), _ = GetGradientForOp(make_op("IntegralImage", ["x"], ["y"]), ["y_grad"])
    assert grad_op.type == "IntegralImageGradient" and list(grad_op.input) == ["x", "y_grad"]

    def caffe2_formula(x_, dy_):
        out = np.zeros(x_.shape)
        for i in range(x_.shape[2]):
            for j in range(x_.shape[3]):
                out[:, :, i, j] = dy_[:, :, :i + 1, :j + 1].sum(axis=(2, 3))
        return [out]
    check_reference("IntegralImageGradient", [x, dy], caffe2_formula)
    # Caffe2's formula is the exact gradient of the image flipped along both axes (its
    # prefix sums where the exact gradient has suffix sums): documented in the schema.
    exact = numeric_gradient("IntegralImage", [x], 0, [dy])
    flipped_dy = np.pad(dy[:, :, 1:, 1:][:, :, ::-1, ::-1], ((0, 0), (0, 0), (0, 1), (0, 1)))
    (flipped,) = run_op("IntegralImageGradient", [x, flipped_dy])
    np.testing.assert_allclose(flipped[:, :, ::-1, ::-1], exact, atol=1e-6)


def rmac_reference(x, scales=3, overlap=0.4):
    """Caffe2's operator test's reference."""
    n, h, w = x.shape[0], x.shape[2], x.shape[3]
    steps = np.array((2, 3, 4, 5, 6, 7), dtype=np.float32)
    short = np.minimum(h, w)
    b = (np.maximum(h, w) - short) / (steps - 1)
    idx = np.argmin(np.abs(((short ** 2 - short * b) / short ** 2) - overlap)) + 1
    wd, hd = (idx if h < w else 0), (idx if h > w else 0)
    regions = []
    for level in range(1, scales + 1):
        wl = np.floor(2 * short / (level + 1))
        bw = (w - wl) / (level + wd - 1) if level + wd - 1 > 0 else 0
        cen_w = np.floor(bw * np.arange(level - 1 + wd + 1))
        bh = (h - wl) / (level + hd - 1) if level + hd - 1 > 0 else 0
        cen_h = np.floor(bh * np.arange(level - 1 + hd + 1))
        regions += [[i, j, wl, wl] for i in cen_w for j in cen_h]
    out = []
    for r in regions:
        r = [round(float(v)) for v in r]
        r[0] -= max(r[0] + r[2] - w, 0)
        r[1] -= max(r[1] + r[3] - h, 0)
        if r[2] * r[3] > 0:
            out.append(r)
    return [np.array([[i, x_, y, x_ + s - 1, y + t - 1] for i in range(n) for x_, y, s, t in out],
                     np.float32).reshape(-1, 5)]


@pytest.mark.parametrize("h, w, scales", [(4, 7, 3), (9, 2, 2), (5, 5, 3), (1, 10, 3), (3, 8, 1)])
def test_rmac_regions(h, w, scales):
    x = np.zeros((3, 2, h, w), np.float32)
    check_reference("RMACRegions", [x], rmac_reference, {"scales": scales, "overlap": 0.4})


def test_rmac_regions_empty_and_gradient():
    (y,) = run_op("RMACRegions", [np.zeros((0, 2, 3, 3), np.float32)])
    assert y.shape == (0, 5)
    with pytest.raises(GradientError, match="should not call gradient for operator RMACRegions"):
        GetGradientForOp(make_op("RMACRegions", ["x"], ["y"]), ["y_grad"])


def test_inference():
    assert infer("Im2Col", [(2, 3, 5, 6)], kernel=2, stride=2, pad=1) == [TensorInfo((2, 12, 3, 4), "float32")]
    assert infer("Im2Col", [(2, 5, 6, 3)], kernel_h=2, kernel_w=3, order="NHWC") == [
        TensorInfo((2, 4, 4, 18), "float32")]
    assert infer("Col2Im", [(2, 12, 3, 4), (2, 3, 5, 6)], kernel=2, stride=2, pad=1) == [
        TensorInfo((2, 3, 5, 6), "float32")]
    assert infer("SpaceToBatch", [(2, 3, 4, 6)]) == [TensorInfo((8, 3, 2, 3), "float32")]
    assert infer("BatchToSpace", [(8, 3, 2, 3)], pad=1) == [TensorInfo((2, 3, 2, 4), "float32")]
    assert infer("IntegralImage", [(2, 3, 4, 5)]) == [TensorInfo((2, 3, 5, 6), "float32")]
    assert infer("IntegralImageGradient", [(2, 3, 4, 5), (2, 3, 5, 6)]) == [TensorInfo((2, 3, 4, 5), "float32")]
    assert infer("RMACRegions", [(3, 2, 5, 5)], scales=2) == [TensorInfo((3 * 5, 5), "float32")]


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("Im2Col", [(2, 3, 5)], {"kernel": 2}, r"the image must be 4-D, got \[2, 3, 5\]"),
    ("Im2Col", [(1, 1, 3, 3)], {"kernel": 2, "dilation": 3}, "the dilated kernel 4x4 is larger than the 3x3 image"),
    ("Im2Col", [(1, 1, 3, 3)], {}, "kernel must be > 0, got 0"),
    ("Col2Im", [(1, 5, 2, 2), (1, 1, 3, 3)], {"kernel": 2}, r"does not hold the columns \[1, 4, 2, 2\]"),
    ("SpaceToBatch", [(1, 1, 3, 4)], {}, "the padded size 3x4 is not a multiple of block_size 2"),
    ("BatchToSpace", [(6, 1, 3, 4)], {}, r"the batch 6 is not a multiple of block_size\^2 = 4"),
    ("BatchToSpace", [(4, 1, 1, 1)], {"pad": 2}, "the padding crops more than"),
    ("IntegralImage", [(3, 4)], {}, "X must be a 4-D float tensor"),
    ("IntegralImageGradient", [(1, 1, 2, 2), (1, 1, 2, 2)], {}, r"dY \[1, 1, 2, 2\] must be \[N, C, H \+ 1, W \+ 1\]"),
    ("RMACRegions", [(3, 4)], {}, "X must be 4-D NCHW"),
    ("RMACRegions", [(1, 1, 4000, 4000)], {"scales": 8000}, "regions"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


def test_run_errors():
    with pytest.raises((OpFailure, NetError), match="the padded size 3x4 is not a multiple of block_size 2"):
        run_op("SpaceToBatch", [np.zeros((1, 1, 3, 4), np.float32)])
    with pytest.raises((OpFailure, NetError), match="X must be a 4-D float tensor"):
        run_op("IntegralImage", [np.zeros((1, 1, 3, 4), np.int32)])
    with pytest.raises((OpFailure, NetError), match=r"Y would be \[4, 1, 1000001, 1000001\].*over the"):
        run_op("SpaceToBatch", [np.zeros((1, 1, 2, 2), np.float32)], {"pad": 10**6})
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op("Im2Col", [np.zeros((1, 1, 2000, 2000), np.float32)], {"kernel": 1000})
