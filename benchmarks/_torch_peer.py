"""The bundled models as PyTorch nn.Modules, for the benchmarks' PyTorch eager peer.

LeNet, SqueezeNet 1.1 and ResNet-50 written with torch.nn layers (no torchvision),
their layers named after the pycaffe2 blobs so that `load(blob)` copies the
weights a pycaffe2 init net made (`blob(name)` returns a torch tensor). Each
forward returns (logits, softmax); the intermediate activations are freed as
any nn.Module frees them. PyTorch is needed only here.
"""
from __future__ import annotations

import torch
from torch import nn

RESNET_STAGES = [(3, 64), (4, 128), (6, 256), (3, 512)]  # (blocks, bottleneck width), as the script builds
SQUEEZE_FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]


class Conv(nn.Conv2d):
    """A Conv2d with bias whose weights are the blobs `<name>_w` and `<name>_b`."""

    def __init__(self, name, dim_in, dim_out, kernel, stride=1, pad=0):
        super().__init__(dim_in, dim_out, kernel, stride, pad)
        self.blob = name

    def load(self, blob) -> None:
        self.weight.copy_(blob(self.blob + "_w"))
        self.bias.copy_(blob(self.blob + "_b"))


class Linear(nn.Linear):
    def __init__(self, name, dim_in, dim_out):
        super().__init__(dim_in, dim_out)
        self.blob = name

    load = Conv.load


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm in eval mode + optional ReLU; `name` is the pycaffe2 conv blob."""

    def __init__(self, name, dim_in, dim_out, kernel, stride=1, pad=0, relu=True):
        super().__init__()
        self.name, self.relu = name, relu
        self.conv = nn.Conv2d(dim_in, dim_out, kernel, stride, pad, bias=False)
        self.bn = nn.BatchNorm2d(dim_out, eps=1e-5)

    def load(self, blob) -> None:
        bn = self.name + "_bn"
        self.conv.weight.copy_(blob(self.name + "_w"))
        self.bn.weight.copy_(blob(bn + "_s"))
        self.bn.bias.copy_(blob(bn + "_b"))
        self.bn.running_mean.copy_(blob(bn + "_rm"))
        self.bn.running_var.copy_(blob(bn + "_riv"))  # Caffe2's "_riv" holds the variance

    def forward(self, x):
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.relu else x


class Loadable(nn.Module):
    def load(self, blob) -> Loadable:
        with torch.no_grad():
            for module in self.modules():
                if module is not self and hasattr(module, "load"):
                    module.load(blob)
        return self


class LeNet(Loadable):
    """nets/models/lenet: two 5x5 convs each with 2x2 max pooling (no ReLU), FC, ReLU, FC."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = Conv("conv1", 1, 20, 5), Conv("conv2", 20, 50, 5)
        self.fc3, self.pred = Linear("fc3", 800, 500), Linear("pred", 500, 10)

    def forward(self, x):
        x = torch.max_pool2d(self.conv1(x), 2, 2)
        x = torch.max_pool2d(self.conv2(x), 2, 2)
        logits = self.pred(torch.relu(self.fc3(x.flatten(1))))
        return logits, torch.softmax(logits, dim=1)


class Fire(nn.Module):
    def __init__(self, name, dim_in, squeeze, expand):
        super().__init__()
        self.squeeze = Conv(name + "/squeeze1x1", dim_in, squeeze, 1)
        self.expand1 = Conv(name + "/expand1x1", squeeze, expand, 1)
        self.expand3 = Conv(name + "/expand3x3", squeeze, expand, 3, pad=1)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1(x)), torch.relu(self.expand3(x))], 1)


class SqueezeNet(Loadable):
    """nets/models/squeezenet1_1: Caffe's ceil-mode pooling is ceil_mode=True (no padding)."""

    def __init__(self):
        super().__init__()
        pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        layers, dim = [Conv("conv1", 3, 64, 3, 2), nn.ReLU(), pool], 64
        for index, (squeeze, expand) in enumerate(SQUEEZE_FIRES, start=2):
            layers.append(Fire(f"fire{index}", dim, squeeze, expand))
            dim = 2 * expand
            if index in (3, 5):
                layers.append(pool)
        self.features = nn.Sequential(*layers)
        self.conv10 = Conv("conv10", dim, 1000, 1)

    def forward(self, x):
        logits = torch.relu(self.conv10(self.features(x))).mean(dim=(2, 3))
        return logits, torch.softmax(logits, dim=1)


class Bottleneck(nn.Module):
    def __init__(self, name, dim_in, width, stride):
        super().__init__()
        dim_out = 4 * width
        self.branch = nn.Sequential(
            ConvBN(name + "_branch2a", dim_in, width, 1),
            ConvBN(name + "_branch2b", width, width, 3, stride, 1),
            ConvBN(name + "_branch2c", width, dim_out, 1, relu=False))
        needs_projection = stride != 1 or dim_in != dim_out
        self.shortcut = (ConvBN(name + "_branch1", dim_in, dim_out, 1, stride, relu=False)
                         if needs_projection else nn.Identity())

    def forward(self, x):
        return torch.relu(self.branch(x) + self.shortcut(x))


class ResNet50(Loadable):
    def __init__(self, num_classes=1000):
        super().__init__()
        layers, dim = [ConvBN("conv1", 3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1)], 64
        for stage, (blocks, width) in enumerate(RESNET_STAGES, start=2):
            for block in range(blocks):
                stride = 2 if block == 0 and stage > 2 else 1
                layers.append(Bottleneck(f"res{stage}{'abcdef'[block]}", dim, width, stride))
                dim = 4 * width
        self.features = nn.Sequential(*layers)
        self.pred = Linear("pred", dim, num_classes)

    def forward(self, x):
        logits = self.pred(self.features(x).mean(dim=(2, 3)))
        return logits, torch.softmax(logits, dim=1)


MODELS = {"lenet": LeNet, "squeezenet1_1": SqueezeNet, "resnet50": ResNet50}
