"""Made-up weights for a predict net that comes without its init net.

Real Caffe2 predict nets (SqueezeNet, tiny-YOLO, ...) are often published
without the multi-megabyte init net. `made_up_weights` walks the net once,
op by op, and gives every input that nothing provides and that the op's
schema flags with `param` a random array of the flag's kind (weight, zero,
positive, small) and of the shape its op needs there, derived from the op's
args and the shape of the data reaching it. Only a layer's number of output channels is
not in a predict net: `out_channels` picks it (a mapping from weight blob name
to count, with `default` for the rest). Weights are scaled by fan-in so that
deep nets keep finite, moderate activations.

Where an input's shape comes from is said in its schema where it can be: `param: {kind:
weight, shape: filter, dtype: uint8}` names one of the shape rules in PARAM_SHAPE_RULES
below (opschema.PARAM_SHAPES lists their names) and what to make up (float32, or an
Int8Tensor of uint8 codes or int32 values for quantized ops), so a new op's family needs
no edit here. Ops whose inputs name no shape use a rule registered here by op type
(SHAPE_RULES, `@shape_rule`).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import bind_args
from pycaffe2.schema.inference.conv import channel_axis, transposed_window, window
from pycaffe2.schema.inference.nn import axis_index

# Which inputs are parameters, and what kind, is the schema's `param` flag; the
# rules here only compute their shapes. A rule: (bound args, X's shape, output
# channels chooser) -> {input index: shape}, keyed by the op's schema type.
ShapeRule = Callable[[dict, tuple, Callable[[], int]], dict]
SHAPE_RULES: dict[str, ShapeRule] = {}


def shape_rule(*op_types: str):
    def register(function: ShapeRule) -> ShapeRule:
        for op_type in op_types:
            SHAPE_RULES[op_type] = function
        return function
    return register


@shape_rule("Conv", "ConvRelu")
def _conv(args, x_shape, channels):
    order, group = args["order"], args["group"]
    c = x_shape[channel_axis(len(x_shape), order)]
    kernel = window(args, x_shape).kernel
    m = channels()
    filter_shape = (m, c // group, *kernel) if order == "NCHW" else (m, *kernel, c // group)
    return {1: filter_shape, 2: (m,)}


@shape_rule("TT")
def _tt(args, x_shape, channels):
    inp, out, ranks = args["inp_sizes"], args["out_sizes"], args["tt_ranks"]
    cores = sum(inp[k] * ranks[k] * ranks[k + 1] * out[k] for k in range(min(len(inp), len(out), len(ranks) - 1)))
    return {1: (math.prod(out),), 2: (cores,)}


@shape_rule("FC", "FbFCPacked")
def _fc(args, x_shape, channels):
    k = int(np.prod(x_shape[args["axis"]:]))
    n = channels()
    return {1: (n, k), 2: (n,)}


@shape_rule("SpatialBN")
def _spatial_bn(args, x_shape, channels):
    c = (x_shape[channel_axis(len(x_shape), args["order"])],)
    return {1: c, 2: c, 3: c, 4: c}


@shape_rule("AffineChannel")
def _affine_channel(args, x_shape, channels):
    c = (x_shape[channel_axis(len(x_shape), args["order"])],)
    return {1: c, 2: c}


@shape_rule("Add", "Sub", "Mul", "Div")
def _broadcast_operand(args, x_shape, channels):
    if not args["broadcast"]:
        return {1: x_shape}
    axis = args["axis"] if args["axis"] >= 0 else len(x_shape) - 1
    return {1: (x_shape[axis],)}


@shape_rule("PRelu")
def _prelu(args, x_shape, channels):
    return {1: (x_shape[channel_axis(len(x_shape), args["order"])],)}


# -- shape rules a schema names in `param: {shape: ...}`: (args, X's shape, channels) -> shape

def _order(args) -> str:
    return args.get("order") or "NCHW"


def _in_channels(args, x_shape) -> int:
    return x_shape[channel_axis(len(x_shape), _order(args))]


def _transposed_per_group(args, channels) -> int:
    """ConvTranspose's M / group: the chosen M rounded up to a multiple of group."""
    return -(-channels() // args.get("group", 1))


def _filter(args, x_shape, channels):
    kernel = window(args, x_shape).kernel
    c, m, group = _in_channels(args, x_shape), channels(), args.get("group", 1)
    return (m, c // group, *kernel) if _order(args) == "NCHW" else (m, *kernel, c // group)


def _lc_filter(args, x_shape, channels):
    g = window(args, x_shape)
    c, m, group = _in_channels(args, x_shape), _transposed_per_group(args, channels), args.get("group", 1)
    m *= group
    inner = (m, c // group, *g.kernel) if _order(args) == "NCHW" else (m, *g.kernel, c // group)
    return (*g.out, *inner)


def _transposed_filter(args, x_shape, channels):
    kernel = transposed_window(args, x_shape, None).kernel
    c, m = _in_channels(args, x_shape), _transposed_per_group(args, channels)
    return (c, m, *kernel) if _order(args) == "NCHW" else (c, *kernel, m)


def _from_axis(args, x_shape) -> tuple:
    """X's dims from the op's `axis` on."""
    return tuple(x_shape[axis_index(args.get("axis", 1), len(x_shape)):])


def _inner(args, x_shape) -> int:
    return int(np.prod(_from_axis(args, x_shape)))


PARAM_SHAPE_RULES: dict[str, Callable[[dict, tuple, Callable[[], int]], tuple]] = {
    "filter": _filter,  # Conv's: [M, C/group, kernel...] (NCHW) or [M, kernel..., C/group]
    "out_channels": lambda args, x_shape, channels: (channels(),),  # the bias of M outputs
    "lc_filter": _lc_filter,  # LC's: [out..., M, C/group, kernel...] or [out..., M, kernel..., C/group]
    "lc_bias": lambda args, x_shape, channels: (*_lc_filter(args, x_shape, channels)[:len(x_shape) - 1],),
    "transposed_filter": _transposed_filter,  # ConvTranspose's: [C, M/group, kernel...] or NHWC
    "transposed_out_channels": lambda args, x_shape, channels: (
        _transposed_per_group(args, channels) * args.get("group", 1),),
    "fc_weight": lambda args, x_shape, channels: (channels(), _inner(args, x_shape)),  # [N, K]
    "fc_weight_transposed": lambda args, x_shape, channels: (_inner(args, x_shape), channels()),
    "channels": lambda args, x_shape, channels: (_in_channels(args, x_shape),),  # X's C, by `order`
    "normalized": lambda args, x_shape, channels: _from_axis(args, x_shape),  # LayerNorm's gamma
    "inner_size": lambda args, x_shape, channels: (_inner(args, x_shape),),  # prod of X's dims from axis
}


def can_make_up(op_type: str, position: int) -> bool:
    """Whether `made_up_weights` can fill input `position` of an op of this type."""
    schema = get_schema(op_type)
    if schema is None or schema.input_param(position) is None:
        return False
    return schema.type in SHAPE_RULES or schema.inputs[position].param_shape is not None


def _values_kind(kind: str, args: dict) -> str:
    """The values drawn for a schema `param` kind; a `constant` operand is a
    per-channel factor under broadcast, else noise of X's shape."""
    if kind == "constant":
        return "positive" if args["broadcast"] else "small"
    return kind


def _draw(shape, kind, rng, dtype: str = "float32"):
    """Random values of a `param` kind; for dtype uint8 or int32, an Int8Tensor quantizing them
    (uint8 codes around 128 with scale max|w| / 127; int32 values in units of max|w| / 2**20)."""
    values = _draw_float(shape, kind, rng)
    if dtype == "float32":
        return values
    top = float(np.abs(values).max(initial=0.0))
    if dtype == "uint8":
        scale = top / 127 if top else 1.0
        return Int8Tensor(np.clip(np.rint(values / scale) + 128, 0, 255).astype(np.uint8), scale, 128)
    scale = top / 2 ** 20 if top else 1.0
    return Int8Tensor(np.rint(values / scale).astype(np.int32), scale, 0)


def _draw_float(shape, kind, rng) -> np.ndarray:
    if kind == "weight":
        fan_in = int(np.prod(shape[1:])) or 1
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    if kind == "positive":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if kind == "small":
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    return np.zeros(shape, np.float32)


def made_up_weights(net: caffe2_pb2.NetDef, inputs: dict, out_channels=None, default: int = 16,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Random parameters for every op input that neither `inputs` nor an
    earlier op provides; returns {blob name: array}. Runs the net once."""
    out_channels = out_channels or {}
    rng = np.random.default_rng(seed)
    workspace = Workspace("_made_up", seed=seed)
    for name, value in inputs.items():
        workspace.FeedBlob(name, value)
    made: dict[str, np.ndarray] = {}
    for index, op in enumerate(net.op):
        missing = [i for i, name in enumerate(op.input) if not workspace.HasBlob(name)]
        if missing:
            made.update(_params_for(index, op, missing, workspace, out_channels, default, rng))
            for name in op.input:
                if name in made and not workspace.HasBlob(name):
                    workspace.FeedBlob(name, made[name])
        workspace.RunOperatorOnce(op)
    return made


def _params_for(index, op, missing, workspace, out_channels, default, rng) -> dict:
    unknown = [i for i in missing if not can_make_up(op.type, i)]
    if unknown:
        raise PyCaffe2Error(f"op {index} ({op.type}): cannot make up input(s) "
                            f"{', '.join(op.input[i] for i in unknown)}: no rule for {op.type}")
    schema = get_schema(op.type)
    args = bind_args(schema, op)
    x_shape = tuple(workspace.FetchBlob(op.input[0]).shape)
    first_weight = op.input[1] if len(op.input) > 1 else op.input[0]

    def channels() -> int:
        return out_channels.get(first_weight, default)
    by_op = SHAPE_RULES[schema.type](args, x_shape, channels) if schema.type in SHAPE_RULES else {}
    made = {}
    for i in missing:
        spec = schema.inputs[i]
        shape = PARAM_SHAPE_RULES[spec.param_shape](args, x_shape, channels) if spec.param_shape else by_op[i]
        made[op.input[i]] = _draw(shape, _values_kind(spec.param, args), rng, spec.param_dtype)
    return made
