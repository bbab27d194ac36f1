"""pycaffe2.transforms: each transform on small nets (where it must apply and where it must
not), the optimized nets against the originals on the bundled and the real models, and
Workspace.CreateNet(optimize=True)."""
import numpy as np
import pytest

from pycaffe2 import netfile, workspace
from pycaffe2.core import CreateOperator
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.transforms import constant_params, optimize_inference
from tests.conftest import REPO

RNG = np.random.default_rng(7)


def net_of(ops, inputs, outputs, name="t"):
    net = caffe2_pb2.NetDef(name=name)
    net.op.extend(ops)
    net.external_input.extend(inputs)
    net.external_output.extend(outputs)
    return net


def run(net, feeds, fetch=None):
    ws = Workspace(seed=0)
    for name, value in feeds.items():
        ws.FeedBlob(name, value)
    ws.RunNetOnce(net)
    return {name: ws.FetchBlob(name) for name in (fetch or net.external_output)}


def check_same(net, feeds, fetch=None, **kwargs):
    """Optimize `net` with `feeds` as parameters; outputs must match. Returns the result."""
    before = net.SerializeToString()
    result = optimize_inference(net, params=feeds, **kwargs)
    assert net.SerializeToString() == before, "the input net was changed"
    want = run(net, feeds, fetch)
    got = run(result.predict_net, {**feeds, **result.params}, fetch)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
    return result


def arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def bn_params(c, prefix="bn"):
    return {f"{prefix}_s": arr(c), f"{prefix}_b": arr(c), f"{prefix}_m": arr(c),
            f"{prefix}_v": RNG.uniform(0.5, 2, c).astype(np.float32)}


def bn(x, y, order="NCHW", prefix="bn", **args):
    return CreateOperator("SpatialBN", [x, f"{prefix}_s", f"{prefix}_b", f"{prefix}_m", f"{prefix}_v"], [y],
                          is_test=1, order=order, **args)


# ---------------------------------------------------------------- SpatialBN folding

FOLD_CASES = {  # id: (op, weight shapes {name: shape}, X shape, channels, BN order)
    "conv-nchw-bias": (CreateOperator("Conv", ["X", "W", "b"], ["Z"], kernel=3, pad=1),
                       {"W": (4, 3, 3, 3), "b": (4,)}, (2, 3, 5, 5), 4, "NCHW"),
    "conv-nchw-group-stride-nobias": (CreateOperator("Conv", ["X", "W"], ["Z"], kernel=3, stride=2, group=2),
                                      {"W": (6, 2, 3, 3)}, (1, 4, 7, 6), 6, "NCHW"),
    "conv-nhwc-group-dilation": (CreateOperator("Conv", ["X", "W", "b"], ["Z"], kernel=3, dilation=2, group=3,
                                                order="NHWC"),
                                 {"W": (6, 3, 3, 1), "b": (6,)}, (2, 7, 7, 3), 6, "NHWC"),
    "conv-3d": (CreateOperator("Conv", ["X", "W"], ["Z"], kernels=[2, 2, 2]),
                {"W": (3, 2, 2, 2, 2)}, (1, 2, 3, 4, 4), 3, "NCHW"),
    "conv-transpose-nchw-group": (CreateOperator("ConvTranspose", ["X", "W", "b"], ["Z"], kernel=3, stride=2,
                                                 group=2),
                                  {"W": (4, 3, 3, 3), "b": (6,)}, (1, 4, 3, 3), 6, "NCHW"),
    "conv-transpose-nhwc-nobias": (CreateOperator("ConvTranspose", ["X", "W"], ["Z"], kernel=2, stride=2,
                                                  order="NHWC"),
                                   {"W": (3, 2, 2, 5)}, (2, 3, 3, 3), 5, "NHWC"),
    "fc-nhwc-axis2": (CreateOperator("FC", ["X", "W", "b"], ["Z"], axis=2),
                      {"W": (5, 4), "b": (5,)}, (2, 3, 4), 5, "NHWC"),
}


