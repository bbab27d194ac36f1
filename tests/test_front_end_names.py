"""Behaviour of the Caffe2 names added for tests/test_caffe2_names.py: core.Net's
net-editing methods, the SSA helpers, Plan/ExecutionStep from protos, workspace's
immediate mode and benchmark, ModelHelper's DB input and brew's helpers."""
import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper, workspace
from pycaffe2.proto import caffe2_pb2


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def chain():
    net = core.Net("chain")
    x = net.AddExternalInput("x")
    h = net.Relu(x, "h")
    y = net.Sigmoid(h, "y")
    z = net.Tanh(x, "z")
    net.AddExternalOutputs(y, z)
    return net


def test_external_blobs_and_uses():
    net = chain()
    assert net.external_inputs == ["x"] and net.external_outputs == ["y", "z"]
    assert net.external_inputs[0].Net() is net
    assert net.UsesBlob("h") and net.UsesBlob("x") and not net.UsesBlob("y")
    assert net.BlobIsDefined("y") and not net.BlobIsDefined("q")
    assert net.is_external_input("x") and not net.is_external_input("h")
    assert net.UsedBlobNames() == {"x", "h", "y", "z"}


def test_append_net_adds_missing_inputs_and_outputs():
    first, second = core.Net("first"), core.Net("second")
    first.AddExternalInput("x")
    first.Relu("x", "h")
    second.AddExternalInput("h", "w")
    second.Mul(["h", "w"], "y")
    second.AddExternalOutput("y")
    assert first.AppendNet(second) is first
    proto = first.Proto()
    assert list(proto.external_input) == ["x", "w"] and list(proto.external_output) == ["y"]
    assert [op.type for op in proto.op] == ["Relu", "Mul"]


def test_clone_partial_keeps_only_the_needed_ops_and_runs():
    net = chain()
    sub, (out,) = net.ClonePartial("sub", {"x": "inp"}, ["y"])
    assert [op.type for op in sub.Proto().op] == ["Relu", "Sigmoid"]
    assert list(sub.Proto().external_input) == ["inp"] and out == "sub/y"
    x = np.array([-1.0, 2.0], np.float32)
    workspace.FeedBlob("inp", x)
    workspace.RunNetOnce(sub)
    np.testing.assert_allclose(workspace.FetchBlob(out), 1 / (1 + np.exp(-np.maximum(x, 0))), rtol=1e-6)
    with pytest.raises(ValueError, match="neither made"):
        net.ClonePartial("bad", ["x"], ["nowhere"])


def test_clone_remaps_blobs_and_masks_ops():
    clone = chain().Clone("c", blob_remap={"h": "hidden"}, op_id_mask=[0, 1])
    assert [list(op.output) for op in clone.Proto().op] == [["hidden"], ["y"]]
    assert list(clone.Proto().op[1].input) == ["hidden"]


def test_ssa_versions_and_paths():
    net = core.Net("ssa")
    net.Relu("x", "x")  # in place: a new version of x
    net.Relu("x", "y")
    ssa, versions = core.get_ssa(net)
    assert ssa == [([("x", 0)], [("x", 1)]), ([("x", 1)], [("y", 1)])]
    assert versions == {"x": 1, "y": 1}
    assert core.get_undefined_blobs(ssa) == {"x"}
    assert core.get_output_producers(ssa) == {("x", 1): 0, ("y", 1): 1}
    assert core.get_op_ids_in_path(ssa, versions, [], ["y"]) == [0, 1]
    assert core.get_op_ids_in_path(ssa, versions, ["x"], ["y"]) == [1]


def test_next_blob_skips_used_names_and_rand_seed():
    net = chain()
    assert [net.NextBlob("h"), net.NextBlob("h"), net.NextBlob("q")] == ["h_auto_0", "h_auto_1", "q"]
    with core.NameScope("s"):
        assert net.NextScopedBlob("a") == "s/a"
    net.set_rand_seed(seed=7)
    assert [op.device_option.random_seed for op in net.Proto().op] == [7, 8, 9]
    with pytest.raises(ValueError):
        net.set_rand_seed(sequence_seed=True, seed_on_op_def=True)


