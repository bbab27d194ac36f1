"""Reading and writing net files: .pb, .pbtxt, .yaml/.yml and .json.

All four spell one Caffe2 NetDef. YAML and JSON use NetDef's field names; an
op's `arg` may be a mapping whose values get their Argument field from the
op's schema (`alpha: 1` is the float 1.0 for HardSigmoid). Bytes fields are
text when they are UTF-8 and `{base64: ...}` otherwise.

A model file (YAML/JSON) bundles `init_net` and `predict_net` (each a NetDef
mapping or the path of a net file beside it), an optional `plan` (PlanDef)
and optional `input_shapes` (blob -> dims, or {shape, dtype}); a folder
holding init_net.pb and predict_net.pb is a model too.

Every fault raises NetFileError naming the file, the line (YAML, JSON), the op and
what is wrong.
"""
from __future__ import annotations

import base64
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor

from pycaffe2 import _json, _pbtxt, _yaml, protojson
from pycaffe2.errors import NetFileError
from pycaffe2.files import check_regular_file, read_regular_file
from pycaffe2.paths import outside_reason
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import message_problem
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import DTYPE_BY_NUMBER, arg_value, make_argument, set_fields

NET_SUFFIXES = (".pb", ".pbtxt", ".yaml", ".yml", ".json")
MODEL_KEYS = ("init_net", "predict_net", "plan", "input_shapes")
_PLAIN_ARG_FIELDS = {"f", "i", "s", "floats", "ints", "strings"}
_FLOAT32_FIELDS = {("Argument", "f"), ("Argument", "floats"), ("TensorProto", "float_data")}


@dataclass
class Model:
    """A predict net, with the init net that fills its weights and an optional plan.

    `files` and `op_lines` say where each net came from ("init_net" /
    "predict_net" -> file path, and -> {op index: YAML line}).
    """

    predict_net: caffe2_pb2.NetDef
    init_net: caffe2_pb2.NetDef | None = None
    plan: caffe2_pb2.PlanDef | None = None
    input_shapes: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    op_lines: dict[str, dict[int, int]] = field(default_factory=dict)

    def nets(self):
        """(key, NetDef) for the init net (if any), then the predict net."""
        if self.init_net is not None:
            yield "init_net", self.init_net
        yield "predict_net", self.predict_net


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in NET_SUFFIXES:
        raise NetFileError(f"unknown net file extension '{path.suffix}' "
                           f"(expected one of {', '.join(NET_SUFFIXES)})", file=str(path))
    return suffix


# ---------------------------------------------------------------- reading

def load_net(path) -> caffe2_pb2.NetDef:
    """The NetDef in a net file (not a model file)."""
    model = load_model(path)
    if model.init_net is not None or model.plan is not None:
        raise NetFileError("is a model file (init_net + predict_net); use load_model", file=str(path))
    return model.predict_net


def load_model(path, *, allow_outside_paths: bool = False) -> Model:
    """A model file, a folder with init_net.pb + predict_net.pb, or a plain net file
    (which becomes a Model with only a predict net). The net files a model names
    must lie inside its folder (no absolute paths, no '..' or symlinks leading
    out) unless `allow_outside_paths`."""
    path = Path(path)
    if _is_dir(path):
        return _load_folder(path, allow_outside_paths)
    model = _load_file(path, _suffix(path), allow_outside_paths=allow_outside_paths)
    for key, message in (*model.nets(), ("plan", model.plan)):
        problem = message and message_problem(message)
        if problem:
            raise NetFileError(f"{key}: {problem}" if model.init_net or model.plan else problem,
                               file=model.files.get(key, str(path)))
    return model


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long, or with a NUL byte: reading says why
        return False


def _load_file(path: Path, suffix: str, inside: str | None = None, allow_outside_paths: bool = False) -> Model:
    data = read_regular_file(path, NetFileError)
    if suffix == ".pb":
        return Model(_parse_pb(data, str(path)), files={"predict_net": str(path)})
    if suffix == ".pbtxt":
        return Model(_parse_pbtxt(data, str(path)), files={"predict_net": str(path)},
                     op_lines={"predict_net": _pbtxt.op_lines(data.decode("utf-8"))})
    tree = _parse_tree(data, suffix, str(path))
    try:
        if isinstance(tree, dict) and "predict_net" in tree:
            if inside:  # a model naming a model could name itself
                raise NetFileError(f"{path} is a model file; name a net file or a model folder",
                                   file=inside)
            return _model_from_tree(tree, path, allow_outside_paths)
        lines: dict[int, int] = {}
        net = _DictReader(str(path), lines).message(tree, caffe2_pb2.NetDef, "")
    except RecursionError:
        raise NetFileError("nested too deeply", file=str(path)) from None
    return Model(net, files={"predict_net": str(path)}, op_lines={"predict_net": lines})


