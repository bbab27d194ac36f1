"""Caffe2's `optimizer` module: parameter updates added to a model's nets.

    from pycaffe2 import optimizer
    model.AddGradientOperators([loss])
    optimizer.add_weight_decay(model, 1e-4)
    optimizer.build_sgd(model, 0.1, policy="step", stepsize=100, gamma=0.5, momentum=0.9)

Each builder walks the model's params that have a gradient and appends, per
param, the update op of its rule to `model.net`; state (moments, the int64
iteration counter, the constant ONE) is filled in `model.param_init_net`.
As in Caffe2 the counter is stepped by the train net before the updates, so
the first run sees iteration 1, and LearningRate gets `base_lr` negated for
the ops that add lr * step (WeightedSum, Adam, Adagrad) and positive for
MomentumSGDUpdate, which subtracts. The model needs `net`, `param_init_net`,
`params` and `param_to_grad`; weights are `model.weights` when the
model keeps that list, else every param whose name does not end in "_b".
"""
from __future__ import annotations

import numpy as np

from pycaffe2 import core
from pycaffe2.optimizer_adaptive import (
    AdadeltaOptimizer,
    DecayAdagradOptimizer,
    FtrlOptimizer,
    GFtrlOptimizer,
    RmsPropOptimizer,
    StormOptimizer,
    WngradOptimizer,
    YellowFinOptimizer,
)
from pycaffe2.optimizer_base import (  # noqa: F401  (Caffe2's optimizer names, kept there)
    _OPTIMIZER_ITERATION_NAME,
    AuxOptimizerParams,
    Optimizer,
    _decay_grad,
    _defines,
    _fill_once,
    _gradient,
    _is_sparse,
    _one,
    _ref,
    _unsupported,
    build_iter,
    refuse_sparse,
)
from pycaffe2.proto import caffe2_pb2

_LEARNING_RATE_INJECTION = "lr_injection"


class SgdOptimizer(Optimizer):
    """Plain SGD (WeightedSum) or, with momentum > 0, MomentumSGDUpdate."""

    def __init__(self, base_learning_rate: float = 0.01, policy: str = "fixed",
                 momentum: float = 0.0, nesterov: int = 1, sparse_dedup_aggregator=None,
                 lars=None, weight_decay: float = 0.0, **kwargs):
        super().__init__()
        _unsupported("SgdOptimizer", lars=lars)
        self.base_learning_rate = base_learning_rate
        self.policy = policy
        self.momentum = momentum
        self.nesterov = nesterov
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.weight_decay = weight_decay  # pycaffe2: grad += weight_decay * param first
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.base_learning_rate == 0:
            return
        if self.base_learning_rate < 0:
            raise ValueError(f"SgdOptimizer: base learning rate must be positive, "
                             f"got {self.base_learning_rate}")
        grad = self._dedup_sparse(net, grad)
        self._decay(net, param_init_net, param, grad)
        # MomentumSGDUpdate subtracts its step, WeightedSum adds: flip the sign for momentum.
        sign = -1 if self.momentum else 1
        lr, _ = self.build_lr(net, param_init_net, self.base_learning_rate * sign,
                              policy=self.policy, **self.init_kwargs)
        one = _one(param_init_net)
        if one not in self._aux_params.shared:
            self._aux_params.shared.append(one)
        if self.momentum > 0:
            moment = self._state(param_init_net, param, "_momentum")
            if _is_sparse(grad):
                net.SparseMomentumSGDUpdate([grad.values, moment, lr, param, grad.indices],
                                            [grad.values, moment, param],
                                            momentum=self.momentum, nesterov=self.nesterov)
            else:
                net.MomentumSGDUpdate([grad, moment, lr, param], [grad, moment, param],
                                      momentum=self.momentum, nesterov=self.nesterov)
        elif _is_sparse(grad):
            net.ScatterWeightedSum([param, one, grad.indices, grad.values, lr], [param])
        else:
            net.WeightedSum([param, one, grad, lr], [param])

    def scale_learning_rate(self, scale: float) -> None:
        self.base_learning_rate *= scale


