"""Caffe2's Image_Pre-Processing_Pipeline tutorial: images read with skimage, RGB to BGR,
mirrored and rotated, resized (squeezed and aspect-kept), centre-cropped to 224x224,
HWC to CHW and a batch axis added, the model's input.

Stand-ins: the four images it reads (images/cat.jpg, cell-tower.jpg, mirror-image.jpg,
Cellsx128.png) made here as small PNGs of distinct sizes and orientations (a wide cat,
so the aspect-kept resize takes its landscape branch), read by skimage or the shared
stand-in (tests/tutorials/standins.py) where it is not installed.
"""
import numpy as np
import pytest

from tests.tutorials.harness import run_tutorial
from tests.tutorials.standins import skimage_module, write_png

IMAGES = {"cat.jpg": (150, 200), "cell-tower.jpg": (120, 90), "mirror-image.jpg": (100, 130),
          "Cellsx128.png": (128, 128)}


def write_images(home) -> dict:
    rng = np.random.default_rng(3)
    (home / "images").mkdir()
    pixels = {}
    for name, shape in IMAGES.items():
        pixels[name] = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
        write_png(home / "images" / name, pixels[name])
    return pixels


def centre(image, height, width):
    top, left = image.shape[0] // 2 - height // 2, image.shape[1] // 2 - width // 2
    return image[top:top + height, left:left + width]


def test_image_pre_processing_pipeline(tmp_path, capsys):
    pixels = write_images(tmp_path)
    ns = run_tutorial("Image_Pre-Processing_Pipeline", tmp_path)
    skimage = skimage_module()
    as_float = {name: (p / 255.0).astype(np.float32) for name, p in pixels.items()}

    img = ns["img"]  # read as float32 in [0, 1], HWC
    assert img.dtype == np.float32 and img.shape == (150, 200, 3)
    np.testing.assert_allclose(img, as_float["cat.jpg"], rtol=1e-6)
    np.testing.assert_array_equal(ns["imgBGR"], img[:, :, ::-1])  # the channel swap
    np.testing.assert_array_equal(ns["imgMirror"], as_float["mirror-image.jpg"][:, ::-1])
    assert ns["imgRotated"].shape == (90, 120, 3)  # three quarter turns: clockwise
    np.testing.assert_array_equal(ns["imgRotated"], np.rot90(as_float["cell-tower.jpg"], -1))

    # squeezed to 256x256, and the aspect kept: 224 high, 224 * 4/3 wide
    np.testing.assert_allclose(ns["img256"], skimage.transform.resize(img, (256, 256)), rtol=1e-6)
    assert ns["aspect"] == 200 / 150 and ns["imgScaled"].shape == (224, 298, 3)
    np.testing.assert_allclose(ns["imgScaled"], skimage.transform.resize(img, (224, 298)), rtol=1e-6)
    # the centre crops equal NumPy slicing
    # cropping 224x224 out of the 150x200 original starts before its corner: NumPy's negative
    # starts leave only its last 37 rows and 12 columns (the tutorial's point: resize first)
    np.testing.assert_array_equal(ns["imgCenter"], img[-37:, -12:])
    np.testing.assert_array_equal(ns["img256Center"], ns["img256"][16:240, 16:240])
    np.testing.assert_array_equal(ns["imgScaledCenter"], centre(ns["imgScaled"], 224, 224))
    assert ns["imgScaledCenter"].shape == (224, 224, 3)

    # the tiny image: a 128x56 slice (crop_center's width then height), upscaled to 224x224
    tiny = as_float["Cellsx128.png"]
    np.testing.assert_array_equal(ns["imgTinySlice"], tiny[36:92, :])
    assert ns["imgTiny224"].shape == (224, 224, 3)
    np.testing.assert_allclose(ns["imgTiny224"], skimage.transform.resize(tiny[36:92], (224, 224)), rtol=1e-6)

    # the model's input: the aspect-kept crop as CHW, BGR, with a batch axis
    final = ns["imgCropped"]
    assert final.shape == (1, 3, 224, 224) and final.dtype == np.float32
    expected = centre(ns["imgScaled"], 224, 224).transpose(2, 0, 1)[::-1]
    np.testing.assert_array_equal(final[0], expected.astype(np.float32))
    out = capsys.readouterr().out
    assert "Final input shape is: (1, 3, 224, 224)" in out
    assert "Image shape after HWC --> CHW conversion:  (3, 128, 128)" in out


def test_png_standin_round_trip_and_refusal(tmp_path):
    from tests.tutorials import standins
    rng = np.random.default_rng(4)
    for image in (rng.integers(0, 256, (5, 7), dtype=np.uint8), rng.integers(0, 256, (4, 3, 4), dtype=np.uint8)):
        standins.write_png(tmp_path / "a.png", image)
        np.testing.assert_array_equal(standins._imread(tmp_path / "a.png"), image)
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 not a png")
    with pytest.raises(ValueError, match="b.jpg is not a PNG"):
        standins._imread(tmp_path / "b.jpg")
