"""Build the bundled example nets/examples/lenet_digits/ (run once, by a developer).

    pip install scikit-learn            # only this script needs it
    python scripts/make_lenet_digits.py

Writes, in nets/examples/lenet_digits/:

- train.minidb, test.minidb: scikit-learn's handwritten digits (1,797 8x8
  images) split into a stratified held-out fifth (test, 360 images) and the
  rest (train, 1,437 images, shuffled). One record per image, key `%08d`, a
  TensorProtos of two tensors: "data" [1, 8, 8] float32 (pixels / 16, in
  [0, 1]) and "label" int32 scalar (the digit). TensorProtosDBInput stacks
  batch_size records into data [N, 1, 8, 8] (NCHW) and label [N].
- model.yaml: the init net (parameters, with a fixed random_seed, and the two
  DB readers), the test net as predict_net, and a plan whose `network` holds
  the init, train and test nets and whose steps are: init (once), train
  (TRAIN_ITERS times), test (once, the whole test set as one batch).

The DB paths in the nets are relative to the current directory (CreateDB
uses its path as given): run the plan from the repository root.

Every random choice is seeded, so running this again writes the same files.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from pycaffe2 import brew, core, model_helper, netfile, optimizer
from pycaffe2.db import write_npz_to_minidb
from pycaffe2.proto import caffe2_pb2

REPO = Path(__file__).resolve().parent.parent
FOLDER = Path("nets/examples/lenet_digits")  # relative to the repository root
TRAIN_DB, TEST_DB = FOLDER / "train.minidb", FOLDER / "test.minidb"
SEED = 1701
BATCH_SIZE = 64
TRAIN_ITERS = 400
BASE_LR = 0.1


def write_data() -> int:
    """The two minidb files; returns the number of test images."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # [N, 1, 8, 8] in [0, 1]
    labels = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=SEED)
    order = np.random.default_rng(SEED).permutation(len(y_train))
    x_train, y_train = x_train[order], y_train[order]
    with tempfile.TemporaryDirectory() as tmp:
        for path, x, y in ((TRAIN_DB, x_train, y_train), (TEST_DB, x_test, y_test)):
            npz = Path(tmp) / "part.npz"
            np.savez(npz, data=x, label=y)
            write_npz_to_minidb(str(npz), str(REPO / path), names=["data", "label"])
    return len(y_test)


def lenet(model, data, is_test: bool):
    """conv-bn-relu-pool twice, then fc-relu-fc: 10 class scores."""
    bn_args = {"epsilon": 1e-5, "momentum": 0.9}
    if is_test:
        bn_args["is_test"] = 1
    conv1 = brew.conv(model, data, "conv1", dim_in=1, dim_out=16, kernel=3, pad=1)
    bn1 = brew.spatial_bn(model, conv1, "bn1", 16, **bn_args)
    relu1 = brew.relu(model, bn1, "relu1")
    pool1 = brew.max_pool(model, relu1, "pool1", kernel=2, stride=2)  # [N, 16, 4, 4]
    conv2 = brew.conv(model, pool1, "conv2", dim_in=16, dim_out=32, kernel=3, pad=1)
    bn2 = brew.spatial_bn(model, conv2, "bn2", 32, **bn_args)
    relu2 = brew.relu(model, bn2, "relu2")
    pool2 = brew.max_pool(model, relu2, "pool2", kernel=2, stride=2)  # [N, 32, 2, 2]
    fc3 = brew.fc(model, pool2, "fc3", dim_in=32 * 2 * 2, dim_out=64)
    relu3 = brew.relu(model, fc3, "relu3")
    return brew.fc(model, relu3, "pred", dim_in=64, dim_out=10)


def loss_and_accuracy(model, pred, label):
    softmax, loss = model.net.SoftmaxWithLoss([pred, label], ["softmax", "loss"])
    accuracy = brew.accuracy(model, [softmax, label], "accuracy")
    return loss, accuracy


def build(test_size: int) -> netfile.Model:
    scope = {"order": "NCHW", "use_cudnn": False}
    train = model_helper.ModelHelper(name="lenet_digits_train", arg_scope=scope)
    init = train.param_init_net
    init.Proto().name = "lenet_digits_init"
    init.Proto().device_option.CopyFrom(core.DeviceOption(caffe2_pb2.PROTO_CPU, random_seed=SEED))
    init.CreateDB([], "train_reader", db=str(TRAIN_DB), db_type="minidb")
    init.CreateDB([], "test_reader", db=str(TEST_DB), db_type="minidb")

    data, label = train.net.TensorProtosDBInput(["train_reader"], ["data", "label"],
                                                batch_size=BATCH_SIZE)
    loss, accuracy = loss_and_accuracy(train, lenet(train, data, is_test=False), label)
    train.AddGradientOperators([loss])
    optimizer.build_sgd(train, base_learning_rate=BASE_LR, policy="step", stepsize=150,
                        gamma=0.3, momentum=0.9)
    train.net.AddExternalOutput(loss, accuracy)

    test = model_helper.ModelHelper(name="lenet_digits_test", arg_scope=scope, init_params=False)
    data, label = test.net.TensorProtosDBInput(["test_reader"], ["data", "label"],
                                               batch_size=test_size)
    loss, accuracy = loss_and_accuracy(test, lenet(test, data, is_test=True), label)
    test.net.AddExternalOutput(accuracy, loss)

    plan = core.Plan("lenet_digits")
    plan.AddStep(core.execution_step("init", init))
    plan.AddStep(core.execution_step("train", train.net, TRAIN_ITERS))
    plan.AddStep(core.execution_step("test", test.net))
    return netfile.Model(predict_net=test.net.Proto(), init_net=init.Proto(), plan=plan.Proto())


def main() -> int:
    test_size = write_data()
    netfile.save_model(build(test_size), REPO / FOLDER / "model.yaml")
    print(f"wrote {FOLDER}/train.minidb, test.minidb ({test_size} test images) and model.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
