"""Inference rules of the training family.

The iteration counter is an int64 [1] tensor and the learning rate it drives
a 0-d float scalar. Update ops give each updated blob the shape of the blob it
replaces; their tensors (parameter, gradient, moments) must hold the same
number of elements, and learning rates one element. The checks take plain
shapes and dtypes: the kernels call them too.
"""
from __future__ import annotations

import math
import re

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule, same_shapes, same_sizes

COUNTER = TensorInfo((1,), "int64")


def counter(dtype, shape, widens: bool = False) -> None:
    """Raise unless a counter (dtype, shape) is a one-element int64 tensor (or int32,
    for Iter, which `widens` it to int64)."""
    allowed = ("int64", "int32") if widens else ("int64",)
    if str(dtype) not in allowed or math.prod(shape) != 1:
        kinds = "int64 (or int32)" if widens else "int64"
        raise ShapeError(f"iter must be a one-element {kinds} tensor, got {list(shape)} {dtype}")


def one_element(shape, name: str) -> None:
    """Raise unless a tensor of `shape` holds exactly one element."""
    if math.prod(shape) != 1:
        raise ShapeError(f"{name} must hold one element, got {list(shape)}")


def weighted_sum_gradient_outputs(pairs: int, grad_on_w, num_outputs: int) -> None:
    """WeightedSumGradient gives dX_i for every pair, then dw_i too with grad_on_w."""
    expected = pairs * (2 if grad_on_w else 1)
    if num_outputs != expected:
        raise ShapeError(f"{pairs} (X, weight) pairs with grad_on_w={int(bool(grad_on_w))} give "
                         f"{expected} outputs, not {num_outputs}")


# LearningRate policy -> (what must hold of its args, the message when it does not)
POLICY_REQUIREMENTS = {
    "step": (lambda a: a["stepsize"] > 0, "stepsize must be > 0"),
    "multistep": (lambda a: bool(a["stepsizes"]), "stepsizes must list at least one iteration"),
    "poly": (lambda a: a["max_iter"] > 0, "max_iter must be > 0"),
    "alter": (lambda a: min(a["active_period"], a["inactive_period"]) >= 0
              and a["active_period"] + a["inactive_period"] > 0,
              "active_period and inactive_period must be >= 0, not both 0"),
    "slope": (lambda a: a["num_iter_2"] > a["num_iter_1"], "num_iter_2 must be > num_iter_1"),
    "cyclical": (lambda a: a["stepsize"] > 0, "stepsize must be > 0"),
    "cosine": (lambda a: a["period"] > 0 and a["t_mult"] > 0, "period and t_mult must be > 0"),
    "compositeCyclical": (lambda a: a["cyclical_step_size"] > 0, "cyclical_step_size must be > 0"),
    "compositeCosine": (lambda a: a["cosine_period"] > 0 and a["cosine_t_mult"] > 0,
                        "cosine_period and cosine_t_mult must be > 0"),
}


SUB_POLICY = "sub_policy_{i}_"  # composite: sub-policy i's args are this + the arg's name


def sub_policies(args: dict) -> list[dict]:
    """composite's sub-policies: each one's args (policy, lr_scale, ...) by their plain
    names, with num_iter_start, the first iteration it runs (Caffe2 counts from 1)."""
    num_iters = list(args.get("sub_policy_num_iters") or [])
    limit = sum(1 for name in args if re.fullmatch(r"sub_policy_\d+_policy", name))  # the schema's count
    if not num_iters or len(num_iters) > limit or min(num_iters) <= 0:
        raise ShapeError(f"policy composite: sub_policy_num_iters must list 1 to {limit} "
                         f"iteration counts > 0, got {num_iters}")
    subs, start = [], 1
    for i, num_iter in enumerate(num_iters):
        prefix = SUB_POLICY.format(i=i)
        sub = {name[len(prefix):]: value for name, value in args.items() if name.startswith(prefix)}
        if sub.get("policy") in (None, "", "composite"):
            raise ShapeError(f"policy composite: {prefix}policy must name a policy other than "
                             f"composite, got {sub.get('policy')!r}")
        sub["num_iter_start"] = start
        subs.append(sub)
        start += num_iter
    return subs


