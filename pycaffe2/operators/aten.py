"""The ATen op (Caffe2's caffe2/contrib/aten): one NumPy function per form of an
ATen function, keyed by the form's name in the dispatch table of
schema/inference/aten.py. The op's kernel is made once per op at CreateNet: it
picks the form there (an unknown operator or form stops CreateNet), then at
each run checks the inputs with the form's shape rule, calls the function and
gives the outputs the rule's dtypes. Elementwise, reduction, indexing and shape
functions are here; the nn ones, casts and fills in `_aten_nn`.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators import _aten_nn
from pycaffe2.operators.registry import ALL_SCHEMA_ARGS, register_cpu
from pycaffe2.schema.inference import info_of
from pycaffe2.schema.inference.aten import check_outputs, check_sizes, select_form

# One table for both modules: form key -> function(*arrays, **attributes).
KERNELS: dict = _aten_nn.KERNELS
kernel = _aten_nn.kernel


@register_cpu("ATen", specialize=True, args=ALL_SCHEMA_ARGS)
def aten(*, num_outputs, input_names, **args):
    given = {name: value for name, value in args.items() if value is not None}
    chosen, attrs = select_form(args["operator"], len(input_names), given)
    check_outputs(chosen, num_outputs)
    function = KERNELS[chosen.key]

    def run(*inputs):
        for i, value in enumerate(inputs):
            if not isinstance(value, np.ndarray):
                raise TypeError(f"input {i} must be a tensor, got {type(value).__name__}")
        infos = chosen.shape([info_of(value) for value in inputs], attrs)
        check_sizes(infos)
        with np.errstate(all="ignore"):  # log(-1) is nan, 1 / 0 inf, silently, as in ATen
            results = function(*inputs, **attrs)
        results = results if isinstance(results, tuple) else (results,)
        return tuple(np.asarray(value).astype(info.dtype, copy=False) if info is not None else value
                     for value, info in zip(results[:num_outputs], infos))
    return run


def _dim(dim: int, rank: int) -> int:
    return dim % max(rank, 1)


# -- elementwise ------------------------------------------------------------------------------------
_SAME = {"abs": np.abs, "neg": np.negative, "floor": np.floor, "ceil": np.ceil, "sign": lambda x: x.copy() if x.dtype == bool else np.sign(x),
         "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)), "contiguous": np.copy, "clone": np.copy,
         "detach": np.copy}
_FLOAT = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
          "erf": _aten_nn.erf, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "tanh": np.tanh, "sin": np.sin,
          "cos": np.cos, "reciprocal": lambda x: 1 / x, "log1p": np.log1p, "expm1": np.expm1}


def _as_float(x):
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _on_floats(function):
    return lambda x: function(_as_float(x))


KERNELS.update(_SAME)
KERNELS.update({key: _on_floats(function) for key, function in _FLOAT.items()})


@kernel("gelu")
def gelu(x, *, approximate):
    x = _as_float(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + _aten_nn.erf(x / np.sqrt(2)))


@kernel("add")
def add(x, y, *, alpha):
    return x + alpha * y if alpha != 1 else x + y


@kernel("sub")
def sub(x, y, *, alpha):
    return x - alpha * y if alpha != 1 else x - y


def _scalar(x, value):
    """A scalar attribute as an operand of x: integers wrap to x's integer type, as
    ATen's C++ casts do (NumPy would refuse -2 for uint8)."""
    if isinstance(value, float) or x.dtype.kind not in "iu":
        return value
    return np.array(value).astype(x.dtype)


@kernel("add.scalar")
def add_scalar(x, *, other, alpha):
    return x + _scalar(x, other * alpha)


@kernel("sub.scalar")
def sub_scalar(x, *, other, alpha):
    return x - _scalar(x, other * alpha)


