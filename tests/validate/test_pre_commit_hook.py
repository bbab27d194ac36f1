"""The pre-commit hook other repositories use: `.pre-commit-hooks.yaml`."""
import re
import shlex
from pathlib import Path

import yaml

from pycaffe2.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _hook():
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return hook


def test_hook_definition():
    hook = _hook()
    assert hook["id"] == "pycaffe2-validate" and hook["language"] == "python"
    assert shlex.split(hook["entry"])[:2] == ["pycaffe2", "validate"]
    files = re.compile(hook["files"])
    for name in ("nets/a.yaml", "b.yml", "predict_net.pb", "c.pbtxt", "d.json"):
        assert files.search(name), name
    for name in ("setup.py", "README.md", "a.pb.txt", "x.yaml.bak"):
        assert not files.search(name), name


def test_hook_as_pre_commit_runs_it_on_staged_files(tmp_path, monkeypatch, capsys):
    """pre-commit names every staged file its regex matches; the CI configs among them pass."""
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    (tmp_path / "net.yaml").write_text("external_input: [X]\nop: [{type: Relu, input: [X], output: [Y]}]\n")
    (tmp_path / "bad.yaml").write_text("op: [{type: Reluu, input: [X], output: [Y]}]\n")
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(_hook()["entry"])[1:]
    assert main(argv + [".pre-commit-config.yaml", "net.yaml"]) == 0
    assert main(argv + [".pre-commit-config.yaml", "net.yaml", "bad.yaml"]) == 1
    assert "bad.yaml:1: op 0 (Reluu): unknown op type 'Reluu'" in capsys.readouterr().out
