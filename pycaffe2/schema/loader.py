"""Loads and checks the YAML OpSchema files under schema/ops/.

The format is documented in docs/schema_format.md. Each file holds one op
family: optional `arg_groups` (named sets of args that several ops share) and
`ops` (type -> schema). `_common.yaml` holds groups every family can use; its
group `engine` (args Caffe2 engines read and the others ignore, such as
`use_cudnn`) is accepted by every op. An input's optional `param` names the
kind of parameter an init net provides there (one of PARAM_KINDS). An op's
optional `repeated_args` ({prefix, count, args}) copies some of its own args
under indexed names (prefix with {i} = 0 .. count - 1, none required), for
args Caffe2 reads by a computed name such as LearningRate's sub_policy_0_gamma.
A malformed file raises SchemaError naming the file, line, op and fault.

`load_user_schemas` reads a user's folder of schema files in the same format
(pycaffe2/custom_ops.py, README's 'Your own ops'): every file fully checked, no op type that pycaffe2 or an
earlier folder already defines, and an `inference:` naming only a rule that is
registered already (pycaffe2's, or one the user registered from Python), so a
schema file is data: nothing it names is imported or run.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from pycaffe2 import _yaml
from pycaffe2.errors import SchemaError
from pycaffe2.schema.args import ARG_FIELDS, convert
from pycaffe2.schema.opschema import (
    PARAM_DTYPES,
    PARAM_KINDS,
    PARAM_SHAPES,
    ArgSpec,
    Count,
    OpSchema,
    TensorSpec,
)

OPS_DIR = Path(__file__).parent / "ops"
COMMON_FILE = "_common.yaml"
ALWAYS_ACCEPTED_GROUP = "engine"
GRADIENT_KINDS = ("none", "should_not", "not_implemented")
DEVICES = ("cpu", "cuda")
INFERENCE_BUILTINS = ("none", "identical")

_OP_KEYS = {"doc", "inputs", "outputs", "num_inputs", "num_outputs", "args", "arg_groups",
            "inplace", "inference", "devices", "gradient", "forward", "aliases",
            "repeated_args"}
REPEATED_GROUP = "repeated "  # group of a repeated_args copy: this, then the prefix
_ARG_KEYS = {"type", "doc", "default", "required", "allowed", "min", "max", "exclusive_min"}
_TENSOR_KEYS = {"name", "doc", "optional", "variadic"}
_INPUT_KEYS = _TENSOR_KEYS | {"param"}
_USER_OP_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # what a user's file may name an op
_MAX_VALUES = 1_000_000  # values in one schema file once YAML aliases are expanded


class _Reader:
    """Reads one file's entries, raising SchemaError with the file and line."""

    def __init__(self, path: Path, inference_rules):
        self.path, self.inference_rules = path, inference_rules
        self.file = str(path)

    def fail(self, message: str, node=None, op: str | None = None):
        raise SchemaError(message, file=self.file, line=_yaml.line_of(node),
                          op_type=op, op_index=None)

    def load(self):
        try:
            data = _yaml.load(self.path.read_bytes())
        except yaml.YAMLError as exc:
            raise SchemaError(f"bad YAML: {exc}", file=self.file, line=_yaml.error_line(exc)) from None
        except (OSError, RecursionError, ValueError) as exc:
            raise SchemaError(f"cannot read: {exc}", file=self.file) from None
        problem = _yaml.tree_problem(data, _MAX_VALUES)
        if problem:
            raise SchemaError(f"bad YAML: {problem[0]}", file=self.file, line=problem[1])
        if not isinstance(data, dict):
            self.fail("a schema file must be a mapping with 'ops' (and optionally 'arg_groups')", data)
        unknown = set(data) - {"ops", "arg_groups"}
        if unknown:
            self.fail(f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}", data)
        groups = self._mapping(data.get("arg_groups", {}), "arg_groups", data)
        ops = self._mapping(data.get("ops", {}), "ops", data)
        if "ops" not in data and self.path.name != COMMON_FILE:
            self.fail("a family file needs an 'ops' mapping", data)
        arg_groups = {name: self.args(spec, f"arg group {name}", group=name)
                      for name, spec in groups.items()}
        return arg_groups, ops

    def _mapping(self, value, what, parent, op=None):
        if not isinstance(value, dict):
            self.fail(f"'{what}' must be a mapping", value if hasattr(value, "line") else parent, op)
        return value

    def args(self, specs, where, group=None, op=None) -> dict[str, ArgSpec]:
        self._mapping(specs, where, specs, op)
        return {name: self.arg(name, spec, op, group) for name, spec in specs.items()}

    def arg(self, name, spec, op, group) -> ArgSpec:
        if not isinstance(spec, dict):
            self.fail(f"arg '{name}' must be a mapping with at least 'type'", spec, op)
        unknown = set(spec) - _ARG_KEYS
        if unknown:
            self.fail(f"arg '{name}': unknown key(s) {', '.join(sorted(unknown))}", spec, op)
        types = spec.get("type")
        types = tuple(types) if isinstance(types, list) else (types,)
        bad = [t for t in types if t not in ARG_FIELDS]
        if bad or not types:
            self.fail(f"arg '{name}': type must be one of {', '.join(ARG_FIELDS)} "
                      f"(or a list of them), got {spec.get('type')!r}", spec, op)
        if spec.get("required") and "default" in spec:
            self.fail(f"arg '{name}': a required arg cannot have a default", spec, op)
        allowed = spec.get("allowed")
        if allowed is not None and not isinstance(allowed, list):
            self.fail(f"arg '{name}': 'allowed' must be a list", spec, op)
        for bound in ("min", "max"):
            if bound in spec and not isinstance(spec[bound], (int, float)):
                self.fail(f"arg '{name}': '{bound}' must be a number", spec, op)
        arg = ArgSpec(name=name, types=types, doc=str(spec.get("doc", "")),
                      default=spec.get("default"), required=bool(spec.get("required", False)),
                      allowed=tuple(allowed) if allowed is not None else None,
                      min=spec.get("min"), max=spec.get("max"),
                      exclusive_min=bool(spec.get("exclusive_min", False)), group=group)
        if arg.default is not None:
            self._check_default(arg, spec, op)
        return arg

    def _check_default(self, arg: ArgSpec, spec, op):
        for type_name in arg.types:
            try:
                convert(arg.default, type_name)
                break
            except ValueError:
                continue
        else:
            self.fail(f"arg '{arg.name}': default {arg.default!r} is not a {arg.type_text}", spec, op)
        problem = arg.violation(arg.default)
        if problem:
            self.fail(f"arg '{arg.name}': default {problem}", spec, op)

    def tensors(self, specs, kind, op, node):
        if not isinstance(specs, list):
            self.fail(f"'{kind}' must be a list", node, op)
        result, variadic = [], False
        for item in specs:
            if isinstance(item, str):
                item = _yaml.LineDict(name=item)
                item.line = specs.line if hasattr(specs, "line") else None
            if not isinstance(item, dict) or "name" not in item:
                self.fail(f"each of '{kind}' needs a 'name'", node, op)
            unknown = set(item) - (_INPUT_KEYS if kind == "inputs" else _TENSOR_KEYS)
            if unknown:
                self.fail(f"{kind} '{item['name']}': unknown key(s) {', '.join(sorted(unknown))}", item, op)
            if variadic:
                self.fail(f"{kind}: only the last entry may be variadic", item, op)
            if result and result[-1].optional and not item.get("optional"):
                self.fail(f"{kind} '{item['name']}': a required entry cannot follow an optional one",
                          item, op)
            param, shape, dtype = self.param(item, kind, op)
            variadic = bool(item.get("variadic"))
            result.append(TensorSpec(str(item["name"]), str(item.get("doc", "")),
                                     bool(item.get("optional", False)), param, shape, dtype))
        required = sum(not t.optional for t in result)
        return tuple(result), Count(required, None if variadic else len(result))

    def param(self, item, kind, op) -> tuple:
        """(kind, shape rule, dtype) of an input's `param`: a kind, or {kind, shape, dtype}."""
        param = item.get("param")
        where = f"{kind} '{item['name']}'"
        shape, dtype = None, "float32"
        if isinstance(param, dict):
            unknown = set(param) - {"kind", "shape", "dtype"}
            if unknown or "kind" not in param:
                self.fail(f"{where}: 'param' must be a kind or {{kind, shape, dtype}}"
                          + (f"; unknown key(s) {', '.join(sorted(map(str, unknown)))}" if unknown else ""),
                          item, op)
            shape, dtype = param.get("shape"), param.get("dtype", "float32")
            if shape is not None and shape not in PARAM_SHAPES:
                self.fail(f"{where}: param shape must be one of {', '.join(PARAM_SHAPES)}; got {shape!r:.40}",
                          item, op)
            if dtype not in PARAM_DTYPES:
                self.fail(f"{where}: param dtype must be one of {', '.join(PARAM_DTYPES)}; got {dtype!r:.40}",
                          item, op)
            param = param["kind"]
        if param is not None and (not isinstance(param, str) or param not in PARAM_KINDS):
            self.fail(f"{where}: 'param' must be one of {', '.join(PARAM_KINDS)}; got {param!r:.40}", item, op)
        return param, shape, dtype

    def count(self, value, derived: Count, kind, op, node) -> Count:
        if value is None:
            return derived
        if isinstance(value, bool):
            pass
        elif isinstance(value, int) and value >= 0:
            return Count(value, value)
        elif isinstance(value, list) and value and all(isinstance(v, int) and v >= 0 for v in value):
            return Count(min(value), max(value), values=frozenset(value))
        elif isinstance(value, dict) and set(value) <= {"min", "max", "step"} and "min" in value:
            step = value.get("step", 1)
            if all(isinstance(v, int) for v in value.values()) and step > 0:
                return Count(value["min"], value.get("max"), step)
        self.fail(f"'{kind}' must be a count, a list of counts or {{min, max, step}}; got {value!r}",
                  node, op)

    def repeated_args(self, spec, own: dict, op, node) -> dict[str, ArgSpec]:
        """The indexed copies `repeated_args` asks for, optional whatever the original."""
        if spec is None:
            return {}
        if not (isinstance(spec, dict) and set(spec) == {"prefix", "count", "args"}
                and "{i}" in str(spec["prefix"]) and isinstance(spec["count"], int)
                and spec["count"] > 0 and isinstance(spec["args"], list)):
            self.fail("'repeated_args' must be {prefix (holding {i}), count (> 0), args (a list)}",
                      node, op)
        missing = [name for name in spec["args"] if name not in own]
        if missing:
            self.fail(f"repeated_args: {', '.join(map(str, missing))} not among the op's args", node, op)
        prefix = spec["prefix"]
        return {prefix.format(i=i) + name: dataclasses.replace(
                    own[name], name=prefix.format(i=i) + name, required=False,
                    group=REPEATED_GROUP + prefix)
                for i in range(spec["count"]) for name in spec["args"]}

    def inplace(self, spec, op, node, n_in: Count, n_out: Count):
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - {"allow", "enforce"}:
            self.fail("'inplace' must be a mapping with 'allow' and/or 'enforce' lists of "
                      "[input, output] pairs ('allow' may be 'any')", node, op)
        allow_any = spec.get("allow") == "any"  # every pair, however many inputs and outputs
        pairs = {"allow": frozenset()} if allow_any else {}
        for key in ("enforce",) if allow_any else ("allow", "enforce"):
            found = set()
            if not isinstance(spec.get(key, []), list):
                self.fail(f"inplace {key} must be a list of [input, output] pairs"
                          + (" or 'any'" if key == "allow" else ""), node, op)
            for pair in spec.get(key, []):
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, int) for p in pair)):
                    self.fail(f"inplace {key}: {pair!r} is not an [input, output] pair", node, op)
                if (n_in.max is not None and pair[0] >= n_in.max) or (
                        n_out.max is not None and pair[1] >= n_out.max):
                    self.fail(f"inplace {key}: pair {pair} is out of range", node, op)
                found.add(tuple(pair))
            pairs[key] = frozenset(found)
        return pairs["allow"], pairs["enforce"], allow_any

    def op(self, op_type: str, spec, family: str, groups: dict) -> OpSchema:
        if not isinstance(spec, dict):
            self.fail("an op schema must be a mapping", spec, op_type)
        unknown = set(spec) - _OP_KEYS
        if unknown:
            self.fail(f"unknown key(s) {', '.join(sorted(unknown))}", spec, op_type)
        if not isinstance(spec.get("doc"), str) or not spec["doc"].strip():
            self.fail("'doc' is required", spec, op_type)
        inputs, n_in = self.tensors(spec.get("inputs", []), "inputs", op_type, spec)
        outputs, n_out = self.tensors(spec.get("outputs", []), "outputs", op_type, spec)
        n_in = self.count(spec.get("num_inputs"), n_in, "num_inputs", op_type, spec)
        n_out = self.count(spec.get("num_outputs"), n_out, "num_outputs", op_type, spec)
        for key in ("arg_groups", "aliases", "devices"):
            if key in spec and not _strings(spec[key]):
                self.fail(f"'{key}' must be a list of names", spec, op_type)
        for key in ("inference", "forward"):
            if key in spec and not isinstance(spec[key], str):
                self.fail(f"'{key}' must be a name, got {spec[key]!r:.40}", spec, op_type)
        args = {}
        for group in [ALWAYS_ACCEPTED_GROUP, *spec.get("arg_groups", [])]:
            if group not in groups:
                self.fail(f"unknown arg group '{group}'", spec, op_type)
            args.update(groups[group])
        own = self.args(spec.get("args", {}), "args", op=op_type)
        args.update(own)
        args.update(self.repeated_args(spec.get("repeated_args"), own, op_type, spec))
        allowed, enforced, inplace_any = self.inplace(spec.get("inplace"), op_type, spec, n_in, n_out)
        inference = spec.get("inference", "none")
        if inference not in INFERENCE_BUILTINS and inference not in self.inference_rules:
            self.fail(f"unknown inference rule '{inference}' (pycaffe2's rules, and those registered "
                      "with pycaffe2.custom_ops.inference_rule before the file loads)", spec, op_type)
        devices = spec.get("devices", ["cpu"])
        if not isinstance(devices, list) or set(devices) - set(DEVICES):
            self.fail(f"'devices' must be a list drawn from {', '.join(DEVICES)}", spec, op_type)
        forward = spec.get("forward")
        gradient = spec.get("gradient", "not_implemented" if forward else None)
        if isinstance(gradient, list) and all(isinstance(g, str) for g in gradient):
            gradient = tuple(gradient)
        elif gradient not in GRADIENT_KINDS:
            self.fail(f"'gradient' must be one of {', '.join(GRADIENT_KINDS)} or a list of the "
                      f"op types its maker emits; got {gradient!r}", spec, op_type)
        aliases = spec.get("aliases", [])
        if not isinstance(aliases, list):
            self.fail("'aliases' must be a list", spec, op_type)
        return OpSchema(
            type=op_type, family=family, doc=spec["doc"].strip(), inputs=inputs, outputs=outputs,
            num_inputs=n_in, num_outputs=n_out, args=args, inplace_allowed=allowed, inplace_any=inplace_any,
            inplace_enforced=enforced, inference=inference, devices=tuple(devices),
            gradient=gradient, forward=forward, aliases=tuple(aliases),
            source=f"{self.file}:{_yaml.line_of(spec)}", own_args=tuple(own))


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _common_groups(ops_dir: Path, inference_rules) -> dict:
    common = ops_dir / COMMON_FILE
    groups = _Reader(common, inference_rules).load()[0] if common.exists() else {}
    groups.setdefault(ALWAYS_ACCEPTED_GROUP, {})
    return groups


