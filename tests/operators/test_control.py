"""control family (If, While, Do, CreateScope, HasScope): each op against a NumPy
reference, the gradients of If, Do and While against central differences, the
nested-net checks at CreateNet and validate, and the errors naming both the
outer and the inner op."""
import numpy as np
import pytest

from pycaffe2.core import Net
from pycaffe2.errors import NetError, OpFailure
from pycaffe2.executor import Workspace
from pycaffe2.gradient import GetBackwardPass, GetGradientForOp, GradientError
from pycaffe2.gradient_checker import central_differences, check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.checker import check_net
from pycaffe2.testing import check_reference, make_op
from tests.operators import DEVICES

DEVICE_CHECKED = {"If", "While", "Do"}


def rand(*shape):
    return np.random.default_rng(7).uniform(0.5, 1.5, shape).astype(np.float32)


def net_def(name, *ops):
    return caffe2_pb2.NetDef(name=name, op=list(ops))


THEN = net_def("then", make_op("Scale", ["in1"], ["out0"], {"scale": 2.0}))
ELSE = net_def("else", make_op("Sqr", ["in1"], ["out0"]))


def if_reference(condition, x, **args):
    return [x * 2 if condition.reshape(-1)[0] else x * x]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("condition", [np.array(True), np.array([False]), np.array([[True]])])
def test_if(condition, device):
    check_reference("If", [condition, rand(2, 3)], if_reference, {"then_net": THEN, "else_net": ELSE},
                    num_outputs=1, device=device)


def run_net(net, feeds, workspace=None):
    workspace = workspace or Workspace("control")
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(net)
    return workspace


