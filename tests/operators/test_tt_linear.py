"""tt_linear family (TT) against a reference that replays Caffe2's kernel on
column-major (Eigen) views, the golden values of Caffe2's own test, the
one-core case as X W + b, inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from pycaffe2.tt_core import init_tt_cores
from tests.schema import infer

RNG = np.random.default_rng(2)


def tt_reference(x, b, cores, *, inp_sizes, out_sizes, tt_ranks):
    """Caffe2's loop: row-major products, regrouped through column-major maps."""
    buf, offset = x.astype(np.float64).ravel(), 0
    for i in reversed(range(len(inp_sizes))):
        rows, cols = inp_sizes[i] * tt_ranks[i + 1], tt_ranks[i] * out_sizes[i]
        product = buf.reshape(-1, rows) @ cores[offset:offset + rows * cols].reshape(rows, cols)
        data = product.ravel()
        source = data.reshape((out_sizes[i], data.size // out_sizes[i]), order="F")
        buf = source.T.ravel(order="F")
        offset += rows * cols
    batch = x.shape[0]
    y = buf.reshape((buf.size // batch, batch), order="F").T.ravel(order="F").reshape(batch, -1)
    return [y + b]


ARGS = [
    {"inp_sizes": [2, 2, 2, 2], "out_sizes": [2, 2, 2, 2], "tt_ranks": [1, 3, 3, 3, 1]},
    {"inp_sizes": [3, 2], "out_sizes": [2, 4], "tt_ranks": [1, 2, 1]},
    {"inp_sizes": [4], "out_sizes": [5], "tt_ranks": [1, 1]},
]


@pytest.mark.parametrize("args", ARGS)
@pytest.mark.parametrize("batch", [1, 3])
def test_tt_matches_caffe2s_loop(args, batch):
    x = RNG.standard_normal((batch, int(np.prod(args["inp_sizes"])))).astype(np.float32)
    b = RNG.standard_normal(int(np.prod(args["out_sizes"]))).astype(np.float32)
    cores = init_tt_cores(args["inp_sizes"], args["out_sizes"], args["tt_ranks"]) * 100
    check_reference("TT", [x, b, cores], tt_reference, args)


def test_one_row_is_x_times_w_plus_b():
    x, w, b = (RNG.standard_normal(s).astype(np.float32) for s in [(1, 4), (4, 5), (5,)])
    (y,) = run_op("TT", [x, b, w.ravel()], ARGS[2])
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-5, atol=1e-6)


def test_caffe2_golden_values():
    np.random.seed(1234)
    x = np.expand_dims(np.random.rand(16).astype(np.float32), axis=0)
    cores = init_tt_cores(*ARGS[0].values())
    (y,) = run_op("TT", [x, np.zeros(16, np.float32), cores], ARGS[0])
    golden = [-9.51763490e-07, -1.28442286e-06, -2.86281141e-07, 2.28865644e-07, -1.96180017e-06,
              -1.78920531e-06, 9.31094666e-07, -2.04273989e-07, 1.70017107e-06, 1.64845711e-06,
              -1.06099132e-06, -4.69111137e-07, 6.57552358e-08, -1.28942040e-08, -2.29114004e-07,
              -1.04262714e-06]
    assert np.linalg.norm(np.array(golden) - y.ravel()) < 1e-10


def test_tt_inference_and_gradient():
    assert infer("TT", [(3, 16), (16,), (96,)], **ARGS[0]) == [TensorInfo((3, 16))]
    assert infer("TT", [None, (16,), (96,)], **ARGS[0]) == [None]
    with pytest.raises(GradientError):
        GetGradientForOp(make_op("TT", ["X", "b", "c"], ["Y"], ARGS[0]), ["Y_grad"])


@pytest.mark.parametrize("shapes, args, message", [
    ([(16,), (16,), (96,)], ARGS[0], r"X must have rank >= 2"),
    ([(1, 16), (16, 1), (96,)], ARGS[0], r"b must be 1-D"),
    ([(1, 16), (16,), (96, 1)], ARGS[0], r"cores must be 1-D"),
    ([(1, 16), (16,), (95,)], ARGS[0], r"cores has 95 values but the cores need at least 96"),
    ([(1, 16), (8,), (96,)], ARGS[0], r"b has 8 values but prod\(out_sizes\) is 16"),
    ([(1, 15), (16,), (96,)], ARGS[0], r"core 3 takes rows of 2"),
    ([(1, 16), (16,), (96,)], {**ARGS[0], "tt_ranks": [1, 3, 3, 1]}, "must have 5 ranks for 4 cores"),
    ([(1, 16), (16,), (96,)], {**ARGS[0], "out_sizes": [2, 2]}, "must give one size per core"),
    ([(2, 4), (5,), (20,)], {"inp_sizes": [2], "out_sizes": [5], "tt_ranks": [1, 1]}, "not batch 2"),
])
def test_tt_errors(shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer("TT", shapes, **args)
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("TT", [np.ones(s, np.float32) for s in shapes], args)
