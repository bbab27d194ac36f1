"""Training family: the counter, the learning-rate policies, WeightedSum and its
gradient, and every update rule against an independent NumPy reference, one
step at a time and over several steps of a real training net; the CUDA kernels
against their CPU twins (gpu-marked), with the learning rate and counter on the
GPU (check_devices feeds every input there) and, as LearningRate and Iter leave
them, on the CPU; and the shape-inference rules."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure, Workspace, compile_net
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.schema.checker import check_net
from pycaffe2.testing import (
    assert_outputs_close,
    check_devices,
    check_gradient_op,
    check_reference,
    device_option,
    make_op,
    run_op,
)
from tests.operators import DEVICES
from tests.schema import infer

shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


def randn(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def counter(value):
    return np.array([value], dtype=np.int64)


def make_net(name, ops):
    return caffe2_pb2.NetDef(name=name, op=[make_op(*op) for op in ops])


# --- the iteration counter -------------------------------------------------------------

def test_iter_counts_in_place():
    workspace = Workspace()
    workspace.FeedBlob("ITER", counter(0))
    workspace.CreateNet(make_net("count", [("Iter", ["ITER"], ["ITER"])]))
    workspace.RunNet("count", num_iter=3)
    assert workspace.FetchBlob("ITER").tolist() == [3]


def test_iter_widens_an_int32_counter():
    """Caffe2 scripts sometimes start the counter as int32; the count carries on in int64."""
    workspace = Workspace()
    workspace.FeedBlob("ITER", np.array([4], np.int32))
    workspace.CreateNet(make_net("count", [("Iter", ["ITER"], ["ITER"])]))
    workspace.RunNet("count", num_iter=2)
    out = workspace.FetchBlob("ITER")
    assert out.dtype == np.int64 and out.tolist() == [6]


def test_iter_without_input_counts_in_its_output_blob():
    """Caffe2's deprecated Iter([], ITER) (its checkpoint_test uses it): a missing counter
    starts at 0, an existing one (int32 widened) carries on."""
    workspace = Workspace()
    workspace.CreateNet(make_net("count", [("Iter", [], ["ITER"])]))
    workspace.RunNet("count", num_iter=3)
    out = workspace.FetchBlob("ITER")
    assert out.dtype == np.int64 and out.tolist() == [3]
    workspace.FeedBlob("ITER", np.array([10], np.int32))
    workspace.RunNet("count")
    assert workspace.FetchBlob("ITER").tolist() == [11]
    workspace.RunOperatorOnce(make_op("Iter", [], ["ITER"]))
    assert workspace.FetchBlob("ITER").tolist() == [12]


def test_iter_without_input_needs_a_workspace():
    compiled = compile_net(make_net("count", [("Iter", [], ["ITER"])]))
    with pytest.raises(OpFailure, match="Iter without an input needs a workspace"):
        compiled.run({})


def test_atomic_iter_with_a_mutex():
    workspace = Workspace()
    workspace.RunNetOnce(make_net("init", [
        ("CreateMutex", [], ["mutex"]),
        ("ConstantFill", [], ["ITER"], {"shape": [1], "value": 5.0, "dtype": "INT64"}),
    ]))
    net = make_net("count", [("AtomicIter", ["mutex", "ITER"], ["ITER"])])
    net.type = "dag"
    workspace.CreateNet(net)
    workspace.RunNet("count", num_iter=2)
    assert workspace.FetchBlob("ITER").tolist() == [7]
    assert workspace.FetchBlob("ITER").dtype == np.int64


@pytest.mark.parametrize("op_type, inputs, message", [
    ("Iter", ["ITER"], r"input blob 'ITER' has no value"),
    ("Iter", [np.array([1], np.int16)], r"iter must be a one-element int64 \(or int32\) tensor, got \[1\] int16"),
    ("Iter", [np.array([1, 2], np.int32)], r"got \[2\] int32"),
    ("Iter", [counter(np.iinfo(np.int64).max)], "would overflow"),
    ("AtomicIter", [np.zeros(1), counter(0)], "must be a mutex made by CreateMutex"),
])
def test_counter_errors(op_type, inputs, message):
    workspace = Workspace()
    names = []
    for index, value in enumerate(inputs):
        names.append(value if isinstance(value, str) else f"in{index}")
        if not isinstance(value, str):
            workspace.FeedBlob(names[-1], value)
    with pytest.raises((OpFailure, NetError), match=message):
        workspace.RunOperatorOnce(make_op(op_type, names, [names[-1] if names else "ITER"]))


# --- learning rate ---------------------------------------------------------------------

# (args, reference multiplier f(iter)): lr = base_lr * f(iter).
POLICIES = [
    ({"policy": "fixed"}, lambda it: 1.0),
    ({"policy": "step", "stepsize": 3, "gamma": 0.5}, lambda it: 0.5 ** math.floor(it / 3)),
    ({"policy": "exp", "gamma": 0.99}, lambda it: 0.99 ** it),
    ({"policy": "inv", "gamma": 0.1, "power": 0.75}, lambda it: (1 + 0.1 * it) ** -0.75),
    ({"policy": "multistep", "stepsizes": [2, 5, 40], "gamma": 0.1},
     lambda it: 0.1 ** np.searchsorted([2, 5, 40], it, side="right")),
    ({"policy": "poly", "max_iter": 200, "power": 2.0}, lambda it: (1 - it / 200) ** 2),
    ({"policy": "linearWarmup", "num_iter": 10, "start_multiplier": 0.2},
     lambda it: 0.2 + 0.8 * it / 10 if it < 10 else 1.0),
    ({"policy": "constantWarmup", "num_iter": 10}, lambda it: 0.5 if it < 10 else 1.0),
    ({"policy": "alter", "active_period": 3, "inactive_period": 2},
     lambda it: 1.0 if it % 5 < 3 else 0.0),
    ({"policy": "alter", "active_period": 3, "inactive_period": 2, "active_first": 0},
     lambda it: 0.0 if it % 5 < 2 else 1.0),
    ({"policy": "hill", "num_iter": 10, "start_multiplier": 0.1, "gamma": 0.5, "power": 1.0,
      "end_multiplier": 0.05},
     lambda it: 0.1 + 0.9 * it / 10 if it < 10 else max(0.05, 1 / (1 + 0.5 * (it - 10)))),
    ({"policy": "gate", "num_iter": 10, "multiplier_1": 0.3, "multiplier_2": -2.0},
     lambda it: 0.3 if it < 10 else -2.0),
    # exp for iterations 1..5, step for 6..10, fixed from 11 on; each sees the global
    # iteration and the first also runs before iteration 1.
    ({"policy": "composite", "sub_policy_num_iters": [5, 5, 2],
      "sub_policy_0_policy": "exp", "sub_policy_0_gamma": 0.9, "sub_policy_0_lr_scale": 2.0,
      "sub_policy_1_policy": "step", "sub_policy_1_stepsize": 4, "sub_policy_1_gamma": 0.5,
      "sub_policy_2_policy": "fixed", "sub_policy_2_lr_scale": 0.25},
     lambda it: 2.0 * 0.9 ** it if it <= 5 else 0.5 ** (it // 4) if it <= 10 else 0.25),
]


def cosine_reference(it, low=0.1, high=0.5, period=50, t_mult=1.0, shrink=0.99):
    """Restart by restart, as SGDR's paper (Loshchilov and Hutter) describes the schedule."""
    start, length, restart = 0.0, float(period), 0
    while it >= start + length:
        start, length, restart = start + length, length * t_mult, restart + 1
    low, high = low * shrink ** restart, high * shrink ** restart
    return low + 0.5 * (high - low) * (1 + math.cos(math.pi * (it - start) / length))


