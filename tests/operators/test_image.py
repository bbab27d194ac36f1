"""Image family: ImageInput over small minidbs made here (raw BYTE images, and PNGs
written by a tiny encoder below, decoded when Pillow is installed) against a
loop-based NumPy reference of Caffe2's pipeline (colour conversion, bounding box,
INTER_AREA resize, crop, mirror, normalisation) and its label types and extra
outputs; brew.image_input / CNNModelHelper.ImageInput; PadImage against np.pad and
Caffe2's index rule (negative pads), PadImageGradient against numeric gradients;
NHWC2NCHW / NCHW2NHWC; the inference rules and clear errors."""
import math
import struct
import sys
import zlib

import numpy as np
import pytest

from pycaffe2 import brew, cnn, db, model_helper
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.operators._imaging import bgr_to_gray, resize_area
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.confine import op_paths
from pycaffe2.schema.bind import ShapeError
from pycaffe2.testing import assert_inference_agrees, check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer
from tests.wire import varint

T = caffe2_pb2.TensorProto
rng = np.random.default_rng(15)


# ---- making DBs ---------------------------------------------------------------------------

def raw_image(pixels):
    """A BYTE tensor [H, W] or [H, W, C] of uint8 pixels."""
    return T(data_type=T.BYTE, dims=pixels.shape, byte_data=pixels.tobytes())


def png_bytes(rgb):
    """A minimal 8-bit RGB PNG (no filter, one IDAT chunk) of an [H, W, 3] uint8 array."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    h, w, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def record(image, label, *more):
    """TensorProtos bytes: the image tensor, the label (int -> INT32, float -> FLOAT, list of them)
    and further tensors as given."""
    values = label if isinstance(label, list) else [label]
    if isinstance(values[0], float):
        label_tensor = T(data_type=T.FLOAT, dims=[len(values)], float_data=values)
    else:
        label_tensor = T(data_type=T.INT32, dims=[len(values)], int32_data=values)
    return caffe2_pb2.TensorProtos(protos=[image, label_tensor, *more]).SerializeToString()


def make_db(path, records):
    store = db.create_db("minidb", str(path), db.Mode.write)
    transaction = store.new_transaction()
    for i, value in enumerate(records):
        transaction.put(f"{i:04d}", value)
    transaction.commit()
    store.close()
    return str(path)


def run_image_input(path, n_out=2, runs=1, seed=None, **args):
    """Outputs of ImageInput on a reader of the DB at `path` (the last of `runs` runs)."""
    workspace = Workspace()
    workspace.RunOperatorOnce(make_op("CreateDB", [], ["reader"], {"db": path, "db_type": "minidb"}))
    outputs = ["data", "label"] + [f"extra{i}" for i in range(n_out - 2)]
    op = make_op("ImageInput", ["reader"], outputs, args)
    if seed is not None:
        op.device_option.random_seed = seed
    workspace.CreateNet(caffe2_pb2.NetDef(name="read", op=[op]))
    for _ in range(runs):
        workspace.RunNet("read")
    got = [workspace.FetchBlob(name) for name in outputs]
    assert_inference_agrees("ImageInput", [None], args, got)
    return got


# ---- a loop-based reference of Caffe2's pipeline -------------------------------------------

def ref_area_resize(image, height, width, rounded=True):
    """OpenCV's INTER_AREA by loops: area means when no side grows, else OpenCV's
    area-mode linear blend per axis (rounded to uint8, or the exact values)."""
    h, w = image.shape[:2]

    def axis_weights(size, out, shrink):
        weights = np.zeros((out, size))
        r = size / out
        for d in range(out):
            if shrink:
                for s in range(size):
                    weights[d, s] = max(0.0, min(s + 1, (d + 1) * r) - max(s, d * r)) / r
            else:  # OpenCV's double and float steps: floor(d * r) may fall just short of a whole number
                r = 1.0 / (out / size)
                s = math.floor(d * r)
                f = float(np.float32((d + 1) - (s + 1) * (out / size)))
                f = 0.0 if f <= 0 else f - math.floor(f)
                if s >= size - 1:
                    s, f = size - 1, 0.0
                weights[d, s] += 1 - f
                if f:
                    weights[d, s + 1] += f
        return weights

    shrink = height <= h and width <= w
    wy, wx = axis_weights(h, height, shrink), axis_weights(w, width, shrink)
    out = np.zeros((height, width, image.shape[2]))
    for y in range(height):
        for x in range(width):
            out[y, x] = np.tensordot(wy[y][:, None] * wx[x][None, :], image.astype(np.float64), axes=2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if rounded else out


def ref_gray(bgr):
    b, g, r = (bgr[..., i].astype(np.int64) for i in range(3))
    return ((b * 3735 + g * 19235 + r * 9798 + (1 << 14)) >> 15).astype(np.uint8)[..., None]  # OpenCV 4+


def ref_pipeline(image, crop, scale=-1, minsize=-1, color=1, box=None, warp=False, mean=(0, 0, 0),
                 std=(1, 1, 1), rounded=True):
    """One test-mode image (centre crop) as Caffe2's ImageInput makes it: [crop, crop, C] float32
    (float64 before the resize's rounding with rounded=False)."""
    if image.ndim == 2:
        image = image[..., None]
    if color and image.shape[2] == 1:
        image = np.concatenate([image] * 3, axis=2)
    elif not color and image.shape[2] == 3:
        image = ref_gray(image)
    if box is not None and min(box) >= 0 and box[0] + box[2] <= image.shape[0] \
            and box[1] + box[3] <= image.shape[1]:
        image = image[box[0]:box[0] + box[2], box[1]:box[1] + box[3]]
    h, w = image.shape[:2]
    target = scale if scale > 0 else minsize
    if warp:
        size = (target, target)
    elif h > w:
        size = (int(np.float32(h) * np.float32(target) / np.float32(w)), target)
    else:
        size = (target, int(np.float32(w) * np.float32(target) / np.float32(h)))
    if (scale > 0 and size != (h, w)) or size[0] > h or size[1] > w:
        image = ref_area_resize(image, *size, rounded)
    top, left = (image.shape[0] - crop) // 2, (image.shape[1] - crop) // 2
    window = image[top:top + crop, left:left + crop].astype(np.float64)
    channels = window.shape[2]
    normalised = (window - np.array(mean[:channels])) / np.array(std[:channels])
    return normalised.astype(np.float32) if rounded else normalised


def assert_pixels_close(got, exact, std):
    """Pixels (normalisation undone) are within one step of the exact resized values (OpenCV's
    fixed-point and float32 sums round on the way)."""
    step = np.abs(got.astype(np.float64) - exact) * np.array(std[:got.shape[-1]])
    assert step.max() <= 1.0 + 1e-3


# ---- the resize itself --------------------------------------------------------------------

RESIZES = [((6, 9, 3), (4, 6)), ((7, 5, 1), (3, 2)), ((4, 4, 3), (2, 2)), ((9, 6, 3), (3, 2)),
           ((3, 4, 3), (7, 9)), ((5, 8, 1), (10, 4)), ((6, 6, 3), (6, 6)), ((12, 28, 3), (34, 36))]


@pytest.mark.parametrize("shape, size", RESIZES)
def test_resize_area_is_the_exact_resize_within_one_step(shape, size):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    exact = ref_area_resize(image, *size, rounded=False)
    assert np.abs(resize_area(image, *size) - exact).max() <= 1.0


@pytest.mark.parametrize("shape, size", RESIZES)
def test_resize_area_equals_opencv(shape, size):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the resize is checked against it here)")
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    expected = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA).reshape(*size, shape[2])
    np.testing.assert_array_equal(resize_area(image, *size), expected)