KERNELS.update({
    "mul": np.multiply, "div": lambda x, y: np.true_divide(_as_float(x), y), "pow": np.power,
    "max.other": np.maximum, "min.other": np.minimum,
    "mul.scalar": lambda x, *, other: x * _scalar(x, other),
    "div.scalar": lambda x, *, other: np.true_divide(_as_float(x), other),
    "pow.scalar": lambda x, *, exponent: np.power(x, _scalar(x, exponent)),
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "gt": np.greater, "le": np.less_equal,
    "ge": np.greater_equal,
    "where": lambda condition, x, y: np.where(condition.astype(bool), x, y),
    "clamp": lambda x, *, min, max: np.clip(x, *(None if v is None else _scalar(x, v) for v in (min, max))),
    "clamp_min": lambda x, *, min: np.maximum(x, _scalar(x, min)),
    "clamp_max": lambda x, *, max: np.minimum(x, _scalar(x, max)),
})


# -- reductions -------------------------------------------------------------------------------------
def _summed(x, **axes):
    """A sum, integers and bools summed as int64 (PyTorch's rule)."""
    return np.sum(x, dtype=np.int64 if x.dtype.kind in "biu" else x.dtype, **axes)


KERNELS.update({"max.all": np.max, "min.all": np.min, "mean.all": np.mean, "sum.all": _summed})


def _extreme_dim(reduce, pick):
    def function(x, *, dim, keepdim):
        if x.ndim == 0:
            return x.copy(), np.zeros((), np.int64)
        axis = _dim(dim, x.ndim)
        return reduce(x, axis=axis, keepdims=keepdim), pick(x, axis=axis, keepdims=keepdim)
    return function


def _arg_reduce(pick):
    def function(x, *, dim, keepdim):
        if dim is None:
            flat = pick(x.reshape(-1))
            return np.full((1,) * x.ndim, flat) if keepdim else np.asarray(flat)
        return pick(x, axis=_dim(dim, x.ndim), keepdims=keepdim) if x.ndim else np.zeros((), np.int64)
    return function


KERNELS["max.dim"], KERNELS["min.dim"] = _extreme_dim(np.max, np.argmax), _extreme_dim(np.min, np.argmin)
KERNELS["argmax"], KERNELS["argmin"] = _arg_reduce(np.argmax), _arg_reduce(np.argmin)


def _reduce_dims(reduce):
    def function(x, *, dim, keepdim):
        dims = dim if isinstance(dim, list) else [dim]
        if x.ndim == 0:
            return reduce(x, axis=None)
        axes = tuple(sorted({_dim(d, x.ndim) for d in dims})) if dims else None
        return reduce(x, axis=axes, keepdims=keepdim)
    return function


KERNELS["sum.dim"], KERNELS["mean.dim"] = _reduce_dims(_summed), _reduce_dims(np.mean)


@kernel("cumsum")
def cumsum(x, *, dim):
    if x.ndim == 0:
        return x.astype(np.int64 if x.dtype.kind in "biu" else x.dtype)
    return np.cumsum(x, axis=_dim(dim, x.ndim), dtype=np.int64 if x.dtype.kind in "biu" else x.dtype)


@kernel("sort")
def sort(x, *, dim, descending):
    if x.ndim == 0:
        return x.copy(), np.zeros((), np.int64)
    dim = _dim(dim, x.ndim)
    # stable in both directions: equal values keep their order
    order = np.flip(np.argsort(np.flip(x, dim), axis=dim, kind="stable"), dim) if descending else \
        np.argsort(x, axis=dim, kind="stable")
    if descending:
        order = x.shape[dim] - 1 - order
    return np.take_along_axis(x, order, dim), order


@kernel("topk")
def topk(x, *, k, dim, largest, sorted):
    if x.ndim == 0:
        return x.copy(), np.zeros((), np.int64)
    values, order = sort(x, dim=dim, descending=largest)
    dim = _dim(dim, x.ndim)
    return np.take(values, np.arange(k), dim), np.take(order, np.arange(k), dim)


# -- shapes and indexing ----------------------------------------------------------------------------
def _reshaped(x, shape):
    return x.reshape(shape).copy()


@kernel("unsqueeze")
def unsqueeze(x, *, dim):
    return np.expand_dims(x, dim % (x.ndim + 1)).copy()


@kernel("squeeze.all")
def squeeze_all(x):
    return np.squeeze(x).copy()


@kernel("squeeze.dim")
def squeeze_dim(x, *, dim):
    if x.ndim == 0 or x.shape[_dim(dim, x.ndim)] != 1:
        return x.copy()
    return np.squeeze(x, _dim(dim, x.ndim)).copy()