@pytest.mark.parametrize("case", FOLD_CASES, ids=list(FOLD_CASES))
def test_fold_batch_norm(case):
    op, shapes, x_shape, c, order = FOLD_CASES[case]
    feeds = {"X": arr(*x_shape), **{name: arr(*shape) for name, shape in shapes.items()}, **bn_params(c)}
    net = net_of([op, bn("Z", "Y", order, epsilon=1e-3)], list(feeds), ["Y"])
    result = check_same(net, feeds)
    assert [o.type for o in result.predict_net.op] == [op.type]
    assert result.predict_net.op[0].output == ["Y"]
    assert sorted(result.params) == sorted(["W_folded", "b_folded" if "b" in shapes else "W_folded_bias"])
    assert not {"bn_s", "bn_m", "W"} & set(result.predict_net.external_input)
    assert result.record.summary() == "folded 1 SpatialBN"


def test_fold_keeps_readers_of_the_bn_output_and_in_place_bn():
    feeds = {"X": arr(2, 3, 4, 4), "W": arr(4, 3, 1, 1), **bn_params(4)}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1), bn("Z", "Z"),
                  CreateOperator("Relu", ["Z"], ["A"]), CreateOperator("Sigmoid", ["Z"], ["B"])],
                 list(feeds), ["A", "B"])
    result = check_same(net, feeds)
    assert result.record.folded == ["op 1 (SpatialBN) into op 0 (Conv)"]


@pytest.mark.parametrize("why", ["read-twice", "training", "external-output", "kept", "no-params",
                                 "order", "computed-weight"])
def test_fold_does_not_apply(why):
    feeds = {"X": arr(2, 3, 4, 4), "W": arr(4, 3, 1, 1), **bn_params(4)}
    ops = [CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1), bn("Z", "Y")]
    outputs, keep, params = ["Y"], (), dict(feeds)
    if why == "read-twice":
        ops.append(CreateOperator("Relu", ["Z"], ["R"]))
        outputs.append("R")
    elif why == "training":
        ops[1] = CreateOperator("SpatialBN", ["Z", "bn_s", "bn_b", "bn_m", "bn_v"], ["Y", "bn_m", "bn_v", "sm", "sv"],
                                is_test=0)
    elif why == "external-output":
        outputs.append("Z")
    elif why == "kept":
        keep = ("Z",)
    elif why == "no-params":
        params = {"X": feeds["X"]}
    elif why == "order":
        ops[0] = CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1, order="NHWC")
        feeds["X"], feeds["W"] = arr(2, 4, 4, 3), arr(4, 1, 1, 3)
        ops[1] = bn("Z", "Y", "NCHW")
        feeds.update(bn_params(4))
        params = dict(feeds)
    elif why == "computed-weight":
        ops.insert(0, CreateOperator("Scale", ["W0"], ["W"], scale=2.0))
        feeds["W0"] = feeds.pop("W")
        params = dict(feeds)
    net = net_of(ops, list(feeds), outputs)
    result = optimize_inference(net, params=params, keep=keep, in_place=False)
    assert "SpatialBN" in [o.type for o in result.predict_net.op]
    assert not result.record.folded and not result.params
    assert len(result.record.skipped) == 1
    if why != "order":  # a Conv NHWC feeding a SpatialBN NCHW runs, but channels differ
        want, got = run(net, feeds), run(result.predict_net, feeds)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_malformed_ops_are_left_alone():
    net = net_of([CreateOperator("Conv", ["X"], ["Z"], kernel=1), bn("Z", "Y"),
                  CreateOperator("SpatialBN", ["Y", "s"], ["B"], is_test=1), CreateOperator("Dropout", [], ["D"]),
                  CreateOperator("Dropout", ["B"], [], is_test=1)], ["X", "s"], ["B"])
    result = optimize_inference(net, params={"X": arr(1, 1, 1, 1)}, in_place=False)
    assert result.predict_net.op == net.op
    assert len(result.record.skipped) == 2