def triangle_reference(it, ratio, stepsize, decay=1.0):
    """Smith's triangular cycles: up over stepsize iterations, down over the next."""
    cycle, phase = divmod(it, 2 * stepsize)
    height = 1 - abs(phase - stepsize) / stepsize
    return 1 + (ratio - 1) * height * decay ** cycle


def warmup_reference(it, start, constant, linear):
    if it < constant:
        return start
    return start + (1 - start) * (it - constant) / linear if it < constant + linear else 1.0


POLICIES += [
    ({"policy": "slope", "num_iter_1": 5, "num_iter_2": 15, "multiplier_1": 2.0, "multiplier_2": 0.5},
     lambda it: 2.0 if it < 5 else max(0.5, 2.0 - 1.5 * (it - 5) / 10)),
    ({"policy": "slope", "num_iter_1": 5, "num_iter_2": 15}, lambda it: 0.0),
    ({"policy": "pieceWarmup", "m1": 0.1, "n1": 3, "m2": 0.4, "n2": 10, "m3": 1.5},
     lambda it: 0.1 if it < 3 else 0.4 if it < 10 else 1.5),
    ({"policy": "cyclical", "max_lr": -0.3, "stepsize": 4}, lambda it: triangle_reference(it, 3.0, 4)),
    ({"policy": "cyclical", "stepsize": 5, "decay": 0.5}, lambda it: triangle_reference(it, 0.05, 5, 0.5)),
    ({"policy": "cosine", "period": 7}, lambda it: cosine_reference(it, period=7)),
    ({"policy": "cosine", "period": 4, "t_mult": 2.0, "max_lr": 2.0, "min_lr": 0.5, "lr_shrink": 0.5},
     lambda it: cosine_reference(it, 0.5, 2.0, 4, 2.0, 0.5)),
    ({"policy": "constantThenLinearWarmup", "start_warmup_multiplier": 0.2, "constant_warmup_num_iter": 3,
      "linear_warmup_num_iter": 8}, lambda it: warmup_reference(it, 0.2, 3, 8)),
    ({"policy": "compositeCyclical", "start_warmup_multiplier": 0.2, "constant_warmup_num_iter": 2,
      "linear_warmup_num_iter": 3, "cyclical_max_lr": -0.2, "cyclical_step_size": 3, "cyclical_decay": 0.9},
     lambda it: warmup_reference(it, 0.2, 2, 3) if it < 5 else triangle_reference(it - 5, 2.0, 3, 0.9)),
    ({"policy": "compositeCosine", "constant_warmup_num_iter": 2, "linear_warmup_num_iter": 4,
      "cosine_period": 6, "cosine_max_lr": 1.0, "cosine_min_lr": 0.2},
     lambda it: warmup_reference(it, 0.1, 2, 4) if it < 6 else cosine_reference(it - 6, 0.2, 1.0, 6)),
    ({"policy": "composite", "sub_policy_num_iters": [4, 6],
      "sub_policy_0_policy": "fixed", "sub_policy_1_policy": "cosine", "sub_policy_1_period": 5,
      "sub_policy_1_lr_scale": 2.0},
     lambda it: 1.0 if it < 5 else 2.0 * cosine_reference(it, period=5)),
]


