"""Inference rules of the adaptive family (RmsProp, Ftrl, GFtrl, Adadelta, Wngrad).

Each updated blob keeps the shape of the blob it replaces; the tensors must
hold the same number of elements (Ftrl's n_z twice var's), learning rates one.
The checks take plain shapes: the kernels call them too.
"""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule, same_sizes
from pycaffe2.schema.inference.training import _counter, _one_element, _shapes


def ftrl_sizes(var_shape, n_z_shape, grad_shape) -> None:
    """Raise unless grad holds var's number of elements and n_z twice that."""
    same_sizes({"var": var_shape, "grad": grad_shape})
    if var_shape is not None and n_z_shape is not None and math.prod(n_z_shape) != 2 * math.prod(var_shape):
        raise ShapeError(f"n_z {list(n_z_shape)} must hold two elements (n, z) per element of "
                         f"var {list(var_shape)}")


@rule("adaptive_rms_prop")
def rms_prop(op: OpView, inputs: list) -> list:
    grad, mean_squares, mom, lr = inputs
    _one_element(lr, "lr")
    same_sizes(_shapes({"grad": grad, "mean_squares": mean_squares, "mom": mom}))
    return [grad, mean_squares, mom]


@rule("adaptive_ftrl")
def ftrl(op: OpView, inputs: list) -> list:
    var, n_z, grad = inputs[:3]
    if len(inputs) > 3:
        _one_element(inputs[3], "alpha")
    ftrl_sizes(*_shapes({"var": var, "n_z": n_z, "grad": grad}).values())
    return [var, n_z]


@rule("adaptive_adadelta")
def adadelta(op: OpView, inputs: list) -> list:
    param, moment, moment_delta, grad, lr = inputs
    _one_element(lr, "lr")
    same_sizes(_shapes({"param": param, "moment": moment, "moment_delta": moment_delta, "grad": grad}))
    return [param, moment, moment_delta]


def gftrl_grad(grad_shape) -> None:
    """Raise unless grad has a first axis (GFtrl groups the weights along the rest)."""
    if len(grad_shape) < 1:
        raise ShapeError("grad must be at least 1-D (its first axis is the output axis)")


@rule("adaptive_gftrl")
def gftrl(op: OpView, inputs: list) -> list:
    var, n_z, grad = inputs[:3]
    if len(inputs) > 3:
        _one_element(inputs[3], "alpha")
    if grad is not None:
        gftrl_grad(grad.shape)
    ftrl_sizes(*_shapes({"var": var, "n_z": n_z, "grad": grad}).values())
    return [var, n_z]


@rule("adaptive_wngrad")
def wngrad(op: OpView, inputs: list) -> list:
    """(param, seq_b, effective_lr, update) like (param, seq_b, seq_b, grad)."""
    param, seq_b, grad, lr = inputs
    _one_element(lr, "lr")
    _one_element(seq_b, "seq_b")
    same_sizes(_shapes({"param": param, "grad": grad}))
    return [param, seq_b, seq_b, grad][:op.n_outputs]


@rule("adaptive_decay_adagrad")
def decay_adagrad(op: OpView, inputs: list) -> list:
    param, moment_1, moment_2, grad, lr, iteration = inputs
    _one_element(lr, "lr")
    _counter(iteration)
    same_sizes(_shapes({"param": param, "moment_1": moment_1, "moment_2": moment_2, "grad": grad}))
    return [param, moment_1, moment_2]


@rule("adaptive_storm")
def storm(op: OpView, inputs: list) -> list:
    param, moment, grad_sq_sum, grad, lr = inputs
    _one_element(lr, "lr")
    _one_element(grad_sq_sum, "grad_sq_sum")
    same_sizes(_shapes({"param": param, "moment": moment, "grad": grad}))
    return [param, moment, grad_sq_sum]
