"""The ATen op's dispatch, as Caffe2's caffe2/contrib/aten does it: the string
arg `operator` names an ATen function, the op's inputs are its tensors and its
other args the function's attributes. Caffe2 picks the overload from the
operator, the set of attribute names and the input count; here each supported
overload is a Form (its tensor count, its attributes with their ATen defaults,
its output count and its shape rule), and `select_form` picks it the same way,
so `validate`, CreateNet and the kernel name the same form or the same error.

The shape rules live in `_aten_shapes` and `_aten_nn_shapes` (modules without rules of their own);
this module holds the table and the `aten` inference rule.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from pycaffe2.files import check_alloc
from pycaffe2.schema.inference import OpView, ShapeError, rule
from pycaffe2.schema.inference import _aten_nn_shapes as nn
from pycaffe2.schema.inference import _aten_shapes as shapes

REQUIRED = "required"
IGNORED_ARGS = ("operator", "overload_name", "type")  # Caffe2 leaves operator and type out of the key
INT64_MAX = 2**63 - 1

# attribute kinds: i int, b bool (an int), f number (int or float), s string,
# L int list (a single int counts as a one-item list), iL an int or an int list,
# oi an int that may be left unset (None)
_KIND_TEXT = {"i": "an int", "b": "a bool (an int)", "f": "a number", "s": "a string",
              "L": "a list of ints", "iL": "an int or a list of ints"}


class Form(NamedTuple):
    """One overload of an ATen function."""

    key: str  # the kernel's name: "max", "max.dim", ...
    operator: str
    inputs: int | None  # tensor inputs; None: one or more (a TensorList)
    attrs: dict  # name -> (kind, default or REQUIRED)
    outputs: int  # the most outputs it gives
    shape: Callable  # (input infos, attrs) -> output infos; raises ShapeError

    def signature(self) -> str:
        tensors = "tensors..." if self.inputs is None else ", ".join(f"t{i}" for i in range(self.inputs))
        attrs = ", ".join(name if default == REQUIRED else f"{name}={default}"
                          for name, (_, default) in self.attrs.items())
        return f"{self.operator}({tensors}{'; ' + attrs if attrs else ''})"


FORMS: dict[str, list[Form]] = {}


def form(operator: str, inputs: int | None, shape_rule: Callable, /, outputs: int = 1, key: str | None = None,
         **attrs) -> None:
    FORMS.setdefault(operator, []).append(Form(key or operator, operator, inputs, attrs, outputs, shape_rule))


def supported_operators() -> list[str]:
    return sorted(FORMS)


def select_form(operator, n_inputs: int, given: dict) -> tuple[Form, dict]:
    """The form an ATen op names, and its attributes (ATen defaults filled in).
    `given` maps the op's attribute names to their values (absent ones left out)."""
    forms = FORMS.get(operator)
    if not forms:
        raise ShapeError(f"ATen operator '{operator}' is not supported; supported: "
                         + ", ".join(supported_operators()))
    names = set(given) - set(IGNORED_ARGS)
    for candidate in forms:
        count_ok = n_inputs >= 1 if candidate.inputs is None else n_inputs == candidate.inputs
        required = {name for name, (_, default) in candidate.attrs.items() if default == REQUIRED}
        if count_ok and required <= names <= set(candidate.attrs):
            return candidate, _attribute_values(candidate, given)
    listed = "; ".join(f.signature() for f in forms)
    got = ", ".join(sorted(names)) or "none"
    raise ShapeError(f"ATen operator '{operator}' with {n_inputs} input(s) and args [{got}] matches "
                     f"none of its forms: {listed}")


def _attribute_values(chosen: Form, given: dict) -> dict:
    values = {}
    for name, (kind, default) in chosen.attrs.items():
        values[name] = _typed(name, kind, given[name]) if name in given else default
    return values


