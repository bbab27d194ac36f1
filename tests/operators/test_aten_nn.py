"""The ATen op's nn functions against NumPy references written pixel by pixel
from ATen's formulas (grid_sampler, upsample_nearest2d, upsample_bilinear2d,
adaptive_avg_pool2d, embedding_bag, layer_norm, ...), and, where PyTorch is
importable, against PyTorch itself."""
import math
from pathlib import Path

import numpy as np
import pytest

from pycaffe2.cli import main
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.testing import run_op
from tests.operators.test_aten import check

RNG = np.random.default_rng(1)
IMAGE = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)


def test_softmax_and_layer_norm():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    check("softmax", [x], [e / e.sum(axis=1, keepdims=True)], dim=1)
    check("log_softmax", [x], [np.log(e / e.sum(axis=1, keepdims=True))], dim=1)
    flat = x.reshape(2, 12).astype(np.float64)
    normed = ((flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + 1e-5)).reshape(x.shape)
    check("layer_norm", [x], [normed.astype(np.float32)], normalized_shape=[3, 4])
    weight, bias = RNG.standard_normal((4,)).astype(np.float32), RNG.standard_normal((4,)).astype(np.float32)
    last = x.astype(np.float64)
    normed = (last - last.mean(-1, keepdims=True)) / np.sqrt(last.var(-1, keepdims=True) + 0.1)
    check("layer_norm", [x, weight, bias], [(normed * weight + bias).astype(np.float32)], normalized_shape=[4],
          eps=0.1, cudnn_enable=1)


def test_embedding():
    weight = RNG.standard_normal((5, 3)).astype(np.float32)
    indices = np.array([[4, 0], [2, 2]], np.int64)
    check("embedding", [weight, indices], [np.stack([[weight[i] for i in row] for row in indices])],
          padding_idx=-1, scale_grad_by_freq=0, sparse=0)


def bag_reference(weight, indices, offsets, mode, include_last_offset=False, per_sample=None, padding_idx=-1):
    ends = list(offsets[1:]) + ([] if include_last_offset else [len(indices)])
    starts = list(offsets[:len(ends)])
    out, sizes = [], []
    for start, end in zip(starts, ends):
        rows = [k for k in range(start, end) if indices[k] != padding_idx]
        vectors = [weight[indices[k]] * (1 if per_sample is None else per_sample[k]) for k in rows]
        sizes.append(len(rows))
        if not vectors:
            out.append(np.zeros(weight.shape[1], weight.dtype))
        elif mode == 0:
            out.append(np.sum(vectors, axis=0))
        elif mode == 1:
            out.append(np.mean(vectors, axis=0))
        else:
            out.append(np.max(vectors, axis=0))
    return np.array(out, weight.dtype), np.int64(sizes)


@pytest.mark.parametrize("mode, include_last_offset, weighted, padding_idx", [
    (0, 0, False, -1), (1, 0, False, -1), (2, 0, False, -1), (0, 1, False, -1), (0, 0, True, -1), (1, 0, False, 3),
])
def test_embedding_bag(mode, include_last_offset, weighted, padding_idx):
    weight = RNG.standard_normal((6, 4)).astype(np.float32)
    indices = np.array([1, 3, 3, 5, 0, 2, 4], np.int64)
    offsets = np.array([0, 2, 2, 5] + ([7] if include_last_offset else []), np.int64)  # bag 1 is empty
    per_sample = RNG.standard_normal(7).astype(np.float32) if weighted else None
    out, sizes = bag_reference(weight, indices, offsets, mode, include_last_offset, per_sample, padding_idx)
    inputs = [weight, indices, offsets] + ([per_sample] if weighted else [])
    got = check("embedding_bag", inputs, [out], 1, mode=mode, include_last_offset=include_last_offset,
                padding_idx=padding_idx)
    _, offset2bag, bag_size, max_indices = run_op(
        "ATen", inputs, {"operator": "embedding_bag", "mode": mode, "include_last_offset": include_last_offset,
                         "padding_idx": padding_idx}, num_outputs=4)
    np.testing.assert_array_equal(bag_size, sizes)
    np.testing.assert_array_equal(offset2bag, [0, 0, 2, 2, 2, 3, 3])
    if mode == 2:
        full = sizes > 0
        np.testing.assert_array_equal(weight[max_indices, np.arange(4)][full], got[0][full])


