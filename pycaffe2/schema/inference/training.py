"""Inference rules of the training family.

The iteration counter is an int64 [1] tensor and the learning rate it drives
a 0-d float scalar. Update ops give each updated blob the shape of the blob it
replaces; their tensors (parameter, gradient, moments) must hold the same
number of elements, and learning rates one element.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, TensorInfo, rule

COUNTER = TensorInfo((1,), "int64")


def check_counter(op: OpView, info) -> None:
    """Raise unless a known counter is a one-element int64 tensor."""
    if info is not None and (info.dtype != "int64" or math.prod(info.shape) != 1):
        raise ShapeError(f"{op.type}: iter must be a one-element int64 tensor, "
                         f"got {info.describe()}")


def check_scalar(op: OpView, info, name: str) -> None:
    """Raise unless a known tensor holds exactly one element."""
    if info is not None and math.prod(info.shape) != 1:
        raise ShapeError(f"{op.type}: {name} must hold one element, got {list(info.shape)}")


def _check_known(op: OpView, named: dict, measure, what: str) -> None:
    known = {name: info for name, info in named.items() if info is not None}
    if len({measure(info) for info in known.values()}) > 1:
        shapes = ", ".join(f"{name} {list(info.shape)}" for name, info in known.items())
        raise ShapeError(f"{op.type}: {shapes}: these must {what}")


def check_sizes(op: OpView, named: dict) -> None:
    """Raise unless the known tensors all hold the same number of elements."""
    _check_known(op, named, lambda info: math.prod(info.shape), "hold the same number of elements")


def check_shapes(op: OpView, named: dict) -> None:
    """Raise unless the known tensors all have the same shape."""
    _check_known(op, named, lambda info: info.shape, "have the same shape")


@rule("training_iter")
def iter_(op: OpView, inputs: list) -> list:
    """The counter: int64 [1]."""
    check_counter(op, inputs[0] if inputs else None)
    return [COUNTER]


@rule("training_atomic_iter")
def atomic_iter(op: OpView, inputs: list) -> list:
    """The counter (input 1): int64 [1]."""
    check_counter(op, inputs[1])
    return [COUNTER]


@rule("training_learning_rate")
def learning_rate(op: OpView, inputs: list) -> list:
    """A 0-d float32 scalar from the int64 counter."""
    check_counter(op, inputs[0])
    return [TensorInfo((), "float32")]


def _pairs(op: OpView, tensors: list) -> tuple[dict, list]:
    """({"X_i": info}, [w_i]) from X_0, w_0, X_1, w_1, ...; weights must hold one element."""
    xs, weights = tensors[0::2], tensors[1::2]
    for index, weight in enumerate(weights):
        check_scalar(op, weight, f"weight_{index}")
    return {f"X_{index}": x for index, x in enumerate(xs)}, weights


def _first_known(infos) -> TensorInfo | None:
    return next((info for info in infos if info is not None), None)


@rule("training_weighted_sum")
def weighted_sum(op: OpView, inputs: list) -> list:
    """Y is like X_0; every X_i has X_0's shape and every weight one element."""
    xs, _ = _pairs(op, inputs)
    check_shapes(op, xs)
    return [_first_known(xs.values())]


@rule("training_weighted_sum_gradient")
def weighted_sum_gradient(op: OpView, inputs: list) -> list:
    """dX_i is like dY (and X_i), then with grad_on_w=1 dw_i is like w_i."""
    xs, weights = _pairs(op, inputs[1:])
    named = {"dY": inputs[0], **xs}
    check_shapes(op, named)
    dx = _first_known(named.values())
    return [dx] * len(xs) + (list(weights) if op.arg("grad_on_w", 0) else [])


@rule("training_momentum_sgd_update")
def momentum_sgd_update(op: OpView, inputs: list) -> list:
    """(step, moment, param) like (grad, moment, param); lr holds one element."""
    grad, moment, lr, param = inputs
    check_scalar(op, lr, "lr")
    check_sizes(op, {"grad": grad, "moment": moment, "param": param})
    return [grad, moment, param]


@rule("training_adagrad")
def adagrad(op: OpView, inputs: list) -> list:
    """(param, moment) keep their shapes; lr holds one element."""
    param, moment, grad, lr = inputs
    check_scalar(op, lr, "lr")
    check_sizes(op, {"param": param, "moment": moment, "grad": grad})
    return [param, moment]


@rule("training_adam")
def adam(op: OpView, inputs: list) -> list:
    """(param, moment_1, moment_2, step) like (param, moment_1, moment_2, grad)."""
    param, moment_1, moment_2, grad, lr, iteration = inputs
    check_scalar(op, lr, "lr")
    check_counter(op, iteration)
    check_sizes(op, {"param": param, "moment_1": moment_1, "moment_2": moment_2, "grad": grad})
    return [param, moment_1, moment_2, grad]
