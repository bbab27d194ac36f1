"""NumPy kernels of the adaptive family: the RmsProp, Ftrl, GFtrl, Adadelta,
Wngrad, DecayAdagrad and Storm updates.
As the training family's updates, they work element by element on tensors of the
same number of elements, give each output the shape of the blob it replaces and
return new arrays.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.operators.training import _check_tensors, _scalar, check_floats, read_counter
from pycaffe2.schema.inference import same_sizes
from pycaffe2.schema.inference.adaptive import ftrl_sizes, gftrl_grad
from pycaffe2.schema.inference.training import one_element


@register_cpu("RmsProp")
def rms_prop(grad, mean_squares, mom, lr, *, decay, momentum, epsilon):
    _check_tensors({"grad": grad, "mean_squares": mean_squares, "mom": mom})
    t = grad.dtype.type
    lr = _scalar("lr", lr, grad.dtype)
    ms = mean_squares.reshape(grad.shape)
    new_ms = ms + t(1 - decay) * (grad * grad - ms)
    new_mom = t(momentum) * mom.reshape(grad.shape) + lr * grad / np.sqrt(t(epsilon) + new_ms)
    return new_mom.copy(), new_ms.reshape(mean_squares.shape), new_mom.reshape(mom.shape)


def ftrl_step(w, n, z, g, alpha, beta, lambda1, lambda2):
    """Ftrl's (w_new, n_new, z_new) for arrays of weights, their n and z and gradients."""
    t = w.dtype.type
    alpha_inv = t(1) / t(alpha)
    new_n = n + g * g
    new_z = z + g - (np.sqrt(new_n) - np.sqrt(n)) * alpha_inv * w
    shrunk = (t(lambda1) * np.sign(new_z) - new_z) / ((t(beta) + np.sqrt(new_n)) * alpha_inv + t(lambda2))
    return np.where(np.abs(new_z) > t(lambda1), shrunk, t(0)), new_n, new_z


@register_cpu("Ftrl")
def ftrl(var, n_z, grad, *alpha_input, alpha, beta, lambda1, lambda2):
    check_floats({"var": var, "n_z": n_z, "grad": grad})
    ftrl_sizes(var.shape, n_z.shape, grad.shape)
    if alpha_input:
        alpha = _scalar("alpha", alpha_input[0], var.dtype)
    pairs = n_z.reshape(-1, 2)
    new_w, new_n, new_z = ftrl_step(var.reshape(-1), pairs[:, 0], pairs[:, 1], grad.reshape(-1),
                                    alpha, beta, lambda1, lambda2)
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


@register_cpu("GFtrl")
def gftrl(var, n_z, grad, *alpha_input, alpha, beta, lambda1, lambda2):
    check_floats({"var": var, "n_z": n_z, "grad": grad})
    gftrl_grad(grad.shape)
    ftrl_sizes(var.shape, n_z.shape, grad.shape)
    t = var.dtype.type
    if alpha_input:
        alpha = _scalar("alpha", alpha_input[0], var.dtype)
    if grad.size == 0:
        return var.copy(), n_z.copy()
    outputs = grad.shape[0]
    w, g = var.reshape(outputs, -1), grad.reshape(outputs, -1)
    pairs = n_z.reshape(outputs, -1, 2)
    n, z = pairs[..., 0], pairs[..., 1]
    alpha_inv = t(1) / t(alpha)
    new_n = n + g * g
    new_z = z + g - (np.sqrt(new_n) - np.sqrt(n)) * alpha_inv * w
    z_norm = np.sqrt(np.sum(new_z * new_z, axis=0))  # one norm per column (input feature)
    bound = t(lambda1) * t(np.sqrt(outputs))
    with np.errstate(divide="ignore", invalid="ignore"):  # zeroed columns may have a zero norm
        shrunk = new_z * (bound / z_norm - 1) / ((t(beta) + np.sqrt(new_n)) * alpha_inv + t(lambda2))
    new_w = np.where(z_norm > bound, shrunk, t(0))
    return new_w.reshape(var.shape), np.stack([new_n, new_z], axis=-1).reshape(n_z.shape)


@register_cpu("Wngrad")
def wngrad(param, seq_b, grad, lr, *, epsilon):
    check_floats({"param": param, "seq_b": seq_b, "grad": grad})
    same_sizes({"param": param.shape, "grad": grad.shape})
    one_element(seq_b.shape, "seq_b")
    t = param.dtype.type
    lr, b = _scalar("lr", lr, param.dtype), _scalar("seq_b", seq_b, param.dtype)
    effective_lr = lr / (b + t(epsilon))
    update = effective_lr * grad
    new_b = b + np.sum(grad * grad, dtype=param.dtype) / (b + t(epsilon))
    return (param + update.reshape(param.shape), np.full(seq_b.shape, new_b, seq_b.dtype),
            np.full(seq_b.shape, effective_lr, seq_b.dtype), update)


@register_cpu("DecayAdagrad")
def decay_adagrad(param, moment_1, moment_2, grad, lr, counter, *, beta1, beta2, epsilon, weight_decay,
                  bias_correction_first):
    _check_tensors({"param": param, "moment_1": moment_1, "moment_2": moment_2, "grad": grad})
    t = param.dtype.type
    lr = _scalar("lr", lr, param.dtype)
    step_number = read_counter(counter) + 1
    c = t(1 - beta1 ** step_number) if bias_correction_first else t(1)
    g = grad.reshape(param.shape)
    m1 = t(beta1) * moment_1.reshape(param.shape) + t(1 - beta1) * g
    m2 = moment_2.reshape(param.shape) + g * g
    new_param = param + lr * (m1 / c / (np.sqrt(m2) + t(epsilon)) + t(weight_decay) * param)
    return new_param, m1.reshape(moment_1.shape), m2.reshape(moment_2.shape)


def storm_rate(grad, grad_sq_sum, lr, momentum, beta):
    """(new grad_sq_sum, effective rate, alpha) of a Storm step, as scalars of grad's type."""
    t = grad.dtype.type
    lr, total = _scalar("lr", lr, grad.dtype), _scalar("grad_sq_sum", grad_sq_sum, grad.dtype)
    total = total + np.sum(grad * grad, dtype=grad.dtype)
    rate = lr * t(np.power(np.float64(beta) + np.float64(total), -1.0 / 3.0))
    return total, rate, t(momentum) * rate * rate


@register_cpu("Storm")
def storm(param, moment, grad_sq_sum, grad, lr, *, momentum, beta):
    _check_tensors({"param": param, "moment": moment, "grad": grad})
    one_element(np.shape(grad_sq_sum), "grad_sq_sum")
    total, rate, alpha = storm_rate(grad, grad_sq_sum, lr, momentum, beta)
    g = grad.reshape(param.shape)
    new_moment = g + (1 - alpha) * (moment.reshape(param.shape) - g)
    return (param + rate * new_moment, new_moment.reshape(moment.shape),
            np.full(np.shape(grad_sq_sum), total, np.asarray(grad_sq_sum).dtype))