def test_run_all_on_gpu_and_mkl_set_the_net_device():
    net = chain()
    net.RunAllOnGPU(gpu_id=1, use_cudnn=True)
    assert net.Proto().device_option.device_type == caffe2_pb2.PROTO_CUDA
    assert net.Proto().device_option.device_id == 1
    assert {op.engine for op in net.Proto().op} == {"CUDNN"}
    net.RunAllOnMKL()
    assert net.Proto().device_option.device_type == caffe2_pb2.MKLDNN


def test_attributes_and_plan_round_trip():
    net = chain()
    net.add_attribute("kind", "train")
    step = core.execution_step("s", [net], num_iter=3)
    plan = core.Plan(step)
    assert plan.Nets() == [net] and plan.Steps() == [step] and step.get_net(net.Name()) is net
    assert plan.get_all_attributes("kind") == ["train"] == step.get_all_attributes("kind")
    again = core.Plan.create_from_proto(plan.Proto())
    (copy,) = again.Proto().execution_step
    assert copy.num_iter == 3 and list(copy.network) == [again.Nets()[0].Name()]
    assert [op.type for op in again.Proto().network[0].op] == ["Relu", "Sigmoid", "Tanh"]


def test_small_helpers():
    ref = core.BlobReference("a/b/c")
    assert ref.GetNameScope() == "a/b/" and core.BlobReference("c").GetNameScope() == ""
    assert core.output_to_list(ref) == [ref] and core.output_to_list((ref, ref)) == [ref, ref]
    assert core.get_net_name(chain()).startswith("chain") and core.get_net_name("n") == "n"
    gpu0, gpu1 = core.DeviceOption(caffe2_pb2.PROTO_CUDA, 0), core.DeviceOption(caffe2_pb2.PROTO_CUDA, 1)
    assert not core.device_option_equal(gpu0, gpu1) and core.device_equal(gpu0, gpu0)
    assert core.device_option_equal(core.DeviceOption(0, 0), core.DeviceOption(0, 3))
    grads = ["a_grad", core.GradientSlice("i", "v")]
    assert core.GetIndexFromGradientList(grads, "v") == 1 and core.GetIndexFromGradientList(grads, "q") is None
    assert workspace.StringifyNetName("n") == "n" and workspace.StringifyBlobName(ref) == "a/b/c"
    with pytest.raises(TypeError, match="BlobReference"):
        workspace.StringifyBlobName(chain())
    net = chain()
    assert workspace.StringifyProto(net) == net.Proto().SerializeToString()
    assert workspace.StringifyProto(b"raw") == b"raw"


def test_blob_reference_plus_a_suffix_is_not_scoped_again():
    """Caffe2's optimizer idiom: ConstantFill([param], param + "_momentum") under the
    param's NameScope names the momentum beside the param, not under the scope twice."""
    model = model_helper.ModelHelper(name="m")
    with core.NameScope("gpu_0"):
        brew.fc(model, "x", "y", dim_in=2, dim_out=1)
        (weight, _) = model.GetParams()
        momentum = model.param_init_net.ConstantFill([weight], weight + "_momentum", value=0.0)
        plain = model.param_init_net.ConstantFill([weight], "other", value=0.0)
    assert isinstance(weight + "_momentum", core.BlobReference) and (weight + "_m").Net() is weight.Net()
    assert str(momentum) == "gpu_0/y_w_momentum" and str(plain) == "gpu_0/other"
    with pytest.raises(TypeError):
        weight + 1


