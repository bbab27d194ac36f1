"""Where a path a file names really leads, for the trust boundary.

A model file someone else wrote names other files (its nets beside it, the
DBs its Save/Load ops write and read). These helpers say whether such a path
stays inside a folder once `..`, absolute paths and symlinks are followed:

    reason = outside_reason(model_folder, "../../etc/passwd")   # "goes outside ... with '..'"
    within("/data/x.minidb", ["/data", "/home/me"])              # True

Only the path's meaning at the time of the check is known: a symlink made
later (by another process) is not seen.
"""
from __future__ import annotations

import os
from pathlib import Path


def real(path) -> str:
    """The absolute path with every symlink followed (the part that exists) and `..` removed."""
    return os.path.realpath(os.path.abspath(path))


def within(path, roots) -> bool:
    """Whether `path` (resolved) lies in one of `roots` (resolved) or is one of them."""
    target = real(path)
    for root in roots:
        root = real(root)
        try:
            if os.path.commonpath([target, root]) == root:
                return True
        except ValueError:  # different drives
            continue
    return False


def outside_reason(folder, name: str) -> str | None:
    """Why `name`, a path given relative to `folder`, leads outside `folder`; None when it
    stays inside (after `..` and symlinks)."""
    try:
        if os.path.isabs(name):
            return "is an absolute path"
        base = os.path.abspath(folder)
        lexical = os.path.normpath(os.path.join(base, name))
        if os.path.commonpath([lexical, base]) != base:
            return "goes outside the model's folder with '..'"
        target = Path(folder) / name
        if not within(target, [folder]):
            return f"leads outside the model's folder through a symlink (to {real(target)})"
        return None
    except (ValueError, OSError) as exc:  # an embedded NUL, a name too long
        return f"is not a usable path ({exc})"


def under_root(root_folder: str, name: str) -> str:
    """Caffe2's `root_folder + "/" + name`: where an op's relative file name (a Save db with
    absolute_path=0, a Print log) lies in a workspace whose root folder is `root_folder`
    ("" or "." is the working folder). Joined as Caffe2 joins them, so a name starting
    with "/" stays under the root folder too; under "." a relative name is kept as it is."""
    if root_folder in ("", ".") and not name.startswith("/"):
        return name
    return f"{root_folder or '.'}/{name}"