def _read_folder(folder: Path, inference_rules, groups: dict, known: dict, user: bool) -> dict[str, OpSchema]:
    """The schemas of every family file in `folder`; a type already in `known` is an error."""
    schemas: dict[str, OpSchema] = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name == COMMON_FILE:
            continue
        reader = _Reader(path, inference_rules)
        local_groups, ops = reader.load()
        family_groups = {**groups, **local_groups}
        for op_type, spec in ops.items():
            if user and not (isinstance(op_type, str) and _USER_OP_TYPE.match(op_type)):
                reader.fail(f"op type {op_type!r:.40} must be a name (letters, digits, _)", spec)
            try:
                schema = reader.op(str(op_type), spec, path.stem, family_groups)
            except (TypeError, ValueError, AttributeError, KeyError) as exc:  # a value of an odd type
                reader.fail(f"malformed schema: {type(exc).__name__}: {exc}", spec, str(op_type))
            for name in (schema.type, *schema.aliases):
                if name in schemas or name in known:
                    where = (schemas.get(name) or known[name]).source
                    reader.fail(f"defined twice (also at {where})", spec, name)
                schemas[name] = schema
    return schemas


def load_schemas(ops_dir: Path = OPS_DIR, inference_rules=()) -> dict[str, OpSchema]:
    """Every schema under ops_dir, keyed by op type (aliases included)."""
    groups = _common_groups(ops_dir, inference_rules)
    return _link(_read_folder(ops_dir, inference_rules, groups, {}, user=False))


