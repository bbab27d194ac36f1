"""Normalization family: each op and gradient op against NumPy references
written here in float64, the synchronized SpatialBN path against plain
SpatialBN on the whole batch, and gradient ops against numeric derivatives."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2 import netfile
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op

NETS = Path(__file__).resolve().parents[2] / "nets"
BN_IN = ["X", "scale", "bias", "mean", "var"]
BN_OUT = ["Y", "mean", "var", "saved_mean", "saved_inv_std"]  # running stats in place, as enforced


def channels_last(x, order):
    """x with its channel axis moved last (a reference helper)."""
    return np.moveaxis(x, 1, -1) if order == "NCHW" else x


def per_channel(v, x, order):
    """A [C] vector shaped to broadcast over x."""
    shape = [1] * x.ndim
    shape[1 if order == "NCHW" else -1] = -1
    return np.reshape(v, shape)


def batch_stats(x, order):
    """Per-channel mean and biased variance over every other axis, in float64."""
    rows = channels_last(x, order).reshape(-1, x.shape[1 if order == "NCHW" else -1]).astype(np.float64)
    return rows.mean(axis=0), rows.var(axis=0)


def bn_reference(x, scale, bias, mean, var, epsilon, order):
    inv_std = 1 / np.sqrt(var + epsilon)
    centered = x - per_channel(mean, x, order)
    return centered * per_channel(inv_std * scale, x, order) + per_channel(bias, x, order)


def bn_train_reference(x, scale, bias, running_mean, running_var, momentum=0.9, epsilon=1e-5, order="NCHW"):
    mean, var = batch_stats(x, order)
    y = bn_reference(x, scale, bias, mean, var, epsilon, order)
    return (y, momentum * running_mean + (1 - momentum) * mean,
            momentum * running_var + (1 - momentum) * var, mean, 1 / np.sqrt(var + epsilon))


def bn_inputs(shape, order, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    c = shape[1 if order == "NCHW" else -1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    return [x, rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype),
            rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype)]


def run_bn_train(inputs, args, sums=()):
    """Training SpatialBN with its running statistics in place."""
    names = BN_IN + ["sums", "sumsq"][:len(sums)]
    return run_op("SpatialBN", [*inputs, *sums], {"is_test": 0, **args},
                  input_names=names, output_names=BN_OUT)


SHAPES = [((2, 3, 4, 5), "NCHW"), ((2, 4, 5, 3), "NHWC"), ((3, 2, 7), "NCHW"), ((3, 7, 2), "NHWC"),
          ((2, 3, 2, 3, 2), "NCHW"), ((1, 2, 3, 2, 4), "NHWC"), ((4, 5, 1, 1), "NCHW")]


# ---- SpatialBN forward ----------------------------------------------------------------------

@pytest.mark.parametrize("shape, order", SHAPES)
@pytest.mark.parametrize("momentum, epsilon", [(0.9, 1e-5), (0.0, 1e-3), (1.0, 0.5)])
def test_spatial_bn_training(shape, order, momentum, epsilon):
    inputs = bn_inputs(shape, order)
    args = {"momentum": momentum, "epsilon": epsilon, "order": order}
    got = run_bn_train(inputs, args)
    expected = bn_train_reference(*inputs, momentum=momentum, epsilon=epsilon, order=order)
    for name, g, e in zip(BN_OUT, got, expected):
        assert g.dtype == np.float32 and g.shape == np.shape(e), name
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("shape, order", SHAPES)
def test_spatial_bn_test_mode(shape, order):
    inputs = bn_inputs(shape, order, seed=1)
    (y,) = check_reference("SpatialBN", inputs,
                           lambda x, s, b, m, v, **a: bn_reference(x, s, b, m, v, 1e-3, order),
                           {"is_test": 1, "epsilon": 1e-3, "order": order})
    assert y.dtype == np.float32


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 4), c=st.integers(1, 5), spatial=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       order=st.sampled_from(["NCHW", "NHWC"]), seed=st.integers(0, 2**16))
def test_spatial_bn_random_shapes(n, c, spatial, order, seed):
    shape = (n, c, *spatial) if order == "NCHW" else (n, *spatial, c)
    inputs = bn_inputs(shape, order, seed)
    if n * np.prod(spatial) == 1:
        return  # one value per channel: the variance is 0 and Y is just the bias
    got = run_bn_train(inputs, {"order": order})
    for g, e in zip(got, bn_train_reference(*inputs, order=order)):
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-3)


def test_nhwc_agrees_with_nchw():
    inputs = bn_inputs((3, 4, 5, 6), "NCHW", seed=2)
    nhwc = [np.ascontiguousarray(inputs[0].transpose(0, 2, 3, 1)), *inputs[1:]]
    a, b = run_bn_train(inputs, {"order": "NCHW"}), run_bn_train(nhwc, {"order": "NHWC"})
    np.testing.assert_allclose(a[0].transpose(0, 2, 3, 1), b[0], rtol=1e-5, atol=1e-5)
    for first, second in zip(a[1:], b[1:]):
        np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)


def test_large_mean_does_not_cancel():
    x = (np.random.default_rng(3).standard_normal((4, 2, 16, 16)) + 1e4).astype(np.float32)
    _, _, _, _, inv_std = run_bn_train([x, *bn_inputs((4, 2, 16, 16), "NCHW")[1:]], {})
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(batch_stats(x, "NCHW")[1] + 1e-5), rtol=2e-3)


def test_running_stats_update_in_place_over_iterations():
    inputs = bn_inputs((4, 3, 5, 5), "NCHW", seed=4)
    workspace = Workspace("bn")
    for name, value in zip(BN_IN, inputs[:3] + [np.zeros(0, np.float32)] * 2):  # empty: start at 0
        workspace.FeedBlob(name, value)
    net = caffe2_pb2.NetDef(name="train", external_input=BN_IN)
    net.op.append(make_op("SpatialBN", BN_IN, BN_OUT, {"momentum": 0.8}))
    workspace.CreateNet(net)
    mean, var = batch_stats(inputs[0], "NCHW")
    for step in range(1, 4):
        workspace.RunNet("train")
        decay = 0.8 ** step
        np.testing.assert_allclose(workspace.FetchBlob("mean"), (1 - decay) * mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(workspace.FetchBlob("var"), (1 - decay) * var, rtol=1e-5)


def test_empty_batch_keeps_running_stats():
    x, scale, bias, mean, var = bn_inputs((0, 3, 4), "NCHW")
    y, new_mean, new_var, saved_mean, saved_inv_std = run_bn_train([x, scale, bias, mean, var], {})
    assert y.shape == (0, 3, 4) and not saved_mean.any() and not saved_inv_std.any()
    np.testing.assert_array_equal(new_mean, mean)
    np.testing.assert_array_equal(new_var, var)


def test_float64_is_kept():
    inputs = bn_inputs((2, 3, 4), "NCHW", dtype=np.float64)
    assert all(v.dtype == np.float64 for v in run_bn_train(inputs, {}))
    assert run_op("SpatialBN", inputs, {"is_test": 1})[0].dtype == np.float64


# ---- the synchronized path: ChannelStats / ChannelBackpropStats ------------------------------

@pytest.mark.parametrize("shape, order", SHAPES[:4])
def test_channel_stats(shape, order):
    x = bn_inputs(shape, order)[0]
    rows = channels_last(x, order).reshape(-1, x.shape[1 if order == "NCHW" else -1]).astype(np.float64)
    sums = check_reference("ChannelStats", [x], lambda x, order: (rows.sum(0), np.square(rows).sum(0)),
                           {"order": order}, rtol=1e-5, atol=1e-3)
    assert all(s.dtype == np.float32 for s in sums)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_synchronized_spatial_bn_equals_whole_batch(order):
    """Two devices' shares: summed ChannelStats with num_batches=2 give the whole batch's BN."""
    shape = (6, 3, 4, 4) if order == "NCHW" else (6, 4, 4, 3)
    inputs = bn_inputs(shape, order, seed=5)
    whole = run_bn_train(inputs, {"order": order})
    parts = np.split(inputs[0], 2)
    stats = [run_op("ChannelStats", [part], {"order": order}) for part in parts]
    sums = [stats[0][k] + stats[1][k] for k in range(2)]
    shares = [run_bn_train([part, *inputs[1:]], {"order": order, "num_batches": 2}, sums) for part in parts]
    np.testing.assert_allclose(np.concatenate([s[0] for s in shares]), whole[0], rtol=1e-4, atol=1e-4)
    for share in shares:
        for k in range(1, 5):
            np.testing.assert_allclose(share[k], whole[k], rtol=1e-4, atol=1e-5, err_msg=BN_OUT[k])


def test_sync_example_net_matches_plain_spatial_bn():
    net = netfile.load_net(NETS / "sync_spatial_bn.yaml")
    inputs = bn_inputs((4, 3, 5, 5), "NCHW", seed=6)
    workspace = Workspace("sync")
    for name, value in zip(net.external_input, inputs):
        workspace.FeedBlob(name, value)
    workspace.RunNetOnce(net)
    expected = bn_train_reference(*inputs)
    np.testing.assert_allclose(workspace.FetchBlob("Y"), expected[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(workspace.FetchBlob("running_var"), expected[2], rtol=1e-5)


def bn_gradient_reference(x, scale, dy, mean, inv_std, order):
    """dX, dscale, dbias of training SpatialBN, written from the chain rule in float64."""
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    xhat = (x - per_channel(mean, x, order)) * per_channel(inv_std, x, order)
    reduce = tuple(a for a in range(x.ndim) if a != (1 if order == "NCHW" else x.ndim - 1))
    count = x.size // scale.size
    dxhat = dy * per_channel(scale, x, order)
    dx = per_channel(inv_std, x, order) * (dxhat - dxhat.mean(axis=reduce, keepdims=True)
                                           - xhat * (dxhat * xhat).sum(axis=reduce, keepdims=True) / count)
    return dx, (dy * xhat).sum(axis=reduce), dy.sum(axis=reduce)


@pytest.mark.parametrize("shape, order", SHAPES[:5])
def test_spatial_bn_gradient_and_backprop_stats(shape, order):
    inputs = bn_inputs(shape, order, seed=7)
    _, _, _, mean, inv_std = run_bn_train(inputs, {"order": order})
    dy = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    grad_inputs = [inputs[0], inputs[1], dy, mean, inv_std]
    got = check_reference("SpatialBNGradient", grad_inputs,
                          lambda *_, **__: bn_gradient_reference(*grad_inputs, order), {"order": order},
                          rtol=1e-3, atol=1e-3)
    if order == "NCHW":  # Caffe2's ChannelBackpropStats is NCHW only
        stats = run_op("ChannelBackpropStats", [inputs[0], mean, inv_std, dy])
        np.testing.assert_allclose(stats[0], got[1], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stats[1], got[2], rtol=1e-5, atol=1e-5)


def test_synchronized_gradient_equals_whole_batch():
    """Per-share SpatialBNGradient with all-reduced ChannelBackpropStats (num_batches=2)."""
    x, scale, *_ = inputs = bn_inputs((4, 3, 3, 3), "NCHW", seed=9)
    _, _, _, mean, inv_std = run_bn_train(inputs, {})
    dy = np.random.default_rng(10).standard_normal(x.shape).astype(np.float32)
    whole = run_op("SpatialBNGradient", [x, scale, dy, mean, inv_std])
    parts = list(zip(np.split(x, 2), np.split(dy, 2)))
    stats = [run_op("ChannelBackpropStats", [xp, mean, inv_std, dyp]) for xp, dyp in parts]
    aggregate = [stats[0][k] + stats[1][k] for k in range(2)]
    shares = [run_op("SpatialBNGradient", [xp, scale, dyp, mean, inv_std, *aggregate], {"num_batches": 2})
              for xp, dyp in parts]
    np.testing.assert_allclose(np.concatenate([s[0] for s in shares]), whole[0], rtol=1e-4, atol=1e-5)
    for share in shares:  # each share's parameter gradient is the whole one / num_batches
        np.testing.assert_allclose(share[1] * 2, whole[1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(share[2] * 2, whole[2], rtol=1e-4, atol=1e-5)


# ---- gradients against numeric differentiation of the forward ops ---------------------------

def tiny(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def numeric_bn_train_gradient(inputs, wrt, dy, args, delta=1e-4):
    """d<Y, dY>/d inputs[wrt] of training SpatialBN, its running stats in place (which
    testing.numeric_gradient cannot name)."""
    value = inputs[wrt]
    gradient = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        sides = []
        for step in (delta, -delta):
            trial = [v.copy() for v in inputs]
            trial[wrt][index] += step
            sides.append(np.sum(run_bn_train(trial, args)[0] * dy))
        gradient[index] = (sides[0] - sides[1]) / (2 * delta)
    return gradient


@pytest.mark.parametrize("shape, order", [((2, 3, 2, 2), "NCHW"), ((2, 2, 2, 3), "NHWC")])
def test_spatial_bn_gradient_is_numeric_derivative_of_training(shape, order):
    inputs = bn_inputs(shape, order, seed=11, dtype=np.float64)
    args = {"order": order}
    _, _, _, mean, inv_std = run_bn_train(inputs, args)
    dy = tiny(shape, 12)
    got = run_op("SpatialBNGradient", [inputs[0], inputs[1], dy, mean, inv_std], args)
    for out_index, in_index in ((0, 0), (1, 1), (2, 2)):
        np.testing.assert_allclose(got[out_index], numeric_bn_train_gradient(inputs, in_index, dy, args),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_spatial_bn_gradient_test_mode(order):
    shape = (2, 3, 2, 2) if order == "NCHW" else (2, 2, 2, 3)
    x, scale, bias, mean, var = bn_inputs(shape, order, seed=13, dtype=np.float64)
    dy = tiny(shape, 14)
    args = {"is_test": 1, "order": order, "epsilon": 1e-3}
    check_gradient_op("SpatialBN", [x, scale, bias, mean, var], "SpatialBNGradient",
                      [x, scale, dy, mean, var], {0: 0, 1: 1, 2: 2}, [dy], args, atol=1e-4, rtol=1e-4)


# ---- InstanceNorm / GroupNorm / LayerNorm ----------------------------------------------------

def group_norm_reference(x, gamma, beta, groups, epsilon, order):
    """Y, mean [N, G], inv_std [N, G] with channels grouped in order."""
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    rows = xc.reshape(x.shape[0], groups, -1).astype(np.float64)
    mean, var = rows.mean(axis=2), rows.var(axis=2)
    inv_std = 1 / np.sqrt(var + epsilon)
    y = ((rows - mean[..., None]) * inv_std[..., None]).reshape(xc.shape)
    y = y * per_channel(gamma, xc, "NCHW") + per_channel(beta, xc, "NCHW")
    return (np.moveaxis(y, 1, -1) if order == "NHWC" else y), mean, inv_std


@pytest.mark.parametrize("shape, order", SHAPES)
def test_instance_norm(shape, order):
    x, scale, bias, _, _ = bn_inputs(shape, order, seed=15)
    c = scale.size
    got = check_reference("InstanceNorm", [x, scale, bias],
                          lambda x, s, b, **a: group_norm_reference(x, s, b, c, 1e-4, order),
                          {"order": order, "epsilon": 1e-4}, num_outputs=3, rtol=1e-3, atol=1e-3)
    (y,) = run_op("InstanceNorm", [x, scale, bias], {"order": order, "epsilon": 1e-4})
    np.testing.assert_allclose(y, got[0])
    assert all(v.dtype == np.float32 for v in got)


@pytest.mark.parametrize("shape, order, group", [((2, 6, 3, 2), "NCHW", 3), ((2, 3, 2, 6), "NHWC", 2),
                                                 ((3, 4, 5), "NCHW", 4), ((2, 4), "NCHW", 2),
                                                 ((1, 2, 2, 2, 8), "NHWC", 8), ((2, 4, 3), "NHWC", 1)])
def test_group_norm(shape, order, group):
    x, gamma, beta, _, _ = bn_inputs(shape, order, seed=16)
    args = {"group": group, "order": order, "is_test": 0}
    check_reference("GroupNorm", [x, gamma, beta],
                    lambda x, g, b, **a: group_norm_reference(x, g, b, group, 1e-5, order), args,
                    num_outputs=3, rtol=1e-3, atol=1e-3)


def layer_norm_reference(x, *affine, axis=1, epsilon=1e-5, elementwise_affine=0):
    axis %= x.ndim
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
    mean, std = rows.mean(axis=1), np.sqrt(rows.var(axis=1) + epsilon)
    y = ((rows - mean[:, None]) / std[:, None]).reshape(x.shape)
    if elementwise_affine:
        y = y * affine[0].reshape(x.shape[axis:]) + affine[1].reshape(x.shape[axis:])
    stat = x.shape[:axis] + (1,)
    return y, mean.reshape(stat), std.reshape(stat)


@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), -1),
                                         ((2, 3, 4), 0), ((2, 1, 5, 2), -3)])
@pytest.mark.parametrize("affine", [0, 1])
def test_layer_norm(shape, axis, affine):
    rng = np.random.default_rng(17)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    inner = shape[axis % len(shape):]
    params = [rng.standard_normal(inner).astype(np.float32) for _ in range(2)] if affine else []
    args = {"axis": axis, "epsilon": 1e-4, "elementwise_affine": affine}
    got = check_reference("LayerNorm", [x, *params], layer_norm_reference, args, rtol=1e-3, atol=1e-3)
    assert all(v.dtype == np.float32 for v in got)


@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
@pytest.mark.parametrize("saved", [True, False])
def test_instance_norm_gradient(order, saved):
    shape = (2, 3, 2, 2) if order == "NCHW" else (2, 2, 2, 3)
    x, scale, bias = tiny(shape, 18), tiny(3, 19), tiny(3, 20)
    args = {"order": order}
    _, mean, inv_std = run_op("InstanceNorm", [x, scale, bias], args, num_outputs=3)
    dy = tiny(shape, 21)
    grad_inputs = [x, scale, bias, dy] + ([mean, inv_std] if saved else [])
    check_gradient_op("InstanceNorm", [x, scale, bias], "InstanceNormGradient", grad_inputs,
                      {0: 0, 1: 1, 2: 2}, [dy], args, num_outputs=1, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("order, shape", [("NCHW", (2, 4, 2, 2)), ("NHWC", (2, 2, 3, 4)), ("NCHW", (3, 4))])
def test_group_norm_gradient(order, shape):
    x, gamma, beta = tiny(shape, 22), tiny(4, 23), tiny(4, 24)
    args = {"order": order, "group": 2}
    _, mean, inv_std = run_op("GroupNorm", [x, gamma, beta], {**args, "is_test": 0}, num_outputs=3)
    dy = tiny(shape, 25)
    check_gradient_op("GroupNorm", [x, gamma, beta], "GroupNormGradient", [dy, x, gamma, beta, mean, inv_std],
                      {0: 0, 1: 1, 2: 2}, [dy], args, num_outputs=1, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 2, 3), 1)])
@pytest.mark.parametrize("affine", [0, 1])
def test_layer_norm_gradient(shape, axis, affine):
    x = tiny(shape, 26, scale=2)
    params = [tiny(shape[axis:], 27), tiny(shape[axis:], 28)] if affine else []
    args = {"axis": axis, "elementwise_affine": affine}
    y, mean, std = run_op("LayerNorm", [x, *params], args)
    dy = tiny(shape, 29)
    wrt = {0: 0, 1: 1, 2: 2} if affine else {0: 0}
    check_gradient_op("LayerNorm", [x, *params], "LayerNormGradient", [dy, y, mean, std, x, *params[:1]],
                      wrt, [dy, None, None], args, atol=1e-4, rtol=1e-4)


# ---- errors ----------------------------------------------------------------------------------

def test_errors_name_inputs_and_shapes():
    x, scale, bias, mean, var = bn_inputs((2, 3, 4, 4), "NCHW")
    with pytest.raises((OpFailure, NetError), match=r"scale has shape \[4\] but X \[2, 3, 4, 4\] needs 3"):
        run_op("SpatialBN", [x, np.ones(4, np.float32), bias, mean, var], {"is_test": 1})
    with pytest.raises((OpFailure, NetError), match=r"dY has shape \[2, 3, 4\] but X has \[2, 3, 4, 4\]"):
        run_op("SpatialBNGradient", [x, scale, x[..., 0], mean, var])
    with pytest.raises((OpFailure, NetError), match="group 2 does not divide the 3 channels"):
        run_op("GroupNorm", [x, scale, bias], {"group": 2})
    with pytest.raises((OpFailure, NetError), match="num_batches.* needs the sums and sumsq inputs"):
        run_bn_train([x, scale, bias, mean, var], {"num_batches": 2})
    with pytest.raises((OpFailure, NetError), match=r"gamma has shape \[3\] but X \[2, 3, 4, 4\] needs 16"):
        run_op("LayerNorm", [x, scale, bias], {"axis": 2, "elementwise_affine": 1})
    with pytest.raises((OpFailure, NetError), match=r"elementwise_affine=0 takes 1 input\(s\), got 3"):
        run_op("LayerNorm", [x, scale, bias])


# ---- gradient makers: registered gradients against central differences -----------------------
# The loss is 1/2 |Y|^2, to which normalization is nearly blind (dX ~ epsilon / (var + epsilon)),
# so the checks use a large epsilon to keep the gradients of X well away from zero.

def maker_inputs(shape, order, seed, count=3):
    rng = np.random.default_rng(seed)
    c = shape[1 if order == "NCHW" else -1]
    return [rng.standard_normal(shape) * 1.5 + 1, *(rng.standard_normal(c) for _ in range(count - 1))]


MAKER_SHAPES = [((2, 3, 2, 2), "NCHW"), ((2, 2, 2, 3), "NHWC"), ((3, 2, 3), "NCHW")]


@pytest.mark.parametrize("shape, order", MAKER_SHAPES)
@pytest.mark.parametrize("is_test", [0, 1])
@pytest.mark.parametrize("input_to_check", [0, 1, 2])
def test_spatial_bn_registered_gradient(shape, order, is_test, input_to_check):
    x, scale, bias, mean = maker_inputs(shape, order, 30, count=4)
    var = np.random.default_rng(31).random(scale.size) + 0.5
    outputs = ["Y"] if is_test else BN_OUT
    op = make_op("SpatialBN", BN_IN, outputs, {"is_test": is_test, "order": order, "epsilon": 0.5})
    report = check_op_gradient(op, [x, scale, bias, mean, var], input_to_check)
    assert report.ok, report


@pytest.mark.parametrize("is_test, reads", [(0, ["saved_mean", "saved_inv_std"]), (1, ["mean", "var"])])
def test_spatial_bn_maker_reads_statistics_by_mode(is_test, reads):
    outputs = ["Y"] if is_test else BN_OUT
    op = make_op("SpatialBN", BN_IN, outputs, {"is_test": is_test})
    (grad_op,), g_input = GetGradientForOp(op, ["Y_grad"] + [None] * (len(outputs) - 1))
    assert list(grad_op.input) == ["X", "scale", "Y_grad", *reads]
    assert list(grad_op.output) == ["X_grad", "scale_grad", "bias_grad"]
    assert g_input == ["X_grad", "scale_grad", "bias_grad", None, None]


def run_ops(workspace, values, ops):
    for name, value in values.items():
        workspace.FeedBlob(name, value)
    workspace.RunOperatorsOnce(ops)


def test_synchronized_spatial_bn_registered_gradient():
    """num_batches=2 over two devices' shares of a batch, each with its own copy of the
    parameters. The maker reads the aggregate dscale and dbias from <scale>_grad and
    <bias>_grad, which the data-parallel builder fills (all-reduced ChannelBackpropStats)
    before the gradient op; summed over devices, the parameter gradients are the whole ones."""
    devices = ("a", "b")
    rng = np.random.default_rng(32)
    scale, bias, mean = rng.standard_normal((3, 2))
    values = {}
    for d in devices:
        values.update({f"X_{d}": rng.standard_normal((2, 2, 2, 2)) * 1.5 + 1, f"scale_{d}": scale,
                       f"bias_{d}": bias, f"mean_{d}": mean, f"var_{d}": rng.random(2) + 0.5})
    stats = [make_op("ChannelStats", [f"X_{d}"], [f"sum_{d}", f"sumsq_{d}"]) for d in devices]
    stats += [make_op("Sum", ["sum_a", "sum_b"], ["sums"]), make_op("Sum", ["sumsq_a", "sumsq_b"], ["sumsq"])]
    bn = [make_op("SpatialBN", [f"X_{d}", f"scale_{d}", f"bias_{d}", f"mean_{d}", f"var_{d}", "sums", "sumsq"],
                  [f"Y_{d}", f"mean_{d}", f"var_{d}", f"saved_mean_{d}", f"saved_inv_std_{d}"],
                  {"num_batches": 2, "epsilon": 0.5}) for d in devices]
    workspace = Workspace("sync_bn_gradient")

    def loss():
        run_ops(workspace, values, stats + bn)
        return sum(0.5 * np.sum(np.square(workspace.FetchBlob(f"Y_{d}"))) for d in devices)

    def numeric(names, delta=1e-4):  # perturbs the blobs `names` together (a shared parameter)
        gradient = np.zeros(values[names[0]].shape)
        for index in np.ndindex(gradient.shape):
            sides = []
            for step in (delta, -delta):
                for name in names:
                    values[name] = values[name].copy()
                    values[name][index] += step
                sides.append(loss())
                for name in names:
                    values[name][index] -= step
            gradient[index] = (sides[0] - sides[1]) / (2 * delta)
        return gradient

    loss()
    backward = [make_op("ChannelBackpropStats", [f"X_{d}", f"saved_mean_{d}", f"saved_inv_std_{d}", f"Y_{d}"],
                        [f"dscale_{d}", f"dbias_{d}"]) for d in devices]
    backward += [make_op("Sum", [f"d{p}_a", f"d{p}_b"], [f"{p}_{d}_grad"]) for p in ("scale", "bias") for d in devices]
    for d, op in zip(devices, bn):
        (grad_op,), _ = GetGradientForOp(op, [f"Y_{d}_grad", None, None, None, None])
        assert list(grad_op.input)[5:] == [f"scale_{d}_grad", f"bias_{d}_grad"]
        backward.append(grad_op)
    run_ops(workspace, {f"Y_{d}_grad": workspace.FetchBlob(f"Y_{d}") for d in devices}, backward)
    grads = {name: workspace.FetchBlob(f"{name}_grad") for name in
             ("X_a", "X_b", "scale_a", "scale_b", "bias_a", "bias_b")}
    for d in devices:
        np.testing.assert_allclose(grads[f"X_{d}"], numeric([f"X_{d}"]), rtol=1e-4, atol=1e-6)
    for p in ("scale", "bias"):
        np.testing.assert_allclose(grads[f"{p}_a"] + grads[f"{p}_b"], numeric([f"{p}_a", f"{p}_b"]),
                                   rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape, order", MAKER_SHAPES)
@pytest.mark.parametrize("saved", [0, 1, 2])
@pytest.mark.parametrize("input_to_check", [0, 1, 2])
def test_instance_norm_registered_gradient(shape, order, saved, input_to_check):
    op = make_op("InstanceNorm", ["X", "scale", "bias"], ["Y", "saved_mean", "saved_inv_std"][:1 + saved],
                 {"order": order, "epsilon": 0.5})
    report = check_op_gradient(op, maker_inputs(shape, order, 33), input_to_check)
    assert report.ok, report


@pytest.mark.parametrize("shape, order, group", [((2, 4, 2, 2), "NCHW", 2), ((2, 2, 2, 4), "NHWC", 2),
                                                 ((3, 4), "NCHW", 4), ((2, 3, 3), "NCHW", 1)])
@pytest.mark.parametrize("input_to_check", [0, 1, 2])
def test_group_norm_registered_gradient(shape, order, group, input_to_check):
    op = make_op("GroupNorm", ["X", "gamma", "beta"], ["Y", "mean", "inv_std"],
                 {"group": group, "order": order, "is_test": 0, "epsilon": 0.5})
    report = check_op_gradient(op, maker_inputs(shape, order, 34), input_to_check)
    assert report.ok, report


def test_group_norm_gradient_needs_saved_statistics():
    op = make_op("GroupNorm", ["X", "gamma", "beta"], ["Y"], {"group": 2})
    with pytest.raises(GradientError, match="needs the mean and inv_std outputs"):
        GetGradientForOp(op, ["Y_grad"])


@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 2, 3), 1), ((2, 3, 2), -1)])
@pytest.mark.parametrize("affine", [0, 1])
def test_layer_norm_registered_gradient(shape, axis, affine):
    rng = np.random.default_rng(35)
    params = [rng.standard_normal(shape[axis:]) for _ in range(2)] if affine else []
    inputs = [rng.standard_normal(shape) * 1.5 + 1, *params]
    op = make_op("LayerNorm", ["X", "gamma", "beta"][:len(inputs)], ["Y", "mean", "std"],
                 {"axis": axis, "elementwise_affine": affine, "epsilon": 0.5})
    for input_to_check in range(len(inputs)):
        report = check_op_gradient(op, inputs, input_to_check)
        assert report.ok, report
