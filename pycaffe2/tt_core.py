"""Tensor-Train (TT) helpers, as Caffe2's `caffe2.python.tt_core`: random cores for
a TT layer trained from scratch (`init_tt_cores`) and the TT decomposition of a
trained fully connected layer's weights (`matrix_to_tt`, built on `tt_svd`).

A TT layer of d cores stands for a [prod(inp_sizes), prod(out_sizes)] matrix.
Core k has tt_ranks[k] * inp_sizes[k] * out_sizes[k] * tt_ranks[k + 1]
elements, so tt_ranks has d + 1 entries (the outer two are 1 for a matrix).
Every function returns the cores concatenated into one flat float32 array, the
blob Caffe2's TT op reads. Sizes that cannot work raise ShapeError.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.errors import ShapeError

__all__ = ["init_tt_cores", "matrix_to_tt", "tt_svd"]


def _sizes(name: str, values) -> list[int]:
    """A list of positive ints, or ShapeError naming it."""
    sizes = [int(v) for v in np.asarray(values).reshape(-1)]
    if not sizes or min(sizes) < 1:
        raise ShapeError(f"{name} must be a non-empty list of positive sizes, got {sizes}")
    return sizes


def _layer_sizes(inp_sizes, out_sizes, tt_ranks) -> tuple[list[int], list[int], list[int]]:
    """The three lists of a TT layer, checked: one input and one output size per core,
    and one rank more than cores."""
    inp, out = _sizes("inp_sizes", inp_sizes), _sizes("out_sizes", out_sizes)
    ranks = _sizes("tt_ranks", tt_ranks)
    if len(inp) != len(out):
        raise ShapeError(f"inp_sizes has {len(inp)} sizes but out_sizes has {len(out)}: "
                         f"each core needs one of each")
    if len(ranks) != len(inp) + 1:
        raise ShapeError(f"tt_ranks has {len(ranks)} ranks but {len(inp)} cores need {len(inp) + 1}")
    return inp, out, ranks


def init_tt_cores(inp_sizes, out_sizes, tt_ranks, seed: int = 1234) -> np.ndarray:
    """Random TT cores for a layer trained from scratch, scaled Glorot-style.

    Each core is drawn from a standard normal, times the triangular factor left
    by orthogonalizing the core before it; every core but the last is then
    replaced by the orthonormal factor of its QR decomposition (seen as a
    [tt_ranks[k] * inp_sizes[k] * out_sizes[k], tt_ranks[k + 1]] matrix), so the
    product stays well conditioned. All cores are scaled by
    0.1 / (prod(inp_sizes) * prod(tt_ranks)) ** (1 / d). The draws come from a
    legacy `RandomState(seed)`, the stream `np.random.seed(seed)` gives, but
    NumPy's global random state is left alone.
    """
    inp, out, ranks = _layer_sizes(inp_sizes, out_sizes, tt_ranks)
    rng = np.random.RandomState(seed)
    cores, carried = [], None
    for k in range(len(inp)):
        rows = ranks[k] * inp[k] * out[k]
        core = rng.normal(0, 1, size=(ranks[k], inp[k] * out[k] * ranks[k + 1]))
        if carried is not None:
            core = carried @ core
        core = core.reshape(rows, ranks[k + 1])
        if k < len(inp) - 1:
            if rows < ranks[k + 1]:
                raise ShapeError(f"tt_ranks[{k + 1}] = {ranks[k + 1]} exceeds the {rows} rows of core {k} "
                                 f"(tt_ranks[{k}] * inp_sizes[{k}] * out_sizes[{k}]): it cannot be "
                                 f"orthogonalized")
            core, carried = np.linalg.qr(core)
        cores.append(core.reshape(-1))
    scale = 0.1 / (math.prod(inp) * math.prod(ranks)) ** (1.0 / len(inp))
    return np.concatenate(cores).astype(np.float32) * np.float32(scale)


def tt_svd(W, sizes, tt_ranks) -> np.ndarray:
    """The TT decomposition of W (tt_ranks[0] * prod(sizes) * tt_ranks[-1] elements,
    read in C order as a tensor of dims `sizes`) by successive truncated SVDs.

    Core k, a [tt_ranks[k], sizes[k], tt_ranks[k + 1]] tensor, holds the leading
    left singular vectors of the remainder unfolded after its first axis; the
    singular values and right vectors carry over to the next core. With ranks as
    large as the unfoldings' the cores reproduce W exactly; smaller ranks give the
    truncated approximation. Returns the cores concatenated, flat float32.
    """
    sizes = _sizes("sizes", sizes)
    ranks = _sizes("tt_ranks", tt_ranks)
    if len(ranks) != len(sizes) + 1:
        raise ShapeError(f"tt_ranks has {len(ranks)} ranks but {len(sizes)} sizes need {len(sizes) + 1}")
    rest = np.asarray(W, dtype=np.float64)
    if rest.size != ranks[0] * math.prod(sizes) * ranks[-1]:
        raise ShapeError(f"W has {rest.size} elements but sizes {sizes} with outer ranks {ranks[0]} and "
                         f"{ranks[-1]} need {ranks[0] * math.prod(sizes) * ranks[-1]}")
    cores = []
    for k in range(len(sizes) - 1):
        unfolded = rest.reshape(ranks[k] * sizes[k], -1)
        available = min(unfolded.shape)
        if ranks[k + 1] > available:
            raise ShapeError(f"tt_ranks[{k + 1}] = {ranks[k + 1]} exceeds the rank of the "
                             f"{unfolded.shape[0]} x {unfolded.shape[1]} unfolding (at most {available})")
        u, s, vt = np.linalg.svd(unfolded, full_matrices=False)
        r = ranks[k + 1]
        cores.append(u[:, :r].reshape(-1))
        rest = s[:r, None] * vt[:r]
    cores.append(rest.reshape(-1))
    return np.concatenate(cores).astype(np.float32)


def matrix_to_tt(W, inp_sizes, out_sizes, tt_ranks) -> np.ndarray:
    """The TT cores of a fully connected layer's weights W [prod(out_sizes),
    prod(inp_sizes)] (FC's [output, input] layout), for a TT layer computing X W^T.

    W^T is seen as a tensor of dims inp_sizes + out_sizes, its axes interleaved
    (inp_sizes[0], out_sizes[0], inp_sizes[1], ...) and pairwise merged, then
    decomposed by `tt_svd`. Each core comes back in the order Caffe2's TT op
    reads: [inp_sizes[k], tt_ranks[k + 1], tt_ranks[k], out_sizes[k]].
    """
    inp, out, ranks = _layer_sizes(inp_sizes, out_sizes, tt_ranks)
    W = np.asarray(W)
    if W.shape != (math.prod(out), math.prod(inp)):
        raise ShapeError(f"W is {list(W.shape)} but out_sizes {out} and inp_sizes {inp} need "
                         f"[{math.prod(out)}, {math.prod(inp)}]")
    d = len(inp)
    interleaved = [axis for k in range(d) for axis in (k, d + k)]
    tensor = W.T.reshape(inp + out).transpose(interleaved)
    flat = tt_svd(tensor, [n * m for n, m in zip(inp, out)], ranks)
    cores, start = [], 0
    for k in range(d):
        shape = (ranks[k], inp[k], out[k], ranks[k + 1])
        core = flat[start:start + math.prod(shape)].reshape(shape)
        cores.append(core.transpose(1, 3, 0, 2).reshape(-1))
        start += math.prod(shape)
    return np.concatenate(cores)
