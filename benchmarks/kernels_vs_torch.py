"""CPU kernels at model sizes beside PyTorch CPU, in one process.

Each case runs one op in a created net (RunNet, so the executor's cost is
counted) and the PyTorch CPU equivalent on the same inputs, checks that the
results agree, and prints the best-of time of each and the ratio
pycaffe2 / PyTorch (lower is better; 1.0 is parity). PyTorch is needed only
here (`pip install torch`).

    python benchmarks/kernels_vs_torch.py [--repeat 10] [--only Conv]
"""
from __future__ import annotations

import argparse
import timeit

import numpy as np
import torch
import torch.nn.functional as F

from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def t(array):
    return torch.from_numpy(array)


# name -> (op type, inputs, args, number of outputs, torch function of the same inputs -> output 0)
CASES = {
    "Conv 3x3 ResNet block (8x64x56x56, 64 filters, pad 1)": (
        "Conv", [randn(8, 64, 56, 56), randn(64, 64, 3, 3), randn(64)], {"kernel": 3, "pad": 1}, 1,
        lambda x, w, b: F.conv2d(t(x), t(w), t(b), padding=1)),
    "Conv 1x1 (8x256x28x28, 128 filters)": (
        "Conv", [randn(8, 256, 28, 28), randn(128, 256, 1, 1), randn(128)], {"kernel": 1}, 1,
        lambda x, w, b: F.conv2d(t(x), t(w), t(b))),
    "Conv 7x7/2 stem (8x3x224x224, 64 filters, pad 3)": (
        "Conv", [randn(8, 3, 224, 224), randn(64, 3, 7, 7), randn(64)],
        {"kernel": 7, "stride": 2, "pad": 3}, 1,
        lambda x, w, b: F.conv2d(t(x), t(w), t(b), stride=2, padding=3)),
    "FC (256x4096 -> 1024)": (
        "FC", [randn(256, 4096), randn(1024, 4096), randn(1024)], {}, 1,
        lambda x, w, b: F.linear(t(x), t(w), t(b))),
    "SpatialBN train (16x64x56x56)": (
        "SpatialBN", [randn(16, 64, 56, 56), randn(64), randn(64), np.zeros(64, np.float32),
                      np.ones(64, np.float32)], {"is_test": 0, "epsilon": 1e-5}, 5,
        lambda x, s, b, m, v: F.batch_norm(t(x), t(m.copy()), t(v.copy()), t(s), t(b),
                                           training=True, momentum=0.1, eps=1e-5)),
    "SpatialBN test (16x64x56x56)": (
        "SpatialBN", [randn(16, 64, 56, 56), randn(64), randn(64), randn(64),
                      np.abs(randn(64)) + 0.5], {"is_test": 1, "epsilon": 1e-5}, 1,
        lambda x, s, b, m, v: F.batch_norm(t(x), t(m), t(v), t(s), t(b), training=False, eps=1e-5)),
    "Softmax (256x1000)": (
        "Softmax", [randn(256, 1000)], {}, 1, lambda x: F.softmax(t(x), dim=1)),
    "Softmax (64x32000)": (
        "Softmax", [randn(64, 32000)], {}, 1, lambda x: F.softmax(t(x), dim=1)),
}


def best(function, repeat: int) -> float:
    function()  # warm up
    return min(timeit.repeat(function, number=1, repeat=repeat))


def run_case(name, case, repeat) -> float:
    op_type, inputs, args, num_outputs, reference = case
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
        ours = best(lambda: workspace.RunNet("bench"), repeat)
        theirs = best(lambda: reference(*inputs), repeat)
        expected = reference(*inputs).numpy()
    got = workspace.FetchBlob("out0")
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, atol=2e-3 * scale, rtol=2e-3, err_msg=name)
    print(f"{name:<52} pycaffe2 {ours * 1e3:8.2f} ms   torch {theirs * 1e3:8.2f} ms   "
          f"ratio {ours / theirs:5.2f}")
    return ours / theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    for name, case in CASES.items():
        if args.only in name:
            run_case(name, case, args.repeat)


if __name__ == "__main__":
    main()
