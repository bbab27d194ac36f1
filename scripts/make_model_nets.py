"""Build the model pairs under nets/models with brew, as a Caffe2 user would.

Three architectures in test mode (SpatialBN and Dropout with is_test=1), each
saved as `init_net.pb` + `predict_net.pb`:

    lenet/           Caffe2's MNIST LeNet; "data" [N, 1, 28, 28] -> "softmax" [N, 10]
    squeezenet1_1/   SqueezeNet 1.1; "data" [N, 3, 224, 224] -> "softmax" [N, 1000, 1, 1]
    resnet50/        ResNet-50; "data" [N, 3, 224, 224] -> "softmax" [N, 1000]

The weights are random: the init nets hold only the fill ops brew makes
(XavierFill, MSRAFill, ConstantFill), so the files are a few KB, and the init
net's device_option carries a fixed random_seed so every run fills the same
values. As in Caffe2, the seed reaches every op, so each filler starts from the
same stream (params of the same shape and filler get the same values).
The build is deterministic: running it again rewrites byte-identical files.

    python scripts/make_model_nets.py [--out nets/models]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pycaffe2 import brew, core, model_helper, netfile
from pycaffe2.proto import caffe2_pb2

ROOT = Path(__file__).resolve().parent.parent
SEED = 1701
ARG_SCOPE = {"order": "NCHW", "use_cudnn": False}


# ---- LeNet (Caffe2's MNIST tutorial) --------------------------------------------------

def add_lenet(model, data):
    """conv 20 5x5, pool, conv 50 5x5, pool, fc 500, relu, fc 10, softmax."""
    conv1 = brew.conv(model, data, "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
    conv2 = brew.conv(model, pool1, "conv2", dim_in=20, dim_out=50, kernel=5)
    pool2 = brew.max_pool(model, conv2, "pool2", kernel=2, stride=2)
    fc3 = brew.fc(model, pool2, "fc3", dim_in=50 * 4 * 4, dim_out=500)
    relu = brew.relu(model, fc3, fc3)
    pred = brew.fc(model, relu, "pred", 500, 10)
    return brew.softmax(model, pred, "softmax")


# ---- SqueezeNet 1.1 ---------------------------------------------------------------------

def add_fire(model, blob_in, name, dim_in, squeeze, expand):
    """A fire module: squeeze 1x1, then expand 1x1 and 3x3 side by side, concatenated."""
    with core.NameScope(name):
        s = brew.conv(model, blob_in, "squeeze1x1", dim_in, squeeze, kernel=1)
        s = brew.relu(model, s, s)
        e1 = brew.conv(model, s, "expand1x1", squeeze, expand, kernel=1)
        e1 = brew.relu(model, e1, e1)
        e3 = brew.conv(model, s, "expand3x3", squeeze, expand, kernel=3, pad=1)
        e3 = brew.relu(model, e3, e3)
        return brew.concat(model, [e1, e3], "concat")


def pool3x3(model, blob_in, name):
    """Caffe's ceil-mode 3x3/2 max pool (legacy_pad=3), as Caffe2's converted SqueezeNet has it."""
    return brew.max_pool(model, blob_in, name, kernel=3, stride=2, legacy_pad=3)


def add_squeezenet(model, data):
    conv1 = brew.conv(model, data, "conv1", 3, 64, kernel=3, stride=2)
    blob = pool3x3(model, brew.relu(model, conv1, conv1), "pool1")
    blob = add_fire(model, blob, "fire2", 64, 16, 64)
    blob = add_fire(model, blob, "fire3", 128, 16, 64)
    blob = pool3x3(model, blob, "pool3")
    blob = add_fire(model, blob, "fire4", 128, 32, 128)
    blob = add_fire(model, blob, "fire5", 256, 32, 128)
    blob = pool3x3(model, blob, "pool5")
    blob = add_fire(model, blob, "fire6", 256, 48, 192)
    blob = add_fire(model, blob, "fire7", 384, 48, 192)
    blob = add_fire(model, blob, "fire8", 384, 64, 256)
    blob = add_fire(model, blob, "fire9", 512, 64, 256)
    blob = brew.dropout(model, blob, blob, ratio=0.5, is_test=1)
    conv10 = brew.conv(model, blob, "conv10", 512, 1000, kernel=1)
    conv10 = brew.relu(model, conv10, conv10)
    pool10 = brew.average_pool(model, conv10, "pool10", global_pooling=1)
    return brew.softmax(model, pool10, "softmax")


# ---- ResNet-50 --------------------------------------------------------------------------

RESNET50_STAGES = [(3, 64), (4, 128), (6, 256), (3, 512)]  # (blocks, bottleneck width)


def conv_bn(model, blob_in, name, dim_in, dim_out, kernel, stride=1, pad=0, relu=True):
    """Conv without bias (MSRAFill), SpatialBN in test mode, then an optional in-place Relu."""
    conv = brew.conv(model, blob_in, name, dim_in, dim_out, kernel=kernel, stride=stride,
                     pad=pad, no_bias=1, weight_init=("MSRAFill", {}))
    bn = brew.spatial_bn(model, conv, name + "_bn", dim_out, epsilon=1e-5, is_test=1)
    return brew.relu(model, bn, bn) if relu else bn


def add_bottleneck(model, blob_in, name, dim_in, width, stride):
    """1x1 (width), 3x3 (width, stride), 1x1 (4 width), added to the shortcut, then Relu.
    The shortcut is a 1x1 projection with SpatialBN wherever the shape changes."""
    dim_out = 4 * width
    branch = conv_bn(model, blob_in, name + "_branch2a", dim_in, width, 1)
    branch = conv_bn(model, branch, name + "_branch2b", width, width, 3, stride=stride, pad=1)
    branch = conv_bn(model, branch, name + "_branch2c", width, dim_out, 1, relu=False)
    shortcut = blob_in
    if stride != 1 or dim_in != dim_out:
        shortcut = conv_bn(model, blob_in, name + "_branch1", dim_in, dim_out, 1, stride=stride,
                           relu=False)
    total = brew.sum(model, [branch, shortcut], name + "_sum")
    return brew.relu(model, total, total), dim_out


def add_resnet50(model, data):
    blob = conv_bn(model, data, "conv1", 3, 64, 7, stride=2, pad=3)
    blob = brew.max_pool(model, blob, "pool1", kernel=3, stride=2, pad=1)
    dim = 64
    for stage, (blocks, width) in enumerate(RESNET50_STAGES, start=2):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 2 else 1
            blob, dim = add_bottleneck(model, blob, f"res{stage}{'abcdef'[block]}", dim, width, stride)
    pool = brew.average_pool(model, blob, "pool5", global_pooling=1)
    pred = brew.fc(model, pool, "pred", dim, 1000)
    return brew.softmax(model, pred, "softmax")


# ---- building and saving ----------------------------------------------------------------

MODELS = {"lenet": add_lenet, "squeezenet1_1": add_squeezenet, "resnet50": add_resnet50}


def build(name: str) -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    """(init_net, predict_net) of model `name`: params listed as the init net's outputs and,
    after "data", as the predict net's inputs; "softmax" is the predict net's output."""
    model = model_helper.ModelHelper(name=name, arg_scope=ARG_SCOPE)
    softmax = MODELS[name](model, "data")
    init_net, predict_net = model.param_init_net.Proto(), model.net.Proto()
    params = [op.output[0] for op in init_net.op]  # model.GetAllParams(""), in creation order
    assert sorted(params) == sorted(map(str, model.GetAllParams("")))
    init_net.device_option.CopyFrom(core.DeviceOption(caffe2_pb2.PROTO_CPU, 0, random_seed=SEED))
    init_net.external_output.extend(params)
    predict_net.external_input.extend(["data", *params])
    predict_net.external_output.append(str(softmax))
    return init_net, predict_net


def save(name: str, out: Path) -> Path:
    init_net, predict_net = build(name)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    netfile.save_net(init_net, folder / "init_net.pb")
    netfile.save_net(predict_net, folder / "predict_net.pb")
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "nets" / "models")
    args = parser.parse_args(argv)
    for name in MODELS:
        folder = save(name, args.out)
        sizes = ", ".join(f"{f.name} {f.stat().st_size} B" for f in sorted(folder.glob("*.pb")))
        print(f"{folder}: {sizes}")


if __name__ == "__main__":
    main()
