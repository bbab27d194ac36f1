"""Running Caffe2's published tutorials (test data in the shared folder) on pycaffe2.

`run_tutorial(name, home)` reads `<shared>/caffe2_tutorials/<name>.py`, changes only
its import lines (`caffe2.python` -> `pycaffe2`, `caffe2.proto` -> `pycaffe2.proto`),
and executes it as `__main__` with `home` as both $HOME and the working folder, so
whatever it writes (`~/caffe2_notebooks`, ...) lands there. Modules it imports that
this machine lacks or that would reach the network get stand-ins
(`tests/tutorials/standins.py`); a download the test did not provide fails naming
its address. Returns the tutorial's globals for the test to check.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED
from tests.tutorials import standins

TUTORIALS = SHARED / "caffe2_tutorials"
TUTORIALS_MISSING = (f"needs Caffe2's tutorials in {TUTORIALS.absolute()} "
                     "(the shared folder's caffe2_tutorials; see PYCAFFE2_SHARED in tests/conftest.py)")

_IMPORT = re.compile(r"^\s*(from|import)\s+caffe2\.(python|proto)\b")


def tutorial_path(name: str) -> Path:
    path = TUTORIALS / f"{name}.py"
    if not path.is_file():
        pytest.skip(TUTORIALS_MISSING)
    return path


def rewrite_imports(text: str) -> str:
    """Only lines that import from caffe2 change, and only their module names."""
    lines = []
    for line in text.splitlines(keepends=True):
        if _IMPORT.match(line):
            line = line.replace("caffe2.python", "pycaffe2").replace("caffe2.proto", "pycaffe2.proto")
        lines.append(line)
    return "".join(lines)


def changed_lines(name: str) -> list[tuple[str, str]]:
    """(original, rewritten) for every line the rewrite touched."""
    original = tutorial_path(name).read_text().splitlines()
    rewritten = rewrite_imports(tutorial_path(name).read_text()).splitlines()
    return [(a, b) for a, b in zip(original, rewritten) if a != b]


@contextlib.contextmanager
def _session(home: Path, downloads: dict[str, bytes], modules: dict):
    saved_env = {k: os.environ.get(k) for k in ("HOME",)}
    saved_cwd = os.getcwd()
    saved_argv = sys.argv[:]
    installed = standins.install(downloads, modules)
    os.environ["HOME"] = str(home)
    os.chdir(home)
    sys.argv = ["tutorial"]
    from pycaffe2 import workspace
    saved_root = workspace.RootFolder()
    workspace.ResetWorkspace()
    try:
        yield
    finally:
        workspace.ResetWorkspace(saved_root)  # a tutorial may have set its own root folder
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        standins.uninstall(installed)


def run_tutorial(name: str, home: Path, downloads: dict[str, bytes] | None = None,
                 modules: dict | None = None, before=None, after=None) -> dict:
    """Executes the tutorial; `downloads` maps addresses to the bytes a download gets,
    `modules` adds or overrides stand-in modules by name, and `before(source)` may
    return a changed source only where a test must (say why at the call). `after(globals)`
    runs when the tutorial has, while its workspace still holds its blobs (the session
    resets it on the way out)."""
    path = tutorial_path(name)
    source = rewrite_imports(path.read_text())
    if before is not None:
        source = before(source)
    namespace = {"__name__": "__main__", "__file__": str(path)}
    with _session(Path(home), downloads or {}, modules or {}):
        # Deliberate: the tutorial is the test subject (shared test data, never a user's file).
        exec(compile(source, str(path), "exec"), namespace)  # noqa: S102
        if after is not None:
            after(namespace)
    return namespace
