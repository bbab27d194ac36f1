"""batch_norm family (SpatialBN, SpatialBNGradient, ChannelStats, ChannelBackpropStats):
each op against NumPy references written here in float64 (on the CPU and on CUDA),
the synchronized SpatialBN path against plain SpatialBN on the whole batch,
gradient ops against numeric derivatives, shape inference against the kernels,
errors (one message from inference and both kernels), and the CUDA kernels
against their CPU twins where the references do not reach (training mode,
num_batches, the gradient op, large shapes)."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2 import netfile
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import central_differences, check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

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


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, order", SHAPES)
def test_spatial_bn_test_mode(shape, order, device):
    inputs = bn_inputs(shape, order, seed=1)
    (y,) = check_reference("SpatialBN", inputs,
                           lambda x, s, b, m, v, **a: bn_reference(x, s, b, m, v, 1e-3, order),
                           {"is_test": 1, "epsilon": 1e-3, "order": order}, device=device)
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

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, order", SHAPES[:4])
def test_channel_stats(shape, order, device):
    x = bn_inputs(shape, order)[0]
    rows = channels_last(x, order).reshape(-1, x.shape[1 if order == "NCHW" else -1]).astype(np.float64)
    sums = check_reference("ChannelStats", [x], lambda x, order: (rows.sum(0), np.square(rows).sum(0)),
                           {"order": order}, rtol=1e-5, atol=1e-3, device=device)
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

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, order", [((0, 3, 2, 2), "NCHW"), ((0, 2, 2, 3), "NHWC")])
def test_empty_batch_gradient_is_zero_whatever_the_aggregates(shape, order, device):
    """Caffe2: a share with no examples contributes dscale = dbias = 0, not aggregate / num_batches."""
    x = np.zeros(shape, np.float32)
    ones = np.ones(3, np.float32)
    inputs = [x, ones, x, ones, ones, ones * 4, ones * 2]
    zero = np.zeros(3)
    check_reference("SpatialBNGradient", inputs, lambda x, *_, **__: (x, zero, zero),
                    {"num_batches": 2, "order": order}, num_outputs=3, device=device)


# ---- gradients against numeric differentiation of the forward ops ---------------------------

def tiny(shape, seed, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def numeric_bn_train_gradient(inputs, wrt, dy, args, delta=1e-4):
    """d<Y, dY>/d inputs[wrt] of training SpatialBN, its running stats in place (which
    testing.numeric_gradient cannot name)."""
    trial = [v.copy() for v in inputs]
    return central_differences(
        lambda: float(np.sum(run_bn_train([v.copy() for v in trial], args)[0] * dy)), trial[wrt], delta)


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

# ---- errors: inference and both kernels give one message ------------------------------------

def error_inputs():
    return bn_inputs((2, 3, 4, 4), "NCHW")


# (op type, inputs, args, output count, message)
ERRORS = [
    ("SpatialBN", lambda x, s, b, m, v: [x, np.ones(4, np.float32), b, m, v], {"is_test": 1}, 1,
     r"scale has shape \[4\] but X \[2, 3, 4, 4\] needs 3 elements \(its channels, order NCHW\)"),
    ("SpatialBNGradient", lambda x, s, b, m, v: [x, s, x[..., 0], m, v], {}, 3,
     r"dY is \[2, 3, 4\] but X is \[2, 3, 4, 4\]: they must have the same shape"),
    ("SpatialBN", lambda x, s, b, m, v: [x, s, b, m, v], {"num_batches": 2}, 5,
     r"num_batches > 1 needs the sums and sumsq inputs \(7 inputs\), got 5"),
    ("SpatialBNGradient", lambda x, s, b, m, v: [x, s, x, m, v], {"num_batches": 2}, 3,
     r"num_batches > 1 needs the aggregate scale and bias gradient inputs \(7 inputs\), got 5"),
    ("ChannelBackpropStats", lambda x, s, b, m, v: [x, m, np.ones(2, np.float32), x], {}, 2,
     r"inv_std has shape \[2\] but X \[2, 3, 4, 4\] needs 3 elements \(its channels, order NCHW\)"),
    ("ChannelStats", lambda x, s, b, m, v: [x[0, 0]], {}, 2, r"X must have rank >= 3, got \[4, 4\]"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, make_inputs, args, n_out, message", ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, args, n_out, message, device):
    inputs = make_inputs(*error_inputs())
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [v.shape for v in inputs], n_out, **args)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args, n_out, device_option=device_option(device))


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
        base = {name: values[name].copy() for name in names}
        offset = np.zeros_like(base[names[0]])

        def shifted_loss():
            for name in names:
                values[name] = base[name] + offset
            return loss()
        gradient = central_differences(shifted_loss, offset, delta)
        values.update(base)
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

# ---- shape inference: the shapes the kernels really produce, and the mode errors --------------

def test_every_op_of_the_family_has_a_rule():
    from pycaffe2.schema import all_schemas
    family = {name: s for name, s in all_schemas().items() if s.family == "batch_norm"}
    assert sorted(family) == sorted(["ChannelStats", "ChannelBackpropStats", "SpatialBN", "SpatialBNGradient"])
    assert all(s.inference != "none" for s in family.values())


def inputs_for(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random(shape).astype(np.float32) + 0.5 for shape in shapes]


# (op type, input shapes, args, output count): inference must give the kernel's shapes.
INFERENCE_CASES = [
    ("ChannelStats", [(2, 3, 4, 5)], {}, 2),
    ("ChannelStats", [(2, 4, 5, 3)], {"order": "NHWC"}, 2),
    ("ChannelBackpropStats", [(2, 3, 4), (3,), (3,), (2, 3, 4)], {}, 2),
    ("SpatialBN", [(2, 3, 4, 5), (3,), (3,), (3,), (3,)], {"is_test": 1}, 1),
    ("SpatialBN", [(2, 4, 5, 3), (3,), (3,), (3,), (3,)], {"order": "NHWC"}, 5),
    ("SpatialBN", [(2, 3, 4), (3,), (3,), (3,), (3,), (3,), (3,)], {"num_batches": 2}, 5),
    ("SpatialBNGradient", [(2, 3, 4, 5), (3,), (2, 3, 4, 5), (3,), (3,)], {}, 3),
]


@pytest.mark.parametrize("op_type, shapes, args, n_out", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_matches_the_kernel(op_type, shapes, args, n_out):
    inferred = infer(op_type, shapes, n_out, **args)
    names = [f"x{i}" for i in range(len(shapes))]
    outputs = [f"y{i}" for i in range(n_out)]
    if op_type == "SpatialBN" and n_out == 5:
        outputs[1:3] = names[3:5]
    got = run_op(op_type, inputs_for(shapes), args, input_names=names, output_names=outputs)
    assert inferred == [TensorInfo(v.shape, v.dtype.name) for v in got]


def test_inference_of_float64_and_unknown_inputs():
    assert infer("SpatialBN", [(2, 3, 4)] + [(3,)] * 4, dtype="float64", is_test=1) == \
        [TensorInfo((2, 3, 4), "float64")]
    assert infer("SpatialBN", [None] * 5, n_out=5) == [None] * 5


def test_spatial_bn_mode_errors():
    five = [(2, 3, 4)] + [(3,)] * 4
    with pytest.raises(ShapeError, match=r"^is_test=1 takes 1 output \(Y\), got 5"):
        infer("SpatialBN", five, n_out=5, is_test=1)
    with pytest.raises(ShapeError, match=r"^training .is_test=0. takes 5 outputs, got 1"):
        infer("SpatialBN", five, n_out=1)
    with pytest.raises(ShapeError, match=r"^num_batches > 1 needs the sums and sumsq inputs \(7 inputs\)"):
        infer("SpatialBN", five, n_out=5, num_batches=4)


def test_per_channel_errors_name_the_input():
    with pytest.raises(ShapeError, match=r"^bias has shape \[4\] but X \[2, 3, 4\] needs 3 elements "
                                         r"\(its channels, order NCHW\)"):
        infer("SpatialBN", [(2, 3, 4), (3,), (4,), (3,), (3,)], is_test=1)
    with pytest.raises(ShapeError, match=r"^scale has shape \[3\] but X \[2, 3, 4\] needs 4 elements "
                                         r"\(its channels, order NHWC\)"):
        infer("SpatialBN", [(2, 3, 4), (3,), (4,), (4,), (4,)], n_out=5, order="NHWC")
    with pytest.raises(ShapeError, match=r"^X must have rank >= 3, got \[2, 3\]"):
        infer("ChannelStats", [(2, 3)], n_out=2)
    with pytest.raises(ShapeError, match="^X must be float, got int32"):
        infer("SpatialBN", [(2, 3, 4)] + [(3,)] * 4, dtype="int32", is_test=1)
    with pytest.raises(ShapeError, match=r"^dY is \[2, 3, 5\] but X is \[2, 3, 4\]: they must have the same shape"):
        infer("SpatialBNGradient", [(2, 3, 4), (3,), (2, 3, 5), (3,), (3,)], n_out=3)


def test_empty_running_stats_are_allowed_in_training_only():
    shapes = [(2, 3, 4), (3,), (3,), (0,), (0,)]
    assert infer("SpatialBN", shapes, n_out=5)[1] == TensorInfo((3,))
    with pytest.raises(ShapeError, match=r"^mean has shape \[0\] but X \[2, 3, 4\] needs 3 elements"):
        infer("SpatialBN", shapes, is_test=1)


# ---- CUDA against the CPU twin: training, num_batches, gradients, large shapes ------------------

CUDA = device_option("cuda")


def channel_count(shape, order):
    return shape[1] if order == "NCHW" else shape[-1]


ATOL, RTOL = 1e-4, 1e-4

# (shape, order): small, odd, spatial size 1, rank 3 and 5, and two of >= 1M elements.
DEVICE_SHAPES = [((2, 3, 4, 5), "NCHW"), ((2, 4, 5, 3), "NHWC"), ((3, 5, 7), "NCHW"), ((3, 7, 5), "NHWC"),
                 ((2, 3, 2, 3, 2), "NCHW"), ((1, 2, 3, 2, 4), "NHWC"), ((4, 5, 1, 1), "NCHW"),
                 ((3, 70, 33), "NHWC"), ((3, 257, 43, 31), "NCHW"), ((16, 32, 32, 64), "NHWC")]


def device_bn_inputs(shape, order, seed=0):
    """X (mean 3, std 2: a mean the statistics must not cancel), scale, bias, mean, var."""
    rng = np.random.default_rng(seed)
    c = channel_count(shape, order)
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    return [x, rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32),
            (rng.standard_normal(c) + 3).astype(np.float32), (rng.random(c) * 4 + 2).astype(np.float32)]


def saved_stats(x, scale, bias, order):
    """SpatialBN's saved mean and inverse std of X, from the CPU kernel."""
    c = channel_count(x.shape, order)
    zeros = np.zeros(c, np.float32)
    out = run_op("SpatialBN", [x, scale, bias, zeros, zeros], {"is_test": 0, "order": order},
                 input_names=BN_IN, output_names=BN_OUT)
    return out[3], out[4]


