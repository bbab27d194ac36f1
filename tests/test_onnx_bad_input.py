"""Hostile ONNX input: every class of bad file, graph, opset, attribute, initializer and
fed input ends in a pycaffe2 error naming the file, node and what is wrong (never a
bare traceback, a hang or a huge allocation), and a rep that refused a run still runs.
tests/fuzz/test_fuzz_onnx.py throws mutated models at the same code."""
from __future__ import annotations

import gc
import os
import warnings
import weakref

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from pycaffe2.errors import ConversionError, NetFileError, PyCaffe2Error
from pycaffe2.onnx import backend, registry
from pycaffe2.onnx.checks import MAX_SUBGRAPH_DEPTH
from pycaffe2.onnx.registry import converter
from tests.registries import converters_restored

X = np.array([[1, -1, 2], [0, 3, -4]], np.float32)


@pytest.fixture(autouse=True)
def test_converters():
    """Converters for made-up op types, removed afterwards (the registry is global)."""
    with converters_restored():
        yield from _made_up_converters()


def _made_up_converters():

    @converter("HRelu")
    def _relu(node, ctx):
        ctx.op("Relu", node.inputs, node.outputs)

    @converter("HBuggy")
    def _buggy(node, ctx):
        return {}["mode"]  # a converter bug: a KeyError on an attribute it did not check

    @converter("HFill")
    def _fill(node, ctx):  # a value-sized op, folded at translation when its input is known
        ctx.op("ConstantFill", node.inputs, node.outputs, input_as_shape=1, value=1.0)

    @converter("HCheckedFill")
    def _checked_fill(node, ctx):  # a value-sized op whose kernel checks the blob cap
        ctx.op("UniqueUniformFill", node.inputs, node.outputs, input_as_shape=1, min=0, max=2**31 - 1)

    @converter("HIf")
    def _if(node, ctx):
        ctx.subgraph(node.attr("then_branch"))
        ctx.op("Copy", [node.input(1)], node.outputs)

    yield


def _model(nodes, inputs, outputs, initializers=(), opset=17, **kwargs):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kwargs)


def _info(name, elem=TensorProto.FLOAT, shape=(2, 3)):
    return helper.make_tensor_value_info(name, elem, shape)


def _relu_model(**kwargs):
    return _model([helper.make_node("HRelu", ["x"], ["y"], name="r")], [_info("x")], [_info("y")], **kwargs)


def _refused(model, match, error=ConversionError):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match) as caught:
            backend.prepare(model)
    return caught.value


# ---------------------------------------------------------------- files

@pytest.mark.parametrize("data, match", [
    (b"", "no graph"), (b"\x00\x01garbage\xff" * 7, "not an ONNX model"),
    (b"\x08\x07\x12", "not an ONNX model"), (b"name: 'x'\n", "not an ONNX model")])
def test_files_that_are_no_model_are_refused_naming_the_file(tmp_path, data, match):
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(NetFileError, match=match) as caught:
        backend.prepare(str(path))
    assert str(path) in str(caught.value)


def test_a_truncated_model_is_refused_at_every_cut(tmp_path):
    data = _relu_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    for end in range(0, len(data), 3):
        path.write_bytes(data[:end])
        with pytest.raises(NetFileError):
            backend.prepare(path)


def test_folders_fifos_missing_and_oversized_files_are_refused(tmp_path, monkeypatch):
    with pytest.raises(NetFileError, match="is a folder"):
        backend.prepare(str(tmp_path))
    fifo = tmp_path / "fifo.onnx"
    os.mkfifo(fifo)
    with pytest.raises(NetFileError, match="not a regular file"):
        backend.prepare(str(fifo))  # never opened: opening a FIFO would hang
    with pytest.raises(NetFileError, match="cannot read"):
        backend.prepare(str(tmp_path / "missing.onnx"))
    big = tmp_path / "big.onnx"
    big.write_bytes(_relu_model().SerializeToString())
    monkeypatch.setenv("PYCAFFE2_MAX_FILE_BYTES", "16")
    with pytest.raises(NetFileError, match="over the 16-byte cap"):
        backend.prepare(str(big))