def test_immediate_mode_uses_its_own_workspace():
    workspace.StartImmediate(i_know=True)
    try:
        workspace.FeedImmediate("a", np.array([-1.0, 3.0], np.float32))
        workspace.RunOperatorImmediate(core.CreateOperator("Relu", ["a"], ["b"]))
        np.testing.assert_array_equal(workspace.FetchImmediate("b"), [0.0, 3.0])
        assert workspace.IsImmediate() and sorted(workspace.ImmediateBlobs()) == ["a", "b"]
        assert not workspace.HasBlob("a") and workspace.CurrentWorkspace() == "default"
    finally:
        workspace.StopImmediate()
    assert not workspace.IsImmediate()


def test_benchmark_net_times_the_net_and_each_op():
    net = core.Net("bench")
    net.ConstantFill([], "x", shape=[2, 3], value=1.0)
    net.Relu("x", "y")
    workspace.CreateNet(net)
    times = workspace.BenchmarkNet(net.Name(), 1, 2, True)
    assert len(times) == 3 and all(t >= 0 for t in times)


def test_call_with_exception_intercept_prints_the_recorded_traceback(capsys):
    workspace.operator_tracebacks["n"][0] = [("model.py", 12, "build")]
    with pytest.raises(ZeroDivisionError):
        workspace.CallWithExceptionIntercept(lambda: 1 / 0, lambda: 0, "n")
    assert 'File "model.py", line 12, in build' in capsys.readouterr().out
    del workspace.operator_tracebacks["n"]


def test_model_helper_db_input_and_devices(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = model_helper.ModelHelper("m")
    data, label = model.TensorProtosDBInput([], ["data", "label"], batch_size=2, db="d.minidb",
                                            db_type="minidb")
    (create,) = model.param_init_net.Proto().op
    assert create.type == "CreateDB" and create.output[0] == "dbreader_d.minidb"
    assert model.net.Proto().op[0].input[0] == "dbreader_d.minidb" and (data, label) == ("data", "label")
    with pytest.raises(ValueError, match="makes its own DB reader"):
        model.TensorProtosDBInput(["r"], "x", batch_size=1, db="d", db_type="minidb")
    with pytest.raises(ValueError, match="no devices"):
        model.GetDevices()
    model.RunAllOnGPU()
    assert model.param_init_net.Proto().device_option.device_type == caffe2_pb2.PROTO_CUDA
    assert model.get_name() == "m"


def test_brew_layer_norm_matches_numpy():
    model = model_helper.ModelHelper("ln")
    y, _, _ = brew.layer_norm(model, "X", "y", dim_in=3, initial_scale=2.0, initial_bias=0.5)
    x = np.random.default_rng(0).random((4, 3)).astype(np.float32)
    workspace.FeedBlob("X", x)
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    ref = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-4)
    np.testing.assert_allclose(workspace.FetchBlob(y), 2 * ref + 0.5, rtol=1e-4, atol=1e-5)
    assert model.params == ["y_scale", "y_bias"]


def test_brew_batch_mat_mul():
    model = model_helper.ModelHelper("bmm")
    out = brew.batch_mat_mul(model, ["A", "B"], "C")
    a, b = np.ones((2, 2, 3), np.float32), np.ones((2, 3, 4), np.float32)
    workspace.FeedBlob("A", a)
    workspace.FeedBlob("B", b)
    workspace.RunNetOnce(model.net)
    np.testing.assert_array_equal(workspace.FetchBlob(out), a @ b)