def dy_like(x, seed=1):
    return np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)


def all_sums(x, order):
    """sums and sumsq over X and a second batch of its shape: num_batches = 2."""
    return run_op("ChannelStats", [np.concatenate([x, x[::-1] * 0.5 + 1])], {"order": order})


def gradient_inputs(aggregates=False, test=False):
    def make(shape, order):
        x, scale, bias, mean, var = device_bn_inputs(shape, order)
        stats = [mean, var] if test else list(saved_stats(x, scale, bias, order))
        extra = []
        if aggregates:
            rng = np.random.default_rng(2)
            extra = [rng.standard_normal(len(scale)).astype(np.float32) * 10 for _ in range(2)]
        return [x, scale, dy_like(x), *stats, *extra]
    return make


def backprop_stats_inputs(shape, order):
    x, scale, bias, _, _ = device_bn_inputs(shape, order)
    return [x, *saved_stats(x, scale, bias, order), dy_like(x)]


# op type -> variants of (inputs for (shape, order), args, number of outputs, layouts)
BOTH = ("NCHW", "NHWC")
DEVICE_CASES = {
    "ChannelStats": [(lambda s, o: device_bn_inputs(s, o)[:1], {}, 2, BOTH)],
    "ChannelBackpropStats": [(backprop_stats_inputs, {}, 2, ("NCHW",))],
    "SpatialBN": [
        (lambda s, o: device_bn_inputs(s, o), {"is_test": 1, "epsilon": 1e-3}, 1, BOTH),
        (lambda s, o: device_bn_inputs(s, o), {"is_test": 0}, 5, BOTH),
        (lambda s, o: device_bn_inputs(s, o), {"is_test": 0, "momentum": 0.3, "epsilon": 0.5}, 5, BOTH),
        (lambda s, o: [*device_bn_inputs(s, o), *all_sums(device_bn_inputs(s, o)[0], o)],
         {"is_test": 0, "num_batches": 2}, 5, BOTH),
    ],
    "SpatialBNGradient": [
        (gradient_inputs(), {"is_test": 0}, 3, BOTH),
        (gradient_inputs(test=True), {"is_test": 1, "epsilon": 1e-3}, 3, BOTH),
        (gradient_inputs(aggregates=True), {"is_test": 0, "num_batches": 3}, 3, BOTH),
    ],
}

