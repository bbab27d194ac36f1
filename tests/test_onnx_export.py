"""NetDef -> ONNX (pycaffe2.onnx.export): every exported model passes onnx.checker's full
check and ONNX Runtime computes what pycaffe2 does, within 1e-4 relative.

Rows: the bundled models (LeNet, SqueezeNet 1.1, ResNet-50), the real Caffe2 files in
../shared/caffe2_models (pairs as they are, predict-only nets with made-up weights),
one small net per converter (in-place writes, legacy broadcast and padding, the
decompositions), the errors, and the command line both ways."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from pycaffe2 import cli, core, netfile
from pycaffe2.errors import ConversionError
from pycaffe2.executor import Workspace
from pycaffe2.onnx import frontend
from pycaffe2.onnx.export import export_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "nets" / "models"
SHARED = ROOT.parent / "shared" / "caffe2_models"
RTOL = 1e-4


def rel_diff(ours, theirs) -> float:
    scale = float(np.abs(ours).max()) if np.size(ours) else 0.0
    return float(np.abs(ours.astype(np.float64) - theirs).max()) / (scale or 1.0) if np.size(ours) else 0.0


def ours_and_theirs(predict, weights, feeds: dict, outputs, opset=17, init=None):
    """(pycaffe2's outputs, ONNX Runtime's on the exported model, the model)."""
    model = export_model(predict, init if init is not None else weights, inputs=feeds,
                         outputs=outputs, opset=opset)
    ws = Workspace(seed=0)
    if init is not None:
        ws.RunNetOnce(init)
    for name, value in {**(weights or {}), **feeds}.items():
        ws.FeedBlob(name, value)
    ws.RunNetOnce(predict)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {name: value for name, value in feeds.items()
                                if name in {i.name for i in model.graph.input}})
    return [ws.FetchBlob(name) for name in outputs], theirs, model


def check_same(predict, weights, feeds, outputs, opset=17, init=None, rtol=RTOL):
    ours, theirs, model = ours_and_theirs(predict, weights, feeds, outputs, opset, init)
    for name, a, b in zip(outputs, ours, theirs):
        assert a.shape == b.shape, name
        assert a.dtype == b.dtype, name
        if a.dtype.kind in "biu":
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert rel_diff(a, b) <= rtol, (name, rel_diff(a, b))
    return model


# ---------------------------------------------------------------- whole models

def bundled(name):
    model = netfile.load_model(MODELS / name)
    return model.init_net, model.predict_net


@pytest.mark.parametrize("name, shape", [
    ("lenet", (2, 1, 28, 28)),
    ("squeezenet1_1", (1, 3, 224, 224)),
    pytest.param("resnet50", (1, 3, 224, 224), marks=pytest.mark.slow),
])
def test_bundled_models_match_onnxruntime(name, shape):
    init, predict = bundled(name)
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    softmax = predict.op[-1]
    outputs = [softmax.input[0], softmax.output[0]]  # logits and probabilities
    model = check_same(predict, None, {"data": data}, outputs, init=init)
    assert model.opset_import[0].version == 17


def test_optimized_model_exports():
    """The inference transforms' output (SpatialBN folded, ConvRelu fused, ops in place) exports too."""
    from pycaffe2.transforms import optimize_inference
    init, predict = bundled("squeezenet1_1")
    optimized = optimize_inference(predict, init, keep=predict.external_output, fuse_conv_relu=True)
    assert "ConvRelu" in {op.type for op in optimized.predict_net.op}
    data = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    check_same(optimized.predict_net, None, {"data": data}, ["softmax"], init=optimized.init_net)


def shared_cases():
    """(id, model path, input name, shape, whether weights are made up)."""
    return [
        ("hungmingwu_pytorch_export", SHARED / "hungmingwu_pytorch_export", "1", (2, 1, 28, 28), False),
        ("hmc_random_test", SHARED / "hmc_random_test", "1", (1, 1, 224, 224), False),
        ("squeeze_predict_net", SHARED / "squeezenet_predict_only" / "squeeze_predict_net.pb", "data",
         (1, 3, 227, 227), True),
        ("squeezenet_predict_armcompute", SHARED / "squeezenet_predict_only" /
         "squeezenet_predict_armcompute.pb", "data", (1, 3, 227, 227), True),
        ("tinyPredict", SHARED / "caffe2_ios_predict_only" / "tinyPredict.pb", "data", (1, 3, 224, 224), True),
        ("tinyYoloPredict", SHARED / "caffe2_ios_predict_only" / "tinyYoloPredict.pb", "data",
         (1, 3, 416, 416), True),
    ]