def test_fold_reads_constant_fills_and_rewrites_the_init_net():
    w, scale = arr(4, 3, 3, 3), arr(4)
    init = net_of([CreateOperator("GivenTensorFill", [], ["W"], shape=[4, 3, 3, 3], values=w.ravel().tolist()),
                   CreateOperator("GivenTensorFill", [], ["bn_s"], shape=[4], values=scale.ravel().tolist()),
                   CreateOperator("ConstantFill", [], ["bn_b"], shape=[4], value=0.5),
                   CreateOperator("ConstantFill", [], ["bn_m"], shape=[4], value=0.25),
                   CreateOperator("ConstantFill", [], ["bn_v"], shape=[4], value=2.0),
                   CreateOperator("ConstantFill", [], ["other"], shape=[1], value=1.0)],
                  [], ["W", "bn_s", "bn_b", "bn_m", "bn_v", "other"], name="init")
    assert set(constant_params(init, ["W", "bn_v", "nothing"])) == {"W", "bn_v"}
    predict = net_of([CreateOperator("Conv", ["X", "W"], ["Z"], kernel=3), bn("Z", "Y")],
                     ["X", "W", "bn_s", "bn_b", "bn_m", "bn_v"], ["Y"])
    result = optimize_inference(predict, init)
    assert result.record.summary() == "folded 1 SpatialBN"
    assert [o.output[0] for o in result.init_net.op] == ["other", "W_folded", "W_folded_bias"]
    assert list(result.init_net.external_output) == ["other", "W_folded", "W_folded_bias"]
    x = arr(1, 3, 5, 5)
    ws = Workspace()
    ws.RunNetOnce(init)
    ws.FeedBlob("X", x)
    ws.RunNetOnce(predict)
    want = ws.FetchBlob("Y")
    ws = Workspace()
    ws.RunNetOnce(result.init_net)
    ws.FeedBlob("X", x)
    ws.RunNetOnce(result.predict_net)
    np.testing.assert_allclose(ws.FetchBlob("Y"), want, rtol=1e-4, atol=1e-5)


def test_folded_names_avoid_taken_names():
    feeds = {"X": arr(1, 2, 3, 3), "W": arr(2, 2, 1, 1), "W_folded": arr(1), **bn_params(2)}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1), bn("Z", "Y"),
                  CreateOperator("Scale", ["W_folded"], ["W_folded_bias"])], list(feeds), ["Y", "W_folded_bias"])
    assert sorted(check_same(net, feeds).params) == ["W_folded_1", "W_folded_bias_1"]


def test_shared_weight_folds_twice_under_two_names():
    feeds = {"X": arr(1, 2, 3, 3), "W": arr(2, 2, 1, 1), **bn_params(2, "p"), **bn_params(2, "q")}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["Z1"], kernel=1), bn("Z1", "Y1", prefix="p"),
                  CreateOperator("Conv", ["X", "W"], ["Z2"], kernel=1), bn("Z2", "Y2", prefix="q")],
                 list(feeds), ["Y1", "Y2"])
    result = check_same(net, feeds)
    assert sorted(result.params) == ["W_folded", "W_folded_1", "W_folded_bias", "W_folded_bias_1"]


def test_reused_names_follow_each_version():
    """Z is written twice; the second Conv's output is read after the fold renames the first."""
    feeds = {"X": arr(1, 2, 3, 3), "W": arr(2, 2, 1, 1), **bn_params(2)}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1), bn("Z", "Y"),
                  CreateOperator("Conv", ["Y", "W"], ["Z"], kernel=1), CreateOperator("Add", ["Z", "Y"], ["Y"]),
                  CreateOperator("Relu", ["Y"], ["Z"])],
                 list(feeds), ["Z", "Y"])
    check_same(net, feeds)


# ---------------------------------------------------------------- Dropout

def test_dropout_dropped_readers_rewired():
    feeds = {"X": arr(2, 5)}
    net = net_of([CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Dropout", ["A"], ["D", "mask"], is_test=1),
                  CreateOperator("Softmax", ["D"], ["S"])], ["X"], ["S"])
    result = check_same(net, feeds)
    assert [o.type for o in result.predict_net.op] == ["Sigmoid", "Softmax"]
    assert result.record.dropped == ["op 1 (Dropout)"]