def load_user_schemas(folder, inference_rules, known: dict[str, OpSchema]) -> dict[str, OpSchema]:
    """The schemas of a user's folder of family files (the format of schema/ops/, with
    pycaffe2's arg groups at hand and the folder's own _common.yaml if it has one), keyed
    by op type. Its ops may not redefine any type in `known`; their `forward:` and
    `gradient:` may name ops of `known`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SchemaError("is not a folder of schema files (*.yaml)", file=str(folder))
    groups = _common_groups(OPS_DIR, inference_rules)
    if (folder / COMMON_FILE).exists():
        reader = _Reader(folder / COMMON_FILE, inference_rules)
        own = reader.load()[0]
        clash = sorted(set(own) & set(groups))
        if clash:
            reader.fail(f"arg group(s) {', '.join(clash)} are pycaffe2's already; name yours otherwise")
        groups.update(own)
    schemas = _read_folder(folder, inference_rules, groups, known, user=True)
    return _link(schemas, known)


def _link(schemas: dict[str, OpSchema], known: dict[str, OpSchema] | None = None) -> dict[str, OpSchema]:
    """Checks cross-references and gives gradient ops their forward op's args;
    `known` holds schemas loaded before (a user's folder may name pycaffe2's ops)."""
    from dataclasses import replace
    known = known or {}
    for schema in {id(s): s for s in schemas.values()}.values():
        where = {"file": schema.source.rsplit(":", 1)[0], "op_type": schema.type}
        if schema.forward is not None and schema.forward not in schemas and schema.forward not in known:
            raise SchemaError(f"'forward' names unknown op {schema.forward}", **where)
        if isinstance(schema.gradient, tuple):
            for emitted in schema.gradient:
                if emitted not in schemas and emitted not in known:
                    raise SchemaError(f"gradient emits {emitted}, which has no schema", **where)
    for name, schema in list(schemas.items()):
        if schema.forward is not None:
            # The forward op's spec wins for a shared name: a gradient op declares no
            # forward arg anew, and the always-accepted engine group must not mask one.
            forward = schemas.get(schema.forward) or known[schema.forward]
            schemas[name] = replace(schema, args={**schema.args, **forward.args})
    return schemas
