"""memonger: the optimized nets compute the same results with fewer distinct blobs,
keep their in-place pairs and data flow, and never share across parallel branches."""
import copy

import numpy as np
import pytest

from pycaffe2 import brew, core, memonger, model_helper
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2

RNG = np.random.default_rng(3)


def blobs_of(net):
    return {name for op in net.op for name in list(op.input) + list(op.output)}


def deep_mlp(depth=6):
    model = model_helper.ModelHelper(name="deep_mlp")
    blob = "data"
    for layer in range(depth):
        blob = brew.fc(model, blob, f"fc{layer}", 8, 8)
        blob = brew.relu(model, blob, f"relu{layer}")
    brew.fc(model, blob, "pred", 8, 3)
    model.net.AddExternalOutput("pred")
    return model


def run(init, net, feeds, fetch):
    ws = Workspace("memonger", seed=0)
    for name, value in feeds.items():
        ws.FeedBlob(name, value)
    ws.RunNetOnce(init)
    ws.RunNetOnce(net)
    return {name: ws.FetchBlob(name) for name in fetch}


@pytest.mark.parametrize("net_type", ["simple", "dag"])
def test_inference_net_shares_activations_and_gives_the_same_output(net_type):
    model = deep_mlp()
    net = copy.deepcopy(model.net.Proto())
    net.type = net_type
    optimized = memonger.optimize_inference_for_dag(net, ["data"])
    assert len(blobs_of(optimized)) < len(blobs_of(net)) - 8
    assert memonger.verify_graph_equality(net, optimized)
    assert memonger.verify_inplace_blobs(net, optimized)
    data = {"data": RNG.standard_normal((4, 8)).astype(np.float32)}
    init = model.param_init_net.Proto()
    expected = run(init, net, data, ["pred"])["pred"]
    np.testing.assert_array_equal(run(init, optimized, data, ["pred"])["pred"], expected)


def test_training_net_shares_gradients_and_keeps_parameter_gradients():
    model = deep_mlp(4)
    brew.softmax(model, "pred", "softmax")
    xent = model.LabelCrossEntropy(["softmax", "label"], "xent")
    loss = model.AveragedLoss(xent, "loss")
    grads = model.AddGradientOperators([loss])
    param_grads = [grads[p] for p in model.params]
    net = model.net.Proto()
    optimized = memonger.share_grad_blobs(net, [loss], param_grads, namescope="")
    shared = {name for name in blobs_of(optimized) if name.startswith("__m") and name.endswith("_shared")}
    assert shared and len(blobs_of(optimized)) < len(blobs_of(net))
    assert memonger.verify_graph_equality(net, optimized)
    feeds = {"data": RNG.standard_normal((5, 8)).astype(np.float32), "label": np.array([0, 1, 2, 1, 0], np.int32)}
    fetch = [str(g) for g in param_grads] + ["loss"]
    init = model.param_init_net.Proto()
    expected, got = run(init, net, feeds, fetch), run(init, optimized, feeds, fetch)
    for name in fetch:
        np.testing.assert_array_equal(got[name], expected[name])


def diamond():
    """x -> a -> (b1 -> c1, b2 -> c2) -> out, with the branches free to run in parallel."""
    net = caffe2_pb2.NetDef(name="diamond", type="dag", external_input=["x"], external_output=["out"])
    for op_type, inputs, output in [("Relu", ["x"], "a"), ("Sigmoid", ["a"], "b1"), ("Tanh", ["b1"], "c1"),
                                    ("Relu", ["a"], "b2"), ("Sigmoid", ["b2"], "c2"),
                                    ("Add", ["c1", "c2"], "out")]:
        net.op.append(core.CreateOperator(op_type, inputs, [output]))
    return net


def test_parallel_branches_never_share_but_a_simple_net_may():
    dag = memonger.optimize_interference(diamond(), ["x"])
    names = dag.blob_assignments
    assert names.get("b2", "b2") not in {names.get(b, b) for b in ("b1", "c1")}
    simple = diamond()
    simple.type = "simple"
    linear = memonger.optimize_interference(simple, ["x"]).blob_assignments
    assert linear.get("c2") == linear.get("b1") or linear.get("b2") == linear.get("b1")
    x = {"x": RNG.standard_normal((3, 4)).astype(np.float32)}
    empty = caffe2_pb2.NetDef()
    expected = run(empty, diamond(), x, ["out"])["out"]
    for optimized in (dag.net, memonger.optimize_interference(simple, ["x"]).net):
        np.testing.assert_allclose(run(empty, optimized, x, ["out"])["out"], expected, rtol=1e-6)


def test_statistics_and_what_is_never_renamed():
    net = diamond()
    net.type = "simple"
    net.op.append(core.CreateOperator("Add", ["counter", "out"], ["counter"]))  # read before written
    optimization = memonger.optimize_interference(net, ["x"])
    assert not {"x", "out", "counter"} & set(optimization.blob_assignments)
    from pycaffe2 import workspace
    workspace.ResetWorkspace()
    workspace.FeedBlob("x", np.ones((3, 4), np.float32))
    workspace.FeedBlob("counter", np.zeros((3, 4), np.float32))
    workspace.RunNetOnce(net)
    stats = memonger.compute_statistics(optimization.assignments)
    assert stats.baseline_nbytes > stats.optimized_nbytes > 0
    workspace.ResetWorkspace()


def test_verifiers_catch_a_wrong_rename():
    net = diamond()
    clashing = copy.deepcopy(net)
    memonger.apply_assignments(clashing, {"c2": "c1"})  # c1 is still needed when c2 is written
    assert not memonger.verify_graph_equality(net, clashing)
    inplace = copy.deepcopy(net)
    memonger.apply_assignments(inplace, {"c1": "b1"})  # Tanh now in place: same flow, new in-place pair
    assert memonger.verify_graph_equality(net, inplace) and not memonger.verify_inplace_blobs(net, inplace)