@pytest.mark.parametrize("args, multiplier", POLICIES, ids=[p[0]["policy"] for p in POLICIES])
def test_learning_rate_policies(args, multiplier):
    for it in (0, 1, 2, 3, 5, 9, 10, 11, 39, 40, 100):
        (lr,) = check_reference("LearningRate", [counter(it)],
                                lambda *_, it=it, **__: np.array(-0.1 * multiplier(it)),
                                {**args, "base_lr": -0.1}, atol=1e-7, rtol=1e-5)
        assert lr.shape == () and lr.dtype == np.float32


@pytest.mark.parametrize("args, message", [
    ({"policy": "step"}, "stepsize must be > 0"),
    ({"policy": "poly", "power": 1.0}, "max_iter must be > 0"),
    ({"policy": "multistep", "gamma": 0.1}, "stepsizes must list"),
    ({"policy": "slope", "num_iter_1": 5, "num_iter_2": 5}, "num_iter_2 must be > num_iter_1"),
    ({"policy": "cyclical"}, "policy cyclical: stepsize must be > 0"),
    ({"policy": "cosine", "period": 0}, "period and t_mult must be > 0"),
    ({"policy": "cosine", "t_mult": -1.0}, "period and t_mult must be > 0"),
    ({"policy": "compositeCyclical", "cyclical_step_size": 0}, "cyclical_step_size must be > 0"),
    ({"policy": "compositeCosine", "cosine_period": -2}, "cosine_period and cosine_t_mult must be > 0"),
    ({"policy": "alter", "active_period": 0, "inactive_period": 0}, "not both 0"),
    ({"policy": "composite"}, "sub_policy_num_iters must list 1 to 8"),
    ({"policy": "composite", "sub_policy_num_iters": [3, 0]}, "iteration counts > 0"),
    ({"policy": "composite", "sub_policy_num_iters": [3]}, "sub_policy_0_policy must name a policy"),
    ({"policy": "composite", "sub_policy_num_iters": [3], "sub_policy_0_policy": "composite"},
     "other than composite"),
    ({"policy": "composite", "sub_policy_num_iters": [3, 3], "sub_policy_0_policy": "fixed",
      "sub_policy_1_policy": "step"}, "policy step: stepsize must be > 0"),
])
def test_learning_rate_arg_errors_at_create_net(args, message):
    net = make_net("lr", [("LearningRate", ["ITER"], ["LR"], {**args, "base_lr": 0.1})])
    with pytest.raises(NetError, match=message):
        Workspace().CreateNet(net, input_blobs=["ITER"])


def test_validate_takes_sub_policy_args_up_to_the_schema_count():
    args = {"policy": "composite", "base_lr": 0.1, "sub_policy_num_iters": [2],
            "sub_policy_0_policy": "gate", "sub_policy_0_multiplier_2": 0.5}
    net = make_net("lr", [("LearningRate", ["ITER"], ["LR"], args)])
    assert check_net(net, known_blobs=["ITER"]) == []
    net = make_net("lr", [("LearningRate", ["ITER"], ["LR"], {**args, "sub_policy_8_gamma": 0.5})])
    assert [p.kind for p in check_net(net, known_blobs=["ITER"])] == ["unknown-arg"]


# --- WeightedSum -----------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(shape=shapes, pairs=st.integers(1, 4), seed=st.integers(0, 2**16),
       weight_shape=st.sampled_from([(1,), ()]), dtype=st.sampled_from([np.float32, np.float64]))
def test_weighted_sum(shape, pairs, seed, weight_shape, dtype):
    rng = np.random.default_rng(seed)
    inputs = []
    for _ in range(pairs):
        inputs += [randn(rng, shape, dtype), randn(rng, weight_shape)]

    def reference(*xw):
        return sum(x.astype(np.float64) * float(np.ravel(w)[0]) for x, w in zip(xw[0::2], xw[1::2]))

    (y,) = check_reference("WeightedSum", inputs, reference)
    assert y.dtype == dtype


@pytest.mark.parametrize("pairs, grad_on_w", [(1, 0), (2, 0), (1, 1), (3, 1)])
def test_weighted_sum_gradient(pairs, grad_on_w):
    rng = np.random.default_rng(pairs)
    forward = []
    for _ in range(pairs):
        forward += [randn(rng, (2, 3)), randn(rng, (1,))]
    dy = randn(rng, (2, 3))
    xs, ws = forward[0::2], forward[1::2]
    expected = [w * dy for w in ws] + ([np.array([np.sum(dy * x)]) for x in xs] if grad_on_w else [])
    args = {"grad_on_w": grad_on_w}
    check_reference("WeightedSumGradient", [dy] + forward, lambda *_, **__: tuple(expected), args,
                    num_outputs=len(expected))
    wrt = {i: 2 * i for i in range(pairs)}
    if grad_on_w:
        wrt.update({pairs + i: 2 * i + 1 for i in range(pairs)})
    check_gradient_op("WeightedSum", forward, "WeightedSumGradient", [dy] + forward, wrt, [dy], args)


