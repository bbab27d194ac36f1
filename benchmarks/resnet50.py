"""ResNet-50 forward from its .pb pair beside the same network in PyTorch CPU.

Runs nets/models/resnet50/init_net.pb once in a pycaffe2 workspace, copies every
initialized blob into a PyTorch model of the same architecture written with
torch.nn layers (_torch_peer.py, no torchvision), runs both on one random batch, checks that the
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
from _torch_peer import ResNet50

from pycaffe2 import netfile, workspace

MODEL = Path(__file__).resolve().parent.parent / "nets" / "models" / "resnet50"


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
