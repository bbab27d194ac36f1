"""Python family: Python ops against NumPy references (feed, reshape, several blobs,
in place, pass_workspace), PythonGradient and the registered maker against numeric
differentiation (grad_output_indices / grad_input_indices too), shape inference
(outputs unknown, downstream ops still checked), errors, and the safety rule: a
Python op read from a file runs nothing and says why, and no pickle is ever loaded."""
import pickle

import numpy as np
import pytest

from pycaffe2 import core, netfile, workspace
from pycaffe2.errors import GradientError, NetError, OpFailure
from pycaffe2.executor import Workspace
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.python_op import register
from pycaffe2.schema.bind import ShapeError
from pycaffe2.schema.checker import check_net
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, make_op, run_op
from pycaffe2.validate import validate
from tests.schema import infer


def double_feed(inputs, outputs):
    outputs[0].feed(2 * inputs[0].data)


def double_reshape(inputs, outputs):
    outputs[0].reshape(inputs[0].shape)
    outputs[0].data[...] = inputs[0].data * 2


def double_grad(inputs, outputs):  # inputs: x, y, dy
    outputs[0].reshape(inputs[2].shape)
    outputs[0].data[...] = inputs[2].data * 2


def sin_mul(inputs, outputs):  # y0 = sin(a) * b, y1 = a + b
    a, b = inputs[0].data, inputs[1].data
    outputs[0].feed(np.sin(a) * b)
    outputs[1].feed(a + b)


def sin_mul_grad(inputs, outputs):  # inputs: a, b, y0, y1, dy0, dy1
    a, b, dy0, dy1 = inputs[0].data, inputs[1].data, inputs[4].data, inputs[5].data
    outputs[0].feed(np.cos(a) * b * dy0 + dy1)
    outputs[1].feed(np.sin(a) * dy0 + dy1)


X = np.array([[0.5, -1.25, 2.0], [3.0, 0.25, -0.75]])


@pytest.mark.parametrize("function", [double_feed, double_reshape])
def test_python_doubles_like_numpy(function):
    token = register(function, double_grad)
    got, = check_reference("Python", [X.astype(np.float32)], lambda x, **_: 2 * x, {"token": token},
                          num_outputs=1)
    assert got.dtype == np.float32


def test_python_feed_keeps_the_dtype_and_several_blobs():
    token = register(sin_mul, sin_mul_grad)
    a, b = X, X[::-1] + 1
    check_reference("Python", [a, b], lambda a, b, **_: (np.sin(a) * b, a + b), {"token": token},
                    num_outputs=2)
    ints, = run_op("Python", [np.arange(6, dtype=np.int64)], {"token": register(double_feed)}, num_outputs=1)
    assert ints.dtype == np.int64 and ints.tolist() == [0, 2, 4, 6, 8, 10]


def test_python_output_starts_as_its_blob():
    def accumulate(inputs, outputs):
        if outputs[0].shape != inputs[0].shape:
            outputs[0].feed(np.zeros_like(inputs[0].data))
        outputs[0].data[...] += inputs[0].data
    net = core.Net("accumulate")
    net.Python(accumulate)(["x"], ["total"])
    ws = Workspace()
    ws.FeedBlob("x", np.array([1.0, 2.0]))
    ws.CreateNet(net.Proto())
    ws.RunNet(net.Name(), 3)
    np.testing.assert_array_equal(ws.FetchBlob("total"), [3.0, 6.0])


def test_python_pass_workspace_sees_the_workspace_it_runs_in():
    seen = {}

    def read_internal(inputs, outputs, ws):
        seen["fetched"] = ws.blobs["internal"].fetch()
        outputs[0].feed(ws.FetchBlob("internal") + 1)
    net = core.Net("pass_workspace")
    net.GivenTensorFill([], ["internal"], values=[1.0, 2.0], shape=[2])
    net.Python(read_internal, pass_workspace=True)([], ["y"])
    bound = workspace.C.Workspace()  # a private workspace, not the current one
    bound.run(net)
    np.testing.assert_array_equal(seen["fetched"], [1.0, 2.0])
    np.testing.assert_array_equal(bound.fetch_blob("y"), [2.0, 3.0])
    assert not workspace.HasBlob("internal")


