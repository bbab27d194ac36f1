"""norms family (InstanceNorm, LayerNorm, GroupNorm and their gradient ops): each op
against NumPy references written here in float64 (on the CPU and on CUDA), gradient
ops against numeric derivatives, registered gradients against central differences,
shape inference against the kernels, errors (one message from inference and both
kernels), and the CUDA row kernels against their CPU twins (gradient ops, empty
and long rows, more rows than a grid has blocks)."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.cuda import many_rows
from tests.operators import DEVICES
from tests.operators.test_batch_norm import MAKER_SHAPES, SHAPES, bn_inputs, maker_inputs, per_channel, tiny
from tests.schema import infer


def group_norm_reference(x, gamma, beta, groups, epsilon, order):
    """Y, mean [N, G], inv_std [N, G] with channels grouped in order."""
    xc = np.moveaxis(x, -1, 1) if order == "NHWC" else x
    rows = xc.reshape(x.shape[0], groups, -1).astype(np.float64)
    mean, var = rows.mean(axis=2), rows.var(axis=2)
    inv_std = 1 / np.sqrt(var + epsilon)
    y = ((rows - mean[..., None]) * inv_std[..., None]).reshape(xc.shape)
    y = y * per_channel(gamma, xc, "NCHW") + per_channel(beta, xc, "NCHW")
    return (np.moveaxis(y, 1, -1) if order == "NHWC" else y), mean, inv_std


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, order", SHAPES)
def test_instance_norm(shape, order, device):
    x, scale, bias, _, _ = bn_inputs(shape, order, seed=15)
    c = scale.size
    got = check_reference("InstanceNorm", [x, scale, bias],
                          lambda x, s, b, **a: group_norm_reference(x, s, b, c, 1e-4, order),
                          {"order": order, "epsilon": 1e-4}, num_outputs=3, rtol=1e-3, atol=1e-3,
                          device=device)
    (y,) = run_op("InstanceNorm", [x, scale, bias], {"order": order, "epsilon": 1e-4},
                  device_option=device_option(device))
    np.testing.assert_allclose(y, got[0])
    assert all(v.dtype == np.float32 for v in got)


@pytest.mark.parametrize("shape, order, group", [((2, 6, 3, 2), "NCHW", 3), ((2, 3, 2, 6), "NHWC", 2),
                                                 ((3, 4, 5), "NCHW", 4), ((2, 4), "NCHW", 2),
                                                 ((1, 2, 2, 2, 8), "NHWC", 8), ((2, 4, 3), "NHWC", 1)])
@pytest.mark.parametrize("device", DEVICES)
def test_group_norm(shape, order, group, device):
    x, gamma, beta, _, _ = bn_inputs(shape, order, seed=16)
    args = {"group": group, "order": order, "is_test": 0}
    check_reference("GroupNorm", [x, gamma, beta],
                    lambda x, g, b, **a: group_norm_reference(x, g, b, group, 1e-5, order), args,
                    num_outputs=3, rtol=1e-3, atol=1e-3, device=device)


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
@pytest.mark.parametrize("device", DEVICES)
def test_layer_norm(shape, axis, affine, device):
    rng = np.random.default_rng(17)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    inner = shape[axis % len(shape):]
    params = [rng.standard_normal(inner).astype(np.float32) for _ in range(2)] if affine else []
    args = {"axis": axis, "epsilon": 1e-4, "elementwise_affine": affine}
    got = check_reference("LayerNorm", [x, *params], layer_norm_reference, args, rtol=1e-3, atol=1e-3,
                          num_outputs=3, device=device)
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
    y, mean, std = run_op("LayerNorm", [x, *params], args, num_outputs=3)
    dy = tiny(shape, 29)
    wrt = {0: 0, 1: 1, 2: 2} if affine else {0: 0}
    check_gradient_op("LayerNorm", [x, *params], "LayerNormGradient", [dy, y, mean, std, x, *params[:1]],
                      wrt, [dy, None, None], args, num_outputs=3, atol=1e-4, rtol=1e-4)

# ---- errors: inference and both kernels give one message ------------------------------------

def randn(shape, seed, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(np.float32)


def layer_inputs(shape, axis, affine):
    axis %= len(shape)
    params = [randn(shape[axis:], 1), randn(shape[axis:], 2)] if affine else []
    return [randn(shape, 0, 2, 3), *params]


def layer_gradient_inputs(shape, axis, affine):
    x, *params = layer_inputs(shape, axis, affine)
    y, mean, std = run_op("LayerNorm", [x, *params], {"axis": axis, "elementwise_affine": affine},
                          num_outputs=3)
    return [randn(shape, 3), y, mean, std, x, *params[:1]]


def channels(shape, order):
    return shape[1] if order == "NCHW" else shape[-1]


def group_inputs(shape, order):
    c = channels(shape, order)
    return [randn(shape, 0, 2, 3), randn(c, 1), randn(c, 2)]


def group_gradient_inputs(shape, group, order):
    x, gamma, beta = group_inputs(shape, order)
    _, mean, inv_std = run_op("GroupNorm", [x, gamma, beta], {"group": group, "order": order},
                              num_outputs=3)
    return [randn(shape, 3), x, gamma, beta, mean, inv_std]


def instance_gradient_inputs(shape, order, saved):
    x, scale, bias = group_inputs(shape, order)
    stats = run_op("InstanceNorm", [x, scale, bias], {"order": order}, num_outputs=3)[1:] if saved else []
    return [x, scale, bias, randn(shape, 3), *stats]


# (op type, inputs, args, output count, message)
ERRORS = [
    ("GroupNorm", lambda: group_inputs((2, 3, 4, 4), "NCHW"), {"group": 2}, 1,
     r"group 2 does not divide the 3 channels of X \[2, 3, 4, 4\] \(order NCHW\)"),
    ("GroupNorm", lambda: group_inputs((2, 6, 3), "NCHW"), {"group": 4}, 3,
     r"group 4 does not divide the 6 channels of X \[2, 6, 3\] \(order NCHW\)"),
    ("LayerNorm", lambda: [randn((2, 3, 4, 4), 0), randn(3, 1), randn(3, 2)], {"axis": 2, "elementwise_affine": 1},
     3, r"gamma has shape \[3\] but X \[2, 3, 4, 4\] needs 16 elements \(its dims from axis 2\)"),
    ("LayerNorm", lambda: [randn((2, 3), 0), randn(4, 1), randn(4, 2)], {"elementwise_affine": 1}, 3,
     r"gamma has shape \[4\] but X \[2, 3\] needs 3 elements \(its dims from axis 1\)"),
    ("LayerNorm", lambda: [randn((2, 3, 4, 4), 0), randn(3, 1), randn(3, 2)], {}, 3,
     r"elementwise_affine=0 takes 1 input\(s\), got 3"),
    ("LayerNorm", lambda: [randn((2, 3), 0)], {"elementwise_affine": 1}, 3,
     r"elementwise_affine=1 takes 3 input\(s\), got 1"),
    ("LayerNormGradient", lambda: layer_gradient_inputs((2, 3), 1, 0), {}, 3,
     (r"dgamma and dbeta need elementwise_affine=1 and the gamma input \(6 inputs\), "
      r"got elementwise_affine=0 and 5 inputs")),
    ("GroupNormGradient", lambda: group_gradient_inputs((2, 6, 3), 3, "NCHW")[:4] + [randn(5, 0), randn(6, 1)],
     {"group": 3}, 3, r"mean has shape \[5\] but X \[2, 6, 3\] needs 6 elements \(\[N, 3\]\)"),
    ("InstanceNormGradient", lambda: group_inputs((2, 3, 4), "NCHW") + [randn((2, 3, 5), 3)], {}, 3,
     r"dY is \[2, 3, 5\] but X is \[2, 3, 4\]: they must have the same shape"),
    ("InstanceNorm", lambda: [np.ones((2, 3, 4), np.int32), randn(3, 1), randn(3, 2)], {}, 1,
     "X must be float, got int32"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, make_inputs, args, n_out, message", ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_inputs_and_shapes(op_type, make_inputs, args, n_out, message, device):
    inputs = make_inputs()
    infos = [TensorInfo(v.shape, v.dtype.name) for v in inputs]
    with pytest.raises(ShapeError, match=message):
        infer(op_type, infos, n_out, **args)
    if device == "cuda" and inputs[0].dtype != np.float32:
        return  # the CUDA launchers take float32 only
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args, n_out, device_option=device_option(device))


# ---- gradient makers: registered gradients against central differences -----------------------
# The loss is 1/2 |Y|^2, to which normalization is nearly blind (dX ~ epsilon / (var + epsilon)),
# so the checks use a large epsilon to keep the gradients of X well away from zero.


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
    with pytest.raises(GradientError, match=r"^GroupNorm: its gradient needs the mean and inv_std outputs"):
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


# ---- shape inference: the shapes the kernels really produce, and the mode errors --------------

def test_every_op_of_the_family_has_a_rule():
    from pycaffe2.schema import all_schemas
    family = {name: s for name, s in all_schemas().items() if s.family == "norms"}
    assert sorted(family) == sorted(["InstanceNorm", "InstanceNormGradient", "LayerNorm", "LayerNormGradient",
                                     "GroupNorm", "GroupNormGradient", "AffineChannel", "AffineChannelGradient",
                                     "RMSNorm", "RMSNormGradient"])
    assert all(s.inference != "none" for s in family.values())


# (op type, input shapes, args, output count): inference must give the kernel's shapes.
INFERENCE_CASES = [
    ("InstanceNorm", [(2, 3, 4, 5), (3,), (3,)], {}, 3),
    ("InstanceNorm", [(2, 4, 3), (3,), (3,)], {"order": "NHWC"}, 2),
    ("InstanceNormGradient", [(2, 3, 4, 5), (3,), (3,), (2, 3, 4, 5), (2, 3), (2, 3)], {}, 3),
    ("LayerNorm", [(2, 3, 4)], {"axis": 2}, 3),
    ("LayerNorm", [(2, 3, 4), (3, 4), (3, 4)], {"axis": -2, "elementwise_affine": 1}, 3),
    ("LayerNormGradient", [(2, 3, 4), (2, 3, 4), (2, 1), (2, 1), (2, 3, 4), (3, 4)],
     {"elementwise_affine": 1}, 3),
    ("GroupNorm", [(2, 6, 4, 5), (6,), (6,)], {"group": 3, "is_test": 0}, 3),
    ("GroupNorm", [(2, 6), (6,), (6,)], {"group": 2}, 1),
    ("GroupNormGradient", [(2, 4, 5, 6), (2, 4, 5, 6), (6,), (6,), (2, 3), (2, 3)],
     {"group": 3, "order": "NHWC"}, 3),
]


@pytest.mark.parametrize("op_type, shapes, args, n_out", INFERENCE_CASES, ids=[c[0] for c in INFERENCE_CASES])
def test_inference_matches_the_kernel(op_type, shapes, args, n_out):
    rng = np.random.default_rng(0)
    got = run_op(op_type, [rng.random(s).astype(np.float32) + 0.5 for s in shapes], args, n_out)
    assert infer(op_type, shapes, n_out, **args) == [TensorInfo(v.shape, v.dtype.name) for v in got]


def test_inference_of_unknown_inputs():
    assert infer("LayerNorm", [None], n_out=3) == [None] * 3
    assert infer("GroupNorm", [None, (6,), (6,)]) == [None]


def test_mode_errors():
    with pytest.raises(ShapeError, match="^axis 2 is out of range for X of rank 2"):
        infer("LayerNorm", [(2, 3)], n_out=3, axis=2)
    with pytest.raises(ShapeError, match=r"^training \(is_test=0\) takes 3 outputs"):
        infer("GroupNorm", [(2, 6, 3), (6,), (6,)], group=2, is_test=0)
    with pytest.raises(ShapeError, match=r"^saved_mean has shape \[3\] but X \[2, 3, 4\] needs 6 elements "
                                         r"\(\[N, 3\]\)"):
        infer("InstanceNormGradient", [(2, 3, 4), (3,), (3,), (2, 3, 4), (3,), (2, 3)], n_out=3)


# ---- CUDA row kernels against their CPU twins -------------------------------------------------

ATOL, RTOL = 1e-4, 1e-4

# (shape, axis): rank 2 to 4, axis 0 (one row), negative, rows longer than a block of
# threads, more rows than the emulator's 64 blocks, and empty shapes.
LAYER_SHAPES = [((3, 5), 1), ((3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), 1), ((2, 3, 4, 5), 2),
                ((3, 1000), 1), ((200, 7), 1), ((1, 1), 1), ((0, 4), 1), ((3, 0), 1)]
# (shape, group, order): rank 2 to 5, group 1 and C, odd sizes, > 64 rows, empty.
GROUP_SHAPES = [((2, 6, 4, 5), 3, "NCHW"), ((2, 4, 5, 6), 3, "NHWC"), ((3, 4), 2, "NCHW"),
                ((3, 4), 4, "NHWC"), ((2, 8, 3, 3, 2), 4, "NCHW"), ((2, 3, 3, 2, 8), 2, "NHWC"),
                ((2, 5, 7), 1, "NCHW"), ((2, 7, 5), 5, "NHWC"), ((40, 6, 3), 3, "NCHW"),
                ((40, 3, 6), 3, "NHWC"), ((2, 4, 33, 17), 2, "NCHW"), ((0, 4, 3), 2, "NCHW"),
                ((2, 4, 0), 2, "NHWC")]
INSTANCE_SHAPES = [((2, 3, 4, 5), "NCHW"), ((2, 4, 5, 3), "NHWC"), ((3, 5, 7), "NCHW"),
                   ((3, 7, 5), "NHWC"), ((30, 4, 5), "NCHW"), ((30, 5, 4), "NHWC"),
                   ((2, 3, 1, 1), "NCHW"), ((0, 3, 4), "NCHW"), ((2, 0, 3), "NHWC")]


def norm_cases():
    """(op type, shape, inputs maker, its arguments, op args, number of outputs) for every
    shape and arg combination."""
    for shape, axis in LAYER_SHAPES:
        for affine in (0, 1):
            args = {"axis": axis, "elementwise_affine": affine}
            yield ("LayerNorm", shape, layer_inputs, (shape, axis, affine),
                   {**args, "epsilon": 1e-3 if affine else 1e-5}, 3)
            for num_outputs in (1, 3) if affine else (1,):
                yield "LayerNormGradient", shape, layer_gradient_inputs, (shape, axis, affine), args, num_outputs
    for shape, group, order in GROUP_SHAPES:
        args = {"group": group, "order": order}
        yield "GroupNorm", shape, group_inputs, (shape, order), {**args, "epsilon": 0.1}, 3
        yield "GroupNormGradient", shape, group_gradient_inputs, (shape, group, order), args, 3
    for shape, order in INSTANCE_SHAPES:
        yield "InstanceNorm", shape, group_inputs, (shape, order), {"order": order, "epsilon": 1e-3}, 3
        for saved in (True, False):
            yield ("InstanceNormGradient", shape, instance_gradient_inputs, (shape, order, saved),
                   {"order": order}, 3)


NORM_CASES = [pytest.param(*case, id=f"{case[0]}-{'x'.join(map(str, case[1]))}-{index}")
              for index, case in enumerate(norm_cases())]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")  # CPU, empty X
@pytest.mark.parametrize("op_type, shape, make_inputs, make_args, args, num_outputs", NORM_CASES)
def test_row_normalization_matches_cpu(op_type, shape, make_inputs, make_args, args, num_outputs):
    check_devices(op_type, make_inputs(*make_args), args, num_outputs, atol=ATOL, rtol=RTOL)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", [many_rows((70000, 3))])
def test_layer_norm_rows_past_a_real_grid(shape):
    args = {"axis": 1, "elementwise_affine": 1}
    check_devices("LayerNorm", layer_inputs(shape, 1, 1), args, 3, atol=ATOL, rtol=RTOL)
    check_devices("LayerNormGradient", layer_gradient_inputs(shape, 1, 1), args, 3, atol=ATOL, rtol=RTOL)


# ---- AffineChannel and RMSNorm ---------------------------------------------------------------

def affine_channel_reference(x, scale, bias, order="NCHW", is_learnable=0):
    shape = [1] * x.ndim
    shape[-1 if order == "NHWC" else 1] = scale.size
    return x.astype(np.float64) * scale.reshape(shape) + bias.reshape(shape)


AFFINE_SHAPES = [((2, 3, 4, 5), "NCHW"), ((2, 4, 5, 3), "NHWC"), ((3, 2), "NCHW"), ((2, 3, 2, 2, 4), "NHWC"),
                 ((1, 4, 3, 2, 2), "NCHW")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, order", AFFINE_SHAPES)
@pytest.mark.parametrize("learnable", [0, 1])
def test_affine_channel(shape, order, learnable, device):
    x, c = randn(shape, 40), channels(shape, order)
    args = {"order": order, "is_learnable": learnable}
    check_reference("AffineChannel", [x, randn(c, 41), randn(c, 42)], affine_channel_reference, args,
                    device=device, check_inplace=not learnable)


@pytest.mark.parametrize("device", DEVICES)
def test_affine_channel_learnable_refuses_in_place(device):
    with pytest.raises((OpFailure, NetError), match=r"in place \(Y the X blob\) is not supported with "
                                                    r"is_learnable=1"):
        run_op("AffineChannel", [randn((2, 3), 0), randn(3, 1), randn(3, 2)], {"is_learnable": 1},
               input_names=["X", "s", "b"], output_names=["X"], device_option=device_option(device))


@pytest.mark.parametrize("shape, order", AFFINE_SHAPES)
def test_affine_channel_gradient(shape, order):
    x, c = tiny(shape, 43), channels(shape, order)
    scale, bias, dy = tiny(c, 44), tiny(c, 45), tiny(shape, 46)
    args = {"order": order, "is_learnable": 1}
    check_gradient_op("AffineChannel", [x, scale, bias], "AffineChannelGradient", [dy, x, scale],
                      {0: 0, 1: 1, 2: 2}, [dy], args, atol=1e-4, rtol=1e-4)
    check_gradient_op("AffineChannel", [x, scale, bias], "AffineChannelGradient", [dy, scale],
                      {0: 0}, [dy], {"order": order}, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("learnable", [0, 1])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_affine_channel_registered_gradient(learnable, order):
    rng = np.random.default_rng(47)
    shape = (2, 3, 2, 2)
    inputs = [rng.standard_normal(shape), rng.standard_normal(shape[channel_axis(order)]),
              rng.standard_normal(shape[channel_axis(order)])]
    op = make_op("AffineChannel", ["X", "scale", "bias"], ["Y"], {"order": order, "is_learnable": learnable})
    for input_to_check in range(3 if learnable else 1):
        report = check_op_gradient(op, inputs, input_to_check)
        assert report.ok, report
    grad_ops, g_input = GetGradientForOp(op, ["Y_grad"])
    assert list(grad_ops[0].input) == (["Y_grad", "X", "scale"] if learnable else ["Y_grad", "scale"])
    assert g_input == (["X_grad", "scale_grad", "bias_grad"] if learnable else ["X_grad", None, None])


def test_random_init_makes_up_affine_channel_parameters():
    from pycaffe2.run.random_init import can_make_up, made_up_weights
    net = caffe2_pb2.NetDef(op=[make_op("AffineChannel", ["X", "s", "b"], ["Y"], {"order": "NHWC"})])
    made = made_up_weights(net, {"X": randn((2, 3, 3, 5), 0)})
    assert can_make_up("AffineChannel", 1) and {k: v.shape for k, v in made.items()} == {"s": (5,), "b": (5,)}


def channel_axis(order):
    return -1 if order == "NHWC" else 1


def rms_norm_reference(x, gamma, beta, axis=1, eps=0.0):
    axis %= x.ndim
    rows = x.reshape(int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))).astype(np.float64)
    rrms = 1 / np.sqrt(np.mean(rows ** 2, axis=1) + eps)
    y = rows * rrms[:, None] * gamma.reshape(-1) + beta.reshape(-1)
    return y.reshape(x.shape), rrms.reshape(x.shape[:axis])


@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), -2), ((2, 3, 4), 0),
                                         ((0, 3), 1)])
@pytest.mark.parametrize("eps", [0.0, 0.5])
def test_rms_norm(shape, axis, eps):
    inner = shape[axis % len(shape):]
    x = randn(shape, 48, 2, 1) if 0 not in shape else np.zeros(shape, np.float32)
    check_reference("RMSNorm", [x, randn(inner, 49), randn(inner, 50)], rms_norm_reference,
                    {"axis": axis, "eps": eps})


@pytest.mark.parametrize("shape, axis", [((3, 4), 1), ((2, 3, 2), 2), ((2, 2, 3), 1)])
def test_rms_norm_gradient(shape, axis):
    x, gamma, beta = tiny(shape, 51, scale=2), tiny(shape[axis:], 52), tiny(shape[axis:], 53)
    args = {"axis": axis, "eps": 0.1}
    _, rrms = run_op("RMSNorm", [x, gamma, beta], args)
    dy = tiny(shape, 54)
    check_gradient_op("RMSNorm", [x, gamma, beta], "RMSNormGradient", [dy, x, gamma, rrms],
                      {0: 0, 1: 1, 2: 2}, [dy, None], args, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("input_to_check", [0, 1, 2])
def test_rms_norm_registered_gradient(input_to_check):
    rng = np.random.default_rng(55)
    inputs = [rng.standard_normal((3, 2, 2)) + 0.5, rng.standard_normal((2, 2)), rng.standard_normal((2, 2))]
    op = make_op("RMSNorm", ["X", "gamma", "beta"], ["Y", "rrms"], {"axis": 1, "eps": 0.1})
    report = check_op_gradient(op, inputs, input_to_check)
    assert report.ok, report


AFFINE_INFERENCE = [
    ("AffineChannel", [(2, 3, 4, 5), (3,), (3,)], {}, 1),
    ("AffineChannelGradient", [(2, 4, 5, 3), (2, 4, 5, 3), (3,)], {"order": "NHWC", "is_learnable": 1}, 3),
    ("AffineChannelGradient", [(2, 3, 4), (3,)], {}, 1),
    ("RMSNorm", [(2, 3, 4), (3, 4), (12,)], {}, 2),
    ("RMSNormGradient", [(2, 3, 4), (2, 3, 4), (4,), (2, 3)], {"axis": -1}, 3),
]


@pytest.mark.parametrize("op_type, shapes, args, n_out", AFFINE_INFERENCE, ids=[c[0] for c in AFFINE_INFERENCE])
def test_affine_and_rms_inference_matches_the_kernel(op_type, shapes, args, n_out):
    got = run_op(op_type, [randn(s, 56, 1, 2) for s in shapes], args, n_out)
    assert infer(op_type, shapes, n_out, **args) == [TensorInfo(v.shape, v.dtype.name) for v in got]


AFFINE_ERRORS = [
    ("AffineChannel", lambda: [randn((2, 3, 4), 0), randn(4, 1), randn(3, 2)], {}, 1,
     r"scale has shape \[4\] but X \[2, 3, 4\] needs 3 elements \(its channels, order NCHW\)"),
    ("AffineChannel", lambda: [randn(3, 0), randn(3, 1), randn(3, 2)], {}, 1, r"X must have rank >= 2, got \[3\]"),
    ("AffineChannelGradient", lambda: [randn((2, 3), 0), randn(3, 1)], {"is_learnable": 1}, 3,
     r"is_learnable=1 takes 3 inputs and 3 output\(s\), got 2 and 3"),
    ("AffineChannelGradient", lambda: [randn((2, 3), 0), randn((2, 4), 0), randn(3, 1)], {"is_learnable": 1}, 3,
     r"X is \[2, 4\] but dY is \[2, 3\]: they must have the same shape"),
    ("RMSNorm", lambda: [randn((2, 3), 0), randn(4, 1), randn(3, 2)], {}, 2,
     r"gamma has shape \[4\] but X \[2, 3\] needs 3 elements \(its dims from axis 1\)"),
    ("RMSNormGradient", lambda: [randn((2, 3), 0), randn((2, 3), 0), randn(3, 1), randn(3, 2)], {}, 3,
     r"rrms has shape \[3\] but X \[2, 3\] needs 2 elements \(its dims before axis 1\)"),
]


@pytest.mark.parametrize("op_type, make_inputs, args, n_out, message", AFFINE_ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(AFFINE_ERRORS)])
def test_affine_and_rms_errors(op_type, make_inputs, args, n_out, message):
    inputs = make_inputs()
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(v.shape, v.dtype.name) for v in inputs], n_out, **args)
    with pytest.raises((OpFailure, NetError), match=rf"\({op_type}\)(:| failed:) {message}"):
        run_op(op_type, inputs, args, n_out)


def affine_cases():
    for shape, order in AFFINE_SHAPES + [((40, 3, 70), "NCHW"), ((0, 3, 2), "NCHW"), ((300, 5), "NHWC")]:
        c = channels(shape, order)
        x, scale, bias, dy = randn(shape, 57), randn(c, 58), randn(c, 59), randn(shape, 60)
        yield "AffineChannel", [x, scale, bias], {"order": order}, 1
        yield "AffineChannelGradient", [dy, x, scale], {"order": order, "is_learnable": 1}, 3
        yield "AffineChannelGradient", [dy, scale], {"order": order}, 1


AFFINE_CASES = [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(affine_cases())]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, inputs, args, num_outputs", AFFINE_CASES)
def test_affine_channel_matches_cpu(op_type, inputs, args, num_outputs):
    check_devices(op_type, inputs, args, num_outputs, atol=ATOL, rtol=RTOL)


# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED = {case.values[0] for case in NORM_CASES + AFFINE_CASES}
