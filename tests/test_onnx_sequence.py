"""ONNX's sequence ops and control flow through pycaffe2.onnx.backend, beyond ONNX's own
node cases: omitted optional inputs and outputs, layouts, sequence_lens, outer names read
by sub-graphs, folding, and the errors. onnx's ReferenceEvaluator is the reference."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from pycaffe2.errors import ConversionError
from pycaffe2.onnx import backend
from pycaffe2.onnx.registry import lookup

F = TensorProto.FLOAT


def make_model(nodes, inputs, outputs, opset=21, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def value(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def check(model, feeds, rtol=1e-5, atol=1e-6, runtime=False):
    """pycaffe2's outputs against ONNX's ReferenceEvaluator (or onnxruntime's, `runtime`)."""
    got = backend.prepare(model).run(feeds)
    if runtime:
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)
    else:
        expected = ReferenceEvaluator(model).run(None, feeds)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    return got


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("op, gates", [("RNN", 1), ("GRU", 3), ("LSTM", 4)])
def test_recurrent_with_a_gap_in_the_inputs_and_an_omitted_output(op, gates):
    """B and sequence_lens omitted before initial_h; Y omitted, Y_h wanted."""
    h, i, n, t = 3, 2, 2, 4
    w = helper.make_tensor("W", F, [2, gates * h, i], RNG.standard_normal(2 * gates * h * i).tolist())
    r = helper.make_tensor("R", F, [2, gates * h, h], RNG.standard_normal(2 * gates * h * h).tolist())
    node = helper.make_node(op, ["X", "W", "R", "", "", "H0"], ["", "Y_h"], hidden_size=h, direction="bidirectional")
    model = make_model([node], [value("X", shape=[t, n, i]), value("H0", shape=[2, n, h])],
                       [value("Y_h", shape=[2, n, h])], initializers=[w, r])
    feeds = {"X": RNG.standard_normal((t, n, i)).astype(np.float32),
             "H0": RNG.standard_normal((2, n, h)).astype(np.float32)}
    check(model, feeds)


def test_lstm_batch_first_with_sequence_lens_and_every_output():
    h, i, n, t = 3, 2, 3, 5
    inputs = [value("X", shape=[n, t, i]), value("W", shape=[1, 4 * h, i]), value("R", shape=[1, 4 * h, h]),
              value("B", shape=[1, 8 * h]), value("L", TensorProto.INT32, [n])]
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "L"], ["Y", "Y_h", "Y_c"], hidden_size=h, layout=1,
                            direction="reverse")
    model = make_model([node], inputs, [value("Y"), value("Y_h"), value("Y_c")])
    feeds = {"X": RNG.standard_normal((n, t, i)).astype(np.float32),
             "W": RNG.standard_normal((1, 4 * h, i)).astype(np.float32),
             "R": RNG.standard_normal((1, 4 * h, h)).astype(np.float32),
             "B": RNG.standard_normal((1, 8 * h)).astype(np.float32), "L": np.array([5, 2, 4], np.int32)}
    got = backend.prepare(model).run(feeds)
    assert [g.shape for g in got] == [(n, t, 1, h), (n, 1, h), (n, 1, h)]
    assert not got[0][1, 2:].any()  # past its length a row's Y is zero


def test_recurrent_errors():
    node = helper.make_node("RNN", ["X", "W", "R"], ["Y"], hidden_size=2, activations=["Gelu"])
    model = make_model([node], [value("X"), value("W"), value("R")], [value("Y")])
    with pytest.raises(ConversionError, match="activation 'Gelu'"):
        backend.prepare(model)
    node = helper.make_node("TfIdfVectorizer", ["X"], ["Y"], mode="TF", min_gram_length=1, max_gram_length=1,
                            ngram_counts=[0], ngram_indexes=[0], pool_strings=["a"])
    with pytest.raises(ConversionError, match="pool_strings"):
        backend.prepare(make_model([node], [value("X", TensorProto.STRING)], [value("Y")]))


def test_nms_with_an_omitted_iou_threshold():
    boxes = RNG.uniform(0, 1, (1, 6, 4)).astype(np.float32)
    boxes[..., 2:] += boxes[..., :2]
    scores = RNG.uniform(0, 1, (1, 2, 6)).astype(np.float32)
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "", "score"], ["sel"])
    limit = helper.make_tensor("max", TensorProto.INT64, [1], [3])
    score = helper.make_tensor("score", F, [1], [0.3])
    model = make_model([node], [value("boxes"), value("scores")], [value("sel", TensorProto.INT64)],
                       initializers=[limit, score])
    check(model, {"boxes": boxes, "scores": scores}, runtime=True)  # the evaluator needs every threshold


