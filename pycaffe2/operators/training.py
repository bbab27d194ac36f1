"""Training kernels (NumPy): the iteration counter, the learning-rate
schedule, WeightedSum (Caffe2's plain SGD step) and the momentum, Adagrad and
Adam updates. Update ops work element by element on tensors that hold the
same number of elements (Caffe2 checks sizes, not shapes) and give each
output the shape of the blob it replaces. Like every kernel they return new
arrays, even where the schema lets the outputs overwrite their inputs.
"""
from __future__ import annotations

import bisect
import functools
import math
import threading

import numpy as np

from pycaffe2.objects import GLOBAL_STATS
from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import (
    ALL_SCHEMA_ARGS,
    CPU_KERNELS,
    register_cpu,
    register_cuda,
    register_gradient,
)
from pycaffe2.schema.inference import same_shapes, same_sizes
from pycaffe2.schema.inference.training import counter as check_counter
from pycaffe2.schema.inference.training import (
    learning_rate_policy,
    one_element,
    sub_policies,
    weighted_sum_gradient_outputs,
)

INT64_MAX = np.iinfo(np.int64).max


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{list(value.shape)} {value.dtype}"
    return type(value).__name__


def read_counter(counter) -> int:
    """The value of a one-element int64 counter tensor."""
    if not isinstance(counter, np.ndarray):  # e.g. a mutex
        raise TypeError(f"iter must be a one-element int64 tensor, got {_describe(counter)}")
    check_counter(counter.dtype, counter.shape)
    return int(counter.reshape(-1)[0])


def _scalar(name: str, value, dtype) -> np.generic:
    """A one-element tensor's value as a scalar of `dtype`."""
    one_element(np.shape(value), name)
    return np.dtype(dtype).type(np.ravel(value)[0])


def check_floats(named: dict) -> None:
    """Raise unless the tensors are floats."""
    for name, array in named.items():
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
            raise ValueError(f"{name} must be a float tensor, got {_describe(array)}")


def _check_tensors(named: dict) -> None:
    """Raise unless the tensors are floats holding the same number of elements."""
    check_floats(named)
    same_sizes({name: array.shape for name, array in named.items()})


def _increment(counter) -> np.ndarray:
    if read_counter(counter) == INT64_MAX:
        raise ValueError("the counter is at the int64 maximum and would overflow")
    return counter + 1


@register_cpu("Iter")
def iter_(*counter, output_names, workspace):
    if not counter:
        counter = (_deprecated_counter(output_names[0], workspace),)
    value = counter[0]
    if isinstance(value, np.ndarray):
        check_counter(value.dtype, value.shape, widens=True)
        value = value.astype(np.int64, copy=False)  # an int32 counter becomes int64, keeping its count
    return _increment(value)


def _deprecated_counter(name: str, workspace) -> np.ndarray:
    """Caffe2's deprecated Iter([], ITER): the output blob is the counter, read from the
    workspace, and a missing (or not yet tensor) one starts at 0."""
    if workspace is None:  # a net compiled on its own, with no workspace to read the counter from
        raise ValueError("Iter without an input needs a workspace: write Iter([ITER], [ITER]) "
                         "after ConstantFill([], ITER, shape=[1], value=0, dtype=INT64)")
    value = workspace.blobs.get(name)
    return value if isinstance(value, np.ndarray) else np.zeros(1, np.int64)


@register_cpu("CreateMutex")
def create_mutex():
    return threading.Lock()


@register_cpu("AtomicIter")
def atomic_iter(mutex, counter, *, input_names):
    if not hasattr(mutex, "acquire"):
        raise ValueError(f"input mutex must be a mutex made by CreateMutex, "
                         f"got {_describe(mutex)}")
    with mutex:
        value = _increment(counter)
    # Caffe2's AtomicIterOpStats: one event per run, in the process-wide stat registry
    GLOBAL_STATS.update([(f"atomic_iter/stats/{input_names[1]}/num_iter".encode(), 1)])
    return value


