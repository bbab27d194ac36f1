"""Inference rules of the segment_reducer family: the segment-id reductions
SortedSegment{Sum,Mean,WeightedSum}, SparseSortedSegment*, UnsortedSegmentWeightedSum,
SparseUnsortedSegment*, SortedSegmentRange{Sum,Mean,Max,LogSumExp,LogMeanExp} and
their gradient ops, and the checks the kernels (operators/segment_reducer.py) share.

A forward op's inputs follow from its name: DATA, (SCALARS: WeightedSum),
(INDICES: Sparse*), SEGMENT_IDS. The number of segments depends on the ids'
values (the last id + 1 when sorted, the largest + 1 when unsorted), so OUTPUT's
first dim is unknown here unless num_segments gives it.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.lengths_reducer import named_infos, weights_vector
from pycaffe2.schema.inference.segment import index_vector

FLOATS = ("float32", "float64")


def forward_inputs(op_type: str) -> tuple[str, ...]:
    """DATA, (SCALARS), (INDICES), SEGMENT_IDS."""
    return (("DATA",) + (("SCALARS",) if "WeightedSum" in op_type else ())
            + (("INDICES",) if op_type.startswith("Sparse") else ()) + ("SEGMENT_IDS",))


def gradient_inputs(op_type: str) -> tuple[str, ...]:
    """The gradient ops' inputs: the range ones (DATA, OUTPUT, dOUTPUT, SEGMENT_IDS); the
    others ((SCALARS), dOUTPUT, SEGMENT_IDS)."""
    if "SegmentRange" in op_type:
        return ("DATA", "OUTPUT", "GO", "SEGMENT_IDS")
    return (("SCALARS",) if "WeightedSum" in op_type else ()) + ("GO", "SEGMENT_IDS")


def float_tensor(name: str, info) -> None:
    if len(info.shape) < 1 or str(info.dtype) not in FLOATS:
        raise ShapeError(f"{name} must be a float32 or float64 tensor of rank >= 1, got {info.describe()}")


def check_forward(op_type: str, infos: dict, num_segments: int = -1) -> None:
    """The shape checks of a forward op on its known inputs (name -> TensorInfo)."""
    data, scalars, indices, ids = (infos.get(k) for k in ("DATA", "SCALARS", "INDICES", "SEGMENT_IDS"))
    if data is not None:
        float_tensor("DATA", data)
    if ids is not None:
        index_vector("SEGMENT_IDS", ids.shape, ids.dtype)
    if indices is not None:
        index_vector("INDICES", indices.shape, indices.dtype)
        if ids is not None and ids.shape != indices.shape:
            raise ShapeError(f"SEGMENT_IDS {list(ids.shape)} must hold one id per entry of INDICES "
                             f"{list(indices.shape)}")
    elif ids is not None and data is not None and "INDICES" not in forward_inputs(op_type) \
            and data.shape[0] != ids.shape[0]:
        raise ShapeError(f"SEGMENT_IDS {list(ids.shape)} must hold one id per slice of DATA {list(data.shape)}")
    if scalars is not None:
        weights_vector("SCALARS", scalars.shape, scalars.dtype, None if ids is None else ids.shape[0],
                       "SEGMENT_IDS")
    if num_segments < -1:
        raise ShapeError(f"num_segments must be -1 or >= 0, got {num_segments}")


def check_gradient(op_type: str, infos: dict) -> None:
    """The shape checks of a gradient op on its known inputs."""
    go, ids, data, out, scalars = (infos.get(k) for k in ("GO", "SEGMENT_IDS", "DATA", "OUTPUT", "SCALARS"))
    if go is not None:
        float_tensor("dOUTPUT", go)
    if ids is not None:
        index_vector("SEGMENT_IDS", ids.shape, ids.dtype)
    if out is not None and go is not None and out.shape != go.shape:
        raise ShapeError(f"OUTPUT {list(out.shape)} and dOUTPUT {list(go.shape)} must have the same shape")
    if data is not None:
        float_tensor("DATA", data)
        if ids is not None and data.shape[0] != ids.shape[0]:
            raise ShapeError(f"SEGMENT_IDS {list(ids.shape)} must hold one id per slice of DATA "
                             f"{list(data.shape)}")
        if go is not None and tuple(data.shape[1:]) != tuple(go.shape[1:]):
            raise ShapeError(f"DATA {list(data.shape)} and dOUTPUT {list(go.shape)} must agree after the first dim")
    if scalars is not None:
        weights_vector("SCALARS", scalars.shape, scalars.dtype, None if ids is None else ids.shape[0],
                       "SEGMENT_IDS")


@rule("segment_reducer_forward")
def forward(op: OpView, inputs: list) -> list:
    infos = named_infos(forward_inputs(op.type), inputs)
    num_segments = op.arg("num_segments") if op.type.startswith(("Unsorted", "SparseUnsorted")) else -1
    check_forward(op.type, infos, num_segments)
    data = infos.get("DATA")
    if data is None or num_segments < 0:
        return [None]
    return [TensorInfo((num_segments, *data.shape[1:]), data.dtype)]


@rule("segment_reducer_gradient")
def gradient(op: OpView, inputs: list) -> list:
    infos = named_infos(gradient_inputs(op.type), inputs)
    check_gradient(op.type, infos)
    go, ids = infos.get("GO"), infos.get("SEGMENT_IDS")
    if go is None or ids is None:
        return [None]
    return [TensorInfo((ids.shape[0], *go.shape[1:]), go.dtype)]


def reduce_front_shapes(data, scalars, num_reduce_dim: int) -> None:
    """ReduceFrontWeightedSum: SCALARS holds one weight per block, shaped as DATA's first num_reduce_dim dims."""
    if data is not None:
        if not 0 <= num_reduce_dim <= len(data.shape):
            raise ShapeError(f"num_reduce_dim ({num_reduce_dim}) must be in 0..{len(data.shape)} (DATA's rank)")
        if data.dtype not in FLOATS:
            raise ShapeError(f"DATA must be a float32 or float64 tensor, got {data.describe()}")
    if scalars is not None:
        if scalars.dtype not in FLOATS or len(scalars.shape) != num_reduce_dim:
            raise ShapeError(f"SCALARS must be a float tensor of rank num_reduce_dim ({num_reduce_dim}), "
                             f"got {scalars.describe()}")
        if data is not None and tuple(scalars.shape) != tuple(data.shape[:num_reduce_dim]):
            raise ShapeError(f"SCALARS {list(scalars.shape)} must be DATA's first {num_reduce_dim} dims "
                             f"{list(data.shape[:num_reduce_dim])}")


