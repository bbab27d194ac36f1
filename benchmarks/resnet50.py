"""ResNet-50 forward from its .pb pair beside the same network in PyTorch CPU.

Runs nets/models/resnet50/init_net.pb once in a pycaffe2 workspace, copies every
initialized blob into a PyTorch model of the same architecture written here with
torch.nn layers (no torchvision), runs both on one random batch, checks that the
logits ("pred") and the softmax agree, and prints the best-of time of each and
the ratio pycaffe2 / PyTorch (lower is better). Rebuild the .pb files with
scripts/make_model_nets.py. PyTorch is needed only here.

    python benchmarks/resnet50.py [--batch 8] [--repeat 3]
"""
from __future__ import annotations

import argparse
import timeit
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pycaffe2 import netfile, workspace

MODEL = Path(__file__).resolve().parent.parent / "nets" / "models" / "resnet50"
STAGES = [(3, 64), (4, 128), (6, 256), (3, 512)]  # (blocks, bottleneck width), as the script builds


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


class ResNet50(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        layers, dim = [ConvBN("conv1", 3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1)], 64
        for stage, (blocks, width) in enumerate(STAGES, start=2):
            for block in range(blocks):
                stride = 2 if block == 0 and stage > 2 else 1
                layers.append(Bottleneck(f"res{stage}{'abcdef'[block]}", dim, width, stride))
                dim = 4 * width
        self.features = nn.Sequential(*layers)
        self.pred = nn.Linear(dim, num_classes)

    def load(self, blob) -> None:
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, ConvBN):
                    module.load(blob)
            self.pred.weight.copy_(blob("pred_w"))
            self.pred.bias.copy_(blob("pred_b"))

    def forward(self, x):
        x = self.features(x).mean(dim=(2, 3))
        logits = self.pred(x)
        return logits, torch.softmax(logits, dim=1)


def best(function, repeat: int) -> float:
    function()  # warm up
    return min(timeit.repeat(function, number=1, repeat=repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")

    init_net = netfile.load_net(MODEL / "init_net.pb")
    predict_net = netfile.load_net(MODEL / "predict_net.pb")
    workspace.ResetWorkspace()
    workspace.RunNetOnce(init_net)
    data = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    workspace.FeedBlob("data", data)
    workspace.CreateNet(predict_net)

    model = ResNet50().eval()
    model.load(lambda name: torch.from_numpy(np.ascontiguousarray(workspace.FetchBlob(name))))
    with torch.no_grad():
        ours = best(lambda: workspace.RunNet(predict_net.name), args.repeat)
        theirs = best(lambda: model(torch.from_numpy(data)), args.repeat)
        logits, softmax = (t.numpy() for t in model(torch.from_numpy(data)))

    got = workspace.FetchBlob("pred")
    scale = float(np.abs(logits).max())
    np.testing.assert_allclose(got, logits, rtol=1e-3, atol=1e-3 * scale, err_msg="logits")
    np.testing.assert_allclose(workspace.FetchBlob("softmax"), softmax, atol=1e-3, err_msg="softmax")
    error = float(np.abs(got - logits).max()) / scale
    print(f"ResNet-50 forward, batch {args.batch}: outputs agree (max logit error {error:.1e} "
          f"of |logits| max {scale:.3g})")
    print(f"pycaffe2 {ours:7.3f} s   torch {theirs:7.3f} s   ratio {ours / theirs:5.2f}")


if __name__ == "__main__":
    main()
