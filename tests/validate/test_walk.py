"""Folder walks as CI runs them: .gitignore, hidden folders, virtualenvs,
node_modules, symlinks, --exclude, and files that are not nets."""
import os
from pathlib import Path

import pytest

from pycaffe2.cli import main
from pycaffe2.validate import holds_net, net_files, validate

NET = "external_input: [X]\nop:\n  - {type: Relu, input: [X], output: [Y]}\n"
BAD_NET = "op:\n  - {type: Reluu, input: [X], output: [Y]}\n"


def _tree(root: Path, files: dict) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _names(root: Path, **kwargs):
    return sorted(path.relative_to(root).as_posix() for path in net_files([root], **kwargs))


def test_gitignore_of_the_folder_and_its_subfolders(tmp_path):
    root = _tree(tmp_path, {
        ".gitignore": "build/\n*.gen.yaml\n",
        "a.yaml": NET, "b.gen.yaml": NET, "build/c.yaml": NET,
        "sub/.gitignore": "local.yaml\n!keep.gen.yaml\n",
        "sub/local.yaml": NET, "sub/keep.gen.yaml": NET, "sub/d.yaml": NET,
    })
    assert _names(root) == ["a.yaml", "sub/d.yaml", "sub/keep.gen.yaml"]


def test_gitignore_of_the_enclosing_repository(tmp_path):
    root = _tree(tmp_path, {".gitignore": "nets/skip/\n", "nets/a.yaml": NET, "nets/skip/b.yaml": NET,
                            ".git/info/exclude": "*.local.yaml\n", "nets/c.local.yaml": NET})
    assert _names(root / "nets") == ["a.yaml"]


def test_a_folder_the_repository_ignores_is_walked_when_named(tmp_path):
    root = _tree(tmp_path, {".git/HEAD": "", ".gitignore": "generated/\n", "generated/a.yaml": NET})
    assert _names(root) == []
    assert _names(root / "generated") == ["a.yaml"]


def test_gitignore_outside_a_repository_is_not_looked_for_above(tmp_path):
    _tree(tmp_path, {".gitignore": "nets/\n", "nets/a.yaml": NET})  # no .git: the folder's own only
    assert _names(tmp_path / "nets") == ["a.yaml"]


def test_hidden_folders_virtualenvs_and_node_modules_are_passed_over(tmp_path):
    root = _tree(tmp_path, {"a.yaml": NET, ".hidden/b.yaml": NET, "venv/pyvenv.cfg": "home = /usr\n",
                            "venv/lib/c.yaml": NET, "node_modules/pkg/d.json": "{}",
                            "web/node_modules/e.yaml": NET, ".f.yaml": NET})
    assert _names(root) == [".f.yaml", "a.yaml"]


