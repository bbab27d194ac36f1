"""Caffe2's RmsProp, Ftrl, GFtrl, Adadelta, Wngrad, Storm, DecayAdagrad and YellowFin
optimizers (the adaptive, sparse_update and yellowfin op families' updates); `optimizer`
re-exports them beside its build_* functions.
"""
from __future__ import annotations

from pycaffe2.optimizer_base import (
    Optimizer,
    _fill_once,
    _is_sparse,
    _one,
    _ref,
    _unsupported,
    build_iter,
)


class RmsPropOptimizer(Optimizer):
    """RMSProp as Caffe2 builds it: RmsProp with lr = 1 gives the step and its statistics,
    then MomentumSGDUpdate (no momentum) subtracts alpha times the step, writing
    alpha * step over the momentum blob, as Caffe2's does. Dense gradients only."""

    def __init__(self, alpha: float = 0.01, decay: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-5, policy: str = "fixed", engine: str = "", **kwargs):
        super().__init__()
        self.alpha = alpha
        self.decay = decay
        self.momentum = momentum
        self.epsilon = epsilon
        self.policy = policy
        self.engine = engine
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            raise ValueError(f"RmsPropOptimizer: alpha must be positive, got {self.alpha}")
        if _is_sparse(grad):
            raise ValueError(f"RmsPropOptimizer: param {param} has a sparse gradient, which RmsProp "
                             "does not take (nor does Caffe2's)")
        one = _one(param_init_net)
        lr, _ = self.build_lr(net, param_init_net, -self.alpha, policy=self.policy, **self.init_kwargs)
        step = param_init_net.ConstantFill([_ref(param, param_init_net)],
                                           [_ref(f"{param}_grad_o", param_init_net)], value=0.0)
        mean_squares = self._state(param_init_net, param, "_mean_squares")
        mom = self._state(param_init_net, param, "_momentum")
        net.RmsProp([grad, mean_squares, mom, one], [_ref(step, net), mean_squares, mom], decay=self.decay,
                    momentum=self.momentum, epsilon=self.epsilon, engine=self.engine or None)
        net.MomentumSGDUpdate([step, mom, lr, param], [step, mom, param])

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class FtrlOptimizer(Optimizer):
    """FTRL-proximal: Ftrl on the param and its (n, z) pairs, `<param>_ftrl_nz`; a sparse
    gradient (deduplicated by sparse_dedup_aggregator when given) takes SparseFtrl."""

    def __init__(self, alpha: float = 0.01, beta: float = 1e-4, lambda1: float = 0, lambda2: float = 0,
                 sparse_dedup_aggregator=None, engine: str = ""):
        super().__init__()
        self.alpha = alpha
        self.beta = beta
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.engine = engine

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            return
        name = f"{param}_ftrl_nz"
        n_z = param_init_net.ConstantFill([_ref(param, param_init_net)], [_ref(name, param_init_net)],
                                          extra_shape=[2], value=0.0)
        self._aux_params.local.append(name)
        args = {"engine": self.engine or None, "alpha": float(self.alpha), "beta": float(self.beta),
                "lambda1": float(self.lambda1), "lambda2": float(self.lambda2)}
        if _is_sparse(grad):
            grad = self.dedup(net, self.sparse_dedup_aggregator, grad)
            net.SparseFtrl([param, _ref(n_z, net), grad.indices, grad.values], [param, _ref(n_z, net)], **args)
        else:
            net.Ftrl([param, _ref(n_z, net), grad], [param, _ref(n_z, net)], **args)

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class AdadeltaOptimizer(Optimizer):
    """AdaDelta (later Caffe2 versions): Adadelta on the param, `<param>_squared_moment`
    and `<param>_squared_moment_update`, with lr = -alpha by the policy; a sparse gradient
    (deduplicated by sparse_dedup_aggregator when given) takes SparseAdadelta."""

    def __init__(self, alpha: float = 0.01, epsilon: float = 1e-4, decay: float = 0.95,
                 policy: str = "fixed", sparse_dedup_aggregator=None, engine: str = "", **kwargs):
        super().__init__()
        self.alpha = alpha
        self.epsilon = epsilon
        self.decay = decay
        self.policy = policy
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.engine = engine
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            return
        lr, _ = self.build_lr(net, param_init_net, self.alpha, policy=self.policy, **self.init_kwargs)
        moment = self._state(param_init_net, param, "_squared_moment")
        update = self._state(param_init_net, param, "_squared_moment_update")
        args = {"epsilon": self.epsilon, "decay": self.decay, "engine": self.engine or None}
        if _is_sparse(grad):
            grad = self.dedup(net, self.sparse_dedup_aggregator, grad)
            net.SparseAdadelta([param, moment, update, grad.indices, grad.values, lr], [param, moment, update],
                               **args)
        else:
            net.Adadelta([param, moment, update, grad, lr], [param, moment, update], **args)

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class YellowFinOptimizer(Optimizer):
    """YellowFin (https://arxiv.org/abs/1706.03471): momentum SGD whose learning rate and
    momentum, one pair per param, tune themselves. State blobs `<param>_moment`,
    `_curv_win`, `_g_avg`, `_g2_avg`, `_lr_avg` (from alpha), `_mu_avg` (from mu) and
    `_scalars_memory`; the shared iteration counter. Dense gradients."""

    SCALARS_MEMORY_SIZE = 5  # the YellowFin op's scalar averages

    def __init__(self, alpha: float = 0.1, mu: float = 0.0, beta: float = 0.999, curv_win_width: int = 20,
                 zero_debias: bool = True, epsilon: float = 0.1 ** 6, policy: str = "fixed",
                 sparse_dedup_aggregator=None, **kwargs):
        super().__init__()
        self.alpha = alpha
        self.mu = mu
        self.beta = beta
        self.curv_win_width = curv_win_width
        self.zero_debias = zero_debias
        self.epsilon = epsilon
        self.policy = policy
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            raise ValueError(f"YellowFinOptimizer: alpha must be positive, got {self.alpha}")
        if _is_sparse(grad):
            raise NotImplementedError(f"YellowFinOptimizer: param {param} has a sparse gradient; "
                                      "YellowFin takes dense gradients only (as in Caffe2)")
        moment = self._state(param_init_net, param, "_moment")
        g_avg = self._state(param_init_net, param, "_g_avg")
        g2_avg = self._state(param_init_net, param, "_g2_avg")
        fills = {"_curv_win": ([self.curv_win_width], 0.0), "_lr_avg": ([1], self.alpha),
                 "_mu_avg": ([1], self.mu), "_scalars_memory": ([self.SCALARS_MEMORY_SIZE], 0.0)}
        state = {}
        for suffix, (shape, value) in fills.items():
            state[suffix] = _fill_once(param_init_net, f"{param}{suffix}", shape=shape, value=float(value))
            self._aux_params.local.append(state[suffix])
        iteration = build_iter(param_init_net, net)
        if iteration not in self._aux_params.shared:
            self._aux_params.shared.append(iteration)
        blobs = [param, moment, _ref(state["_lr_avg"], net), _ref(state["_mu_avg"], net),
                 _ref(state["_curv_win"], net), g_avg, g2_avg, _ref(state["_scalars_memory"], net)]
        net.YellowFin(blobs + [grad, iteration], blobs, beta=self.beta, epsilon=self.epsilon,
                      curv_win_width=self.curv_win_width, zero_debias=self.zero_debias)

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class GFtrlOptimizer(FtrlOptimizer):
    """Group-lasso FTRL: GFtrl on the param and its (n, z) pairs, `<param>_gftrl_nz`
    (dense gradients: Caffe2 has no sparse GFtrl); Ftrl's args."""

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            return
        if _is_sparse(grad):
            raise ValueError(f"GFtrlOptimizer: param {param} has a sparse gradient, which GFtrl does not take "
                             "(nor does Caffe2's)")
        name = f"{param}_gftrl_nz"
        n_z = param_init_net.ConstantFill([_ref(param, param_init_net)], [_ref(name, param_init_net)],
                                          extra_shape=[2], value=0.0)
        self._aux_params.local.append(name)
        net.GFtrl([param, _ref(n_z, net), grad], [param, _ref(n_z, net)], engine=self.engine or None,
                  alpha=float(self.alpha), beta=float(self.beta), lambda1=float(self.lambda1),
                  lambda2=float(self.lambda2))