def _external(name, location):
    tensor = numpy_helper.from_array(np.ones(3, np.float32), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


@pytest.mark.parametrize("location", ["/etc/passwd", "../../secret.bin", "weights.bin"])
def test_external_data_is_never_read_wherever_it_hides(tmp_path, location, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(np.ones(3, np.float32).tobytes())  # there, and still not read
    as_initializer = _model([helper.make_node("HRelu", ["w"], ["y"])], [], [_info("y", shape=[3])],
                            [_external("w", location)])
    in_constant = _model([helper.make_node("Constant", [], ["y"], value=_external("v", location))],
                         [], [_info("y", shape=[3])])
    branch = helper.make_graph([helper.make_node("Constant", [], ["z"], value=_external("v", location))],
                               "branch", [], [_info("z", shape=[3])])
    in_subgraph = _model([helper.make_node("HIf", ["c", "x"], ["y"], then_branch=branch)],
                         [_info("c", TensorProto.BOOL, []), _info("x")], [_info("y")])
    for model in (as_initializer, in_constant, in_subgraph):
        error = _refused(model, "external files")
        assert repr(location) in str(error)
        path = tmp_path / "m.onnx"
        path.write_bytes(model.SerializeToString())
        with pytest.raises(NetFileError, match="external files"):
            backend.prepare(str(path))


# ---------------------------------------------------------------- graph structure

def _rs(inputs, outputs, name=""):
    return helper.make_node("ReduceSum", inputs, outputs, name=name, keepdims=0)


@pytest.mark.parametrize("nodes, inputs, outputs, match", [
    ([_rs(["q"], ["y"], "a")], ["x"], ["y"], r"op 0 \(ReduceSum 'a'\).*reads 'q', which no node writes"),
    ([_rs(["x"], ["y"]), _rs(["x"], ["y"])], ["x"], ["y"], r"op 1 .*writes 'y', which is already written by node 0"),
    ([_rs(["z"], ["y"]), _rs(["y"], ["z"])], ["x"], ["y"], "not in topological order, or form a cycle"),
    ([_rs(["y"], ["y"])], ["x"], ["y"], "reads 'y', which node 0 writes later"),
    ([_rs(["x"], ["x"])], ["x"], ["x"], "writes 'x', which is already a graph input"),
    ([_rs(["x"], ["y"])], ["x", "x"], ["y"], "graph input 'x' is declared twice"),
    ([_rs(["x"], ["y"])], ["x"], ["y", "y"], "graph output 'y' is declared twice"),
    ([_rs(["x"], ["y"])], ["x", ""], ["y"], "a graph input has an empty name"),
    ([_rs(["x"], ["y"])], ["x"], ["y", ""], "a graph output has an empty name"),
    ([_rs(["x"], ["y"])], ["x"], ["y", "nobody"], "graph outputs 'nobody' are made by no node"),
    ([helper.make_node("", ["x"], ["y"])], ["x"], ["y"], "a node has no op type"),
])
def test_graphs_that_break_single_assignment_are_refused_naming_node_and_value(nodes, inputs, outputs, match):
    model = _model(nodes, [_info(name) for name in inputs], [_info(name, shape=None) for name in outputs])
    _refused(model, match)


def test_duplicate_initializers_and_attributes_are_refused():
    weights = numpy_helper.from_array(np.ones(3, np.float32), "w")
    _refused(_model([_rs(["x"], ["y"])], [_info("x")], [_info("y", shape=None)], [weights, weights]),
             "initializer 'w' is declared twice")
    node = _rs(["x"], ["y"])
    node.attribute.add().CopyFrom(helper.make_attribute("keepdims", 1))
    _refused(_model([node], [_info("x")], [_info("y", shape=None)]), "attribute 'keepdims' is given twice")


def test_a_subgraph_reading_a_value_made_later_in_the_outer_graph_is_refused():
    branch = helper.make_graph([helper.make_node("HRelu", ["late"], ["z"])], "b", [], [_info("z")])
    model = _model([helper.make_node("HIf", ["c", "x"], ["y"], then_branch=branch),
                    helper.make_node("HRelu", ["x"], ["late"])],
                   [_info("c", TensorProto.BOOL, []), _info("x")], [_info("y"), _info("late")])
    _refused(model, r"subgraph node 0 \(HIf\) then_branch: .*reads 'late', which no node writes")


@pytest.mark.parametrize("name", ["x\ny", "a\x00b", "é ü/..\\", "n" * 20000, "__onnx_tmp_1"])
def test_odd_names_translate_and_run_and_errors_quote_them(name):
    model = _model([helper.make_node("HRelu", [name], ["y"], name=name)], [_info(name)], [_info("y")])
    np.testing.assert_array_equal(backend.prepare(model).run([X]).y, np.maximum(X, 0))
    error = _refused(_model([helper.make_node("HRelu", [name], ["y"], name=name)], [_info("x")], [_info("y")]),
                     "which no node writes")
    assert "\n" not in str(error) and "\x00" not in str(error)  # repr'd: one readable line


def _nested(depth, leaf_op="HRelu"):
    """An HIf whose then_branch holds an HIf ... `depth` graphs deep, built in place (a
    deep copy per level would take quadratic time)."""
    model = _model([], [_info("c", TensorProto.BOOL, []), _info("x")], [_info("y")])
    graph = model.graph
    for level in range(depth):
        node = graph.node.add(op_type="HIf", input=["c", "x"], output=["z" if level else "y"])
        attribute = node.attribute.add(name="then_branch", type=AttributeProto.GRAPH)
        graph = attribute.g
        graph.name = f"level{level}"
        graph.output.add(name="z")
    graph.node.add(op_type=leaf_op, input=["x"], output=["z"])
    return model


def test_subgraphs_nested_deeply_end_in_a_depth_error_not_a_recursion_error(tmp_path):
    np.testing.assert_array_equal(backend.prepare(_nested(3)).run([np.array(True), X]).y, X)
    _refused(_nested(MAX_SUBGRAPH_DEPTH + 1), f"nested more than {MAX_SUBGRAPH_DEPTH} deep")
    _refused(_nested(10_000), f"nested more than {MAX_SUBGRAPH_DEPTH} deep")
    path = tmp_path / "deep.onnx"
    path.write_bytes(_nested(10_000).SerializeToString())
    with pytest.raises(NetFileError, match="depth limit"):  # protobuf's parser stops first
        backend.prepare(str(path))
    assert not backend.is_compatible(_nested(10_000, leaf_op="NoSuchOp"))


# ---------------------------------------------------------------- opsets

def test_opsets_and_domains_that_make_no_sense_are_refused():
    graph = helper.make_graph([_rs(["x"], ["y"])], "g", [_info("x")], [_info("y", shape=None)])
    _refused(helper.make_model(graph, opset_imports=[helper.make_opsetid("com.other", 1)]),
             "imports no opset of the default ONNX domain")
    _refused(helper.make_model(graph, opset_imports=[]), "imports no opset")
    for opset in (0, -1, -2**63):
        _refused(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), "is not an ONNX opset")
    _refused(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx", 17)]),
             "at several opsets")
    _refused(_model([helper.make_node("Foo", ["x"], ["y"], domain="com.evil")], [_info("x")], [_info("y")]),
             "no pycaffe2 converter for ONNX op.*'com.evil.Foo'")
    _refused(_model([helper.make_node("Foo\nBar", ["x"], ["y"])], [_info("x")], [_info("y")]), r"'Foo\\nBar'")


def test_a_huge_opset_or_odd_ir_version_translates_as_the_newest_known():
    for model in (_relu_model(opset=2**62), _relu_model(ir_version=-5), _relu_model(ir_version=2**62)):
        with pytest.warns(UserWarning) if model.opset_import[0].version > registry.MAX_OPSET else warnings.catch_warnings():
            rep = backend.prepare(model)
        np.testing.assert_array_equal(rep.run([X]).y, np.maximum(X, 0))


# ---------------------------------------------------------------- attributes

def test_a_crashing_converter_becomes_a_conversion_error_naming_the_node():
    model = _model([helper.make_node("HBuggy", ["x"], ["y"], name="bug")], [_info("x")], [_info("y")])
    _refused(model, r"op 0 \(HBuggy 'bug'\): the converter for HBuggy failed on this node: KeyError: 'mode'")


@pytest.mark.parametrize("node, match", [
    (helper.make_node("ReduceSum", ["x"], ["y"], keepdims=[1, 2]), "attribute 'keepdims' is INTS, ReduceSum takes INT"),
    (helper.make_node("ReduceSum", ["x"], ["y"], keepdims="yes"), "attribute 'keepdims' is STRING, ReduceSum takes INT"),
    (helper.make_node("Gemm", ["x", "x"], ["y"], transA=[1]), "attribute 'transA' is INTS, Gemm takes INT"),
    (helper.make_node("ArgMax", ["x"], ["y"], axis=1.5), "attribute 'axis' is FLOAT, ArgMax takes INT"),
    (helper.make_node("Einsum", ["x"], ["y"]), "the equation attribute is missing"),  # the converter's words
    (helper.make_node("HBuggy", ["x"], ["y"]), "HBuggy failed on this node: KeyError"),
    (helper.make_node("Loop", ["", "x"], ["y"]), "misses its required attribute 'body'"),  # instead of its crash
    (helper.make_node("Gemm", ["x"], ["y"]), r"has 1 inputs; Gemm \(opset 13\) takes 2 to 3"),
    (helper.make_node("ReduceSum", ["x"], ["y", "z"]), "has 2 outputs; ReduceSum .* takes 1"),
    (helper.make_node("Einsum", [], ["y"], equation="->"), "has 0 inputs; Einsum .* takes at least 1"),
    (helper.make_node("Constant", [], ["y"]), "no value pycaffe2 can hold"),
])
def test_attributes_of_the_wrong_type_or_missing_are_refused_naming_the_node(node, match):
    _refused(_model([node], [_info("x")], [_info("y", shape=None)]), r"op 0 \(\w+\): .*" + match)


def test_attributes_that_cannot_be_decoded_are_refused():
    undefined = _rs(["x"], ["y"])
    undefined.attribute.add(name="odd", type=AttributeProto.UNDEFINED, i=3)
    _refused(_model([undefined], [_info("x")], [_info("y", shape=None)]), "attribute 'odd' cannot be decoded")
    damaged = numpy_helper.from_array(np.ones(3, np.float32), "v")
    damaged.raw_data = b"\x00" * 5
    _refused(_model([helper.make_node("Constant", [], ["y"], value=damaged)], [], [_info("y")]),
             r"op 0 \(Constant\): attribute 'value' cannot be read")
    damaged.data_type = 12345
    _refused(_model([helper.make_node("Constant", [], ["y"], value=damaged)], [], [_info("y")]),
             "data_type 12345, not an ONNX element type")


_FILLS = ["HCheckedFill", "HFill"]


@pytest.mark.parametrize("op_type", _FILLS)
@pytest.mark.parametrize("shape", [[2**40, 2**40], [2**62, 4]])  # refused by NumPy at once if unchecked
def test_absurd_sizes_are_refused_by_the_blob_cap_folded_or_at_run_time(op_type, shape, monkeypatch):
    monkeypatch.setenv("PYCAFFE2_MAX_BLOB_BYTES", str(1 << 20))
    folded = numpy_helper.from_array(np.array(shape, np.int64), "shape")
    _refused(_model([helper.make_node(op_type, ["shape"], ["y"])], [], [_info("y", shape=None)], [folded]),
             rf"op 0 \({op_type}\): fails on its constant inputs: .*over the 1,048,576-byte cap")
    rep = backend.prepare(_model([helper.make_node(op_type, ["s"], ["y"])], [_info("s", TensorProto.INT64, [2])],
                                 [_info("y", shape=None)]))
    with pytest.raises(PyCaffe2Error, match="over the 1,048,576-byte cap"):
        rep.run([np.array(shape, np.int64)])
    assert rep.run([np.array([2, 2], np.int64)]).y.shape == (2, 2)


# ---------------------------------------------------------------- initializers

def _tensor(**changes):
    tensor = numpy_helper.from_array(np.ones(3, np.float32), "w")
    for key, value in changes.items():
        if key == "dims":
            del tensor.dims[:]
            tensor.dims.extend(value)
        else:
            setattr(tensor, key, value)
    return tensor


@pytest.mark.parametrize("tensor, match", [
    (_tensor(raw_data=b"\x00" * 5), r"initializer 'w' cannot be read \(dims \[3\], data_type FLOAT\)"),
    (_tensor(dims=[2**40, 2**40]), "initializer 'w' cannot be read"),
    (_tensor(dims=[2**62, 2**62, 2**62]), "initializer 'w' cannot be read"),
    (_tensor(dims=[-1, -3]), r"initializer 'w' has negative dims \[-1, -3\]"),
    (_tensor(data_type=999), "initializer 'w' has data_type 999, not an ONNX element type"),
    (_tensor(data_type=TensorProto.UNDEFINED), "data_type 0, not an ONNX element type"),
    (_tensor(data_type=TensorProto.INT64), "initializer 'w' cannot be read"),
    (helper.make_tensor("w", TensorProto.STRING, [1], [b"a"]), "initializer 'w': a constant of dtype object"),
    (helper.make_tensor("w", TensorProto.BFLOAT16, [1], [1.0]), "initializer 'w': a constant of dtype"),
])
def test_damaged_initializers_are_refused_naming_them(tensor, match):
    _refused(_model([_rs(["x"], ["y"])], [_info("x")], [_info("y", shape=None)], [tensor]), match)


def test_segments_and_sparse_initializers_are_refused():
    segmented = _tensor()
    segmented.segment.begin, segmented.segment.end = 0, 3
    _refused(_model([_rs(["x"], ["y"])], [_info("x")], [_info("y", shape=None)], [segmented]), "segment")
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(1, np.float32), "v"),
                                       numpy_helper.from_array(np.zeros(1, np.int64), "i"), [3])
    graph = helper.make_graph([_rs(["x"], ["y"])], "g", [_info("x")], [_info("y", shape=None)],
                              sparse_initializer=[sparse])
    _refused(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), "sparse initializers")