def _load_folder(folder: Path, allow_outside_paths: bool = False) -> Model:
    predict = folder / "predict_net.pb"
    if not predict.exists():
        raise NetFileError("a model folder needs predict_net.pb (and usually init_net.pb)",
                           file=str(folder))
    for name in ("predict_net.pb", "init_net.pb"):
        _check_inside(folder, name, str(folder), None, allow_outside_paths)
    model = load_model(predict)
    init = folder / "init_net.pb"
    if init.exists():
        model.init_net = load_net(init)
        model.files["init_net"] = str(init)
    return model


def _parse_pb(data: bytes, file: str) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef()
    try:
        net.ParseFromString(data)
    except Exception as exc:  # noqa: BLE001 (protobuf raises several types for bad bytes)
        raise NetFileError(f"not a valid NetDef protobuf: {exc}", file=file) from None
    if data and not net.ListFields():
        raise NetFileError("not a NetDef protobuf: no NetDef field found", file=file)
    return net


def _parse_pbtxt(data: bytes, file: str) -> caffe2_pb2.NetDef:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NetFileError("not UTF-8 text", file=file) from None
    # Old Caffe2 named DeviceOption field 2 `cuda_gpu_id`; it is `device_id` now.
    text = re.sub(r"\bcuda_gpu_id(\s*:)", r"device_id\1", text)
    net = caffe2_pb2.NetDef()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as exc:
        line = getattr(exc, "GetLine", lambda: None)()
        raise NetFileError(f"bad protobuf text: {exc}", file=file, line=line) from None
    except RecursionError:
        raise NetFileError("bad protobuf text: nested too deeply", file=file) from None
    except (ValueError, TypeError) as exc:  # a value protobuf refuses to store
        raise NetFileError(f"bad protobuf text: {exc}", file=file) from None
    return net


def _parse_tree(data: bytes, suffix: str, file: str):
    kind = "JSON" if suffix == ".json" else "YAML"
    try:
        tree = _json.load(data) if suffix == ".json" else _yaml.load(data)
        problem = _yaml.tree_problem(tree, max(1_000_000, 4 * len(data)))
        if problem:
            raise NetFileError(f"bad {kind}: {problem[0]}", file=file, line=problem[1])
        return tree
    except json.JSONDecodeError as exc:
        raise NetFileError(f"bad JSON: {exc}", file=file, line=exc.lineno) from None
    except yaml.YAMLError as exc:
        raise NetFileError(f"bad YAML: {exc}", file=file, line=_yaml.error_line(exc)) from None
    except (RecursionError, ValueError) as exc:  # too deep, or not UTF-8 text
        raise NetFileError(f"bad {kind}: {exc}", file=file) from None


def _check_inside(folder: Path, name: str, file: str, node, allow_outside_paths: bool) -> None:
    reason = None if allow_outside_paths else outside_reason(folder, name)
    if reason is not None:
        raise NetFileError(f"refusing net path '{name}': it {reason} (allow it with "
                           "--allow-outside-paths, or allow_outside_paths=True)", file=file,
                           line=_yaml.line_of(node))


def _model_from_tree(tree: dict, path: Path, allow_outside_paths: bool = False) -> Model:
    file = str(path)
    unknown = set(tree) - set(MODEL_KEYS)
    if unknown:
        raise NetFileError(f"unknown model key(s) {', '.join(sorted(map(str, unknown)))} "
                           f"(expected {', '.join(MODEL_KEYS)})", file=file, line=_yaml.line_of(tree))
    if tree.get("predict_net") is None:
        raise NetFileError("predict_net is empty: a model file needs a predict net",
                           file=file, line=_yaml.line_of(tree))
    nets, files, lines = {}, {}, {}
    for key in ("init_net", "predict_net"):
        value = tree.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            _check_inside(path.parent, value, file, tree, allow_outside_paths)
            inner = _load_inner_net(path.parent / value, key, file, _yaml.line_of(tree), allow_outside_paths)
            nets[key], files[key] = inner.predict_net, inner.files["predict_net"]
            lines[key] = inner.op_lines.get("predict_net", {})
        else:
            lines[key] = {}
            nets[key] = _DictReader(file, lines[key]).message(value, caffe2_pb2.NetDef, key)
            files[key] = file
    plan = None
    if tree.get("plan") is not None:
        plan = _DictReader(file, {}).message(tree["plan"], caffe2_pb2.PlanDef, "plan")
    shapes = _input_shapes(tree.get("input_shapes") or {}, file)
    return Model(nets["predict_net"], nets.get("init_net"), plan, shapes, files, lines)