def test_windows_dft_and_mel_fold_to_constants():
    nodes = [helper.make_node("Constant", [], ["n"], value=helper.make_tensor("n", TensorProto.INT64, [], [8])),
             helper.make_node("HannWindow", ["n"], ["w"], output_datatype=TensorProto.DOUBLE)]
    model = make_model(nodes, [], [value("w", TensorProto.DOUBLE)])
    rep = backend.prepare(model)
    assert list(rep.predict_net.op) == [] and [op.output[0] for op in rep.init_net.op] == ["n", "w"]
    np.testing.assert_allclose(rep.run({})[0], ReferenceEvaluator(model).run(None, {})[0])
    node = helper.make_node("DFT", ["x", "len", "axis"], ["y"], inverse=1)
    inputs = [value("x", shape=[2, 6, 2]), value("len", TensorProto.INT64, []), value("axis", TensorProto.INT64, [])]
    model = make_model([node], inputs, [value("y")], opset=20)
    check(model, {"x": RNG.standard_normal((2, 6, 2)).astype(np.float32), "len": np.array(8, np.int64),
                  "axis": np.array(-2, np.int64)}, atol=1e-5)


# -- control flow -------------------------------------------------------------------------------

needs_add = pytest.mark.skipif(lookup("Add", 21) is None or lookup("Identity", 21) is None,
                               reason="needs the Add and Identity converters")


def branch(name, nodes, outputs):
    return helper.make_graph(nodes, name, [], outputs)


@needs_add
@pytest.mark.parametrize("cond", [True, False])
def test_if_reads_outer_names(cond):
    then = branch("then", [helper.make_node("Add", ["x", "y"], ["t"])], [value("t")])
    other = branch("else", [helper.make_node("Identity", ["y"], ["e"])], [value("e")])
    node = helper.make_node("If", ["c"], ["out"], then_branch=then, else_branch=other)
    model = make_model([node], [value("c", TensorProto.BOOL, []), value("x", shape=[3]), value("y", shape=[3])],
                       [value("out")])
    feeds = {"c": np.array(cond), "x": RNG.standard_normal(3).astype(np.float32),
             "y": RNG.standard_normal(3).astype(np.float32)}
    rep = backend.prepare(model)
    assert list(rep.predict_net.op[0].input) == ["c", "x", "y"]
    check(model, feeds)


@needs_add
def test_if_on_a_constant_condition_folds():
    then = branch("then", [helper.make_node("Add", ["k", "k"], ["t"])], [value("t")])
    other = branch("else", [helper.make_node("Identity", ["k"], ["e"])], [value("e")])
    k = helper.make_tensor("k", F, [2], [1.0, 2.0])
    c = helper.make_tensor("c", TensorProto.BOOL, [], [True])
    model = make_model([helper.make_node("If", ["c"], ["out"], then_branch=then, else_branch=other)], [],
                       [value("out")], initializers=[k, c])
    np.testing.assert_array_equal(backend.prepare(model).run({})[0], [2.0, 4.0])


@needs_add
@pytest.mark.parametrize("trips, cond", [("M", ""), ("", "C"), ("M", "C")])
def test_loop_with_outer_reads_and_scan_outputs(trips, cond):
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "step"], ["acc_out"]), helper.make_node("Identity", ["cond_in"], ["c_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan"])], "body",
        [value("i", TensorProto.INT64, []), value("cond_in", TensorProto.BOOL, []), value("acc_in", shape=[2])],
        [value("c_out", TensorProto.BOOL, []), value("acc_out", shape=[2]), value("scan", shape=[2])])
    node = helper.make_node("Loop", [trips, cond, "acc0"], ["acc", "scans"], body=body)
    inputs = [value("acc0", shape=[2]), value("step", shape=[2])]
    feeds = {"acc0": np.zeros(2, np.float32), "step": np.array([1.0, 2.0], np.float32)}
    if trips:
        inputs.append(value("M", TensorProto.INT64, []))
        feeds["M"] = np.array(3, np.int64)
    if cond:
        inputs.append(value("C", TensorProto.BOOL, []))
        feeds["C"] = np.array(bool(trips))  # with no trip count, a false condition ends it at once
    model = make_model([node], inputs, [value("acc"), value("scans")], opset=13)
    if not trips:  # no iteration: the scan output is empty (of unknown slice shape here)
        acc, scans = backend.prepare(model).run(feeds)
        np.testing.assert_array_equal(acc, feeds["acc0"])
        assert scans.size == 0
        return
    check(model, feeds, runtime=True)  # the evaluator cannot omit the trip count


@needs_add
def test_scan_backwards_with_an_outer_read():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_mid"]), helper.make_node("Add", ["s_mid", "bias"], ["s_out"]),
         helper.make_node("Identity", ["s_out"], ["z"])], "body",
        [value("s_in", shape=[2]), value("x_t", shape=[2])], [value("s_out", shape=[2]), value("z", shape=[2])])
    node = helper.make_node("Scan", ["s0", "x"], ["s", "z"], body=body, num_scan_inputs=1,
                            scan_input_directions=[1], scan_output_axes=[1])
    model = make_model([node], [value("s0", shape=[2]), value("x", shape=[4, 2]), value("bias", shape=[2])],
                       [value("s"), value("z")], opset=16)
    feeds = {"s0": np.zeros(2, np.float32), "x": RNG.standard_normal((4, 2)).astype(np.float32),
             "bias": np.ones(2, np.float32)}
    check(model, feeds, runtime=True)  # the evaluator scans forwards only


def test_a_body_op_without_a_converter_is_named():
    body = helper.make_graph([helper.make_node("NoSuchOp", ["s_in"], ["s_out"])], "body",
                             [value("s_in", shape=[2]), value("x_t", shape=[2])], [value("s_out", shape=[2])])
    node = helper.make_node("Scan", ["s0", "x"], ["s"], body=body, num_scan_inputs=1)
    model = make_model([node], [value("s0", shape=[2]), value("x", shape=[4, 2])], [value("s")], opset=16)
    with pytest.raises(ConversionError, match=r"no pycaffe2 converter for ONNX op\(s\) NoSuchOp"):
        backend.prepare(model)


def dft_scan(axis_name):
    """Scan over x [T, 4, 2]: each slice's DFT, the axis read from `axis_name`."""
    body = helper.make_graph([helper.make_node("DFT", ["x_t", "", axis_name], ["y_t"])], "body",
                             [value("x_t", shape=[4, 2])], [value("y_t", shape=[4, 2])])
    node = helper.make_node("Scan", ["x"], ["y"], body=body, num_scan_inputs=1)
    inputs = [value("x", shape=[3, 4, 2]), value("axis", TensorProto.INT64, [])]
    return make_model([node], inputs, [value("y")], opset=20)


def test_a_body_needing_an_outer_value_is_translated_at_the_first_run():
    x = RNG.standard_normal((3, 4, 2)).astype(np.float32)
    rep = backend.prepare(dft_scan("axis"))
    with pytest.raises(ConversionError, match="run it once first"):
        rep.predict_net  # noqa: B018  (the axis is fed: nothing to show before a run)
    got = rep.run({"x": x, "axis": np.array(0, np.int64)})[0]
    expected = np.fft.fft(x[..., 0] + 1j * x[..., 1], axis=1)
    np.testing.assert_allclose(got, np.stack([expected.real, expected.imag], -1), rtol=1e-4, atol=1e-5)
    assert rep.predict_net.op[-1].type == "Scan"


def test_a_body_needing_a_value_of_its_own_inputs_is_refused():
    model = dft_scan("x_t")  # the axis would come from the slice itself
    rep = backend.prepare(model)
    with pytest.raises(ConversionError, match="a node needs a value that changes with each run of the sub-graph"):
        rep.run({"x": RNG.standard_normal((3, 4, 2)).astype(np.float32), "axis": np.array(0, np.int64)})


@needs_add
@pytest.mark.parametrize("flag", [True, False])
def test_an_if_inside_a_scan_body_reads_the_body_inputs(flag):
    then = branch("then", [helper.make_node("Add", ["s_in", "x_t"], ["t"])], [value("t")])
    other = branch("else", [helper.make_node("Identity", ["s_in"], ["e"])], [value("e")])
    body = helper.make_graph(
        [helper.make_node("If", ["flag"], ["s_out"], then_branch=then, else_branch=other),
         helper.make_node("Identity", ["s_out"], ["z"])], "body",
        [value("s_in", shape=[2]), value("x_t", shape=[2])], [value("s_out", shape=[2]), value("z", shape=[2])])
    node = helper.make_node("Scan", ["s0", "x"], ["s", "z"], body=body, num_scan_inputs=1)
    model = make_model([node], [value("s0", shape=[2]), value("x", shape=[3, 2]),
                                value("flag", TensorProto.BOOL, [])], [value("s"), value("z")], opset=16)
    check(model, {"s0": np.ones(2, np.float32), "x": RNG.standard_normal((3, 2)).astype(np.float32),
                  "flag": np.array(flag)})
