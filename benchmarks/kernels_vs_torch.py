"""CPU kernels at model sizes beside PyTorch CPU, in one process.

Forward cases run one op in a created net (RunNet, so the executor's cost is
counted) and the PyTorch CPU equivalent under no_grad on the same inputs.
Forward+backward cases run the op and its gradient op in one net (dY fed) and
the same function through torch autograd (forward, then backward of dY). Each
case checks that the results (Y, and dX) agree, then times both sides in
alternating rounds; the figures are medians, the ratio pycaffe2 / PyTorch
(lower is better; 1.0 is parity). PyTorch is needed only here. Conv has
its own table, conv_vs_torch.py.

    python benchmarks/kernels_vs_torch.py [--repeat 10] [--only Pool] [--threads 1]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from _common import Row, all_cores, format_table, interleaved, thread_limit

from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

rng = np.random.default_rng(0)
TARGET = 1.5  # issue 17's ceiling for pooling, Relu and Softmax, forward and backward


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def distinct(*shape):
    """Values without ties (integers times 2^-20, exact in float32): torch's max pooling
    gradient goes to one of tied maxima, Caffe2's to all of them."""
    return (rng.permutation(int(np.prod(shape))).astype(np.float32) * 2.0 ** -20).reshape(shape)


def t(array):
    return torch.from_numpy(array)


# name -> (op type, inputs, args, number of outputs, torch function of the same inputs -> output 0, target)
CASES = {
    "FC (256x4096 -> 1024)": (
        "FC", [randn(256, 4096), randn(1024, 4096), randn(1024)], {}, 1,
        lambda x, w, b: F.linear(t(x), t(w), t(b)), None),
    "SpatialBN train (16x64x56x56)": (
        "SpatialBN", [randn(16, 64, 56, 56), randn(64), randn(64), np.zeros(64, np.float32),
                      np.ones(64, np.float32)], {"is_test": 0, "epsilon": 1e-5}, 5,
        lambda x, s, b, m, v: F.batch_norm(t(x), t(m.copy()), t(v.copy()), t(s), t(b),
                                           training=True, momentum=0.1, eps=1e-5), None),
    "SpatialBN test (16x64x56x56)": (
        "SpatialBN", [randn(16, 64, 56, 56), randn(64), randn(64), randn(64),
                      np.abs(randn(64)) + 0.5], {"is_test": 1, "epsilon": 1e-5}, 1,
        lambda x, s, b, m, v: F.batch_norm(t(x), t(m), t(v), t(s), t(b), training=False, eps=1e-5), None),
    "Softmax (256x1000)": (
        "Softmax", [randn(256, 1000)], {}, 1, lambda x: F.softmax(t(x), dim=1), TARGET),
    "Softmax (64x32000)": (
        "Softmax", [randn(64, 32000)], {}, 1, lambda x: F.softmax(t(x), dim=1), TARGET),
}

# name -> (op type, X, args, gradient op inputs (of "X", "Y", "dY"), torch function of X)
BACKWARD_CASES = {
    "MaxPool 3x3/2 pad 1 ResNet stem (8x64x112x112)": (
        "MaxPool", distinct(8, 64, 112, 112), {"kernel": 3, "stride": 2, "pad": 1}, ("X", "Y", "dY"),
        lambda x: F.max_pool2d(x, 3, 2, 1)),
    "MaxPool 3x3/2 CIFAR (100x32x32x32)": (
        "MaxPool", distinct(100, 32, 32, 32), {"kernel": 3, "stride": 2}, ("X", "Y", "dY"),
        lambda x: F.max_pool2d(x, 3, 2)),
    "MaxPool 2x2/2 LeNet (64x16x8x8)": (
        "MaxPool", distinct(64, 16, 8, 8), {"kernel": 2, "stride": 2}, ("X", "Y", "dY"),
        lambda x: F.max_pool2d(x, 2, 2)),
    "MaxPool 2x2/2 (8x64x56x56)": (
        "MaxPool", distinct(8, 64, 56, 56), {"kernel": 2, "stride": 2}, ("X", "Y", "dY"),
        lambda x: F.max_pool2d(x, 2, 2)),
    "AveragePool global ResNet (8x2048x7x7)": (
        "AveragePool", randn(8, 2048, 7, 7), {"global_pooling": 1}, ("X", "Y", "dY"),
        lambda x: F.adaptive_avg_pool2d(x, 1)),
    "AveragePool 3x3/2 pad 1 (8x64x56x56)": (
        "AveragePool", randn(8, 64, 56, 56), {"kernel": 3, "stride": 2, "pad": 1}, ("X", "Y", "dY"),
        lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    "AveragePool 3x3/2 count_include_pad (8x64x56x56)": (
        "AveragePool", randn(8, 64, 56, 56), {"kernel": 3, "stride": 2, "pad": 1, "count_include_pad": 1},
        ("X", "Y", "dY"), lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=True)),
    "AveragePool 3x3/2 CIFAR (100x32x16x16)": (
        "AveragePool", randn(100, 32, 16, 16), {"kernel": 3, "stride": 2}, ("X", "Y", "dY"),
        lambda x: F.avg_pool2d(x, 3, 2)),
    "Relu (8x64x112x112)": ("Relu", randn(8, 64, 112, 112), {}, ("Y", "dY"), torch.relu),
    "Relu LeNet (64x16x8x8)": ("Relu", randn(64, 16, 8, 8), {}, ("Y", "dY"), torch.relu),
    "Softmax (256x1000)": ("Softmax", randn(256, 1000), {}, ("Y", "dY"), lambda x: F.softmax(x, dim=1)),
    "Softmax (64x32000)": ("Softmax", randn(64, 32000), {}, ("Y", "dY"), lambda x: F.softmax(x, dim=1)),
}


