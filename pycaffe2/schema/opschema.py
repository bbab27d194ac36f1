"""The in-memory OpSchema: what one operator accepts, read from YAML."""
from __future__ import annotations

from dataclasses import dataclass, field

# Values of an input's `param` flag, meant in docs/schema_format.md: the kind of
# array a model's init net provides there, which is also what random init makes up.
PARAM_KINDS = ("weight", "zero", "positive", "small", "constant")
# The kinds that make the input a parameter (learned or carried state); a
# `constant` is an operand a model may merely hold fixed, such as Add's B.
PARAMETER_KINDS = frozenset(PARAM_KINDS) - {"constant"}
# `param: {kind, shape, dtype}`: the shape rule that random init uses for the input (a name,
# implemented in pycaffe2/run/random_init.py), and the array it makes up there: float32
# values, or an Int8Tensor of uint8 codes (quantized weights) or of int32 values (their biases).
PARAM_SHAPES = ("filter", "out_channels", "lc_filter", "lc_bias", "transposed_filter", "transposed_out_channels", "fc_weight",
                "fc_weight_transposed", "channels", "normalized", "inner_size")
PARAM_DTYPES = ("float32", "uint8", "int32")


@dataclass(frozen=True)
class Count:
    """Allowed number of inputs or outputs: min..max (max None = no limit) in steps, or a set."""

    min: int
    max: int | None
    step: int = 1
    values: frozenset[int] | None = None

    def allows(self, n: int) -> bool:
        if self.values is not None:
            return n in self.values
        return n >= self.min and (self.max is None or n <= self.max) and (n - self.min) % self.step == 0

    def describe(self) -> str:
        if self.values is not None:
            return " or ".join(str(v) for v in sorted(self.values))
        if self.max == self.min:
            return str(self.min)
        text = f"{self.min} to {self.max}" if self.max is not None else f"{self.min} or more"
        return text + (f" in steps of {self.step}" if self.step != 1 else "")


@dataclass(frozen=True)
class ArgSpec:
    name: str
    types: tuple[str, ...]
    doc: str = ""
    default: object = None
    required: bool = False
    allowed: tuple | None = None
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    group: str | None = None  # the arg group it came from, if any

    @property
    def type_text(self) -> str:
        return " or ".join(self.types)

    def range_text(self) -> str:
        low = "" if self.min is None else f"{'>' if self.exclusive_min else '>='} {self.min}"
        high = "" if self.max is None else f"<= {self.max}"
        return " and ".join(t for t in (low, high) if t)

    def violation(self, value) -> str | None:
        """Why a well-typed value is not allowed, or None when it is."""
        values = value if isinstance(value, list) else [value]
        for item in values:
            if self.allowed is not None and item not in self.allowed:
                return f"value {item!r} is not allowed (allowed: {', '.join(map(repr, self.allowed))})"
            if isinstance(item, (int, float)):
                below = self.min is not None and (item <= self.min if self.exclusive_min else item < self.min)
                if below or (self.max is not None and item > self.max):
                    return f"value {item!r} is out of range (must be {self.range_text()})"
        return None


@dataclass(frozen=True)
class TensorSpec:
    name: str
    doc: str = ""
    optional: bool = False
    param: str | None = None  # a key of PARAM_KINDS for inputs an init net may provide
    param_shape: str | None = None  # a name of PARAM_SHAPES: random init's shape rule for it
    param_dtype: str = "float32"  # one of PARAM_DTYPES: what random init makes up there


@dataclass(frozen=True)
class OpSchema:
    type: str
    family: str
    doc: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    num_inputs: Count
    num_outputs: Count
    args: dict[str, ArgSpec]
    inplace_allowed: frozenset[tuple[int, int]] = frozenset()
    inplace_enforced: frozenset[tuple[int, int]] = frozenset()
    inplace_any: bool = False  # any input may share its blob with any output (Caffe2's AllowInplace(true))
    inference: str = "none"
    devices: tuple[str, ...] = ("cpu",)
    gradient: str | tuple[str, ...] = "not_implemented"
    forward: str | None = None  # for a gradient op: the op whose args it also takes
    aliases: tuple[str, ...] = ()
    source: str = ""  # file:line of the definition
    own_args: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_gradient_op(self) -> bool:
        return self.forward is not None

    def input_name(self, i: int) -> str:
        return _nth_name(self.inputs, i, "input")

    def output_name(self, i: int) -> str:
        return _nth_name(self.outputs, i, "output")

    def input_param(self, i: int) -> str | None:
        """The `param` kind of input i, None for data (and past the listed inputs)."""
        return self.inputs[i].param if i < len(self.inputs) else None

    def inplace_ok(self, i: int, o: int) -> bool:
        return self.inplace_any or (i, o) in self.inplace_allowed or (i, o) in self.inplace_enforced


def _nth_name(specs: tuple[TensorSpec, ...], i: int, kind: str) -> str:
    if i < len(specs):
        return specs[i].name
    return f"{specs[-1].name}[{i - len(specs) + 1}]" if specs else f"{kind} {i}"