def test_embedding_bag_errors():
    weight = np.ones((3, 2), np.float32)
    with pytest.raises((OpFailure, NetError), match="offsets must start at 0 and rise"):
        run_op("ATen", [weight, np.int64([0, 1]), np.int64([0, 3])], {"operator": "embedding_bag"})
    with pytest.raises((OpFailure, NetError), match="index 3 is out of range for a weight of 3 rows"):
        run_op("ATen", [weight, np.int64([0, 3]), np.int64([0])], {"operator": "embedding_bag"})
    with pytest.raises((OpFailure, NetError), match="per_sample_weights needs mode 0"):
        run_op("ATen", [weight, np.int64([0]), np.int64([0]), np.ones(1, np.float32)],
               {"operator": "embedding_bag", "mode": 1})


# -- grid_sampler -----------------------------------------------------------------------------------
def reflect(coord, low, high):
    """Fold coord into [low, high] by mirroring at the ends (a loop, not ATen's fmod)."""
    if high <= low:
        return low
    while coord < low or coord > high:
        coord = 2 * low - coord if coord < low else 2 * high - coord
    return coord


def source(coord, size, padding_mode, align_corners):
    pixel = (coord + 1) / 2 * (size - 1) if align_corners else ((coord + 1) * size - 1) / 2
    if padding_mode == 2:
        pixel = reflect(pixel, 0, size - 1) if align_corners else reflect(pixel, -0.5, size - 0.5)
    if padding_mode in (1, 2):
        pixel = min(max(pixel, 0), size - 1)
    return pixel


def grid_sample_reference(x, grid, mode, padding_mode, align_corners):
    n, c, height, width = x.shape
    out = np.zeros((n, c) + grid.shape[1:3], np.float64)

    def tap(b, yy, xx):
        inside = 0 <= yy < height and 0 <= xx < width
        return x[b, :, yy, xx].astype(np.float64) if inside else np.zeros(c)

    for b in range(n):
        for i in range(grid.shape[1]):
            for j in range(grid.shape[2]):
                px = source(float(grid[b, i, j, 0]), width, padding_mode, align_corners)
                py = source(float(grid[b, i, j, 1]), height, padding_mode, align_corners)
                if mode == 1:
                    out[b, :, i, j] = tap(b, round(py), round(px))  # round half to even
                    continue
                x0, y0 = math.floor(px), math.floor(py)
                fx, fy = px - x0, py - y0
                out[b, :, i, j] = (tap(b, y0, x0) * (1 - fx) * (1 - fy) + tap(b, y0, x0 + 1) * fx * (1 - fy)
                                   + tap(b, y0 + 1, x0) * (1 - fx) * fy + tap(b, y0 + 1, x0 + 1) * fx * fy)
    return out.astype(x.dtype)


GRID = RNG.uniform(-1.6, 1.6, (2, 3, 4, 2)).astype(np.float32)  # past the edges, to test padding
GRID[0, 0, 0] = [1, -1]  # the corners exactly
GRID[0, 0, 1] = [-1, 1]


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize("padding_mode", [0, 1, 2])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sampler(mode, padding_mode, align_corners):
    expected = grid_sample_reference(IMAGE, GRID, mode, padding_mode, align_corners)
    check("grid_sampler", [IMAGE, GRID], [expected], interpolation_mode=mode, padding_mode=padding_mode,
          align_corners=align_corners)


def test_grid_sampler_forms_of_older_exports():
    expected = grid_sample_reference(IMAGE, GRID, 0, 0, True)
    check("grid_sampler", [IMAGE, GRID], [expected], interpolation_mode=0, padding_mode=0)  # before 1.3
    expected = grid_sample_reference(IMAGE, GRID, 0, 1, True)
    check("grid_sampler", [IMAGE, GRID], [expected], padding_mode=1)  # PyTorch 0.4