def test_gray_equals_opencv():
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (the conversion is checked against it here)")
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(bgr_to_gray(image)[..., 0], cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def test_resize_area_known_values():  # as OpenCV 5.0's cv2.resize(..., INTER_AREA) gives them
    row = np.array([[[30], [60], [90]]], dtype=np.uint8)  # 3 -> 2: (30 + 60/2) / 1.5, (60/2 + 90) / 1.5
    assert resize_area(row, 1, 2)[0, :, 0].tolist() == [40, 80]
    block = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)  # 2x2 block means, halves rounded up
    assert resize_area(block, 2, 2)[..., 0].tolist() == [[3, 5], [11, 13]]
    small = np.array([[[1], [2]]], dtype=np.uint8)  # doubling copies each pixel
    assert resize_area(small, 2, 4)[..., 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    ramp = np.array([[[10], [20], [30], [40]]], dtype=np.uint8)  # 4 -> 7: blends only across edges
    assert resize_area(ramp, 1, 7)[0, :, 0].tolist() == [10, 13, 20, 25, 30, 38, 40]


# ---- ImageInput -----------------------------------------------------------------------------

IMAGES = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(7, 9, 3), (10, 6, 3), (8, 8, 1), (5, 5)]]


@pytest.mark.parametrize("args", [
    {"scale": 6, "crop": 5},
    {"scale": 12, "crop": 8, "mean": 100.0, "std": 50.0},
    {"scale": 6, "crop": 4, "color": 0, "mean_per_channel": [20.0], "std_per_channel": [3.0]},
    {"minsize": 6, "crop": 5, "mean_per_channel": [10.0, 20.0, 30.0], "std_per_channel": [2.0, 4.0, 8.0]},
    {"scale": 5, "crop": 5, "warp": 1},
    {"scale": 5, "crop": 3, "bounding_ymin": 1, "bounding_xmin": 2, "bounding_height": 5, "bounding_width": 4},
], ids=["scale", "mean-std", "gray", "minsize-per-channel", "warp", "default-box"])
def test_raw_images_in_test_mode_match_reference(tmp_path, args):
    path = make_db(tmp_path / "images.minidb", [record(raw_image(im), i) for i, im in enumerate(IMAGES)])
    args = {"batch_size": 4, "is_test": 1, **args}
    data, label = run_image_input(path, **args)
    mean = args.get("mean_per_channel", [args.get("mean", 0.0)] * 3) * 3
    std = args.get("std_per_channel", [args.get("std", 1.0)] * 3) * 3
    box = [args.get(f"bounding_{k}", -1) for k in ("ymin", "xmin", "height", "width")]
    for got, image in zip(data, IMAGES):
        expected = ref_pipeline(image, args["crop"], args.get("scale", -1), args.get("minsize", -1),
                                args.get("color", 1), box, args.get("warp", 0), mean, std, rounded=False)
        assert got.shape == expected.shape
        assert_pixels_close(got, expected, std)
    assert label.tolist() == [0, 1, 2, 3] and label.dtype == np.int32 and data.dtype == np.float32