def test_dropout_output_external_renames_the_producer():
    feeds = {"X": arr(2, 5)}
    net = net_of([CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Dropout", ["A"], ["D"], is_test=1)],
                 ["X"], ["D"])
    result = check_same(net, feeds)
    assert [(o.type, list(o.output)) for o in result.predict_net.op] == [("Sigmoid", ["D"])]


@pytest.mark.parametrize("case", ["input-external", "input-read-again"])
def test_dropout_becomes_copy_when_both_names_must_stay(case):
    feeds = {"X": arr(2, 5)}
    ops = [CreateOperator("Dropout", ["X"], ["D"], is_test=1)]
    if case == "input-read-again":
        ops = [CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Dropout", ["A"], ["D"], is_test=1),
               CreateOperator("Tanh", ["A"], ["T"])]
    net = net_of(ops, ["X"], ["D", "T"] if case == "input-read-again" else ["D"])
    result = check_same(net, feeds)
    assert "Copy" in [o.type for o in result.predict_net.op]
    assert "Dropout" not in [o.type for o in result.predict_net.op]
    assert result.record.summary().startswith("1 Dropout made a Copy")


@pytest.mark.parametrize("case", ["training", "mask-read"])
def test_dropout_kept(case):
    if case == "training":
        op = CreateOperator("Dropout", ["X"], ["D", "mask"], is_test=0)
        outputs = ["D"]
    else:
        op = CreateOperator("Dropout", ["X"], ["D", "mask"], is_test=1)
        outputs = ["D", "mask"]
    net = net_of([op], ["X"], outputs)
    result = optimize_inference(net)
    assert [o.type for o in result.predict_net.op] == ["Dropout"]
    assert len(result.record.skipped) == 1


def test_dropout_in_place_and_written_input():
    """In place it just goes; when X is rewritten before Y's reader, Y's name must stay."""
    feeds = {"X": arr(2, 5)}
    net = net_of([CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Dropout", ["A"], ["A"], is_test=1),
                  CreateOperator("Dropout", ["A"], ["D"], is_test=1), CreateOperator("Tanh", ["A"], ["A"]),
                  CreateOperator("Add", ["D", "A"], ["S"])], ["X"], ["S"])
    result = check_same(net, feeds, in_place=False)
    assert "Dropout" not in [o.type for o in result.predict_net.op]


# ---------------------------------------------------------------- in place

def test_relu_in_place_on_its_producer_output():
    feeds = {"X": arr(1, 2, 4, 4), "W": arr(3, 2, 3, 3), "b": arr(3)}
    net = net_of([CreateOperator("Conv", ["X", "W", "b"], ["C"], kernel=3), CreateOperator("Relu", ["C"], ["R"]),
                  CreateOperator("MaxPool", ["R"], ["P"], kernel=2)], list(feeds), ["P"])
    result = check_same(net, feeds)
    assert [list(o.output) for o in result.predict_net.op] == [["R"], ["R"], ["P"]]
    assert result.record.summary() == "1 Relu in place"


def test_in_place_chains_share_one_name():
    """Conv -> SpatialBN -> Mul -> Add -> Relu (in place), as Caffe2's converted Caffe models:
    every op ends up writing the Relu's blob, and the ops in place before stay in place."""
    feeds = {"X": arr(1, 2, 4, 4), "W": arr(3, 2, 1, 1), "k": arr(3), "c": arr(3), **bn_params(3)}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["C"], kernel=1), bn("C", "B"),
                  CreateOperator("Mul", ["B", "k"], ["M"], broadcast=1, axis=1),
                  CreateOperator("Add", ["M", "c"], ["A"], broadcast=1, axis=1),
                  CreateOperator("Relu", ["A"], ["A"]), CreateOperator("Sigmoid", ["A"], ["S"]),
                  CreateOperator("Tanh", ["S"], ["S"]), CreateOperator("Softsign", ["S"], ["T"])],
                 list(feeds), ["T"])
    result = check_same(net, feeds)
    assert [list(o.output) for o in result.predict_net.op] == [["T"]] * 7
    assert result.record.summary() == "folded 1 SpatialBN, 1 Mul in place, 1 Add in place, 1 Sigmoid in place, " \
                                      "1 Softsign in place"


