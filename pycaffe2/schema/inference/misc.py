"""Inference rules and checks of the misc family (AliasWithName, HasElements,
SinusoidPositionEncoding, PiecewiseLinearTransform, Quantile, KeySplit,
AccumulateHistogram; IsEmpty shares HasElements's rule)."""
from __future__ import annotations

from pycaffe2.files import max_blob_bytes
from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

FLOAT_TYPES = ("float32", "float64", "float16")


def positions_matrix(shape, dtype) -> None:
    """Raise unless SinusoidPositionEncoding's positions are a 2-D int32/int64 tensor."""
    if len(shape) != 2 or str(dtype) not in ("int32", "int64"):
        raise ShapeError(f"positions must be a 2-D int32 or int64 tensor, got {list(shape)} {dtype}")


def encoding_size(shape, embedding_size: int) -> None:
    """Raise when SinusoidPositionEncoding's float32 output would pass $PYCAFFE2_MAX_BLOB_BYTES."""
    size = shape[0] * shape[1] * embedding_size * 4
    if size > max_blob_bytes():
        raise ShapeError(f"the output would be {[*shape, embedding_size]} float32, {size:,} bytes, over the "
                         f"{max_blob_bytes():,}-byte cap (raise it with $PYCAFFE2_MAX_BLOB_BYTES)")


def piecewise_groups(n_bounds: int, n_slopes: int, n_intercepts: int, binary: bool) -> tuple[int, int]:
    """(groups, pieces per group) of PiecewiseLinearTransform's parameters, or raise."""
    if n_slopes != n_intercepts:
        raise ShapeError(f"slopes ({n_slopes}) and intercepts ({n_intercepts}) must have the same size")
    groups = n_bounds - n_slopes
    if groups <= 0:
        raise ShapeError(f"bounds ({n_bounds}) must hold one more value per group than slopes ({n_slopes})")
    if binary and groups != 1:
        raise ShapeError(f"binary takes one group of parameters, got {groups}")
    if n_slopes % groups or n_slopes // groups == 0:
        raise ShapeError(f"{n_slopes} slopes do not split into {groups} groups of at least one piece")
    return groups, n_slopes // groups


def piecewise_predictions(shape, dtype, binary: bool, groups: int | None) -> None:
    """Raise unless the predictions fit the parameters."""
    if str(dtype) not in FLOAT_TYPES:
        raise ShapeError(f"predictions must be a float tensor, got {dtype}")
    if binary:
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] not in (1, 2)):
            raise ShapeError(f"with binary, predictions must be [N], [N, 1] or [N, 2], got {list(shape)}")
        return
    if len(shape) != 2:
        raise ShapeError(f"predictions must be 2-D [N, M], got {list(shape)}")
    if groups is not None and shape[1] != groups:
        raise ShapeError(f"predictions have {shape[1]} columns for {groups} groups of parameters")


def piecewise_params_from_args(op_args: dict, n_inputs: int) -> bool:
    """Whether the parameters come from args (all three set) or inputs (none set), or raise."""
    given = sum(len(op_args[name]) > 0 for name in ("bounds", "slopes", "intercepts"))
    if given not in (0, 3):
        raise ShapeError("bounds, slopes and intercepts must be all set or all not set")
    if given == 3 and n_inputs != 1:
        raise ShapeError(f"with the parameters as args, the op takes 1 input, got {n_inputs}")
    if given == 0 and n_inputs != 4:
        raise ShapeError(f"without the parameters as args, the op takes 4 inputs, got {n_inputs}")
    return given == 3


def quantile_args(quantile: float, tol: float) -> None:
    """Raise unless quantile is in [0, 1] and tol > 0."""
    if not 0.0 <= quantile <= 1.0:
        raise ShapeError(f"quantile must be in [0, 1], got {quantile}")
    if tol <= 0:
        raise ShapeError(f"tol must be > 0, got {tol}")


def quantile_inputs(dtypes) -> None:
    """Raise unless the inputs are float or double tensors of one type."""
    kinds = sorted(set(map(str, dtypes)))
    if len(kinds) != 1 or kinds[0] not in ("float32", "float64"):
        raise ShapeError(f"the inputs must be float or double tensors of one type, got {', '.join(kinds)}")


@rule("misc_has_elements")
def has_elements(op: OpView, inputs: list) -> list:
    return [TensorInfo((), "bool")]


