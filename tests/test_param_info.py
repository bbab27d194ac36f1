"""ModelHelper.param_info / get_param_info: the ParameterInfo records of a model's params."""
import numpy as np
import pytest

from pycaffe2 import brew, core, workspace
from pycaffe2.model_helper import ModelHelper
from pycaffe2.modeling.parameter_info import ParameterInfo


def _model():
    model = ModelHelper(name="pi")
    fc = brew.fc(model, "data", "fc", dim_in=3, dim_out=2)
    loss = model.net.AveragedLoss(model.net.SquaredL2Distance([fc, "label"], "dist"), "loss")
    return model, loss


def test_get_param_info_gives_create_params_record():
    model, _ = _model()
    w, b = model.params
    info = model.get_param_info(w)
    assert isinstance(info, ParameterInfo)
    assert info.blob == w and info.shape == [2, 3] and info.size == 6
    assert model.get_param_info(b).shape == [2]
    assert model.get_param_info(core.BlobReference("nothing")) is None
    with pytest.raises(TypeError):
        model.get_param_info("fc_w")


def test_param_info_numbers_params_and_follows_gradients():
    model, loss = _model()
    records = model.param_info()
    assert [r.param_id for r in records] == [0, 1]
    assert [r.name for r in records] == ["fc_w", "fc_b"]
    assert records[0].shape == [2, 3] and records[0].grad is None
    assert model.param_info(grad_type=core.BlobReference) == []
    model.AddGradientOperators([loss])
    records = model.param_info()
    assert [r.grad for r in records] == ["fc_w_grad", "fc_b_grad"]
    assert model.param_info(id=1) is records[1]
    assert model.param_info(grad_type=core.BlobReference) == records
    assert model.param_info(grad_type=core.GradientSlice) == []
    with pytest.raises(IndexError):
        model.param_info(id=2)
    with pytest.raises(ValueError):
        model.param_info(id=0, grad_type=core.BlobReference)


def test_param_info_grows_with_added_params_and_runs():
    model, _ = _model()
    assert len(model.param_info()) == 2
    extra = model.param_init_net.ConstantFill([], "extra", shape=[4], value=1.0)
    model.AddParameter(extra)
    assert [r.param_id for r in model.param_info()] == [0, 1, 2]
    assert model.param_info(id=2).shape == [4]
    workspace.ResetWorkspace()
    workspace.RunNetOnce(model.param_init_net)
    assert workspace.FetchBlob("fc_w").shape == tuple(model.param_info(id=0).shape)
    np.testing.assert_array_equal(workspace.FetchBlob("extra"), np.ones(4, np.float32))


def test_shared_param_model_shares_records():
    model, _ = _model()
    other = ModelHelper(name="other", param_model=model)
    assert other.get_param_info(model.params[0]) is model.get_param_info(model.params[0])