@pytest.mark.parametrize("why", ["read-twice", "external-output", "kept", "external-input"])
def test_in_place_does_not_apply(why):
    feeds = {"X": arr(2, 5)}
    ops = [CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Relu", ["A"], ["R"])]
    outputs, keep = ["R"], ()
    if why == "read-twice":
        ops.append(CreateOperator("Tanh", ["A"], ["T"]))
        outputs.append("T")
    elif why == "external-output":
        outputs.append("A")
    elif why == "kept":
        keep = ("A",)
    else:
        ops = ops[1:2]
        ops[0].input[:] = ["X"]
    net = net_of(ops, ["X"], outputs)
    result = check_same(net, feeds, keep=keep)
    assert not result.record.in_place


@pytest.mark.parametrize("case", ["fused", "relu-in-place", "nhwc-group", "read-twice", "kept", "off"])
def test_fuse_conv_relu(case):
    feeds = {"X": arr(2, 4, 5, 5), "W": arr(6, 2, 3, 3), "b": arr(6)}
    conv = CreateOperator("Conv", ["X", "W", "b"], ["C"], kernel=3, pad=1, group=2, no_gradient_to_input=1)
    ops, outputs, keep = [conv, CreateOperator("Relu", ["C"], ["R"])], ["R"], ()
    if case == "relu-in-place":
        ops[1] = CreateOperator("Relu", ["C"], ["C"])
        outputs = ["C"]
    elif case == "nhwc-group":
        ops[0] = CreateOperator("Conv", ["X", "W", "b"], ["C"], kernel=3, group=2, order="NHWC")
        feeds["X"], feeds["W"] = arr(1, 5, 5, 4), arr(6, 3, 3, 2)
    elif case == "read-twice":
        ops.append(CreateOperator("Sigmoid", ["C"], ["S"]))
        outputs.append("S")
    elif case == "kept":
        keep = ("C",)
    net = net_of(ops, list(feeds), outputs)
    result = check_same(net, feeds, keep=keep, fuse_conv_relu=case != "off")
    fused = case in ("fused", "relu-in-place", "nhwc-group")
    assert [o.type for o in result.predict_net.op] == (["ConvRelu"] if fused else ["Conv", "Relu"] + ["Sigmoid"] * (
        case == "read-twice"))
    if fused:
        assert "no_gradient_to_input" not in [a.name for a in result.predict_net.op[0].arg]
        assert result.record.summary() == "1 Conv + Relu fused"


def test_no_in_place_in_dag_nets():
    """The checker wants one writer per blob in a dag net; folding keeps that."""
    from pycaffe2.schema.checker import check_net
    feeds = {"X": arr(1, 2, 3, 3), "W": arr(2, 2, 1, 1), **bn_params(2)}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1), bn("Z", "Y"),
                  CreateOperator("Relu", ["Y"], ["R"])], list(feeds), ["R"])
    net.type = "dag"
    result = check_same(net, feeds)
    assert result.record.summary() == "folded 1 SpatialBN"
    assert check_net(result.predict_net, known_blobs=result.params) == []


def test_in_place_follows_schema_rules():
    """Add allows in place on input 0; Softmax allows none."""
    feeds = {"X": arr(2, 5), "B": arr(5)}
    net = net_of([CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Add", ["A", "B"], ["S"], broadcast=1),
                  CreateOperator("Tanh", ["S"], ["T"]), CreateOperator("Softmax", ["T"], ["P"])], ["X", "B"], ["P"])
    result = check_same(net, feeds)
    types = sorted(t for _, t in result.record.in_place)
    assert "Softmax" not in types and "Add" in types
    assert result.predict_net.op[-1].input != result.predict_net.op[-1].output