def test_python_builder_tuple_and_func_type():
    calls = []

    def builder(scale, offset=0.0):
        calls.append(scale)
        return lambda inputs, outputs: outputs[0].feed(scale * inputs[0].data + offset)

    class Affine:
        def __init__(self, scale):
            self.scale = scale

        def forward(self, inputs, outputs):
            outputs[0].feed(self.scale * inputs[0].data)

        def backward(self, inputs, outputs):
            outputs[0].feed(self.scale * inputs[2].data)

    net = core.Net("builders")
    net.Python((builder, [3.0], {"offset": 1.0}))(["x"], ["y"])
    net.Python(5.0, python_func_type=Affine)(["x"], ["z"])
    grads = net.AddGradientOperators(["z"])
    ws = Workspace()
    ws.FeedBlob("x", np.array([1.0, 2.0]))
    ws.RunNetOnce(net.Proto())
    assert calls == [3.0]  # built once, here, not per run or per net
    np.testing.assert_array_equal(ws.FetchBlob("y"), [4.0, 7.0])
    np.testing.assert_array_equal(ws.FetchBlob("z"), [5.0, 10.0])
    np.testing.assert_array_equal(ws.FetchBlob(grads["x"]), [5.0, 5.0])
    for f, grad_f in (((builder, [1.0], {}), double_grad), (double_feed, (builder, [1.0], {}))):
        with pytest.raises(ValueError, match="both f and grad_f or neither"):
            net.Python(f, grad_f)


def test_python_gradient_op_matches_numeric():
    token = register(sin_mul, sin_mul_grad)
    a, b = X, X[::-1] + 1
    y0, y1 = run_op("Python", [a, b], {"token": token}, num_outputs=2)
    dy = [np.full_like(a, 0.5), np.linspace(-1, 1, a.size).reshape(a.shape)]
    check_gradient_op("Python", [a, b], "PythonGradient", [a, b, y0, y1, *dy], {0: 0, 1: 1}, dy,
                      {"token": token}, num_outputs=2)


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("function", [double_feed, double_reshape])
def test_python_registered_gradient(function, inplace):
    op = core.CreatePythonOperator(function, ["x"], ["x" if inplace else "y"], grad_f=double_grad)
    report = check_op_gradient(op, [X], 0)
    assert report.ok, report


def test_python_gradient_with_indices():
    def triple(inputs, outputs):
        for k in range(3):
            outputs[k].feed(inputs[k].data * (k + 1))

    def triple_grad(inputs, outputs):  # x1 x2 x3 y1 y2 y3 dy1 dy3 -> dx1
        assert len(inputs) == 8 and len(outputs) == 1
        outputs[0].feed(inputs[6].data)

    op = core.CreatePythonOperator(triple, ["x1", "x2", "x3"], ["y1", "y2", "y3"], grad_f=triple_grad,
                                   grad_output_indices=[0, 2], grad_input_indices=[0])
    (grad,), g_input = GetGradientForOp(op, ["y1_grad", None, "y3_grad"])
    assert grad.type == "PythonGradient"
    assert list(grad.input) == ["x1", "x2", "x3", "y1", "y2", "y3", "y1_grad", "y3_grad"]
    assert list(grad.output) == ["x1_grad"] and g_input == ["x1_grad", None, None]
    assert check_op_gradient(op, [X, X + 1, X - 1], 0, outputs_with_grads=[0, 2]).ok


def test_python_gradient_needs_a_gradient_function():
    op = core.CreatePythonOperator(double_feed, ["x"], ["y"])
    with pytest.raises(GradientError, match=r"registered without a gradient function"):
        GetGradientForOp(op, ["y_grad"])
    op.arg[0].s = b"double_feed"  # a token this process never made
    with pytest.raises(GradientError, match="no Python function is registered under token 'double_feed'"):
        GetGradientForOp(op, ["y_grad"])


def test_python_inference_leaves_outputs_unknown_and_checks_downstream():
    token = register(double_feed)
    assert infer("Python", [(2, 3)], n_out=2, token=token) == [None, None]
    net = core.Net("downstream")
    net.Python(double_feed)(["x"], ["y"])
    net.Relu(["y"], ["z"])
    net.FC(["z", "w", "b"], ["out"])  # W unknown too: nothing to refuse before the run
    assert check_net(net.Proto(), known_blobs=["x", "w", "b"]) == []
    net.Relu(["z"], ["z2", "extra"])  # ...but what does not depend on shapes is still checked
    assert [p.kind for p in check_net(net.Proto(), known_blobs=["x", "w", "b"])] == ["output-count"]


