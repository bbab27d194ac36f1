"""Inference rule of the tt_linear family (TT) and the size plan its kernel
follows: the shape of every intermediate product, checked before any runs."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def check_sizes(inp, out, ranks) -> None:
    """One input and one output size per core, one rank more than cores, all positive."""
    if len(inp) != len(out) or not inp:
        raise ShapeError(f"inp_sizes {list(inp)} and out_sizes {list(out)} must give one size per core")
    if len(ranks) != len(inp) + 1:
        raise ShapeError(f"tt_ranks {list(ranks)} must have {len(inp) + 1} ranks for {len(inp)} cores")
    if min(*inp, *out, *ranks) < 1:
        raise ShapeError("inp_sizes, out_sizes and tt_ranks must be positive")


def tt_plan(x_shape, b_shape, cores_shape, inp, out, ranks) -> list[tuple[int, int, int]]:
    """Per core from the last: (core i, its rows, its columns); raises ShapeError
    for sizes that do not chain (Caffe2's checks, and the ones it leaves to memory)."""
    if len(x_shape) < 2:
        raise ShapeError(f"X must have rank >= 2 ([batch, inputs]), got {list(x_shape)}")
    if len(b_shape) != 1:
        raise ShapeError(f"b must be 1-D, got {list(b_shape)}")
    if len(cores_shape) != 1:
        raise ShapeError(f"cores must be 1-D, got {list(cores_shape)}")
    check_sizes(inp, out, ranks)
    size, used, plan = math.prod(x_shape), 0, []
    for i in reversed(range(len(inp))):
        rows, cols = inp[i] * ranks[i + 1], ranks[i] * out[i]
        if size % rows:
            raise ShapeError(f"core {i} takes rows of {rows} (inp_sizes[{i}] * tt_ranks[{i + 1}]) but the "
                             f"product so far has {size} values (X {list(x_shape)})")
        used += rows * cols
        if used > cores_shape[0]:
            raise ShapeError(f"cores has {cores_shape[0]} values but the cores need at least {used}")
        size = size // rows * cols
        plan.append((i, rows, cols))
    batch, n_out = x_shape[0], math.prod(out)
    if batch == 0 or size != batch * n_out:
        raise ShapeError(f"X {list(x_shape)} gives {size} output values, not batch {batch} x prod(out_sizes) "
                         f"{n_out}")
    if b_shape[0] != n_out:
        raise ShapeError(f"b has {b_shape[0]} values but prod(out_sizes) is {n_out}")
    return plan


@rule("tt_linear_tt")
def tt(op: OpView, inputs: list) -> list:
    """float [batch, prod(out_sizes)]."""
    check_sizes(op.arg("inp_sizes"), op.arg("out_sizes"), op.arg("tt_ranks"))
    if any(info is None for info in inputs):
        return [None]
    x, b, cores = inputs
    tt_plan(x.shape, b.shape, cores.shape, op.arg("inp_sizes"), op.arg("out_sizes"), op.arg("tt_ranks"))
    return [TensorInfo((x.shape[0], math.prod(op.arg("out_sizes"))), "float32")]