class MultiPrecisionSgdOptimizer(SgdOptimizer):
    """SGD for a float16 param kept with a float32 master copy: given a ParameterInfo-like
    object whose blob_copy maps core.DataType.FLOAT to the copy, the float16 gradient is
    widened (HalfToFloat), MomentumSGDUpdate updates the copy and FloatToHalf writes it
    back to the param. Params without a copy get SgdOptimizer's update, as in Caffe2."""

    def __init__(self, base_learning_rate: float = 0.1, momentum: float = 0.0, policy: str = "fixed",
                 nesterov: int = 1, sparse_dedup_aggregator=None, **kwargs):
        super().__init__(base_learning_rate, policy=policy, momentum=momentum, nesterov=nesterov,
                         sparse_dedup_aggregator=sparse_dedup_aggregator, **kwargs)

    def __call__(self, net, param_init_net, param, grad=None):
        copy = (getattr(param, "blob_copy", None) or {}).get(core.DataType.FLOAT) if grad is None else None
        if copy is None:
            return super().__call__(net, param_init_net, param, grad)
        param, grad, copy = _ref(param.blob, net), param.grad, _ref(copy, net)
        if self.base_learning_rate < 0:
            raise ValueError(f"MultiPrecisionSgdOptimizer: base learning rate must be positive, "
                             f"got {self.base_learning_rate}")
        if self.base_learning_rate == 0:
            return None
        if _is_sparse(grad):
            raise ValueError(f"MultiPrecisionSgdOptimizer: param {param} has a sparse gradient, which it "
                             "does not take (nor does Caffe2's)")
        lr, _ = self.build_lr(net, param_init_net, -self.base_learning_rate, policy=self.policy,
                              **self.init_kwargs)
        moment = param_init_net.ConstantFill([copy], [_ref(f"{param}_momentum", param_init_net)], value=0.0)
        self._aux_params.local.append(moment)
        grad32 = net.HalfToFloat([_ref(grad, net)], [_ref(f"{grad}_fp32", net)])
        net.MomentumSGDUpdate([grad32, _ref(moment, net), lr, copy], [grad32, _ref(moment, net), copy],
                              momentum=self.momentum, nesterov=self.nesterov)
        net.FloatToHalf([copy], [param])
        return None


class AdamOptimizer(Optimizer):
    """Adam, with Caffe2's bias correction at t = iteration + 1. A sparse gradient takes
    SparseAdam (enableRAdam: Rectified Adam), RowWiseSparseAdam (rowWise=True: a per-row
    `<param>_avg_second_moment`) or SmartDecaySparseAdam (use_smart_decay=True, with the
    int64 `<param>_last_seen`); use_lr_adaption adds LearningRateAdaption on the step."""

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, policy: str = "fixed", use_lr_adaption: bool = False,
                 lr_alpha: float = 0.01, normalized_lr_adaption: bool = True, sparse_dedup_aggregator=None,
                 rowWise: bool = False, engine: str = "", enableRAdam: bool = False,
                 use_smart_decay: bool = False, weight_decay: float = 0.0, **kwargs):
        super().__init__()
        if use_smart_decay and (rowWise or enableRAdam or use_lr_adaption):
            raise NotImplementedError("AdamOptimizer: use_smart_decay does not go with rowWise, enableRAdam or "
                                      "use_lr_adaption (as in Caffe2)")
        if rowWise and enableRAdam:
            raise NotImplementedError("AdamOptimizer: RowWiseSparseAdam has no RAdam (as in Caffe2)")
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.policy = policy
        self.use_lr_adaption = use_lr_adaption
        self.lr_alpha = lr_alpha
        self.normalized_lr_adaption = normalized_lr_adaption
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.rowWise = rowWise
        self.engine = engine
        self.enableRAdam = enableRAdam
        self.use_smart_decay = use_smart_decay
        self.weight_decay = weight_decay  # pycaffe2: grad += weight_decay * param first
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha == 0:
            return
        grad = self._dedup_sparse(net, grad)
        if self.rowWise and not _is_sparse(grad):
            raise ValueError(f"AdamOptimizer: rowWise=True needs a sparse gradient; param {param} "
                             "has a dense one (as in Caffe2)")
        self._decay(net, param_init_net, param, grad)
        lr, iteration = self.build_lr(net, param_init_net, self.alpha, policy=self.policy,
                                      **self.init_kwargs)
        m1 = self._state(param_init_net, param, "_first_moment")
        m2 = (_per_row_state(self, param_init_net, param, "_avg_second_moment") if self.rowWise
              else self._state(param_init_net, param, "_second_moment"))
        if iteration not in self._aux_params.shared:
            self._aux_params.shared.append(iteration)
        args = {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon}
        outputs = [param, m1, m2]
        if self.use_smart_decay:
            last_seen = _per_row_state(self, param_init_net, param, "_last_seen", dtype=core.DataType.INT64,
                                       value=0)
            outputs.append(last_seen)  # a dense param's Adam writes its step there, as in Caffe2
        effective_grad = _ref(f"{param}_effective_grad", net)
        if self.use_lr_adaption:
            outputs.append(effective_grad)
        if not _is_sparse(grad):
            net.Adam([param, m1, m2, grad, lr, iteration], outputs, **args)
        elif self.use_smart_decay:
            net.SmartDecaySparseAdam([param, m1, m2, last_seen, grad.indices, grad.values, lr, iteration],
                                     outputs, **args)
        elif self.rowWise:
            net.RowWiseSparseAdam([param, m1, m2, grad.indices, grad.values, lr, iteration], outputs, **args)
        else:
            net.SparseAdam([param, m1, m2, grad.indices, grad.values, lr, iteration], outputs,
                           enableRAdam=bool(self.enableRAdam), **args)
        if self.use_lr_adaption:
            net.LearningRateAdaption([lr, grad.values if _is_sparse(grad) else grad, effective_grad], [lr],
                                     lr_alpha=self.lr_alpha,
                                     normalized_lr_adaption=bool(self.normalized_lr_adaption))

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