# ---------------------------------------------------------------- fed inputs

@pytest.mark.parametrize("inputs, match", [
    ([X.astype(np.float64)], "input 'x' is float64, the model declares float32"),
    ([X[0]], r"input 'x' has shape \[3\], the model declares \[2, 3\]"),
    ([np.ones((4, 3), np.float32)], r"has shape \[4, 3\], the model declares \[2, 3\]"),
    ([], r"inputs \['x'\] are not fed"),
    ([X, X], "2 inputs fed, the model takes 1"),
    ({"x": X, "zz": X}, r"no inputs \['zz'\]"),
    ({1: X, b"x": X}, "no inputs"),
    (["abc"], "is <U3, the model declares float32"),
    ([object()], "is object"),
    ([None], "is object"),
    ([[[1.0, 2.0], [3.0]]], "input 'x' is not an array"),
    (5, "not int"),
    ((a for a in [X]), "not generator"),
])
def test_bad_feeds_are_refused_and_the_rep_still_runs(inputs, match):
    rep = backend.prepare(_relu_model())
    np.testing.assert_array_equal(rep.run([X]).y, np.maximum(X, 0))
    with pytest.raises(PyCaffe2Error, match=match):
        rep.run(inputs)
    np.testing.assert_array_equal(rep.run([-X]).y, np.maximum(-X, 0))


