"""moments family (Moments, BatchMoments and their gradient ops): each op against
NumPy references written here, the gradient ops against numeric derivatives, the
registered gradients against central differences, shape inference against the
kernels, and errors (one message from inference and the kernel)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer


def randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def moments_reference(x, axes=None, keepdims=1):
    axis = None if not axes else tuple(axes)
    x = x.astype(np.float64)
    return x.mean(axis=axis, keepdims=bool(keepdims)), x.var(axis=axis, keepdims=bool(keepdims))


@pytest.mark.parametrize("shape, axes", [((2, 3, 4), None), ((2, 3, 4), [1]), ((2, 3, 4), [2, 0]),
                                         ((5,), [0]), ((2, 3, 2, 2), [0, 2, 3]), ((3, 2), [])])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_moments(shape, axes, keepdims):
    args = {"keepdims": keepdims} if axes is None else {"axes": axes, "keepdims": keepdims}
    check_reference("Moments", [randn(shape, 1)], moments_reference, args, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axes, keepdims", [([1], 1), ([0, 2], 0), (None, 0)])
def test_moments_gradient(axes, keepdims):
    x = randn((2, 3, 2), 2).astype(np.float64)
    args = {"keepdims": keepdims} if axes is None else {"axes": axes, "keepdims": keepdims}
    mean, var = run_op("Moments", [x], args, 2)
    dmean, dvar = randn(mean.shape, 3).astype(np.float64), randn(var.shape, 4).astype(np.float64)
    check_gradient_op("Moments", [x], "MomentsGradient", [dmean, dvar, x, mean], {0: 0}, [dmean, dvar], args,
                      num_outputs=2, atol=1e-6, rtol=1e-6)
    op = make_op("Moments", ["X"], ["mean", "variance"], args)
    report = check_op_gradient(op, [x], 0, outputs_with_grads=(0, 1))
    assert report.ok, report


def batch_moments_reference(x, order="NCHW"):
    rows = (x.reshape(-1, x.shape[-1]) if order == "NHWC"
            else np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])).astype(np.float64)
    return rows.mean(axis=0), (rows ** 2).mean(axis=0)


@pytest.mark.parametrize("shape, order", [((2, 3, 4, 5), "NCHW"), ((2, 4, 5, 3), "NHWC"), ((3, 2), "NCHW"),
                                          ((2, 3, 2, 2, 4), "NHWC"), ((0, 3, 2), "NCHW")])
def test_batch_moments(shape, order):
    if 0 in shape:
        got = run_op("BatchMoments", [np.zeros(shape, np.float32)], {"order": order}, 2)
        assert [g.shape for g in got] == [(3,), (3,)]
        return
    check_reference("BatchMoments", [randn(shape, 5)], batch_moments_reference, {"order": order})


@pytest.mark.parametrize("shape, order", [((2, 3, 2), "NCHW"), ((2, 2, 3), "NHWC"), ((3, 2), "NCHW")])
def test_batch_moments_gradient(shape, order):
    x = randn(shape, 6).astype(np.float64)
    c = shape[-1] if order == "NHWC" else shape[1]
    dmu, dvar = randn(c, 7).astype(np.float64), randn(c, 8).astype(np.float64)
    check_gradient_op("BatchMoments", [x], "BatchMomentsGradient", [dmu, dvar, x], {0: 0}, [dmu, dvar],
                      {"order": order}, num_outputs=2, atol=1e-6, rtol=1e-6)
    op = make_op("BatchMoments", ["X"], ["mu", "var"], {"order": order})
    report = check_op_gradient(op, [x], 0, outputs_with_grads=(0, 1))
    assert report.ok, report


INFERENCE_CASES = [
    ("Moments", [(2, 3, 4)], {"axes": [2, 0], "keepdims": 0}, 2),
    ("Moments", [(2, 3, 4)], {}, 2),
    ("MomentsGradient", [(3,), (3,), (2, 3, 4), (3,)], {"axes": [0, 2], "keepdims": 0}, 1),
    ("BatchMoments", [(2, 4, 5, 3)], {"order": "NHWC"}, 2),
    ("BatchMomentsGradient", [(4,), (4,), (2, 4, 5)], {}, 1),
]


@pytest.mark.parametrize("op_type, shapes, args, n_out", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_matches_the_kernel(op_type, shapes, args, n_out):
    got = run_op(op_type, [randn(s, 9) for s in shapes], args, n_out)
    assert infer(op_type, shapes, n_out, **args) == [TensorInfo(v.shape, v.dtype.name) for v in got]


ERRORS = [
    ("Moments", lambda: [randn((2, 3), 0)], {"axes": [2]}, 2, r"axes \[2\]: 2 is out of range \[0, 2\) for data \[2, 3\]"),
    ("Moments", lambda: [randn((2, 3), 0)], {"axes": [-1]}, 2, r"axes \[-1\]: -1 is out of range"),
    ("Moments", lambda: [randn((2, 3), 0)], {"axes": [1, 1]}, 2, r"axes \[1, 1\] must be distinct"),
    ("MomentsGradient", lambda: [randn(2, 0), randn(3, 1), randn((2, 3), 2), randn(3, 3)], {"axes": [0]}, 1,
     r"dmean has shape \[2\] but data \[2, 3\] reduced over axes \[0\] has 3 statistics"),
    ("BatchMoments", lambda: [randn(3, 0)], {}, 2, r"X must have rank >= 2, got \[3\]"),
    ("BatchMomentsGradient", lambda: [randn(2, 0), randn(3, 1), randn((2, 3), 2)], {}, 1,
     r"dmu has shape \[2\] but X \[2, 3\] needs 3 elements \(its channels, order NCHW\)"),
]


@pytest.mark.parametrize("op_type, make_inputs, args, n_out, message", ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, args, n_out, message):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], n_out, **args)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args, n_out)
