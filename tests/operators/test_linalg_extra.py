"""Linalg_extra family: Gemm, Einsum and Det against NumPy references written
here, GemmGradient and DetGradient against numeric differentiation, inference
rows and error rows (the same words at CreateNet and at run time)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)


def normal(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


# --- Gemm ----------------------------------------------------------------------------------------

def gemm_reference(a, b, c=None, alpha=1.0, beta=1.0, trans_a=0, trans_b=0):
    # An explicit triple loop, independent of the kernel's matmul.
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    m, k = op_a.shape
    y = np.zeros((m, op_b.shape[1]), np.float64)
    for i in range(m):
        for j in range(op_b.shape[1]):
            y[i, j] = alpha * sum(float(op_a[i, t]) * float(op_b[t, j]) for t in range(k))
    if c is not None:
        y += beta * np.broadcast_to(c, y.shape)
    return y


C_SHAPES = [None, (), (1,), (5,), (3, 1), (1, 5), (3, 5)]


@pytest.mark.parametrize("c_shape", C_SHAPES, ids=str)
@pytest.mark.parametrize("args", [{}, {"alpha": 0.5}, {"beta": -2.0}, {"trans_a": 1},
                                  {"trans_b": 1}, {"alpha": 0.25, "beta": 0.35, "trans_a": 1, "trans_b": 1}],
                         ids=str)
def test_gemm(c_shape, args):
    a = normal(4, 3) if args.get("trans_a") else normal(3, 4)
    b = normal(5, 4) if args.get("trans_b") else normal(4, 5)
    inputs = [a, b] + ([] if c_shape is None else [normal(*c_shape)])
    (y,) = check_reference("Gemm", inputs, gemm_reference, args)
    assert y.shape == (3, 5) and y.dtype == np.float32


def test_gemm_integers_and_float64():
    a, b = np.arange(6, dtype=np.int32).reshape(2, 3), np.arange(3, dtype=np.int32).reshape(3, 1)
    (y,) = check_reference("Gemm", [a, b, np.array([10], np.int32)], gemm_reference)
    assert y.dtype == np.int32
    (y,) = check_reference("Gemm", [normal(2, 3, dtype=np.float64), normal(3, 2, dtype=np.float64)],
                           gemm_reference, {"alpha": 3.0})
    assert y.dtype == np.float64


@pytest.mark.parametrize("c_shape", [None, (), (5,), (3, 1), (3, 5)], ids=str)
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_gradient(c_shape, trans_a, trans_b):
    args = {"alpha": 0.7, "beta": -1.3, "trans_a": trans_a, "trans_b": trans_b}
    a = normal(4, 3, dtype=np.float64) if trans_a else normal(3, 4, dtype=np.float64)
    b = normal(5, 4, dtype=np.float64) if trans_b else normal(4, 5, dtype=np.float64)
    inputs = [a, b] + ([] if c_shape is None else [normal(*c_shape, dtype=np.float64)])
    dy = normal(3, 5, dtype=np.float64)
    wrt = {i: i for i in range(len(inputs))}
    check_gradient_op("Gemm", inputs, "GemmGradient", [dy] + inputs, wrt, [dy], args,
                      num_outputs=None, atol=1e-5, rtol=1e-5)
    names = ["A", "B", "C"][:len(inputs)]
    for index in range(len(inputs)):
        report = check_op_gradient(make_op("Gemm", names, ["Y"], args), inputs, index)
        assert report.ok, report


def test_gemm_maker():
    for inputs, grads in ((["A", "B"], ["A_grad", "B_grad"]), (["A", "B", "C"], ["A_grad", "B_grad", "C_grad"])):
        (grad,), g_input = GetGradientForOp(make_op("Gemm", inputs, ["Y"], {"alpha": 2.0}), ["Y_grad"])
        assert (grad.type, list(grad.input), list(grad.output)) == ("GemmGradient", ["Y_grad"] + inputs, grads)
        assert g_input == grads


GEMM_ERRORS = [
    ([normal(3, 4), normal(5, 6)], {},
     r"A \[3, 4\] gives \[M, K\] = \[3, 4\] but B \[5, 6\] gives \[K, N\] = \[5, 6\]: K must match"),
    ([normal(3, 4, 1), normal(4, 5)], {}, r"A must be 2-D, got \[3, 4, 1\]"),
    ([normal(3, 4), normal(4, 5), normal(4,)], {}, r"C \[4\] does not broadcast to Y \[3, 5\]"),
    ([normal(3, 4), normal(4, 5), normal(2, 3, 5)], {}, r"C \[2, 3, 5\] does not broadcast to Y \[3, 5\]"),
    ([normal(3, 4), normal(4, 5, dtype=np.float64)], {}, "A is float32 but B is float64"),
    ([normal(3, 4), normal(5, 4)], {"trans_b": 0}, "K must match"),
]


@pytest.mark.parametrize("inputs, args, pattern", GEMM_ERRORS)
def test_gemm_errors(inputs, args, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("Gemm", inputs, args)
    with pytest.raises(ShapeError, match=pattern):
        infer("Gemm", [TensorInfo(v.shape, v.dtype.name) for v in inputs], **args)


def test_gemm_gradient_errors():
    a, b = normal(3, 4), normal(4, 5)
    with pytest.raises((OpFailure, NetError), match=r"dY is \[5, 3\] but Y is \[3, 5\]"):
        run_op("GemmGradient", [normal(5, 3), a, b], {})
    with pytest.raises(ShapeError, match=r"dY is \[5, 3\] but Y is \[3, 5\]"):
        infer("GemmGradient", [(5, 3), (3, 4), (4, 5)], n_out=2)


def test_infer_gemm():
    assert infer("Gemm", [(3, 4), (5, 4)], trans_b=1) == [TensorInfo((3, 5))]
    assert infer("Gemm", [(4, 3), (4, 5), (5,)], trans_a=1) == [TensorInfo((3, 5))]
    assert infer("Gemm", [None, (4, 5)]) == [None]
    assert infer("GemmGradient", [(3, 5), (3, 4), (4, 5), (1, 5)], n_out=3) == [
        TensorInfo((3, 4)), TensorInfo((4, 5)), TensorInfo((1, 5))]


# --- Einsum --------------------------------------------------------------------------------------

def loop_einsum(terms, out, operands):
    """A reference by brute force: sum the products over every assignment of the labels."""
    sizes = {}
    for term, x in zip(terms, operands):
        for label, dim in zip(term, x.shape):
            sizes[label] = dim
    labels = sorted(sizes)
    y = np.zeros([sizes[c] for c in out])
    for values in np.ndindex(*[sizes[c] for c in labels]):
        at = dict(zip(labels, values))
        product = 1.0
        for term, x in zip(terms, operands):
            product *= float(x[tuple(at[c] for c in term)])
        y[tuple(at[c] for c in out)] += product
    return y


# (equation, shapes, the explicit terms and output the reference loops over)
EINSUMS = [
    ("ij->ji", [(3, 4)], ["ij"], "ji"),
    ("ij", [(3, 4)], ["ij"], "ij"),
    ("ji", [(3, 4)], ["ji"], "ij"),
    ("ij->", [(3, 4)], ["ij"], ""),
    ("ii->i", [(3, 3)], ["ii"], "i"),
    ("ii", [(3, 3)], ["ii"], ""),
    ("i,i", [(5,), (5,)], ["i", "i"], ""),
    ("i,j->ij", [(2,), (3,)], ["i", "j"], "ij"),
    ("bij, bjk -> bik", [(2, 3, 4), (2, 4, 5)], ["bij", "bjk"], "bik"),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)], ["ij", "jk", "kl"], "il"),
    ("Ab,bC", [(2, 3), (3, 4)], ["Ab", "bC"], "AC"),
    ("bii->bi", [(2, 3, 3)], ["bii"], "bi"),
]


@pytest.mark.parametrize("equation, shapes, terms, out", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(equation, shapes, terms, out):
    inputs = [normal(*s, dtype=np.float64) for s in shapes]
    (y,) = check_reference("Einsum", inputs, lambda *xs, equation: loop_einsum(terms, out, xs),
                           {"equation": equation})
    assert y.dtype == np.float64


def test_einsum_ellipsis():
    x = normal(2, 3, 3, dtype=np.float64)
    expected = np.stack([np.diag(m) for m in x])
    check_reference("Einsum", [x], lambda x, equation: expected, {"equation": "...ii ->...i"})
    a, b = normal(2, 1, 3, 4), normal(5, 4, 2)  # '...' dims broadcast: [2, 1] with [5]
    expected = np.stack([[a[i, 0] @ b[j] for j in range(5)] for i in range(2)])
    check_reference("Einsum", [a, b], lambda a, b, equation: expected, {"equation": "...ij,...jk"})


def test_einsum_scalar_and_integers():
    check_reference("Einsum", [np.array(3.0)], lambda x, equation: np.array(3.0), {"equation": "->"})
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    (y,) = check_reference("Einsum", [x], lambda x, equation: np.array(15), {"equation": "ij->"})
    assert y.dtype == np.int64


EINSUM_ERRORS = [
    ("ij,jk", [(2, 3)], "has 2 input terms but the op has 1 inputs"),
    ("ij", [(2, 3, 4)], r"input 0 \[2, 3, 4\] has rank 3 but its term 'ij' has 2 labels"),
    ("ijk", [(2, 3)], r"input 0 \[2, 3\] has rank 2 but its term 'ijk' has 3 labels"),
    ("ij,jk", [(2, 3), (4, 5)], "label 'j' is 3 and 4"),
    ("ii", [(2, 3)], "label 'i' is 2 and 3"),
    ("ij->ik", [(2, 3)], "output label 'k' is in no input term"),
    ("ij->ii", [(2, 3)], "output label 'i' is repeated"),
    ("i1", [(2, 3)], "has '1': labels are letters"),
    ("...i...", [(2, 3)], "has more than one '...'"),
    ("...i,...i", [(2, 3), (4, 3)], "do not broadcast"),
]


@pytest.mark.parametrize("equation, shapes, pattern", EINSUM_ERRORS, ids=[e[0] for e in EINSUM_ERRORS])
def test_einsum_errors(equation, shapes, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("Einsum", [np.ones(s, np.float32) for s in shapes], {"equation": equation})
    with pytest.raises(ShapeError, match=pattern):
        infer("Einsum", shapes, equation=equation)


def test_infer_einsum():
    assert infer("Einsum", [(2, 3, 4), (2, 4, 5)], equation="bij,bjk->bik") == [TensorInfo((2, 3, 5))]
    assert infer("Einsum", [(7, 3, 3)], dtype="float64", equation="...ii") == [TensorInfo((7,), "float64")]
    assert infer("Einsum", [None, (3,)], equation="i,i") == [None]
    with pytest.raises(ShapeError, match="input 0 is float32 but input 1 is int32"):
        infer("Einsum", [TensorInfo((3,), "float32"), TensorInfo((3,), "int32")], equation="i,i")


@pytest.mark.parametrize("equation, shapes", [
    ("ij->ji", [(3, 4)]), ("ij,jk->ik", [(2, 3), (3, 4)]), ("bij, bjk", [(2, 2, 3), (2, 3, 2)]),
    ("i,j->ij", [(2,), (3,)]), ("i,i", [(4,), (4,)]), ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("ij,ij->i", [(2, 3), (2, 3)]),
])
def test_einsum_gradient(equation, shapes):
    inputs = [normal(*s, dtype=np.float64) for s in shapes]
    names = [f"X{i}" for i in range(len(inputs))]
    op = make_op("Einsum", names, ["Y"], {"equation": equation})
    grads, g_input = GetGradientForOp(op, ["Y_grad"])
    assert [g.type for g in grads] == ["Einsum"] * len(inputs)
    assert g_input == [f"{name}_grad" for name in names]
    for index in range(len(inputs)):
        report = check_op_gradient(op, inputs, index)
        assert report.ok, report


@pytest.mark.parametrize("equation, pattern", [
    ("...ij->...ji", r"'\.\.\.'"), ("ii->i", "a label repeated within an operand"),
    ("ij->i", "label 'j', summed within input 0 alone"),
])
def test_einsum_gradient_refuses(equation, pattern):
    op = make_op("Einsum", ["X"], ["Y"], {"equation": equation})
    with pytest.raises(GradientError, match=pattern):
        GetGradientForOp(op, ["Y_grad"])


# --- Det -----------------------------------------------------------------------------------------

def det_reference(x):
    """Laplace expansion along the first row, matrix by matrix (independent of LU)."""
    def det(m):
        if len(m) == 0:
            return 1.0
        return sum((-1) ** j * m[0][j] * det([row[:j] + row[j + 1:] for row in m[1:]]) for j in range(len(m)))
    flat = x.reshape((int(np.prod(x.shape[:-2])),) + x.shape[-2:]).astype(np.float64)
    return np.array([det(m.tolist()) for m in flat]).reshape(x.shape[:-2])


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 1, 2, 2), (1, 1), (0, 3, 3), (0, 0)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_det(shape, dtype):
    tolerance = {"atol": 1e-2, "rtol": 1e-2} if dtype == np.float16 else {}
    (y,) = check_reference("Det", [normal(*shape, dtype=dtype)], det_reference, **tolerance)
    assert y.shape == shape[:-2] and y.dtype == dtype


@pytest.mark.parametrize("shape", [(3, 3), (2, 2, 2), (1, 1)], ids=str)
def test_det_gradient(shape):
    x = normal(*shape, dtype=np.float64)
    y = run_op("Det", [x])[0]
    dy = normal(*y.shape, dtype=np.float64)
    check_gradient_op("Det", [x], "DetGradient", [x, y, dy], {0: 0}, [dy], atol=1e-5, rtol=1e-5)
    report = check_op_gradient(make_op("Det", ["X"], ["Y"]), [x], 0)
    assert report.ok, report


def test_det_gradient_of_a_singular_matrix_is_the_adjugate():
    x = np.array([[1.0, 2.0], [2.0, 4.0]])  # det 0: d det / dX = [[d, -c], [-b, a]]
    (dx,) = run_op("DetGradient", [x, np.array(0.0), np.array(1.0)])
    np.testing.assert_allclose(dx, [[4, -2], [-2, 1]])


@pytest.mark.parametrize("shape, dtype, pattern", [
    ((2, 3), "float32", r"X must end in square matrices \[..., M, M\], got \[2, 3\]"),
    ((3,), "float32", r"got \[3\]"),
    ((2, 2), "int32", "X must be float, got int32"),
])
def test_det_errors(shape, dtype, pattern):
    with pytest.raises((OpFailure, NetError), match=pattern):
        run_op("Det", [np.ones(shape, dtype)])
    with pytest.raises(ShapeError, match=pattern):
        infer("Det", [shape], dtype=dtype)


def test_infer_det():
    assert infer("Det", [(5, 2, 3, 3)]) == [TensorInfo((5, 2))]
    assert infer("Det", [None]) == [None]
    assert infer("DetGradient", [(2, 3, 3), (2,), (2,)]) == [TensorInfo((2, 3, 3))]
    with pytest.raises(ShapeError, match=r"dY is \[3\] but Det of X \[2, 3, 3\] gives \[2\]"):
        infer("DetGradient", [(2, 3, 3), None, (3,)])
    with pytest.raises((OpFailure, NetError), match=r"Y is \[\] but Det of X \[2, 3, 3\] gives \[2\]"):
        run_op("DetGradient", [np.ones((2, 3, 3)), np.array(1.0), np.ones(2)])
