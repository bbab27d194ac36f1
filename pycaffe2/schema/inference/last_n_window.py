"""Inference rule of LastNWindowCollector: the buffer's row count depends on the
values seen (unknown); the cursor is an int32 scalar, the count as given."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule


def check_collector(n_inputs: int, n_outputs: int, data_shape, next_info, visited_info) -> None:
    """Raise unless DATA has rank >= 1, the cursor is an int32 scalar, and
    NUM_VISITED (input and output together) is one int64 element."""
    if n_outputs == 3 and n_inputs < 5:
        raise ShapeError("output NUM_VISITED needs input NUM_VISITED (the same blob)")
    if data_shape is not None and len(data_shape) < 1:
        raise ShapeError("DATA must have rank >= 1, got a scalar")
    if next_info is not None and (tuple(next_info[1]) != () or str(next_info[0]) != "int32"):
        raise ShapeError(f"next cursor must be an int32 scalar [], got {list(next_info[1])} {next_info[0]}")
    if n_outputs == 3 and visited_info is not None and (
            math.prod(visited_info[1]) != 1 or str(visited_info[0]) != "int64"):
        raise ShapeError(f"NUM_VISITED must be one int64 element, got {list(visited_info[1])} {visited_info[0]}")


@rule("last_n_window_collector")
def collector(op: OpView, inputs: list) -> list:
    """[unknown buffer, int32 [], NUM_VISITED as given]."""
    data, cursor = inputs[2], inputs[1]
    visited = inputs[4] if len(inputs) > 4 else None
    check_collector(op.n_inputs, op.n_outputs, None if data is None else data.shape,
                    None if cursor is None else (cursor.dtype, cursor.shape),
                    None if visited is None else (visited.dtype, visited.shape))
    out = [None, TensorInfo((), "int32")]
    if op.n_outputs == 3:
        out.append(visited)
    return out
