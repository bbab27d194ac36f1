"""LeNet digits training per iteration beside PyTorch, with a profile per op type.

Ours: the example's train net (nets/examples/lenet_digits/model.yaml, as `pycaffe2
run` runs it) created in a workspace and run by RunNet, its TensorProtosDBInput
reading train.minidb included. Theirs: a torch.nn LeNet with the same layers
(conv 3x3 pad 1 (16), BatchNorm, ReLU, max pool 2, conv 3x3 pad 1 (32), BatchNorm,
ReLU, max pool 2, FC 64, ReLU, FC 10), the same initial weights, cross-entropy and
accuracy, SGD with Nesterov momentum 0.9 at lr 0.1 times 0.3 every 150 iterations,
fed the same batches of 64 (the minidb decoded once). Rounds of --iterations
iterations alternate between the two; each side's figure is the median round.

The profile runs the net op by op and reports ms per iteration per op type. The
Conv rows belong to the conv kernels, so the figures are also given without Conv
and ConvGradient, and without torch's convolution forward and backward (their
share measured by torch.profiler).

    python benchmarks/lenet_training.py [--repeat 15] [--iterations 20] [--profile] [--threads 1]
"""
from __future__ import annotations

import argparse
import collections
import copy
import time
from pathlib import Path

import numpy as np
from _common import Row, all_cores, format_table, interleaved, thread_limit

from pycaffe2 import netfile
from pycaffe2.db import DBReader, parse_tensor_protos, record_tensor
from pycaffe2.executor import Workspace

EXAMPLE = Path(__file__).resolve().parent.parent / "nets" / "examples" / "lenet_digits"
BATCH = 64
CONV_TYPES = ("Conv", "ConvGradient")


def _nets():
    """(init net, train net) of the example, its DB paths made absolute."""
    model = netfile.load_model(EXAMPLE / "model.yaml")
    nets = {net.name: copy.deepcopy(net) for net in model.plan.network}
    init = nets["lenet_digits_init"]
    for op in init.op:
        for arg in op.arg:
            if arg.name == "db":
                arg.s = str(EXAMPLE / Path(arg.s.decode()).name).encode()
    return init, nets["lenet_digits_train"]


def ours():
    """A workspace with the train net created and initialised, and a function running one iteration."""
    init, train = _nets()
    workspace = Workspace("lenet_training")
    workspace.RunNetOnce(init)
    workspace.CreateNet(train)
    return workspace, train.name


def digits():
    """train.minidb decoded: data [N, 1, 8, 8] float32, label [N] int32, in reading order."""
    reader = DBReader("minidb", str(EXAMPLE / "train.minidb"))
    data, labels = [], []
    for key, value in reader.records():
        x, y = (record_tensor(t, reader.source, key) for t in parse_tensor_protos(value, key).protos)
        data.append(x)
        labels.append(y)
    return np.stack(data), np.stack(labels)


def theirs(workspace: Workspace):
    """A function running one torch training iteration, from our initial weights."""
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16, eps=1e-5, momentum=0.1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32, eps=1e-5, momentum=0.1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    names = ["conv1_w", "conv1_b", "bn1_s", "bn1_b", "conv2_w", "conv2_b", "bn2_s", "bn2_b",
             "fc3_w", "fc3_b", "pred_w", "pred_b"]
    with torch.no_grad():
        for parameter, name in zip(model.parameters(), names):
            parameter.copy_(torch.from_numpy(np.array(workspace.FetchBlob(name))))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=150, gamma=0.3)
    loss_function = nn.CrossEntropyLoss()
    data, labels = digits()
    data, labels = torch.from_numpy(data), torch.from_numpy(labels.astype(np.int64))
    position = [0]

    def step():
        # the same batches as TensorProtosDBInput: the next 64 records, wrapping around
        index = torch.arange(position[0], position[0] + BATCH) % len(labels)
        position[0] = (position[0] + BATCH) % len(labels)
        x, y = data[index], labels[index]
        out = model(x)
        loss = loss_function(out, y)
        (out.argmax(1) == y).float().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        return loss.item()
    return step


def profile(workspace: Workspace, name: str, iterations: int) -> dict[str, float]:
    """ms per iteration of each op type, running the created net op by op."""
    compiled, blobs = workspace.nets[name], workspace.blobs
    seconds = collections.Counter()
    for _ in range(iterations):
        for step in compiled.steps:
            start = time.perf_counter()
            step.run(blobs, name)
            seconds[step.op_type] += time.perf_counter() - start
    return {op_type: 1e3 * total / iterations for op_type, total in seconds.most_common()}


def torch_conv_share(step, iterations: int) -> float:
    """The fraction of a torch iteration's CPU time spent in convolution forward and backward."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events
               if any(word in e.key.lower() for word in ("convolution", "conv2d", "slow_conv", "thnn_conv")))
    return conv / total if total else 0.0


def measure(threads: int, repeat: int, iterations: int = 20) -> dict:
    with thread_limit(threads):
        workspace, name = ours()
        step = theirs(workspace)

        def run_ours():
            for _ in range(iterations):
                workspace.RunNet(name)

        def run_theirs():
            for _ in range(iterations):
                step()
        times = interleaved({"ours": run_ours, "theirs": run_theirs}, repeat)
        ops = profile(workspace, name, 5 * iterations)
        share = torch_conv_share(step, 2 * iterations)
    ours_ms, theirs_ms = (1e3 * times[k] / iterations for k in ("ours", "theirs"))
    conv_fraction = sum(ops.get(t, 0.0) for t in CONV_TYPES) / sum(ops.values())
    return {"ours": ours_ms, "theirs": theirs_ms, "ops": ops, "our_conv": conv_fraction, "their_conv": share}


def _rows(m: dict, threads: int) -> list[Row]:
    case = f"LeNet digits training iteration (batch {BATCH})"
    return [Row("training", case, "PyTorch", m["ours"], m["theirs"], threads=threads, target=1.5),
            Row("training", case + ", Conv excluded on both sides", "PyTorch", m["ours"] * (1 - m["our_conv"]),
                m["theirs"] * (1 - m["their_conv"]), threads=threads)]


def rows(threads: int, repeat: int, iterations: int = 20) -> list[Row]:
    return _rows(measure(threads, repeat, iterations), threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=20, help="iterations per timed round")
    parser.add_argument("--profile", action="store_true", help="print ms per op type")
    parser.add_argument("--threads", type=int, nargs="*", help="thread counts (default: 1 and all cores)")
    args = parser.parse_args()
    table = []
    for threads in args.threads or sorted({1, all_cores()}):
        m = measure(threads, args.repeat, args.iterations)
        table += _rows(m, threads)
        if args.profile:
            total = sum(m["ops"].values())
            print(f"\n{threads} thread(s): ms per iteration by op type (op by op, {total:.3f} ms in all; "
                  f"torch's convolutions {100 * m['their_conv']:.0f}% of its CPU time)")
            for op_type, ms in m["ops"].items():
                print(f"  {op_type:<26} {ms:7.3f} ms  {100 * ms / total:5.1f}%")
    print()
    print(format_table(table))


if __name__ == "__main__":
    main()
