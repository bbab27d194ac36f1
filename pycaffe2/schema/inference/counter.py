"""Inference rules of the counter family: the counter is an object blob (its
input info is unknown); the outputs are int64 or bool scalars []."""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, TensorInfo, rule


@rule("counter_count")
def count(op: OpView, inputs: list) -> list:
    """An int64 scalar (a count)."""
    return [TensorInfo((), "int64")] * op.n_outputs


@rule("counter_done")
def done(op: OpView, inputs: list) -> list:
    """A bool scalar."""
    return [TensorInfo((), "bool")]