def _typed(name: str, kind: str, value):
    is_int = isinstance(value, int)
    if kind in ("i", "b") and is_int:
        return bool(value) if kind == "b" else value
    if kind == "f" and (is_int or isinstance(value, float)):
        return value
    if kind == "s" and isinstance(value, str):
        return value
    if kind in ("L", "iL") and is_int:
        return value if kind == "iL" else [value]
    if kind in ("L", "iL") and isinstance(value, list) and all(isinstance(v, int) for v in value):
        return [int(v) for v in value]
    raise ShapeError(f"arg '{name}' must be {_KIND_TEXT[kind]}, got {value!r}")


@rule("aten")
def aten(op: OpView, inputs: list) -> list:
    if op.arg("operator") is None:  # the checker reports the missing arg
        return [None] * op.n_outputs
    given = {name: value for name, value in op.args.items() if value is not None}
    chosen, attrs = select_form(op.arg("operator"), op.n_inputs, given)
    check_outputs(chosen, op.n_outputs)
    if any(info is None for info in inputs):
        return [None] * op.n_outputs
    return list(chosen.shape(list(inputs), attrs))[:op.n_outputs]


def check_outputs(chosen: Form, n_outputs: int) -> None:
    if not 1 <= n_outputs <= chosen.outputs:
        most = "1 output" if chosen.outputs == 1 else f"1 to {chosen.outputs} outputs"
        raise ShapeError(f"ATen operator '{chosen.operator}' ({chosen.signature()}) gives {most}, "
                         f"got {n_outputs}")


def check_sizes(infos) -> None:
    """Refuse outputs over the blob cap before the kernel allocates them (an output
    whose size depends on input values the net was validated without)."""
    for index, info in enumerate(infos):
        if info is not None:
            check_alloc(info.shape, info.dtype, f"output {index}")


# -- the table -------------------------------------------------------------------------------------
R = REQUIRED
form("neg", 1, shapes.negated)
for _name in ("abs", "relu", "floor", "ceil", "sign", "contiguous", "clone", "detach"):
    form(_name, 1, shapes.same)
for _name in ("exp", "log", "sqrt", "rsqrt", "erf", "sigmoid", "tanh", "sin", "cos", "reciprocal",
              "log1p", "expm1"):
    form(_name, 1, shapes.float_out)
form("gelu", 1, shapes.float_out, approximate=("s", "none"))
for _name in ("add", "sub"):
    form(_name, 2, shapes.binary, alpha=("f", 1))
    form(_name, 1, shapes.scalar, key=f"{_name}.scalar", other=("f", R), alpha=("f", 1))
form("mul", 2, shapes.binary)
form("mul", 1, shapes.scalar, key="mul.scalar", other=("f", R))
form("div", 2, shapes.true_divide)
form("div", 1, shapes.scalar_divide, key="div.scalar", other=("f", R))
form("pow", 2, shapes.binary)
form("pow", 1, shapes.scalar, key="pow.scalar", exponent=("f", R))
for _name in ("eq", "ne", "lt", "gt", "le", "ge"):
    form(_name, 2, shapes.compare)
form("where", 3, shapes.where)
for _name in ("max", "min"):
    form(_name, 1, shapes.reduce_all("extreme"), key=f"{_name}.all")
    form(_name, 1, shapes.max_dim, outputs=2, key=f"{_name}.dim", dim=("i", R), keepdim=("b", False))
    form(_name, 2, shapes.binary, key=f"{_name}.other")
for _name in ("argmax", "argmin"):
    form(_name, 1, shapes.arg_reduce, dim=("i", None), keepdim=("b", False))
for _name in ("sum", "mean"):
    form(_name, 1, shapes.reduce_all(_name), key=f"{_name}.all")
    form(_name, 1, shapes.reduce_dims(_name), key=f"{_name}.dim", dim=("iL", R), keepdim=("b", False))