F32 = np.float32
WEIGHTED_SUM_ERRORS = [
    ("WeightedSum", [np.ones((2, 3), F32), np.ones(1, F32), np.ones((3, 2), F32), np.ones(1, F32)], {},
     r"X_0 \[2, 3\], X_1 \[3, 2\]: these must have the same"),
    ("WeightedSum", [np.ones((2, 3), F32), np.ones(1, F32), np.ones((2, 3), F32), np.ones(2, F32)], {},
     r"weight_1 must hold one element, got \[2\]"),
    ("WeightedSumGradient", [np.ones(2, F32), np.ones(2, F32), np.ones(1, F32)], {"grad_on_w": 1},
     "give 2 outputs, not 1"),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, inputs, args, message", WEIGHTED_SUM_ERRORS,
                         ids=["shapes", "weight", "outputs"])
def test_weighted_sum_errors(op_type, inputs, args, message, device):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, device_option=device_option(device))


# --- update rules: independent float64 references ------------------------------------

def momentum_reference(grad, moment, lr, param, momentum=0.0, nesterov=0):
    lr = float(np.ravel(lr)[0])
    new_moment = momentum * moment + lr * grad
    step = (1 + momentum) * new_moment - momentum * moment if nesterov else new_moment
    return step, new_moment, param - step


def momentum_no_param_reference(grad, moment, lr, momentum=0.0, nesterov=0):
    return momentum_reference(grad, moment, lr, np.zeros_like(grad), momentum, nesterov)[:2]


def adagrad_reference(param, moment, grad, lr, epsilon=1e-5, decay=1.0, weight_decay=0.0):
    """(param, history, effective rate, update): Caffe2's 2-, 3- and 4-output Adagrad."""
    grad = grad + weight_decay * param
    history = decay * moment + np.square(grad)
    effective_lr = float(np.ravel(lr)[0]) / (np.sqrt(history) + epsilon)
    return param + effective_lr * grad, history, effective_lr, effective_lr * grad


def adam_reference(param, m1, m2, grad, lr, iteration, beta1=0.9, beta2=0.999, epsilon=1e-5):
    t = int(iteration[0]) + 1
    m1 = beta1 * m1 + (1 - beta1) * grad
    m2 = beta2 * m2 + (1 - beta2) * grad ** 2
    unscaled = math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m1 / (np.sqrt(m2) + epsilon)
    return param + float(np.ravel(lr)[0]) * unscaled, m1, m2, unscaled


def update_inputs(op_type, rng, shape, dtype, iteration=3):
    """Inputs in schema order: tensors of `shape`, a one-element lr, Adam's counter."""
    tensor = lambda: randn(rng, shape, dtype)
    positive = lambda: np.abs(tensor()) + dtype(0.1)
    lr = np.array([rng.uniform(0.01, 0.5)], dtype)
    if op_type == "MomentumSGDUpdate":
        return [tensor(), tensor(), lr, tensor()]
    if op_type == "MomentumSGD":
        return [tensor(), tensor(), lr]
    if op_type == "Adagrad":
        return [tensor(), positive(), tensor(), -lr]
    return [tensor(), tensor(), positive(), tensor(), -lr, counter(iteration)]


UPDATES = [
    ("MomentumSGDUpdate", {}, momentum_reference, 3),
    ("MomentumSGDUpdate", {"momentum": 0.9}, momentum_reference, 3),
    ("MomentumSGDUpdate", {"momentum": 0.9, "nesterov": 1}, momentum_reference, 3),
    ("MomentumSGD", {"momentum": 0.9}, momentum_no_param_reference, 2),
    ("MomentumSGD", {"momentum": 0.5, "nesterov": 1}, momentum_no_param_reference, 2),
    ("Adagrad", {}, adagrad_reference, 2),
    ("Adagrad", {"epsilon": 1e-3, "decay": 0.9}, adagrad_reference, 2),
    ("Adagrad", {"epsilon": 1e-3}, adagrad_reference, 3),
    ("Adagrad", {"epsilon": 1e-4, "decay": 0.9}, adagrad_reference, 4),
    ("Adagrad", {"weight_decay": 0.1}, adagrad_reference, 4),
    ("Adam", {}, adam_reference, 3),
    ("Adam", {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-4}, adam_reference, 4),
]


@pytest.mark.parametrize("op_type, args, reference, num_outputs", UPDATES)
@settings(max_examples=10, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]),
       iteration=st.integers(0, 50))
def test_update_one_step(op_type, args, reference, num_outputs, shape, seed, dtype, iteration):
    inputs = update_inputs(op_type, np.random.default_rng(seed), shape, dtype, iteration)
    wide = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs]
    expected = reference(*wide, **args)[:num_outputs]
    outputs = check_reference(op_type, inputs, lambda *_, **__: expected, args, num_outputs=num_outputs,
                              atol=1e-5, rtol=1e-4)
    assert all(y.dtype == dtype for y in outputs)


@pytest.mark.parametrize("op_type, args, reference, num_outputs", UPDATES)
def test_update_kernels_leave_their_inputs_alone(op_type, args, reference, num_outputs):
    inputs = update_inputs(op_type, np.random.default_rng(0), (3, 4), np.float32)
    before = [x.copy() for x in inputs]
    kernel = load_kernels()[op_type]
    defaults = {"momentum": 0.0, "nesterov": 0, "epsilon": 1e-5, "decay": 1.0, "beta1": 0.9, "beta2": 0.999,
                "weight_decay": 0.0}
    outputs = kernel.function(*inputs, **{name: args.get(name, defaults[name]) for name in kernel.arg_names})
    for x, y in zip(before, inputs):
        np.testing.assert_array_equal(x, y)
    assert not any(np.shares_memory(y, x) for y in outputs for x in inputs)


def test_updates_follow_blob_shapes_of_equal_size():
    """Caffe2 checks sizes, not shapes: each output takes the shape of the blob it replaces."""
    grad, moment, param = np.ones((3, 4), np.float32), np.ones(12, np.float32), np.ones((4, 3), np.float32)
    lr = np.array([0.1], np.float32)
    step, new_moment, new_param = run_op("MomentumSGDUpdate", [grad, moment, lr, param])
    assert (step.shape, new_moment.shape, new_param.shape) == ((3, 4), (12,), (4, 3))


@pytest.mark.parametrize("op_type, inputs, message", [
    ("MomentumSGDUpdate", [np.ones((3, 4)), np.ones((3, 5)), np.ones(1), np.ones((3, 4))],
     r"grad \[3, 4\], moment \[3, 5\], param \[3, 4\]: these must hold the same number of elements"),
    ("Adagrad", [np.ones(3), np.ones(3), np.ones(3), np.ones(2)], r"lr must hold one element, got \[2\]"),
    ("MomentumSGD", [np.ones(3), np.ones(4), np.ones(1)],
     r"grad \[3\], moment \[4\]: these must hold the same number of elements"),
    ("Adam", [np.ones(3)] * 4 + [np.ones(1), np.array([0], np.int32)], "iter must be a one-element int64"),
    ("Adam", [np.ones(3)] * 3 + [np.arange(3), np.ones(1), counter(0)], "grad must be a float tensor"),
])
def test_update_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs)


# --- several steps of a training net ---------------------------------------------------

LR_ARGS = {"base_lr": 0.2, "policy": "step", "stepsize": 2, "gamma": 0.5}


def train(update_op, state, grads):
    """Runs Iter, LearningRate (negated for Adagrad/Adam) and the update once per gradient."""
    workspace = Workspace()
    for name, value in state.items():
        workspace.FeedBlob(name, value)
    workspace.FeedBlob("ITER", counter(0))
    workspace.FeedBlob("grad", grads[0])
    sign = 1 if update_op[0] == "MomentumSGDUpdate" else -1
    lr_args = {**LR_ARGS, "base_lr": sign * LR_ARGS["base_lr"]}
    workspace.CreateNet(make_net("train", [("Iter", ["ITER"], ["ITER"]),
                                           ("LearningRate", ["ITER"], ["lr"], lr_args),
                                           update_op]))
    for grad in grads:
        workspace.FeedBlob("grad", grad)
        workspace.RunNet("train")
    return {name: workspace.FetchBlob(name) for name in state}


def reference_lr(iteration):
    return LR_ARGS["base_lr"] * LR_ARGS["gamma"] ** (iteration // LR_ARGS["stepsize"])


@pytest.mark.parametrize("nesterov", [0, 1])
def test_momentum_sgd_training_steps(nesterov):
    rng = np.random.default_rng(1)
    param, grads = randn(rng, (4, 3)), [randn(rng, (4, 3)) for _ in range(5)]
    args = {"momentum": 0.9, "nesterov": nesterov}
    op = ("MomentumSGDUpdate", ["grad", "moment", "lr", "param"], ["grad", "moment", "param"], args)
    got = train(op, {"param": param, "moment": np.zeros_like(param)}, grads)
    p, m = param.astype(np.float64), np.zeros(param.shape)
    for step, g in enumerate(grads, start=1):
        _, m, p = momentum_reference(g, m, [reference_lr(step)], p, **args)
    np.testing.assert_allclose(got["param"], p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["moment"], m, rtol=1e-5, atol=1e-6)


def test_adagrad_training_steps():
    rng = np.random.default_rng(2)
    param, grads = randn(rng, (5,)), [randn(rng, (5,)) for _ in range(5)]
    args = {"epsilon": 1e-4, "decay": 0.95}
    op = ("Adagrad", ["param", "h", "grad", "lr"], ["param", "h"], args)
    got = train(op, {"param": param, "h": np.zeros_like(param)}, grads)
    p, h = param.astype(np.float64), np.zeros(param.shape)
    for step, g in enumerate(grads, start=1):
        p, h, *_ = adagrad_reference(p, h, g, [-reference_lr(step)], **args)
    np.testing.assert_allclose(got["param"], p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["h"], h, rtol=1e-5, atol=1e-6)


def test_adam_training_steps():
    rng = np.random.default_rng(3)
    param, grads = randn(rng, (2, 3)), [randn(rng, (2, 3)) for _ in range(6)]
    op = ("Adam", ["param", "m1", "m2", "grad", "lr", "ITER"], ["param", "m1", "m2"], {})
    got = train(op, {"param": param, "m1": np.zeros_like(param), "m2": np.zeros_like(param)}, grads)
    p, m1, m2 = param.astype(np.float64), np.zeros(param.shape), np.zeros(param.shape)
    for step, g in enumerate(grads, start=1):
        # The net's Iter runs first, so Adam sees iter = step and corrects with t = step + 1.
        p, m1, m2, _ = adam_reference(p, m1, m2, g, [-reference_lr(step)], [step])
    for name, expected in (("param", p), ("m1", m1), ("m2", m2)):
        np.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-6, err_msg=name)


# --- gradient maker: registered gradient against central differences -----------------

@pytest.mark.parametrize("pairs", [1, 2, 3])
@pytest.mark.parametrize("grad_on_w", [0, 1])
@settings(max_examples=3, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), seed=st.integers(0, 2**16),
       weight_shape=st.sampled_from([(1,), ()]))
def test_weighted_sum_registered_gradient(pairs, grad_on_w, shape, seed, weight_shape):
    rng = np.random.default_rng(seed)
    inputs, names = [], []
    for i in range(pairs):
        inputs += [randn(rng, shape, np.float64), randn(rng, weight_shape, np.float64)]
        names += [f"X_{i}", f"w_{i}"]
    op = make_op("WeightedSum", names, ["Y"], {"grad_on_w": grad_on_w})
    _, g_input = GetGradientForOp(op, ["Y_grad"])
    # As in Caffe2, the weights get a gradient only with grad_on_w=1.
    assert g_input == [f"{name}_grad" if grad_on_w or name.startswith("X") else None for name in names]
    for input_to_check, gradient in enumerate(g_input):
        if gradient is not None:
            report = check_op_gradient(op, inputs, input_to_check)
            assert report.ok, report


# --- CUDA against the CPU twin ------------------------------------------------------

load_kernels()
cuda_rng = np.random.default_rng(0)


def randn32(shape):
    return cuda_rng.standard_normal(shape).astype(np.float32)


def scalar(value):
    return np.array([value], np.float32)


def weighted_sum_inputs(pairs):
    return lambda s: [v for i in range(pairs) for v in (randn32(s), scalar(0.5 - 0.7 * i))]


# op type -> (inputs for a shape, args, outputs compared)
CASES = {
    "WeightedSum": (weighted_sum_inputs(3), {}, 1),
    "MomentumSGDUpdate": (lambda s: [randn32(s), randn32(s), scalar(-0.1), randn32(s)], {"momentum": 0.9}, 3),
    "Adagrad": (lambda s: [randn32(s), np.abs(randn32(s)), randn32(s), scalar(-0.01)], {"epsilon": 1e-4, "decay": 0.95,
                                                                                          "weight_decay": 0.05},
                4),
    "Adam": (lambda s: [randn32(s), randn32(s), np.abs(randn32(s)), randn32(s), scalar(-0.001), np.array([4], np.int64)],
             {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6}, 4),
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
SHAPES = [(7,), (3, 5, 4), (1 << 20,)]
DEVICE_CHECKED.update({"WeightedSumGradient", "LearningRate"})  # tested below


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op_type", sorted(CASES))
def test_cuda_update_matches_cpu(op_type, shape):
    make_inputs, args, count = CASES[op_type]
    check_devices(op_type, make_inputs(shape), args, count)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("pairs", [1, 2, 5])
@pytest.mark.parametrize("shape", SHAPES)
def test_cuda_weighted_sum_any_number_of_pairs(pairs, shape):
    check_devices("WeightedSum", weighted_sum_inputs(pairs)(shape), {})


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("nesterov", [0, 1])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_cuda_momentum_sgd_both_kinds(nesterov, momentum):
    s = (1001, 3)
    check_devices("MomentumSGDUpdate", [randn32(s), randn32(s), scalar(-0.05), randn32(s)],
                  {"momentum": momentum, "nesterov": nesterov}, 3)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_updates_keep_each_blobs_shape():
    """Sizes must agree, shapes need not: each output keeps its blob's shape."""
    outputs = check_devices("Adam", [randn32((4, 6)), randn32(24), np.abs(randn32((2, 12))), randn32((6, 4)), scalar(-0.01),
                                     np.array([0], np.int64)], {}, 4)
    assert [o.shape for o in outputs] == [(4, 6), (24,), (2, 12), (6, 4)]


def run_mixed(op_type, inputs, on_cpu, args, count):
    """The op on CUDA with inputs `on_cpu` (indices) left on the CPU."""
    cuda_option = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
    workspace = Workspace("_mixed")
    names = [f"in{i}" for i in range(len(inputs))]
    for index, (name, value) in enumerate(zip(names, inputs)):
        workspace.FeedBlob(name, value, device_option=None if index in on_cpu else cuda_option)
    op = make_op(op_type, names, [f"out{i}" for i in range(count)], args)
    op.device_option.CopyFrom(cuda_option)
    workspace.RunOperatorOnce(op)
    return [workspace.FetchBlob(f"out{i}") for i in range(count)]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, on_cpu", [("MomentumSGDUpdate", {2}), ("Adagrad", {3}), ("Adam", {4, 5}),
                                             ("WeightedSum", {1, 3, 5})])
