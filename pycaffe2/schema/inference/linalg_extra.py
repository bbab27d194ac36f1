"""Inference rules of the linalg_extra family (ONNX's Gemm, Einsum and Det), and
the checks its kernels call.

Gemm is Y = alpha * op(A) op(B) + beta * C over 2-D A and B, with C broadcast
to [M, N]; Einsum is numpy.einsum's equation language (implicit output, `...`,
repeated labels within an operand for diagonals); Det takes the determinants
of the trailing square matrices. The checks take plain shapes and dtypes and
raise ShapeError, so CreateNet and the kernels refuse the same inputs in the
same words.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.linalg import check_same_dtype

ELLIPSIS = "..."


# --- Gemm ----------------------------------------------------------------------------------------

def gemm_sizes(a_shape, b_shape, trans_a, trans_b) -> tuple[int, int, int]:
    """(M, K, N) of Gemm: op(A) [M, K] times op(B) [K, N]; both must be 2-D."""
    for name, shape in (("A", a_shape), ("B", b_shape)):
        if len(shape) != 2:
            raise ShapeError(f"{name} must be 2-D, got {list(shape)}")
    m, k = a_shape[::-1] if trans_a else a_shape
    k_b, n = b_shape[::-1] if trans_b else b_shape
    if k != k_b:
        raise ShapeError(f"A {list(a_shape)} gives [M, K] = [{m}, {k}] but B {list(b_shape)} "
                         f"gives [K, N] = [{k_b}, {n}]: K must match")
    return m, k, n


def check_gemm_c(c_shape, m: int, n: int) -> None:
    """C must broadcast (numpy's rules, one way) to Y's [M, N]."""
    c_shape = tuple(c_shape)
    if len(c_shape) > 2 or any(c not in (1, y) for c, y in zip(c_shape[::-1], (n, m))):
        raise ShapeError(f"C {list(c_shape)} does not broadcast to Y [{m}, {n}]")


@rule("linalg_extra_gemm")
def gemm(op: OpView, inputs: list) -> list:
    """Gemm (A, B, [C]): Y [M, N] of A's type."""
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    if a is None or b is None:
        return [None]
    check_same_dtype(A=a.dtype, B=b.dtype)
    m, _, n = gemm_sizes(a.shape, b.shape, op.arg("trans_a"), op.arg("trans_b"))
    if c is not None:
        check_same_dtype(A=a.dtype, C=c.dtype)
        check_gemm_c(c.shape, m, n)
    return [TensorInfo((m, n), a.dtype)]


@rule("linalg_extra_gemm_gradient")
def gemm_gradient(op: OpView, inputs: list) -> list:
    """GemmGradient (dY, A, B, [C]): dA like A, dB like B, dC like C; dY must be [M, N]."""
    grad, a, b = inputs[0], inputs[1], inputs[2]
    c = inputs[3] if len(inputs) > 3 else None
    if a is not None and b is not None:
        m, _, n = gemm_sizes(a.shape, b.shape, op.arg("trans_a"), op.arg("trans_b"))
        if grad is not None and tuple(grad.shape) != (m, n):
            raise ShapeError(f"dY is {list(grad.shape)} but Y is [{m}, {n}]")
    return [a, b, c][:op.n_outputs]


# --- Einsum --------------------------------------------------------------------------------------

def _term(text: str, where: str) -> list[str]:
    """One operand's labels: letters, and at most one '...' as a single token."""
    if text.count(ELLIPSIS) > 1:
        raise ShapeError(f"{where} '{text}' has more than one '...'")
    head, dots, tail = text.partition(ELLIPSIS)
    labels = list(head) + ([ELLIPSIS] if dots else []) + list(tail)
    bad = [c for c in labels if c != ELLIPSIS and not (c.isascii() and c.isalpha())]
    if bad:
        raise ShapeError(f"{where} '{text}' has '{bad[0]}': labels are letters (and '...')")
    return labels


def parse_einsum(equation: str, n_inputs: int) -> tuple[list[list[str]], list[str]]:
    """(each input's labels, the output's labels) of `equation`, spaces ignored; without
    '->' the output is '...' (when an input has it) and then the labels used once, sorted."""
    text = equation.replace(" ", "")
    left, arrow, right = text.partition("->")
    terms = [_term(t, "input term") for t in left.split(",")]
    if len(terms) != n_inputs:
        raise ShapeError(f"equation '{equation}' has {len(terms)} input terms but the op has "
                         f"{n_inputs} inputs")
    used = [label for term in terms for label in term if label != ELLIPSIS]
    if arrow:
        out = _term(right, "output term")
        seen = set()
        for label in out:
            if label in seen:
                raise ShapeError(f"output label '{label}' is repeated in '{equation}'")
            if label != ELLIPSIS and label not in used:
                raise ShapeError(f"output label '{label}' is in no input term of '{equation}'")
            seen.add(label)
    else:
        dots = [ELLIPSIS] if any(ELLIPSIS in t for t in terms) else []
        out = dots + sorted(c for c in set(used) if used.count(c) == 1)  # numpy's order: ASCII
    return terms, out


def _broadcast(shapes: list[tuple], equation: str) -> tuple:
    width = max((len(s) for s in shapes), default=0)
    dims = []
    for column in zip(*((1,) * (width - len(s)) + s for s in shapes)):
        sizes = {d for d in column if d != 1}
        if len(sizes) > 1:
            raise ShapeError(f"the '...' dims {[list(s) for s in shapes]} of '{equation}' do not broadcast")
        dims.append(sizes.pop() if sizes else 1)
    return tuple(dims)


def einsum_shape(equation: str, shapes: list) -> tuple:
    """The output shape of `equation` over inputs of `shapes`; each label's dims must agree."""
    terms, out = parse_einsum(equation, len(shapes))
    sizes: dict[str, int] = {}
    ellipses = []
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        shape = tuple(shape)
        n_dots = len(shape) - (len(term) - (ELLIPSIS in term))
        if n_dots < 0 or (n_dots > 0 and ELLIPSIS not in term):
            raise ShapeError(f"input {i} {list(shape)} has rank {len(shape)} but its term "
                             f"'{''.join(term)}' has {len(term)} labels")
        at = term.index(ELLIPSIS) if ELLIPSIS in term else len(term)
        if ELLIPSIS in term:
            ellipses.append(shape[at:at + n_dots])
        dims = shape[:at] + shape[at + n_dots:]
        for label, dim in zip([t for t in term if t != ELLIPSIS], dims):
            if sizes.setdefault(label, dim) != dim:
                raise ShapeError(f"label '{label}' is {sizes[label]} and {dim} in '{equation}'")
    dots = _broadcast(ellipses, equation)
    return tuple(d for label in out for d in (dots if label == ELLIPSIS else (sizes[label],)))


def explicit_einsum(equation: str, n_inputs: int) -> str:
    """`equation` with its output spelled out (what numpy.einsum is given)."""
    terms, out = parse_einsum(equation, n_inputs)
    return ",".join("".join(t) for t in terms) + "->" + "".join(out)


@rule("linalg_extra_einsum")
def einsum(op: OpView, inputs: list) -> list:
    """Einsum: the equation's output shape, the inputs' (one) type."""
    if any(i is None for i in inputs):
        parse_einsum(op.arg("equation"), len(inputs))
        return [None]
    check_same_dtype(**{f"input {i}": x.dtype for i, x in enumerate(inputs)})
    return [TensorInfo(einsum_shape(op.arg("equation"), [x.shape for x in inputs]), inputs[0].dtype)]


# --- Det -----------------------------------------------------------------------------------------

def det_shape(shape, dtype: str) -> tuple:
    """Det's output: X's dims before its trailing square [M, M] matrices (float only)."""
    if not str(dtype).startswith("float"):
        raise ShapeError(f"X must be float, got {dtype}")
    shape = tuple(shape)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(f"X must end in square matrices [..., M, M], got {list(shape)}")
    return shape[:-2]


@rule("linalg_extra_det")
def det(op: OpView, inputs: list) -> list:
    x = inputs[0]
    return [None if x is None else TensorInfo(det_shape(x.shape, x.dtype), x.dtype)]


@rule("linalg_extra_det_gradient")
def det_gradient(op: OpView, inputs: list) -> list:
    """DetGradient (X, Y, dY): dX like X; Y and dY of Det's output shape."""
    x, y, grad = inputs
    if x is not None:
        expected = det_shape(x.shape, x.dtype)
        for name, info in (("Y", y), ("dY", grad)):
            if info is not None and tuple(info.shape) != expected:
                raise ShapeError(f"{name} is {list(info.shape)} but Det of X {list(x.shape)} "
                                 f"gives {list(expected)}")
    return [x]
