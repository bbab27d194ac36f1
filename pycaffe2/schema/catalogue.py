"""The operator catalogue, rendered from the schemas: `pycaffe2 ops` and docs/operators.md."""
from __future__ import annotations

from pycaffe2.schema import all_schemas
from pycaffe2.schema.loader import ALWAYS_ACCEPTED_GROUP, REPEATED_GROUP
from pycaffe2.schema.opschema import OpSchema


def primary_schemas() -> list[OpSchema]:
    """Each schema once (aliases folded), by family then type."""
    unique = {schema.type: schema for schema in all_schemas().values()}
    return sorted(unique.values(), key=lambda s: (s.family, s.type))


def gradient_text(schema: OpSchema) -> str:
    if isinstance(schema.gradient, tuple):
        return ", ".join(schema.gradient) if schema.gradient else "passes through (no ops)"
    return {"none": "none (blocks gradients)", "should_not": "must not be asked for",
            "not_implemented": "not implemented"}[schema.gradient]


def _tensor_lines(schema: OpSchema, kind: str) -> list[str]:
    specs = schema.inputs if kind == "inputs" else schema.outputs
    count = schema.num_inputs if kind == "inputs" else schema.num_outputs
    lines = [f"{kind.capitalize()} ({count.describe()}):"]
    for index, spec in enumerate(specs):
        facts = (["optional"] if spec.optional else []) + (
            [f"param: {spec.param}"] if spec.param is not None else []) + (
            [f"random init: {spec.param_shape}"] if spec.param_shape else []) + (
            [spec.param_dtype] if spec.param_dtype != "float32" else [])
        notes = f" ({', '.join(facts)})" if facts else ""
        lines.append(f"  {index} {spec.name}{notes}: {spec.doc}")
    return lines


def _arg_line(spec) -> str:
    facts = [spec.type_text]
    if spec.required:
        facts.append("required")
    elif spec.default is not None:
        facts.append(f"default {spec.default!r}")
    if spec.allowed is not None:
        facts.append("one of " + ", ".join(map(str, spec.allowed)))
    if spec.range_text():
        facts.append(spec.range_text())
    return f"{spec.name} ({'; '.join(facts)}): {spec.doc}"


def _repeated_lines(schema: OpSchema) -> list[str]:
    """One line per repeated_args prefix instead of every indexed copy."""
    by_prefix: dict[str, list[str]] = {}
    for spec in schema.args.values():
        if (spec.group or "").startswith(REPEATED_GROUP):
            prefix = spec.group[len(REPEATED_GROUP):]
            by_prefix.setdefault(prefix, []).append(spec.name)
    lines = []
    for prefix, names in by_prefix.items():
        first = prefix.format(i=0)
        bases = [name[len(first):] for name in names if name.startswith(first)]
        lines.append(f"  {prefix}<arg> (i < {len(names) // len(bases)}; optional): the arg of that "
                     f"name for the i-th entry, one of {', '.join(bases)}")
    return lines


def describe(schema: OpSchema) -> str:
    """The full text of one op, for `pycaffe2 ops TYPE`."""
    lines = [f"{schema.type}  [{schema.family}]", "", schema.doc, ""]
    lines += _tensor_lines(schema, "inputs") + _tensor_lines(schema, "outputs")
    own = [spec for spec in schema.args.values() if spec.group != ALWAYS_ACCEPTED_GROUP]
    lines.append("Args:" if own else "Args: none")
    lines += [f"  {_arg_line(spec)}" for spec in own if not (spec.group or "").startswith(REPEATED_GROUP)]
    lines += _repeated_lines(schema)
    if schema.inplace_any:
        lines.append("In place allowed: any input -> any output")
    for label, pairs in (("In place allowed", schema.inplace_allowed),
                         ("In place enforced", schema.inplace_enforced)):
        if pairs:
            lines.append(f"{label}: " + ", ".join(f"input {i} -> output {o}" for i, o in sorted(pairs)))
    lines.append(f"Shape inference: {schema.inference}")
    lines.append(f"Devices: {', '.join(schema.devices)}")
    lines.append(f"Gradient: {gradient_text(schema)}")
    if schema.forward:
        lines.append(f"Gradient of: {schema.forward}")
    if schema.aliases:
        lines.append(f"Aliases: {', '.join(schema.aliases)}")
    return "\n".join(lines)


def summary() -> str:
    """One line per op, grouped by family, for `pycaffe2 ops`."""
    lines, family = [], None
    for schema in primary_schemas():
        if schema.family != family:
            family = schema.family
            lines.append(f"\n{family}:" if lines else f"{family}:")
        first = schema.doc.splitlines()[0]
        lines.append(f"  {schema.type:<34} {first[:80]}")
    return "\n".join(lines)


def markdown() -> str:
    """docs/operators.md."""
    schemas = primary_schemas()
    out = ["# Operator catalogue", "",
           ("Generated from `pycaffe2/schema/ops/*.yaml` by `pycaffe2 ops --markdown`; "
            "do not edit by hand."), "",
           (f"{len(schemas)} operators. Every op also accepts the engine args "
            "(`use_cudnn`, `ws_nbytes_limit`, ...), which are ignored."), ""]
    for schema in schemas:
        body = describe(schema).split("\n", 2)[2]
        out += [f"## {schema.type}", "", f"Family: `{schema.family}`", "", "```", body, "```", ""]
    return "\n".join(out)