def test_cuda_updates_take_a_cpu_learning_rate_and_counter(op_type, on_cpu):
    make_inputs, args, count = CASES[op_type]
    inputs = make_inputs((5, 3))
    got = run_mixed(op_type, inputs, on_cpu, args, count)
    assert_outputs_close(got, run_op(op_type, inputs, args, count), atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_adam_without_its_optional_step_output():
    make_inputs, args, _ = CASES["Adam"]
    check_devices("Adam", make_inputs((9, 2)), args, 3)


def weighted_sum_gradient_inputs(shape, pairs):
    """{dY, X_0, weight_0, X_1, weight_1, ...}."""
    return [randn32(shape), *weighted_sum_inputs(pairs)(shape)]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("grad_on_w", [0, 1])
@pytest.mark.parametrize("pairs", [1, 3])
@pytest.mark.parametrize("shape", [(), (7,), (3, 5, 4), (0, 3), (1 << 20,)], ids=str)
def test_cuda_weighted_sum_gradient_matches_cpu(shape, pairs, grad_on_w):
    inputs = weighted_sum_gradient_inputs(shape, pairs)
    args = {"grad_on_w": grad_on_w}
    count = pairs * (2 if grad_on_w else 1)
    # dX to the bit; dw sums in double on the GPU, in float32 (vdot) on the CPU
    gpu = check_devices("WeightedSumGradient", inputs, args, count, atol=1e-4, rtol=1e-4)
    cpu = run_op("WeightedSumGradient", inputs, args, count)
    assert_outputs_close(gpu[:pairs], cpu[:pairs], atol=0, rtol=0)
    for dw, x in zip(gpu[pairs:], inputs[1::2]):
        exact = np.vdot(inputs[0].astype(np.float64), x.astype(np.float64))
        assert dw.shape == (1,) and dw.dtype == np.float32
        np.testing.assert_allclose(dw, exact, rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_weighted_sum_gradient_refusals_as_on_the_cpu():
    inputs = weighted_sum_gradient_inputs((4, 3), 2)
    with pytest.raises((OpFailure, NetError), match="give 4 outputs, not 2"):
        check_devices("WeightedSumGradient", inputs, {"grad_on_w": 1}, 2)
    inputs[3] = randn32((3, 4))
    with pytest.raises((OpFailure, NetError), match="must have the same shape"):
        check_devices("WeightedSumGradient", inputs, {}, 2)


LEARNING_RATES = [
    {"policy": "fixed"},
    {"policy": "step", "gamma": 0.5, "stepsize": 3},
    {"policy": "exp", "gamma": 0.99},
    {"policy": "inv", "gamma": 0.01, "power": 0.75},
    {"policy": "multistep", "gamma": 0.3, "stepsizes": [2, 5, 9]},
    {"policy": "poly", "max_iter": 20, "power": 2.0},
    {"policy": "linearWarmup", "start_multiplier": 0.1, "num_iter": 5},
    {"policy": "constantWarmup", "multiplier": 0.2, "num_iter": 5},
    {"policy": "alter", "active_period": 3, "inactive_period": 2},
    {"policy": "alter", "active_period": 3, "inactive_period": 2, "active_first": 0},
    {"policy": "hill", "num_iter": 4, "start_multiplier": 0.1, "gamma": 0.1, "power": 0.5,
     "end_multiplier": 0.2},
]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("iteration", [0, 1, 4, 7, 100, 10**6])
@pytest.mark.parametrize("args", LEARNING_RATES, ids=str)
def test_cuda_learning_rate_matches_cpu(args, iteration):
    args = {"base_lr": -0.1, "lr_scale": 0.7, **args}
    counter = np.array([iteration], np.int64)
    gpu = check_devices("LearningRate", [counter], args, atol=0, rtol=0)[0]  # the counter fed to the GPU
    assert gpu.dtype == np.float32 and gpu.shape == ()
    on_cpu = run_mixed("LearningRate", [counter], {0}, args, 1)[0]  # the counter left on the CPU
    assert_outputs_close([on_cpu], run_op("LearningRate", [counter], args), atol=0, rtol=0)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_learning_rate_refusals_as_on_the_cpu():
    with pytest.raises((OpFailure, NetError), match="iter must be a one-element int64 tensor"):
        run_mixed("LearningRate", [np.array([1, 2], np.int64)], {0}, {"base_lr": 0.1, "policy": "fixed"}, 1)
    with pytest.raises((OpFailure, NetError), match="stepsize must be > 0"):
        run_mixed("LearningRate", [np.array([1], np.int64)], {0}, {"base_lr": 0.1, "policy": "step"}, 1)


# --- shape and type inference -------------------------------------------------------

COUNTER = TensorInfo((1,), "int64")
LR = TensorInfo((1,), "float32")




def test_every_op_with_tensor_outputs_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "training"}
    assert len(family) == 10
    assert [name for name, s in family.items() if s.inference == "none"] == ["CreateMutex"]


def test_iter_counters():
    assert infer("Iter", []) == [COUNTER]
    assert infer("Iter", [COUNTER]) == [COUNTER]
    assert infer("AtomicIter", [None, COUNTER]) == [COUNTER]
    assert infer("Iter", [TensorInfo((1,), "int32")]) == [COUNTER]
    with pytest.raises(ShapeError, match=r"iter must be a one-element int64 \(or int32\) tensor, "
                                         r"got \[1\] float32"):
        infer("Iter", [TensorInfo((1,), "float32")])
    with pytest.raises(ShapeError, match=r"iter must be a one-element int64 tensor, got \[1\] int32"):
        infer("AtomicIter", [None, TensorInfo((1,), "int32")])
    with pytest.raises(ShapeError, match=r"got \[2\] int64"):
        infer("AtomicIter", [None, TensorInfo((2,), "int64")])


def test_learning_rate_is_a_scalar():
    lr = -0.1 * np.power(0.9, np.int64(7) // 2).astype(np.float32)
    assert infer("LearningRate", [COUNTER], base_lr=-0.1, policy="step", stepsize=2) == [
        TensorInfo(lr.shape, lr.dtype.name)]
    assert infer("LearningRate", [None], base_lr=-0.1, policy="fixed") == [
        TensorInfo((), "float32")]
    with pytest.raises(ShapeError, match=r"iter must be a one-element int64 tensor"):
        infer("LearningRate", [(1,)], base_lr=-0.1, policy="fixed")


@pytest.mark.parametrize("n_pairs", [1, 2, 3])
def test_weighted_sum_matches_numpy(n_pairs):
    xs = [np.random.rand(2, 3).astype(np.float32) for _ in range(n_pairs)]
    ws = [np.random.rand(1).astype(np.float32) for _ in range(n_pairs)]
    expected = sum(w * x for w, x in zip(ws, xs))
    shapes = [s for x, w in zip(xs, ws) for s in (x.shape, w.shape)]
    assert infer("WeightedSum", shapes) == [TensorInfo(expected.shape, expected.dtype.name)]
    assert infer("WeightedSum", [None, (1,)] + shapes[2:]) == [
        None if n_pairs == 1 else TensorInfo((2, 3))]


def test_weighted_sum_inference_errors():
    with pytest.raises(ShapeError, match=r"X_0 \[2, 3\], X_1 \[3, 2\]: these must have the same"):
        infer("WeightedSum", [(2, 3), (1,), (3, 2), (1,)])
    with pytest.raises(ShapeError, match=r"weight_1 must hold one element, got \[2\]"):
        infer("WeightedSum", [(2, 3), (1,), (2, 3), (2,)])


def test_weighted_sum_gradient_inference():
    shapes = [(2, 3), (2, 3), (1,), (2, 3), ()]
    assert infer("WeightedSumGradient", shapes, n_out=2) == [TensorInfo((2, 3))] * 2
    out = infer("WeightedSumGradient", shapes, n_out=4, grad_on_w=1)
    assert out == [TensorInfo((2, 3))] * 2 + [TensorInfo((1,)), TensorInfo(())]
    with pytest.raises(ShapeError, match=r"dY \[2, 3\], X_0 \[2, 4\]"):
        infer("WeightedSumGradient", [(2, 3), (2, 4), (1,)])


def test_momentum_sgd_update():
    grad, moment, param = (np.zeros((3, 4), np.float32) for _ in range(3))
    step = 0.1 * grad + 0.9 * moment
    out = infer("MomentumSGDUpdate", [grad.shape, moment.shape, (1,), param.shape], n_out=3)
    assert out == [TensorInfo(step.shape), TensorInfo(step.shape), TensorInfo((param - step).shape)]
    assert infer("MomentumSGDUpdate", [None, None, None, (12,)], n_out=3) == [
        None, None, TensorInfo((12,))]
    with pytest.raises(ShapeError, match=r"lr must hold one element, got \[2\]"):
        infer("MomentumSGDUpdate", [(3, 4), (3, 4), (2,), (3, 4)], n_out=3)
    with pytest.raises(ShapeError, match=r"grad \[3, 4\], moment \[3, 5\], param \[3, 4\]: "
                                         r"these must hold the same number of elements"):
        infer("MomentumSGDUpdate", [(3, 4), (3, 5), (1,), (3, 4)], n_out=3)


def test_momentum_sgd():
    assert infer("MomentumSGD", [(3, 4), (12,), (1,)], n_out=2) == [TensorInfo((3, 4)), TensorInfo((12,))]
    with pytest.raises(ShapeError, match=r"lr must hold one element, got \[2\]"):
        infer("MomentumSGD", [(3, 4), (3, 4), (2,)], n_out=2)


def test_adagrad():
    out = infer("Adagrad", [(3, 4), (3, 4), (3, 4), (1,)], n_out=2)
    assert out == [TensorInfo((3, 4)), TensorInfo((3, 4))]
    assert infer("Adagrad", [(3, 4), (12,), (3, 4), ()], n_out=2)[1] == TensorInfo((12,))
    assert infer("Adagrad", [(12,), (12,), (3, 4), (1,)], n_out=4)[2:] == [TensorInfo((3, 4))] * 2
    with pytest.raises(ShapeError, match=r"param \[3, 4\], moment \[3, 4\], grad \[4, 4\]"):
        infer("Adagrad", [(3, 4), (3, 4), (4, 4), (1,)], n_out=2)


def test_adam():
    shapes = [(3, 4), (3, 4), (3, 4), (3, 4), LR, COUNTER]
    assert infer("Adam", shapes, n_out=4) == [TensorInfo((3, 4))] * 4
    assert infer("Adam", shapes, n_out=3) == [TensorInfo((3, 4))] * 3
    with pytest.raises(ShapeError, match="iter must be a one-element int64 tensor"):
        infer("Adam", shapes[:5] + [LR], n_out=3)
    with pytest.raises(ShapeError, match=r"moment_2 \[3\]"):
        infer("Adam", [(3, 4), (3, 4), (3,), (3, 4), LR, COUNTER], n_out=3)
