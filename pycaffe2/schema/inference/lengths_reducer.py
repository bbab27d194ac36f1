"""Inference rules of the lengths_reducer family (Lengths{Sum,Mean,Max,WeightedSum},
SparseLengths{Sum,Mean,WeightedSum,PositionalWeightedSum} and their gradients),
and the shape checks the kernels (operators/lengths_reducer.py) share.

Where each input sits: the forward ops' layouts follow from their names; the
gradient ops' from GRADIENT_INPUTS. Checks of values (LENGTHS summing to the
number of slices or indices, indices naming rows of DATA) need the data, so they
stay in the kernels.
"""
from __future__ import annotations

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule
from pycaffe2.schema.inference.segment import index_vector

FLOAT_TYPES = ("float16", "float32", "float64")

# Each gradient op's inputs: W (the weights), OUT (the forward output), GO (dOUTPUT),
# LENGTHS, DATA, INDICES. The output rows are those of DATA, INDICES or W when given.
GRADIENT_INPUTS = {
    "LengthsSumGradient": ("GO", "LENGTHS"),
    "LengthsIndicesInGradientSumGradient": ("GO", "LENGTHS", "DATA"),
    "LengthsMeanGradient": ("GO", "LENGTHS"),
    "LengthsIndicesInGradientMeanGradient": ("GO", "LENGTHS", "DATA"),
    "LengthsMaxWithMainInputAndForwardOutputGradient": ("OUT", "GO", "LENGTHS", "DATA"),
    "LengthsWeightedSumGradient": ("W", "GO", "LENGTHS"),
    "LengthsWeightedSumWithMainInputGradient": ("W", "GO", "LENGTHS", "DATA"),
    "SparseLengthsSumGradient": ("GO", "LENGTHS"),
    "SparseLengthsIndicesInGradientSumGradient": ("GO", "LENGTHS", "INDICES"),
    "SparseLengthsMeanGradient": ("GO", "LENGTHS"),
    "SparseLengthsIndicesInGradientMeanGradient": ("GO", "LENGTHS", "INDICES"),
    "SparseLengthsWeightedSumGradient": ("W", "GO", "LENGTHS"),
    "SparseLengthsIndicesInGradientWeightedSumGradient": ("W", "GO", "LENGTHS", "INDICES"),
    "SparseLengthsWeightedSumWithMainInputGradient": ("W", "GO", "LENGTHS", "DATA", "INDICES"),
    "SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient": ("W", "GO", "LENGTHS", "DATA", "INDICES"),
}


def is_weighted(op_type: str) -> bool:
    return "Weighted" in op_type


def forward_inputs(op_type: str) -> tuple[str, ...]:
    """A forward op's inputs: DATA, (W), (INDICES), LENGTHS."""
    return (("DATA",) + (("W",) if is_weighted(op_type) else ())
            + (("INDICES",) if op_type.startswith("Sparse") else ()) + ("LENGTHS",))


def lengths_vector(shape, dtype) -> None:
    index_vector("LENGTHS", shape, dtype)


def reducer_data(shape, dtype, sparse: bool) -> None:
    """DATA: rank >= 1, float (float16 only for the SparseLengths ops)."""
    types = FLOAT_TYPES if sparse else ("float32", "float64")
    if len(shape) < 1 or str(dtype) not in types:
        raise ShapeError(f"DATA must be a {' or '.join(types)} tensor of rank >= 1, got {list(shape)} {dtype}")


def weights_vector(name: str, shape, dtype, count, counted: str) -> None:
    """A 1-D float weight per entry of `counted` (None: not checked)."""
    if len(shape) != 1 or str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"{name} must be a 1-D float tensor, got {list(shape)} {dtype}")
    if count is not None and shape[0] != count:
        raise ShapeError(f"{name} {list(shape)} must hold one weight per entry of {counted} ({count})")


def output_dtype(data_dtype) -> str:
    """The SparseLengths ops reduce float16 tables into float32."""
    return "float32" if str(data_dtype) == "float16" else str(data_dtype)