def _load_inner_net(path: Path, key: str, file: str, line, allow_outside_paths: bool) -> Model:
    """The net a model file names by path: a net file or model folder, never
    another model file (which could name this one again)."""
    if _is_dir(path):
        return _load_folder(path, allow_outside_paths)
    try:
        _suffix(path)
        check_regular_file(path, NetFileError)
    except NetFileError as exc:  # the file named cannot be read: the model file is at fault
        shown = str(path) if len(str(path)) <= 120 else f"{str(path)[:60]}...{str(path)[-40:]}"
        raise NetFileError(f"{key}: {shown}: {exc.message}", file=file, line=line) from None
    try:
        return _load_file(path, _suffix(path), inside=file)
    except NetFileError as exc:
        if exc.file and exc.file != file:
            raise
        raise NetFileError(f"{key}: {exc.message}", file=file, line=line) from None


def _input_shapes(tree, file: str) -> dict:
    if not isinstance(tree, dict):
        raise NetFileError("input_shapes must map blob names to shapes", file=file)
    shapes = {}
    for name, spec in tree.items():
        dims, dtype = (spec.get("shape"), spec.get("dtype", "float32")) if isinstance(spec, dict) \
            else (spec, "float32")
        ok = isinstance(dims, list) and all(isinstance(d, int) and d >= 0 for d in dims)
        try:
            dtype = np.dtype(dtype).name if isinstance(dtype, str) else None
        except (TypeError, ValueError, SyntaxError):
            dtype = None
        ok = ok and dtype is not None
        if not ok:
            raise NetFileError(f"input_shapes: {name}: expected a list of sizes (or "
                               f"{{shape, dtype}}), got {spec!r}", file=file, line=_yaml.line_of(spec))
        shapes[str(name)] = (tuple(dims), dtype)
    return shapes