def test_undeclared_dims_accept_any_size_but_not_another_rank():
    model = _model([helper.make_node("HRelu", ["x"], ["y"])], [_info("x", shape=["n", None])], [_info("y", shape=None)])
    rep = backend.prepare(model)
    for shape in ((1, 5), (7, 0)):
        assert rep.run([np.ones(shape, np.float32)]).y.shape == shape
    with pytest.raises(PyCaffe2Error, match="the model declares"):
        rep.run([np.ones(3, np.float32)])


def _traced_model():
    return _model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
                  [_info("x"), _info("axes", TensorProto.INT64, [1])], [_info("y", shape=None)])


def test_a_failed_traced_translation_or_run_leaves_the_rep_as_it_was():
    rep = backend.prepare(_traced_model())
    with pytest.raises(ConversionError, match="out of range"):  # the very first run fails
        rep.run([X, np.array([5], np.int64)])
    np.testing.assert_array_equal(rep.run([X, np.array([1], np.int64)]).y, X.sum(axis=1))
    before = rep._translation
    with pytest.raises(ConversionError, match="out of range"):
        rep.run([X, np.array([-9], np.int64)])
    assert rep._translation is before
    np.testing.assert_array_equal(rep.run([X * 2, np.array([1], np.int64)]).y, (X * 2).sum(axis=1))
    np.testing.assert_array_equal(rep.run([X, np.array([0], np.int64)]).y, X.sum(axis=0))