@kernel("flatten")
def flatten(x, *, start_dim, end_dim):
    if x.ndim == 0:
        return x.reshape(1).copy()
    start, end = _dim(start_dim, x.ndim), _dim(end_dim, x.ndim)
    return _reshaped(x, x.shape[:start] + (-1,) + x.shape[end + 1:]) if x.size else \
        np.zeros(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:], x.dtype)


KERNELS.update({
    "reshape": lambda x, *, shape: _reshaped(x, shape),
    "view": lambda x, *, size: _reshaped(x, size),
    "permute": lambda x, *, dims: np.transpose(x, [_dim(d, x.ndim) for d in dims]).copy(),
    "transpose": lambda x, *, dim0, dim1: np.swapaxes(x, _dim(dim0, x.ndim), _dim(dim1, x.ndim)).copy()
    if x.ndim else x.copy(),
    "expand_as": lambda x, other: np.broadcast_to(x, other.shape).copy(),
    "flip": lambda x, *, dims: np.flip(x, [_dim(d, x.ndim) for d in dims]).copy() if x.ndim else x.copy(),
    "matmul": np.matmul, "mm": np.matmul,
})


@kernel("expand")
def expand(x, *, size, implicit):
    lead = len(size) - x.ndim
    shape = [x.shape[i - lead] if want == -1 else want for i, want in enumerate(size)]
    return np.broadcast_to(x, shape).copy()


@kernel("repeat")
def repeat(x, *, repeats):
    return np.tile(x.reshape((1,) * (len(repeats) - x.ndim) + x.shape), repeats)


@kernel("narrow")
def narrow(x, *, dim, start, length):
    dim = _dim(dim, x.ndim)
    start = start + x.shape[dim] if start < 0 else start
    return np.take(x, np.arange(start, start + length), dim)


@kernel("slice")
def slice_(x, *, dim, start, end, step):
    dim = _dim(dim, x.ndim)
    return np.take(x, np.arange(*slice(start, end, step).indices(x.shape[dim])), dim)


@kernel("select")
def select(x, *, dim, index):
    return np.take(x, index, _dim(dim, x.ndim)).copy()


@kernel("cat")
def cat(*tensors, dim):
    return np.concatenate(tensors, _dim(dim, tensors[0].ndim))


@kernel("stack")
def stack(*tensors, dim):
    return np.stack(tensors, dim % (tensors[0].ndim + 1))


def _checked(index, size: int, what: str = "index") -> np.ndarray:
    index = index.astype(np.int64)
    bad = index[(index < -size) | (index >= size)]
    if bad.size:
        raise ValueError(f"{what} {int(bad.reshape(-1)[0])} is out of range for a dimension of size {size}")
    return np.where(index < 0, index + size, index)


@kernel("index_select")
def index_select(x, index, *, dim):
    if x.ndim == 0:
        _checked(index.reshape(-1), 1)
        return x.copy()
    dim = _dim(dim, x.ndim)
    return np.take(x, _checked(index.reshape(-1), x.shape[dim]), dim)


@kernel("index")
def index(x, indices):
    if indices.dtype.kind in "bu" and indices.dtype.itemsize == 1:
        return x[indices.astype(bool)]
    return x[_checked(indices, x.shape[0], "indices")]


@kernel("index_put")
def index_put(x, indices, values, *, accumulate):
    out = x.copy()
    if indices.dtype.kind in "bu" and indices.dtype.itemsize == 1:
        mask = indices.astype(bool)
        picked = int(mask.sum())
        if values.size not in (1, picked) and values.shape != out[mask].shape:
            raise ValueError(f"values {list(values.shape)} cannot fill the {picked} entries the mask selects")
        values = np.broadcast_to(values.reshape(-1) if values.size == picked else values, out[mask].shape)
        out[mask] = out[mask] + values if accumulate else values
        return out
    rows = _checked(indices, x.shape[0], "indices")
    values = np.broadcast_to(values, rows.shape + x.shape[1:])
    if accumulate:
        np.add.at(out, rows, values)
    else:
        out[rows] = values
    return out