def _per_row_state(optimizer, param_init_net, param, suffix: str, **fill):
    """A zero blob with one element per row of the param (ConstantFill of Shape's first
    dimension: Caffe2's way when the param's shape is not known when the net is built)."""
    name = f"{param}{suffix}"
    if not _defines(param_init_net, name):
        shape = param_init_net.Shape([_ref(param, param_init_net)], [_ref(f"{param}_shape", param_init_net)])
        rows = param_init_net.Slice([shape], [_ref(f"{param}_shape_numrows", param_init_net)], starts=[0], ends=[1])
        param_init_net.ConstantFill([rows], [_ref(name, param_init_net)], input_as_shape=1,
                                    **({"value": 0.0} | fill))
        optimizer._aux_params.local.append(name)
    return _ref(name, param_init_net)


class AdagradOptimizer(Optimizer):
    """Adagrad; weight_decay adds weight_decay * param to every gradient it updates (with
    WeightedSum for a dense gradient, by the sparse op's weight_decay arg for a sparse one).
    rowWise=True keeps one history value per row, `<param>_avg_squared_sum`, and takes
    RowWiseSparseAdagrad (sparse gradients only, as in Caffe2)."""

    def __init__(self, alpha: float = 0.01, epsilon: float = 1e-4, decay: float = 1,
                 weight_decay: float = 0.0, policy: str = "fixed", sparse_dedup_aggregator=None,
                 rowWise: bool = False, engine: str = "", lars=None, **kwargs):
        super().__init__()
        _unsupported("AdagradOptimizer", lars=lars)
        self.rowWise = rowWise
        self.alpha = alpha
        self.epsilon = epsilon
        self.decay = decay
        self.weight_decay = weight_decay
        self.policy = policy
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.engine = engine
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            return
        grad = self._dedup_sparse(net, grad)
        if _is_sparse(grad) and self.decay != 1:
            raise NotImplementedError(f"AdagradOptimizer: decay={self.decay!r} with a sparse gradient "
                                      f"(param {param}): SparseAdagrad has no decay")
        if not _is_sparse(grad):
            self._decay(net, param_init_net, param, grad)
        lr, _ = self.build_lr(net, param_init_net, self.alpha, policy=self.policy,
                              **self.init_kwargs)
        # A sparse gradient's weight decay is the sparse op's weight_decay arg, as in later Caffe2.
        sparse_decay = {"weight_decay": float(self.weight_decay)} if self.weight_decay else {}
        if self.rowWise:
            if not _is_sparse(grad):
                raise ValueError(f"AdagradOptimizer: rowWise=True needs a sparse gradient; param {param} "
                                 "has a dense one (as in Caffe2)")
            history = _per_row_state(self, param_init_net, param, "_avg_squared_sum")
            net.RowWiseSparseAdagrad([param, history, grad.indices, grad.values, lr], [param, history],
                                     epsilon=self.epsilon, engine=self.engine or None, **sparse_decay)
            return
        history = self._state(param_init_net, param, "_squared_sum")
        if _is_sparse(grad):
            net.SparseAdagrad([param, history, grad.indices, grad.values, lr], [param, history],
                              epsilon=self.epsilon, **sparse_decay)
        else:
            net.Adagrad([param, history, grad, lr], [param, history],
                        epsilon=self.epsilon, decay=float(self.decay))

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class WeightDecayBuilder(Optimizer):
    """grad += weight_decay * param, with WeightedSum([grad, ONE, param, WD], grad)."""

    def __init__(self, weight_decay: float):
        super().__init__()
        self.weight_decay = weight_decay

    def _run(self, net, param_init_net, param, grad):
        _decay_grad(net, param_init_net, param, grad, self.weight_decay)