class _DictReader:
    """Builds protobuf messages from YAML/JSON trees, with located errors."""

    def __init__(self, file: str, op_lines: dict[int, int]):
        self.file, self.op_lines = file, op_lines

    def fail(self, message, node, path, op_index=None, op_type=None):
        where = f"{path}: " if path else ""
        raise NetFileError(where + message, file=self.file, line=_yaml.line_of(node),
                           op_index=op_index, op_type=op_type)

    def message(self, tree, cls, path, parent=None):
        if not isinstance(tree, dict):
            self.fail(f"expected a {cls.DESCRIPTOR.name} mapping, got {_kind(tree)}",
                      tree if hasattr(tree, "line") else parent, path)
        if cls is caffe2_pb2.NetDef and protojson.is_protojson(tree):  # json_format's spelling
            self.op_lines.update(enumerate(getattr(tree.get("op"), "item_lines", [])))
            return protojson.parse(tree, cls, self.file, path)
        message = cls()
        fields = cls.DESCRIPTOR.fields_by_name
        for key, value in tree.items():
            name = str(key)
            if name not in fields:
                hint = difflib.get_close_matches(name, list(fields), n=1)
                self.fail(f"unknown {cls.DESCRIPTOR.name} field '{name}'"
                          + (f" (did you mean '{hint[0]}'?)" if hint else ""), tree, path)
            if value is None:
                continue
            sub = f"{path}.{name}" if path else name
            if cls is caffe2_pb2.NetDef and name == "op":
                self.ops(message, value, sub, tree)
            else:
                self.field(message, fields[name], value, sub, tree)
        return message

    def ops(self, net, value, path, parent):
        if not isinstance(value, list):
            self.fail("'op' must be a list of operators", parent, path)
        lines = getattr(value, "item_lines", [])
        for index, tree in enumerate(value):
            op_type = tree.get("type") if isinstance(tree, dict) else None
            if index < len(lines):
                self.op_lines[index] = lines[index]
            try:
                op = self.operator(tree, f"{path}[{index}]", value)
            except NetFileError as exc:
                if exc.op_index is not None:
                    raise
                raise NetFileError(exc.message, file=self.file, line=exc.line or self.op_lines.get(index),
                                   op_index=index, op_type=op_type) from None
            net.op.append(op)

    def operator(self, tree, path, parent):
        if isinstance(tree, dict) and isinstance(tree.get("arg"), dict):
            plain = _yaml.LineDict({k: v for k, v in tree.items() if k != "arg"})
            plain.line = getattr(tree, "line", None)
            op = self.message(plain, caffe2_pb2.OperatorDef, path, parent)
            op.arg.extend(self.friendly_args(op.type, tree["arg"], f"{path}.arg"))
            return op
        return self.message(tree, caffe2_pb2.OperatorDef, path, parent)

    def friendly_args(self, op_type, mapping, path):
        schema = get_schema(op_type)
        args = []
        for name, value in mapping.items():
            if isinstance(value, dict):  # an Argument written out field by field
                arg = self.message(value, caffe2_pb2.Argument, f"{path}.{name}", mapping)
                arg.name = str(name)
            else:
                spec = schema.args.get(str(name)) if schema else None
                try:
                    arg = make_argument(str(name), value, spec.types if spec else ())
                except (ValueError, TypeError) as exc:  # incl. a lone surrogate, an int out of range
                    self.fail(f"arg '{name}' {exc}", mapping, path)
            args.append(arg)
        return args

    def field(self, message, fd, value, path, parent):
        if _repeated(fd):
            if not isinstance(value, list):
                self.fail(f"expected a list, got {_kind(value)}", parent, path)
            target = getattr(message, fd.name)
            for index, item in enumerate(value):
                converted = self.scalar(fd, item, f"{path}[{index}]", value)
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    target.add().CopyFrom(converted)
                    continue
                try:
                    target.append(converted)
                except (ValueError, TypeError) as exc:  # e.g. an integer out of the field's range
                    self.fail(str(exc), value, f"{path}[{index}]")
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, fd.name).CopyFrom(self.scalar(fd, value, path, parent))
        else:
            try:
                setattr(message, fd.name, self.scalar(fd, value, path, parent))
            except (ValueError, TypeError) as exc:
                self.fail(str(exc), parent, path)

    def scalar(self, fd, value, path, parent):
        kind = fd.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            return self.message(value, fd.message_type._concrete_class, path, parent)
        if kind == FieldDescriptor.TYPE_ENUM:
            return self.enum(fd, value, path, parent)
        if kind == FieldDescriptor.TYPE_BOOL:
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
        elif kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind == FieldDescriptor.TYPE_STRING:
            if isinstance(value, str):
                return value
        elif kind == FieldDescriptor.TYPE_BYTES:
            return self.bytes_value(value, path, parent)
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
        self.fail(f"expected {_FIELD_KINDS.get(kind, 'an integer')}, got {_kind(value)} {value!r:.40}",
                  parent, path)

    def enum(self, fd, value, path, parent):
        values = fd.enum_type.values_by_name
        if isinstance(value, str) and value in values:
            return values[value].number
        if isinstance(value, int) and not isinstance(value, bool) \
                and value in fd.enum_type.values_by_number:
            return value
        self.fail(f"expected one of {', '.join(values)}, got {value!r}", parent, path)

    def bytes_value(self, value, path, parent):
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
            try:
                return base64.b64decode(value["base64"], validate=True)
            except ValueError:
                self.fail("invalid base64", parent, path)
        self.fail(f"expected text or {{base64: ...}}, got {_kind(value)}", parent, path)


def _repeated(fd) -> bool:
    # protobuf 5.28+ has is_repeated; older releases only have label.
    is_repeated = getattr(fd, "is_repeated", None)
    return is_repeated if is_repeated is not None else fd.label == FieldDescriptor.LABEL_REPEATED


_FIELD_KINDS = {
    FieldDescriptor.TYPE_BOOL: "a bool", FieldDescriptor.TYPE_FLOAT: "a number",
    FieldDescriptor.TYPE_DOUBLE: "a number", FieldDescriptor.TYPE_STRING: "text",
}


def _kind(value) -> str:
    for kind, text in ((bool, "a bool"), (dict, "a mapping"), (list, "a list"), (str, "text"),
                       (int, "an integer"), (float, "a number"), (type(None), "nothing")):
        if isinstance(value, kind):
            return text
    return type(value).__name__


# ---------------------------------------------------------------- writing

def save_net(net: caffe2_pb2.NetDef, path) -> None:
    """Write a NetDef in the format its extension names."""
    path = Path(path)
    suffix = _suffix(path)
    _check_writable(net, path)
    if suffix == ".pb":
        data = net.SerializeToString()
    elif suffix == ".pbtxt":
        data = text_format.MessageToString(net).encode("utf-8")
    else:
        data = _dump_tree(net_to_tree(net), suffix)
    _write(path, data)


