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

from collections import defaultdict, namedtuple

from pycaffe2 import core
from pycaffe2.proto import caffe2_pb2

_OPTIMIZER_ITERATION_NAME = "optimizer_iteration"

AuxOptimizerParams = namedtuple("AuxOptimizerParams", ["local", "shared"])
_optimizer_instance_count: dict[str, int] = defaultdict(int)


def _defines(net, blob) -> bool:
    """Whether some op of `net` already writes `blob`."""
    return any(str(blob) in op.output for op in net.Proto().op)


def _ref(name, net) -> core.BlobReference:
    """`name` as it stands: Net methods add the NameScope only to plain strings."""
    return core.BlobReference(str(name), net)


def _fill_once(param_init_net, name: str, **kwargs) -> core.BlobReference:
    """ConstantFill([], name, ...) unless param_init_net already makes `name`."""
    if not _defines(param_init_net, name):
        param_init_net.ConstantFill([], [_ref(name, param_init_net)], **kwargs)
    return _ref(name, param_init_net)


def _device():
    return core.CurrentDeviceScope() or core.DeviceOption(caffe2_pb2.PROTO_CPU)


def build_iter(param_init_net, net, iter_val: int = 0,
               blob_name: str = _OPTIMIZER_ITERATION_NAME) -> core.BlobReference:
    """The int64 [1] iteration counter on the CPU: ConstantFill in
    param_init_net and Iter(ITER, ITER) in net, each added once. One counter
    serves every optimizer: its name takes no NameScope."""
    iteration = _ref(blob_name, net)
    with core.DeviceScope(core.DeviceOption(caffe2_pb2.PROTO_CPU)):
        _fill_once(param_init_net, blob_name, shape=[1], value=int(iter_val),
                   dtype=core.DataType.INT64)
        if not _defines(net, blob_name):
            net.Iter([iteration], [iteration])
    return iteration


def _one(param_init_net) -> core.BlobReference:
    dev = _device()
    name = core.ScopedName(f"ONE_{dev.device_type}_{dev.device_id}{dev.node_name}")
    return _fill_once(param_init_net, name, shape=[1], value=1.0)


def _is_sparse(grad) -> bool:
    return isinstance(grad, core.GradientSlice)


def _gradient(grad, net):
    """A gradient as it stands: a blob, or a GradientSlice of two (sparse, from Gather)."""
    if _is_sparse(grad):
        return core.GradientSlice(_ref(grad.indices, net), _ref(grad.values, net))
    return _ref(grad, net)


def refuse_sparse(what: str, param, grad) -> None:
    """Weight decay adds the whole param to its gradient: a slice of rows has no room for it."""
    if _is_sparse(grad):
        raise ValueError(f"{what}: param {param} has a sparse gradient (indices {grad.indices}, values "
                         f"{grad.values}), and weight decay needs a dense one: give the Gather ops "
                         "that read it dense_gradient=1, or leave it out of the decay")


def _decay_grad(net, param_init_net, param, grad, weight_decay: float) -> None:
    """grad += weight_decay * param (L2 regularisation), in place."""
    refuse_sparse("weight decay", param, grad)
    dev = _device()
    name = core.ScopedName(f"wd_{dev.device_type}_{dev.device_id}_{weight_decay!r}")
    wd = _fill_once(param_init_net, name, shape=[1], value=float(weight_decay))
    net.WeightedSum([grad, _one(param_init_net), param, wd], [grad])


def _unsupported(cls: str, **options) -> None:
    for name, value in options.items():
        if value:
            raise NotImplementedError(f"{cls}: {name}={value!r} is not supported by pycaffe2")


