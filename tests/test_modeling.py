"""pycaffe2.modeling: initializers (how brew helpers fill parameters) and parameter_info,
moved from model_helper, which re-exports them."""
import numpy as np
import pytest

from pycaffe2 import brew, core, model_helper, workspace
from pycaffe2.modeling import initializers, parameter_info
from pycaffe2.modeling.initializers import ExternalInitializer, Initializer, update_initializer
from pycaffe2.modeling.parameter_info import ParameterInfo, ParameterTags


def test_model_helper_re_exports_the_same_objects():
    assert model_helper.Initializer is initializers.Initializer
    assert model_helper.ExternalInitializer is initializers.ExternalInitializer
    assert model_helper.update_initializer is initializers.update_initializer
    assert model_helper.ParameterTags is parameter_info.ParameterTags
    assert model_helper.ParameterInfo is parameter_info.ParameterInfo


def init_op_types(model):
    return [op.type for op in model.param_init_net.Proto().op]


def test_fc_initializers_follow_caffe2s_rule():
    model = model_helper.ModelHelper(name="init")
    data = model.net.AddExternalInput("data")
    fc1 = brew.fc(model, data, "fc1", dim_in=1, dim_out=1)  # defaults: XavierFill, ConstantFill
    fc2 = brew.fc(model, fc1, "fc2", dim_in=1, dim_out=1, WeightInitializer=Initializer)  # class, default op
    brew.fc(model, fc2, "fc3", dim_in=1, dim_out=1, WeightInitializer=Initializer,
            weight_init=("ConstantFill", {"value": 2.0}))  # class and tuple: the tuple's op
    brew.fc(model, "fc3", "fc4", dim_in=1, dim_out=1, WeightInitializer=ExternalInitializer)  # no op
    assert init_op_types(model) == ["XavierFill", "ConstantFill", "XavierFill", "ConstantFill",
                                    "ConstantFill", "ConstantFill", "ConstantFill"]
    assert [str(p) for p in model.params] == ["fc1_w", "fc1_b", "fc2_w", "fc2_b", "fc3_w", "fc3_b",
                                             "fc4_w", "fc4_b"]
    assert [str(w) for w in model.weights] == ["fc1_w", "fc2_w", "fc3_w", "fc4_w"]
    workspace.ResetWorkspace()
    try:
        workspace.RunNetOnce(model.param_init_net)
        np.testing.assert_array_equal(workspace.FetchBlob("fc3_w"), np.full((1, 1), 2.0, np.float32))
        assert not workspace.HasBlob("fc4_w")  # the user feeds it
    finally:
        workspace.ResetWorkspace()


def test_update_initializer_and_create_param():
    init = update_initializer(None, None, ("GaussianFill", {"std": 0.5}))
    assert (init.operator_name, init.operator_kwargs) == ("GaussianFill", {"std": 0.5})
    net = core.Net("init")
    info = init.create_param("w", net, [2, 3])
    assert isinstance(info, ParameterInfo) and info.name == "w" and str(info) == "w"
    assert info.shape == [2, 3] and info.size == 6 and info.length == 1 and info.parameter is info.blob
    op = net.Proto().op[0]
    assert op.type == "GaussianFill" and list(op.output) == ["w"]
    external = ExternalInitializer().create_param("x", net, [4])
    assert external.name == "x" and len(net.Proto().op) == 1
    with pytest.raises(ValueError, match="already has an operator"):
        init.update("ConstantFill", {})
    empty = Initializer()
    empty.update("ConstantFill", {"value": 1.0})
    assert empty.operator_name == "ConstantFill"


def test_parameter_info_checks():
    with pytest.raises(TypeError, match="BlobReference"):
        ParameterInfo(0, "w")
    info = ParameterInfo(0, core.BlobReference("w"), shape=[3], length=0)
    assert info.length == 1
    with pytest.raises(ValueError, match="no gradient"):
        info.grad_type()
    info.grad = core.BlobReference("w_grad")
    assert info.grad_type() is core.BlobReference
    info.optimizer = "sgd"
    with pytest.raises(ValueError, match="already has an optimizer"):
        info.optimizer = "adam"
    assert ParameterTags.WEIGHT == "WEIGHT" and ParameterTags.COMPUTED_PARAM == "COMPUTED_PARAM"


def test_a_custom_initializer_may_return_the_blob():
    class Ones(Initializer):
        def create_param(self, param_name, init_net, shape):
            return init_net.ConstantFill([], param_name, shape=list(shape), value=1.0)
    model = model_helper.ModelHelper(name="custom")
    blob = model.create_param("ones", [2], Ones())
    assert str(blob) == "ones" and [str(p) for p in model.params] == ["ones"]


def test_pseudo_fp16_initializers_keep_both_precisions():
    from pycaffe2.modeling.initializers import PseudoFP16Initializer, ReversePseudoFP16Initializer
    model = model_helper.ModelHelper(name="fp16")
    brew.fc(model, "data", "fc1", dim_in=3, dim_out=2, WeightInitializer=PseudoFP16Initializer)
    brew.fc(model, "fc1", "fc2", dim_in=2, dim_out=2, WeightInitializer=ReversePseudoFP16Initializer,
            weight_init=("ConstantFill", {"value": 0.1}))
    ops = [(op.type, list(op.input), list(op.output)) for op in model.param_init_net.Proto().op]
    assert ops[:2] == [("XavierFill", [], ["fc1_w_fp32"]), ("FloatToHalf", ["fc1_w_fp32"], ["fc1_w"])]
    assert ops[3:5] == [("ConstantFill", [], ["fc2_w"]), ("FloatToHalf", ["fc2_w"], ["fc2_w_fp16"])]
    assert [str(w) for w in model.weights] == ["fc1_w", "fc2_w"]  # the parameter, not its copy
    info = PseudoFP16Initializer("ConstantFill", value=2.0).create_param("p", core.Net("n"), [2])
    assert str(info.blob) == "p" and str(info.blob_copy[core.DataType.FLOAT]) == "p_fp32"
    workspace.ResetWorkspace()
    try:
        workspace.RunNetOnce(model.param_init_net)
        master, half = workspace.FetchBlob("fc1_w_fp32"), workspace.FetchBlob("fc1_w")
        assert half.dtype == np.float16 and master.dtype == np.float32 and half.shape == (2, 3)
        np.testing.assert_array_equal(half, master.astype(np.float16))
        np.testing.assert_array_equal(workspace.FetchBlob("fc2_w_fp16"), np.full((2, 2), 0.1, np.float16))
    finally:
        workspace.ResetWorkspace()
