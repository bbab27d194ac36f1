"""Caffe2's MNIST tutorial: LeNet trained 200 iterations from an lmdb of NCHW images,
tested on another, then exported with predictor_exporter to a minidb, loaded back
into a reset workspace and run.

Stand-in data: MNIST's layout (folders `mnist-train-nchw-lmdb` / `mnist-test-nchw-lmdb`
under ~/caffe2_notebooks/tutorial_data/mnist, records `%08d` -> TensorProtos of a
uint8 [1, 28, 28] image (BYTE) and an int32 label) holding scikit-learn's 8x8 digits
from nets/examples/lenet_digits, each pixel a 3x3 block and padded to 28x28: real
handwriting, small and learnable. The tutorial finds the folders and downloads nothing.
"""
from __future__ import annotations

import numpy as np
import pytest

from pycaffe2 import db
from pycaffe2.executor import Workspace
from pycaffe2.minidb import Mode
from pycaffe2.proto import caffe2_pb2
from pycaffe2.tensor_proto import tensor_to_array
from tests.tutorials.harness import run_tutorial

lmdb = pytest.importorskip("lmdb", reason="the MNIST tutorial reads lmdb (pip install 'pycaffe2[db]')")

DIGITS = "nets/examples/lenet_digits/{}.minidb"


def digits(split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [count, 1, 28, 28], int32 [count]) from the repository's digits."""
    store = db.create_db("minidb", DIGITS.format(split), Mode.read)
    images, labels = [], []
    try:
        cursor = store.new_cursor()
        cursor.seek_to_first()
        while cursor.valid() and len(images) < count:
            image, label = (tensor_to_array(t) for t in db.parse_tensor_protos(cursor.value(), split).protos)
            big = np.kron(image[0], np.ones((3, 3)))  # 8x8 -> 24x24
            images.append(np.pad(np.round(big * 255), 2).astype(np.uint8)[np.newaxis])
            labels.append(int(label))
            cursor.next()
    finally:
        store.close()
    return np.stack(images), np.array(labels, np.int32)


def write_lmdb(path, images, labels) -> None:
    """Records as Caffe2's make_mnist_db wrote them."""
    with lmdb.open(str(path), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for index, (image, label) in enumerate(zip(images, labels)):
            protos = caffe2_pb2.TensorProtos()
            data = protos.protos.add(data_type=caffe2_pb2.TensorProto.BYTE, dims=image.shape,
                                     byte_data=image.tobytes())
            assert data.dims == [1, 28, 28]
            protos.protos.add(data_type=caffe2_pb2.TensorProto.INT32, int32_data=[int(label)])
            txn.put(f"{index:08d}".encode(), protos.SerializeToString())


@pytest.mark.slow
def test_mnist(tmp_path):
    folder = tmp_path / "caffe2_notebooks" / "tutorial_data" / "mnist"
    folder.mkdir(parents=True)
    train, test = digits("train", 640), digits("test", 200)
    write_lmdb(folder / "mnist-train-nchw-lmdb", *train)
    write_lmdb(folder / "mnist-test-nchw-lmdb", *test)
    ns = run_tutorial("MNIST", tmp_path)
    loss, accuracy = ns["loss"], ns["accuracy"]
    assert loss.shape == (200,) and loss[-25:].mean() < loss[:25].mean() / 2
    assert accuracy[-25:].mean() > 0.5 and ns["test_accuracy"].mean() > 0.5  # chance is 0.1
    # the exported model, loaded into the reset workspace, predicts what the saved
    # parameters give the deploy net directly
    saved = db.load_blobs(str(tmp_path / "caffe2_notebooks" / "tutorial_files" / "tutorial_mnist" /
                              "mnist_model.minidb"))
    assert set(saved) == {"!!META_NET_DEF"} | {str(p) for p in ns["deploy_model"].params}
    ws = Workspace("direct")
    for name, value in saved.items():
        if name != "!!META_NET_DEF":
            ws.FeedBlob(name, value)
    batch = ns["blob"]
    ws.FeedBlob("data", batch)
    ws.RunNetOnce(ns["deploy_model"].net.Proto())
    np.testing.assert_allclose(ns["softmax"], ws.FetchBlob("softmax"), rtol=1e-5, atol=1e-7)
    # and it is right on the last test batch far more often than chance
    by_image = {image.tobytes(): label for image, label in zip(test[0], test[1])}
    labels = np.array([by_image[np.round(image * 256).astype(np.uint8).tobytes()] for image in batch])
    assert (ns["softmax"].argmax(axis=1) == labels).mean() > 0.5