def test_python_failure_names_the_op_and_leaves_blobs():
    def broken(inputs, outputs):
        outputs[0].feed(inputs[0].data)
        raise RuntimeError("This is an intentional exception.")

    def writes_input(inputs, outputs):
        inputs[0].data[0] = 99

    ws = Workspace()
    ws.FeedBlob("x", np.array([1.0, 2.0]))
    ws.FeedBlob("y", np.array([7.0]))
    for function, message in ((broken, "RuntimeError: This is an intentional exception."),
                              (writes_input, "read-only")):
        with pytest.raises(OpFailure, match=r"op 0 \(Python\) failed: .*" + message):
            ws.RunOperatorOnce(core.CreatePythonOperator(function, ["x"], ["y"]))
        np.testing.assert_array_equal(ws.FetchBlob("x"), [1.0, 2.0])
        np.testing.assert_array_equal(ws.FetchBlob("y"), [7.0])


def test_python_dag_net_runs_functions_concurrently():
    net = core.Net("dag")
    net.Proto().type, net.Proto().num_workers = "dag", 4
    for k in range(6):
        net.Python(double_reshape)(["x"], [f"y{k}"])
    ws = Workspace()
    ws.FeedBlob("x", X)
    ws.RunNetOnce(net.Proto())
    for k in range(6):
        np.testing.assert_array_equal(ws.FetchBlob(f"y{k}"), (2 * X).astype(np.float32))


# -- nothing from a file runs ----------------------------------------------------------------------

RAN = []


class Payload:
    """Unpickling this would record a run: the tests assert it never happens."""

    def __reduce__(self):
        return RAN.append, ("unpickled",)


def file_net(tmp_path, name, **args):
    op = make_op("Python", ["x"], ["y"], args)
    net = caffe2_pb2.NetDef(name="from_file", op=[op], external_input=["x"])
    path = tmp_path / name
    netfile.save_net(net, path)
    return netfile.load_net(path), path


@pytest.mark.parametrize("name, args, message", [
    ("token.pb", {"token": "double_feed"}, "no Python function is registered under token 'double_feed'"),
    ("none.yaml", {}, "arg token is missing"),
    ("pickled.pb", {"pickled_builder": pickle.dumps((Payload(), (), {}))},
     "arg pickled_builder holds a pickled Python function, which pycaffe2 never unpickles"),
    ("grad.pb", {"token": "double_feed", "pickled_grad_builder": pickle.dumps(Payload())},
     "arg pickled_grad_builder"),
])
def test_python_op_from_a_file_runs_nothing(tmp_path, name, args, message):
    register(double_feed)  # a function of that name is registered, under a token of its own
    net, path = file_net(tmp_path, name, **args)
    ws = Workspace()
    ws.FeedBlob("x", X)
    for attempt in (ws.CreateNet, ws.RunNetOnce):
        with pytest.raises(NetError, match=r"op 0 \(Python\): " + message) as caught:
            attempt(net)
        assert "Python ops run only in the process that registered their function" in str(caught.value)
    report = validate([path])
    assert [p.kind for p in report.problems] == ["shape"] and message.split(",")[0] in str(report.problems[0])
    assert not ws.HasBlob("y") and RAN == []


def test_python_net_saved_and_read_back_in_its_own_process_runs(tmp_path):
    net = core.Net("round_trip")
    net.Python(double_feed)(["x"], ["y"])
    path = tmp_path / "round_trip.pb"
    netfile.save_net(net.Proto(), path)
    ws = Workspace()
    ws.FeedBlob("x", X)
    ws.RunNetOnce(netfile.load_net(path))
    np.testing.assert_array_equal(ws.FetchBlob("y"), 2 * X)


def test_python_gradient_op_checks_its_token():
    token = register(double_feed)
    with pytest.raises(ShapeError, match="registered without a gradient function"):
        infer("PythonGradient", [(2,), (2,), (2,)], token=token)
    with pytest.raises(NetError, match=r"op 0 \(PythonGradient\): no Python function"):
        Workspace().RunOperatorOnce(make_op("PythonGradient", ["x", "y", "dy"], ["dx"], {"token": "f:1"}))


# -- CUDA: the function runs on the host (Caffe2's GPUFallbackOp) -------------------------------------

DEVICE_CHECKED = {"Python", "PythonGradient"}


@pytest.mark.gpu
@pytest.mark.slow
def test_python_on_cuda_runs_on_the_host():
    token = register(sin_mul, sin_mul_grad)
    a, b = X.astype(np.float32), X[::-1].astype(np.float32) + 1
    y0, y1 = check_devices("Python", [a, b], {"token": token}, num_outputs=2)
    np.testing.assert_allclose(y0, np.sin(a) * b, rtol=1e-6)
    dy = [np.ones_like(a), np.full_like(a, 0.5)]
    check_devices("PythonGradient", [a, b, y0, y1, *dy], {"token": token}, num_outputs=2)