@pytest.mark.parametrize("case", shared_cases(), ids=lambda case: case[0])
def test_shared_caffe2_models_match_onnxruntime(case):
    _, path, blob, shape, made_up = case
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/caffe2_models is not checked out here)")
    from pycaffe2.run import made_up_weights
    model = netfile.load_model(path)
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    weights = made_up_weights(model.predict_net, {blob: data}, {}, seed=0) if made_up else None
    exported = check_same(model.predict_net, weights, {blob: data}, list(model.predict_net.external_output),
                          init=None if made_up else model.init_net)
    assert [i.name for i in exported.graph.input] == [blob]  # fed, even where the init net fills it


@pytest.mark.parametrize("name, shape", [("lenet", (2, 1, 28, 28)), ("squeezenet1_1", (1, 3, 64, 64))])
def test_export_then_import_through_the_backend(name, shape):
    """pycaffe2 -> ONNX -> pycaffe2 (pycaffe2.onnx.backend) computes what the original net does."""
    from pycaffe2.onnx import backend, registry
    init, predict = bundled(name)
    model = export_model(predict, init, {"data": shape})
    missing = sorted({n.op_type for n in model.graph.node if registry.lookup(n.op_type, 17) is None})
    if missing:
        pytest.skip(f"the backend has no converters for {missing} yet")
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ws = Workspace(seed=0)
    ws.RunNetOnce(init)
    ws.FeedBlob("data", data)
    ws.RunNetOnce(predict)
    (theirs,) = backend.prepare(model).run([data])
    assert rel_diff(ws.FetchBlob("softmax"), np.asarray(theirs)) <= RTOL


# ---------------------------------------------------------------- one net per converter

def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def net_of(build):
    net = core.Net("t")
    build(net)
    return net.Proto()


