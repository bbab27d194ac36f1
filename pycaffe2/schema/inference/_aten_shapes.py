"""Shape and type rules of the ATen op's forms (the table is in `aten`). Each
takes the input TensorInfos and the form's attributes and returns the output
TensorInfos, raising ShapeError when the inputs or attributes cannot work;
the kernels call the same rules on their arrays before computing. Output
dtypes follow PyTorch: integer sums give int64, indices are int64, functions
that only make sense on floats turn an integer input into float32.
"""
from __future__ import annotations

import math

import numpy as np

from pycaffe2.schema.inference import ShapeError, TensorInfo

INDEX_TYPES = ("int32", "int64")


def is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def floating(dtype: str) -> str:
    return dtype if is_float(dtype) else "float32"


def promote(*dtypes: str) -> str:
    """PyTorch's promotion between tensors: a float beats an integer whatever their
    sizes (int32 with float32 is float32); within a kind the larger wins."""
    floats = [d for d in dtypes if is_float(d)]
    return np.result_type(*(floats or dtypes)).name


def axis(dim: int, rank: int, what: str = "dim", extra: int = 0) -> int:
    """`dim` as an index into a rank-`rank` shape (rank + extra places; a scalar has one)."""
    places = max(rank, 1) + extra
    if not -places <= dim < places:
        raise ShapeError(f"{what} {dim} is out of range for rank {rank} (expected -{places} .. {places - 1})")
    return dim % places


def need_float(x: TensorInfo, what: str = "self") -> None:
    if not is_float(x.dtype):
        raise ShapeError(f"{what} must be a float tensor, got {x.dtype}")


def need_rank(x: TensorInfo, ranks, what: str = "self") -> None:
    if len(x.shape) not in ranks:
        raise ShapeError(f"{what} must have rank {' or '.join(map(str, ranks))}, got {list(x.shape)}")


def need_index(x: TensorInfo, what: str, ranks=(1,)) -> None:
    if x.dtype not in INDEX_TYPES or len(x.shape) not in ranks:
        raise ShapeError(f"{what} must be a rank-{' or '.join(map(str, ranks))} int32 or int64 tensor, "
                         f"got {x.describe()}")


def broadcast(*shapes) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        raise ShapeError("shapes " + ", ".join(str(list(s)) for s in shapes) + " do not broadcast") from None


def _out(shape, dtype) -> list:
    return [TensorInfo(tuple(int(d) for d in shape), dtype)]


# -- elementwise ------------------------------------------------------------------------------------
def same(infos, a):
    return _out(infos[0].shape, infos[0].dtype)


def negated(infos, a):
    if infos[0].dtype == "bool":
        raise ShapeError("neg of a bool tensor is not supported (ATen refuses it too)")
    return same(infos, a)


def float_out(infos, a):
    if a.get("approximate", "none") not in ("none", "tanh"):
        raise ShapeError(f"approximate must be 'none' or 'tanh', got {a['approximate']!r}")
    return _out(infos[0].shape, floating(infos[0].dtype))


def binary(infos, a):
    x, y = infos
    return _out(broadcast(x.shape, y.shape), promote(x.dtype, y.dtype))


def true_divide(infos, a):
    x, y = infos
    return _out(broadcast(x.shape, y.shape), floating(promote(x.dtype, y.dtype)))


def scalar(infos, a):
    (x,) = infos
    value = a.get("other", a.get("exponent"))
    return _out(x.shape, "float32" if isinstance(value, float) and not is_float(x.dtype) else x.dtype)


def scalar_divide(infos, a):
    return _out(infos[0].shape, floating(infos[0].dtype))


def compare(infos, a):
    return _out(broadcast(infos[0].shape, infos[1].shape), "bool")


def where(infos, a):
    condition, x, y = infos
    if condition.dtype not in ("bool", "uint8"):
        raise ShapeError(f"condition must be a bool or uint8 tensor, got {condition.dtype}")
    return _out(broadcast(condition.shape, x.shape, y.shape), promote(x.dtype, y.dtype))