def test_minsize_enlarges_small_images_only(tmp_path):
    big, small = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8), rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    path = make_db(tmp_path / "d.minidb", [record(raw_image(big), 0), record(raw_image(small), 1)])
    data, _ = run_image_input(path, batch_size=2, minsize=6, crop=6, is_test=1)
    np.testing.assert_array_equal(data[0], big[3:9, 2:8].astype(np.float32))  # no resize: centre of 12x10
    assert_pixels_close(data[1], ref_pipeline(small, 6, minsize=6, rounded=False), [1, 1, 1])


def test_record_bounding_box_wins_over_the_default_and_misfits_are_ignored(tmp_path):
    image = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
    box = T(data_type=T.INT32, dims=[4], int32_data=[2, 3, 6, 5])
    too_big = T(data_type=T.INT32, dims=[4], int32_data=[5, 5, 6, 6])
    path = make_db(tmp_path / "d.minidb", [record(raw_image(image), 0, box), record(raw_image(image), 1, too_big)])
    data, _ = run_image_input(path, batch_size=2, scale=5, crop=5, is_test=1, bounding_ymin=0,
                              bounding_xmin=0, bounding_height=1, bounding_width=1)
    assert_pixels_close(data[0], ref_pipeline(image, 5, scale=5, box=[2, 3, 6, 5], rounded=False), [1, 1, 1])
    assert_pixels_close(data[1], ref_pipeline(image, 5, scale=5, rounded=False), [1, 1, 1])


def test_training_crops_are_windows_mirrored_at_random_and_seeded(tmp_path):
    image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)  # scale 6 keeps it; crops of 4
    path = make_db(tmp_path / "d.minidb", [record(raw_image(image), 0)] * 16)
    data, _ = run_image_input(path, batch_size=16, scale=6, crop=4, mirror=1, seed=3)
    windows = {image[t:t + 4, s:s + 4].tobytes(): False for t in range(3) for s in range(5)}
    windows.update({image[t:t + 4, s:s + 4][:, ::-1].tobytes(): True for t in range(3) for s in range(5)})
    kinds = [windows[got.astype(np.uint8).tobytes()] for got in data]  # KeyError: not a window
    assert any(kinds) and not all(kinds)
    assert len({got.tobytes() for got in data}) > 3
    again, _ = run_image_input(path, batch_size=16, scale=6, crop=4, mirror=1, seed=3)
    np.testing.assert_array_equal(again, data)


def test_test_mode_never_mirrors(tmp_path):
    image = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    path = make_db(tmp_path / "d.minidb", [record(raw_image(image), 0)] * 8)
    data, _ = run_image_input(path, batch_size=8, scale=6, crop=4, mirror=1, is_test=1)
    np.testing.assert_array_equal(data, np.stack([image[1:5, 1:5].astype(np.float32)] * 8))


SQUARE = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)  # scale = crop = 4: the crop is the image


