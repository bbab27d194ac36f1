"""How `pycaffe2 validate` prints what it found: text (one problem a line),
json, github (workflow annotation commands, so each problem shows on its line
of a pull request's diff) and sarif (SARIF 2.1.0, for code-scanning uploads).

    out, summary = render(report, "sarif", version="0.1.0")

`out` goes to stdout; `summary` (counts, skipped files) to stderr.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from pycaffe2.errors import location

FORMATS = ("text", "json", "github", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# Problem kind -> what the rule checks (the SARIF rules; every kind the checker and loader report).
RULES = {
    "file": "The file can be read and parsed as a net, model file or model folder.",
    "unknown-op": "Every op type has a schema.",
    "input-count": "An op has as many inputs as its schema allows.",
    "output-count": "An op has as many outputs as its schema allows.",
    "missing-arg": "Every required arg of an op is given.",
    "unknown-arg": "Every arg of an op is one its schema declares.",
    "arg-type": "An arg's value has the type its schema declares.",
    "arg-value": "An arg's value is one its schema allows.",
    "arg-duplicate": "No arg is given twice on one op.",
    "undefined-blob": "Every blob an op reads is provided before it: an external input, the init net "
                      "or an earlier op.",
    "inplace": "Ops run in place only where their schema allows, and do where it enforces.",
    "dag-write": "In a concurrent (dag) net, each blob has one writer.",
    "external-output": "Every external output is produced by some op.",
    "net-type": "The net type is one Caffe2 knows.",
    "nesting": "Nets held in op args (If, While, Do, step nets) nest at most MAX_NET_NESTING (16) deep.",
    "partition": "A device_option.node_name names a partition listed in the net's partition_info, "
                 "and those have distinct names (running ignores the placement: one process runs "
                 "every op).",
    "shape": "Shapes and types agree along the net, as far as inference can follow them.",
    "plan": "Plan steps name nets that exist and hold either substeps or nets.",
    "internal": "Shape inference itself ran without failing.",
    "onnx-checker": "An ONNX model passes onnx.checker.check_model (full_check).",
    "onnx-translate": "Every node of an ONNX model translates to pycaffe2 ops that its schemas accept.",
}


def render(report, fmt: str, version: str = "") -> tuple[str, str]:
    """(stdout text, stderr summary) for a validate.Report in format `fmt`."""
    summary = _summary(report)
    if fmt == "json":
        out = json.dumps({"valid": not report.problems, "files_checked": len(report.checked),
                          "files_skipped": report.skipped,
                          "problems": [p.to_dict() for p in report.problems]}, indent=1)
    elif fmt == "github":
        out = "\n".join(github_annotation(p) for p in report.problems)
    elif fmt == "sarif":
        out = json.dumps(sarif(report, version), indent=1)
    else:
        out = "\n".join(str(p) for p in report.problems)
    return out, summary


def _summary(report) -> str:
    problems, checked = report.problems, len(report.checked)
    text = f"{checked} file(s) checked: " + (
        f"{len(problems)} problem(s) in {len({p.file for p in problems})} file(s)" if problems
        else "all valid")
    if report.skipped:
        text += f"; {len(report.skipped)} file(s) skipped (not nets)"
    return text


# ---------------------------------------------------------------- GitHub

def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(problem) -> str:
    """'::error file=F,line=L,title=...::message', escaped as the workflow command syntax needs."""
    props = []
    if problem.file:
        props.append(f"file={_escape_property(_relative(problem.file))}")
        if problem.line:
            props.append(f"line={problem.line}")
    props.append(f"title={_escape_property(f'pycaffe2 validate: {problem.kind}')}")
    return f"::error {','.join(props)}::{_escape_data(_message(problem))}"


def _message(problem) -> str:
    """The problem without its file and line (the annotation or location carries those)."""
    where = location(None, None, problem.op_index, problem.op_type)
    net = f"[{problem.net}] " if problem.net else ""
    return f"{where}: {net}{problem.message}" if where else net + problem.message


def _relative(file: str) -> str:
    """A path under the working directory as relative to it (workflows run at the repository root)."""
    absolute = Path(os.path.abspath(file))
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(file).as_posix()


# ---------------------------------------------------------------- SARIF

def sarif(report, version: str = "") -> dict:
    """A SARIF 2.1.0 log: one run, the rules (one per problem kind), one result per problem."""
    kinds = list(RULES) + sorted({p.kind for p in report.problems} - set(RULES))
    index = {kind: i for i, kind in enumerate(kinds)}
    driver = {"name": "pycaffe2 validate", "rules": [_rule(kind) for kind in kinds]}
    if version:
        driver["version"] = version
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0",
            "runs": [{"tool": {"driver": driver},
                      "results": [_result(p, index[p.kind]) for p in report.problems],
                      "columnKind": "unicodeCodePoints"}]}


def _rule(kind: str) -> dict:
    text = RULES.get(kind, f"pycaffe2 validate reports '{kind}' problems.")
    return {"id": kind, "name": "".join(word.capitalize() for word in kind.split("-")),
            "shortDescription": {"text": text}, "defaultConfiguration": {"level": "error"}}


def _result(problem, rule_index: int) -> dict:
    result = {"ruleId": problem.kind, "ruleIndex": rule_index, "level": "error",
              "message": {"text": _message(problem)}}
    if problem.file:
        physical = {"artifactLocation": _artifact(problem.file)}
        if problem.line:
            physical["region"] = {"startLine": problem.line}
        loc = {"physicalLocation": physical}
        if problem.op_index is not None:
            name = f"op {problem.op_index}" + (f" ({problem.op_type})" if problem.op_type else "")
            loc["logicalLocations"] = [{"name": name, "kind": "function",
                                        "fullyQualifiedName": f"{problem.net or 'net'}/{name}"}]
        result["locations"] = [loc]
    return result


def _artifact(file: str) -> dict:
    """A relative URI (from the working directory, SARIF's %SRCROOT%) when the file
    lies under it, else an absolute file: URI."""
    relative = _relative(file)
    if Path(relative).is_absolute():
        return {"uri": Path(relative).resolve().as_uri()}
    return {"uri": quote(relative), "uriBaseId": "%SRCROOT%"}
