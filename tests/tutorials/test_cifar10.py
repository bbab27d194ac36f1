"""Caffe2's CIFAR10_Part1 and CIFAR10_Part2 tutorials, run one after the other
(Part2 reads what Part1 left under ~/caffe2_notebooks: the lmdbs and the newest
run's cifar10_init_net.pb / cifar10_predict_net.pb).

Part1 downloads cifar.tgz (cifar/train/*.png, cifar/test/*.png named
`<id>_<class>.png`, cifar/labels.txt), writes label files and three lmdbs with
the `lmdb` package (float32 BGR CHW images, int32 labels), trains a small CNN
with brew.db_input from them (Checkpoint into lmdbs), validates, and exports the
deploy net with mobile_exporter. Part2 tests the exported model on the test
lmdb and trains it further.

Stand-ins: a small CIFAR-like set made here (each class a colour and a bar
position, so a CNN can learn it), as PNG files in the tarball, and `imageio`
(when it is not installed) with an imread for the PNGs written here. Part1
puts the first 6000 training images into its validation set, so the stand-in
has 6000 + a few training images.

Part2's Python 2 lines get before= help: `open(path, "r")` then
ParseFromString(f.read()) reads a binary .pb as text (Python 3 needs "rb"), and
`xrange`.

Not run by default (PYCAFFE2_LONG_TUTORIALS=1 runs it): the published
iteration counts (Part1: 2000 training iterations of 100 images, 20 validations
of 6000; Part2: 3000 more of 100 and 20000 single-image tests) take hours with
the NumPy conv kernels (about 7 s per training iteration on 2 cores), whatever
the data's size, and the iteration counts are the tutorial's own code. It also
needs Net.AppendNet (Part2; another part of issue 15) and workspace root folders:
Part1's Checkpoint (iteration 1000) writes `<timestamp>/cifar10_checkpoint_%05d.lmdb`
under the root folder ResetWorkspace(root_folder) set, which pycaffe2 does not
keep yet (its absolute_path=0 paths are under the working folder). With the
iteration counts cut (a check by hand, not kept), both parts run through.
"""
from __future__ import annotations

import glob
import io
import os
import struct
import tarfile
import types
import zlib

import numpy as np
import pytest

from pycaffe2 import db
from tests.tutorials.harness import run_tutorial

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("PYCAFFE2_LONG_TUTORIALS") != "1",
                       reason="hours with NumPy kernels at the tutorials' own iteration counts; "
                              "PYCAFFE2_LONG_TUTORIALS=1 runs it"),
]
CIFAR_URL = "http://pjreddie.com/media/files/cifar.tgz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit RGB PNG (no filtering) of a uint8 [H, W, 3] image."""
    height, width, _ = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + row.tobytes() for row in image.astype(np.uint8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def imread(path) -> np.ndarray:
    """imageio's imread for the PNGs png_bytes writes (RGB, 8-bit, filter 0)."""
    with open(path, "rb") as file:
        data = file.read()
    offset, idat, size = 8, b"", None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    height, width = size
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 3 * width)
    if rows[:, 0].any():
        raise ValueError(f"{path}: a PNG filter this stand-in does not decode")
    return rows[:, 1:].reshape(height, width, 3).copy()


def cifar_image(label: int, rng) -> np.ndarray:
    image = rng.integers(0, 60, (32, 32, 3))
    image[..., label % 3] += 120
    image[3 * label: 3 * label + 3, :, :] = 250
    return image.clip(0, 255).astype(np.uint8)


def cifar_tarball(train: int, test: int) -> tuple[bytes, dict]:
    """cifar.tgz as the tutorial reads it, and {path in the tarball: (image, label)}."""
    rng = np.random.default_rng(0)
    buffer, images = io.BytesIO(), {}
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("cifar/labels.txt", "".join(f"{c}\n" for c in CLASSES).encode())
        for split, count in (("train", train), ("test", test)):
            for i in range(count):
                label = int(rng.integers(0, 10))
                image = cifar_image(label, rng)
                name = f"cifar/{split}/{i}_{CLASSES[label]}.png"
                add(name, png_bytes(image))
                images[name] = (image, label)
    return buffer.getvalue(), images


def python3_lines(source: str) -> str:
    """Part2's Python-2-only lines (see the module doc)."""
    for old, new in (('open(INIT_NET, "r")', 'open(INIT_NET, "rb")'),
                     ('open(PREDICT_NET, "r")', 'open(PREDICT_NET, "rb")'), ("xrange(", "range(")):
        assert old in source
        source = source.replace(old, new)
    return source


def imageio_standin() -> dict:
    try:
        import imageio  # noqa: F401
        return {}
    except ImportError:
        module = types.ModuleType("imageio")
        module.imread = imread
        return {"imageio": module}


def test_cifar10_part1_then_part2(tmp_path):
    pytest.importorskip("lmdb")
    tarball, images = cifar_tarball(train=6200, test=100)
    home = tmp_path
    part1 = run_tutorial("CIFAR10_Part1", home, downloads={CIFAR_URL: tarball}, modules=imageio_standin())
    data = home / "caffe2_notebooks" / "tutorial_data" / "cifar10"
    # the lmdbs hold the images as the tutorial wrote them: BGR, CHW, float32; labels int32
    for lmdb_name, labels_name in (("training_lmdb", "training_dictionary.txt"),
                                   ("testing_lmdb", "testing_dictionary.txt")):
        lines = (data / labels_name).read_text().split("\n")[:-1]
        store = db.create_db("lmdb", str(data / lmdb_name), db.Mode.read)
        records = dict(store.new_cursor())
        store.close()
        assert len(records) == len(lines)
        for count, line in enumerate(lines[:20]):
            path, label = line.split()
            image, true_label = images["cifar/" + path.split("/cifar/", 1)[1]]
            protos = db.parse_tensor_protos(records[str(count)], "record")
            np.testing.assert_array_equal(db.record_tensor(protos.protos[0], "", ""),
                                          image[:, :, ::-1].transpose(2, 0, 1).astype(np.float32))
            assert int(label) == true_label
    loss, accuracy = part1["loss"], part1["val_accuracy"]
    assert loss[-1] < loss[0] and accuracy[-1] > 0.2  # learned: above chance (0.1)
    runs = sorted(glob.glob(str(home / "caffe2_notebooks" / "tutorial_files" / "tutorial_cifar10" / "*")))
    assert os.path.isfile(os.path.join(runs[-1], "cifar10_predict_net.pb"))

    part2 = run_tutorial("CIFAR10_Part2", home, before=python3_lines)
    assert part2["avg_accuracy"] / part2["test_iters"] > 0.2
    assert part2["cmat"].sum() == part2["test_iters"]