CASES = {
    "in_place_and_legacy_pads": (
        lambda n: (n.Conv(["x", "w", "b"], "c", kernel=3, pad=1), n.Relu("c", "c"),
                   n.MaxPool("c", "p", kernel=3, stride=2, pad=1, legacy_pad=3), n.Sigmoid("c", "c"),
                   n.AveragePool("p", "y", kernel=3, stride=2, legacy_pad=3)),
        {"w": rand(4, 3, 3, 3), "b": rand(4)}, {"x": rand(2, 3, 11, 11)}, ["c", "y"]),
    "conv_same_grouped_dilated": (
        lambda n: n.Conv(["x", "w"], "y", kernel=3, group=2, dilation=2, legacy_pad=2, stride=2),
        {"w": rand(4, 1, 3, 3)}, {"x": rand(1, 2, 9, 10)}, ["y"]),
    "conv_transpose": (
        lambda n: n.ConvTranspose(["x", "w", "b"], "y", kernel=3, stride=2, pad=1, adj=1),
        {"w": rand(3, 2, 3, 3), "b": rand(2)}, {"x": rand(1, 3, 5, 5)}, ["y"]),
    "spatial_bn_fc_axis": (
        lambda n: (n.SpatialBN(["x", "s", "o", "m", "v"], "bn", is_test=1, epsilon=1e-3),
                   n.FC(["bn", "fw", "fb"], "y", axis=2)),
        {"s": rand(3), "o": rand(3), "m": rand(3), "v": np.abs(rand(3)) + 0.5, "fw": rand(5, 12), "fb": rand(5)},
        {"x": rand(2, 3, 3, 4)}, ["y"]),
    "legacy_broadcast_axis": (
        lambda n: (n.Mul(["x", "s"], "a", broadcast=1, axis=1), n.Add(["a", "t"], "b", broadcast=1, axis=1),
                   n.Sub(["b", "u"], "c", broadcast=1), n.Div(["c", "d"], "y", broadcast=1, axis_str="C",
                                                              order="NCHW")),
        {"s": rand(3), "u": rand(5), "d": np.abs(rand(3)) + 1}, {"x": rand(2, 3, 4, 5), "t": rand(3, 4)},
        ["y"]),
    "channel_shuffle_lrn": (
        lambda n: (n.ChannelShuffle("x", "s", group=2), n.LRN("s", ["y", "scale"], size=3, alpha=1e-3,
                                                            beta=0.75, bias=2.0)),
        {}, {"x": rand(2, 6, 3, 3)}, ["s", "y"]),
    "concat_add_axis_split_info": (
        lambda n: (n.Concat(["a", "b"], ["c", "info"], axis=1, add_axis=1),
                   n.Concat(["a", "b"], ["d", "info2"], axis=-1), n.Cast("info2", "i64", to=10)),
        {}, {"a": rand(2, 3), "b": rand(2, 3, seed=1)}, ["c", "d", "info2"]),
    "softmax_coerced": (
        lambda n: (n.Softmax("x", "s", axis=1), n.LogSoftmax("x", "l", axis=2), n.Softmax("x", "t", axis=-1)),
        {}, {"x": rand(2, 3, 4)}, ["s", "l", "t"]),
    "dropout_reshape_flatten": (
        lambda n: (n.Dropout("x", ["x", "mask"], is_test=1), n.Reshape("x", ["r", "old"], shape=[0, -1]),
                   n.Flatten("x", "f", axis=2), n.FlattenToVec("x", "v")),
        {}, {"x": rand(2, 3, 4)}, ["r", "old", "f", "v"]),
    "split_slice_gather": (
        lambda n: (n.Split("x", ["p", "q"], axis=1, split=[1, 2]), n.Slice("x", "s", starts=[0, 1], ends=[-1, -1]),
                   n.Gather(["x", "i"], "g")),
        {"i": np.array([1, 0, 1], np.int32)}, {"x": rand(2, 3, 4)}, ["p", "q", "s", "g"]),
    "squeeze_expand_transpose": (
        lambda n: (n.ExpandDims("x", "e", dims=[0, 3]), n.Squeeze("e", "s", dims=[0]),
                   n.Transpose("x", "t", axes=[2, 0, 1]), n.Transpose("x", "r")),
        {}, {"x": rand(2, 3, 4)}, ["e", "s", "t", "r"]),
    "activations": (
        lambda n: (n.LeakyRelu("x", "a", alpha=0.2), n.Elu("x", "b", alpha=0.5), n.Sigmoid("x", "c"),
                   n.Tanh("x", "d"), n.Selu("x", "e"), n.Swish("x", "f"), n.Gelu("x", "g"),
                   n.PRelu(["x", "slope"], "h"), n.Softplus("x", "i"), n.Clip("x", "j", min=-0.5, max=0.5),
                   n.Sqr("x", "k"), n.Abs("x", "m"), n.Exp("x", "o"), n.HardSigmoid("x", "p")),
        {"slope": rand(3)}, {"x": rand(2, 3, 4)}, list("abcdefghijkmop")),
    "reductions_and_argmax": (
        lambda n: (n.ReduceSum("x", "a", axes=[1]), n.ReduceMean("x", "b", axes=[0, 2], keepdims=0),
                   n.ReduceMax("x", "c"), n.ReduceFrontSum("x", "d"), n.ReduceBackMean("x", "e", num_reduce_dim=2),
                   n.ArgMax("x", "f", axis=1), n.Sum(["x", "x", "x"], "g"), n.Max(["x", "y"], "h")),
        {}, {"x": rand(2, 3, 4), "y": rand(2, 3, 4, seed=1)}, list("abcdefgh")),
    "matmuls_cast_compare": (
        lambda n: (n.MatMul(["a", "b"], "m", trans_b=1), n.BatchMatMul(["x", "x"], "bm", trans_b=1),
                   n.Cast("m", "c", to=10), n.GT(["a", "a2"], "gt"), n.Copy("a", "cp")),
        {"b": rand(5, 4)}, {"a": rand(3, 4), "a2": rand(3, 4, seed=1), "x": rand(2, 3, 4)},
        ["m", "bm", "c", "gt", "cp"]),
    "resize_norms": (
        lambda n: (n.ResizeNearest("x", "rn", width_scale=2.0, height_scale=1.5),
                   n.UpsampleBilinear("x", "ub", width_scale=2.0, height_scale=2.0),
                   n.InstanceNorm(["x", "s", "o"], "in"), n.LayerNorm(["x"], ["ln", "mu", "sd"], axis=2),
                   n.Normalize("x", "nm", axis=1), n.GroupNorm(["x6", "g6", "b6"], ["gn", "gm", "gs"], group=2)),
        {"s": rand(3), "o": rand(3), "g6": rand(6), "b6": rand(6)}, {"x": rand(1, 3, 4, 5), "x6": rand(2, 6, 3, 2)},
        ["rn", "ub", "in", "ln", "mu", "sd", "nm", "gn"]),
    "plumbing_and_unary": (
        lambda n: (n.Tile("x", "t", tiles=2, axis=1), n.Expand(["x", "shp"], "e"), n.Where(["c", "x", "x2"], "w"),
                   n.Shape("x", "sh"), n.Size("x", "sz"), n.ReduceL1("x", "l1", axes=[1]),
                   n.ReduceL2("x", "l2", axes=[2]), n.ReduceMin("x", "mn", axes=[0]), n.ArgMin("x", "am", axis=2),
                   n.Pow("x", "pw", exponent=2.0), n.Scale("x", "sc", scale=3.0),
                   n.Rsqrt("p", "rs"), n.Mean(["x", "x2"], "me"), n.Min(["x", "x2"], "mi"),
                   n.Sum(["i", "i"], "si"), n.Sign("x", "sg"), n.Floor("x", "fl"), n.Reciprocal("p", "rc"),
                   n.ThresholdedRelu("x", "tr", alpha=0.3), n.Softsign("x", "ss"), n.Not("c", "nt"),
                   n.Sin("x", "sn"), n.FCTransposed(["x2d", "wt", "b"], "fct"), n.Shape("x", "sh1", axes=[1])),
        {"shp": np.array([2, 2, 3, 4], np.int64), "wt": rand(4, 5), "b": rand(5)},
        {"x": rand(2, 3, 4), "x2": rand(2, 3, 4, seed=1), "c": rand(2, 3, 4, seed=2) > 0,
         "p": np.abs(rand(2, 3)) + 0.5, "i": np.array([1, 2], np.int32), "x2d": rand(3, 4)},
        ["t", "e", "w", "sh", "sz", "l1", "l2", "mn", "am", "pw", "sc", "rs", "me", "mi", "si", "sg", "fl",
         "rc", "tr", "ss", "nt", "sn", "fct", "sh1"]),
    "more_caffe2_ops": (
        lambda n: (n.NCHW2NHWC("x", "nhwc"), n.NHWC2NCHW("nhwc", "back"), n.Mod("i", "md", divisor=3),
                   n.Mod("i", "mf", divisor=3, sign_follow_divisor=1),
                   n.WeightedSum(["x", "w1", "x", "w2"], "ws"), n.TopK("r", ["tv", "ti"], k=2),
                   n.BatchGather(["r", "idx"], "bg"), n.Cube("x", "cu"), n.Log1p("p", "lp"),
                   n.DotProduct(["r", "r2"], "dp"), n.SquaredL2Distance(["r", "r2"], "sq"),
                   n.SumSqrElements("x", "ss", average=1), n.ElementwiseLinear(["r", "a", "b"], "el"),
                   n.PadImage("x", "pc", pad_t=1, pad_l=2, pad_b=0, pad_r=1, value=0.5),
                   n.PadImage("x", "pr", pad=1, mode="reflect"), n.PadImage("x", "pe", pads=[1, 0, 2, 1], mode="edge"),
                   n.MaxPool2D("x", "m2", kernel=2), n.Conv2D(["x", "cw"], "c2", kernel=1)),
        {"w1": np.array([0.5], np.float32), "w2": np.array([2.0], np.float32), "idx": np.array([2, 0], np.int64),
         "a": rand(5), "b": rand(5), "cw": rand(2, 3, 1, 1)},
        {"x": rand(2, 3, 4, 5), "i": np.array([-7, 7, 5, -5], np.int32), "r": rand(3, 5), "r2": rand(3, 5, seed=1),
         "p": np.abs(rand(2, 3))},
        ["nhwc", "back", "md", "mf", "ws", "tv", "ti", "bg", "cu", "lp", "dp", "sq", "ss", "el", "pc", "pr", "pe",
         "m2", "c2"]),
    "nhwc": (
        lambda n: (n.Conv(["x", "w", "b"], "c", kernel=3, pad=1, order="NHWC"),
                   n.SpatialBN(["c", "s", "o", "m", "v"], "bn", is_test=1, order="NHWC"),
                   n.MaxPool("bn", "p", kernel=2, stride=2, order="NHWC"),
                   n.AveragePool("bn", "g", global_pooling=1, order="NHWC"),
                   n.ResizeNearest("p", "r", width_scale=2.0, height_scale=2.0, order="NHWC")),
        {"w": rand(4, 3, 3, 3), "b": rand(4), "s": rand(4), "o": rand(4), "m": rand(4), "v": np.abs(rand(4)) + 1},
        {"x": rand(2, 6, 6, 3)}, ["c", "bn", "p", "g", "r"]),
    "predict_net_constants_folded": (
        lambda n: (n.ConstantFill([], "k", shape=[3], value=2.0), n.Mul(["x", "k"], "y", broadcast=1),
                   n.Transpose("w", "wt"), n.MatMul(["x", "wt"], "z")),
        {"w": rand(5, 3)}, {"x": rand(2, 3)}, ["y", "z"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_converter_matches_onnxruntime(name):
    build, weights, feeds, outputs = CASES[name]
    check_same(net_of(build), weights, feeds, outputs)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_opsets(opset):
    build, weights, feeds, outputs = CASES["reductions_and_argmax"]
    model = check_same(net_of(build), weights, feeds, outputs, opset=opset)
    assert model.opset_import[0].version == opset
    for name in ("activations", "resize_norms", "more_caffe2_ops"):
        build, weights, feeds, outputs = CASES[name]
        check_same(net_of(build), weights, feeds, outputs, opset=opset)


def test_single_assignment_names():
    net = net_of(lambda n: (n.Relu("x", "x"), n.Relu("y", "y"), n.Sigmoid("y", "y")))
    model = export_model(net, inputs={"x": rand(2), "y": rand(2)}, outputs=["x", "y"])
    assert [i.name for i in model.graph.input] == ["x", "y"]
    outputs = [o.name for o in model.graph.output]
    assert len(set(outputs) | {"x", "y"}) == 4  # inputs keep their names; each write is a new one
    names = [out for node in model.graph.node for out in node.output]
    assert len(names) == len(set(names))


def test_gpu_placed_nets_trace_on_the_cpu():
    from pycaffe2.proto import caffe2_pb2
    gpu = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA, device_id=0)
    init = core.Net("init")
    init.GivenTensorFill([], "w", shape=[3], values=[1.0, 2.0, 3.0], device_option=gpu)
    predict = net_of(lambda n: (n.CopyCPUToGPU("x", "xg"), n.Mul(["xg", "w"], "yg", device_option=gpu),
                                n.CopyGPUToCPU("yg", "y")))
    model = export_model(predict, init.Proto(), {"x": (2, 3)}, outputs=["y"])
    (y,) = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.ones((2, 3), np.float32)})
    np.testing.assert_array_equal(y, [[1, 2, 3], [1, 2, 3]])


