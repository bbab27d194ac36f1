"""The command line: ops, convert, and the docs generated from the schemas."""
from pathlib import Path

from pycaffe2 import netfile
from pycaffe2.cli import main
from pycaffe2.schema import catalogue

DOCS = Path(__file__).resolve().parent.parent / "docs" / "operators.md"
NETS = Path(__file__).resolve().parent.parent / "nets"
REPO = NETS.parent


def test_docs_operators_md_is_current():
    assert DOCS.read_text() == catalogue.markdown(), \
        "docs/operators.md is stale: run `pycaffe2 ops --markdown > docs/operators.md`"


def test_ops_lists_and_describes(capsys):
    assert main(["ops"]) == 0
    listing = capsys.readouterr().out
    assert "HardSigmoid" in listing and "activation:" in listing
    assert main(["ops", "HardSigmoid"]) == 0
    text = capsys.readouterr().out
    assert "alpha (float; default 0.2): Slope." in text
    assert "In place allowed: input 0 -> output 0" in text and "Gradient: HardSigmoidGradient" in text
    assert main(["ops", "HardSigmod"]) == 2
    assert "did you mean HardSigmoid" in capsys.readouterr().err


def test_convert_round_trip(tmp_path):
    assert main(["convert", str(NETS / "hard_sigmoid.yaml"), str(tmp_path / "toy.pb")]) == 0
    assert main(["convert", str(tmp_path / "toy.pb"), str(tmp_path / "toy.pbtxt")]) == 0
    assert netfile.load_net(tmp_path / "toy.pbtxt") == netfile.load_net(NETS / "hard_sigmoid.yaml")


def test_convert_reports_bad_input(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("op: 3\n")
    assert main(["convert", str(tmp_path / "bad.yaml"), str(tmp_path / "out.pb")]) == 2
    assert "bad.yaml:1: op: 'op' must be a list" in capsys.readouterr().err
    assert not (tmp_path / "out.pb").exists()


def test_db_write_and_info(tmp_path, capsys):
    import numpy as np
    np.savez(tmp_path / "data.npz", data=np.arange(12, dtype=np.float32).reshape(3, 4),
             label=np.array([0, 1, 2], np.int32))
    assert main(["db", "write", str(tmp_path / "data.npz"), str(tmp_path / "data.minidb")]) == 0
    assert "wrote 3 record(s)" in capsys.readouterr().err
    assert main(["db", "info", str(tmp_path / "data.minidb")]) == 0
    out = capsys.readouterr().out
    assert "3" in out and "float32" in out and "int32" in out
    assert main(["db", "info", str(tmp_path / "missing.minidb")]) == 2


def test_graph_command_writes_dot(tmp_path):
    out = tmp_path / "net.dot"
    assert main(["graph", str(REPO / "nets" / "mlp.yaml"), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("digraph") and '"FC #0' in text