def test_new_baked_values_each_run_keep_only_the_latest_translation():
    rep = backend.prepare(_traced_model())
    rep.run([X, np.array([0], np.int64)])
    first = weakref.ref(rep._translation.workspace)
    for step in range(40):
        axis = step % 2
        np.testing.assert_array_equal(rep.run([X + step, np.array([axis], np.int64)]).y, (X + step).sum(axis=axis))
    gc.collect()
    assert first() is None  # the old translations (and their workspaces) are gone
    assert len(rep._translation.workspace.nets) == 1


def test_prepare_refuses_what_is_no_model():
    with pytest.raises(ConversionError, match="not int"):
        backend.prepare(3)
    with pytest.raises(ConversionError, match="not GraphProto"):
        backend.prepare(_relu_model().graph)
    with pytest.raises(ConversionError, match="not an ONNX model"):
        backend.prepare(b"\xff\xff\xff")
    np.testing.assert_array_equal(backend.prepare(_relu_model().SerializeToString()).run([X]).y, np.maximum(X, 0))


# ---------------------------------------------------------------- real control flow

def _real_if(depth):
    """If(c) nested `depth` deep in both branches: then gives relu(x), else -relu(x) ... ."""
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t0"])], "t", [], [_info("t0")])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e0"])], "e", [], [_info("e0")])
    for level in range(1, depth):
        node = helper.make_node("If", ["c"], [f"o{level}"], then_branch=then, else_branch=other)
        then = helper.make_graph([node], f"t{level}", [], [_info(f"o{level}")])
        other = helper.make_graph([helper.make_node("Neg", ["x"], [f"e{level}"])], f"e{level}", [], [_info(f"e{level}")])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    return _model([node], [_info("c", TensorProto.BOOL, []), _info("x")], [_info("y")])


