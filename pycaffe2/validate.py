"""The file walker behind `pycaffe2 validate`: which files to check, and the
problems in each. It sits above netfile (it reads files) and the schema checker
(it checks what it read), so the checker itself never touches the file layer."""
from __future__ import annotations

from pathlib import Path

from pycaffe2 import netfile
from pycaffe2.errors import NetFileError
from pycaffe2.schema.checker import Problem, check_model


def check_file(path) -> list[Problem]:
    """Every problem in a net or model file (or model folder); a file that
    cannot be read at all gives one problem of kind 'file'."""
    try:
        model = netfile.load_model(path)
    except NetFileError as exc:
        return [Problem("file", exc.message, exc.file or str(path), exc.line, None,
                        exc.op_index, exc.op_type)]
    return check_model(model)


def net_files(paths) -> list[Path]:
    """The net files named by `paths`, folders searched recursively; a folder
    holding predict_net.pb (+ init_net.pb) counts as one model."""
    found = []
    for path in map(Path, paths):
        if not _is_folder(path):
            found.append(path)
            continue
        for folder in [path, *sorted(p for p in path.rglob("*") if p.is_dir())]:
            is_model = (folder / "predict_net.pb").is_file()
            if is_model:
                found.append(folder)
            for file in sorted(folder.iterdir()):
                pair_member = is_model and file.name in ("init_net.pb", "predict_net.pb")
                if file.is_file() and file.suffix.lower() in netfile.NET_SUFFIXES and not pair_member:
                    found.append(file)
    return found


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long or with a NUL byte: check_file says why
        return False
