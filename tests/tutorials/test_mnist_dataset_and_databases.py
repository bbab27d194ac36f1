"""Caffe2's MNIST_Dataset_and_Databases tutorial: it downloads MNIST as lmdb
databases (mnist-lmdb.zip) and as raw IDX files (mnist.zip), and makes leveldb
databases from the IDX files with Caffe2's make_mnist_db binary, or, when they
exist, removes their stale LOCK files.

Stand-ins: a small MNIST-like set (digits drawn as bars, 28x28) as IDX files;
the lmdb zip and the leveldb folders written from them in make_mnist_db's layout
(keys %08d, a TensorProtos of the image [1, 28, 28] as BYTE and the int32
label), the leveldbs made before the run, as the tutorial expects after a first
run, so no binary is called. Checked: the databases the tutorial unpacked read
back record for record through CreateDB/TensorProtosDBInput (lmdb and leveldb,
the tutorial's "Code Changes for Other DBs"), and the LOCK files are gone.
"""
from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import db, model_helper, workspace
from pycaffe2.proto import caffe2_pb2
from tests.tutorials.harness import run_tutorial

pytest.importorskip("lmdb")
pytest.importorskip("plyvel")

LMDB_ZIP = "http://download.caffe2.ai/databases/mnist-lmdb.zip"
RAW_ZIP = "http://download.caffe2.ai/datasets/mnist/mnist.zip"


def digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [count, 28, 28] and their labels: digit d is a bright bar at row 2 + 2d."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = rng.integers(0, 40, (count, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        image[2 + 2 * label: 4 + 2 * label, 4:24] = 255
    return images, labels


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file (MNIST's format): magic 0x0000 08 <ndim>, big-endian int32 dims, the uint8 data."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def read_idx(path) -> np.ndarray:
    data = Path(path).read_bytes()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def make_mnist_db(image_file, label_file, output, db_type: str) -> None:
    """What Caffe2's make_mnist_db --channel_first writes."""
    images, labels = read_idx(image_file), read_idx(label_file)
    with db.create_db(db_type, str(output), db.Mode.new) as out:
        transaction = out.new_transaction()
        for i, (image, label) in enumerate(zip(images, labels)):
            data = caffe2_pb2.TensorProto(dims=[1, 28, 28], data_type=caffe2_pb2.TensorProto.BYTE,
                                          byte_data=image.tobytes())
            target = caffe2_pb2.TensorProto(dims=[], data_type=caffe2_pb2.TensorProto.INT32,
                                            int32_data=[int(label)])
            transaction.put(f"{i:08d}", caffe2_pb2.TensorProtos(protos=[data, target]).SerializeToString())
        transaction.commit()


def zipped(folder: Path, names) -> bytes:
    """A zip of files and folders under `folder`, paths relative to it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            path = folder / name
            for item in ([path] if path.is_file() else sorted(path.rglob("*"))):
                archive.write(item, item.relative_to(folder).as_posix())
    return buffer.getvalue()


def mnist_standins(work: Path) -> tuple[dict, dict]:
    """(downloads, {split: (images, labels)}): the two zips the tutorial downloads."""
    work.mkdir()
    sets = {"train": digits(40, 0), "t10k": digits(20, 1)}
    for split, (images, labels) in sets.items():
        (work / f"{split}-images-idx3-ubyte").write_bytes(idx_bytes(images))
        (work / f"{split}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    for split, db_split in (("train", "train"), ("t10k", "test")):
        make_mnist_db(work / f"{split}-images-idx3-ubyte", work / f"{split}-labels-idx1-ubyte",
                      work / f"mnist-{db_split}-nchw-lmdb", "lmdb")
    downloads = {
        LMDB_ZIP: zipped(work, ["mnist-train-nchw-lmdb", "mnist-test-nchw-lmdb"]),
        RAW_ZIP: zipped(work, [f"{s}-{k}-idx{n}-ubyte" for s in sets for k, n in (("images", 3), ("labels", 1))]),
    }
    return downloads, sets


def read_batches(path: Path, db_type: str, count: int):
    """All `count` records of a DB through ModelHelper.TensorProtosDBInput, in one batch."""
    model = model_helper.ModelHelper(name=f"read_{db_type}")
    model.TensorProtosDBInput([], ["data", "label"], batch_size=count, db=str(path), db_type=db_type)
    workspace.ResetWorkspace()
    try:
        workspace.RunNetOnce(model.param_init_net)
        workspace.RunNetOnce(model.net)
        return workspace.FetchBlob("data"), workspace.FetchBlob("label")
    finally:
        workspace.ResetWorkspace()


def test_mnist_dataset_and_databases(tmp_path):
    downloads, sets = mnist_standins(tmp_path / "standins")
    home = tmp_path / "home"
    data_folder = home / "caffe2_notebooks" / "tutorial_data" / "mnist"
    data_folder.mkdir(parents=True)
    # the leveldbs a first run's make_mnist_db left, with the LOCK files the tutorial removes
    for split, db_split in (("train", "train"), ("t10k", "test")):
        images, labels = sets[split]
        (tmp_path / f"{split}-i").write_bytes(idx_bytes(images))
        (tmp_path / f"{split}-l").write_bytes(idx_bytes(labels))
        make_mnist_db(tmp_path / f"{split}-i", tmp_path / f"{split}-l",
                      data_folder / f"mnist-{db_split}-nchw-leveldb", "leveldb")
        assert (data_folder / f"mnist-{db_split}-nchw-leveldb" / "LOCK").exists()

    run_tutorial("MNIST_Dataset_and_Databases", home, downloads=downloads)

    for split, db_split in (("train", "train"), ("t10k", "test")):
        images, labels = sets[split]
        raw = data_folder / f"{split}-images-idx3-ubyte"  # unpacked from mnist.zip
        np.testing.assert_array_equal(read_idx(raw), images)
        for db_type in ("lmdb", "leveldb"):
            folder = data_folder / f"mnist-{db_split}-nchw-{db_type}"
            if db_type == "leveldb":
                assert not (folder / "LOCK").exists()  # removed by the tutorial
            data, label = read_batches(folder, db_type, len(labels))
            assert data.shape == (len(labels), 1, 28, 28) and data.dtype == np.uint8
            np.testing.assert_array_equal(data[:, 0], images)
            np.testing.assert_array_equal(label, labels.astype(np.int32))