# LearningRate: policy -> multiplier f(iter, args); base_lr * lr_scale * f is the rate.
def _pow(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf
    except ValueError:  # a negative base with a fractional exponent: C's pow gives NaN
        return math.nan


def _linear_warmup(it, a):
    if it >= a["num_iter"]:
        return 1.0
    return a["start_multiplier"] + (1 - a["start_multiplier"]) * it / a["num_iter"]


def _alter(it, a):
    active_first = bool(a["active_first"])
    first_period = a["active_period"] if active_first else a["inactive_period"]
    in_first = it % (a["active_period"] + a["inactive_period"]) < first_period
    return float(in_first == active_first)


def _hill(it, a):
    if it < a["num_iter"]:
        return _linear_warmup(it, a)
    return max(a["end_multiplier"], _pow(1 + a["gamma"] * (it - a["num_iter"]), -a["power"]))


def _or(value, default):
    return default if value is None else value


def _slope(it, a):
    first, second = _or(a["multiplier_1"], 0.0), _or(a["multiplier_2"], 0.0)
    if it < a["num_iter_1"]:
        return first
    return max(second, first + (it - a["num_iter_1"]) * (second - first) / (a["num_iter_2"] - a["num_iter_1"]))


def _piece_warmup(it, a):
    return a["m1"] if it < a["n1"] else a["m2"] if it < a["n2"] else a["m3"]


def _cyclical_multiplier(it, base_lr, max_lr, stepsize, decay):
    cycle = it // (2 * stepsize) + 1
    x = abs(it / stepsize - 2 * cycle + 1)
    ratio = abs(max_lr) / abs(base_lr) if base_lr else math.inf  # C's division by 0
    return 1 + (ratio - 1) * max(0.0, 1 - x) * _pow(decay, it // (2 * stepsize))


def _log(value):
    return math.log(value) if value > 0 else math.nan  # C's log of a non-positive value: NaN (or -inf)


def _cosine_multiplier(it, min_lr, max_lr, period, t_mult, lr_shrink):
    if t_mult != 1.0:  # each period t_mult times the last
        exponent = _log(1 - it / period * (1 - t_mult)) / _log(t_mult)
        i = math.floor(exponent) if math.isfinite(exponent) else exponent
        t_i = _pow(t_mult, i) * period
        t_curr = it - (1 - _pow(t_mult, i)) / (1 - t_mult) * period
    else:
        i = math.floor(it / period)
        t_i, t_curr = period, it - period * i
    shrink = _pow(lr_shrink, i)
    low, high = min_lr * shrink, max_lr * shrink
    return low + 0.5 * (high - low) * (1 + math.cos(math.pi * t_curr / t_i))


def _constant_then_linear(it, a):
    constant, linear = a["constant_warmup_num_iter"], a["linear_warmup_num_iter"]
    if it < constant:
        return a["start_warmup_multiplier"]
    if it < constant + linear:
        return _linear_warmup(it - constant, {"num_iter": linear, "start_multiplier": a["start_warmup_multiplier"]})
    return 1.0


def _after_warmup(it, a, then):
    warmup = a["constant_warmup_num_iter"] + a["linear_warmup_num_iter"]
    return _constant_then_linear(it, a) if it < warmup else then(it - warmup)


MULTIPLIERS = {
    "fixed": lambda it, a: 1.0,
    "step": lambda it, a: _pow(a["gamma"], it // a["stepsize"]),
    "exp": lambda it, a: _pow(a["gamma"], it),
    "inv": lambda it, a: _pow(1 + a["gamma"] * it, -a["power"]),
    "multistep": lambda it, a: _pow(a["gamma"], sum(it >= step for step in a["stepsizes"] or [])),
    "poly": lambda it, a: _pow(1 - it / a["max_iter"], a["power"]),
    "linearWarmup": _linear_warmup,
    "constantWarmup": lambda it, a: a["multiplier"] if it < a["num_iter"] else 1.0,
    "alter": _alter,
    "hill": _hill,
    "gate": lambda it, a: _or(a["multiplier_1"], 1.0) if it < a["num_iter"] else _or(a["multiplier_2"], 1.0),
    "slope": _slope,
    "pieceWarmup": _piece_warmup,
    "cyclical": lambda it, a: _cyclical_multiplier(it, a["base_lr"], _or(a["max_lr"], 0.005), a["stepsize"],
                                                   a["decay"]),
    "cosine": lambda it, a: _cosine_multiplier(it, a["min_lr"], _or(a["max_lr"], 0.5), a["period"], a["t_mult"],
                                               a["lr_shrink"]),
    "constantThenLinearWarmup": _constant_then_linear,
    "compositeCyclical": lambda it, a: _after_warmup(it, a, lambda t: _cyclical_multiplier(
        t, a["base_lr"], a["cyclical_max_lr"], a["cyclical_step_size"], a["cyclical_decay"])),
    "compositeCosine": lambda it, a: _after_warmup(it, a, lambda t: _cosine_multiplier(
        t, a["cosine_min_lr"], a["cosine_max_lr"], a["cosine_period"], a["cosine_t_mult"], a["cosine_lr_shrink"])),
}


def _composite(args: dict):
    """f(iter) of the composite policy: the last sub-policy started by iter (the first
    before iteration 1), given the global iter, times that sub-policy's lr_scale."""
    subs = [{**sub, "base_lr": args["base_lr"]} for sub in sub_policies(args)]  # cyclical reads base_lr
    starts = [sub["num_iter_start"] for sub in subs]
    parts = [(functools.partial(MULTIPLIERS[sub["policy"]], a=sub), sub["lr_scale"]) for sub in subs]

    def multiplier_of(it):
        multiplier, scale = parts[max(bisect.bisect_right(starts, it) - 1, 0)]
        return multiplier(it) * scale

    return multiplier_of


@register_cpu("LearningRate", specialize=True, args=ALL_SCHEMA_ARGS)
def learning_rate(*, base_lr, policy, lr_scale, **args):
    """Kernel factory: the policy is chosen and its args checked once."""
    if base_lr is None or policy not in (*MULTIPLIERS, "composite"):
        raise ValueError(f"needs base_lr and a known policy, got {base_lr} and {policy!r}")
    learning_rate_policy(policy, args)
    args = {**args, "base_lr": base_lr}  # the cyclical policies scale by max_lr / base_lr
    multiplier_of = (_composite(args) if policy == "composite"
                     else functools.partial(MULTIPLIERS[policy], a=args))
    scale = base_lr * lr_scale

    def learning_rate_kernel(counter):
        return np.array(scale * multiplier_of(read_counter(counter)), dtype=np.float32)

    return learning_rate_kernel


@register_cpu("WeightedSum")
def weighted_sum(*inputs):
    xs, weights = inputs[0::2], inputs[1::2]
    _check_shapes(xs)
    dtype = xs[0].dtype
    y = xs[0] * _scalar("weight_0", weights[0], dtype)
    for index in range(1, len(xs)):
        y = y + xs[index] * _scalar(f"weight_{index}", weights[index], dtype)
    return y


@register_gradient("WeightedSum")
def make_weighted_sum_gradient(g):
    """dX_i for every pair; the weights' gradients only with grad_on_w=1 (Caffe2)."""
    pairs = range(0, len(g.op.input), 2)
    outputs = [g.GI(i) for i in pairs] + ([g.GI(i + 1) for i in pairs] if g.arg("grad_on_w") else [])
    return [g.Op("WeightedSumGradient", [g.GO(0), *g.op.input], outputs)]


def _check_shapes(xs, dy=None) -> None:
    named = {} if dy is None else {"dY": np.shape(dy)}
    named.update((f"X_{index}", np.shape(x)) for index, x in enumerate(xs))
    same_shapes(named)


def _check_gradient_pairs(dy, xs, grad_on_w, num_outputs: int) -> None:
    _check_shapes(xs, dy)
    weighted_sum_gradient_outputs(len(xs), grad_on_w, num_outputs)


@register_cpu("WeightedSumGradient")
def weighted_sum_gradient(dy, *inputs, grad_on_w, num_outputs):
    xs, weights = inputs[0::2], inputs[1::2]
    _check_gradient_pairs(dy, xs, grad_on_w, num_outputs)
    dxs = [dy * _scalar(f"weight_{i}", w, dy.dtype) for i, w in enumerate(weights)]
    if not grad_on_w:
        return tuple(dxs)
    dws = [np.full(np.shape(w), np.vdot(dy, x), dtype=np.asarray(w).dtype) for x, w in zip(xs, weights)]
    return tuple(dxs + dws)


def _momentum_step(grad, moment, lr, momentum, nesterov):
    """(step, new moment) of momentum SGD, the moment in its own shape."""
    t = grad.dtype.type
    lr, momentum = _scalar("lr", lr, grad.dtype), t(momentum)
    kept = momentum * moment.reshape(grad.shape)  # read twice with Nesterov: computed once
    new_moment = lr * grad
    new_moment += kept
    if nesterov:
        step = (1 + momentum) * new_moment
        step -= kept
    else:
        step = new_moment
    return step, new_moment.reshape(moment.shape)


@register_cpu("MomentumSGD")
def momentum_sgd(grad, moment, lr, *, momentum, nesterov):
    _check_tensors({"grad": grad, "moment": moment})
    return _momentum_step(grad, moment, lr, momentum, nesterov)


@register_cpu("MomentumSGDUpdate")
def momentum_sgd_update(grad, moment, lr, param, *, momentum, nesterov):
    _check_tensors({"grad": grad, "moment": moment, "param": param})
    step, new_moment = _momentum_step(grad, moment, lr, momentum, nesterov)
    return step, new_moment, param - step.reshape(param.shape)


@register_cpu("Adagrad")
def adagrad(param, moment, grad, lr, *, epsilon, decay, weight_decay):
    _check_tensors({"param": param, "moment": moment, "grad": grad})
    t = param.dtype.type
    lr = _scalar("lr", lr, param.dtype)
    g = grad.reshape(param.shape) + t(weight_decay) * param if weight_decay else grad.reshape(param.shape)
    new_moment = t(decay) * moment.reshape(param.shape) + g * g
    root = np.sqrt(new_moment) + t(epsilon)
    new_param = param + lr * g / root
    effective_lr = lr / root  # the optional outputs, as Caffe2's 3- and 4-output Adagrad
    return (new_param, new_moment.reshape(moment.shape), effective_lr.reshape(grad.shape),
            (effective_lr * g).reshape(grad.shape))


@register_cpu("Adam")
def adam(param, moment_1, moment_2, grad, lr, counter, *, beta1, beta2, epsilon):
    _check_tensors({"param": param, "moment_1": moment_1, "moment_2": moment_2, "grad": grad})
    t = param.dtype.type
    lr = _scalar("lr", lr, param.dtype)
    step_number = read_counter(counter) + 1  # Caffe2's bias correction uses iter + 1
    correction = t(math.sqrt(1 - beta2 ** step_number) / (1 - beta1 ** step_number))
    g = grad.reshape(param.shape)
    m1 = t(beta1) * moment_1.reshape(param.shape) + t(1 - beta1) * g
    m2 = t(beta2) * moment_2.reshape(param.shape) + t(1 - beta2) * (g * g)
    # The optional fourth output is the step before lr, as Caffe2's 4-output Adam gives it.
    step = correction * m1 / (np.sqrt(m2) + t(epsilon))
    new_param = param + lr * step
    return new_param, m1.reshape(moment_1.shape), m2.reshape(moment_2.shape), step.reshape(grad.shape)


# CUDA launchers (training.cu). Iter, AtomicIter and CreateMutex stay on the CPU,
# as Caffe2 keeps the counter there. A CUDA op gets a CPU blob as it is (the
# executor copies nothing over), so the learning rate and the counter are read on
# the host (from a CPU blob as they are, from a GPU one with a copy) and go to the
# kernels by value. The update ops return new arrays, as on the CPU.

def _host_scalar(name: str, value) -> np.float32:
    return _scalar(name, cuda.copy_to_cpu(value) if cuda.is_gpu_array(value) else value, np.float32)


def _gpu_tensors(op_type: str, named: dict) -> list:
    """The tensors on the GPU (float32), checked to hold the same number of elements."""
    arrays = cuda.float32_inputs(*named.values())
    same_sizes({name: array.shape for name, array in zip(named, arrays)})
    return arrays


def _one_element_gpu(op_type: str, name: str, value):
    array = cuda.as_gpu(np.asarray(value, dtype=np.float32) if not cuda.is_gpu_array(value) else value)
    cuda.require_float32(array)
    one_element(array.shape, name)
    return array


@register_cuda("WeightedSum")
def weighted_sum_cuda(*inputs):
    """One kernel per (X, weight) pair, each adding its term to Y in turn."""
    xs = cuda.float32_inputs(*inputs[0::2])
    _check_shapes(xs)
    weights = [_one_element_gpu("WeightedSum", f"weight_{i}", w) for i, w in enumerate(inputs[1::2])]
    y = cuda.empty_like(xs[0])
    for index, (x, weight) in enumerate(zip(xs, weights)):
        cuda.launch("training.cu", "weighted_sum_pair", y.size, x, weight, y,
                    np.int32(index == 0), np.int64(y.size))
    return y


@register_cuda("MomentumSGDUpdate")
def momentum_sgd_update_cuda(grad, moment, lr, param, *, momentum, nesterov):
    grad, moment, param = _gpu_tensors("MomentumSGDUpdate", {"grad": grad, "moment": moment, "param": param})
    lr, momentum = _host_scalar("lr", lr), np.float32(momentum)
    step, new_moment, new_param = (cuda.empty(a.shape) for a in (grad, moment, param))
    cuda.launch("training.cu", "momentum_sgd_update", grad.size, grad, moment,
                param, step, new_moment, new_param, lr, momentum,
                np.float32(1) + momentum, np.int32(bool(nesterov)), np.int64(grad.size))
    return step, new_moment, new_param


@register_cuda("Adagrad")
def adagrad_cuda(param, moment, grad, lr, *, epsilon, decay, weight_decay):
    param, moment, grad = _gpu_tensors("Adagrad", {"param": param, "moment": moment, "grad": grad})
    lr = _host_scalar("lr", lr)
    outputs = [cuda.empty(a.shape) for a in (param, moment, grad, grad)]
    cuda.launch("training.cu", "adagrad", param.size, param, moment, grad, *outputs,
                lr, np.float32(epsilon), np.float32(decay), np.float32(weight_decay), np.int64(param.size))
    return tuple(outputs)


@register_cuda("Adam")
def adam_cuda(param, moment_1, moment_2, grad, lr, counter, *, beta1, beta2, epsilon):
    named = {"param": param, "moment_1": moment_1, "moment_2": moment_2, "grad": grad}
    param, moment_1, moment_2, grad = _gpu_tensors("Adam", named)
    lr = _host_scalar("lr", lr)
    step_number = read_counter(cuda.copy_to_cpu(counter)) + 1  # as on the CPU: iter + 1
    correction = np.float32(math.sqrt(1 - beta2 ** step_number) / (1 - beta1 ** step_number))
    outputs = [cuda.empty(a.shape) for a in (param, moment_1, moment_2, grad)]
    cuda.launch("training.cu", "adam", param.size, param, moment_1, moment_2,
                grad, *[out for out in outputs], lr, np.float32(beta1),
                np.float32(1 - beta1), np.float32(beta2), np.float32(1 - beta2), np.float32(epsilon),
                correction, np.int64(param.size))
    return tuple(outputs)


@register_cuda("LearningRate", specialize=True, args=CPU_KERNELS["LearningRate"].arg_names)
def learning_rate_cuda(**args):
    """The rate is computed on the host by the CPU kernel (in double, stored as float32)
    and set on the GPU, as Caffe2's CUDA LearningRate reads its CPU counter."""
    on_host = learning_rate(**args)

    def learning_rate_kernel(counter):
        return cuda.copy_to_gpu(on_host(cuda.copy_to_cpu(counter)))

    return learning_rate_kernel


@register_cuda("WeightedSumGradient")
def weighted_sum_gradient_cuda(dy, *inputs, grad_on_w, num_outputs):
    """dX_i = w_i * dY by WeightedSum's first-pair kernel; dw_i = <dY, X_i> by a one-block sum."""
    _check_gradient_pairs(dy, inputs[0::2], grad_on_w, num_outputs)
    dy, *xs = cuda.float32_inputs(dy, *inputs[0::2])
    weights = [_one_element_gpu("WeightedSumGradient", f"weight_{i}", w) for i, w in enumerate(inputs[1::2])]
    dxs = [cuda.empty_like(dy) for _ in xs]
    for dx, weight in zip(dxs, weights):
        cuda.launch("training.cu", "weighted_sum_pair", dy.size, dy, weight, dx, np.int32(1),
                    np.int64(dy.size))
    if not grad_on_w:
        return tuple(dxs)
    return tuple(dxs + [_dot(dy, x, weight.shape) for x, weight in zip(xs, weights)])


def _dot(a, b, shape):
    """sum(a * b) (taken in double) as a float32 GPUArray of `shape` (one element)."""
    if a.size == 0:
        return cuda.copy_to_gpu(np.zeros(shape, np.float32))
    out = cuda.empty(shape)
    cuda.function("training.cu", "dot")(a, b, out, np.int64(a.size), block=(cuda.ROW_THREADS, 1, 1),
                                        grid=(1, 1))
    return out
