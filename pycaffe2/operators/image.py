"""Image family kernels: ImageInput (Caffe2's image pipeline over a DB reader; the
pixel work is in _imaging), PadImage and its gradient, NHWC2NCHW and NCHW2NHWC.

ImageInput is a kernel factory: it checks its args when the net is created and,
without a reader input, opens its own reader on `db` then, as Caffe2's
constructor did. Random crops and mirroring draw from the executor's `rng`
(seeded by the workspace, or by the op's device_option.random_seed).
"""
from __future__ import annotations

import math

import numpy as np
from google.protobuf.message import DecodeError

from pycaffe2.db import DBError, DBReader, parse_tensor_protos, printable
from pycaffe2.operators._conv_pool import channels_back, channels_first
from pycaffe2.operators._imaging import (
    color_jitter,
    color_lighting,
    decode,
    random_sized_crop,
    resize_area,
    resized_size,
    to_channels,
)
from pycaffe2.operators.io import _reader
from pycaffe2.operators.registry import ALL_SCHEMA_ARGS, gradient_op, register_cpu
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.caffe2_legacy_pb2 import CaffeDatum
from pycaffe2.schema.inference.image import (
    SINGLE_LABELS,
    WEIGHT_TENSOR,
    WEIGHTED_SPARSE,
    check_image_input,
    check_rank3,
    extra_sizes,
    image_pads,
    label_shape,
    normalisation,
    padded_image,
    resize_target,
    unpadded_image,
)

T = caffe2_pb2.TensorProto
# Data types of labels and extra outputs: the field holding the values, the NumPy type.
_VALUES = {T.FLOAT: ("float_data", np.float32), T.INT32: ("int32_data", np.int32),
           T.INT64: ("int64_data", np.int64), T.UINT8: ("int32_data", np.uint8)}


class _Record:
    """One record's image (uint8 HWC, BGR), label values, weights, extras and bounding box:
    a TensorProtos, or with use_caffe_datum a CaffeDatum (image and an int label only)."""

    def __init__(self, key: str, value: bytes, source: str, n_extra: int, weighted: bool, datum: bool):
        self.where = f"{source}: record '{printable(key)}'"
        self.datum = _datum(value, self.where) if datum else None
        if self.datum is not None:
            self.image = self.weights = self.box = None
            self.label, self.extras = T(data_type=T.INT32, int32_data=[self.datum.label]), []
            return
        protos = list(parse_tensor_protos(value, self.where).protos)
        first_extra = 3 if weighted else 2
        end = first_extra + n_extra
        if len(protos) not in (end, end + 1):
            raise DBError(f"{self.where} holds {len(protos)} tensors; the op reads {end} (image, label"
                          f"{', weights' if weighted else ''}, {n_extra} extra) and maybe a bounding box")
        self.image, self.label = protos[0], protos[1]
        self.weights = protos[2] if weighted else None
        self.extras = protos[first_extra:end]
        self.box = list(protos[end].int32_data) if len(protos) == end + 1 else None
        if self.box is not None and len(self.box) != 4:
            raise DBError(f"{self.where}: the bounding box needs 4 INT32 values (ymin, xmin, "
                          f"height, width), got {len(self.box)}")

    def values(self, proto, what: str, allowed=_VALUES) -> np.ndarray:
        if proto.data_type not in allowed:
            names = ", ".join(T.DataType.Name(t) for t in allowed)
            raise DBError(f"{self.where}: the {what} is {T.DataType.Name(proto.data_type)}, "
                          f"not one of {names}")
        field, dtype = _VALUES[proto.data_type]
        return np.array(getattr(proto, field), dtype=np.int64 if dtype == np.uint8 else dtype).astype(dtype)

    def pixels(self, channels: int) -> np.ndarray:
        if self.datum is not None:
            return self._datum_pixels(channels)
        image = self.image
        if image.data_type == T.STRING:
            if len(image.string_data) != 1:
                raise DBError(f"{self.where}: an encoded image needs one string, got {len(image.string_data)}")
            return self._decoded(image.string_data[0], channels)
        if image.data_type != T.BYTE:
            raise DBError(f"{self.where}: the image is {T.DataType.Name(image.data_type)}; it must be "
                          "BYTE (raw pixels [H, W] or [H, W, C]) or STRING (an encoded image)")
        dims = list(image.dims)
        if len(dims) == 2:
            dims.append(1)
        if len(dims) != 3 or dims[2] not in (1, 3) or min(dims) < 1:
            raise DBError(f"{self.where}: raw image dims {list(image.dims)} must be [H, W] or [H, W, C] "
                          "with C 1 or 3")
        data = image.byte_data or image.raw_data
        if len(data) != dims[0] * dims[1] * dims[2]:
            raise DBError(f"{self.where}: raw image dims {list(image.dims)} need "
                          f"{dims[0] * dims[1] * dims[2]} bytes, got {len(data)}")
        return to_channels(np.frombuffer(data, dtype=np.uint8).reshape(dims), channels)

    def _decoded(self, encoded: bytes, channels: int) -> np.ndarray:
        try:
            return decode(encoded, channels)
        except ValueError as exc:
            raise DBError(f"{self.where}: {exc}") from None

    def _datum_pixels(self, channels: int) -> np.ndarray:
        datum = self.datum
        if datum.encoded:
            return self._decoded(datum.data, channels)
        shape = (datum.channels, datum.height, datum.width)  # Caffe1 stores CHW
        if datum.channels not in (1, 3) or min(shape) < 1 or len(datum.data) != math.prod(shape):
            raise DBError(f"{self.where}: a raw Datum needs 1 or 3 channels and channels * height * "
                          f"width bytes; it says {list(shape)} and holds {len(datum.data)} bytes")
        image = np.frombuffer(datum.data, dtype=np.uint8).reshape(shape).transpose(1, 2, 0)
        return to_channels(np.ascontiguousarray(image), channels)


