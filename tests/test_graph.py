"""pycaffe2.graph: the DOT text of small nets, escaping, minimal mode, rendering."""
import re
import shutil
from pathlib import Path

import pytest

from pycaffe2 import core, graph
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.netfile import Model
from pycaffe2.proto import caffe2_pb2

REPO = Path(__file__).resolve().parent.parent
HAVE_DOT = shutil.which("dot") is not None
HOSTILE = 'a"b\\c\nd}{<x>&lt;\x01 \\N'
# What a reader sees: the name itself, with the newline and the \x01 spelled out.
HOSTILE_SHOWN = 'a"b\\c\\nd}{<x>&lt;\\x01 \\N'
LABEL = re.compile(r'label="((?:[^"\\]|\\.)*)"')

GREY = 'shape=box, style="rounded,filled", fillcolor="#e0e0e0", color="#909090", fontcolor="#606060"'
PARAM = 'shape=ellipse, style="bold,filled", fillcolor="#fff2b3"'
EXPECTED = f"""digraph "tiny" {{
  node [fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];
  b0 [shape=ellipse, label="x"];
  b1 [{PARAM}, label="w"];
  b2 [{PARAM}, label="b"];
  op0 [shape=box, style="rounded", label="FC #0\\naxis=1"];
  b0 -> op0;
  b1 -> op0;
  b2 -> op0;
  b3 [shape=ellipse, label="h"];
  op0 -> b3;
  op1 [shape=box, style="rounded", label="Relu #1"];
  b3 -> op1;
  b4 [shape=ellipse, label="h (v2)"];
  op1 -> b4;
  b5 [shape=ellipse, label="h_grad"];
  op2 [{GREY}, label="ReluGradient #2"];
  b4 -> op2;
  b5 -> op2;
  b6 [shape=ellipse, label="x_grad"];
  op2 -> b6;
}}
"""
EXPECTED_MINIMAL = f"""digraph "tiny" {{
  node [fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];
  op0 [shape=box, style="rounded", label="FC #0"];
  op1 [shape=box, style="rounded", label="Relu #1"];
  op0 -> op1 [label="h"];
  op2 [{GREY}, label="ReluGradient #2"];
  op1 -> op2 [label="h"];
}}
"""


def tiny_net() -> core.Net:
    """FC, an in-place Relu and a gradient op."""
    net = core.Net("tiny")
    net.FC(["x", "w", "b"], "h", axis=1)
    net.Relu("h", "h")
    net.Proto().op.append(core.CreateOperator("ReluGradient", ["h", "h_grad"], ["x_grad"]))
    return net


def unescape(label: str) -> str:
    """What Graphviz shows for a quoted label: \\" and \\\\ unescaped, \\n a line break."""
    out = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), label)
    return out.replace("&amp;", "&")


def edges(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+)", text, re.MULTILINE)


def test_exact_dot_of_a_small_net():
    net = tiny_net()  # one net: a second Net("tiny") would be named tiny_1, as in Caffe2
    assert graph.net_to_dot(net) == EXPECTED
    assert graph.net_to_dot(net.Proto()) == EXPECTED  # a NetDef draws the same


def test_minimal_draws_ops_only_with_labelled_edges():
    text = graph.net_to_dot(tiny_net(), minimal=True)
    assert text == EXPECTED_MINIMAL
    assert "ellipse" not in text


def test_in_place_writes_make_versions_and_no_cycle():
    net = core.Net("chain")
    for _ in range(3):
        net.Relu("h", "h")
    text = graph.net_to_dot(net)
    labels = LABEL.findall(text)
    assert [lab for lab in labels if lab.startswith("h")] == ["h", "h (v2)", "h (v3)", "h (v4)"]
    order = {node: i for i, node in enumerate(re.findall(r"^\s*(\w+) \[", text, re.MULTILINE))}
    # Every edge goes forward in emission order, so the graph is acyclic.
    assert all(order[a] < order[b] for a, b in edges(text))


def test_hostile_names_are_escaped():
    net = core.Net(HOSTILE)
    net.Relu([HOSTILE], [HOSTILE])
    net.Relu([HOSTILE], ["y"])
    for minimal in (False, True):
        text = graph.net_to_dot(net, minimal=minimal)
        lines = text.splitlines()
        assert lines[0] == 'digraph "' + graph.escape(HOSTILE) + '" {' and lines[-1] == "}"
        # Each statement stays on its line and every quote inside a name is escaped.
        assert all(re.fullmatch(r'\s*(\w+( -> \w+)?( \[.*\])?;|node \[.*\];|edge \[.*\];)', line)
                   for line in lines[1:-1])
        shown = [unescape(lab) for lab in LABEL.findall(text)]
        if minimal:  # the blob is the edge's label
            assert shown == ["Relu #0", "Relu #1", HOSTILE_SHOWN]
        else:
            assert shown == [HOSTILE_SHOWN, "Relu #0", HOSTILE_SHOWN + " (v2)", "Relu #1", "y"]