def check_forward(op_type: str, infos: dict) -> None:
    """The shape checks of a forward op on its known inputs (name -> TensorInfo)."""
    sparse = op_type.startswith("Sparse")
    data, weights, indices, lengths = (infos.get(k) for k in ("DATA", "W", "INDICES", "LENGTHS"))
    if data is not None:
        reducer_data(data.shape, data.dtype, sparse)
    if lengths is not None:
        lengths_vector(lengths.shape, lengths.dtype)
    if indices is not None:
        index_vector("INDICES", indices.shape, indices.dtype)
    if weights is not None:
        if op_type == "SparseLengthsPositionalWeightedSum":
            weights_vector("WEIGHT", weights.shape, weights.dtype, None, "")
        elif sparse:
            weights_vector("WEIGHTS", weights.shape, weights.dtype,
                           None if indices is None else indices.shape[0], "INDICES")
        else:
            weights_vector("SCALARS", weights.shape, weights.dtype,
                           None if data is None else data.shape[0], "DATA's first dim")


def named_infos(names, inputs) -> dict:
    """The known inputs (TensorInfo, not None) by their schema names."""
    return {name: info for name, info in zip(names, inputs) if info is not None}


def _reduced(op: OpView, inputs: list, dtype_of) -> list:
    """One row per segment of DATA's rows, of dtype_of(DATA's dtype)."""
    infos = named_infos(forward_inputs(op.type), inputs)
    check_forward(op.type, infos)
    if "DATA" not in infos or "LENGTHS" not in infos:
        return [None]
    data, lengths = infos["DATA"], infos["LENGTHS"]
    return [TensorInfo((lengths.shape[0], *data.shape[1:]), dtype_of(data.dtype))]


@rule("lengths_reducer_dense")
def dense(op: OpView, inputs: list) -> list:
    return _reduced(op, inputs, lambda dtype: dtype)


@rule("lengths_reducer_sparse")
def sparse(op: OpView, inputs: list) -> list:
    return _reduced(op, inputs, output_dtype)


def gradient_rows(op_type: str, infos: dict):
    """The rows of a gradient op's dDATA: those of DATA (Lengths), INDICES or W, else unknown."""
    for name in ("DATA", "INDICES", "W"):
        if name in infos and not (name == "DATA" and op_type.startswith("Sparse")):
            return infos[name].shape[0]
    return None


def check_gradient(op_type: str, infos: dict) -> None:
    """The shape checks of a gradient op on its known inputs."""
    go, out, lengths = infos.get("GO"), infos.get("OUT"), infos.get("LENGTHS")
    if go is not None:
        if len(go.shape) < 1 or go.dtype not in FLOAT_TYPES:
            raise ShapeError(f"dOUTPUT must be a float tensor of rank >= 1, got {go.describe()}")
        if lengths is not None and lengths.shape[:1] != go.shape[:1]:
            raise ShapeError(f"dOUTPUT {list(go.shape)} must have one row per entry of LENGTHS {list(lengths.shape)}")
    if lengths is not None:
        lengths_vector(lengths.shape, lengths.dtype)
    if "INDICES" in infos:
        index_vector("INDICES", infos["INDICES"].shape, infos["INDICES"].dtype)
    if "W" in infos:
        weights_vector("the weights", infos["W"].shape, infos["W"].dtype, None, "")
    if out is not None and go is not None and out.shape != go.shape:
        raise ShapeError(f"OUTPUT {list(out.shape)} and dOUTPUT {list(go.shape)} must have the same shape")
    data = infos.get("DATA")
    if data is not None and go is not None:
        sparse = op_type.startswith("Sparse")
        if tuple(data.shape[1:]) != tuple(go.shape[1:]):
            raise ShapeError(f"DATA {list(data.shape)} and dOUTPUT {list(go.shape)} must agree after the first dim")
        if not sparse and "W" in infos and infos["W"].shape[0] != data.shape[0]:
            raise ShapeError(f"the weights {list(infos['W'].shape)} must hold one weight per slice of DATA "
                             f"{list(data.shape)}")
    if "INDICES" in infos and "W" in infos and infos["W"].shape[0] != infos["INDICES"].shape[0]:
        raise ShapeError(f"the weights {list(infos['W'].shape)} must hold one weight per entry of INDICES "
                         f"{list(infos['INDICES'].shape)}")


@rule("lengths_reducer_gradient")
def gradient(op: OpView, inputs: list) -> list:
    infos = named_infos(GRADIENT_INPUTS[op.type], inputs)
    check_gradient(op.type, infos)
    go, rows = infos.get("GO"), gradient_rows(op.type, infos)
    first = None if go is None or rows is None else TensorInfo((rows, *go.shape[1:]), go.dtype)
    second = infos.get("W", None)
    return [first, second][:op.n_outputs]
