"""pycaffe2.net_drawer: Caffe2's GetPydotGraph family on pycaffe2.graph's DOT text,
with pydot (a stand-in module here) and without it (our DotGraph)."""
import re
import sys
import types

import pytest

from pycaffe2 import core, graph, net_drawer
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.proto import caffe2_pb2

LABEL = re.compile(r'label="((?:[^"\\]|\\.)*)"')


@pytest.fixture(autouse=True)
def no_pydot(monkeypatch):
    """Tests run without pydot unless they install the stand-in."""
    monkeypatch.setitem(sys.modules, "pydot", None)


def chain_net():
    """a -> Relu -> b -> Sigmoid -> c; Add(a-path, c-path) -> d: Add's edge from Relu is implied."""
    net = core.Net("chain")
    net.Relu("a", "b")
    net.Sigmoid("b", "c")
    net.Add(["b", "c"], "d")
    return net


def edges(text):
    return set(re.findall(r"^\s*(\w+) -> (\w+)", text, re.MULTILINE))


def test_full_graph_has_ops_blobs_and_rankdir():
    g = net_drawer.GetPydotGraph(chain_net(), rankdir="LR")
    assert isinstance(g, net_drawer.DotGraph) and g.get_name() == "chain"
    text = g.to_string()
    assert "rankdir=LR;" in text
    labels = LABEL.findall(text)
    assert {"a", "b", "c", "d"} <= set(labels)
    assert ("op0", "b1") in edges(text) and ("b1", "op1") in edges(text)


def test_list_of_ops_and_name():
    net = chain_net()
    g = net_drawer.GetPydotGraph(net.Proto().op, "RNN")
    assert g.get_name() == "RNN" and 'digraph "RNN"' in g.to_string()
    assert net_drawer.GetPydotGraph(list(net.Proto().op)).get_name() == "unnamed"


def test_minimal_and_minimal_dependency():
    full = net_drawer.GetPydotGraphMinimal(chain_net(), "m").to_string()
    assert edges(full) == {("op0", "op1"), ("op0", "op2"), ("op1", "op2")}
    reduced = net_drawer.GetPydotGraphMinimal(chain_net(), "m", minimal_dependency=True).to_string()
    assert edges(reduced) == {("op0", "op1"), ("op1", "op2")}


def test_bad_inputs_are_clear():
    with pytest.raises(PyCaffe2Error, match="list of OperatorDefs"):
        net_drawer.GetPydotGraph(42)
    with pytest.raises(PyCaffe2Error, match="rankdir"):
        net_drawer.GetPydotGraph(chain_net(), rankdir="sideways")


def test_node_producers_style_nodes():
    g = net_drawer.GetPydotGraph(chain_net(), op_node_producer=net_drawer.GetOpNodeProducer(True, shape="box"),
                                 blob_node_producer=net_drawer.GetBlobNodeProducer(shape="octagon"))
    text = g.to_string()
    assert 'op0 [shape="box", label="Relu (op#0)\\nb"];' in text
    assert 'b0 [label="a", shape="octagon"];' in text
    with pytest.raises(PyCaffe2Error, match="node producer"):
        net_drawer.GetPydotGraph(chain_net(), op_node_producer=lambda op, i: 3)
    with pytest.raises(PyCaffe2Error, match="identifier"):
        net_drawer.GetPydotGraph(chain_net(), op_node_producer=lambda op, i: {"a b": 1})


def test_without_dot_create_is_empty_with_one_note(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    monkeypatch.setattr(net_drawer, "_noted", False)
    g = net_drawer.GetPydotGraph(chain_net())
    assert g.create_png() == b"" and g.create_svg() == b""
    assert capsys.readouterr().err.count("Graphviz") == 1
    with pytest.raises(PyCaffe2Error, match="not installed"):
        g.write_png(tmp_path / "x.png")
    g.write(tmp_path / "x.dot")
    assert (tmp_path / "x.dot").read_text() == g.to_string()
    assert g.create(format="raw") == g.to_string().encode()


def test_with_dot_runs_graphviz(monkeypatch, tmp_path):
    calls = []

    def fake_run(cmd, input, capture_output, check):
        calls.append((cmd, input))
        return types.SimpleNamespace(returncode=0, stdout=b"\x89PNG fake", stderr=b"")

    monkeypatch.setattr(graph.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graph.subprocess, "run", fake_run)
    g = net_drawer.GetPydotGraph(chain_net())
    assert g.create_png() == b"\x89PNG fake"
    assert calls[0][0] == ["/usr/bin/dot", "-Tpng"] and calls[0][1] == g.to_string().encode()
    g.write_svg(tmp_path / "x.svg")
    assert (tmp_path / "x.svg").read_bytes() == b"\x89PNG fake"
    with pytest.raises(PyCaffe2Error, match="unknown format"):
        g.create(format="exe")
    with pytest.raises(PyCaffe2Error, match="only Graphviz"):
        g.create(prog="/bin/sh", format="png")


def test_pydot_installed_gets_a_pydot_graph(monkeypatch):
    pydot = types.ModuleType("pydot")

    class Dot:
        def __init__(self, text):
            self.text = text

    class Node:
        def __init__(self, name, **attrs):
            self.name, self.attrs = name, attrs

        def get_name(self):
            return self.name

        def get_attributes(self):
            return self.attrs

    pydot.Node = Node
    pydot.graph_from_dot_data = lambda text: [Dot(text)]
    monkeypatch.setitem(sys.modules, "pydot", pydot)
    g = net_drawer.GetPydotGraph(chain_net(), op_node_producer=net_drawer.GetOpNodeProducer(False))
    assert isinstance(g, Dot) and 'label="Sigmoid (op#1)"' in g.text


def test_plan_graph_and_operator_map():
    plan = core.Plan("p")
    init, train = core.Net("init"), core.Net("train")
    init.ConstantFill([], "x", shape=[1], value=1.0)
    train.Relu("x", "y")
    plan.AddStep(core.execution_step("init_step", init))
    plan.AddStep(core.execution_step("train_step", train, num_iter=3))
    ops = net_drawer.GetOperatorMapForPlan(plan.Proto())
    assert set(ops) == {"p_init", "p_train"} and ops["p_train"][0].type == "Relu"
    text = net_drawer.GetPlanGraph(plan.Proto(), "p").to_string()
    labels = LABEL.findall(text)
    assert {"init_step", "train_step", "init", "train"} <= set(labels)
    assert "rankdir=TB;" in text
    bad = caffe2_pb2.PlanDef(name="bad")
    bad.execution_step.add(name="empty")
    with pytest.raises(PyCaffe2Error, match="neither nets nor substeps"):
        net_drawer.GetPlanGraph(bad)