class Optimizer:
    """Base class: `optimizer(net, param_init_net, param, grad)` adds the
    update of one param. Subclasses implement `_run(net, param_init_net, param, grad)`."""

    def __init__(self):
        self._aux_params = AuxOptimizerParams(local=[], shared=[])
        self._instance_num = _optimizer_instance_count[type(self).__name__]
        _optimizer_instance_count[type(self).__name__] += 1
        self._lr_multiplier = None

    def __call__(self, net, param_init_net, param, grad=None):
        if grad is None:  # a ParameterInfo-like object carrying .blob and .grad
            param, grad = param.blob, param.grad
        if grad is None:
            raise ValueError(f"{type(self).__name__}: param {param} has no gradient")
        self._run(net, param_init_net, _ref(param, net), _gradient(grad, net))

    def _run(self, net, param_init_net, param, grad):
        raise NotImplementedError(f"{type(self).__name__} must implement _run")

    def make_unique_blob_name(self, base_str: str) -> str:
        """A name unique to this optimizer instance and the current device (and NameScope)."""
        dev = core.CurrentDeviceScope()
        prefix = core.ScopedName(f"{type(self).__name__}_{self._instance_num}_{base_str}")
        if dev is not None and dev.device_type == caffe2_pb2.PROTO_CUDA:
            return f"{prefix}{dev.node_name}_gpu{dev.device_id}"
        return f"{prefix}{dev.node_name if dev is not None else ''}_cpu"

    def build_lr(self, net, param_init_net, base_learning_rate: float, learning_rate_blob=None,
                 policy: str = "fixed", iter_val: int = 0, **kwargs):
        """LearningRate(ITER) with base_lr = -base_learning_rate (made once per
        blob name), times the multiplier if one was added. Returns (lr, ITER)."""
        if learning_rate_blob is None:
            learning_rate_blob = self.make_unique_blob_name("lr")
        iteration = build_iter(param_init_net, net, iter_val=iter_val)
        lr = _ref(learning_rate_blob, net)
        if not _defines(net, lr):
            net.LearningRate([iteration], [lr], base_lr=-base_learning_rate, policy=policy, **kwargs)
        if self._lr_multiplier is not None:
            scaled = self.make_unique_blob_name("scaled_lr")
            if not _defines(net, scaled):
                net.Mul([lr, _ref(self._lr_multiplier, net)], [_ref(scaled, net)])
            lr = _ref(scaled, net)
        return lr, iteration

    def add_lr_multiplier(self, lr_multiplier) -> None:
        """Scale every later learning rate by this blob (a 0-d float)."""
        self._lr_multiplier = lr_multiplier

    def get_auxiliary_parameters(self) -> AuxOptimizerParams:
        """(local, shared): per-param state blobs and state shared by all params."""
        return self._aux_params

    def _state(self, param_init_net, param, suffix: str) -> core.BlobReference:
        """A zero blob of the param's shape, filled in param_init_net."""
        name = f"{param}{suffix}"
        if not _defines(param_init_net, name):
            param_init_net.ConstantFill([_ref(param, param_init_net)], [_ref(name, param_init_net)],
                                        value=0.0)
            self._aux_params.local.append(name)
        return _ref(name, param_init_net)

    def _decay(self, net, param_init_net, param, grad) -> None:
        if getattr(self, "weight_decay", 0.0):
            _decay_grad(net, param_init_net, param, grad, self.weight_decay)

    def _check_sparse(self, grad) -> None:
        """Caffe2 sums or averages repeated rows first when sparse_dedup_aggregator is set;
        pycaffe2's sparse ops update a repeated row once per occurrence, as Caffe2's do without."""
        if _is_sparse(grad):
            _unsupported(type(self).__name__, sparse_dedup_aggregator=getattr(self, "sparse_dedup_aggregator", None))


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
        self._check_sparse(grad)
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


class AdamOptimizer(Optimizer):
    """Adam, with Caffe2's bias correction at t = iteration + 1."""

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, policy: str = "fixed", sparse_dedup_aggregator=None,
                 rowWise: bool = False, engine: str = "", weight_decay: float = 0.0, **kwargs):
        super().__init__()
        _unsupported("AdamOptimizer", rowWise=rowWise)
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.policy = policy
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.engine = engine
        self.weight_decay = weight_decay  # pycaffe2: grad += weight_decay * param first
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha == 0:
            return
        self._check_sparse(grad)
        self._decay(net, param_init_net, param, grad)
        lr, iteration = self.build_lr(net, param_init_net, self.alpha, policy=self.policy,
                                      **self.init_kwargs)
        m1 = self._state(param_init_net, param, "_first_moment")
        m2 = self._state(param_init_net, param, "_second_moment")
        if iteration not in self._aux_params.shared:
            self._aux_params.shared.append(iteration)
        if _is_sparse(grad):
            net.SparseAdam([param, m1, m2, grad.indices, grad.values, lr, iteration], [param, m1, m2],
                           beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)
        else:
            net.Adam([param, m1, m2, grad, lr, iteration], [param, m1, m2],
                     beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class AdagradOptimizer(Optimizer):
    """Adagrad; weight_decay adds weight_decay * param to every gradient it updates."""

    def __init__(self, alpha: float = 0.01, epsilon: float = 1e-4, decay: float = 1,
                 weight_decay: float = 0.0, policy: str = "fixed", sparse_dedup_aggregator=None,
                 rowWise: bool = False, engine: str = "", lars=None, **kwargs):
        super().__init__()
        _unsupported("AdagradOptimizer", rowWise=rowWise, lars=lars)
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
        self._check_sparse(grad)
        if _is_sparse(grad) and self.decay != 1:
            raise NotImplementedError(f"AdagradOptimizer: decay={self.decay!r} with a sparse gradient "
                                      f"(param {param}): SparseAdagrad has no decay")
        self._decay(net, param_init_net, param, grad)
        lr, _ = self.build_lr(net, param_init_net, self.alpha, policy=self.policy,
                              **self.init_kwargs)
        history = self._state(param_init_net, param, "_squared_sum")
        if _is_sparse(grad):
            net.SparseAdagrad([param, history, grad.indices, grad.values, lr], [param, history],
                              epsilon=self.epsilon)
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
    _unsupported(type(optimizer).__name__, allow_lr_injection=allow_lr_injection)
    params, param_to_grad = _params_with_grads(model, parameters)
    if weights_only:
        params = [p for p in params if _is_weight(model, p)]
    if max_gradient_norm is not None and params:
        optimizer.add_lr_multiplier(_norm_ratio(model, params, param_to_grad, max_gradient_norm))
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
