"""One training iteration of Caffe2's CIFAR10_Part1 tutorial model (batch 100).

The tutorial's net (three 5x5 convs with max/average pooling, two FCs, softmax,
LabelCrossEntropy, SGD with momentum 0.9 and weight decay) fed a random batch of
100 3x32x32 images, so only the net is timed (not the lmdb reads). Prints ms per
iteration (the median of --repeat runs after one warm-up; wall clock, and the
process's CPU time, steadier on a loaded machine) and what the published counts
(Part1: 2000 iterations, Part2: 3000 more) would take at that rate. For run_all.py, `rows()`
times it beside the same model and update in PyTorch (same initial weights, the
first iteration's loss checked to agree), in interleaved rounds; no target.

    python benchmarks/cifar10_iteration.py [--repeat 5] [--batch 100]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pycaffe2 import brew, model_helper, optimizer, workspace

LAYERS = ["conv1", "conv2", "conv3", "fc1", "fc2"]

PUBLISHED_ITERATIONS = {"CIFAR10_Part1": 2000, "CIFAR10_Part2": 3000}


def tutorial_model(batch: int) -> model_helper.ModelHelper:
    """Add_Original_CIFAR10_Model and AddTrainingOperators, on fed blobs data and label."""
    model = model_helper.ModelHelper(name="train_net")
    conv1 = brew.conv(model, "data", "conv1", dim_in=3, dim_out=32, kernel=5, stride=1, pad=2)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=3, stride=2)
    relu1 = brew.relu(model, pool1, "relu1")
    conv2 = brew.conv(model, relu1, "conv2", dim_in=32, dim_out=32, kernel=5, stride=1, pad=2)
    relu2 = brew.relu(model, conv2, "relu2")
    pool2 = brew.average_pool(model, relu2, "pool2", kernel=3, stride=2)
    conv3 = brew.conv(model, pool2, "conv3", dim_in=32, dim_out=64, kernel=5, stride=1, pad=2)
    relu3 = brew.relu(model, conv3, "relu3")
    pool3 = brew.average_pool(model, relu3, "pool3", kernel=3, stride=2)
    fc1 = brew.fc(model, pool3, "fc1", dim_in=64 * 3 * 3, dim_out=64)
    fc2 = brew.fc(model, fc1, "fc2", dim_in=64, dim_out=10)
    softmax = brew.softmax(model, fc2, "softmax")
    xent = model.LabelCrossEntropy([softmax, "label"], "xent")
    loss = model.AveragedLoss(xent, "loss")
    model.AddGradientOperators([loss])
    optimizer.build_sgd(model, base_learning_rate=0.01, policy="fixed", momentum=0.9, weight_decay=0.004)
    return model


def torch_step(blob, rng_data, labels):
    """The same net and SGD (momentum 0.9, weight decay 0.004, lr 0.01) in PyTorch, from the
    weights `blob(name)` returns; a function running one iteration and returning its loss."""
    import torch
    from torch import nn
    model = nn.ModuleDict({
        "conv1": nn.Conv2d(3, 32, 5, padding=2), "conv2": nn.Conv2d(32, 32, 5, padding=2),
        "conv3": nn.Conv2d(32, 64, 5, padding=2), "fc1": nn.Linear(576, 64), "fc2": nn.Linear(64, 10)})
    with torch.no_grad():
        for name in LAYERS:
            model[name].weight.copy_(torch.from_numpy(blob(name + "_w")))
            model[name].bias.copy_(torch.from_numpy(blob(name + "_b")))
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.004)
    x, y = torch.from_numpy(rng_data), torch.from_numpy(labels.astype(np.int64))

    def step():
        x1 = torch.relu(torch.max_pool2d(model["conv1"](x), 3, 2))
        x2 = nn.functional.avg_pool2d(torch.relu(model["conv2"](x1)), 3, 2)
        x3 = nn.functional.avg_pool2d(torch.relu(model["conv3"](x2)), 3, 2)
        loss = nn.functional.cross_entropy(model["fc2"](model["fc1"](x3.flatten(1))), y)
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        return loss.item()
    return step


def rows(threads: int, repeat: int, quick: bool = False) -> list:
    from _common import Row, interleaved, thread_limit
    batch = 100
    rng = np.random.default_rng(0)
    data = rng.random((batch, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, batch).astype(np.int32)
    workspace.ResetWorkspace()
    workspace.FeedBlob("data", data)
    workspace.FeedBlob("label", labels)
    model = tutorial_model(batch)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net, overwrite=True)
    with thread_limit(threads):
        theirs = torch_step(workspace.FetchBlob, data, labels)
        first = theirs()
        workspace.RunNet(model.net)
        ours = float(workspace.FetchBlob("loss"))
        assert abs(ours - first) <= 1e-4 * max(1.0, abs(first)), f"first loss {ours} vs PyTorch {first}"
        seconds = interleaved({"ours": lambda: workspace.RunNet(model.net), "torch": theirs}, repeat)
    workspace.ResetWorkspace()
    return [Row("training", f"CIFAR-10 tutorial iteration, batch {batch}", "PyTorch",
                1000 * seconds["ours"], 1000 * seconds["torch"], threads=threads)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    workspace.ResetWorkspace()
    workspace.FeedBlob("data", rng.random((args.batch, 3, 32, 32), dtype=np.float32))
    workspace.FeedBlob("label", rng.integers(0, 10, args.batch).astype(np.int32))
    model = tutorial_model(args.batch)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net, overwrite=True)
    workspace.RunNet(model.net)  # warm-up
    times, cpu = [], []
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        workspace.RunNet(model.net)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    ms = 1000 * statistics.median(times)
    print(f"{ms:.0f} ms per iteration (batch {args.batch}, median of {args.repeat}; "
          f"min {1000 * min(times):.0f} ms; CPU time {1000 * statistics.median(cpu):.0f} ms, "
          f"all threads); loss {float(workspace.FetchBlob('loss')):.4f}")
    for name, count in PUBLISHED_ITERATIONS.items():
        print(f"{name}: {count} iterations ~ {count * ms / 60000:.1f} min of training")


if __name__ == "__main__":
    main()