def test_extract_predictor_net_keeps_the_forward_ops_from_the_input():
    model = model_helper.ModelHelper("train")
    data = model.net.StopGradient(model.net.Cast("raw", "xx/cast", to=1), "xx/data")
    hidden = brew.fc(model, data, "a", 4, 6)
    pred = brew.fc(model, hidden, "pred", 6, 3)
    _, loss = model.net.SoftmaxWithLoss([pred, "label"], ["softmax", "loss"])
    model.AddGradientOperators([loss])
    model.net.AddExternalInputs("raw", "label", *model.params)  # Caffe2 lists them as its ops use them
    predict_net, params = model_helper.ExtractPredictorNet(model.net.Proto(), ["xx/data"], ["pred"],
                                                           renames={"xx/data": "image"})
    proto = predict_net.Proto()
    assert [op.type for op in proto.op] == ["FC", "FC"] and proto.op[0].input[0] == "image"
    assert list(proto.external_input) == ["image", "a_w", "a_b", "pred_w", "pred_b"]
    assert list(proto.external_output) == ["pred"] and params == ["a_w", "a_b", "pred_w", "pred_b"]
    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob("image", np.ones((2, 4), np.float32))
    workspace.RunNetOnce(predict_net)
    assert workspace.FetchBlob("pred").shape == (2, 3)
    with pytest.raises(ValueError, match="no op writes"):
        model_helper.ExtractPredictorNet(model.net.Proto(), ["xx/data"], ["nothing"])


@pytest.mark.parametrize("aggregator, expected", [("sum", [[2.0], [4.0]]), ("mean", [[2.0], [2.0]])])
def test_deduplicate_gradient_slices(aggregator, expected):
    net = core.Net("dedup")
    deduped = net.DeduplicateGradientSlices(core.GradientSlice("idx", "val"), aggregator)
    workspace.FeedBlob("idx", np.array([7, 3, 7], np.int64))
    workspace.FeedBlob("val", np.array([[1.0], [2.0], [3.0]], np.float32))
    workspace.RunNetOnce(net)
    np.testing.assert_array_equal(workspace.FetchBlob(deduped.indices), [3, 7])
    np.testing.assert_array_equal(workspace.FetchBlob(deduped.values), expected)  # rows of ids 3, 7
    with pytest.raises(ValueError, match="max is not supported"):
        net.DeduplicateGradientSlices(core.GradientSlice("idx", "val"), "max")


def test_brew_elementwise_linear_trains_its_scale_and_shift():
    model = model_helper.ModelHelper("ewl")
    y = brew.elementwise_linear(model, "X", "y", dim=3)
    assert model.params == ["y_w", "y_b"] and model.weights == ["y_w"] and model.biases == ["y_b"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    workspace.FeedBlob("X", x)
    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob("y_w", np.array([1.0, 2.0, 3.0], np.float32))
    workspace.RunNetOnce(model.net)
    np.testing.assert_array_equal(workspace.FetchBlob(y), x * [1.0, 2.0, 3.0])


def test_brew_cond_and_loop_build_if_and_while_ops():
    model, then_model, body = (model_helper.ModelHelper(n) for n in ("outer", "then", "body"))
    workspace.FeedBlob("flag", np.array(True))
    workspace.FeedBlob("x", np.array([1.0], np.float32))
    then_model.net.Scale("x", "x", scale=2.0)
    brew.cond(model, "flag", ["x"], then_model)
    body.net.Scale("x", "x", scale=3.0)
    body.net.ConstantFill([], "go", shape=[], value=False, dtype=core.DataType.BOOL)
    model.net.ConstantFill([], "go", shape=[], value=True, dtype=core.DataType.BOOL)
    brew.loop(model, "go", ["x", "go"], body)
    # add_if_op / add_while_op put a CreateScope before each (main's control_ops_util)
    assert [op.type for op in model.net.Proto().op if op.type != "CreateScope"] == ["If", "ConstantFill", "While"]
    workspace.RunNetOnce(model.net)
    np.testing.assert_array_equal(workspace.FetchBlob("x"), [6.0])


def test_ops_remember_where_they_were_made():
    net = core.Net("where")
    net.Relu("x", "y")
    line = test_ops_remember_where_they_were_made.__code__.co_firstlineno + 2
    (innermost, *_), = workspace.operator_tracebacks[net.Name()].values()
    assert innermost == (__file__, line, "test_ops_remember_where_they_were_made")
    net.PopulateProtoWithFileName()
    assert net.Proto().op[0].name == f"{__file__}:{line}:test_ops_remember_where_they_were_made"
