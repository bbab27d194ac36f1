"""TT layer kernel (NumPy): X times each TT core, from the last core to the first,
as Caffe2 chains them; the size plan and its checks are schema/inference/tt_linear.py's."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.schema.inference.tt_linear import tt_plan


@register_cpu("TT")
def tt(x, b, cores, *, inp_sizes, out_sizes, tt_ranks):
    plan = tt_plan(x.shape, b.shape, cores.shape, list(inp_sizes), list(out_sizes), list(tt_ranks))
    flat, offset = x.astype(np.float32, copy=False).reshape(-1), 0
    for i, rows, cols in plan:
        core = cores[offset:offset + rows * cols].astype(np.float32, copy=False).reshape(rows, cols)
        product = flat.reshape(-1, rows) @ core
        # Caffe2 regroups the product's values: [n / out_sizes[i], out_sizes[i]] transposed.
        flat = product.reshape(-1, out_sizes[i]).T.reshape(-1)
        offset += rows * cols
    batch = x.shape[0]
    y = flat.reshape(batch, -1).T.reshape(batch, -1)
    return (y + b.astype(np.float32, copy=False)).astype(np.float32, copy=False)
