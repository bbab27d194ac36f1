"""The file walker behind `pycaffe2 validate`: which files to check, and the
problems in each. It sits above netfile (it reads files) and the schema checker
(it checks what it read), so the checker itself never touches the file layer.

A folder is walked the way a CI job expects: `.gitignore` files are honoured
(those of the folder, of its subfolders and of its enclosing repository, in
git's syntax, via `pathspec`), hidden folders, virtualenvs (a folder holding
pyvenv.cfg) and node_modules are passed over, a file or folder reached twice
(through symlinks, or named twice) is visited once, and `exclude` patterns
(gitignore syntax) drop paths. A YAML or JSON file found by a walk is checked
only when its content is a net or a model (a mapping with `op`,
`external_input`, `predict_net`, ...); anything else (a CI workflow, a
pre-commit config, package.json) is skipped. A file named explicitly is always
checked, unless `skip_non_nets` asks for the walk's rule there too (for
pre-commit, which names every staged file).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pathspec
import yaml

from pycaffe2 import _yaml, netfile
from pycaffe2.db import missing_extra
from pycaffe2.errors import NetFileError, PyCaffe2Error
from pycaffe2.files import is_folder, read_regular_file
from pycaffe2.schema import get_schema
from pycaffe2.schema.checker import Problem, check_model

# Top-level keys that make a YAML/JSON mapping a net or a model (protobuf JSON's camelCase too).
NET_KEYS = frozenset({"op", "external_input", "external_output", "predict_net", "init_net",
                      "externalInput", "externalOutput"})
_NET_KEY_TEXT = re.compile(rb"""(?:^|[\s{,"'])(?:op|external_input|external_output|predict_net|"""
                           rb"""init_net|externalInput|externalOutput)["']?\s*:""", re.MULTILINE)
_PAIR = ("init_net.pb", "predict_net.pb")
_TREE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Report:
    """What one `validate` run found: the paths checked, the paths a walk (or
    `skip_non_nets`) passed over because they hold no net, every problem, and the
    names given shapes that no checked net reads; `warnings` (ops whose DB type
    needs a package not installed here) do not make a net invalid."""

    checked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unread_shapes: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def parse_input_shape(spec: str) -> tuple[str, tuple[tuple[int, ...], str]]:
    """'NAME=d0,d1,...[:dtype]' -> (NAME, ((d0, d1, ...), dtype)); dtype defaults to float32."""
    import numpy as np
    name, _, rest = spec.rpartition("=")
    dims_text, _, dtype = rest.partition(":")
    dims = dims_text.split(",")
    ok = bool(name) and all(d.strip().isdigit() for d in dims)
    try:
        dtype = np.dtype(dtype or "float32").name
    except TypeError:
        ok = False
    if not ok:
        raise PyCaffe2Error(f"bad --input-shape '{spec}': expected NAME=d0,d1,... (sizes as "
                            "non-negative integers), optionally followed by :dtype (X=1,3,224,224 "
                            "or label=64:int32)")
    return name, (tuple(int(d) for d in dims), dtype)


def check_file(path, input_shapes=None, allow_outside_paths: bool = False) -> list[Problem]:
    """Every problem in a net or model file (or model folder); a file that
    cannot be read at all gives one problem of kind 'file'. `input_shapes`
    (blob -> (dims, dtype)) add to, and win over, a model file's own."""
    return _check(path, input_shapes, allow_outside_paths)[0]


def _check(path, input_shapes=None, allow_outside_paths: bool = False, warnings=None, init=None
           ) -> tuple[list[Problem], set[str]]:
    """(problems, the blobs the file's nets read); warnings go to the `warnings` list.
    `init`: an init net file checked with the file's nets, instead of the model's own."""
    try:
        model = netfile.load_model(path, allow_outside_paths=allow_outside_paths)
        if init is not None:  # as `run --init`: the predict net reads what it makes
            model.init_net, model.files["init_net"] = netfile.load_net(init), str(init)
    except NetFileError as exc:
        return [Problem("file", exc.message, exc.file or str(path), exc.line, None,
                        exc.op_index, exc.op_type)], set()
    if input_shapes:
        model.input_shapes = {**model.input_shapes, **input_shapes}
    if warnings is not None:
        warnings += db_type_warnings(model)
    read = {blob for _, net in model.nets() for op in net.op for blob in op.input}
    read |= {blob for _, net in model.nets() for blob in net.external_input}
    return check_model(model), read


def db_type_warnings(model) -> list[Problem]:
    """Ops whose db_type (given, or the schema's default) needs a package that is not
    installed (lmdb, leveldb without the db extra): the net is valid, but would fail to run here."""
    found = []
    for key, net in model.nets():
        for index, op in enumerate(net.op):
            schema = get_schema(op.type)
            spec = schema.args.get("db_type") if schema is not None else None
            if spec is None:
                continue
            given = [arg.s.decode("utf-8", "replace") for arg in op.arg if arg.name == "db_type"]
            why = missing_extra(given[0] if given else spec.default or "")
            if why:
                found.append(Problem("db_type", f"{why}; running this op here will fail",
                                     model.files.get(key), model.op_lines.get(key, {}).get(index),
                                     net.name, index, op.type))
    return found


def validate(paths, *, input_shapes=None, exclude=(), skip_non_nets=False,
             allow_outside_paths: bool = False, init=None) -> Report:
    """Check every net file named by `paths` (folders walked); see the module doc.
    A model file naming nets outside its folder is a problem unless `allow_outside_paths`.
    `init` (a net file) is each file's init net, as `pycaffe2 run --init` takes it."""
    report = Report()
    walker = _Walker(exclude)
    read: set[str] = set()
    for path in map(Path, paths):
        walker.add(path)
    for path, explicit in walker.found:
        if (not explicit or skip_non_nets) and os.path.isfile(path) and not holds_net(path):
            report.skipped.append(str(path))
            continue
        problems, blobs = _check(path, input_shapes, allow_outside_paths, report.warnings, init)
        report.checked.append(str(path))
        report.problems += problems
        read |= blobs
    report.unread_shapes = [name for name in (input_shapes or {}) if report.checked and name not in read]
    return report


def net_files(paths, exclude=()) -> list[Path]:
    """The net files named by `paths`, folders walked (by the module doc's rules,
    before any look at content); a folder holding predict_net.pb (+ init_net.pb)
    counts as one model."""
    walker = _Walker(exclude)
    for path in map(Path, paths):
        walker.add(path)
    return [path for path, _ in walker.found]


def holds_net(path: Path) -> bool:
    """Whether a YAML/JSON file's content is a net or a model file; other
    suffixes are nets by name. A file that cannot be read or parsed counts as a
    net (so its fault is reported) when its text names a net key."""
    if path.suffix.lower() not in _TREE_SUFFIXES:
        return True
    try:
        data = read_regular_file(path, NetFileError)
    except NetFileError:
        return True  # the check reports why
    try:
        tree = json.loads(data) if path.suffix.lower() == ".json" else _yaml.load(data)
    except (ValueError, RecursionError, yaml.YAMLError):  # bad syntax, too deep, not text: judge by the text
        return bool(_NET_KEY_TEXT.search(data))
    return isinstance(tree, dict) and any(isinstance(key, str) and key in NET_KEYS for key in tree)


class _Walker:
    """Collects (path, named explicitly?) in walk order, each real file or folder once."""

    def __init__(self, exclude=()):
        self.exclude = pathspec.GitIgnoreSpec.from_lines(list(exclude)) if exclude else None
        self.cwd = Path.cwd().resolve()
        self.seen: set[str] = set()
        self.found: list[tuple[Path, bool]] = []

    def first_visit(self, path: Path) -> bool:
        real = os.path.realpath(path)
        if real in self.seen:
            return False
        self.seen.add(real)
        return True

    def excluded(self, path: Path, root: Path, is_dir: bool) -> bool:
        if self.exclude is None:
            return False
        absolute = Path(os.path.abspath(path))
        try:
            rel = absolute.relative_to(self.cwd)
        except ValueError:
            rel = absolute.relative_to(os.path.abspath(root)) if absolute != Path(os.path.abspath(root)) \
                else Path(absolute.name)
        text = rel.as_posix() + ("/" if is_dir else "")
        return text not in ("./", ".") and self.exclude.match_file(text)

    def add(self, path: Path) -> None:
        """A path named on the command line: a folder is walked, anything else is checked."""
        is_dir = is_folder(path)
        if self.excluded(path, path if is_dir else path.parent, is_dir):
            return
        if not is_dir:
            if not os.path.exists(path) or self.first_visit(path):
                self.found.append((path, True))
            return
        if self.first_visit(path):
            logical = Path(os.path.abspath(path))
            ignores = _repository_ignores(logical)
            if _ignored(ignores, logical, True):
                ignores = []  # a folder the repository ignores, named all the same: walk it
            self.walk(path, path, ignores, logical)

    def walk(self, folder: Path, root: Path, ignores: list, logical: Path) -> None:
        spec = _read_gitignore(folder / ".gitignore")
        if spec is not None:
            ignores = [*ignores, (logical, spec)]
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        is_model = any(entry.name == "predict_net.pb" and entry.is_file() for entry in entries)
        if is_model:
            self.found.append((folder, False))
        folders = []
        for entry in entries:
            path, entry_logical = folder / entry.name, logical / entry.name
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:
                continue
            if is_dir:
                if not _passed_over(path) and not _ignored(ignores, entry_logical, True) \
                        and not self.excluded(path, root, True):
                    folders.append((path, entry_logical))
            elif is_file and entry.name.lower().endswith(netfile.NET_SUFFIXES) \
                    and not (is_model and entry.name in _PAIR) \
                    and not _ignored(ignores, entry_logical, False) \
                    and not self.excluded(path, root, False) and self.first_visit(path):
                self.found.append((path, False))
        for path, entry_logical in folders:
            if self.first_visit(path):
                self.walk(path, root, ignores, entry_logical)


def _passed_over(folder: Path) -> bool:
    """Hidden folders, virtualenvs and node_modules: never holding the project's nets."""
    return folder.name.startswith(".") or folder.name == "node_modules" \
        or (folder / "pyvenv.cfg").is_file()


def _read_gitignore(path: Path):
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.is_file() else None
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def _repository_ignores(folder: Path) -> list:
    """(base folder, spec) for the .gitignore files above `folder` up to its git
    repository's root, and the repository's .git/info/exclude; outermost first."""
    chain = [folder, *folder.parents]
    for index, candidate in enumerate(chain):
        if (candidate / ".git").exists():
            above = chain[1:index + 1][::-1]  # from the repository root down to folder's parent
            ignores = []
            spec = _read_gitignore(candidate / ".git" / "info" / "exclude")
            if spec is not None:
                ignores.append((candidate, spec))
            for base in above:
                spec = _read_gitignore(base / ".gitignore")
                if spec is not None:
                    ignores.append((base, spec))
            return ignores
    return []


def _ignored(ignores: list, path: Path, is_dir: bool) -> bool:
    """git's rule: the deepest .gitignore with a pattern matching the path decides,
    and within one file the last matching pattern."""
    verdict = None
    for base, spec in ignores:
        rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        result = spec.check_file(rel).include
        if result is not None:
            verdict = result
    return bool(verdict)