def save_model(model: Model, path) -> None:
    """Write a model file (.yaml/.yml/.json) bundling both nets, or a model
    folder (an existing folder, or a path with no extension) of .pb files."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        return _save_folder(model, path)
    suffix = _suffix(path)
    if suffix in (".pb", ".pbtxt"):
        if model.init_net is None and model.plan is None and not model.input_shapes:
            return save_net(model.predict_net, path)
        raise NetFileError("a model (init_net + predict_net) needs .yaml, .yml or .json, "
                           "or two .pb files", file=str(path))
    tree = {}
    for key, net in model.nets():
        _check_writable(net, path, key)
        tree[key] = net_to_tree(net)
    if model.plan is not None:
        _check_writable(model.plan, path, "plan")
        tree["plan"] = message_to_tree(model.plan)
    if model.input_shapes:
        tree["input_shapes"] = {name: {"shape": list(dims), "dtype": dtype}
                                for name, (dims, dtype) in model.input_shapes.items()}
    _write(path, _dump_tree(tree, suffix))


def _save_folder(model: Model, folder: Path) -> None:
    if model.plan is not None or model.input_shapes:
        raise NetFileError("a model folder holds only init_net.pb and predict_net.pb; "
                           "write .yaml or .json to keep the plan and input_shapes", file=str(folder))
    if model.init_net is None and (folder / "init_net.pb").exists():
        raise NetFileError("holds an init_net.pb and this model has no init net to replace it",
                           file=str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NetFileError(f"cannot make folder: {exc.strerror}", file=str(folder)) from None
    for key, net in model.nets():
        save_net(net, folder / f"{key}.pb")


def _check_writable(message, path: Path, key: str | None = None) -> None:
    """Refuse to write what no loader would read back."""
    problem = message_problem(message)
    if problem:
        raise NetFileError(f"cannot write {key + ': ' if key else ''}{problem}", file=str(path))


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise NetFileError(f"cannot write: {exc.strerror}", file=str(path)) from None


def _dump_tree(tree, suffix: str) -> bytes:
    if suffix == ".json":
        return (json.dumps(tree, indent=1) + "\n").encode("utf-8")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(tree, Dumper=dumper, sort_keys=False, default_flow_style=None,
                     allow_unicode=True, width=100)
    return text.encode("utf-8")


def net_to_tree(net: caffe2_pb2.NetDef) -> dict:
    """A NetDef as plain data, with each op's args as a friendly mapping when
    re-reading that mapping through the schema gives back the same Arguments."""
    tree = message_to_tree(net)
    for op, op_tree in zip(net.op, tree.get("op", [])):
        friendly = _friendly_args(op)
        if friendly is not None:
            op_tree["arg"] = friendly
    return tree


def _friendly_args(op: caffe2_pb2.OperatorDef):
    if not op.arg:
        return None
    schema = get_schema(op.type)
    mapping = {}
    for arg in op.arg:
        spec = schema.args.get(arg.name) if schema else None
        types = spec.types if spec else ()
        fields = set_fields(arg)
        if len(fields) > 1 or not set(fields) <= _PLAIN_ARG_FIELDS:  # kept field by field
            return None
        value = arg_value(arg)
        if arg.name in mapping or isinstance(value, bytes) or any(
                isinstance(v, bytes) for v in (value if isinstance(value, list) else [])):
            return None
        if arg.HasField("f") or len(arg.floats):
            value = _short_floats(value)
        try:
            if make_argument(arg.name, value, types) != arg:
                return None
        except ValueError:
            return None
        if types and types[0] == "dtype" and value in DTYPE_BY_NUMBER:
            value = DTYPE_BY_NUMBER[value]
        mapping[arg.name] = value
    return mapping


def _short_floats(value):
    """float32 values as the shortest decimals that read back to the same float32."""
    if isinstance(value, list):
        return np.asarray(value, np.float32).astype(str).astype(np.float64).tolist()
    return _short_floats([value])[0]


def message_to_tree(message) -> dict:
    """Any proto message as plain data (the inverse of the dict reader)."""
    tree = {}
    owner = message.DESCRIPTOR.name
    for fd, value in message.ListFields():
        if _repeated(fd):
            items = [_value_to_tree(fd, v) for v in value]
            if (owner, fd.name) in _FLOAT32_FIELDS:
                items = _short_floats(items)
            tree[fd.name] = items
        else:
            item = _value_to_tree(fd, value)
            tree[fd.name] = _short_floats(item) if (owner, fd.name) in _FLOAT32_FIELDS else item
    return tree


def _value_to_tree(fd, value):
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_tree(value)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        enum_value = fd.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value else value
    if fd.type == FieldDescriptor.TYPE_BYTES:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    return value
