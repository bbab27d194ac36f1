"""Adding up the gradients several readers give one blob, as Caffe2's core.py does.

Dense gradients are summed by one Sum op. Sparse ones (GradientSlice: rows
`indices` get `values`) are summed by concatenating their indices and their
values along axis 0 (`<blob>_grad_indices_concat`, `<blob>_grad_values_concat`),
leaving repeated rows to add up where the slice is used (SparseToDense, the
Sparse* optimizer ops). Where Caffe2 refuses a mix of the two, each slice is
first made dense with SparseToDense, shaped by the blob itself.
"""
from __future__ import annotations

from pycaffe2.operators.registry import GradientSlice
from pycaffe2.proto import caffe2_pb2


def near_device(op: caffe2_pb2.OperatorDef, near_ops) -> caffe2_pb2.OperatorDef:
    """`op` on the device of the latest of `near_ops` that names one."""
    for other in reversed(near_ops):
        if other.HasField("device_option"):
            op.device_option.CopyFrom(other.device_option)
            break
    return op


def sum_op(inputs: list[str], output: str, near_ops) -> caffe2_pb2.OperatorDef:
    if output in inputs:  # Sum runs in place only on its first input
        inputs = [output] + [name for name in inputs if name != output]
    return near_device(caffe2_pb2.OperatorDef(type="Sum", input=inputs, output=[output]), near_ops)


def concat_ops(slices: list[GradientSlice], base: str, near_ops) -> tuple[list, GradientSlice]:
    """(the two Concat ops, the summed slice) for `slices` of one blob."""
    ops = []
    for part in ("indices", "values"):
        out = f"{base}_{part}_concat"
        ops.append(near_device(caffe2_pb2.OperatorDef(
            type="Concat", input=[getattr(s, part) for s in slices], output=[out, f"{out}_split"],
            arg=[caffe2_pb2.Argument(name="axis", i=0)]), near_ops))
    return ops, GradientSlice(ops[0].output[0], ops[1].output[0])


def densify_op(gradient: GradientSlice, like: str, output: str, near_ops) -> caffe2_pb2.OperatorDef:
    """SparseToDense of a slice into the shape of blob `like`."""
    return near_device(caffe2_pb2.OperatorDef(
        type="SparseToDense", input=[gradient.indices, gradient.values, like], output=[output]), near_ops)


def parts(gradient) -> tuple[str, ...]:
    """The blob names a gradient (a name or a GradientSlice) is made of."""
    return tuple(gradient) if isinstance(gradient, GradientSlice) else (gradient,)