def test_real_ifs_nested_past_the_limit_are_refused_and_shallow_ones_run():
    rep = backend.prepare(_real_if(3))
    np.testing.assert_array_equal(rep.run([np.array(True), X]).y, np.maximum(X, 0))
    np.testing.assert_array_equal(rep.run([np.array(False), X]).y, -X)
    _refused(_real_if(MAX_SUBGRAPH_DEPTH + 1), f"nested more than {MAX_SUBGRAPH_DEPTH} deep")


def test_a_loop_of_constant_trip_count_is_not_run_at_prepare():
    body = helper.make_graph([helper.make_node("Not", ["c_in"], ["n"]), helper.make_node("Not", ["n"], ["c_out"]),
                              helper.make_node("Relu", ["v_in"], ["v_out"])], "body",
                             [_info("i", TensorProto.INT64, []), _info("c_in", TensorProto.BOOL, []), _info("v_in", shape=[])],
                             [_info("c_out", TensorProto.BOOL, []), _info("v_out", shape=[])])
    constants = [numpy_helper.from_array(np.array(10**12, np.int64), "m"), numpy_helper.from_array(np.array(True), "c"),
                 numpy_helper.from_array(np.array(1.0, np.float32), "v")]
    model = _model([helper.make_node("Loop", ["m", "c", "v"], ["y"], body=body)], [], [_info("y", shape=[])], constants)
    rep = backend.prepare(model)  # folding would run 10**12 iterations here
    assert any(op.type for op in rep.predict_net.op)


def test_negative_declared_dims_are_refused_before_onnx_shape_inference_sees_them():
    # ONNX's C++ shape inference of this Slice aborts the whole process (std::clamp's assertion)
    constants = [numpy_helper.from_array(np.array([0], np.int64), name) for name in ("st", "en", "ax")]
    model = _model([helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])],
                   [_info("x", shape=[2, -2**63])], [_info("y", shape=None)], constants)
    _refused(model, r"graph input 'x' declares negative dims \[-9223372036854775808\]")
    sequence = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, [-1])
    graph = helper.make_graph([helper.make_node("HRelu", ["x"], ["y"])], "g", [_info("x")], [_info("y")],
                              value_info=[sequence])
    _refused(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
             "value_info 's' declares negative dims")