# -- upsampling and pooling -------------------------------------------------------------------------
def upsample_reference(x, size, bilinear, align_corners=False):
    n, c, height, width = x.shape
    out = np.zeros((n, c) + tuple(size), np.float64)
    for i in range(size[0]):
        for j in range(size[1]):
            if not bilinear:
                out[:, :, i, j] = x[:, :, min(int(i * height / size[0]), height - 1),
                                    min(int(j * width / size[1]), width - 1)]
                continue
            if align_corners:
                py = i * (height - 1) / (size[0] - 1) if size[0] > 1 else 0
                px = j * (width - 1) / (size[1] - 1) if size[1] > 1 else 0
            else:
                py = max((i + 0.5) * height / size[0] - 0.5, 0)
                px = max((j + 0.5) * width / size[1] - 0.5, 0)
            y0, x0 = min(int(py), height - 1), min(int(px), width - 1)
            y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
            fy, fx = py - y0, px - x0
            out[:, :, i, j] = (x[:, :, y0, x0] * (1 - fy) * (1 - fx) + x[:, :, y0, x1] * (1 - fy) * fx
                               + x[:, :, y1, x0] * fy * (1 - fx) + x[:, :, y1, x1] * fy * fx)
    return out.astype(x.dtype)


@pytest.mark.parametrize("size", [[8, 10], [3, 7], [1, 1], [4, 5]])
def test_upsample_nearest2d(size):
    check("upsample_nearest2d", [IMAGE], [upsample_reference(IMAGE, size, False)], output_size=size)