def _is_weight(model, param) -> bool:
    weights, biases = getattr(model, "weights", None), getattr(model, "biases", None)
    if weights or biases:
        return str(param) in {str(w) for w in weights or ()}
    return not str(param).endswith("_b")


def _params_with_grads(model, parameters=None) -> tuple[list, dict]:
    param_to_grad = {str(p): g for p, g in (model.param_to_grad or {}).items()}
    if not param_to_grad:
        raise ValueError("optimizer: the model has no gradients; call "
                         "model.AddGradientOperators(losses) before building the optimizer")
    params = list(model.params) if parameters is None else parameters
    return [p for p in params if str(p) in param_to_grad], param_to_grad


def _norm_ratio(model, params, param_to_grad, max_gradient_norm: float):
    """clip_norm / max(global gradient norm, clip_norm), a 0-d float on the CPU."""
    net = model.net
    with core.NameScope("norm_clipped_grad_update"):
        def out(name):
            return [_ref(core.ScopedName(name), net)]
        squared_sums = []
        for index, param in enumerate(params):
            grad = _gradient(param_to_grad[str(param)], net)
            grad = grad.values if _is_sparse(grad) else grad  # as Caffe2: a slice's values
            squared = net.Mul([grad, grad], out(f"grad_{index}_squared"))
            squared_sums.append(net.ReduceSum([squared], out(f"grad_{index}_squared_sum"), keepdims=0))
        with core.DeviceScope(core.DeviceOption(caffe2_pb2.PROTO_CPU)):
            norm = net.Pow([net.Sum(squared_sums, out("grad_squared_full_sum"))], out("global_norm"),
                           exponent=0.5)
            clip = _fill_once(model.param_init_net, core.ScopedName("clip_norm"), shape=[],
                              value=float(max_gradient_norm))
            largest = net.Max([norm, clip], out("max_norm"))
            return net.Div([clip, largest], out("norm_ratio"))


def _build(model, optimizer: Optimizer, weights_only: bool = False, max_gradient_norm=None,
           allow_lr_injection: bool = False, parameters=None) -> Optimizer:
    params, param_to_grad = _params_with_grads(model, parameters)
    if weights_only:
        params = [p for p in params if _is_weight(model, p)]
    multiplier = None
    if max_gradient_norm is not None and params:
        multiplier = _norm_ratio(model, params, param_to_grad, max_gradient_norm)
    if allow_lr_injection:  # a [1] blob scaling every rate, set with set_lr_injection
        injection = _fill_once(model.param_init_net, _LEARNING_RATE_INJECTION, shape=[1], value=1.0)
        multiplier = injection if multiplier is None else model.net.Mul([multiplier, injection], "lr_multiplier")
    if multiplier is not None:
        optimizer.add_lr_multiplier(multiplier)
    for param in params:
        optimizer(model.net, model.param_init_net, param, param_to_grad[str(param)])
    return optimizer


def add_weight_decay(model, weight_decay: float) -> Optimizer:
    """L2 regularisation of the weights (not the biases): grad += weight_decay * param.
    Call it after AddGradientOperators and before the optimizer builder."""
    return _build(model, WeightDecayBuilder(weight_decay=weight_decay), weights_only=True)


