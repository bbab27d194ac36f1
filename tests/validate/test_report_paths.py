"""`pycaffe2 validate` says exactly what it said before its fast paths (issue 17),
byte for byte: messages, lines, exit codes and every format (text, json, github,
sarif).

- Recorded: the reports for the bad-file fixtures, the bundled nets and models and
  the shared real nets (Glow's importer nets, the Caffe2 model files) as the code
  before the fast paths gave them, in tests/data/validate_reports.json. Rewrite it
  only on purpose: `python -m tests.validate.test_report_paths` (from the root).
- Switched: the fast paths turned off (PyYAML for every file, message_problem's and
  tree_problem's full walks) give the same reports as with them on, over edited
  copies of the fixtures, where faults land anywhere.
- A problem found on the fast path still carries its YAML line.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import random
import sys
from pathlib import Path

import pytest

from pycaffe2 import _yaml, _yaml_subset, cli
from pycaffe2.proto import checks
from pycaffe2.validate import check_file, validate
from pycaffe2.validate_report import FORMATS, render
from tests.conftest import REPO, SHARED

RECORDED = REPO / "tests" / "data" / "validate_reports.json"
FIXTURES = sorted((REPO / "tests" / "data" / "broken").glob("*.yaml"))


def inputs() -> list[Path]:
    """Every file or model folder the recorded reports cover (those present here)."""
    found = [*FIXTURES, *sorted((REPO / "tests" / "data").glob("*.pbtxt")), *sorted((REPO / "nets").rglob("*.yaml")),
             *sorted(path for path in (REPO / "nets" / "models").iterdir() if path.is_dir())]
    if (SHARED / "glow_caffe2_nets").is_dir():
        found += sorted((SHARED / "glow_caffe2_nets").glob("*.pbtxt"))
    if (SHARED / "caffe2_models").is_dir():
        found += sorted(path for path in (SHARED / "caffe2_models").rglob("*") if path.suffix in (".pb", ".pbtxt"))
    return found


def key(path: Path) -> str:
    return os.path.relpath(path, REPO)


def reports(name: str) -> dict:
    """What `pycaffe2 validate NAME` prints (stdout, stderr, exit code) in text, and (the
    SHA-256 of) what it prints in the other formats."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["validate", name])
    found = {"exit": code, "text": out.getvalue(), "stderr": err.getvalue()}
    report = validate([name])
    for fmt in FORMATS[1:]:  # long (SARIF lists every rule): kept as digests
        found[fmt] = hashlib.sha256(render(report, fmt, version="recorded")[0].encode()).hexdigest()
    return found


@functools.lru_cache(maxsize=1)
def _recorded() -> dict:
    return json.loads(RECORDED.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", inputs(), ids=key)
def test_reports_are_the_recorded_ones(path, monkeypatch):
    monkeypatch.chdir(REPO)
    recorded = _recorded().get(key(path))
    if recorded is None:
        pytest.skip(f"no recorded report for {key(path)}")
    assert reports(key(path)) == recorded


@contextlib.contextmanager
def slow_paths():
    """Every fast path of validate turned off: what each file went through before them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_yaml_subset, "load", lambda text: _yaml_subset.NOT_PLAIN)
        patch.setattr(checks, "_clean", lambda message: False)
        full_walk = _yaml.tree_problem
        patch.setattr(_yaml, "tree_problem", lambda tree, max_values, data=None: full_walk(tree, max_values))
        yield


def _edit(text: str, rng: random.Random) -> str:
    """A small edit of a net file: a character in or out, a line re-indented, doubled or dropped."""
    lines = text.split("\n")
    line = rng.randrange(len(lines))
    choice = rng.random()
    if choice < 0.35:
        pos = rng.randint(0, len(lines[line]))
        lines[line] = lines[line][:pos] + rng.choice(" -:[]{},#'\"1x_") + lines[line][pos:]
    elif choice < 0.55 and lines[line]:
        pos = rng.randrange(len(lines[line]))
        lines[line] = lines[line][:pos] + lines[line][pos + 1:]
    elif choice < 0.7:
        lines[line] = " " * rng.randint(0, 6) + lines[line].lstrip(" ")
    elif choice < 0.85:
        lines.insert(line, lines[rng.randrange(len(lines))])
    else:
        del lines[line]
    return "\n".join(lines)


@pytest.mark.parametrize("path", [*FIXTURES, REPO / "nets" / "mlp.yaml"], ids=lambda path: path.name)
def test_fast_and_slow_paths_report_alike(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, rng = path.read_text(), random.Random(path.name)
    for index in range(12):
        edited = Path(f"edit{index}.yaml")
        edited.write_text(_edit(_edit(text, rng), rng) if index else text)
        fast = reports(str(edited))
        with slow_paths():
            assert reports(str(edited)) == fast, edited.read_text()


def test_a_problem_found_on_the_fast_path_keeps_its_line(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text("name: n\nexternal_input: [X]\nop:\n  - {type: Relu, input: [X], output: [Y]}\n"
                   "  - type: HardSigmoid\n    input: [Y]\n    output: [Z]\n    arg: {alpha: x}\n")
    assert _yaml_subset.load(net.read_text()) is not _yaml_subset.NOT_PLAIN  # read by the fast reader
    problems = check_file(net)
    assert [str(p) for p in problems] == [f"{net}:5: op 1 (HardSigmoid): arg 'alpha' must be float, got 'x' (field s)"]
    with slow_paths():
        assert check_file(net) == problems


def record() -> None:
    """Rewrite tests/data/validate_reports.json from the code in use (run from the root)."""
    os.chdir(REPO)
    found = {key(path): reports(key(path)) for path in inputs()}
    RECORDED.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"recorded {len(found)} reports in {RECORDED}", file=sys.stderr)


if __name__ == "__main__":
    record()