class WngradOptimizer(Optimizer):
    """WnGrad: Wngrad (SparseWngrad for a sparse gradient) with a one-element history
    `<param>_moment` starting at moment_init; lr = -alpha by the policy."""

    def __init__(self, alpha: float = 1.0, epsilon: float = 1e-9, policy: str = "fixed",
                 sparse_dedup_aggregator=None, engine: str = "", moment_init: float = 100.0, lars=None,
                 output_effective_lr: bool = False, output_effective_lr_and_update: bool = False, **kwargs):
        super().__init__()
        _unsupported("WngradOptimizer", lars=lars)
        self.alpha = alpha
        self.epsilon = epsilon
        self.policy = policy
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.engine = engine
        self.moment_init = moment_init
        self.output_effective_lr = output_effective_lr
        self.output_effective_lr_and_update = output_effective_lr_and_update
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            return
        lr, _ = self.build_lr(net, param_init_net, self.alpha, policy=self.policy, **self.init_kwargs)
        name = f"{param}_moment"
        moment = _fill_once(param_init_net, name, shape=[1], value=float(self.moment_init))
        self._aux_params.local.append(name)
        moment = _ref(moment, net)
        args = {"epsilon": self.epsilon, "engine": self.engine or None}
        if _is_sparse(grad):
            grad = self.dedup(net, self.sparse_dedup_aggregator, grad)
            net.SparseWngrad([param, moment, grad.indices, grad.values, lr], [param, moment], **args)
            return
        outputs = [param, moment]
        if self.output_effective_lr or self.output_effective_lr_and_update:
            outputs.append(_ref(f"{param}_effective_lr", net))
        if self.output_effective_lr_and_update:
            outputs.append(_ref(f"{param}_update", net))
        net.Wngrad([param, moment, grad, lr], outputs, **args)

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class StormOptimizer(Optimizer):
    """STORM: Storm (SparseStorm for a sparse gradient) with `<param>_moment` and the
    one-element `<param>_grad_sq_sum` starting at grad_sq_init; lr = -lr by the policy."""

    def __init__(self, lr: float = 0.1, momentum: float = 10.0, beta: float = 0.1, grad_sq_init: float = 0.01,
                 policy: str = "fixed", sparse_dedup_aggregator=None, lars=None, **kwargs):
        super().__init__()
        _unsupported("StormOptimizer", lars=lars)
        self.lr = lr
        self.momentum = momentum
        self.beta = beta
        self.grad_sq_init = grad_sq_init
        self.policy = policy
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.lr <= 0:
            return
        lr, _ = self.build_lr(net, param_init_net, self.lr, policy=self.policy, **self.init_kwargs)
        moment = self._state(param_init_net, param, "_moment")
        name = f"{param}_grad_sq_sum"
        grad_sq_sum = _ref(_fill_once(param_init_net, name, shape=[1], value=float(self.grad_sq_init)), net)
        self._aux_params.local.append(name)
        args = {"momentum": self.momentum, "beta": self.beta}
        if _is_sparse(grad):
            grad = self.dedup(net, self.sparse_dedup_aggregator, grad)
            net.SparseStorm([param, moment, grad_sq_sum, grad.values, grad.indices, lr],
                            [param, moment, grad_sq_sum], **args)
        else:
            net.Storm([param, moment, grad_sq_sum, grad, lr], [param, moment, grad_sq_sum], **args)

    def scale_learning_rate(self, scale: float) -> None:
        self.lr *= scale