def jittered(tmp_path, count=8, **args):
    path = make_db(tmp_path / "j.minidb", [record(raw_image(SQUARE), 0)] * count)
    return run_image_input(path, batch_size=count, scale=4, crop=4, seed=5, **args)[0]


def test_color_lighting_shifts_each_channel_by_one_constant(tmp_path):
    shift = jittered(tmp_path, color_lighting=1, color_lighting_std=0.5) - SQUARE.astype(np.float32)
    per_image = shift.reshape(8, -1, 3)
    np.testing.assert_allclose(per_image, np.broadcast_to(per_image[:, :1], per_image.shape), atol=1e-3)
    assert np.abs(per_image).max() > 0.01 and np.abs(per_image).max() < 100  # 0.5 std of a 0.2175 * 250 swing


def test_brightness_jitter_scales_each_image(tmp_path):
    data = jittered(tmp_path, color_jitter=1, img_saturation=0.0, img_contrast=0.0, img_brightness=0.4)
    factors = data.reshape(8, -1) / SQUARE.reshape(1, -1).astype(np.float32).clip(1)
    factors = factors[:, SQUARE.reshape(-1) > 0]
    np.testing.assert_allclose(factors, np.broadcast_to(factors[:, :1], factors.shape), rtol=1e-5)
    assert ((factors[:, 0] >= 0.6) & (factors[:, 0] <= 1.4)).all() and len(set(factors[:, 0])) > 1


def test_saturation_jitter_moves_pixels_along_their_gray(tmp_path):
    data = jittered(tmp_path, color_jitter=1, img_brightness=0.0, img_contrast=0.0).astype(np.float64)
    pixels = SQUARE.astype(np.float64)
    gray = (pixels @ np.array([0.114, 0.587, 0.299]))[..., None]
    away = (pixels - gray)[None]  # each image: gray + a * (pixels - gray), one a per image
    a = ((data - gray) * away).sum(axis=(1, 2, 3)) / (away ** 2).sum()
    np.testing.assert_allclose(data, gray + a[:, None, None, None] * away, atol=1e-3)
    assert ((a >= 0.6) & (a <= 1.4)).all() and np.ptp(a) > 0


def test_jitter_is_off_in_test_mode(tmp_path):
    data = jittered(tmp_path, is_test=1, color_jitter=1, color_lighting=1, scale_jitter_type=1, mirror=1)
    np.testing.assert_array_equal(data, np.broadcast_to(SQUARE.astype(np.float32), data.shape))


def test_inception_scale_jitter_resizes_random_windows_to_the_crop(tmp_path):
    flat = np.full((12, 9, 3), (10, 20, 30), dtype=np.uint8)
    varied = rng.integers(50, 100, (12, 9, 3), dtype=np.uint8)
    path = make_db(tmp_path / "d.minidb", [record(raw_image(flat), 0), record(raw_image(varied), 1)] * 4)
    data, _ = run_image_input(path, batch_size=8, scale=5, crop=5, scale_jitter_type=1, seed=2)
    assert data.shape == (8, 5, 5, 3)
    np.testing.assert_array_equal(data[0::2], np.broadcast_to(np.float32([10, 20, 30]), (4, 5, 5, 3)))
    assert data[1::2].min() >= 50 and data[1::2].max() <= 99


def test_batches_continue_through_the_db(tmp_path):
    path = make_db(tmp_path / "d.minidb", [record(raw_image(im), i) for i, im in enumerate(IMAGES)])
    _, label = run_image_input(path, runs=2, batch_size=3, scale=5, crop=5, is_test=1)
    assert label.tolist() == [3, 0, 1]


def tiny(i):
    return raw_image(np.full((2, 2, 3), i, dtype=np.uint8))


