"""Reading and writing net files: .pb, .pbtxt, .yaml/.yml and .json.

All four spell one Caffe2 NetDef. A model file (YAML/JSON) bundles `init_net`
and `predict_net` (each a NetDef mapping or the path of a net file beside it),
an optional `plan` (PlanDef) and optional `input_shapes` (blob -> dims, or
{shape, dtype}); a folder holding init_net.pb and predict_net.pb is a model too.

This module deals with files: extensions, parsing and writing bytes, model
files and folders, where the paths a model names may lead. What a YAML/JSON
tree means (NetDef field names, friendly `arg` mappings typed by the schemas,
bytes as text or base64) lives in netfile_tree.py, which turns parsed trees
into messages and back; `net_to_tree` and `message_to_tree` are importable
from here too.

Every fault raises NetFileError naming the file, the line (YAML, JSON), the op and
what is wrong.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from google.protobuf import text_format

from pycaffe2 import _json, _pbtxt, _yaml
from pycaffe2.errors import NetFileError
from pycaffe2.files import check_regular_file, is_folder, read_regular_file
from pycaffe2.netfile_tree import DictReader, message_to_tree, net_to_tree
from pycaffe2.paths import outside_reason
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import message_problem, unknown_field_path

NET_SUFFIXES = (".pb", ".pbtxt", ".yaml", ".yml", ".json")
MODEL_KEYS = ("init_net", "predict_net", "plan", "input_shapes")


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
    if is_folder(path):
        return _load_folder(path, allow_outside_paths)
    model = _load_file(path, _suffix(path), allow_outside_paths=allow_outside_paths)
    for key, message in (*model.nets(), ("plan", model.plan)):
        problem = message and message_problem(message)
        if problem:
            raise NetFileError(f"{key}: {problem}" if model.init_net or model.plan else problem,
                               file=model.files.get(key, str(path)))
    return model


def _load_file(path: Path, suffix: str, inside: str | None = None, allow_outside_paths: bool = False) -> Model:
    data = read_regular_file(path, NetFileError)
    if suffix in (".pb", ".pbtxt"):
        net, lines = _parse_proto(data, suffix, str(path))
        return Model(net, files={"predict_net": str(path)}, op_lines={"predict_net": lines})
    tree = _parse_tree(data, suffix, str(path))
    try:
        if isinstance(tree, dict) and "predict_net" in tree:
            if inside:  # a model naming a model could name itself
                raise NetFileError(f"{path} is a model file; name a net file or a model folder",
                                   file=inside)
            return _model_from_tree(tree, path, allow_outside_paths)
        lines: dict[int, int] = {}
        net = DictReader(str(path), lines).message(tree, caffe2_pb2.NetDef, "")
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


def _parse_proto(data: bytes, suffix: str, file: str) -> tuple[caffe2_pb2.NetDef, dict[int, int]]:
    """A NetDef in binary or text protobuf, whichever the bytes hold, and its op lines.

    Caffe2's ReadProtoFromFile ignores the name (binary, then text), so a binary
    net saved as .pbtxt, or text saved as .pb, reads; the extension only picks which
    is tried first. When neither parses, the error gives both reasons."""
    order = [(_parse_pb, "binary"), (_parse_pbtxt, "text")]
    if suffix == ".pbtxt":
        order.reverse()
    reasons = []
    for parse, kind in order:
        try:
            net = parse(data, file)
        except NetFileError as exc:
            reasons.append((kind, exc))
            continue
        return net, (_pbtxt.op_lines(data.decode("utf-8")) if kind == "text" else {})
    (_, first), (other, second) = reasons
    raise NetFileError(f"{first.message}; read as {other} protobuf instead: {second.message}",
                       file=file, line=first.line)


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
    # Old Caffe2 named DeviceOption field 2 `cuda_gpu_id` (and, in 2018, a HIP device's id
    # `hip_gpu_id`, field 7); both are `device_id` now.
    text = re.sub(r"\b(?:cuda|hip)_gpu_id(\s*:)", r"device_id\1", text)
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
        problem = _yaml.tree_problem(tree, max(1_000_000, 4 * len(data)), data)
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
            nets[key] = DictReader(file, lines[key]).message(value, caffe2_pb2.NetDef, key)
            files[key] = file
    plan = None
    if tree.get("plan") is not None:
        plan = DictReader(file, {}).message(tree["plan"], caffe2_pb2.PlanDef, "plan")
    shapes = _input_shapes(tree.get("input_shapes") or {}, file)
    return Model(nets["predict_net"], nets.get("init_net"), plan, shapes, files, lines)


def _load_inner_net(path: Path, key: str, file: str, line, allow_outside_paths: bool) -> Model:
    """The net a model file names by path: a net file or model folder, never
    another model file (which could name this one again)."""
    if is_folder(path):
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
        dtype = _dtype_name(dtype) if isinstance(dtype, str) else None
        ok = ok and dtype is not None
        if not ok:
            raise NetFileError(f"input_shapes: {name}: expected a list of sizes (or "
                               f"{{shape, dtype}}), got {spec!r}", file=file, line=_yaml.line_of(spec))
        shapes[str(name)] = (tuple(dims), dtype)
    return shapes


_DTYPE_NAMES: dict[str, str | None] = {}


def _dtype_name(text: str) -> str | None:
    """NumPy's name of the dtype `text` spells ('f4' -> 'float32'), None when it spells none."""
    if text not in _DTYPE_NAMES:
        if len(_DTYPE_NAMES) > 1000:
            _DTYPE_NAMES.clear()
        try:
            _DTYPE_NAMES[text] = np.dtype(text).name
        except (TypeError, ValueError, SyntaxError):
            _DTYPE_NAMES[text] = None
    return _DTYPE_NAMES[text]


# ---------------------------------------------------------------- writing

def save_net(net: caffe2_pb2.NetDef, path) -> None:
    """Write a NetDef in the format its extension names."""
    path = Path(path)
    suffix = _suffix(path)
    _check_writable(net, path)
    if suffix == ".pb":
        data = net.SerializeToString()
    elif suffix == ".pbtxt":
        unknown = unknown_field_path(net)
        if unknown is not None:  # protobuf text has no spelling that reads them back
            raise NetFileError(f"cannot write .pbtxt: the net holds fields caffe2.proto does not declare, "
                               f"at {unknown}; protobuf text cannot keep them (write .pb, .yaml or .json)",
                               file=str(path))
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