def reduce_front_gradient_shape(scalars, d_out, shape, num_reduce_dim: int) -> tuple:
    """dDATA's dims: the values of SHAPE (DATA's shape), checked against SCALARS and dOUTPUT."""
    if shape.ndim != 1 or shape.dtype.kind not in "iu":
        raise ShapeError(f"SHAPE must be a 1-D int tensor, got {list(shape.shape)} {shape.dtype}")
    dims = tuple(int(v) for v in shape)
    if any(v < 0 for v in dims):
        raise ShapeError(f"SHAPE {list(dims)} must not hold negative dims")
    if not 0 <= num_reduce_dim <= len(dims) or tuple(d_out.shape) != dims[num_reduce_dim:] \
            or tuple(scalars.shape) != dims[:num_reduce_dim]:
        raise ShapeError(f"SHAPE {list(dims)} must be SCALARS' dims {list(scalars.shape)} followed by "
                         f"dOUTPUT's {list(d_out.shape)}")
    return dims


@rule("segment_reducer_reduce_front")
def reduce_front(op: OpView, inputs: list) -> list:
    data, scalars = inputs
    n = op.arg("num_reduce_dim")
    reduce_front_shapes(data, scalars, n)
    return [None if data is None else TensorInfo(tuple(data.shape[n:]), data.dtype)]


@rule("segment_reducer_reduce_front_gradient")
def reduce_front_gradient(op: OpView, inputs: list) -> list:
    scalars, d_out, _shape = inputs
    if scalars is not None and scalars.dtype not in FLOATS:
        raise ShapeError(f"SCALARS must be a float tensor, got {scalars.describe()}")
    if d_out is not None and d_out.dtype not in FLOATS:
        raise ShapeError(f"dOUTPUT must be a float tensor, got {d_out.describe()}")
    return [None]  # dims: SHAPE's values