def clamp(infos, a):
    if a.get("min") is None and a.get("max") is None:
        raise ShapeError("clamp needs at least one of min and max")
    return same(infos, a)


# -- reductions -------------------------------------------------------------------------------------
def _reduced_dtype(x: TensorInfo, kind: str) -> str:
    if kind == "mean":
        need_float(x)
    return "int64" if kind in ("sum", "cumsum") and not is_float(x.dtype) else x.dtype


def reduce_all(kind: str):
    def rule(infos, a):
        (x,) = infos
        if kind == "extreme" and math.prod(x.shape) == 0:
            raise ShapeError(f"cannot take the max or min of an empty tensor {list(x.shape)}")
        return _out((), _reduced_dtype(x, kind))
    return rule


def _kept(shape, dims: set, keepdim: bool) -> tuple:
    return tuple(1 if i in dims else d for i, d in enumerate(shape) if keepdim or i not in dims)


def reduce_dims(kind: str):
    def rule(infos, a):
        (x,) = infos
        dims = a["dim"] if isinstance(a["dim"], list) else [a["dim"]]
        found = [axis(d, len(x.shape)) for d in dims]
        if len(set(found)) != len(found):
            raise ShapeError(f"dim {dims} names a dimension twice")
        if not x.shape:
            return _out((), _reduced_dtype(x, kind))
        found = set(found) if dims else set(range(len(x.shape)))  # dim=[]: every dimension
        return _out(_kept(x.shape, found, a["keepdim"]), _reduced_dtype(x, kind))
    return rule


def max_dim(infos, a):
    (x,) = infos
    dim = axis(a["dim"], len(x.shape))
    if x.shape and x.shape[dim] == 0:
        raise ShapeError(f"cannot take the max or min along dim {a['dim']} of size 0 ({list(x.shape)})")
    shape = _kept(x.shape, {dim} if x.shape else set(), a["keepdim"])
    return _out(shape, x.dtype) + _out(shape, "int64")


def arg_reduce(infos, a):
    (x,) = infos
    if math.prod(x.shape) == 0:
        raise ShapeError(f"cannot take argmax or argmin of an empty tensor {list(x.shape)}")
    if a["dim"] is None:
        return _out((1,) * len(x.shape) if a["keepdim"] else (), "int64")
    dim = axis(a["dim"], len(x.shape))
    return _out(_kept(x.shape, {dim} if x.shape else set(), a["keepdim"]), "int64")


def cumsum(infos, a):
    (x,) = infos
    axis(a["dim"], len(x.shape))
    return _out(x.shape, _reduced_dtype(x, "cumsum"))


def sort(infos, a):
    (x,) = infos
    axis(a["dim"], len(x.shape))
    return _out(x.shape, x.dtype) + _out(x.shape, "int64")


def topk(infos, a):
    (x,) = infos
    dim = axis(a["dim"], len(x.shape))
    size = x.shape[dim] if x.shape else 1
    if not 0 <= a["k"] <= size:
        raise ShapeError(f"k {a['k']} is out of range for dim {a['dim']} of size {size}")
    shape = list(x.shape)
    if shape:
        shape[dim] = a["k"]
    return _out(shape, x.dtype) + _out(shape, "int64")


# -- shapes -----------------------------------------------------------------------------------------
def unsqueeze(infos, a):
    (x,) = infos
    dim = axis(a["dim"], len(x.shape), extra=0 if not x.shape else 1)
    return _out(x.shape[:dim] + (1,) + x.shape[dim:], x.dtype)


def squeeze(infos, a):
    (x,) = infos
    if "dim" not in a:
        return _out(tuple(d for d in x.shape if d != 1), x.dtype)
    dim = axis(a["dim"], len(x.shape))
    keep = not x.shape or x.shape[dim] != 1
    return _out(x.shape if keep else x.shape[:dim] + x.shape[dim + 1:], x.dtype)