def _check(name, got, expected):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, atol=2e-3 * scale, rtol=2e-3, err_msg=name)


def forward_row(name, case, repeat, threads) -> Row:
    op_type, inputs, args, num_outputs, reference, target = case
    workspace = Workspace("bench")
    names = [f"in{i}" for i in range(len(inputs))]
    outputs = [f"out{i}" for i in range(num_outputs)]
    if op_type == "SpatialBN" and num_outputs == 5:
        outputs[1], outputs[2] = names[3], names[4]  # running stats in place, as Caffe2 enforces
    for blob, value in zip(names, inputs):
        workspace.FeedBlob(blob, value)
    net = caffe2_pb2.NetDef(name="bench", external_input=names)
    net.op.append(make_op(op_type, names, outputs, args))
    workspace.CreateNet(net)
    with torch.no_grad():
        times = interleaved({"ours": lambda: workspace.RunNet("bench"), "theirs": lambda: reference(*inputs)},
                            repeat)
        expected = reference(*inputs).numpy()
    _check(name, workspace.FetchBlob("out0"), expected)
    return Row("kernels", f"{name} forward", "PyTorch", 1e3 * times["ours"], 1e3 * times["theirs"],
               threads=threads, target=target)


def backward_row(name, case, repeat, threads) -> Row:
    op_type, x, args, gradient_inputs, function = case
    workspace = Workspace("bench")
    workspace.FeedBlob("X", x)
    with torch.no_grad():
        dy = np.ascontiguousarray(function(t(x)).numpy())
    dy = rng.standard_normal(dy.shape).astype(np.float32)
    workspace.FeedBlob("dY", dy)
    net = caffe2_pb2.NetDef(name="bench", external_input=["X", "dY"])
    net.op.extend([make_op(op_type, ["X"], ["Y"], args),
                   make_op(f"{op_type}Gradient", list(gradient_inputs), ["dX"], args)])
    workspace.CreateNet(net)
    tx, tdy = t(x).requires_grad_(), t(dy)

    def theirs():
        tx.grad = None
        function(tx).backward(tdy)
    times = interleaved({"ours": lambda: workspace.RunNet("bench"), "theirs": theirs}, repeat)
    _check(name, workspace.FetchBlob("dX"), tx.grad.numpy())
    return Row("kernels", f"{name} forward+backward", "PyTorch", 1e3 * times["ours"], 1e3 * times["theirs"],
               threads=threads, target=TARGET)


def rows(threads: int, repeat: int, only: str = "") -> list[Row]:
    """Every case (those whose name holds `only`) at `threads` threads, forward then forward+backward."""
    found = []
    with thread_limit(threads):
        for name, case in CASES.items():
            if only in name:
                found.append(forward_row(name, case, repeat, threads))
        for name, case in BACKWARD_CASES.items():
            if only in name:
                found.append(backward_row(name, case, repeat, threads))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--threads", type=int, nargs="*", help="thread counts (default: 1 and all cores)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}; numpy {np.__version__}")
    table = []
    for threads in args.threads or sorted({1, all_cores()}):
        table += rows(threads, args.repeat, args.only)
    print(format_table(table))


if __name__ == "__main__":
    main()