def test_a_hidden_folder_named_explicitly_is_walked(tmp_path):
    root = _tree(tmp_path, {".nets/a.yaml": NET})
    assert _names(root / ".nets") == ["a.yaml"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_never_visit_a_file_twice_and_loops_end(tmp_path):
    root = _tree(tmp_path, {"real/a.yaml": NET})
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    (root / "real" / "b.yaml").symlink_to(root / "real" / "a.yaml")
    found = net_files([root])
    assert len(found) == 1 and found[0].name in ("a.yaml", "b.yaml")
    assert len(net_files([root, root / "real", root / "real" / "a.yaml"])) == 1


def test_exclude_globs(tmp_path, monkeypatch):
    root = _tree(tmp_path, {"nets/a.yaml": NET, "nets/broken/b.yaml": BAD_NET, "nets/c.json": "{}",
                            "other/broken/d.yaml": NET})
    monkeypatch.chdir(root)
    assert _names(root, exclude=["broken/"]) == ["nets/a.yaml", "nets/c.json"]
    assert _names(root, exclude=["nets/broken", "*.json"]) == ["nets/a.yaml", "other/broken/d.yaml"]
    assert main(["validate", "nets", "--exclude", "broken/"]) == 0
    assert main(["validate", "nets"]) == 1
    assert main(["validate", "nets/broken/b.yaml", "--exclude", "broken/"]) == 2  # nothing left


def test_files_that_are_not_nets_are_skipped_by_a_walk(tmp_path, capsys):
    root = _tree(tmp_path, {
        "a.yaml": NET,
        ".pre-commit-config.yaml": "repos:\n  - repo: local\n    hooks: []\n",
        "ci/.github/workflows/ci.yml": "on: push\njobs: {test: {runs-on: ubuntu-latest}}\n",
        "config.yaml": "learning_rate: 0.1\nbatch: 64\n",
        "package.json": '{"name": "x", "version": "1.0.0"}',
        "tsconfig.json": '{\n  // comments: not JSON at all\n  "compilerOptions": {}\n}\n',
        "list.yaml": "- 1\n- 2\n", "empty.yaml": "",
        "k8s.yaml": "kind: A\n---\nkind: B\n",
    })
    report = validate([root])
    assert [Path(p).name for p in report.checked] == ["a.yaml"]
    assert sorted(Path(p).name for p in report.skipped) == [
        ".pre-commit-config.yaml", "config.yaml", "empty.yaml", "k8s.yaml", "list.yaml", "package.json",
        "tsconfig.json"]
    assert report.problems == []
    assert main(["validate", str(root)]) == 0
    assert "1 file(s) checked: all valid; 7 file(s) skipped (not nets)" in capsys.readouterr().err


def test_a_broken_net_found_by_a_walk_is_still_reported(tmp_path):
    root = _tree(tmp_path, {"bad.yaml": "op: [\n", "bad.json": '{"op": [1,', "model.yaml": "predict_net: {op: [}"})
    report = validate([root])
    assert sorted(Path(p).name for p in report.checked) == ["bad.json", "bad.yaml", "model.yaml"]
    assert [p.kind for p in report.problems] == ["file"] * 3


def test_a_file_named_explicitly_is_checked_whatever_it_holds(tmp_path, capsys):
    root = _tree(tmp_path, {"config.yaml": "learning_rate: 0.1\n"})
    assert main(["validate", str(root / "config.yaml")]) == 2  # reported: not a net
    assert "unknown NetDef field 'learning_rate'" in capsys.readouterr().out
    # unless asked to skip non-nets, as the pre-commit hook does
    assert main(["validate", "--skip-non-nets", str(root / "config.yaml")]) == 0
    assert "0 file(s) checked: all valid; 1 file(s) skipped" in capsys.readouterr().err


def test_holds_net_judges_by_content(tmp_path):
    cases = {"n.yaml": (NET, True), "m.yaml": ("predict_net: p.pb\n", True),
             "j.json": ('{"externalInput": ["X"], "op": []}', True), "c.yaml": ("a: 1\n", False),
             "s.yaml": ("just text\n", False), "broken.yaml": ("op: [\n", True),
             "x.pb": ("anything", True)}
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        assert holds_net(tmp_path / name) is expected, name


def test_model_folders_still_count_as_one(tmp_path):
    from pycaffe2 import netfile
    from pycaffe2.proto import caffe2_pb2
    folder = tmp_path / "m"
    folder.mkdir()
    netfile.save_net(caffe2_pb2.NetDef(name="p"), folder / "predict_net.pb")
    netfile.save_net(caffe2_pb2.NetDef(name="i"), folder / "init_net.pb")
    (folder / "extra.yaml").write_text(NET)
    assert _names(tmp_path) == ["m", "m/extra.yaml"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_files_found_by_a_walk_are_passed_over(tmp_path):
    root = _tree(tmp_path, {"a.yaml": NET})
    os.mkfifo(root / "pipe.yaml")  # reading it would wait forever
    (root / "zero.pb").symlink_to("/dev/zero")
    (root / "dangling.yaml").symlink_to(root / "missing.yaml")
    assert _names(root) == ["a.yaml"]