class DecayAdagradOptimizer(Optimizer):
    """DecayAdagrad on dense gradients (`<param>_first_mo1ment`, Caffe2's spelling, and
    `<param>_second_moment`); a sparse gradient takes SparseAdagrad with
    `<param>_squared_sum`, as in Caffe2."""

    def __init__(self, alpha: float = 0.01, beta1: float = 0.0, beta2: float = 0.999, epsilon: float = 0.1,
                 weight_decay: float = 0.0, ema_options=None, bias_correction_first: bool = True,
                 policy: str = "fixed", engine: str = "", **kwargs):
        super().__init__()
        _unsupported("DecayAdagradOptimizer", ema_options=ema_options)
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.bias_correction_first = bias_correction_first
        self.policy = policy
        self.engine = engine
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param, grad):
        if self.alpha <= 0:
            return
        lr, iteration = self.build_lr(net, param_init_net, self.alpha, policy=self.policy, **self.init_kwargs)
        if _is_sparse(grad):
            history = self._state(param_init_net, param, "_squared_sum")
            net.SparseAdagrad([param, history, grad.indices, grad.values, lr], [param, history],
                              epsilon=self.epsilon)
            return
        m1 = self._state(param_init_net, param, "_first_mo1ment")
        m2 = self._state(param_init_net, param, "_second_moment")
        if iteration not in self._aux_params.shared:
            self._aux_params.shared.append(iteration)
        net.DecayAdagrad([param, m1, m2, grad, lr, iteration], [param, m1, m2], beta1=self.beta1,
                         beta2=self.beta2, epsilon=self.epsilon, weight_decay=self.weight_decay,
                         bias_correction_first=bool(self.bias_correction_first))

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale
