"""benchmarks/run_all.py without timing anything: module discovery, skip notes, the report.

Fake benchmark modules written to a temporary folder stand in for the real ones,
so this takes milliseconds and needs none of the peers."""
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def run_all(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "fake_good.py").write_text(
        "from _common import Row\n"
        "def rows(threads, repeat, quick=False):\n"
        "    n = 1 if quick else 2\n"
        "    return [Row('models', f'net {i}', 'ONNX Runtime', 3.0, 2.0, threads=threads, target=2.0)\n"
        "            for i in range(n)] + [Row('memory', 'peak', 'ONNX Runtime', 4.0, 1.0, unit='MB',\n"
        "                                      threads=threads, target=1.5)]\n")
    (tmp_path / "fake_no_peer.py").write_text("import fake_missing_peer_package\n")
    (tmp_path / "fake_no_rows.py").write_text("X = 1\n")
    (tmp_path / "fake_broken.py").write_text("def rows(threads, repeat):\n    raise ValueError('outputs differ')\n")
    import run_all
    yield run_all
    for name in ("fake_good", "fake_no_peer", "fake_no_rows", "fake_broken"):
        sys.modules.pop(name, None)


MODULES = {"fake_good": "models", "fake_absent": "kernels", "fake_no_peer": "kernels",
           "fake_no_rows": "dispatch", "fake_broken": "validate"}


def test_gather_calls_each_module_per_thread_count_and_notes_the_skipped(run_all):
    rows, notes = run_all.gather(MODULES, [1, 2], repeat=1, quick=True, log=lambda *a, **k: None)
    assert [(r.case, r.threads) for r in rows] == [("net 0", 1), ("peak", 1), ("net 0", 2), ("peak", 2)]
    assert notes[0] == "fake_absent: not present"
    assert notes[1] == "fake_no_peer: needs fake_missing_peer_package (pip install pycaffe2[bench])"
    assert notes[2] == "fake_no_rows: has no rows(threads, repeat) yet"
    assert notes[3].startswith("fake_broken, 1 thread(s): failed: ValueError: outputs differ")


def test_only_keeps_one_group(run_all):
    rows, _ = run_all.gather(MODULES, [1], repeat=1, only="memory", log=lambda *a, **k: None)
    assert [r.group for r in rows] == []  # fake_good's group in MODULES is "models"
    rows, _ = run_all.gather({"fake_good": "memory"}, [1], repeat=1, only="memory", log=lambda *a, **k: None)
    assert [r.case for r in rows] == ["peak"]


def test_report_has_machine_table_summary_and_notes(run_all, tmp_path):
    rows, notes = run_all.gather(MODULES, [1], repeat=1, log=lambda *a, **k: None)
    text = run_all.report(rows, notes, quick=False)
    assert text.startswith("Machine: ")
    assert "| models | net 1 | 1 | 3 ms | ONNX Runtime | 2 ms | 1.50x | <= 2 met |" in text
    assert "| memory | peak | 1 | 4 MB | ONNX Runtime | 1 MB | 4.00x | <= 1.5 not met |" in text
    assert "Targets: 2 of 3 met; not met: memory 1" in text
    assert "- fake_absent: not present" in text


def test_main_writes_markdown(run_all, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(run_all, "MODULES", {"fake_good": "models"})
    out = tmp_path / "table.md"
    run_all.main(["--quick", "--threads", "1", "--markdown", str(out)])
    assert out.read_text() == capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_all.main(["--threads", "one"])
