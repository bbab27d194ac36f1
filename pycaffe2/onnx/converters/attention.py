"""Converters of ONNX's attention ops: Attention, RotaryEmbedding, SwiGLU, LinearAttention
and CausalConvWithState, each onto the pycaffe2 op of the same name (attention_ops).
ONNX marks an omitted optional input with an empty name; the pycaffe2 ops take only the
inputs given, named in order by their `extra_inputs` arg."""
from __future__ import annotations

from pycaffe2.onnx.registry import Unsupported, converter

# ONNX TensorProto.DataType -> Caffe2's name, for Attention's softmax_precision.
_SOFTMAX_TYPES = {1: "FLOAT", 10: "FLOAT16", 11: "DOUBLE"}


def _given(node, first: int, names: tuple) -> tuple[list[str], list[str]]:
    """The inputs from index `first` on that the node gives, and their names in `names`."""
    blobs, given = [], []
    for index, name in enumerate(names, start=first):
        if node.input(index):
            blobs.append(node.input(index))
            given.append(name)
    return blobs, given


def _outputs(node, ctx) -> list[str]:
    """The node's outputs up to the last it names; a fresh blob for each one it skips."""
    last = max(i for i in range(len(node.outputs)) if node.output(i))
    return [node.output(i) or ctx.fresh(f"{node.op_type.lower()}_unused") for i in range(last + 1)]


def _copy_attrs(node, names, args: dict) -> dict:
    for name in names:
        if node.has_attr(name):
            args[name] = node.attr(name)
    return args


@converter("Attention", since=23)
def _attention(node, ctx):
    extra, names = _given(node, 3, ("attn_mask", "past_key", "past_value", "nonpad_kv_seqlen"))
    args = _copy_attrs(node, ("scale", "is_causal", "q_num_heads", "kv_num_heads", "softcap",
                              "qk_matmul_output_mode", "left_window_size", "right_window_size"),
                       {"extra_inputs": names})
    if node.has_attr("softmax_precision"):
        precision = node.attr("softmax_precision")
        if precision not in _SOFTMAX_TYPES:
            raise Unsupported(f"softmax_precision {precision} (pycaffe2's Attention runs its softmax in "
                              f"FLOAT (1), FLOAT16 (10) or DOUBLE (11))")
        args["softmax_precision"] = _SOFTMAX_TYPES[precision]
    ctx.op("Attention", [node.input(0), node.input(1), node.input(2)] + extra, _outputs(node, ctx), **args)


@converter("RotaryEmbedding", since=23)
def _rotary_embedding(node, ctx):
    args = _copy_attrs(node, ("interleaved", "rotary_embedding_dim", "num_heads"), {})
    ctx.op("RotaryEmbedding", [name for name in node.inputs if name], node.outputs[:1], **args)


@converter("SwiGLU", since=28)
def _swiglu(node, ctx):
    ctx.op("SwiGLU", node.inputs[:2], node.outputs[:1], **_copy_attrs(node, ("alpha",), {}))


@converter("LinearAttention", since=27)
def _linear_attention(node, ctx):
    for name in ("q_num_heads", "kv_num_heads"):
        if not node.has_attr(name):
            raise Unsupported(f"no {name} attribute (LinearAttention requires q_num_heads and kv_num_heads)")
    extra, names = _given(node, 3, ("past_state", "decay", "beta"))
    args = _copy_attrs(node, ("q_num_heads", "kv_num_heads", "scale", "update_rule"), {"extra_inputs": names})
    ctx.op("LinearAttention", node.inputs[:3] + extra, _outputs(node, ctx), **args)


@converter("CausalConvWithState", since=27)
def _causal_conv_with_state(node, ctx):
    extra, names = _given(node, 2, ("bias", "past_state"))
    args = _copy_attrs(node, ("activation",), {"extra_inputs": names})
    ctx.op("CausalConvWithState", node.inputs[:2] + extra, _outputs(node, ctx), **args)
