"""Inference rules of the rowwise_quantized family: the fused 8-bit, fused 4/2-bit
and separate-scale 8Bits conversions, and the SparseLengths reducers reading those
tables, with the shape checks the kernels (operators/rowwise_quantized.py) share.

Every op's format follows from its type name (`fmt`): the number of bits, whether
the scale and bias are fused (float32 for 8 bits, float16 below) and whether it is
a Fake N-bit op (N-bit codes in the 8-bit format).
"""
from __future__ import annotations

import re
from typing import NamedTuple

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.lengths_reducer import check_forward, forward_inputs


class Format(NamedTuple):
    bits: int  # the codes' width
    fused: bool  # scale and bias at the end of each row (else the 8Bits scale_bias input)
    tail: int  # bytes of scale and bias per fused row: 8 (float32 pair) or 4 (float16 pair)

    @property
    def per_byte(self) -> int:
        return 8 // self.bits if self.tail == 4 else 1


def fmt(op_type: str) -> Format:
    if "8Bits" in op_type or "RowwiseQuantized8Bits" in op_type or op_type == "Rowwise8BitQuantizedToFloat":
        return Format(8, False, 0)
    bits = int(re.search(r"(\d)Bit", op_type).group(1))
    if bits == 8 or "Fake" in op_type:
        return Format(bits, True, 8)
    return Format(bits, True, 4)


def float_input(name: str, info: TensorInfo, dtype: str, rank2: bool) -> None:
    if info.dtype != dtype or (len(info.shape) != 2 if rank2 else len(info.shape) < 1):
        raise ShapeError(f"{name} must be a {dtype} {'matrix' if rank2 else 'tensor of rank >= 1'}, "
                         f"got {info.describe()}")


def fused_table(name: str, info: TensorInfo, form: Format, rank2: bool, strict: bool) -> int:
    """A fused uint8 table: its number of value columns. `strict`: more than the tail
    bytes (the reducers), else at least as many (the conversions)."""
    if info.dtype != "uint8" or (len(info.shape) != 2 if rank2 else len(info.shape) < 1):
        raise ShapeError(f"{name} must be a uint8 {'matrix' if rank2 else 'tensor of rank >= 1'}, "
                         f"got {info.describe()}")
    columns = info.shape[-1]
    if columns < form.tail + strict:
        raise ShapeError(f"{name} {list(info.shape)} must have {'more than' if strict else 'at least'} "
                         f"{form.tail} columns (the scale and bias)")
    return (columns - form.tail) * form.per_byte


