"""Shape and type rules of the ATen op's nn forms (softmax, layer_norm, embedding
and embedding_bag, grid_sampler, upsampling, adaptive pooling, padding) and of
its casts and fills; the others are in `_aten_shapes`."""
from __future__ import annotations

from pycaffe2.schema.inference import ShapeError, TensorInfo
from pycaffe2.schema.inference._aten_shapes import _out, axis, need_float, need_index, need_rank, same

CASTS = {"_cast_Byte": "uint8", "_cast_Char": "int8", "_cast_Short": "int16", "_cast_Int": "int32",
         "_cast_Long": "int64", "_cast_Half": "float16", "_cast_Float": "float32", "_cast_Double": "float64"}
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                7: "float64", 11: "bool"}  # PyTorch's ScalarType numbers, as `to`'s dtype
TYPE_NAMES = {"float16": "float16", "half": "float16", "float": "float32", "double": "float64",
              "uint8": "uint8", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64"}


# -- nn ---------------------------------------------------------------------------------------------
def softmax(infos, a):
    (x,) = infos
    need_float(x)
    axis(a["dim"], len(x.shape))
    return same(infos, a)


def layer_norm(infos, a):
    x = infos[0]
    need_float(x, "input")
    normalized = tuple(a["normalized_shape"])
    if not normalized or tuple(x.shape[len(x.shape) - len(normalized):]) != normalized:
        raise ShapeError(f"normalized_shape {list(normalized)} must be the last dims of input {list(x.shape)}")
    for info, what in zip(infos[1:], ("weight", "bias")):
        if tuple(info.shape) != normalized:
            raise ShapeError(f"{what} {list(info.shape)} must have normalized_shape {list(normalized)}")
    return same(infos, a)


def embedding(infos, a):
    weight, indices = infos
    need_rank(weight, (2,), "weight")
    need_index(indices, "indices", range(9))
    return _out(tuple(indices.shape) + (weight.shape[1],), weight.dtype)


def embedding_bag(infos, a):
    weight, indices, offsets = infos[:3]
    need_rank(weight, (2,), "weight")
    need_float(weight, "weight")
    need_index(indices, "indices")
    need_index(offsets, "offsets")
    if a["mode"] not in (0, 1, 2):
        raise ShapeError(f"mode must be 0 (sum), 1 (mean) or 2 (max), got {a['mode']}")
    if len(infos) == 4:
        if a["mode"] != 0:
            raise ShapeError("per_sample_weights needs mode 0 (sum)")
        if tuple(infos[3].shape) != tuple(indices.shape):
            raise ShapeError(f"per_sample_weights {list(infos[3].shape)} must have indices' shape "
                             f"{list(indices.shape)}")
    bags = max(offsets.shape[0] - (1 if a["include_last_offset"] else 0), 0)
    dim = weight.shape[1]
    return (_out((bags, dim), weight.dtype) + _out((indices.shape[0],), "int64") + _out((bags,), "int64")
            + _out((bags, dim), "int64"))


def grid_sampler(infos, a):
    x, grid = infos
    need_rank(x, (4,), "input")
    need_float(x, "input")
    if len(grid.shape) != 4 or grid.shape[3] != 2 or grid.shape[0] != x.shape[0]:
        raise ShapeError(f"grid must be [N, H_out, W_out, 2] with input's N {x.shape[0]}, got {list(grid.shape)}")
    if a["interpolation_mode"] not in (0, 1):
        raise ShapeError(f"interpolation_mode must be 0 (bilinear) or 1 (nearest), got {a['interpolation_mode']}")
    if a["padding_mode"] not in (0, 1, 2):
        raise ShapeError(f"padding_mode must be 0 (zeros), 1 (border) or 2 (reflection), got {a['padding_mode']}")
    return _out(x.shape[:2] + grid.shape[1:3], x.dtype)


def _output_size(x: TensorInfo, a) -> tuple[int, int]:
    need_rank(x, (4,) if "scales_h" in a else (3, 4))
    size = a["output_size"]
    if len(size) != 2 or min(size) < 1:
        raise ShapeError(f"output_size must be two sizes >= 1, got {size}")
    return tuple(size)


def upsample(infos, a):
    (x,) = infos
    need_float(x)
    return _out(x.shape[:2] + _output_size(x, a), x.dtype)


def upsample_by(infos, a):
    """PyTorch 0.4's upsample_nearest2d(self, scale_factor): every pixel repeated."""
    (x,) = infos
    need_rank(x, (4,))
    if a["scale_factor"] < 1:
        raise ShapeError(f"scale_factor must be >= 1, got {a['scale_factor']}")
    return _out(x.shape[:2] + tuple(d * a["scale_factor"] for d in x.shape[2:]), x.dtype)


def adaptive_pool(infos, a):
    (x,) = infos
    need_float(x)
    return _out(x.shape[:-2] + _output_size(x, a), x.dtype)


def constant_pad(infos, a):
    (x,) = infos
    pad = a["pad"]
    if len(pad) % 2 or len(pad) // 2 > len(x.shape):
        raise ShapeError(f"pad {pad} must hold a (before, after) pair for each of at most {len(x.shape)} dims")
    shape = list(x.shape)
    for k in range(len(pad) // 2):
        shape[-1 - k] += pad[2 * k] + pad[2 * k + 1]
    if min(shape, default=0) < 0:
        raise ShapeError(f"pad {pad} crops {list(x.shape)} below size 0")
    return _out(shape, x.dtype)


def type_as(infos, a):
    return _out(infos[0].shape, infos[1].dtype)


def cast_to(dtype: str):
    def rule(infos, a):
        return _out(infos[0].shape, dtype)
    return rule


def to(infos, a):
    if a["dtype"] not in SCALAR_TYPES:
        raise ShapeError(f"dtype {a['dtype']} is not a supported ScalarType ({sorted(SCALAR_TYPES)})")
    return _out(infos[0].shape, SCALAR_TYPES[a["dtype"]])


def filled(infos, a):
    if any(d < 0 for d in a["size"]):
        raise ShapeError(f"size {a['size']} must be >= 0")
    if a["type"] not in TYPE_NAMES:
        raise ShapeError(f"type {a['type']!r} is not one of {', '.join(TYPE_NAMES)}")
    return _out(a["size"], TYPE_NAMES[a["type"]])
