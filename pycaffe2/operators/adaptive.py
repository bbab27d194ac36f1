"""NumPy kernels of the adaptive family: the RmsProp, Ftrl and Adadelta updates.
As the training family's updates, they work element by element on tensors of the
same number of elements, give each output the shape of the blob it replaces and
return new arrays.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.operators.training import _check_tensors, _scalar, check_floats
from pycaffe2.schema.inference.adaptive import ftrl_sizes


@register_cpu("RmsProp")
def rms_prop(grad, mean_squares, mom, lr, *, decay, momentum, epsilon):
    _check_tensors({"grad": grad, "mean_squares": mean_squares, "mom": mom})
    t = grad.dtype.type
    lr = _scalar("lr", lr, grad.dtype)
    ms = mean_squares.reshape(grad.shape)
    new_ms = ms + t(1 - decay) * (grad * grad - ms)
    new_mom = t(momentum) * mom.reshape(grad.shape) + lr * grad / np.sqrt(t(epsilon) + new_ms)
    return new_mom.copy(), new_ms.reshape(mean_squares.shape), new_mom.reshape(mom.shape)


@register_cpu("Ftrl")
def ftrl(var, n_z, grad, *alpha_input, alpha, beta, lambda1, lambda2):
    check_floats({"var": var, "n_z": n_z, "grad": grad})
    ftrl_sizes(var.shape, n_z.shape, grad.shape)
    t = var.dtype.type
    if alpha_input:
        alpha = _scalar("alpha", alpha_input[0], var.dtype)
    alpha_inv = t(1) / t(alpha)
    w, g = var.reshape(-1), grad.reshape(-1)
    pairs = n_z.reshape(-1, 2)
    n, z = pairs[:, 0], pairs[:, 1]
    new_n = n + g * g
    new_z = z + g - (np.sqrt(new_n) - np.sqrt(n)) * alpha_inv * w
    shrunk = (t(lambda1) * np.sign(new_z) - new_z) / ((t(beta) + np.sqrt(new_n)) * alpha_inv + t(lambda2))
    new_w = np.where(np.abs(new_z) > t(lambda1), shrunk, t(0))
    return new_w.reshape(var.shape), np.stack([new_n, new_z], axis=1).reshape(n_z.shape)


@register_cpu("Adadelta")
def adadelta(param, moment, moment_delta, grad, lr, *, epsilon, decay):
    _check_tensors({"param": param, "moment": moment, "moment_delta": moment_delta, "grad": grad})
    t = param.dtype.type
    lr = _scalar("lr", lr, param.dtype)
    g = grad.reshape(param.shape)
    d = moment_delta.reshape(param.shape)
    new_moment = t(decay) * moment.reshape(param.shape) + t(1 - decay) * g * g
    step = np.sqrt(d + t(epsilon)) / np.sqrt(new_moment + t(epsilon)) * g
    new_delta = t(decay) * d + t(1 - decay) * step * step
    return (param + lr * step, new_moment.reshape(moment.shape), new_delta.reshape(moment_delta.shape))