def quantized_columns(shape, form: Format) -> int:
    """The fused row length of `shape[-1]` float columns."""
    columns = shape[-1]
    if form.per_byte > 1 and columns % form.per_byte:
        raise ShapeError(f"{form.bits}-bit quantization needs a multiple of {form.per_byte} columns, "
                         f"got {columns}")
    return -(-columns // form.per_byte) + form.tail


def scale_bias(info: TensorInfo, rows) -> None:
    if info.dtype != "float32" or len(info.shape) != 2 or info.shape[1] != 2:
        raise ShapeError(f"scale_bias must be a float32 [rows, 2] matrix, got {info.describe()}")
    if rows is not None and info.shape[0] != rows:
        raise ShapeError(f"scale_bias {list(info.shape)} must have one row per row of DATA ({rows})")


def source_dtype(op_type: str) -> str:
    return "float16" if op_type.startswith("Half") else "float32"


@rule("rowwise_quantized_fused8")
def fused8(op: OpView, inputs: list) -> list:
    """The 8-bit fused conversions and the Fake N-bit ones: [rows, columns] <-> [rows, columns + 8]."""
    (x,) = inputs
    if x is None:
        return [None]
    form = fmt(op.type)
    if op.type.startswith("Fused"):
        columns = fused_table("the input", x, form, rank2=True, strict=False)
        dtype = "float16" if op.type.endswith("Half") or op.type.endswith("HalfFloat") else "float32"
        return [TensorInfo((x.shape[0], columns), dtype)]
    float_input("the input", x, source_dtype(op.type), rank2=True)
    return [TensorInfo((x.shape[0], x.shape[1] + 8), "uint8")]


@rule("rowwise_quantized_nbit")
def nbit(op: OpView, inputs: list) -> list:
    """The fused 4/2-bit conversions, over the last axis of any rank."""
    (x,) = inputs
    if x is None:
        return [None]
    form = fmt(op.type)
    if op.type.startswith("Fused"):
        columns = fused_table("the input", x, form, rank2=False, strict=False)
        dtype = "float16" if op.type.endswith("Half") else "float32"
        return [TensorInfo((*x.shape[:-1], columns), dtype)]
    float_input("the input", x, source_dtype(op.type), rank2=False)
    return [TensorInfo((*x.shape[:-1], quantized_columns(x.shape, form)), "uint8")]


@rule("rowwise_quantized_8bits")
def eight_bits(op: OpView, inputs: list) -> list:
    """FloatToRowwiseQuantized8Bits and Rowwise8BitQuantizedToFloat."""
    if op.type == "FloatToRowwiseQuantized8Bits":
        (x,) = inputs
        if x is None:
            return [None, None]
        float_input("the input", x, "float32", rank2=False)
        return [TensorInfo(x.shape, "uint8"), TensorInfo((x.shape[0], 2), "float32")]
    x, sb = inputs
    if x is not None and (x.dtype != "uint8" or len(x.shape) < 1):
        raise ShapeError(f"quantized_input must be a uint8 tensor of rank >= 1, got {x.describe()}")
    if sb is not None:
        scale_bias(sb, None if x is None else x.shape[0])
    return [None if x is None else TensorInfo(x.shape, "float32")]


def reducer_inputs(op_type: str) -> tuple[str, ...]:
    """DATA, (W), INDICES, LENGTHS, (SCALE_BIAS for the 8Bits ones); GatherFused8BitRowwise's DATA, INDICES."""
    if op_type == "GatherFused8BitRowwise":
        return ("DATA", "INDICES")
    names = forward_inputs("Sparse" + ("Weighted" if "Weighted" in op_type else ""))
    if op_type.endswith("RowwiseSparse"):
        return names + ("MAPPING",)
    return names + (("SCALE_BIAS",) if not fmt(op_type).fused else ())


def check_reducer(op_type: str, infos: dict):
    """The checks of a quantized SparseLengths reducer; returns its value columns (or None)."""
    form = fmt(op_type)
    check_forward("SparseLengths" + ("Weighted" if "Weighted" in op_type else ""),
                  {k: v for k, v in infos.items() if k in ("W", "INDICES", "LENGTHS")})
    data = infos.get("DATA")
    if "W" in infos and infos["W"].dtype != "float32":
        raise ShapeError(f"the weights must be float32, got {infos['W'].describe()}")
    if "MAPPING" in infos and (infos["MAPPING"].dtype != "int32" or len(infos["MAPPING"].shape) != 1):
        raise ShapeError(f"compressed_indices_mapping must be a 1-D int32 tensor, got {infos['MAPPING'].describe()}")
    if "SCALE_BIAS" in infos:
        scale_bias(infos["SCALE_BIAS"], None if data is None else data.shape[0])
    if data is None:
        return None
    if form.fused:
        return fused_table("DATA", data, form, rank2=True, strict=True)
    if data.dtype != "uint8" or len(data.shape) < 1:
        raise ShapeError(f"DATA must be a uint8 tensor of rank >= 1, got {data.describe()}")
    return tuple(data.shape[1:])


@rule("rowwise_quantized_reduce")
def reduce(op: OpView, inputs: list) -> list:
    infos = {name: info for name, info in zip(reducer_inputs(op.type), inputs) if info is not None}
    columns = check_reducer(op.type, infos)
    rows = "INDICES" if op.type == "GatherFused8BitRowwise" else "LENGTHS"
    if columns is None or rows not in infos:
        return [None]
    tail = columns if isinstance(columns, tuple) else (columns,)
    return [TensorInfo((infos[rows].shape[0], *tail), "float32")]
