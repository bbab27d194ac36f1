"""NumPy kernel of the yellowfin family: Caffe2's YellowFin update (momentum SGD with
a learning rate and momentum tuned from moving averages). Returns new arrays."""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu
from pycaffe2.operators.training import _scalar, check_floats, read_counter
from pycaffe2.schema.inference.yellowfin import yellowfin_shapes


def _lr_mu(t, curv_min, curv_max, distance, variance):
    """YellowFin's tuned (lr, mu): the root of its cubic, kept above the momentum the
    curvature range needs."""
    curv_ratio = np.sqrt(curv_max / curv_min)
    mu_limit = (curv_ratio - 1) / (curv_ratio + 1)
    p = (distance * curv_min) ** 2 / (2 * variance)
    w3 = (-np.sqrt(p * p + t(4) / 27 * p ** 3) - p) / 2
    w = (t(1) if w3 > 0 else t(-1)) * np.abs(w3) ** (t(1) / 3)  # the real cube root
    root = w - p / 3 / w + 1
    mu = max(root * root, mu_limit * mu_limit)
    return (1 - np.sqrt(mu)) ** 2 / curv_min, mu


@register_cpu("YellowFin")
def yellowfin(param, moment, lr_avg, mu_avg, curv_win, g_avg, g2_avg, scalars_memory, grad, iter_, *,
              beta, curv_win_width, epsilon, nesterov, zero_debias):
    check_floats({"param": param, "moment": moment, "lr_avg": lr_avg, "mu_avg": mu_avg, "curv_win": curv_win,
                  "g_avg": g_avg, "g2_avg": g2_avg, "scalars_memory": scalars_memory, "grad": grad})
    yellowfin_shapes({"param": param.shape, "moment": moment.shape, "curv_win": curv_win.shape,
                      "g_avg": g_avg.shape, "g2_avg": g2_avg.shape, "scalars_memory": scalars_memory.shape,
                      "grad": grad.shape}, curv_win_width)
    step = read_counter(iter_)
    if step < 1:
        raise ValueError(f"iter must be at least 1 (the optimizer counts from 1), got {step}")
    t = param.dtype.type
    beta, eps = t(beta), t(epsilon)
    lr, mu = _scalar("lr_avg", lr_avg, param.dtype), _scalar("mu_avg", mu_avg, param.dtype)
    debias = t(1) / (1 - beta ** step) if zero_debias else t(1)

    def average(old, new):  # (new average, its debiased value)
        updated = beta * old + (1 - beta) * new
        return updated, updated * debias

    # momentum SGD with the averages as they came in
    new_moment = mu * moment + lr * grad
    if nesterov:
        new_param = param - (1 + mu) * new_moment + mu * moment
    else:
        new_param = param - new_moment

    norm_avg, norm2_avg, min_avg, max_avg, distance_avg = (t(v) for v in scalars_memory.reshape(-1))
    new_g_avg, g_deb = average(g_avg, grad)
    new_g2_avg, _ = average(g2_avg, grad * grad)
    norm2 = max(eps, t(np.dot(grad.reshape(-1), grad.reshape(-1))))
    norm2_avg, norm2_deb = average(norm2_avg, norm2)
    norm_avg, _ = average(norm_avg, np.sqrt(norm2))
    window = curv_win.reshape(-1).copy()
    window[(step - 1) % curv_win_width] = np.log(norm2)
    recent = window[:min(curv_win_width, step)]
    min_avg, min_deb = average(min_avg, recent.min())
    max_avg, max_deb = average(max_avg, recent.max())
    curv_min, curv_max = max(eps, np.exp(min_deb)), max(eps, np.exp(max_deb))
    variance = max(eps, norm2_deb - t(np.dot(g_deb.reshape(-1), g_deb.reshape(-1))))
    distance_avg, distance_deb = average(distance_avg, norm_avg / norm2_avg)

    new_lr_avg, new_mu_avg = lr_avg.copy(), mu_avg.copy()
    if step > 1:  # the first step has no curvature range yet
        new_lr, new_mu = _lr_mu(t, curv_min, curv_max, distance_deb, variance)
        new_mu_avg = average(mu_avg, new_mu)[0].astype(mu_avg.dtype)
        new_lr_avg = average(lr_avg, new_lr)[0].astype(lr_avg.dtype)
    memory = np.array([norm_avg, norm2_avg, min_avg, max_avg, distance_avg], scalars_memory.dtype)
    return (new_param.astype(param.dtype), new_moment.astype(moment.dtype), new_lr_avg, new_mu_avg,
            window.reshape(curv_win.shape), new_g_avg.astype(g_avg.dtype), new_g2_avg.astype(g2_avg.dtype),
            memory.reshape(scalars_memory.shape))