def _datum(value: bytes, where: str):
    try:
        return CaffeDatum.FromString(value)
    except DecodeError:
        raise DBError(f"{where} is not a Caffe Datum (use_caffe_datum=1)") from None


def _bounded(image: np.ndarray, box) -> np.ndarray:
    """The bounding box (ymin, xmin, height, width) of the image, or all of it when the box
    is unset (negative) or does not fit."""
    if box is None or min(box) < 0:
        return image
    ymin, xmin, height, width = box
    if ymin + height > image.shape[0] or xmin + width > image.shape[1] or not height or not width:
        return image
    return image[ymin:ymin + height, xmin:xmin + width]


class _ImageInput:
    """The ImageInput kernel of one op (its args resolved once)."""

    def __init__(self, args: dict, n_outputs: int, rng, owned: DBReader | None):
        self.args, self.rng, self.owned = args, rng, owned
        self.channels = 3 if args["color"] else 1
        mean, std = normalisation(args)
        self.mean = np.array(mean[:self.channels], dtype=np.float32)
        self.inverse_std = np.float32(1) / np.array(std[:self.channels], dtype=np.float32)
        self.scale, self.minsize = resize_target(args)
        self.sizes = extra_sizes(args, n_outputs)

    def __call__(self, *inputs):
        reader = _reader(inputs[0]) if inputs else self.owned
        args = self.args
        weighted = args["label_type"] in WEIGHT_TENSOR
        records = [_Record(*reader.read(), reader.source, len(self.sizes), weighted, args["use_caffe_datum"])
                   for _ in range(args["batch_size"])]
        data = np.stack([self._transform(record) for record in records])
        return (data, self._labels(records), *self._extras(records))

    def _transform(self, record: _Record) -> np.ndarray:
        args, crop = self.args, self.args["crop"]
        default_box = [args[f"bounding_{k}"] for k in ("ymin", "xmin", "height", "width")]
        image = _bounded(record.pixels(self.channels), record.box if record.box is not None else default_box)
        training = not args["is_test"]
        jittered = random_sized_crop(image, crop, self.rng) if args["scale_jitter_type"] and training else None
        image = self._resized(image) if jittered is None else jittered
        if min(image.shape[:2]) < crop:
            raise DBError(f"{record.where}: the image is {list(image.shape[:2])} after resizing, "
                          f"smaller than crop {crop}")
        if training:
            left = int(self.rng.integers(0, image.shape[1] - crop + 1))
            top = int(self.rng.integers(0, image.shape[0] - crop + 1))
        else:
            top, left = (image.shape[0] - crop) // 2, (image.shape[1] - crop) // 2
        image = image[top:top + crop, left:left + crop]
        if args["mirror"] and training and self.rng.random() < 0.5:
            image = image[:, ::-1]
        pixels = image.astype(np.float32)
        if training and self.channels == 3:
            if args["color_jitter"]:
                pixels = color_jitter(pixels, args["img_saturation"], args["img_brightness"],
                                      args["img_contrast"], self.rng)
            if args["color_lighting"]:
                pixels = color_lighting(pixels, args["color_lighting_std"], self.rng)
        return (pixels - self.mean) * self.inverse_std

    def _resized(self, image: np.ndarray) -> np.ndarray:
        """Shorter side to scale (or up to minsize, or a random_scale draw), as Caffe2 sizes it."""
        target = self.scale if self.scale > 0 else self.minsize
        if self.args.get("random_scale"):
            low, high = self.args["random_scale"]
            target = int(self.rng.integers(low, high + 1))
        height, width = resized_size(*image.shape[:2], target, self.args["warp"])
        if (self.scale > 0 and (height, width) != image.shape[:2]) or height > image.shape[0] \
                or width > image.shape[1]:  # minsize only enlarges
            image = resize_area(image, height, width)
        return image

    def _labels(self, records) -> np.ndarray:
        label_type, width = self.args["label_type"], self.args["num_labels"]
        rows = [record.values(record.label, "label", (T.FLOAT, T.INT32)) for record in records]
        dtype = np.float32 if label_type == WEIGHTED_SPARSE else _one_dtype(rows, records, "label")
        out = np.zeros(label_shape(self.args), dtype=dtype)
        for i, (row, record) in enumerate(zip(rows, records)):
            if label_type in SINGLE_LABELS or label_type in (2, 5):
                expected = 1 if label_type in SINGLE_LABELS else width
                if row.size != expected:
                    raise DBError(f"{record.where}: label_type {label_type} needs {expected} label "
                                  f"value(s), got {row.size}")
                out[i] = row[0] if label_type in SINGLE_LABELS else row
                continue
            indices = row.astype(np.int64)
            if np.any((indices < 0) | (indices >= width)) or np.any(indices != row):
                raise DBError(f"{record.where}: label indices {row.tolist()} must be integers in "
                              f"[0, num_labels={width})")
            if label_type == WEIGHTED_SPARSE:
                weights = record.values(record.weights, "label weights", (T.FLOAT,))
                if weights.size != indices.size:
                    raise DBError(f"{record.where}: {indices.size} label indices but {weights.size} weights")
                out[i, indices] = weights
            else:
                out[i, indices] = 1
        return out

    def _extras(self, records) -> list:
        outputs = []
        for k, size in enumerate(self.sizes):
            rows = [record.values(record.extras[k], f"extra tensor {k}") for record in records]
            for row, record in zip(rows, records):
                if row.size != size:
                    raise DBError(f"{record.where}: extra tensor {k} holds {row.size} values, "
                                  f"output_sizes says {size}")
            outputs.append(np.stack(rows).astype(_one_dtype(rows, records, f"extra tensor {k}")))
        return outputs