def flatten(infos, a):
    (x,) = infos
    if not x.shape:
        return _out((1,), x.dtype)
    start, end = axis(a["start_dim"], len(x.shape), "start_dim"), axis(a["end_dim"], len(x.shape), "end_dim")
    if start > end:
        raise ShapeError(f"start_dim {a['start_dim']} comes after end_dim {a['end_dim']}")
    return _out(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:], x.dtype)


def reshape(infos, a):
    (x,) = infos
    shape = list(a.get("shape", a.get("size")))
    size = math.prod(x.shape)
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise ShapeError(f"shape {shape} may hold one -1 and no other negative size")
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise ShapeError(f"cannot view {list(x.shape)} ({size} elements) as {shape}")
        shape[shape.index(-1)] = size // known
    if math.prod(shape) != size:
        raise ShapeError(f"cannot view {list(x.shape)} ({size} elements) as {shape}")
    return _out(shape, x.dtype)


def permute(infos, a):
    (x,) = infos
    dims = [axis(d, len(x.shape)) for d in a["dims"]] if x.shape else list(a["dims"])
    if sorted(dims) != list(range(len(x.shape))):
        raise ShapeError(f"dims {a['dims']} must order the {len(x.shape)} dimensions of {list(x.shape)}")
    return _out([x.shape[d] for d in dims], x.dtype)


def transpose(infos, a):
    (x,) = infos
    shape = list(x.shape)
    d0, d1 = axis(a["dim0"], len(shape), "dim0"), axis(a["dim1"], len(shape), "dim1")
    if shape:
        shape[d0], shape[d1] = shape[d1], shape[d0]
    return _out(shape, x.dtype)


def _expanded(shape, size) -> list:
    if len(size) < len(shape):
        raise ShapeError(f"size {list(size)} has fewer dimensions than the tensor {list(shape)}")
    lead = len(size) - len(shape)
    out = []
    for i, want in enumerate(size):
        have = shape[i - lead] if i >= lead else None
        if want == -1 and have is not None:
            want = have
        if want < 0 or (have is not None and have != want and have != 1):
            raise ShapeError(f"cannot expand {list(shape)} to {list(size)}")
        out.append(want)
    return out


def expand(infos, a):
    return _out(_expanded(infos[0].shape, a["size"]), infos[0].dtype)


def expand_as(infos, a):
    return _out(_expanded(infos[0].shape, infos[1].shape), infos[0].dtype)


def repeat(infos, a):
    (x,) = infos
    repeats = a["repeats"]
    if len(repeats) < len(x.shape) or any(r < 0 for r in repeats):
        raise ShapeError(f"repeats {repeats} must be >= 0 and at least as many as the dims of {list(x.shape)}")
    padded = (1,) * (len(repeats) - len(x.shape)) + tuple(x.shape)
    return _out([d * r for d, r in zip(padded, repeats)], x.dtype)


def _need_rank_1(x, what):
    if not x.shape:
        raise ShapeError(f"{what} needs a tensor of rank >= 1, got a scalar")


def narrow(infos, a):
    (x,) = infos
    _need_rank_1(x, "narrow")
    dim = axis(a["dim"], len(x.shape))
    size, start, length = x.shape[dim], a["start"], a["length"]
    start = start + size if -size <= start < 0 else start
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise ShapeError(f"start {a['start']} and length {length} do not fit dim {a['dim']} of size {size}")
    return _out(x.shape[:dim] + (length,) + x.shape[dim + 1:], x.dtype)


def slice_(infos, a):
    (x,) = infos
    _need_rank_1(x, "slice")
    dim = axis(a["dim"], len(x.shape))
    if a["step"] < 1:
        raise ShapeError(f"step must be >= 1, got {a['step']}")
    length = len(range(*slice(a["start"], a["end"], a["step"]).indices(x.shape[dim])))
    return _out(x.shape[:dim] + (length,) + x.shape[dim + 1:], x.dtype)