def test_names_used_by_inner_nets_stay():
    feeds = {"X": arr(2, 5), "cond": np.array(True)}
    inner = net_of([CreateOperator("Tanh", ["A"], ["T"])], [], [], name="then")
    if_op = CreateOperator("If", ["cond"], [], then_net=inner)
    net = net_of([CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Relu", ["A"], ["R"]), if_op],
                 ["X", "cond"], ["R", "T"])
    result = check_same(net, feeds)
    assert not result.record.in_place


def test_names_an_inner_net_declares_stay():
    """A name an inner net lists only as an external input (no op of it reads it) is kept too."""
    feeds = {"X": arr(2, 5), "cond": np.array(True)}
    inner = net_of([CreateOperator("Tanh", ["X"], ["T"])], ["X", "A"], [], name="then")
    if_op = CreateOperator("If", ["cond"], [], then_net=inner)
    net = net_of([CreateOperator("Sigmoid", ["X"], ["A"]), CreateOperator("Relu", ["A"], ["R"]), if_op],
                 ["X", "cond"], ["R", "T"])
    result = check_same(net, feeds)
    assert not result.record.in_place


# ---------------------------------------------------------------- whole models

def _model_outputs(predict, init, params, data, fetch):
    ws = Workspace(seed=0)
    if init is not None:
        ws.RunNetOnce(init)
    for name, value in params.items():
        ws.FeedBlob(name, value)
    ws.FeedBlob("data", data)
    ws.CreateNet(predict)
    ws.RunNet(predict.name)
    return [ws.FetchBlob(name) for name in fetch]


def assert_validates_as_before(net, result, params):
    """What `pycaffe2 validate` says of the optimized net, it said of the original."""
    from pycaffe2.schema.checker import check_net
    before = {p.kind for p in check_net(net, known_blobs=set(params))}
    assert {p.kind for p in check_net(result.predict_net, known_blobs={*params, *result.params})} <= before


BUNDLED = {"lenet": ((1, 1, 28, 28), "pred"), "squeezenet1_1": ((1, 3, 224, 224), "pool10"),
           "resnet50": ((1, 3, 224, 224), "pred")}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "resnet50" else n
                                  for n in BUNDLED])
def test_bundled_models_unchanged(name):
    shape, logits = BUNDLED[name]
    model = netfile.load_model(REPO / "nets" / "models" / name)
    ws = Workspace(seed=0)
    ws.RunNetOnce(model.init_net)
    params = {n: v for n, v in ws.blobs.items()}
    result = optimize_inference(model.predict_net, model.init_net, params=params, keep=[logits])
    assert_validates_as_before(model.predict_net, result, params)
    data = RNG.standard_normal(shape).astype(np.float32)
    fetch = [logits, *model.predict_net.external_output]
    want = _model_outputs(model.predict_net, None, params, data, fetch)
    got = _model_outputs(result.predict_net, None, {**params, **result.params}, data, fetch)
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * np.abs(a).max())
    assert len(result.predict_net.op) <= len(model.predict_net.op)
    if name == "resnet50":
        assert result.record.summary() == "folded 53 SpatialBN, 16 Sum in place"


REAL = {"hungmingwu_pytorch_export/predict_net.pb": ((2, 1, 28, 28), "1"),
        "hmc_random_test/predict_net.pb": (None, "1"),  # its init net holds its input
        "caffe2_ios_predict_only/tinyPredict.pb": ((1, 3, 32, 32), "data"),
        "caffe2_ios_predict_only/tinyYoloPredict.pb": ((1, 3, 64, 64), "data"),
        "squeezenet_predict_only/squeeze_predict_net.pb": ((1, 3, 64, 64), "data"),
        "squeezenet_predict_only/squeezenet_predict_armcompute.pb": ((1, 3, 64, 64), "data")}


