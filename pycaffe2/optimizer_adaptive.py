"""Caffe2's RmsProp, Ftrl and Adadelta optimizers (the adaptive op family's
updates); `optimizer` re-exports them beside its build_* functions.
"""
from __future__ import annotations

from pycaffe2.optimizer_base import Optimizer, _is_sparse, _one, _ref


def _refuse_sparse(cls: str, sparse_op: str, param) -> None:
    raise NotImplementedError(f"{cls}: param {param} has a sparse gradient, whose update needs "
                              f"{sparse_op}, which pycaffe2 does not have yet")


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
    """FTRL-proximal: Ftrl on the param and its (n, z) pairs, `<param>_ftrl_nz`. Dense
    gradients only (SparseFtrl is not in pycaffe2)."""

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
        if _is_sparse(grad):
            _refuse_sparse("FtrlOptimizer", "SparseFtrl", param)
        name = f"{param}_ftrl_nz"
        n_z = param_init_net.ConstantFill([_ref(param, param_init_net)], [_ref(name, param_init_net)],
                                          extra_shape=[2], value=0.0)
        self._aux_params.local.append(name)
        net.Ftrl([param, _ref(n_z, net), grad], [param, _ref(n_z, net)], engine=self.engine or None,
                 alpha=float(self.alpha), beta=float(self.beta), lambda1=float(self.lambda1),
                 lambda2=float(self.lambda2))

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale


class AdadeltaOptimizer(Optimizer):
    """AdaDelta (later Caffe2 versions): Adadelta on the param, `<param>_squared_moment`
    and `<param>_squared_moment_update`, with lr = -alpha by the policy. Dense gradients."""

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
        if _is_sparse(grad):
            _refuse_sparse("AdadeltaOptimizer", "SparseAdadelta", param)
        lr, _ = self.build_lr(net, param_init_net, self.alpha, policy=self.policy, **self.init_kwargs)
        moment = self._state(param_init_net, param, "_squared_moment")
        update = self._state(param_init_net, param, "_squared_moment_update")
        net.Adadelta([param, moment, update, grad, lr], [param, moment, update], epsilon=self.epsilon,
                     decay=self.decay, engine=self.engine or None)

    def scale_learning_rate(self, scale: float) -> None:
        self.alpha *= scale