def test_if_without_else_leaves_blobs_as_they_were():
    net = net_def("main", make_op("If", ["c", "x"], ["y"], {"then_net": net_def("t", make_op("Copy", ["x"], ["y"]))}))
    ws = run_net(net, {"c": np.array(False), "x": rand(3), "y": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(ws.FetchBlob("y"), np.zeros(3))
    run_net(net, {"c": np.array(True)}, ws)
    np.testing.assert_array_equal(ws.FetchBlob("y"), rand(3))


@pytest.mark.parametrize("condition, words", [
    (np.array([True, False]), "the condition must be a single bool, got [2] bool"),
    (np.array(1.0, np.float32), "the condition must be a single bool, got [] float32"),
])
def test_if_refuses_a_bad_condition(condition, words):
    net = net_def("main", make_op("If", ["c"], [], {"then_net": net_def("t")}))
    with pytest.raises(OpFailure, match=r"op 0 \(If\)") as failed:
        run_net(net, {"c": condition})
    assert words in str(failed.value)


def test_a_failing_inner_op_names_outer_and_inner_op_and_changes_nothing():
    inner = net_def("branch", make_op("Copy", ["x"], ["y"]), make_op("Reshape", ["x"], ["r", "old"], {"shape": [7]}))
    net = net_def("main", make_op("If", ["c", "x"], ["y"], {"then_net": inner}))
    ws = Workspace("control")
    with pytest.raises(OpFailure) as failed:
        run_net(net, {"c": np.array(True), "x": rand(2, 3), "y": np.zeros(1, np.float32)}, ws)
    text = str(failed.value)
    assert "net main: op 0 (If)" in text and "net branch: op 1 (Reshape)" in text
    np.testing.assert_array_equal(ws.FetchBlob("y"), np.zeros(1))  # the Copy before it left no trace


def test_a_bad_inner_net_is_refused_at_create_net_and_by_validate():
    inner = net_def("branch", make_op("Relu", ["x"], ["y"], {"alpha": 1.0}), make_op("NoSuchOp", ["x"], ["z"]))
    net = net_def("main", make_op("If", ["c", "x"], ["y"], {"then_net": inner}))
    messages = [str(p) for p in check_net(net)]
    assert any("op 0 (If): then_net (net 'branch'): op 0 (Relu): unknown arg 'alpha'" in m for m in messages)
    assert any("op 0 (If): then_net (net 'branch'): op 1 (NoSuchOp): unknown op type" in m for m in messages)
    with pytest.raises(NetError, match=r"op 0 \(If\): then_net \(net 'branch'\): op 0 \(Relu\)"):
        Workspace("control").CreateNet(net)


def test_a_net_arg_must_hold_a_net():
    op = make_op("If", ["c"], [], {"then_net": "not a net"})
    assert any("arg 'then_net' must be net" in p.message for p in check_net(net_def("main", op)))


def test_inner_nets_run_on_the_op_device():
    op = make_op("If", ["c", "x"], ["y"], {"then_net": net_def("t", make_op("Relu", ["x"], ["y"]))})
    op.device_option.device_type = caffe2_pb2.PROTO_CUDA
    from pycaffe2.devices.cuda import unavailable_reason
    if unavailable_reason() is None:
        pytest.skip("CUDA is available here: the device rows run the ops on it")
    with pytest.raises(NetError, match=r"(?s)op 0 \(If\): cannot create net t:.*ask for CUDA"):
        Workspace("control").CreateNet(net_def("main", op))


def loop_net(step):
    """While c: s += x; i += 1; c = i < n."""
    return net_def("body", make_op("Add", ["s", "x"], ["s"]), make_op("Add", ["i", "one"], ["i"]),
                   make_op("LT", ["i", "n"], ["c"]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [0, 1, 4])
def test_while(n, device):
    net = net_def("main", make_op("LT", ["i", "n"], ["c"]),
                  make_op("While", ["c", "s", "x", "i", "one", "n"], ["s", "i", "c"], {"loop_net": loop_net(1)}))
    if device != "cpu":
        net.device_option.device_type = caffe2_pb2.PROTO_CUDA
    x = rand(3)
    counters = np.int32 if device == "cpu" else np.float32  # CUDA's Add is float only
    ws = run_net(net, {"i": np.array(0, counters), "n": np.array(n, counters), "one": np.array(1, counters),
                       "s": np.zeros(3, np.float32), "x": x})
    np.testing.assert_allclose(ws.FetchBlob("s"), n * x, rtol=1e-6)
    assert int(ws.FetchBlob("i")) == n


def test_while_with_cond_net_runs_it_before_every_pass():
    cond = net_def("cond", make_op("LT", ["i", "n"], ["c"]))
    body = net_def("body", make_op("Add", ["i", "one"], ["i"]))
    net = net_def("main", make_op("While", ["c", "i", "one", "n"], ["i", "c"], {"loop_net": body, "cond_net": cond}))
    ws = run_net(net, {"c": np.array(False), "i": np.array(0, np.int32), "n": np.array(5, np.int32),
                       "one": np.array(1, np.int32)})
    assert int(ws.FetchBlob("i")) == 5


def do_net(inner, outer_inputs, outer_outputs, bindings, **args):
    """[CreateScope, Do] binding inner -> outer names."""
    outer = outer_inputs + outer_outputs
    inner_names = list(bindings)
    do = make_op("Do", [*outer_inputs, "scope"], [*outer_outputs, "scope"],
                 {"net": inner, "inner_blobs": inner_names,
                  "outer_blobs_idx": [outer.index(bindings[n]) for n in inner_names], **args})
    return net_def("main", make_op("CreateScope", [], ["scope"]), do)


@pytest.mark.parametrize("device", DEVICES)
def test_do_binds_outer_blobs_and_keeps_the_rest_local(device):
    inner = net_def("inner", make_op("Sqr", ["a"], ["t"]), make_op("Scale", ["t"], ["b"], {"scale": 3.0}))
    net = do_net(inner, ["x"], ["y"], {"a": "x", "b": "y"})
    if device != "cpu":  # CreateScope stays on the CPU; the Do and its net run on CUDA
        net.op[1].device_option.device_type = caffe2_pb2.PROTO_CUDA
    x = rand(2, 2)
    ws = run_net(net, {"x": x})
    np.testing.assert_allclose(ws.FetchBlob("y"), 3 * x * x, rtol=1e-6)
    assert not ws.HasBlob("t") and not ws.HasBlob("a")


def test_do_pushes_a_workspace_per_run_unless_it_reuses_one():
    inner = net_def("inner", make_op("Copy", ["a"], ["b"]))
    for reuse, pushed in ((0, 3), (1, 1)):
        net = do_net(inner, ["x"], ["y"], {"a": "x", "b": "y"}, reuse_workspace=reuse)
        net.op.extend(net.op[1:] * 2)
        net.op.append(make_op("HasScope", ["scope"], ["has"]))
        ws = run_net(net, {"x": rand(2)})
        assert ws.blobs["scope"].__class__.__name__ == "WorkspaceStack"
        assert len(ws.blobs["scope"].workspaces) == pushed and bool(ws.FetchBlob("has"))


def test_create_scope_and_has_scope():
    net = net_def("main", make_op("CreateScope", [], ["scope"]), make_op("HasScope", ["scope"], ["has"]))
    ws = run_net(net, {})
    assert ws.FetchBlob("has").dtype == np.bool_ and not ws.FetchBlob("has")
    with pytest.raises(OpFailure, match="'x' must be a workspace stack made by CreateScope"):
        run_net(net_def("m", make_op("HasScope", ["x"], ["has"])), {"x": rand(1)})


@pytest.mark.parametrize("inputs, outputs, inner, index, words", [
    (["x", "scope"], ["y", "other"], ["a", "b"], [0, 1], "must be the same workspace stack blob"),
    (["x", "scope"], ["y", "scope"], ["a"], [0], "outer blob(s) y are bound to no inner name"),
    (["x", "scope"], ["y", "scope"], ["a", "b"], [0, 5], "outer_blobs_idx 5 (inner 'b') is out of range [0, 1]"),
    (["x", "scope"], ["y", "scope"], ["a", "a"], [0, 1], "inner blob 'a' is bound twice"),
    (["x", "scope"], ["y", "scope"], ["a", "b"], [0, 0], "outer blob 'x' is bound to two inner names"),
    (["x", "scope"], ["y", "scope"], ["a", "b"], [0], "inner_blobs has 2 name(s) but outer_blobs_idx 1"),
])
def test_do_refuses_bad_bindings(inputs, outputs, inner, index, words):
    op = make_op("Do", inputs, outputs, {"net": net_def("n"), "inner_blobs": inner, "outer_blobs_idx": index})
    net = net_def("main", make_op("CreateScope", [], ["scope"]), op)
    assert any(words in p.message for p in check_net(net)), [p.message for p in check_net(net)]
    with pytest.raises(NetError, match=r"op 1 \(Do\)"):
        Workspace("control").CreateNet(net)


def test_a_do_net_sees_only_its_bound_blobs():
    inner = net_def("inner", make_op("Add", ["a", "unbound"], ["b"]))
    messages = [str(p) for p in check_net(do_net(inner, ["x"], ["y"], {"a": "x", "b": "y"}))]
    assert any("net (net 'inner'): op 0 (Add): input 'unbound' is not an external_input" in m for m in messages)


# -- gradients ---------------------------------------------------------------------------------

def loss_gradient(net, feeds, wrt, loss):
    """(analytic d loss/d wrt from AddGradientOperators, central differences)."""
    grad_ops, grad_map = GetBackwardPass(net.op, [loss])
    full = caffe2_pb2.NetDef(name=net.name)
    full.CopyFrom(net)
    full.op.extend(grad_ops)
    analytic = run_net(full, feeds).FetchBlob(grad_map[wrt])
    values = {k: np.array(v, np.float64) if v.dtype == np.float32 else v for k, v in feeds.items()}

    def objective():
        return float(np.sum(run_net(net, values).FetchBlob(loss)))

    return analytic, central_differences(objective, values[wrt], 1e-4)


@pytest.mark.parametrize("condition", [True, False])
def test_if_gradient(condition):
    op = make_op("If", ["c", "x"], ["y"], {"then_net": net_def("t", make_op("Sqr", ["x"], ["y"])),
                                           "else_net": net_def("e", make_op("Scale", ["x"], ["y"], {"scale": 3.0}))})
    report = check_op_gradient(op, [np.array(condition), rand(2, 3)], 1)
    assert report.ok, report
    grad_ops, g_input = GetGradientForOp(op, ["y_grad"])
    assert [o.type for o in grad_ops] == ["If"] and grad_ops[0].is_gradient_op
    assert g_input == [None, "x_grad"]


def test_if_gradient_of_a_blob_one_branch_replaces_and_the_other_leaves_alone():
    """then: y = x * x (y's old value gets a zero gradient); no else: y's gradient passes through."""
    op = make_op("If", ["c", "x", "y"], ["y"], {"then_net": net_def("t", make_op("Sqr", ["x"], ["y"]))})
    for condition in (True, False):
        for wrt in (1, 2):
            report = check_op_gradient(op, [np.array(condition), rand(3), rand(3) + 1], wrt)
            assert report.ok, (condition, wrt, report)


def test_do_gradient():
    inner = net_def("inner", make_op("Sqr", ["a"], ["t"]), make_op("Mul", ["t", "w"], ["b"]))
    net = do_net(inner, ["x", "v"], ["y"], {"a": "x", "w": "v", "b": "y"})
    net.op.append(make_op("AveragedLoss", ["y"], ["loss"]))
    feeds = {"x": rand(2, 3), "v": rand(2, 3) + 1}
    for wrt in ("x", "v"):
        analytic, numeric = loss_gradient(net, feeds, wrt, "loss")
        np.testing.assert_allclose(analytic, numeric, rtol=1e-2, atol=1e-3)
    grad_ops, _ = GetBackwardPass(net.op, ["loss"])
    do_grad = [o for o in grad_ops if o.type == "Do"]
    assert len(do_grad) == 1 and do_grad[0].is_gradient_op and do_grad[0].input[-1] == "scope"


def test_while_gradient():
    """n passes of x = x ** 2 and v = v + w, differentiated through the loop: the
    state's gradients flow pass to pass, w's add up over the passes."""
    from pycaffe2.control_ops_util import add_while_op
    main, body, cond = Net("main_w"), Net("body_w"), Net("cond_w")
    body.Pow("x", "x", exponent=2.0)
    body.Sum(["v", "w"], "v")
    cond.Add(["i", "one"], "i")
    cond.LE(["i", "n"], "c")
    add_while_op(main, "c", ["x", "v", "w", "i", "one", "n"], body, cond)
    main.Sum(["x", "v"], "xv")
    main.AveragedLoss("xv", "loss")
    feeds = {"x": rand(3), "v": rand(3), "w": rand(3), "i": np.array(0, np.int32),
             "one": np.array(1, np.int32), "n": np.array(2, np.int32)}
    for wrt in ("x", "v", "w"):
        analytic, numeric = loss_gradient(main.Proto(), feeds, wrt, "loss")
        np.testing.assert_allclose(analytic, numeric, rtol=1e-2, atol=1e-3)


def test_while_gradient_needs_a_do_body():
    op = make_op("While", ["c", "s", "x", "i", "one", "n"], ["s", "i", "c"], {"loop_net": loop_net(1)})
    with pytest.raises(GradientError, match="needs a loop_net of one Do op"):
        GetGradientForOp(op, ["s_grad", None, None])


def test_create_scope_and_has_scope_have_no_gradient():
    assert GetGradientForOp(make_op("HasScope", ["s"], ["h"]), ["h_grad"]) == ([], [None])
    assert GetGradientForOp(make_op("CreateScope", [], ["s"]), ["s_grad"]) == ([], [])


# -- net files ---------------------------------------------------------------------------------

NESTED_YAML = """name: main
external_input: [c, x]
op:
  - type: If
    input: [c, x]
    output: [y]
    arg:
      - name: then_net
        n:
          name: then
          op:
            - {type: Relu, input: [x], output: [y]}
      - name: else_net
        n:
          name: else
          op:
            - {type: Relu, input: [x], output: [y], arg: {alpha: 2}}
            - {type: Sigmoid, input: [nope], output: [y]}
"""


def test_a_net_file_with_nested_nets_validates_them(tmp_path):
    from pycaffe2 import netfile
    from pycaffe2.validate import check_file
    path = tmp_path / "nested.yaml"
    path.write_text(NESTED_YAML)
    problems = [str(p) for p in check_file(path)]
    assert problems == [
        f"{path}:4: op 0 (If): else_net (net 'else'): op 0 (Relu): unknown arg 'alpha'",
        (f"{path}:4: op 0 (If): else_net (net 'else'): op 1 (Sigmoid): input 'nope' is not an external_input "
         "and no earlier op produces it")]
    good = tmp_path / "good.pbtxt"
    net = netfile.load_model(path).predict_net
    del net.op[0].arg[1:]  # the then branch alone is fine
    good.write_text(str(net))
    assert check_file(good) == []
    ws = Workspace("control")
    ws.FeedBlob("c", np.array(True))
    ws.FeedBlob("x", np.array([-1.0, 2.0], np.float32))
    ws.RunNetOnce(netfile.load_model(good).predict_net)
    np.testing.assert_array_equal(ws.FetchBlob("y"), [0.0, 2.0])


def test_a_yaml_net_arg_may_be_written_as_the_net_itself(tmp_path):
    from pycaffe2 import netfile
    from pycaffe2.validate import check_file
    path = tmp_path / "friendly.yaml"
    path.write_text("""name: main
external_input: [c, x]
op:
  - type: If
    input: [c, x]
    output: [y]
    arg:
      then_net: {name: then, op: [{type: Relu, input: [x], output: [y]}]}
      else_net:
        name: else
        op:
          - {type: Scale, input: [x], output: [y], arg: {scale: 2, bad: 1}}
""")
    assert [str(p) for p in check_file(path)] == [
        f"{path}:4: op 0 (If): else_net (net 'else'): op 0 (Scale): unknown arg 'bad'"]
    op = netfile.load_model(path).predict_net.op[0]
    assert [(a.name, a.n.name, a.n.op[0].type) for a in op.arg] == [("then_net", "then", "Relu"),
                                                                    ("else_net", "else", "Scale")]


@pytest.mark.parametrize("device", DEVICES)
def test_a_cpu_op_reads_what_a_cuda_if_wrote(device):
    then = net_def("t", make_op("Scale", ["x"], ["y"], {"scale": 2.0}))
    net = net_def("main", make_op("If", ["c", "x"], ["y"], {"then_net": then}), make_op("Relu", ["y"], ["z"]))
    if device != "cpu":
        net.op[0].device_option.device_type = caffe2_pb2.PROTO_CUDA
    x = rand(3) - 1.0
    ws = run_net(net, {"c": np.array(True), "x": x})
    np.testing.assert_allclose(ws.FetchBlob("z"), np.maximum(2 * x, 0), rtol=1e-6)


def test_control_ops_run_in_a_dag_net():
    """A control op writes blobs named only at run time: a dag net runs it after every op
    before it and every op after it waits for it."""
    then = net_def("t", make_op("Scale", ["a"], ["y"], {"scale": 3.0}))
    net = net_def("main", make_op("Sqr", ["x"], ["a"]), make_op("If", ["c", "a"], ["y"], {"then_net": then}),
                  make_op("Relu", ["y"], ["z"]), make_op("Sqr", ["x"], ["w"]))
    net.type, net.num_workers = "dag", 4
    x = rand(3)
    ws = run_net(net, {"c": np.array(True), "x": x})
    np.testing.assert_allclose(ws.FetchBlob("z"), 3 * x * x, rtol=1e-6)


def test_a_mistyped_binding_arg_is_reported_once():
    op = make_op("Do", ["x", "scope"], ["y", "scope"],
                 {"net": net_def("n"), "inner_blobs": [1, 2], "outer_blobs_idx": [0, 1]})
    messages = [p.message for p in check_net(net_def("main", make_op("CreateScope", [], ["scope"]), op))]
    assert messages == ["arg 'inner_blobs' must be strings, got [1, 2] (field ints)"]


# -- Loop and Scan (ONNX's) --------------------------------------------------------------------

def body_net(name, ops, inputs, outputs):
    net = net_def(name, *ops)
    net.external_input.extend(inputs)
    net.external_output.extend(outputs)
    return net


LOOP_BODY = body_net("body", [make_op("Add", ["acc", "x"], ["acc_out"]), make_op("Cast", ["i"], ["i_f"], {"to": 1}),
                              make_op("Mul", ["acc_out", "i_f"], ["scan"]),
                              make_op("LT", ["i", "stop"], ["c_out"])], ["i", "c", "acc", "x", "stop"],
                     ["c_out", "acc_out", "scan"])


@pytest.mark.parametrize("trips, stop, expected", [(3, 10, 3), (10, 2, 3), (0, 5, 0), (None, 4, 5)])
def test_loop(trips, stop, expected):
    """acc += x while i < trips and the previous i < stop; scan = acc * i."""
    x = rand(2)
    m = np.zeros(0, np.int64) if trips is None else np.array(trips, np.int64)
    net = net_def("main", make_op("Loop", ["M", "cond", "acc0", "x", "stop"], ["acc", "scans"],
                                  {"body": LOOP_BODY, "body_inputs": ["i", "c", "acc"]}))
    net.external_input.extend(["M", "cond", "acc0", "x", "stop"])
    assert check_net(net) == []
    ws = run_net(net, {"M": m, "cond": np.array(True), "acc0": np.zeros(2, np.float32), "x": x,
                       "stop": np.array(stop, np.int64)})
    np.testing.assert_allclose(ws.FetchBlob("acc"), expected * x, rtol=1e-6)
    scans = ws.FetchBlob("scans")
    assert scans.shape == ((expected, 2) if expected else (0,))
    for i in range(expected):
        np.testing.assert_allclose(scans[i], (i + 1) * x * i, rtol=1e-6)
    assert not ws.HasBlob("acc_out") and not ws.HasBlob("i")  # the body's blobs stay inside


def test_loop_false_condition_runs_nothing_and_errors():
    net = net_def("main", make_op("Loop", ["M", "cond", "acc0", "x", "stop"], ["acc", "scans"],
                                  {"body": LOOP_BODY, "body_inputs": ["i", "c", "acc"]}))
    feeds = {"M": np.array(5, np.int64), "cond": np.array([False]), "acc0": np.ones(2, np.float32), "x": rand(2),
             "stop": np.array(9, np.int64)}
    np.testing.assert_array_equal(run_net(net, feeds).FetchBlob("acc"), [1, 1])
    bad = net_def("main", make_op("Loop", ["M", "cond", "acc0"], ["acc"], {"body": LOOP_BODY, "body_inputs": ["i"]}))
    with pytest.raises(OpFailure, match="body_inputs must name the iteration number and the condition first"):
        run_net(bad, feeds)
    with pytest.raises(OpFailure, match="M must be one value"):
        run_net(net, {**feeds, "M": np.array([1, 2], np.int64)})


SCAN_BODY = body_net("body", [make_op("Add", ["s", "xt"], ["s_out"]), make_op("Mul", ["s_out", "yt"], ["z"])],
                     ["s", "xt", "yt"], ["s_out", "z"])


def scan_reference(s, x, y, x_axis, backward, out_axis, out_backward):
    xs = np.moveaxis(x, x_axis, 0)
    zs = []
    for t in range(xs.shape[0]):
        s = s + xs[xs.shape[0] - 1 - t if backward else t]
        zs.append(s * y[t])
    return s, np.stack(zs[::-1] if out_backward else zs, axis=out_axis)


@pytest.mark.parametrize("x_axis, backward, out_axis, out_backward", [(0, 0, 0, 0), (1, 1, -1, 0), (-2, 0, 1, 1)])
def test_scan(x_axis, backward, out_axis, out_backward):
    x, y, s0 = rand(4, 4, 3) if x_axis == 0 else np.moveaxis(rand(4, 4, 3), 0, x_axis), rand(4, 3), rand(4, 3)
    op = make_op("Scan", ["s0", "x", "y"], ["s", "z"],
                 {"body": SCAN_BODY, "body_inputs": ["s", "xt", "yt"], "num_scan_inputs": 2,
                  "scan_input_axes": [x_axis, 0], "scan_input_directions": [backward, 0],
                  "scan_output_axes": [out_axis], "scan_output_directions": [out_backward]})
    net = net_def("main", op)
    net.external_input.extend(["s0", "x", "y"])
    assert check_net(net) == []
    ws = run_net(net, {"s0": s0, "x": x, "y": y})
    s, z = scan_reference(s0, x, y, x_axis, backward, out_axis, out_backward)
    np.testing.assert_allclose(ws.FetchBlob("s"), s, rtol=1e-6)
    np.testing.assert_allclose(ws.FetchBlob("z"), z, rtol=1e-6)


def test_scan_batched_and_errors():
    x, s0 = rand(2, 5, 3), np.zeros((2, 3), np.float32)
    body = body_net("body", [make_op("Add", ["s", "xt"], ["s_out"]), make_op("Copy", ["s_out"], ["z"])],
                    ["s", "xt"], ["s_out", "z"])
    op = make_op("Scan", ["lens", "s0", "x"], ["s", "z"],
                 {"body": body, "body_inputs": ["s", "xt"], "num_scan_inputs": 1, "batched": 1})
    ws = run_net(net_def("main", op), {"lens": np.zeros(0, np.int32), "s0": s0, "x": x})
    np.testing.assert_allclose(ws.FetchBlob("s"), x.sum(1), rtol=1e-6)
    np.testing.assert_allclose(ws.FetchBlob("z"), np.cumsum(x, 1), rtol=1e-6)
    bad = make_op("Scan", ["s0", "x", "y"], ["s", "z"], {"body": SCAN_BODY, "body_inputs": ["s", "xt", "yt"],
                                                         "num_scan_inputs": 2})
    with pytest.raises(OpFailure, match=r"disagree on the sequence length: \[3, 4\]"):
        run_net(net_def("main", bad), {"s0": rand(3), "x": rand(3, 3), "y": rand(4, 3)})
