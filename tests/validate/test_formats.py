"""validate's output formats (text, json, github, sarif) and `pycaffe2 --version`."""
import json
from importlib import metadata
from pathlib import Path

import pytest

import pycaffe2
from pycaffe2 import cli
from pycaffe2.cli import main
from pycaffe2.schema.checker import Problem
from pycaffe2.validate import Report
from pycaffe2.validate_report import RULES, github_annotation, render

BROKEN = Path(__file__).resolve().parent.parent / "data" / "broken"


def test_github_annotations_point_at_file_and_line(monkeypatch, capsys):
    monkeypatch.chdir(BROKEN.parent.parent.parent)
    assert main(["validate", "tests/data/broken/many.yaml", "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("::error file=tests/data/broken/many.yaml,line=5,title=pycaffe2 validate%3A "
                        "unknown-arg::op 0 (Relu): unknown arg 'alpha'")
    assert [line.split(",")[1] for line in lines] == ["line=5", "line=6", "line=7"]


def test_github_annotation_escapes_and_omits_unknown_lines():
    problem = Problem("plan", "50% done\nnext, then: more", "a,b:c.yaml", None)
    assert github_annotation(problem) == \
        "::error file=a%2Cb%3Ac.yaml,title=pycaffe2 validate%3A plan::50%25 done%0Anext, then: more"
    assert github_annotation(Problem("shape", "m")) == "::error title=pycaffe2 validate%3A shape::m"


def test_sarif_log(monkeypatch, capsys):
    monkeypatch.chdir(BROKEN.parent.parent.parent)
    assert main(["validate", "tests/data/broken/many.yaml", "tests/data/broken/net_type.yaml",
                 "--format", "sarif"]) == 1
    log = json.loads(capsys.readouterr().out)
    assert log["version"] == "2.1.0" and "sarif-2.1.0" in log["$schema"]
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "pycaffe2 validate" and driver["version"] == cli.package_version()
    rules = driver["rules"]
    assert len({rule["id"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["defaultConfiguration"]["level"] == "error"
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["unknown-arg", "unknown-op", "undefined-blob", "net-type"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] and result["level"] == "error"
    first = results[0]
    assert first["message"]["text"] == "op 0 (Relu): unknown arg 'alpha'"
    (location,) = first["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "tests/data/broken/many.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 5}}
    assert location["logicalLocations"][0]["name"] == "op 0 (Relu)"
    assert "region" not in results[3]["locations"][0]["physicalLocation"]  # no line: no region


def test_sarif_uri_outside_the_working_directory_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(BROKEN)
    report = Report(checked=["x"], problems=[Problem("file", "bad", str(tmp_path / "a b.yaml"), 3)])
    log = json.loads(render(report, "sarif")[0])
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == (tmp_path / "a b.yaml").as_uri() and "%20" in uri


def test_sarif_has_a_rule_for_every_kind_the_checker_reports():
    import re
    source = "".join(path.read_text() for path in Path(pycaffe2.__file__).parent.rglob("*.py"))
    kinds = set(re.findall(r'(?:report|Problem)\("([a-z-]+)"', source))
    assert kinds and kinds <= set(RULES), kinds - set(RULES)
    # a kind with no entry still gets a rule of its own
    log = json.loads(render(Report(checked=["f"], problems=[Problem("new-kind", "m", "f")]), "sarif")[0])
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[log["runs"][0]["results"][0]["ruleIndex"]]["id"] == "new-kind"


def test_json_and_text_formats(capsys):
    assert main(["validate", str(BROKEN / "many.yaml"), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["files_checked"] == 1 and report["files_skipped"] == []
    assert main(["validate", str(BROKEN / "many.yaml")]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].endswith("many.yaml:5: op 0 (Relu): unknown arg 'alpha'")
    assert "1 file(s) checked: 3 problem(s) in 1 file(s)" in captured.err


def test_valid_files_print_nothing_on_stdout_but_sarif_and_json(capsys):
    nets = BROKEN.parent.parent.parent / "nets" / "mlp.yaml"
    for fmt in ("text", "github"):
        assert main(["validate", str(nets), "--format", fmt]) == 0
        assert capsys.readouterr().out == ""
    assert main(["validate", str(nets), "--format", "sarif"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["results"] == []


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pycaffe2 {metadata.version('pycaffe2')}"


def test_version_falls_back_to_the_package_attribute(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "version", missing)
    assert cli.package_version() == pycaffe2.__version__