def _one_dtype(rows, records, what: str):
    dtypes = {row.dtype for row in rows}
    if len(dtypes) > 1:
        raise DBError(f"the {what} differs in type between the records of a batch "
                      f"({', '.join(sorted(map(str, dtypes)))}), from {records[0].where}")
    return dtypes.pop()


@register_cpu("ImageInput", specialize=True, args=ALL_SCHEMA_ARGS)
def image_input(*, num_outputs, rng, input_names, **args):
    check_image_input(args, num_outputs)
    owned = None
    if not input_names:
        if not args["db"]:
            raise ValueError("without a reader input the op needs `db` (the DB to read)")
        owned = DBReader(args["db_type"], args["db"])
    return _ImageInput(args, num_outputs, rng, owned)


# ---- PadImage -------------------------------------------------------------------------

def _pad_index(size: int, before: int, after: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """For each output position along an axis of `size`: the input index it copies and
    whether it copies at all (constant mode fills the rest)."""
    index = np.arange(size + before + after) - before
    inside = (index >= 0) & (index < size)
    if mode == "reflect":
        index = np.abs(index)
        index = np.minimum(index, 2 * size - index - 2)
    else:  # edge; constant mode reads a clipped index and then fills over it
        index = np.clip(index, 0, size - 1)
    return index, inside if mode == "constant" else np.ones_like(inside)


def _pad_indices(height: int, width: int, args: dict):
    top, left, bottom, right = image_pads(args)
    rows, row_in = _pad_index(height, top, bottom, args["mode"])
    cols, col_in = _pad_index(width, left, right, args["mode"])
    return rows[:, None], cols[None, :], row_in[:, None] & col_in[None, :]


_PAD_ARGS = ("pad", "pad_t", "pad_l", "pad_b", "pad_r", "pads", "mode", "order")


@register_cpu("PadImage", args=(*_PAD_ARGS, "value"))
def pad_image(x, **args):
    order, mode = args["order"], args["mode"]
    padded_image(x.shape, args)
    image = channels_first(x, order)
    rows, cols, inside = _pad_indices(*image.shape[2:], args)
    y = image[:, :, rows, cols]
    if mode == "constant":
        y = np.where(inside, y, np.asarray(args["value"], dtype=x.dtype))
    return channels_back(y, order)


@register_cpu("PadImageGradient", args=_PAD_ARGS)
def pad_image_gradient(dy, **args):
    order = args["order"]
    n, *rest = unpadded_image(dy.shape, args)
    shape = (n, *rest) if order == "NCHW" else (n, rest[2], rest[0], rest[1])
    rows, cols, inside = _pad_indices(*shape[2:], args)
    dx = np.zeros(shape, dtype=dy.dtype)
    np.add.at(dx, (slice(None), slice(None), rows, cols), np.where(inside, channels_first(dy, order), 0))
    return channels_back(dx, order)


gradient_op("PadImage", "GO0")


# ---- layout transposes ------------------------------------------------------------------

@register_cpu("NHWC2NCHW")
def nhwc2nchw(x):
    check_rank3(x.shape)
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


@register_cpu("NCHW2NHWC")
def nchw2nhwc(x):
    check_rank3(x.shape)
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


gradient_op("NHWC2NCHW", "GO0", gradient_type="NCHW2NHWC")
gradient_op("NCHW2NHWC", "GO0", gradient_type="NHWC2NCHW")
