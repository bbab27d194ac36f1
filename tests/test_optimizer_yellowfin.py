"""optimizer.build_yellowfin / YellowFinOptimizer: the net it builds (as Caffe2 builds
it) and that it trains a small linear regression."""
import numpy as np
import pytest

from pycaffe2 import core, optimizer, workspace
from tests.test_optimizer_adaptive import fresh_workspace, regression, train  # noqa: F401


def test_build_yellowfin_trains():
    model = regression()
    opt = optimizer.build_yellowfin(model, base_learning_rate=0.1, beta=0.99)
    assert isinstance(opt, optimizer.YellowFinOptimizer)
    first, last = train(model, 300)
    assert last < first / 1000
    lr, mu = workspace.FetchBlob("pred_w_lr_avg"), workspace.FetchBlob("pred_w_mu_avg")
    assert lr.shape == (1,) and lr[0] != np.float32(0.1) and 0 < mu[0] < 1  # tuned as it went


def test_yellowfin_net_is_caffe2s():
    model = regression()
    opt = optimizer.build_yellowfin(model, base_learning_rate=0.2, mu=0.1, curv_win_width=7)
    ops = [op for op in model.net.Proto().op if op.type == "YellowFin"]
    assert len(ops) == 2
    state = ["pred_w", "pred_w_moment", "pred_w_lr_avg", "pred_w_mu_avg", "pred_w_curv_win",
             "pred_w_g_avg", "pred_w_g2_avg", "pred_w_scalars_memory"]
    assert list(ops[0].input) == state + ["pred_w_grad", "optimizer_iteration"]
    assert list(ops[0].output) == state
    args = {a.name: a for a in ops[0].arg}
    assert args["curv_win_width"].i == 7 and abs(args["beta"].f - 0.999) < 1e-7
    workspace.RunNetOnce(model.param_init_net)
    assert workspace.FetchBlob("pred_w_curv_win").shape == (7,)
    assert workspace.FetchBlob("pred_b_lr_avg")[0] == np.float32(0.2)
    assert workspace.FetchBlob("pred_b_mu_avg")[0] == np.float32(0.1)
    assert workspace.FetchBlob("pred_b_scalars_memory").shape == (5,)
    local, shared = opt.get_auxiliary_parameters()
    assert "pred_w_curv_win" in local and "pred_b_moment" in local and list(shared) == ["optimizer_iteration"]


def test_yellowfin_refuses_sparse_gradients_and_bad_alpha():
    net, init = core.Net("n"), core.Net("i")
    with pytest.raises(NotImplementedError, match="sparse"):
        optimizer.YellowFinOptimizer()(net, init, "w", core.GradientSlice("idx", "vals"))
    with pytest.raises(ValueError, match="alpha"):
        optimizer.YellowFinOptimizer(alpha=0.0)(net, init, "w", "w_grad")