@pytest.mark.parametrize("label_type, labels, more, expected, dtype", [
    (0, [1.5, 2.5], [[], []], [1.5, 2.5], np.float32),
    (1, [[0, 3], [2]], [[], []], [[1, 0, 0, 1], [0, 0, 1, 0]], np.int32),
    (1, [[1.0], [0.0, 3.0]], [[], []], [[0, 1, 0, 0], [1, 0, 0, 1]], np.float32),
    (2, [[4, 3, 2, 1], [1, 2, 3, 4]], [[], []], [[4, 3, 2, 1], [1, 2, 3, 4]], np.int32),
    (5, [[0.5, 0.0, 1.0, 2.0], [1.0] * 4], [[], []], [[0.5, 0.0, 1.0, 2.0], [1.0] * 4], np.float32),
    (3, [[1, 2], [3]], [[0.5, 2.0], [4.0]], [[0, 0.5, 2.0, 0], [0, 0, 0, 4.0]], np.float32),
    (4, [7, 8], [[0.5], [1.0]], [7, 8], np.int32),
], ids=["float-single", "sparse", "sparse-float", "dense", "embedding", "weighted-sparse", "single-weighted"])
def test_label_types(tmp_path, label_type, labels, more, expected, dtype):
    records = []
    for i, (label, weights) in enumerate(zip(labels, more)):
        extra = [T(data_type=T.FLOAT, dims=[len(weights)], float_data=weights)] if label_type in (3, 4) else []
        records.append(record(tiny(i), label, *extra))
    path = make_db(tmp_path / "d.minidb", records)
    _, label = run_image_input(path, batch_size=2, scale=2, crop=2, is_test=1, label_type=label_type,
                               num_labels=4)
    assert label.dtype == dtype
    np.testing.assert_array_equal(label, np.array(expected, dtype=dtype))


def test_extra_outputs_and_their_types(tmp_path):
    records = [record(tiny(i), i, T(data_type=T.FLOAT, dims=[1], float_data=[i + 0.5]),
                      T(data_type=T.INT64, dims=[3], int64_data=[i, 2 * i, 3 * i]),
                      T(data_type=T.UINT8, dims=[2], int32_data=[250 + i, i])) for i in range(2)]
    path = make_db(tmp_path / "d.minidb", records)
    _, _, first, second, third = run_image_input(path, n_out=5, batch_size=2, scale=2, crop=2,
                                                 output_sizes=[1, 3, 2])
    assert first.tolist() == [[0.5], [1.5]] and first.dtype == np.float32
    assert second.tolist() == [[0, 0, 0], [1, 2, 3]] and second.dtype == np.int64
    assert third.tolist() == [[250, 0], [251, 1]] and third.dtype == np.uint8


def test_op_without_reader_opens_db(tmp_path):
    path = make_db(tmp_path / "d.minidb", [record(tiny(i), i) for i in range(3)])
    workspace = Workspace()
    workspace.RunOperatorOnce(make_op("ImageInput", [], ["data", "label"],
                                      {"db": path, "db_type": "minidb", "batch_size": 2, "scale": 2, "crop": 2}))
    assert workspace.FetchBlob("label").tolist() == [0, 1]
    assert workspace.FetchBlob("data").shape == (2, 2, 2, 3)


def test_the_db_arg_is_confined_like_every_db_path():
    op = make_op("ImageInput", [], ["data", "label"], {"db": "/elsewhere/images", "batch_size": 1, "scale": 2,
                                                       "crop": 2})
    assert op_paths(op) == [("db", "/elsewhere/images")]  # pycaffe2 run checks it against its data roots


def test_encoded_png_decodes_with_pillow(tmp_path):
    pytest.importorskip("PIL", reason="Pillow is not installed (it decodes encoded images)")
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    encoded = T(data_type=T.STRING, dims=[1], string_data=[png_bytes(rgb)])
    path = make_db(tmp_path / "d.minidb", [record(encoded, 0)])
    data, _ = run_image_input(path, batch_size=1, scale=6, crop=6, is_test=1)
    np.testing.assert_array_equal(data[0], rgb[:, :6][..., ::-1].astype(np.float32))  # BGR, as OpenCV
    gray, _ = run_image_input(path, batch_size=1, scale=6, crop=6, is_test=1, color=0)
    np.testing.assert_array_equal(gray[0], ref_gray(rgb[:, :6][..., ::-1]).astype(np.float32))


