"""Conv forward and backward beside PyTorch CPU, one process, every shape issue 17 names.

Each case runs as a created net: Conv (forward) or ConvGradient (dfilter, dbias,
dX from X, filter and dY), through RunNet so the executor's cost is counted, and
beside it torch.nn.functional.conv2d (forward) and aten.convolution_backward
(what autograd runs for its backward: dX, dW, db from dY). Rounds alternate
between the two; the results are checked against each other before timing. Prints a table
of medians and the ratio pycaffe2 / PyTorch (target <= 1.5) at 1 thread and at
all cores. PyTorch is needed only here.

    python benchmarks/conv_vs_torch.py [--repeat 7] [--only 3x3] [--threads 1]
"""
from __future__ import annotations

import argparse

import numpy as np

try:  # run as a script, benchmarks/ is on the path; imported by run_all, maybe as a package
    from _common import Row, all_cores, format_table, interleaved, thread_limit
except ImportError:
    from benchmarks._common import Row, all_cores, format_table, interleaved, thread_limit

TARGET = 1.5

# name -> (X shape NCHW, M, kernel, args)
CASES = {
    "1x1 8x256x28x28 -> 128": ((8, 256, 28, 28), 128, 1, {}),
    "3x3 ResNet 8x64x56x56 -> 64": ((8, 64, 56, 56), 64, 3, {"pad": 1}),
    "3x3 32x256x14x14 -> 256": ((32, 256, 14, 14), 256, 3, {"pad": 1}),
    "3x3 ResNet batch 1 1x512x7x7 -> 512": ((1, 512, 7, 7), 512, 3, {"pad": 1}),  # few tiles: im2col
    "5x5 32x3x32x32 -> 32": ((32, 3, 32, 32), 32, 5, {"pad": 2}),
    "5x5 LeNet conv1 64x1x28x28 -> 20": ((64, 1, 28, 28), 20, 5, {}),
    "7x7/2 stem 8x3x224x224 -> 64": ((8, 3, 224, 224), 64, 7, {"stride": 2, "pad": 3}),
    "3x3 group 4 8x128x28x28 -> 128": ((8, 128, 28, 28), 128, 3, {"pad": 1, "group": 4}),
    "3x3 depthwise 32x128x28x28": ((32, 128, 28, 28), 128, 3, {"pad": 1, "group": 128}),
    # NHWC: ours in that order, torch on channels_last tensors (correctness first, not a target)
    "3x3 ResNet NHWC 8x56x56x64 -> 64": ((8, 64, 56, 56), 64, 3, {"pad": 1, "order": "NHWC"}),
}


def case_inputs(x_shape, m, kernel, args, rng):
    group = args.get("group", 1)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal((m, x_shape[1] // group, kernel, kernel), dtype=np.float32)
    w /= np.sqrt(w[0].size, dtype=np.float32)
    return x, w, rng.standard_normal(m, dtype=np.float32)


def one_op_net(workspace, name, op_type, inputs: dict, outputs, args):
    from pycaffe2.proto import caffe2_pb2
    from pycaffe2.testing import make_op
    for blob, value in inputs.items():
        workspace.FeedBlob(blob, value)
    net = caffe2_pb2.NetDef(name=name, external_input=list(inputs))
    net.op.append(make_op(op_type, list(inputs), outputs, args))
    workspace.CreateNet(net)
    return lambda: workspace.RunNet(name)


def torch_conv(x, w, b, args):
    import torch.nn.functional as F
    return F.conv2d(x, w, b, stride=args.get("stride", 1), padding=args.get("pad", 0),
                    groups=args.get("group", 1))


def check(got, expected, what):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, atol=1e-3 * scale, rtol=1e-3, err_msg=what)


def nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1)) if a.ndim == 4 else a


def case_rows(name, case, threads, repeat, rng) -> list[Row]:
    import torch

    from pycaffe2.executor import Workspace
    x_shape, m, kernel, args = case
    x, w, b = case_inputs(x_shape, m, kernel, args, rng)
    order = nhwc if args.get("order") == "NHWC" else (lambda a: a)
    back = (lambda a: np.moveaxis(a, -1, 1) if a.ndim == 4 else a) if args.get("order") == "NHWC" else (lambda a: a)
    layout = torch.channels_last if args.get("order") == "NHWC" else torch.contiguous_format
    workspace = Workspace("conv_bench")
    forward = one_op_net(workspace, "fwd", "Conv", {"X": order(x), "W": order(w), "b": b}, ["Y"], args)
    tx, tw = (torch.from_numpy(a).contiguous(memory_format=layout) for a in (x, w))
    tb = torch.from_numpy(b)
    forward()
    y = back(workspace.FetchBlob("Y"))
    with torch.no_grad():
        check(y, torch_conv(tx, tw, tb, args).numpy(), name)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    backward = one_op_net(workspace, "bwd", "ConvGradient", {"X": order(x), "W": order(w), "dY": order(dy)},
                          ["dW", "db", "dX"], args)
    tdy = torch.from_numpy(dy).contiguous(memory_format=layout)
    stride, pad, group = args.get("stride", 1), args.get("pad", 0), args.get("group", 1)

    def torch_forward():
        with torch.no_grad():
            return torch_conv(tx, tw, tb, args)

    def torch_backward():
        return torch.ops.aten.convolution_backward(
            tdy, tx, tw, [m], [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], group, [True, True, True])

    backward()
    for blob, expected in zip(("dX", "dW", "db"), torch_backward()):
        check(back(workspace.FetchBlob(blob)), expected.numpy(), f"{name} {blob}")
    seconds = interleaved({"ours_fwd": forward, "torch_fwd": torch_forward,
                           "ours_bwd": backward, "torch_bwd": torch_backward}, repeat)
    target = None if args.get("order") == "NHWC" else TARGET
    return [Row("kernels", f"Conv {name} forward", "PyTorch", seconds["ours_fwd"] * 1e3,
                seconds["torch_fwd"] * 1e3, threads=threads, target=target),
            Row("kernels", f"Conv {name} backward", "PyTorch", seconds["ours_bwd"] * 1e3,
                seconds["torch_bwd"] * 1e3, threads=threads, target=target)]


def rows(threads: int, repeat: int, only: str = "") -> list[Row]:
    rng = np.random.default_rng(0)
    result = []
    with thread_limit(threads):
        for name, case in CASES.items():
            if only in name:
                result += case_rows(name, case, threads, repeat, rng)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--threads", type=int, default=0, help="one thread count (default: 1 and all cores)")
    args = parser.parse_args()
    counts = [args.threads] if args.threads else sorted({1, all_cores()})
    table = []
    for threads in counts:
        table += rows(threads, args.repeat, args.only)
    print(format_table(table))


if __name__ == "__main__":
    main()
