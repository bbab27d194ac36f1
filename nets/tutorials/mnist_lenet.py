"""LeNet trained on MNIST-shaped digits with brew, model_helper and optimizer:
pycaffe2's own walk-through of the Caffe2 Python API for a convolutional net.

To stay self-contained it draws its digits instead of reading MNIST: 28x28
seven-segment strokes of the digits 0-9, shifted, thickened and dimmed at random,
with noise (fixed seed). Each batch is fed with FeedBlob("data") / FeedBlob("label").
The train model and the test model (init_params=False) share the parameters; the
train loop runs the net from Python and reads the loss and accuracy blobs after
each step.
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


# ---- the model ------------------------------------------------------------------------

def lenet(model, data):
    """LeNet's layers through brew: two 5x5 convolutions (20 then 50 maps), each followed
    by 2x2 max pooling, then a 500-unit hidden layer with ReLU and a 10-way softmax."""
    blob, channels = data, 1
    for index, maps in enumerate((20, 50), start=1):
        blob = brew.conv(model, blob, f"conv{index}", dim_in=channels, dim_out=maps, kernel=5)
        blob = brew.max_pool(model, blob, f"pool{index}", kernel=2, stride=2)
        channels = maps
    hidden = brew.relu(model, brew.fc(model, blob, "fc3", dim_in=50 * 4 * 4, dim_out=500), "fc3")
    return brew.softmax(model, brew.fc(model, hidden, "pred", 500, 10), "softmax")


def build(name, train: bool):
    """A model reading blobs `data` and `label` and writing `accuracy`; the training one
    also `loss`, its gradients and the SGD update. The test one makes no parameters: it
    reads the ones training left in the workspace."""
    model = model_helper.ModelHelper(name=name, arg_scope={"order": "NCHW"}, init_params=train)
    softmax = lenet(model, "data")
    brew.accuracy(model, [softmax, "label"], "accuracy")
    if train:
        loss = model.AveragedLoss(model.LabelCrossEntropy([softmax, "label"], "xent"), "loss")
        model.AddGradientOperators([loss])
        optimizer.build_sgd(model, base_learning_rate=0.1, policy="step", stepsize=1, gamma=0.999)
    return model


# A fixed random_seed on every op makes the XavierFill initial weights repeatable.
with core.DeviceScope(core.DeviceOption(caffe2_pb2.CPU, 0, random_seed=1701)):
    train_model = build("mnist_train", train=True)
    test_model = build("mnist_test", train=False)

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