def test_encoded_image_without_pillow_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL` now fails, installed or not
    encoded = T(data_type=T.STRING, dims=[1], string_data=[png_bytes(np.zeros((2, 2, 3), np.uint8))])
    path = make_db(tmp_path / "d.minidb", [record(encoded, 0)])
    with pytest.raises(OpFailure, match="needs Pillow: pip install pillow"):
        run_image_input(path, batch_size=1, scale=2, crop=2)


def datum_bytes(channels, height, width, data, label, encoded=False):
    """A Caffe Datum by hand, field by field (tags 1-5 and 7), independent of the op's own parser."""
    fields = [(1, channels), (2, height), (3, width)]
    body = b"".join(bytes([number << 3]) + varint(value) for number, value in fields)
    body += bytes([4 << 3 | 2]) + varint(len(data)) + data + bytes([5 << 3]) + varint(label)
    return body + (bytes([7 << 3, 1]) if encoded else b"")


def test_caffe_datum_records(tmp_path):
    bgr = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    records = [datum_bytes(3, 4, 5, bgr.transpose(2, 0, 1).tobytes(), 7),  # Caffe1 stores CHW
               datum_bytes(1, 5, 4, gray.tobytes(), 300)]
    path = make_db(tmp_path / "d.minidb", records)
    data, label = run_image_input(path, batch_size=2, scale=4, crop=4, is_test=1, use_caffe_datum=1)
    np.testing.assert_array_equal(data[0], bgr[:, :4].astype(np.float32))
    np.testing.assert_array_equal(data[1], np.repeat(gray[:4, :, None], 3, axis=2).astype(np.float32))
    assert label.tolist() == [7, 300] and label.dtype == np.int32
    bad = make_db(tmp_path / "bad.minidb", [datum_bytes(2, 1, 1, b"\x00\x00", 0)])
    with pytest.raises(OpFailure, match="a raw Datum needs 1 or 3 channels"):
        run_image_input(bad, batch_size=1, scale=1, crop=1, use_caffe_datum=1)


def test_encoded_caffe_datum(tmp_path):
    pytest.importorskip("PIL", reason="Pillow is not installed (it decodes encoded images)")
    rgb = rng.integers(0, 256, (3, 3, 3), dtype=np.uint8)
    path = make_db(tmp_path / "d.minidb", [datum_bytes(0, 0, 0, png_bytes(rgb), 2, encoded=True)])
    data, label = run_image_input(path, batch_size=1, scale=3, crop=3, use_caffe_datum=1)
    np.testing.assert_array_equal(data[0], rgb[..., ::-1].astype(np.float32))
    assert label.tolist() == [2]


BAD_ARGS = [
    ({"batch_size": 1, "crop": 2}, "give exactly one of scale"),
    ({"batch_size": 1, "crop": 2, "scale": 3, "minsize": 3}, "give exactly one of scale"),
    ({"batch_size": 1, "crop": 4, "scale": 3}, "must be at least crop 4"),
    ({"batch_size": 1, "crop": 2, "scale": 2, "mean_per_channel": [1.0, 2.0, 3.0]}, "must have one length"),
    ({"batch_size": 1, "crop": 2, "scale": 2, "label_type": 1}, "needs num_labels"),
    ({"batch_size": 1, "crop": 2, "scale": 2, "use_caffe_datum": 1, "label_type": 1, "num_labels": 2},
     "use_caffe_datum=1"),
    ({"batch_size": 1, "crop": 2, "scale": 2, "random_scale": [5, 3]}, r"random_scale \[5, 3\]"),
    ({"batch_size": 1, "crop": 2, "scale": 2, "output_sizes": [1, 2]}, "one size per extra output"),
]


@pytest.mark.parametrize("args, message", BAD_ARGS, ids=[m[:20] for _, m in BAD_ARGS])
def test_bad_args_are_refused(tmp_path, args, message):
    path = make_db(tmp_path / "d.minidb", [record(tiny(0), 0)])
    with pytest.raises((OpFailure, NetError, ShapeError), match=message):
        run_image_input(path, **args)


BAD_RECORDS = [
    ([T(data_type=T.FLOAT, dims=[1], float_data=[1.0])], "must be BYTE .* or STRING"),
    ([T(data_type=T.BYTE, dims=[2, 2, 2], byte_data=b"\x00" * 8)], r"must be \[H, W\] or \[H, W, C\]"),
    ([T(data_type=T.BYTE, dims=[2, 2, 3], byte_data=b"\x00" * 5)], "need 12 bytes, got 5"),
]


@pytest.mark.parametrize("image, message", BAD_RECORDS, ids=["float-image", "two-channels", "short"])
def test_bad_records_name_the_record(tmp_path, image, message):
    path = make_db(tmp_path / "d.minidb", [record(*image, 0)])
    with pytest.raises(OpFailure, match=f"record '0000'.*{message}"):
        run_image_input(path, batch_size=1, scale=2, crop=2)


def test_record_tensor_count_and_label_index_checks(tmp_path):
    path = make_db(tmp_path / "d.minidb", [caffe2_pb2.TensorProtos(protos=[tiny(0)]).SerializeToString()])
    with pytest.raises(OpFailure, match="holds 1 tensors; the op reads 2"):
        run_image_input(path, batch_size=1, scale=2, crop=2)
    path = make_db(tmp_path / "e.minidb", [record(tiny(0), [9])])
    with pytest.raises(OpFailure, match=r"label indices \[9\] must be integers in \[0, num_labels=4\)"):
        run_image_input(path, batch_size=1, scale=2, crop=2, label_type=1, num_labels=4)


def test_image_input_inference():
    data, label = infer("ImageInput", [None], n_out=2, batch_size=3, crop=5, scale=6)
    assert data.shape == (3, 5, 5, 3) and data.dtype == "float32" and label is None
    data, label, extra = infer("ImageInput", [None], n_out=3, batch_size=2, crop=4, minsize=4, color=0,
                               label_type=3, num_labels=7)
    assert data.shape == (2, 4, 4, 1) and label.shape == (2, 7) and label.dtype == "float32" and extra is None


# ---- brew / model helpers ---------------------------------------------------------------

def test_brew_image_input_nchw_adds_the_transpose(tmp_path):
    path = make_db(tmp_path / "d.minidb", [record(raw_image(im), i) for i, im in enumerate(IMAGES)])
    model = model_helper.ModelHelper(name="images")
    reader = model.param_init_net.CreateDB([], "reader", db=path, db_type="minidb")
    data, label = brew.image_input(model, reader, ["data", "label"], batch_size=2, scale=6, crop=5, is_test=1)
    assert [op.type for op in model.net.Proto().op] == ["ImageInput", "NHWC2NCHW"]
    assert list(model.net.Proto().op[0].output) == ["data_nhwc", "label"]
    workspace = Workspace()
    workspace.RunNetOnce(model.param_init_net.Proto())
    workspace.RunNetOnce(model.net.Proto())
    nhwc = workspace.FetchBlob("data_nhwc")
    np.testing.assert_array_equal(workspace.FetchBlob(str(data)), nhwc.transpose(0, 3, 1, 2))
    assert workspace.FetchBlob(str(label)).tolist() == [0, 1]


def test_cnn_model_helper_image_input_follows_the_model_order(tmp_path):
    nhwc = cnn.CNNModelHelper(order="NHWC", name="m")
    nhwc.ImageInput("reader", ["data", "label"], batch_size=1, scale=2, crop=2)
    assert [op.type for op in nhwc.net.Proto().op] == ["ImageInput"]
    nchw = cnn.CNNModelHelper(name="m")
    nchw.ImageInput("reader", ["data", "label"], batch_size=1, scale=2, crop=2)
    assert [op.type for op in nchw.net.Proto().op] == ["ImageInput", "NHWC2NCHW"]
    plain = model_helper.ModelHelper(name="p")  # ModelHelper forwards the op itself, as Caffe2's
    plain.ImageInput("reader", ["data", "label"], batch_size=1, scale=2, crop=2)
    assert [op.type for op in plain.net.Proto().op] == ["ImageInput"]
    nchw.PadImage("data", "padded", pad=1, mode="edge")
    assert nchw.net.Proto().op[-1].type == "PadImage"


def test_use_gpu_transform_is_refused_on_the_cpu():
    model = model_helper.ModelHelper(name="g")
    brew.image_input(model, "reader", ["data", "label"], use_gpu_transform=True, batch_size=1, scale=2, crop=2)
    op = model.net.Proto().op[0]
    assert [op.type for op in model.net.Proto().op] == ["ImageInput"]
    with pytest.raises((OpFailure, NetError), match="use_gpu_transform"):
        Workspace().RunOperatorOnce(op)


# ---- PadImage --------------------------------------------------------------------------

def ref_pad_caffe2(x, top, left, bottom, right, mode, value=0.0):
    """PadImage (NCHW) by Caffe2's per-position index rule (also for negative pads)."""
    n, c, h, w = x.shape
    y = np.empty((n, c, h + top + bottom, w + left + right), x.dtype)
    for ph in range(y.shape[2]):
        for pw in range(y.shape[3]):
            i, j = ph - top, pw - left
            if mode == "constant":
                y[:, :, ph, pw] = x[:, :, i, j] if 0 <= i < h and 0 <= j < w else value
                continue
            if mode == "reflect":
                i, j = min(abs(i), 2 * h - abs(i) - 2), min(abs(j), 2 * w - abs(j) - 2)
            else:
                i, j = min(max(i, 0), h - 1), min(max(j, 0), w - 1)
            y[:, :, ph, pw] = x[:, :, i, j]
    return y


X = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
PAD_CASES = [
    ({"pad": 2}, (2, 2, 2, 2)),
    ({"pad_t": 1, "pad_l": 0, "pad_b": 3, "pad_r": 2}, (1, 0, 3, 2)),
    ({"pads": [0, 2, 1, 1]}, (0, 2, 1, 1)),
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("args, sides", PAD_CASES, ids=["pad", "sides", "pads"])
@pytest.mark.parametrize("order", ["NCHW", "NHWC"])
def test_pad_image_matches_np_pad(mode, args, sides, order):
    top, left, bottom, right = sides
    x = X if order == "NCHW" else X.transpose(0, 2, 3, 1).copy()
    spatial = ((top, bottom), (left, right))
    widths = ((0, 0), (0, 0), *spatial) if order == "NCHW" else ((0, 0), *spatial, (0, 0))
    fill = {"constant_values": 1.5} if mode == "constant" else {}
    args = {**args, "mode": mode, "order": order, **({"value": 1.5} if mode == "constant" else {})}
    y = check_reference("PadImage", [x], lambda x, **_: np.pad(x, widths, mode, **fill), args)[0]
    dy = rng.standard_normal(y.shape).astype(np.float32)
    check_gradient_op("PadImage", [x], "PadImageGradient", [dy], {0: 0}, [dy], args)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("sides", [(-1, -2, 0, -1), (-2, 1, 3, -1), (2, -1, -1, 4)])
def test_pad_image_negative_pads_follow_caffe2(mode, sides):
    top, left, bottom, right = sides
    args = {"pad_t": top, "pad_l": left, "pad_b": bottom, "pad_r": right, "mode": mode}
    check_reference("PadImage", [X], lambda x, **_: ref_pad_caffe2(x, *sides, mode), args)
    dy = rng.standard_normal(ref_pad_caffe2(X, *sides, mode).shape).astype(np.float32)
    check_gradient_op("PadImage", [X], "PadImageGradient", [dy], {0: 0}, [dy], args)


def test_pad_image_gradient_sums_reflected_cells():
    dy = np.ones((1, 1, 5, 3), np.float32)  # X [1, 1, 3, 1] padded 1 on top and bottom, 1 left and right
    dx = run_op("PadImageGradient", [dy], {"pad": 1, "mode": "edge"})[0]
    assert dx[0, 0, :, 0].tolist() == [6.0, 3.0, 6.0]


PAD_ERRORS = [
    ((2, 3, 4), {"pad": 1}, "must be a 4-D image"),
    ((1, 1, 3, 3), {"pad": 3, "mode": "reflect"}, "must be smaller than X's spatial dims"),
    ((1, 1, 3, 3), {"pad_t": -2, "pad_b": -1, "pad_l": 0, "pad_r": 0}, "leave nothing of X"),
    ((1, 1, 3, 3), {"pad_t": 1}, "give all of pad_t, pad_l, pad_b, pad_r"),
    ((1, 1, 3, 3), {"pad": 1, "pads": [1, 1, 2, 1]}, "the args disagree"),
    ((1, 1, 3, 3), {"pad": 1, "stride": 2}, "stride"),
]


@pytest.mark.parametrize("shape, args, message", PAD_ERRORS, ids=[m[:16] for *_, m in PAD_ERRORS])
def test_pad_image_errors(shape, args, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op("PadImage", [np.zeros(shape, np.float32)], args)


def test_pad_image_inference():
    (y,) = infer("PadImage", [(2, 3, 4, 5)], pad_t=1, pad_l=2, pad_b=0, pad_r=-1)
    assert y.shape == (2, 3, 5, 6)
    (y,) = infer("PadImage", [(2, 4, 5, 3)], pad=2, order="NHWC")
    assert y.shape == (2, 8, 9, 3)
    (dx,) = infer("PadImageGradient", [(2, 8, 9, 3)], pad=2, order="NHWC")
    assert dx.shape == (2, 4, 5, 3)
    with pytest.raises(ShapeError, match="not larger than the pads"):
        infer("PadImageGradient", [(1, 1, 2, 2)], pad=1)


# ---- layout transposes ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 2, 3, 2), (2, 3, 2), (1, 2, 1, 2, 3)])
def test_layout_transposes_and_their_gradients(shape):
    x = rng.standard_normal(shape).astype(np.float32)
    y = check_reference("NHWC2NCHW", [x], lambda x: np.moveaxis(x, -1, 1))[0]
    back = check_reference("NCHW2NHWC", [y], lambda y: np.moveaxis(y, 1, -1))[0]
    np.testing.assert_array_equal(back, x)
    check_gradient_op("NHWC2NCHW", [x], "NCHW2NHWC", [y], {0: 0}, [y])
    check_gradient_op("NCHW2NHWC", [y], "NHWC2NCHW", [x], {0: 0}, [x])
    with pytest.raises((OpFailure, NetError), match="needs rank 3 or more"):
        run_op("NHWC2NCHW", [np.zeros((2, 3), np.float32)])