def learning_rate_policy(policy: str, args: dict) -> None:
    """Raise unless LearningRate's args suit its policy (for composite, each sub-policy's)."""
    if policy == "composite":
        for sub in sub_policies(args):
            learning_rate_policy(sub["policy"], sub)
        return
    holds, message = POLICY_REQUIREMENTS.get(policy, (lambda a: True, ""))
    if not holds(args):
        raise ShapeError(f"policy {policy}: {message}")


def _shapes(named: dict) -> dict:
    """name -> shape (None where unknown) of name -> TensorInfo."""
    return {name: None if info is None else info.shape for name, info in named.items()}


def _counter(info) -> None:
    if info is not None:
        counter(info.dtype, info.shape)


def _one_element(info, name: str) -> None:
    if info is not None:
        one_element(info.shape, name)


@rule("training_iter")
def iter_(op: OpView, inputs: list) -> list:
    """The counter: int64 [1] (an int32 one is widened)."""
    if inputs and inputs[0] is not None:
        counter(inputs[0].dtype, inputs[0].shape, widens=True)
    return [COUNTER]


@rule("training_atomic_iter")
def atomic_iter(op: OpView, inputs: list) -> list:
    """The counter (input 1): int64 [1]."""
    _counter(inputs[1])
    return [COUNTER]


@rule("training_learning_rate")
def learning_rate(op: OpView, inputs: list) -> list:
    """A 0-d float32 scalar from the int64 counter."""
    _counter(inputs[0])
    learning_rate_policy(op.arg("policy"), op.args)
    return [TensorInfo((), "float32")]


def _pairs(tensors: list) -> tuple[dict, list]:
    """({"X_i": info}, [w_i]) from X_0, w_0, X_1, w_1, ...; weights must hold one element."""
    xs, weights = tensors[0::2], tensors[1::2]
    for index, weight in enumerate(weights):
        _one_element(weight, f"weight_{index}")
    return {f"X_{index}": x for index, x in enumerate(xs)}, weights


def _first_known(infos) -> TensorInfo | None:
    return next((info for info in infos if info is not None), None)


@rule("training_weighted_sum")
def weighted_sum(op: OpView, inputs: list) -> list:
    """Y is like X_0; every X_i has X_0's shape and every weight one element."""
    xs, _ = _pairs(inputs)
    same_shapes(_shapes(xs))
    return [_first_known(xs.values())]


@rule("training_weighted_sum_gradient")
def weighted_sum_gradient(op: OpView, inputs: list) -> list:
    """dX_i is like dY (and X_i), then with grad_on_w=1 dw_i is like w_i."""
    xs, weights = _pairs(inputs[1:])
    named = {"dY": inputs[0], **xs}
    same_shapes(_shapes(named))
    weighted_sum_gradient_outputs(len(xs), op.arg("grad_on_w", 0), op.n_outputs)
    dx = _first_known(named.values())
    return [dx] * len(xs) + (list(weights) if op.arg("grad_on_w", 0) else [])


@rule("training_momentum_sgd_update")
def momentum_sgd_update(op: OpView, inputs: list) -> list:
    """(step, moment, param) like (grad, moment, param); lr holds one element."""
    grad, moment, lr, param = inputs
    _one_element(lr, "lr")
    same_sizes(_shapes({"grad": grad, "moment": moment, "param": param}))
    return [grad, moment, param]


@rule("training_momentum_sgd")
def momentum_sgd(op: OpView, inputs: list) -> list:
    """(step, moment) like (grad, moment); lr holds one element."""
    grad, moment, lr = inputs
    _one_element(lr, "lr")
    same_sizes(_shapes({"grad": grad, "moment": moment}))
    return [grad, moment]


@rule("training_adagrad")
def adagrad(op: OpView, inputs: list) -> list:
    """(param, moment) keep their shapes, the effective rate and update take grad's; lr
    holds one element."""
    param, moment, grad, lr = inputs
    _one_element(lr, "lr")
    same_sizes(_shapes({"param": param, "moment": moment, "grad": grad}))
    return [param, moment, grad, grad]


@rule("training_adam")
def adam(op: OpView, inputs: list) -> list:
    """(param, moment_1, moment_2, step) like (param, moment_1, moment_2, grad)."""
    param, moment_1, moment_2, grad, lr, iteration = inputs
    _one_element(lr, "lr")
    _counter(iteration)
    same_sizes(_shapes({"param": param, "moment_1": moment_1, "moment_2": moment_2, "grad": grad}))
    return [param, moment_1, moment_2, grad]