def build_sgd(model, base_learning_rate: float, max_gradient_norm=None,
              allow_lr_injection: bool = False, **kwargs) -> SgdOptimizer:
    """SGD over every param with a gradient. kwargs: SgdOptimizer's (policy, momentum,
    nesterov, weight_decay) and the LearningRate policy's (stepsize, gamma, power, ...)."""
    return _build(model, SgdOptimizer(base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_multi_precision_sgd(model, base_learning_rate: float, max_gradient_norm=None,
                              allow_lr_injection: bool = False, **kwargs) -> MultiPrecisionSgdOptimizer:
    """SGD keeping float32 copies of float16 params (see MultiPrecisionSgdOptimizer); plain
    SGD for float32 params. kwargs as build_sgd's."""
    return _build(model, MultiPrecisionSgdOptimizer(base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_adam(model, base_learning_rate: float, max_gradient_norm=None,
               allow_lr_injection: bool = False, **kwargs) -> AdamOptimizer:
    """Adam over every param with a gradient. kwargs: AdamOptimizer's (beta1, beta2,
    epsilon, policy, weight_decay) and the LearningRate policy's."""
    return _build(model, AdamOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_adagrad(model, base_learning_rate: float, parameters=None, max_gradient_norm=None,
                  allow_lr_injection: bool = False, **kwargs) -> AdagradOptimizer:
    """Adagrad over `parameters` (default: every param with a gradient). kwargs:
    AdagradOptimizer's (epsilon, decay, weight_decay, policy) and the policy's."""
    return _build(model, AdagradOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection,
                  parameters=parameters)


def build_rms_prop(model, base_learning_rate: float, max_gradient_norm=None,
                   allow_lr_injection: bool = False, **kwargs) -> RmsPropOptimizer:
    """RMSProp over every param with a gradient. kwargs: RmsPropOptimizer's (decay,
    momentum, epsilon, policy) and the LearningRate policy's."""
    return _build(model, RmsPropOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_ftrl(model, engine: str = "SIMD", **kwargs) -> FtrlOptimizer:
    """FTRL over every param with a gradient (kwargs: alpha, beta, lambda1, lambda2). The
    SIMD engine Caffe2 defaults to is only a faster kernel: pycaffe2 ignores engines."""
    return _build(model, FtrlOptimizer(engine=engine, **kwargs))


def build_yellowfin(model, base_learning_rate: float = 0.1, **kwargs) -> YellowFinOptimizer:
    """YellowFin over every param with a gradient, starting from lr = base_learning_rate.
    kwargs: YellowFinOptimizer's (mu, beta, curv_win_width, zero_debias, epsilon)."""
    return _build(model, YellowFinOptimizer(alpha=base_learning_rate, **kwargs))


def build_adadelta(model, base_learning_rate: float, parameters=None, max_gradient_norm=None,
                   allow_lr_injection: bool = False, **kwargs) -> AdadeltaOptimizer:
    """AdaDelta over `parameters` (default: every param with a gradient). kwargs:
    AdadeltaOptimizer's (epsilon, decay, policy) and the policy's."""
    return _build(model, AdadeltaOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection,
                  parameters=parameters)


def build_gftrl(model, engine: str = "", **kwargs) -> GFtrlOptimizer:
    """Group-lasso FTRL (GFtrl) on every param with a gradient. kwargs: GFtrlOptimizer's
    (alpha, beta, lambda1, lambda2)."""
    return _build(model, GFtrlOptimizer(engine=engine, **kwargs))


def build_wngrad(model, base_learning_rate: float, parameters=None, max_gradient_norm=None,
                 allow_lr_injection: bool = False, **kwargs) -> WngradOptimizer:
    """WnGrad. kwargs: WngradOptimizer's (epsilon, policy, moment_init, ...) and the policy's."""
    return _build(model, WngradOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection,
                  parameters=parameters)


def build_storm(model, base_learning_rate: float, parameters=None, max_gradient_norm=None,
                allow_lr_injection: bool = False, **kwargs) -> StormOptimizer:
    """STORM. kwargs: StormOptimizer's (momentum, beta, grad_sq_init, policy) and the policy's."""
    return _build(model, StormOptimizer(lr=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection,
                  parameters=parameters)


def build_decay_adagrad(model, base_learning_rate: float, max_gradient_norm=None,
                        allow_lr_injection: bool = False, **kwargs) -> DecayAdagradOptimizer:
    """DecayAdagrad (SparseAdagrad for sparse gradients). kwargs: DecayAdagradOptimizer's."""
    return _build(model, DecayAdagradOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def get_lr_injection():
    """The current lr_injection multiplier (a model built with allow_lr_injection=True)."""
    from pycaffe2 import workspace
    return workspace.FetchBlob(_LEARNING_RATE_INJECTION)


def set_lr_injection(lr_injection_value: float) -> None:
    """Scale every learning rate of models built with allow_lr_injection=True."""
    from pycaffe2 import workspace
    workspace.FeedBlob(_LEARNING_RATE_INJECTION, np.array([float(lr_injection_value)], dtype=np.float32))


def get_param_device(param_name, grad, param_to_device=None, default_device=None):
    """The device of a param in `param_to_device` (core.InferBlobDevices' map), else that
    of its gradient (a slice's values, then indices), else default_device."""
    param_to_device = param_to_device or {}
    names = [param_name] + ([str(grad.values), str(grad.indices)] if _is_sparse(grad) else [str(grad)])
    device = next((param_to_device[n] for n in names if n in param_to_device), default_device)
    if device is None:
        raise ValueError(f"Cannot infer device for {param_name}: no op creates it")
    return device
