"""The optimizer's base: the Optimizer class (learning rate, iteration counter,
per-param state) and the helpers its update rules share. `optimizer` holds the
rules and builders and re-exports these names; see its docstring for the signs
of the learning rates.
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

    @staticmethod
    def dedup(net, sparse_dedup_aggregator, grad):
        """A sparse gradient with its repeated rows merged ('sum' or 'mean') when an
        aggregator is given, else as it is: Caffe2's sparse ops update a repeated row once
        per occurrence, as pycaffe2's do."""
        if not _is_sparse(grad):
            raise TypeError(f"dedup takes a GradientSlice, got {type(grad).__name__}")
        if sparse_dedup_aggregator:
            return net.DeduplicateGradientSlices(grad, aggregator=sparse_dedup_aggregator)
        return grad

    def _dedup_sparse(self, net, grad):
        """dedup with this optimizer's sparse_dedup_aggregator; dense gradients as they are."""
        if _is_sparse(grad):
            return self.dedup(net, getattr(self, "sparse_dedup_aggregator", None), grad)
        return grad