def test_init_net_dtypes_become_initializers():
    init = core.Net("init")
    init.GivenTensorFill([], "f", shape=[2], values=[1.5, 2.5])
    init.GivenTensorIntFill([], "i", shape=[2], values=[1, 2])
    init.GivenTensorInt64Fill([], "l", shape=[2], values=[3, 4])
    init.GivenTensorDoubleFill([], "d", shape=[2], values=[0.5, 0.25])
    init.GivenTensorBoolFill([], "b", shape=[2], values=[True, False])
    init.ConstantFill([], "c", shape=[2], value=7.0)
    predict = net_of(lambda n: (n.Add(["x", "f"], "xf"), n.Add(["xi", "i"], "ii"), n.Add(["xl", "l"], "ll"),
                                n.Add(["xd", "d"], "dd"), n.And(["xb", "b"], "bb"), n.Mul(["x", "c"], "xc")))
    feeds = {"x": rand(2), "xi": np.array([5, 6], np.int32), "xl": np.array([7, 8], np.int64),
             "xd": rand(2, dtype=np.float64), "xb": np.array([True, True])}
    model = check_same(predict, None, feeds, ["xf", "ii", "ll", "dd", "bb", "xc"], init=init.Proto())
    types = {t.name: t.data_type for t in model.graph.initializer}
    assert types == {"f": 1, "i": 6, "l": 7, "d": 11, "b": 9, "c": 1}


# ---------------------------------------------------------------- errors

def test_every_unexportable_op_is_named_at_once():
    net = net_of(lambda n: (n.Dropout("x", ["d", "mask"], is_test=0), n.Relu("d", "r"),
                            n.Dropout("r", ["e", "m2"], is_test=1), n.Mul(["e", "m2"], "y"),
                            n.InstanceNorm(["y4", "s", "b"], "c", order="NHWC")))
    with pytest.raises(ConversionError) as info:
        export_model(net, {"s": rand(3), "b": rand(3)}, {"x": (2, 3), "y4": (1, 2, 2, 3)}, outputs=["y", "c"])
    message = str(info.value)
    assert "3 ops cannot be exported" in message
    assert "op 0 (Dropout): training mode" in message
    assert "op 2 (Dropout): output 1 ('m2') is read later" in message
    assert "op 4 (InstanceNorm): order NHWC" in message


def test_op_type_without_a_converter():
    net = net_of(lambda n: n.LengthsSum(["x", "len"], "y"))
    with pytest.raises(ConversionError, match=r"op 0 \(LengthsSum\): no ONNX conversion for this op type"):
        export_model(net, None, {"x": (4, 2), "len": ((2,), "int32")}, inputs={"len": np.array([1, 3], np.int32)},
                     outputs=["y"])


@pytest.mark.parametrize("kwargs, match", [
    ({"input_shapes": {}}, "no shape for input\\(s\\) 'x'"),
    ({"input_shapes": {"x": (2,), "zz": (1,)}}, "'zz', which net 't' never reads"),
    ({"input_shapes": {"x": (2,)}, "opset": 12}, "opset 12 is not supported"),
    ({"input_shapes": {"x": (2,)}, "outputs": ["nope"]}, "output 'nope': no such tensor"),
    ({"input_shapes": {"x": (2,)}, "outputs": []}, "names no external_output"),
])
def test_export_errors(kwargs, match):
    net = net_of(lambda n: n.Relu("x", "y"))
    with pytest.raises(ConversionError, match=match):
        export_model(net, **kwargs)


def test_frontend_names():
    net = net_of(lambda n: n.Relu("x", "y"))
    net.external_output.append("y")
    model = frontend.caffe2_net_to_onnx_model(net, None, {"x": (onnx.TensorProto.FLOAT, (2, 3))})
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    graph = frontend.caffe2_net_to_onnx_graph(net, None, {"x": (onnx.TensorProto.FLOAT, (2, 3))})
    assert [o.name for o in graph.output] == ["y"]


# ---------------------------------------------------------------- the command line

def test_cli_convert_to_onnx(tmp_path, capsys):
    out = tmp_path / "lenet.onnx"
    code = cli.main(["convert", str(MODELS / "lenet"), str(out), "--input-shape", "data=2,1,28,28",
                     "--opset", "15"])
    assert code == 0, capsys.readouterr().err
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 15
    assert [p.name for p in tmp_path.iterdir()] == ["lenet.onnx"]  # nothing else written


def test_cli_export_errors(tmp_path, capsys):
    assert cli.main(["convert", str(MODELS / "lenet"), str(tmp_path / "x.onnx")]) == 2
    assert "no shape for input(s) 'data'" in capsys.readouterr().err
    assert cli.main(["convert", str(MODELS / "lenet"), str(tmp_path / "x.yaml"), "--opset", "13"]) == 2
    assert "apply to exports" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_never_overwrites_the_input(tmp_path, capsys):
    source = tmp_path / "m.onnx"
    source.write_bytes(b"not a model")
    assert cli.main(["convert", str(source), str(source)]) == 2
    assert source.read_bytes() == b"not a model"


def test_cli_without_onnx(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)  # `import onnx` raises ImportError
    for argv in (["convert", str(MODELS / "lenet"), str(tmp_path / "x.onnx"), "--input-shape", "data=1,1,28,28"],
                 ["run", str(tmp_path / "m.onnx")], ["validate", str(tmp_path / "m.onnx")]):
        assert cli.main(argv) == 2, argv
        assert "pip install 'pycaffe2[onnx]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


TINY = """
init_net:
  op:
    - {type: GivenTensorFill, output: [w], arg: {shape: [3], values: [1.0, -2.0, 3.0]}}
predict_net:
  name: tiny
  external_input: [x, w]
  external_output: [y]
  op:
    - {type: Mul, input: [x, w], output: [m]}
    - {type: Relu, input: [m], output: [y]}
input_shapes: {x: [2, 3]}
"""


@pytest.fixture
def stand_ins(monkeypatch):
    """Converters for the few ONNX ops the CLI rows use, where the converter modules lack them:
    the CLI is tested here, the converters in tests/test_onnx_backend.py."""
    from pycaffe2.onnx import registry

    def same(node, ctx):
        ctx.op(node.op_type, node.inputs, node.outputs)

    def reshape(node, ctx):  # its shape must be known: a fed shape makes the model traced
        shape = ctx.require(node.input(1), "shape")
        ctx.op("Reshape", [node.input(0)], [node.output(0), ctx.fresh("old")], shape=[int(d) for d in shape])

    registry.lookup("Relu", 17)  # the real converters first
    for op_type, fn in (("Mul", same), ("Relu", same)):
        if registry.lookup(op_type, 17) is None:
            monkeypatch.setitem(registry._CONVERTERS, op_type, [(1, fn)])
    # always this one: a Reshape whose shape is fed must need the traced translation
    monkeypatch.setitem(registry._CONVERTERS, "Reshape", [(1, reshape)])
    return registry


def tiny_onnx(tmp_path) -> Path:
    source, path = tmp_path / "tiny.yaml", tmp_path / "tiny.onnx"
    source.write_text(TINY)
    assert cli.main(["convert", str(source), str(path)]) == 0
    return path


def lenet_onnx(tmp_path) -> Path:
    from pycaffe2.onnx import registry
    missing = [t for t in ("Conv", "MaxPool", "Gemm", "Flatten", "Softmax") if registry.lookup(t, 17) is None]
    if missing:
        pytest.skip(f"the backend has no converters for {missing} yet")
    path = tmp_path / "lenet.onnx"
    assert cli.main(["convert", str(MODELS / "lenet"), str(path), "--input-shape", "data=2,1,28,28"]) == 0
    return path


def test_cli_run_onnx(tmp_path, capsys, stand_ins):
    path = tiny_onnx(tmp_path)
    np.save(tmp_path / "x.npy", np.array([[1, 1, 1], [-1, -1, -1]], np.float32))
    assert cli.main(["run", str(path), "--feed", f"x={tmp_path / 'x.npy'}", "--out", str(tmp_path / "r.npz"),
                     "--iters", "2"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "r.npz")["y"], [[1, 0, 3], [0, 2, 0]])
    capsys.readouterr()
    assert cli.main(["run", str(path)]) == 2
    assert "feed every input ('x' [2, 3] float32)" in capsys.readouterr().err
    assert cli.main(["run", str(path), "--feed", f"z={tmp_path / 'x.npy'}"]) == 2
    assert "feed 'z': not an input" in capsys.readouterr().err
    assert cli.main(["run", str(path), "--random-init"]) == 2
    assert "--random-init: not for .onnx models" in capsys.readouterr().err