def test_escape_rules():
    assert graph.escape('say "hi"') == 'say \\"hi\\"'
    assert graph.escape("a\\b") == "a\\\\b"
    assert graph.escape("x\ny\tz\x7f") == "x\\\\ny\\\\tz\\\\x7f"
    assert graph.escape("&lt;{}<>") == "&amp;lt;{}<>"


def test_short_args_and_gradient_flag():
    op = core.CreateOperator("Conv", ["x", "f", "b"], ["y"], kernel=3, pads=[1, 1, 1, 1, 1],
                             order="NCHW")
    assert unescape(graph.op_label(op, 7, True)) == "Conv #7\nkernel=3\npads=[1, 1, 1, 1, …]\norder=NCHW"
    assert graph.op_label(op, 7, False) == "Conv #7"
    flagged = caffe2_pb2.OperatorDef(type="Sum", is_gradient_op=True)
    assert graph.is_gradient(flagged)
    assert graph.is_gradient(caffe2_pb2.OperatorDef(type="DropoutGrad"))
    assert not graph.is_gradient(caffe2_pb2.OperatorDef(type="Sum"))


def test_parameters_by_weight_inputs_not_labels():
    net = core.Net("loss")
    net.FC(["x", "w", "b"], "logits")
    net.SoftmaxWithLoss(["logits", "label"], ["prob", "loss"])
    styles = {lab: line for line in graph.net_to_dot(net).splitlines()
                  for lab in LABEL.findall(line)}
    assert PARAM in styles["w"] and PARAM in styles["b"]
    assert PARAM not in styles["x"] and PARAM not in styles["label"]


def test_model_file_marks_init_net_outputs(tmp_path):
    out = tmp_path / "mlp.dot"
    assert graph.graph_main(REPO / "nets" / "mlp.yaml", out, False) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith('digraph "mlp" {')
    params = {lab for line in text.splitlines() if PARAM in line for lab in LABEL.findall(line)}
    assert params == {"fc1_w", "fc1_b", "fc2_w", "fc2_b"}
    # Drawn from the predict net only: 4 ops.
    assert len(re.findall(r"^\s*op\d+ \[", text, re.MULTILINE)) == 4


def test_init_net_params_beyond_weight_inputs():
    predict = core.Net("p")
    predict.Mul(["x", "k"], "y")
    init = core.Net("i")
    init.ConstantFill([], "k", shape=[1], value=2.0)
    text = graph.model_to_dot(Model(predict.Proto(), init.Proto()))
    assert f'[{PARAM}, label="k"]' in text and f'[{PARAM}, label="x"]' not in text


def test_plan_draws_each_net_as_a_cluster():
    train, test = core.Net("train"), core.Net("test")
    train.Relu("x", "x")
    test.Sigmoid("x", "y")
    plan = core.Plan("p")
    plan.AddStep(core.ExecutionStep("s", [train, test], num_iter=2))
    text = graph.plan_to_dot(plan)
    assert text.count("subgraph cluster_") == 2
    assert 'label="train";' in text and 'label="test";' in text
    assert ("n0_b0", "n0_op0") in edges(text) and ("n1_op0", "n1_b1") in edges(text)
    model = Model(train.Proto(), plan=plan.Proto())
    assert graph.model_to_dot(model, minimal=True).count("subgraph cluster_") == 2


def test_render_dot_writes_the_text(tmp_path):
    out = tmp_path / "net.dot"
    graph.render(EXPECTED, out)
    assert out.read_text(encoding="utf-8") == EXPECTED


def test_missing_graphviz_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    for name in ("net.svg", "net.png"):
        with pytest.raises(PyCaffe2Error, match=r"Graphviz's `dot` is not installed.*-o file\.dot"):
            graph.render(EXPECTED, tmp_path / name)
    assert not list(tmp_path.iterdir())
    graph.render(EXPECTED, tmp_path / "net.dot")  # still fine without Graphviz


def test_unknown_format(tmp_path):
    with pytest.raises(PyCaffe2Error, match=r"unknown picture format '\.gif'"):
        graph.render(EXPECTED, tmp_path / "net.gif")


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot is not installed")
def test_svg_render_shows_names_literally(tmp_path):
    net = core.Net("evil")
    net.Relu([HOSTILE], [HOSTILE])
    out = tmp_path / "net.svg"
    graph.render(graph.net_to_dot(net), out)
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    xml = HOSTILE_SHOWN.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;") \
        .replace(">", "&gt;")
    assert texts == [xml, "Relu #0", xml + " (v2)"]
