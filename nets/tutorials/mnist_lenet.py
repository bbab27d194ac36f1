"""Caffe2's MNIST tutorial flow (LeNet trained with brew and optimizer), in the
Caffe2 spelling (only the imports differ from nets/tutorials/mnist_lenet.py).

The tutorial reads MNIST from an LMDB; to stay self-contained this script draws
MNIST-shaped digits instead: 28x28 seven-segment strokes of the digits 0-9,
shifted, thickened and dimmed at random, with noise (fixed seed). Each batch is
fed with FeedBlob("data") / FeedBlob("label"). The train model and the test
model (init_params=False) share the parameters; the train loop runs the net
from Python and reads the loss and accuracy blobs after each step.
"""
import numpy as np

from pycaffe2 import brew, core, model_helper, optimizer, workspace
from pycaffe2.proto import caffe2_pb2

BATCH_SIZE = 64
TRAIN_ITERS = 80
TEST_ITERS = 10

# ---- MNIST-shaped synthetic digits --------------------------------------------------

# Seven segments (row0, col0, row1, col1) of a glyph 16 rows high, 10 columns wide.
SEGMENTS = {"a": (0, 0, 0, 9), "b": (0, 9, 7, 9), "c": (8, 9, 15, 9), "d": (15, 0, 15, 9),
            "e": (8, 0, 15, 0), "f": (0, 0, 7, 0), "g": (7, 0, 7, 9)}
DIGITS = ["abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"]


def make_digits(rng, n):
    """n float32 images [n, 1, 28, 28] in [0, 1) (as the tutorial's uint8 / 256) and int32 labels."""
    labels = rng.randint(0, 10, size=n).astype(np.int32)
    images = np.zeros((n, 28, 28), dtype=np.float32)
    for img, label in zip(images, labels):
        top, left = rng.randint(2, 11), rng.randint(5, 14)
        width = rng.randint(1, 3)
        for seg in DIGITS[label]:
            r0, c0, r1, c1 = SEGMENTS[seg]
            img[top + r0:top + r1 + width, left + c0:left + c1 + width] = rng.uniform(0.6, 1.0)
    images += rng.normal(0.0, 0.15, size=images.shape).astype(np.float32)
    images = np.clip(images, 0.0, 255.0 / 256.0)
    return images[:, None, :, :], labels


# ---- the model, as in the tutorial ----------------------------------------------------

def AddLeNetModel(model, data):
    """conv 5x5 (20) -> max pool -> conv 5x5 (50) -> max pool -> fc 500 -> relu -> fc 10 -> softmax."""
    conv1 = brew.conv(model, data, "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
    conv2 = brew.conv(model, pool1, "conv2", dim_in=20, dim_out=50, kernel=5)
    pool2 = brew.max_pool(model, conv2, "pool2", kernel=2, stride=2)
    fc3 = brew.fc(model, pool2, "fc3", dim_in=50 * 4 * 4, dim_out=500)
    fc3 = brew.relu(model, fc3, fc3)
    pred = brew.fc(model, fc3, "pred", 500, 10)
    softmax = brew.softmax(model, pred, "softmax")
    return softmax


def AddAccuracy(model, softmax, label):
    accuracy = brew.accuracy(model, [softmax, label], "accuracy")
    return accuracy


def AddTrainingOperators(model, softmax, label):
    xent = model.LabelCrossEntropy([softmax, label], "xent")
    loss = model.AveragedLoss(xent, "loss")
    AddAccuracy(model, softmax, label)
    model.AddGradientOperators([loss])
    optimizer.build_sgd(model, base_learning_rate=0.1, policy="step", stepsize=1, gamma=0.999)


# A fixed random_seed on every op makes the XavierFill initial weights repeatable.
device_opts = core.DeviceOption(caffe2_pb2.CPU, 0, random_seed=1701)
arg_scope = {"order": "NCHW"}
with core.DeviceScope(device_opts):
    train_model = model_helper.ModelHelper(name="mnist_train", arg_scope=arg_scope)
    softmax = AddLeNetModel(train_model, "data")
    AddTrainingOperators(train_model, softmax, "label")

    test_model = model_helper.ModelHelper(name="mnist_test", arg_scope=arg_scope, init_params=False)
    softmax = AddLeNetModel(test_model, "data")
    AddAccuracy(test_model, softmax, "label")

# ---- training -------------------------------------------------------------------------

rng = np.random.RandomState(1701)
train_images, train_labels = make_digits(rng, BATCH_SIZE * TRAIN_ITERS)
test_images, test_labels = make_digits(rng, BATCH_SIZE * TEST_ITERS)

workspace.FeedBlob("data", train_images[:BATCH_SIZE])
workspace.FeedBlob("label", train_labels[:BATCH_SIZE])
workspace.RunNetOnce(train_model.param_init_net)
workspace.CreateNet(train_model.net, overwrite=True)

LOSSES = np.zeros(TRAIN_ITERS)
TRAIN_ACCURACY = np.zeros(TRAIN_ITERS)
for i in range(TRAIN_ITERS):
    batch = slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE)
    workspace.FeedBlob("data", train_images[batch])
    workspace.FeedBlob("label", train_labels[batch])
    workspace.RunNet(train_model.net)
    LOSSES[i] = workspace.FetchBlob("loss")
    TRAIN_ACCURACY[i] = workspace.FetchBlob("accuracy")
    if i % 10 == 0 or i == TRAIN_ITERS - 1:
        print(f"iter {i:3d}  loss {LOSSES[i]:.4f}  accuracy {TRAIN_ACCURACY[i]:.3f}")

# ---- testing with the shared parameters ----------------------------------------------

workspace.RunNetOnce(test_model.param_init_net)
workspace.CreateNet(test_model.net, overwrite=True)
test_accuracy = np.zeros(TEST_ITERS)
for i in range(TEST_ITERS):
    batch = slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE)
    workspace.FeedBlob("data", test_images[batch])
    workspace.FeedBlob("label", test_labels[batch])
    workspace.RunNet(test_model.net.Proto().name)
    test_accuracy[i] = workspace.FetchBlob("accuracy")
TEST_ACCURACY = float(test_accuracy.mean())
print(f"test accuracy: {TEST_ACCURACY:.3f} (chance 0.1)")
