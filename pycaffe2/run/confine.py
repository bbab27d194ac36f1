"""Confining the files a model's ops read and write to data roots (the CLI's trust boundary).

`pycaffe2 run` checks every op of every net a model will run before anything
runs: an op that names a DB path (its schema has a `db`, `dbs` or `db_name`
arg: CreateDB, Save, Load, DBExists, Checkpoint, ...) or a file it writes
(Print with to_file=1 appends to `<input>.log`; Summarize writes `<input>.summary`)
must lead inside one of the data roots once `..` and symlinks are followed. Relative paths are
taken as the kernels take them: under the workspace's root folder where the op prefixes it
(absolute_path=0, the logs), from the working folder otherwise. `pycaffe2 run`'s workspaces keep
the default root folder, the working folder; nothing in a model file can change it.

    check_data_paths([("model.yaml", net)], roots=["models/", "."])

The Python API (`workspace`, `ModelRunner`, `PlanRun` without `data_roots`)
does not confine anything, as Caffe2's does not.
"""
from __future__ import annotations

import os
import re

from pycaffe2.errors import RunError
from pycaffe2.operators.io import LOG_EXTENSIONS, log_file
from pycaffe2.paths import real, under_root, within
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import arg_value

PATH_ARGS = ("db", "dbs", "db_name")
# A Checkpoint pattern may format the iteration only as digits (%d and kin): %c or %s could spell '/'.
_CONVERSION = re.compile(r"%(?:%|[-+ #0]*\d*(?:\.\d+)?([a-zA-Z]))")
_INTEGER_CONVERSIONS = set("diuxXo")


def op_paths(op, root_folder: str = ".") -> list[tuple[str, str]]:
    """(arg, path) of every file path `op` names, as its kernel in a workspace with root folder
    `root_folder` takes it (a Checkpoint pattern as it reads for iteration 0)."""
    schema = get_schema(op.type)
    names = [name for name in PATH_ARGS if schema is not None and name in schema.args]
    # ops with an absolute_path arg take a relative path under the root folder unless it is 1
    rooted = schema is not None and "absolute_path" in schema.args and not any(
        a.name == "absolute_path" and arg_value(a) for a in op.arg)
    found = []
    for arg in op.arg:
        if arg.name not in names:
            continue
        value = arg_value(arg)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bytes):
                try:
                    item = item.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"arg '{arg.name}' is not UTF-8 text") from None
            if isinstance(item, str) and item:
                path = _pattern_path(item) if op.type == "Checkpoint" else item
                found.append((arg.name, under_root(root_folder, path) if rooted and not os.path.isabs(path)
                              else path))
    if op.type in LOG_EXTENSIONS and op.input and any(a.name == "to_file" and arg_value(a) for a in op.arg):
        found.append(("to_file", log_file(op.type, op.input[0], root_folder)))
    return found


def _pattern_path(pattern: str) -> str:
    kinds = [kind for kind in _CONVERSION.findall(pattern) if kind]
    if any(kind not in _INTEGER_CONVERSIONS for kind in kinds):
        raise ValueError(f"db pattern '{pattern}' formats the iteration other than as an integer (%d)")
    try:
        return pattern % 0 if "%" in pattern else pattern
    except (TypeError, ValueError) as exc:
        raise ValueError(f"db pattern '{pattern}': {exc}") from None


def check_data_paths(nets, roots, root_folder: str = ".") -> None:
    """Raise RunError for the first op of `nets` ((file, NetDef) pairs) whose file path leads
    outside every folder of `roots`, run in a workspace with root folder `root_folder`."""
    roots = [str(root) for root in roots]
    for file, net in nets:
        for index, op in enumerate(net.op):
            where = (f"{file}: " if file else "") + f"net '{net.name}': op {index} ({op.type})"
            try:
                paths = op_paths(op, root_folder)
            except ValueError as exc:
                raise RunError(f"{where}: {exc}; refused before running") from None
            for arg, path in paths:
                try:
                    inside = within(path, roots)
                except (ValueError, OSError) as exc:
                    raise RunError(f"{where}: {arg} '{path}' is not a usable path ({exc})") from None
                if not inside:
                    shown = ", ".join(real(root) for root in roots)
                    raise RunError(f"{where}: {arg} '{path}' leads to {real(path)}, outside the data "
                                   f"root(s) {shown}; refused before running (add a root with "
                                   "--data-root DIR)")


def default_roots(model_path) -> list[str]:
    """The model's folder (the folder itself for a model folder) and the working folder."""
    path = os.fspath(model_path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return [folder, os.getcwd()]