form("cumsum", 1, shapes.cumsum, dim=("i", R))
form("clamp", 1, shapes.clamp, min=("f", None), max=("f", None))
form("clamp_min", 1, shapes.clamp, min=("f", R))
form("clamp_max", 1, shapes.clamp, max=("f", R))
form("unsqueeze", 1, shapes.unsqueeze, dim=("i", R))
form("squeeze", 1, shapes.squeeze, key="squeeze.all")
form("squeeze", 1, shapes.squeeze, key="squeeze.dim", dim=("i", R))
form("flatten", 1, shapes.flatten, start_dim=("i", 0), end_dim=("i", -1))
form("reshape", 1, shapes.reshape, shape=("L", R))
form("view", 1, shapes.reshape, size=("L", R))
form("permute", 1, shapes.permute, dims=("L", R))
form("transpose", 1, shapes.transpose, dim0=("i", R), dim1=("i", R))
form("expand", 1, shapes.expand, size=("L", R), implicit=("b", False))
form("expand_as", 2, shapes.expand_as)
form("repeat", 1, shapes.repeat, repeats=("L", R))
form("narrow", 1, shapes.narrow, dim=("i", R), start=("i", R), length=("i", R))
form("slice", 1, shapes.slice_, dim=("i", 0), start=("i", 0), end=("i", INT64_MAX), step=("i", 1))
form("select", 1, shapes.select, dim=("i", R), index=("i", R))
form("cat", None, shapes.cat, dim=("i", 0))
form("stack", None, shapes.stack, dim=("i", 0))
form("index_select", 2, shapes.index_select, dim=("i", R))
form("index", 2, shapes.index)
form("index_put", 3, shapes.index_put, accumulate=("b", False))
form("flip", 1, shapes.flip, dims=("L", R))
form("sort", 1, shapes.sort, outputs=2, dim=("i", -1), descending=("b", False))
form("topk", 1, shapes.topk, outputs=2, k=("i", R), dim=("i", -1), largest=("b", True), sorted=("b", True))
form("matmul", 2, shapes.matmul)
form("mm", 2, shapes.mm)
form("softmax", 1, nn.softmax, dim=("i", R))
form("log_softmax", 1, nn.softmax, dim=("i", R))
form("layer_norm", 1, nn.layer_norm, normalized_shape=("L", R), eps=("f", 1e-5),
     cudnn_enable=("b", True))
form("layer_norm", 3, nn.layer_norm, key="layer_norm.affine", normalized_shape=("L", R),
     eps=("f", 1e-5), cudnn_enable=("b", True))
form("embedding", 2, nn.embedding, padding_idx=("i", -1), scale_grad_by_freq=("b", False),
     sparse=("b", False))
_BAG = {"scale_grad_by_freq": ("b", False), "mode": ("i", 0), "sparse": ("b", False),
        "include_last_offset": ("b", False), "padding_idx": ("i", -1)}
form("embedding_bag", 3, nn.embedding_bag, outputs=4, **_BAG)
form("embedding_bag", 4, nn.embedding_bag, outputs=4, key="embedding_bag.weighted", **_BAG)
for _name in ("grid_sampler", "grid_sampler_2d"):
    form(_name, 2, nn.grid_sampler, key="grid_sampler", interpolation_mode=("i", 0),
         padding_mode=("i", R), align_corners=("b", True))
form("upsample_nearest2d", 1, nn.upsample, output_size=("L", R), scales_h=("f", None),
     scales_w=("f", None))
form("upsample_nearest2d", 1, nn.upsample_by, key="upsample_nearest2d.scale_factor", scale_factor=("i", R))
form("upsample_bilinear2d", 1, nn.upsample, output_size=("L", R), align_corners=("b", R),
     scales_h=("f", None), scales_w=("f", None))
form("adaptive_avg_pool2d", 1, nn.adaptive_pool, output_size=("L", R))
form("constant_pad_nd", 1, nn.constant_pad, pad=("L", R), value=("f", 0))
form("type_as", 2, nn.type_as)
for _name, _dtype in nn.CASTS.items():
    form(_name, 1, nn.cast_to(_dtype), key="_cast", non_blocking=("b", False))
form("to", 1, nn.to, dtype=("i", R), non_blocking=("b", False), copy=("b", False))
for _name in ("ones", "zeros"):
    form(_name, 0, nn.filled, size=("L", R), type=("s", "float"))
del _name, _dtype, R