@rule("misc_sinusoid_position_encoding")
def sinusoid_position_encoding(op: OpView, inputs: list) -> list:
    (positions,) = inputs
    if positions is None:
        return [None]
    positions_matrix(positions.shape, positions.dtype)
    return [TensorInfo((*positions.shape, op.arg("embedding_size")), "float32")]


@rule("misc_piecewise_linear_transform")
def piecewise_linear_transform(op: OpView, inputs: list) -> list:
    args = {name: op.arg(name) for name in ("bounds", "slopes", "intercepts")}
    binary = op.arg("binary")
    groups = None
    if piecewise_params_from_args(args, op.n_inputs):
        groups, _ = piecewise_groups(len(args["bounds"]), len(args["slopes"]), len(args["intercepts"]), binary)
    elif all(x is not None for x in inputs[1:]):
        sizes = [_size(x.shape) for x in inputs[1:]]
        groups, _ = piecewise_groups(*sizes, binary)
    x = inputs[0]
    if x is None:
        return [None]
    piecewise_predictions(x.shape, x.dtype, binary, groups)
    return [TensorInfo(x.shape, x.dtype)]


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@rule("misc_quantile")
def quantile(op: OpView, inputs: list) -> list:
    quantile_args(op.arg("quantile"), op.arg("tol"))
    if any(x is None for x in inputs):
        return [None]
    quantile_inputs([x.dtype for x in inputs])
    return [TensorInfo((1,), inputs[0].dtype)]


def key_split(limit: int, n_outputs: int) -> None:
    """Raise unless categorical_limit > 0 names one output per key."""
    if limit <= 0:
        raise ShapeError(f"categorical_limit must be > 0, got {limit}")
    if n_outputs != limit:
        raise ShapeError(f"categorical_limit {limit} needs {limit} outputs, got {n_outputs}")


def key_type(dtype) -> None:
    """Raise unless KeySplit's keys are int32/int64."""
    if str(dtype) not in ("int32", "int64"):
        raise ShapeError(f"keys must be an int32 or int64 tensor, got {dtype}")


@rule("misc_key_split")
def key_split_rule(op: OpView, inputs: list) -> list:
    key_split(op.arg("categorical_limit"), op.n_outputs)
    if inputs[0] is not None:
        key_type(inputs[0].dtype)
    return [None] * op.n_outputs


def histogram_input(dtype) -> None:
    """Raise unless AccumulateHistogram's X is float32."""
    if str(dtype) != "float32":
        raise ShapeError(f"X must be a float32 tensor, got {dtype}")


@rule("misc_accumulate_histogram")
def accumulate_histogram(op: OpView, inputs: list) -> list:
    if op.arg("num_buckets") <= 0:
        raise ShapeError(f"num_buckets must be > 0, got {op.arg('num_buckets')}")
    if inputs[0] is not None:
        histogram_input(inputs[0].dtype)
    bins = TensorInfo((op.arg("num_buckets") + 2,), "int64")
    return [bins, bins]


def check_couple(input_names, output_names) -> None:
    """DataCouple: output i is input i's blob, and there are no more outputs than inputs."""
    if len(output_names) > len(input_names):
        raise ShapeError(f"has {len(output_names)} outputs but only {len(input_names)} inputs; output i "
                         "must be input i")
    for index, (i, o) in enumerate(zip(input_names, output_names)):
        if i != o:
            raise ShapeError(f"output {index} ('{o}') must be input {index} ('{i}'): DataCouple runs in place")


@rule("misc_data_couple")
def data_couple(op: OpView, inputs: list) -> list:
    """DataCouple: each output as its input."""
    if op.n_outputs > op.n_inputs:
        raise ShapeError(f"has {op.n_outputs} outputs but only {op.n_inputs} inputs; output i must be input i")
    return list(inputs[:op.n_outputs])


ASSERT_TYPES = ("bool", "int32", "int64")


def assert_type(dims, dtype: str) -> None:
    if dtype not in ASSERT_TYPES:
        raise ShapeError(f"X must be bool, int32 or int64, got {list(dims)} {dtype}")


@rule("misc_assert")
def assert_rule(op: OpView, inputs: list) -> list:
    """Assert: no outputs; X is bool or int."""
    if inputs[0] is not None:
        assert_type(inputs[0].shape, inputs[0].dtype)
    return []
