"""The ONNX translation core: static and traced translation, constant folding, the
rep's cache of traced nets, errors naming the node, model files."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

from pycaffe2.errors import ConversionError, NetFileError, PyCaffe2Error
from pycaffe2.onnx import backend
from pycaffe2.onnx.registry import MAX_OPSET, Unsupported, converter
from tests.registries import converters_restored

SEEN = []  # values the test converters saw through ctx.value


@pytest.fixture(autouse=True)
def test_converters():
    """Converters for made-up op types, removed afterwards (the registry is global)."""
    with converters_restored():
        yield from _made_up_converters()


def _made_up_converters():

    @converter("TRelu")
    def _relu(node, ctx):
        ctx.op("Relu", node.inputs, node.outputs)

    @converter("TUnsqueeze")
    def _unsqueeze(node, ctx):
        axes = ctx.require(node.input(1), "axes")
        SEEN.append(axes.tolist())
        ctx.op("ExpandDims", [node.input(0)], node.outputs, dims=[int(a) for a in axes])

    @converter("TPicky")
    def _picky(node, ctx):
        raise Unsupported(f"mode '{node.attr('mode')}' (there is only 'plain')")

    @converter("TAddConst")
    def _add_const(node, ctx):
        ctx.op("Add", [node.input(0), ctx.constant(np.float32(node.attr("c", 1.0)))], node.outputs)

    SEEN.clear()
    yield


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _info(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


X = np.array([[1, -1, 2], [0, 3, -4]], np.float32)


def test_static_model_has_nets_before_it_runs_and_folds_constants():
    weights = numpy_helper.from_array(np.array([-1, 2], np.int64), "axes_init")
    model = _model([helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array([0], np.int64))),
                    helper.make_node("TRelu", ["x"], ["y"]),
                    helper.make_node("TUnsqueeze", ["y", "c"], ["z"])],
                   [_info("x", shape=[2, 3])], [_info("z")], [weights])
    rep = backend.prepare(model)
    assert [op.type for op in rep.predict_net.op] == ["Relu", "ExpandDims"]
    assert sorted(op.output[0] for op in rep.init_net.op) == ["axes_init", "c"]
    for _ in range(2):
        np.testing.assert_array_equal(rep.run([X]).z, np.maximum(X, 0)[None])
    assert SEEN == [[0]]  # translated once, statically


def test_values_fed_as_inputs_are_translated_at_the_first_run_and_again_only_when_they_change():
    model = _model([helper.make_node("TUnsqueeze", ["x", "axes"], ["z"])],
                   [_info("x", shape=[2, 3]), _info("axes", TensorProto.INT64, [1])], [_info("z")])
    rep = backend.prepare(model)
    with pytest.raises(ConversionError, match="run it once first"):
        rep.predict_net  # noqa: B018
    assert rep.run([X, np.array([0])]).z.shape == (1, 2, 3)
    first = rep.predict_net
    assert rep.run({"x": X + 1, "axes": np.array([0])}).z.shape == (1, 2, 3)
    assert rep.predict_net is first  # new data, same axes: the same net
    assert rep.run([X, np.array([2])]).z.shape == (2, 3, 1)
    assert SEEN == [[0], [2]]


def test_every_op_without_a_converter_is_named_at_once():
    model = _model([helper.make_node("NoSuchOp", ["x"], ["y"]), helper.make_node("AlsoMissing", ["y"], ["z"]),
                    helper.make_node("TRelu", ["z"], ["w"])], [_info("x", shape=[1])], [_info("w")])
    with pytest.raises(ConversionError, match="AlsoMissing, NoSuchOp at opset 17"):
        backend.prepare(model)
    assert not backend.is_compatible(model)


def test_an_unsupported_node_is_named_with_its_index_type_and_name():
    model = _model([helper.make_node("TRelu", ["x"], ["y"]),
                    helper.make_node("TPicky", ["y"], ["z"], name="picky1", mode="wrap")],
                   [_info("x", shape=[1])], [_info("z")])
    with pytest.raises(ConversionError, match=r"op 1 \(TPicky 'picky1'\): mode 'wrap' \(there is only 'plain'\)"):
        backend.prepare(model)


def test_other_domains_and_missing_opsets_are_refused():
    node = helper.make_node("TRelu", ["x"], ["y"], domain="ai.onnx.ml")
    model = _model([node], [_info("x", shape=[1])], [_info("y")])
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    with pytest.raises(ConversionError, match="ai.onnx.ml.TRelu"):
        backend.prepare(model)
    bare = _model([helper.make_node("TRelu", ["x"], ["y"])], [_info("x", shape=[1])], [_info("y")])
    del bare.opset_import[:]
    with pytest.raises(ConversionError, match="no opset of the default ONNX domain"):
        backend.prepare(bare)


def test_a_newer_opset_warns_and_translates_as_the_newest_known():
    model = _model([helper.make_node("TRelu", ["x"], ["y"])], [_info("x", shape=[2, 3])], [_info("y")],
                   opset=MAX_OPSET + 5)
    with pytest.warns(UserWarning, match=f"translating it as opset {MAX_OPSET}"):
        rep = backend.prepare(model)
    np.testing.assert_array_equal(rep.run([X])[0], np.maximum(X, 0))


def test_constants_keep_their_dtype_and_an_unheld_dtype_is_named():
    model = _model([helper.make_node("TAddConst", ["x"], ["y"], c=2.5)], [_info("x", shape=[2, 3])], [_info("y")])
    np.testing.assert_array_equal(backend.run_model(model, [X])[0], X + 2.5)
    odd = numpy_helper.from_array(np.array([1, 2], np.uint32), "u")
    model = _model([helper.make_node("TRelu", ["x"], ["y"])], [_info("x", shape=[1])], [_info("y")], [odd])
    with pytest.raises(ConversionError, match="initializer 'u': a constant of dtype uint32"):
        backend.prepare(model)


def test_fresh_names_never_take_a_name_of_the_model():
    taken = "__onnx_const_1"
    model = _model([helper.make_node("TAddConst", ["x"], [taken], c=1.0),
                    helper.make_node("TAddConst", [taken], ["y"], c=1.0)], [_info("x", shape=[2, 3])], [_info("y")])
    rep = backend.prepare(model)
    np.testing.assert_array_equal(rep.run([X]).y, X + 2)
    assert len({op.output[0] for op in rep.init_net.op} | {taken}) == 3


def test_feeding_wrongly_says_what_the_model_takes():
    rep = backend.prepare(_model([helper.make_node("TRelu", ["x"], ["y"])], [_info("x", shape=[2, 3])],
                                 [_info("y")]))
    with pytest.raises(PyCaffe2Error, match=r"2 inputs fed, the model takes 1: \['x'\]"):
        rep.run([X, X])
    with pytest.raises(PyCaffe2Error, match=r"no inputs \['q'\]"):
        rep.run({"q": X})
    with pytest.raises(PyCaffe2Error, match=r"inputs \['x'\] are not fed"):
        rep.run([])


def test_run_node_and_devices():
    out = backend.run_node(helper.make_node("TRelu", ["a"], ["b"]), [X])
    np.testing.assert_array_equal(out[0], np.maximum(X, 0))
    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    with pytest.raises(ConversionError, match="device 'CUDA' is not supported"):
        backend.prepare(_model([], [_info("x", shape=[1])], [_info("x")]), "CUDA")


def test_model_files_are_read_under_the_rules(tmp_path):
    model = _model([helper.make_node("TRelu", ["x"], ["y"])], [_info("x", shape=[2, 3])], [_info("y")])
    good = tmp_path / "m.onnx"
    good.write_bytes(model.SerializeToString())
    np.testing.assert_array_equal(backend.prepare(str(good)).run([X]).y, np.maximum(X, 0))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff not a model")
    with pytest.raises(NetFileError, match="bad.onnx: not an ONNX model"):
        backend.prepare(str(bad))
    with pytest.raises(NetFileError, match="not a regular file|is a folder|directory"):
        backend.load_model(tmp_path)
    weights = numpy_helper.from_array(np.ones(3, np.float32), "w")
    weights.data_location = TensorProto.EXTERNAL
    weights.ClearField("raw_data")
    weights.external_data.add(key="location", value="../../etc/passwd")
    external = _model([helper.make_node("TRelu", ["w"], ["y"])], [], [_info("y")], [weights])
    path = tmp_path / "external.onnx"
    path.write_bytes(external.SerializeToString())
    with pytest.raises(NetFileError, match="external files"):
        backend.load_model(path)


def test_subgraphs_translate_to_nets_that_name_the_outer_blobs_they_read():
    from pycaffe2.onnx.context import Context
    from pycaffe2.onnx.translate import _State
    body = helper.make_graph([helper.make_node("TRelu", ["outer"], ["inner"])], "body", [], [_info("inner")])
    state = _State(17, None, {"outer", "inner"}, {})
    net, reads = Context(state).subgraph(body, name="branch")
    assert [op.type for op in net.op] == ["Relu"] and list(net.external_output) == ["inner"]
    assert reads == ["outer"] and list(net.external_input) == ["outer"]
    assert state.ops == []  # the body's ops stay in its net


def test_no_warning_for_a_plain_model():
    model = _model([helper.make_node("TRelu", ["x"], ["y"])], [_info("x", shape=[2, 3])], [_info("y")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.prepare(model).run([X])


def test_caffe2s_class_shaped_backend_gives_the_net_pair():
    model = _model([helper.make_node("TRelu", ["x"], ["y"])], [_info("x", shape=[2, 3])], [_info("y")])
    init_net, predict_net = backend.Caffe2Backend.onnx_graph_to_caffe2_net(model)
    assert [op.type for op in predict_net.op] == ["Relu"] and len(init_net.op) == 0
    _, from_graph = backend.Caffe2Backend.onnx_graph_to_caffe2_net(model.graph, opset_version=13)
    assert from_graph.op[0].type == "Relu"
    np.testing.assert_array_equal(backend.Caffe2Backend.run_model(model, [X])[0], np.maximum(X, 0))