def test_upsample_nearest2d_by_a_scale_factor():
    expected = np.zeros((2, 3, 12, 15), np.float32)
    for i in range(12):
        for j in range(15):
            expected[:, :, i, j] = IMAGE[:, :, i // 3, j // 3]
    check("upsample_nearest2d", [IMAGE], [expected], scale_factor=3)


@pytest.mark.parametrize("size", [[8, 10], [3, 7], [1, 1], [7, 12]])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_upsample_bilinear2d(size, align_corners):
    check("upsample_bilinear2d", [IMAGE], [upsample_reference(IMAGE, size, True, align_corners)],
          output_size=size, align_corners=align_corners)


@pytest.mark.parametrize("size", [[2, 2], [3, 3], [1, 5], [6, 7]])
def test_adaptive_avg_pool2d(size):
    height, width = IMAGE.shape[2:]
    expected = np.zeros(IMAGE.shape[:2] + tuple(size), np.float32)
    for i in range(size[0]):
        for j in range(size[1]):
            h0, h1 = math.floor(i * height / size[0]), math.ceil((i + 1) * height / size[0])
            w0, w1 = math.floor(j * width / size[1]), math.ceil((j + 1) * width / size[1])
            expected[:, :, i, j] = IMAGE[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    check("adaptive_avg_pool2d", [IMAGE], [expected], output_size=size)


def test_constant_pad_nd():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    expected = np.full((3 + 1 + 2, 4 - 1 + 2), 7.0, np.float32)
    expected[1:4, 0:3] = x[:, 1:]
    check("constant_pad_nd", [x], [expected], pad=[-1, 2, 1, 2], value=7)


# -- against PyTorch, when it is installed ----------------------------------------------------------
def test_grid_sampler_and_upsampling_match_pytorch():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    image, grid = torch.from_numpy(IMAGE), torch.from_numpy(GRID)
    for mode, name in ((0, "bilinear"), (1, "nearest")):
        for padding_mode, padding in enumerate(("zeros", "border", "reflection")):
            for align_corners in (False, True):
                expected = functional.grid_sample(image, grid, mode=name, padding_mode=padding,
                                                  align_corners=align_corners).numpy()
                check("grid_sampler", [IMAGE, GRID], [expected], interpolation_mode=mode,
                      padding_mode=padding_mode, align_corners=int(align_corners))
    for size in ([8, 10], [3, 7], [1, 1], [7, 12]):
        expected = functional.interpolate(image, size=size, mode="nearest").numpy()
        check("upsample_nearest2d", [IMAGE], [expected], output_size=size)
        for align_corners in (False, True):
            expected = functional.interpolate(image, size=size, mode="bilinear", align_corners=align_corners)
            check("upsample_bilinear2d", [IMAGE], [expected.numpy()], output_size=size,
                  align_corners=int(align_corners))
        expected = torch.ops.aten.upsample_nearest2d(image, size, 2.5, 1.5).numpy()
        check("upsample_nearest2d", [IMAGE], [expected], output_size=size, scales_h=2.5, scales_w=1.5)
        expected = torch.ops.aten.upsample_bilinear2d(image, size, False, 2.5, 1.5).numpy()
        check("upsample_bilinear2d", [IMAGE], [expected], output_size=size, align_corners=0, scales_h=2.5,
              scales_w=1.5)
        expected = functional.adaptive_avg_pool2d(image, size).numpy()
        check("adaptive_avg_pool2d", [IMAGE], [expected], output_size=size)


def test_embedding_bag_and_gelu_match_pytorch():
    torch = pytest.importorskip("torch")
    weight = RNG.standard_normal((6, 4)).astype(np.float32)
    indices, offsets = np.int64([1, 3, 3, 5, 0, 2, 4]), np.int64([0, 2, 2, 5])
    for mode, name in enumerate(("sum", "mean", "max")):
        expected = torch.nn.functional.embedding_bag(torch.from_numpy(indices), torch.from_numpy(weight),
                                                     torch.from_numpy(offsets), mode=name).numpy()
        check("embedding_bag", [weight, indices, offsets], [expected], mode=mode)
    x = np.linspace(-5, 5, 41).astype(np.float32)
    for approximate in ("none", "tanh"):
        expected = torch.nn.functional.gelu(torch.from_numpy(x), approximate=approximate).numpy()
        check("gelu", [x], [expected], approximate=approximate)
    check("erf", [x], [torch.erf(torch.from_numpy(x)).numpy()])


# -- a net as an export writes it, through the command line -----------------------------------------
EXPORT_NET = Path(__file__).resolve().parents[1] / "data" / "aten_export_net.pbtxt"


def test_an_exported_net_validates_and_runs_from_the_command_line(tmp_path, capsys):
    image = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    grid = RNG.uniform(-1.2, 1.2, (2, 3, 3, 2)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "grid.npy", grid)
    assert main(["validate", str(EXPORT_NET), "--input-shape", "0=2,3,4,5", "--input-shape", "grid=2,3,3,2"]) == 0
    assert main(["run", str(EXPORT_NET), "--feed", f"0={tmp_path / 'image.npy'}", "--feed",
                 f"grid={tmp_path / 'grid.npy'}", "--out", str(tmp_path / "out.npz")]) == 0
    results = np.load(tmp_path / "out.npz")
    upsampled = upsample_reference(np.maximum(image, 0), [8, 6], True, False)
    expected_max = np.stack([[[max(range(3), key=lambda c, b=b, i=i, j=j: (upsampled[b, c, i, j], -c))
                               for j in range(6)] for i in range(8)] for b in range(2)])
    np.testing.assert_array_equal(results["4"], expected_max)
    sampled = grid_sample_reference(upsampled.max(axis=1, keepdims=True), grid, 0, 1, False)
    np.testing.assert_allclose(results["7"], sampled[..., ::-1], atol=1e-5)


def test_an_unknown_aten_operator_fails_validation(tmp_path, capsys):
    bad = tmp_path / "bad.pbtxt"
    bad.write_text(EXPORT_NET.read_text().replace('s: "flip"', 's: "fliplr"'))
    assert main(["validate", str(bad)]) == 1
    assert "ATen operator 'fliplr' is not supported; supported: _cast_Byte" in capsys.readouterr().out