def test_cli_run_lenet_onnx(tmp_path, capsys):
    path = lenet_onnx(tmp_path)
    data = rand(2, 1, 28, 28)
    np.save(tmp_path / "x.npy", data)
    assert cli.main(["run", str(path), "--feed", f"data={tmp_path / 'x.npy'}", "--out", str(tmp_path / "r.npz")]) == 0
    init, predict = bundled("lenet")
    ws = Workspace(seed=0)
    ws.RunNetOnce(init)
    ws.FeedBlob("data", data)
    ws.RunNetOnce(predict)
    got = np.load(tmp_path / "r.npz")["softmax"]
    assert rel_diff(ws.FetchBlob("softmax"), got) <= RTOL
    assert cli.main(["run", str(path)]) == 2
    assert "feed every input ('data' [2, 1, 28, 28] float32)" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["folder", "m.yaml", "m.json"])
def test_cli_convert_from_onnx(tmp_path, target, capsys, stand_ins):
    path = tiny_onnx(tmp_path)
    out = tmp_path / target
    assert cli.main(["convert", str(path), str(out)]) == 0, capsys.readouterr().err
    model = netfile.load_model(out)
    assert [op.type for op in model.predict_net.op] == ["Mul", "Relu"] and model.init_net is not None
    if target != "folder":
        assert model.input_shapes == {"x": ((2, 3), "float32")}
    else:
        assert sorted(p.name for p in out.iterdir()) == ["init_net.pb", "predict_net.pb"]
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # written atomically, nothing left
    x = np.array([[1, 1, 1], [-1, -1, -1]], np.float32)
    np.save(tmp_path / "x.npy", x)
    assert cli.main(["run", str(out), "--feed", f"x={tmp_path / 'x.npy'}", "--out", str(tmp_path / "r.npz")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "r.npz")["y"], [[1, 0, 3], [0, 2, 0]])


def test_cli_convert_from_onnx_to_one_net_file(tmp_path, capsys, stand_ins):
    path = tiny_onnx(tmp_path)
    assert cli.main(["convert", str(path), str(tmp_path / "m.pbtxt")]) == 2  # two nets, one file
    assert "needs .yaml, .yml or .json" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", "tiny.yaml"]


def traced_onnx(tmp_path) -> Path:
    """Reshape(x, shape) with the shape a graph input: translatable only at the first run."""
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "traced",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                               helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])])
    path = tmp_path / "traced.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_cli_traced_model_runs_but_does_not_convert(tmp_path, capsys, stand_ins):
    path = traced_onnx(tmp_path)
    assert cli.main(["convert", str(path), str(tmp_path / "out.yaml")]) == 2
    assert "cannot become a static net file" in capsys.readouterr().err
    assert not (tmp_path / "out.yaml").exists()
    np.save(tmp_path / "x.npy", rand(2, 3))
    np.save(tmp_path / "s.npy", np.array([3, 2], np.int64))
    assert cli.main(["run", str(path), "--feed", f"x={tmp_path / 'x.npy'}", "--feed",
                     f"shape={tmp_path / 's.npy'}"]) == 0
    assert "y: float32 [3, 2]" in capsys.readouterr().out
    assert cli.main(["validate", str(path)]) == 0


def test_cli_validate_onnx(tmp_path, capsys, stand_ins, monkeypatch):
    path = tiny_onnx(tmp_path)
    assert cli.main(["validate", str(path)]) == 0, capsys.readouterr()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    assert cli.main(["validate", str(bad), str(path), "--format", "json"]) == 2  # unreadable: exit 2
    out = capsys.readouterr().out
    assert '"kind": "file"' in out and "bad.onnx" in out
    broken = onnx.load(str(path))
    broken.graph.node[0].op_type = "NoSuchOp"
    onnx.save(broken, str(tmp_path / "broken.onnx"))
    assert cli.main(["validate", str(tmp_path / "broken.onnx"), "--format", "github"]) == 1
    assert "NoSuchOp" in capsys.readouterr().out
    monkeypatch.setitem(stand_ins._CONVERTERS, "Relu", [])  # translation fails: named node
    assert cli.main(["validate", str(path)]) == 1
    assert "Relu" in capsys.readouterr().out
