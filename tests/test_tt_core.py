"""pycaffe2.tt_core (Caffe2's Tensor-Train helpers): cores are contracted back
into the tensor or matrix they stand for and compared with the original; random
cores are checked for their sizes, orthogonality, scale and determinism; sizes
that cannot work are refused with ShapeError."""
import math

import numpy as np
import pytest

from pycaffe2.errors import ShapeError
from pycaffe2.tt_core import init_tt_cores, matrix_to_tt, tt_svd


def split(flat, shapes):
    """The flat cores cut into arrays of these shapes (all elements used)."""
    sizes = [math.prod(s) for s in shapes]
    assert flat.size == sum(sizes)
    return [part.reshape(s) for part, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes)]


def contract(cores):
    """Cores [r_k, s_k, r_k+1] chained into a tensor [r_0, s_0, ..., s_d-1, r_d]."""
    result = cores[0].astype(np.float64)
    for core in cores[1:]:
        result = np.tensordot(result, core, axes=([-1], [0]))
    return result


def full_ranks(sizes):
    """The largest useful rank between cores k and k+1 (the smaller side of that
    unfolding), with outer ranks 1."""
    inner = [min(math.prod(sizes[:k + 1]), math.prod(sizes[k + 1:])) for k in range(len(sizes) - 1)]
    return [1, *inner, 1]


def svd_cores(flat, sizes, ranks):
    return split(flat, [(ranks[k], s, ranks[k + 1]) for k, s in enumerate(sizes)])


@pytest.mark.parametrize("sizes", [[4, 6], [2, 3, 4], [3, 2, 2, 3], [5]])
def test_tt_svd_with_full_ranks_reconstructs_the_tensor(sizes):
    rng = np.random.default_rng(len(sizes))
    w = rng.standard_normal(sizes)
    ranks = full_ranks(sizes)
    flat = tt_svd(w, sizes, ranks)
    assert flat.dtype == np.float32
    np.testing.assert_allclose(contract(svd_cores(flat, sizes, ranks)).reshape(sizes), w, atol=1e-5)


def test_tt_svd_left_cores_are_orthonormal():
    rng = np.random.default_rng(7)
    sizes, ranks = [3, 4, 5], [1, 3, 5, 1]
    cores = svd_cores(tt_svd(rng.standard_normal(sizes), sizes, ranks), sizes, ranks)
    for core in cores[:-1]:
        left = core.reshape(-1, core.shape[-1]).astype(np.float64)
        np.testing.assert_allclose(left.T @ left, np.eye(left.shape[1]), atol=1e-6)


def test_tt_svd_with_a_lower_rank_is_the_truncated_svd():
    """For two cores, rank r keeps the r largest singular values (Eckart-Young)."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 8))
    approx = contract(svd_cores(tt_svd(w, [6, 8], [1, 2, 1]), [6, 8], [1, 2, 1])).reshape(6, 8)
    singular = np.linalg.svd(w, compute_uv=False)
    np.testing.assert_allclose(np.linalg.norm(w - approx), np.sqrt((singular[2:] ** 2).sum()), rtol=1e-5)
    assert np.linalg.matrix_rank(approx, tol=1e-4) == 2


def layer_matrix(flat, inp, out, ranks):
    """The [prod(inp), prod(out)] matrix of TT-layer cores laid out as matrix_to_tt
    returns them, [inp_k, r_k+1, r_k, out_k]."""
    shapes = [(n, ranks[k + 1], ranks[k], m) for k, (n, m) in enumerate(zip(inp, out))]
    cores = [c.transpose(2, 0, 3, 1).reshape(ranks[k], inp[k] * out[k], ranks[k + 1])
             for k, c in enumerate(split(flat, shapes))]
    d = len(inp)
    tensor = contract(cores).reshape([x for pair in zip(inp, out) for x in pair])
    return tensor.transpose(list(range(0, 2 * d, 2)) + list(range(1, 2 * d, 2))).reshape(
        math.prod(inp), math.prod(out))


@pytest.mark.parametrize("inp, out", [([2, 3], [4, 2]), ([2, 2, 2], [3, 1, 2]), ([6], [5])])
def test_matrix_to_tt_with_full_ranks_gives_back_the_fc_weights(inp, out):
    rng = np.random.default_rng(sum(inp))
    w = rng.standard_normal((math.prod(out), math.prod(inp)))  # FC: [output, input]
    ranks = full_ranks([n * m for n, m in zip(inp, out)])
    flat = matrix_to_tt(w, inp, out, ranks)
    assert flat.dtype == np.float32
    np.testing.assert_allclose(layer_matrix(flat, inp, out, ranks), w.T, atol=1e-5)


def test_init_tt_cores_sizes_orthogonality_and_scale():
    inp, out, ranks = [2, 3, 2], [2, 2, 3], [1, 3, 4, 1]
    flat = init_tt_cores(inp, out, ranks)
    assert flat.dtype == np.float32
    shapes = [(ranks[k], n, m, ranks[k + 1]) for k, (n, m) in enumerate(zip(inp, out))]
    cores = split(flat, shapes)
    scale = 0.1 / (math.prod(inp) * math.prod(ranks)) ** (1 / 3)
    for core in cores[:-1]:  # orthonormal columns, times the scale
        tall = core.reshape(-1, core.shape[-1]).astype(np.float64) / scale
        np.testing.assert_allclose(tall.T @ tall, np.eye(tall.shape[1]), atol=1e-5)
    assert np.abs(cores[-1]).max() > 0


def test_init_tt_cores_is_deterministic_per_seed_and_leaves_global_state_alone():
    np.random.seed(5)
    expected_next = np.random.rand()
    np.random.seed(5)
    a = init_tt_cores([2, 2], [2, 2], [1, 2, 1], seed=11)
    assert np.random.rand() == expected_next
    np.testing.assert_array_equal(a, init_tt_cores([2, 2], [2, 2], [1, 2, 1], seed=11))
    assert not np.array_equal(a, init_tt_cores([2, 2], [2, 2], [1, 2, 1], seed=12))


@pytest.mark.parametrize("call, message", [
    (lambda: init_tt_cores([2, 2], [2], [1, 2, 1]), "inp_sizes has 2 sizes but out_sizes has 1"),
    (lambda: init_tt_cores([2, 2], [2, 2], [1, 1]), "tt_ranks has 2 ranks but 2 cores need 3"),
    (lambda: init_tt_cores([2, 0], [2, 2], [1, 2, 1]),
     r"inp_sizes must be a non-empty list of positive sizes, got \[2, 0\]"),
    (lambda: init_tt_cores([], [], [1]), "inp_sizes must be a non-empty list"),
    (lambda: init_tt_cores([2, 2], [1, 2], [1, 3, 1]), r"tt_ranks\[1\] = 3 exceeds the 2 rows of core 0"),
    (lambda: tt_svd(np.ones(12), [3, 4], [1, 4, 1]),
     r"tt_ranks\[1\] = 4 exceeds the rank of the 3 x 4 unfolding \(at most 3\)"),
    (lambda: tt_svd(np.ones(11), [3, 4], [1, 2, 1]), "W has 11 elements but sizes"),
    (lambda: tt_svd(np.ones(12), [3, 4], [1, 2]), "tt_ranks has 2 ranks but 2 sizes need 3"),
    (lambda: matrix_to_tt(np.ones((6, 4)), [2, 2], [2, 2], [1, 2, 1]),
     r"W is \[6, 4\] but out_sizes \[2, 2\]"),
])
def test_sizes_that_cannot_work_are_refused(call, message):
    with pytest.raises(ShapeError, match=message):
        call()