PARAMS = [pytest.param(op_type, index, shape, order, id=f"{op_type}-{index}-{order}-{'x'.join(map(str, shape))}")
          for op_type, variants in sorted(DEVICE_CASES.items()) for index, variant in enumerate(variants)
          for shape, order in DEVICE_SHAPES if order in variant[3]]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, index, shape, order", PARAMS)
def test_cuda_kernel_matches_cpu(op_type, index, shape, order):
    make_inputs, args, num_outputs, _ = DEVICE_CASES[op_type][index]
    args = {**args, "order": order} if op_type != "ChannelBackpropStats" else args
    check_devices(op_type, make_inputs(shape, order), args, num_outputs, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape, order", [((2, 3, 4, 5), "NCHW"), ((3, 7, 5), "NHWC")])
def test_empty_running_statistics_start_at_zero(shape, order):
    inputs = device_bn_inputs(shape, order)
    inputs[3] = inputs[4] = np.zeros(0, np.float32)
    check_devices("SpatialBN", inputs, {"is_test": 0, "order": order}, 5, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@pytest.mark.slow
def test_statistics_of_a_large_mean_do_not_cancel():
    x, scale, bias, mean, var = device_bn_inputs((8, 4, 64, 64), "NCHW")
    x = (x * 1e-2 + 1e3).astype(np.float32)  # std 0.02 under a mean of 1000
    *_, saved_mean, saved_inv_std = run_op("SpatialBN", [x, scale, bias, mean, var], {"is_test": 0},
                                           num_outputs=5, device_option=CUDA)
    rows = np.moveaxis(x, 1, -1).reshape(-1, 4).astype(np.float64)
    np.testing.assert_allclose(saved_mean, rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(saved_inv_std, 1 / np.sqrt(rows.var(axis=0) + 1e-5), rtol=1e-3)


# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = set(DEVICE_CASES)