@pytest.mark.parametrize("file", REAL)
def test_real_models_unchanged(file, caffe2_models):
    from pycaffe2.run.random_init import made_up_weights
    shape, data_name = REAL[file]
    folder = file.split("/")[0]
    predict = netfile.load_net(caffe2_models / file)
    init_path = caffe2_models / folder / "init_net.pb"
    data = RNG.uniform(0, 1, shape).astype(np.float32) if shape else None
    if init_path.exists():
        ws = Workspace()
        ws.RunNetOnce(netfile.load_net(init_path))
        params = dict(ws.blobs)
    else:
        params = made_up_weights(predict, {data_name: data}, seed=1)
    if shape is not None:
        params[data_name] = data
    result = optimize_inference(predict, params=params)
    assert_validates_as_before(predict, result, params)
    want = run(predict, params)
    got = run(result.predict_net, {**params, **result.params})
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-5)
    assert result.record.in_place or result.record.dropped
    if folder == "caffe2_ios_predict_only":
        assert result.record.folded and not result.record.skipped


# ---------------------------------------------------------------- CreateNet(optimize=True)

def test_create_net_optimize_feeds_folded_copies():
    feeds = {"X": arr(2, 3, 4, 4), "W": arr(4, 3, 1, 1), **bn_params(4)}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1), bn("Z", "Y"),
                  CreateOperator("Relu", ["Y"], ["R"])], list(feeds), ["R"])
    want = run(net, feeds)["R"]
    ws = Workspace()
    for name, value in feeds.items():
        ws.FeedBlob(name, value)
    ws.CreateNet(net, optimize=True)
    ws.RunNet("t")
    np.testing.assert_allclose(ws.FetchBlob("R"), want, rtol=1e-4, atol=1e-5)
    assert ws.HasBlob("R") and not ws.HasBlob("Y")  # Conv, SpatialBN and Relu: one ConvRelu
    folded = ws.FetchBlob("W_folded")
    assert ws.HasBlob("W_folded") and ws.HasBlob("W_folded_bias")
    np.testing.assert_array_equal(ws.FetchBlob("W"), feeds["W"])
    ws.FeedBlob("W", 2 * feeds["W"])  # created again: folded anew, under names not taken yet
    ws.CreateNet(net, overwrite=True, optimize=True)
    ws.RunNet("t")
    np.testing.assert_array_equal(ws.FetchBlob("W_folded"), folded)
    assert ws.HasBlob("W_folded_1")
    assert not np.allclose(ws.FetchBlob("R"), want)


def test_front_end_create_net_optimize():
    feeds = {"X": arr(2, 5)}
    net = net_of([CreateOperator("Dropout", ["X"], ["D"], is_test=1), CreateOperator("Relu", ["D"], ["R"])],
                 ["X"], ["R"], name="front_end_optimize")
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", feeds["X"])
    workspace.CreateNet(net, optimize=True)
    workspace.RunNet("front_end_optimize")
    np.testing.assert_array_equal(workspace.FetchBlob("R"), np.maximum(feeds["X"], 0))
    assert not workspace.HasBlob("D")
    workspace.ResetWorkspace()


@pytest.mark.gpu
@pytest.mark.slow
def test_create_net_optimize_on_cuda():
    """Parameters on the GPU are read back, folded, and the folded copies fed to the GPU."""
    from pycaffe2.devices.cuda import is_gpu_array
    feeds = {"X": arr(2, 3, 4, 4), "W": arr(4, 3, 1, 1), **bn_params(4)}
    net = net_of([CreateOperator("Conv", ["X", "W"], ["Z"], kernel=1), bn("Z", "Y"),
                  CreateOperator("Relu", ["Y"], ["R"])], list(feeds), ["R"])
    want = run(net, feeds)["R"]
    net.device_option.device_type = caffe2_pb2.PROTO_CUDA
    ws = Workspace()
    for name, value in feeds.items():
        ws.FeedBlob(name, value, net.device_option)
    ws.CreateNet(net, optimize=True)
    ws.RunNet("t")
    assert is_gpu_array(ws.blobs["W_folded"]) and is_gpu_array(ws.blobs["R"])
    np.testing.assert_allclose(ws.FetchBlob("R"), want, rtol=1e-4, atol=1e-5)