def select(infos, a):
    (x,) = infos
    _need_rank_1(x, "select")
    dim = axis(a["dim"], len(x.shape))
    if not -x.shape[dim] <= a["index"] < x.shape[dim]:
        raise ShapeError(f"index {a['index']} is out of range for dim {a['dim']} of size {x.shape[dim]}")
    return _out(x.shape[:dim] + x.shape[dim + 1:], x.dtype)


def cat(infos, a):
    first = infos[0]
    _need_rank_1(first, "cat")
    dim = axis(a["dim"], len(first.shape))
    for i, x in enumerate(infos[1:], 1):
        if len(x.shape) != len(first.shape) or any(
                p != q for k, (p, q) in enumerate(zip(x.shape, first.shape)) if k != dim):
            raise ShapeError(f"tensor {i} {list(x.shape)} must match tensor 0 {list(first.shape)} off dim {dim}")
    shape = list(first.shape)
    shape[dim] = sum(x.shape[dim] for x in infos)
    return _out(shape, promote(*(x.dtype for x in infos)))


def stack(infos, a):
    first = infos[0]
    dim = axis(a["dim"], len(first.shape), extra=1)
    for i, x in enumerate(infos[1:], 1):
        if x.shape != first.shape:
            raise ShapeError(f"tensor {i} {list(x.shape)} must have tensor 0's shape {list(first.shape)}")
    return _out(first.shape[:dim] + (len(infos),) + first.shape[dim:], promote(*(x.dtype for x in infos)))


def index_select(infos, a):
    x, index = infos
    need_index(index, "index", (0, 1))
    dim = axis(a["dim"], len(x.shape))
    if not x.shape:
        return _out((), x.dtype)
    return _out(x.shape[:dim] + (math.prod(index.shape),) + x.shape[dim + 1:], x.dtype)


def index(infos, a):
    x, idx = infos
    if idx.dtype in ("bool", "uint8"):
        if tuple(idx.shape) != tuple(x.shape[:len(idx.shape)]):
            raise ShapeError(f"mask {list(idx.shape)} must match the leading dims of {list(x.shape)}")
        return [None]  # its length is the number of set entries
    need_index(idx, "indices", range(9))
    _need_rank_1(x, "index")
    return _out(tuple(idx.shape) + tuple(x.shape[1:]), x.dtype)


def index_put(infos, a):
    x, idx, values = infos
    if idx.dtype in ("bool", "uint8"):
        if tuple(idx.shape) != tuple(x.shape[:len(idx.shape)]):
            raise ShapeError(f"mask {list(idx.shape)} must match the leading dims of {list(x.shape)}")
    else:
        need_index(idx, "indices", range(9))
        _need_rank_1(x, "index_put")
        broadcast(values.shape, tuple(idx.shape) + tuple(x.shape[1:]))
    return _out(x.shape, x.dtype)


def flip(infos, a):
    (x,) = infos
    dims = [axis(d, len(x.shape)) for d in a["dims"]]
    if len(set(dims)) != len(dims):
        raise ShapeError(f"dims {a['dims']} names a dimension twice")
    return same(infos, a)


def matmul(infos, a):
    x, y = infos
    if not x.shape or not y.shape:
        raise ShapeError(f"matmul needs tensors of rank >= 1, got {list(x.shape)} and {list(y.shape)}")
    xs = (1,) + x.shape if len(x.shape) == 1 else x.shape
    ys = y.shape + (1,) if len(y.shape) == 1 else y.shape
    if xs[-1] != ys[-2]:
        raise ShapeError(f"cannot multiply {list(x.shape)} by {list(y.shape)}")
    shape = broadcast(xs[:-2], ys[:-2]) + (xs[-2], ys[-1])
    if len(x.shape) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(y.shape) == 1:
        shape = shape[:-1]
    return _out(shape, promote(x.dtype, y.dtype))


def mm(infos, a):
    for x, what in zip(infos, ("self", "mat2")):
        need_rank(x, (2,), what)
    return matmul(infos, a)

