"""Whole-model inference: pycaffe2 beside ONNX Runtime and PyTorch eager, same weights, same inputs.

LeNet, SqueezeNet 1.1 and ResNet-50 from nets/models/*/{init,predict}_net.pb at
batch 1, 8 and 32. Ours: the init net run once, the predict net created with the
inference transforms (`optimize=True`) and blobs freed after their last reader
(`free_blobs=True`), and RunNet.
ONNX Runtime: the same net and weights exported by pycaffe2.onnx.export (opset 17;
every graph optimization, intra-op threads = the thread count, sequential execution).
PyTorch: the nn.Modules of _torch_peer.py with the same weights, under no_grad.
Every case first checks that the three give the same logits and softmax, then
times them in interleaved rounds (medians). The issue's targets: within 2x ORT
for SqueezeNet and ResNet-50, 3x for LeNet; PyTorch is reported without one.
`squeezenet_caffe2` (not run by default) is Caffe2's own SqueezeNet predict net
from ../shared/caffe2_models with the bundled SqueezeNet's weights.

    python benchmarks/models_vs_ort.py [--models lenet,resnet50] [--batches 1,8]
        [--threads 1,2] [--repeat 5] [--profile]

--profile prints, instead of timings against the peers, where our time goes:
per op type (count, ms, share), the Python time per op outside NumPy, and
ONNX Runtime's own per-node profile of the same net beside it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import Row, format_table, interleaved, model_bench_args, thread_limit

from pycaffe2 import netfile
from pycaffe2.executor.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "nets" / "models"
SHARED_SQUEEZENET = ROOT.parent / "shared" / "caffe2_models" / "squeezenet_predict_only" / "squeeze_predict_net.pb"
# name: (label, input CHW, the ceiling vs ORT, the folder of its init net and its torch module)
SPECS = {
    "lenet": ("LeNet", (1, 28, 28), 3.0, "lenet"),
    "squeezenet1_1": ("SqueezeNet 1.1", (3, 224, 224), 2.0, "squeezenet1_1"),
    "resnet50": ("ResNet-50", (3, 224, 224), 2.0, "resnet50"),
    "squeezenet_caffe2": ("SqueezeNet (Caffe2's net)", (3, 224, 224), 2.0, "squeezenet1_1"),
}
DEFAULT_MODELS = ("lenet", "squeezenet1_1", "resnet50")
BATCHES = (1, 8, 32)
QUICK_BATCHES = {"lenet": (1, 32), "squeezenet1_1": (1, 8), "resnet50": (1,), "squeezenet_caffe2": (1,)}


def create_net(ws: Workspace, net, keep=()) -> str:
    """CreateNet as inference at its best (as ONNX Runtime runs with every graph optimization):
    the inference transforms applied, blobs freed after their last reader; says so."""
    ws.CreateNet(net, overwrite=True, free_blobs=True, keep=tuple(keep), optimize=True)
    return "optimized, blobs freed"


def load_model(name: str):
    """(init NetDef, predict NetDef) of model `name`."""
    folder = MODELS / SPECS[name][3]
    predict = SHARED_SQUEEZENET if name == "squeezenet_caffe2" else folder / "predict_net.pb"
    net = netfile.load_net(predict)
    net.name = net.name or name  # Caffe2's own file has none, and CreateNet wants one
    return netfile.load_net(folder / "init_net.pb"), net


class Case:
    """One model at one batch, ready to run three ways on the same input."""

    def __init__(self, name: str, batch: int, threads: int):
        import torch
        from _ort import session
        from _torch_peer import MODELS as TORCH_MODELS

        from pycaffe2.onnx.export import export_model
        self.name, self.batch = name, batch
        init, self.net = load_model(name)
        self.ws = Workspace()
        self.ws.RunNetOnce(init)
        weights = {blob: self.ws.FetchBlob(blob) for blob in self.ws.Blobs()}
        softmax = self.net.op[-1]
        assert softmax.type == "Softmax", f"{name}: the last op is {softmax.type}, not Softmax"
        self.outputs = [softmax.input[0], softmax.output[0]]  # logits and probabilities
        (self.input,) = [b for b in self.net.external_input if b not in weights]
        self.data = np.random.default_rng(0).standard_normal((batch, *SPECS[name][1])).astype(np.float32)
        self.ws.FeedBlob(self.input, self.data)
        self.onnx = export_model(self.net, weights, inputs={self.input: self.data}, outputs=self.outputs)
        self.ort = session(self.onnx, threads)
        self.torch = TORCH_MODELS[SPECS[name][3]]().eval().load(lambda blob: torch.from_numpy(weights[blob]))
        self.torch_input = torch.from_numpy(self.data)
        self.mode = create_net(self.ws, self.net, keep=self.outputs)

    def ours(self):
        self.ws.RunNet(self.net.name)
        return [self.ws.blobs[blob] for blob in self.outputs]

    def onnxruntime(self):
        return self.ort.run(None, {self.input: self.data})

    def pytorch(self):
        import torch
        with torch.no_grad():
            return [t.numpy() for t in self.torch(self.torch_input)]

    def check(self) -> None:
        """The three agree on logits (relative to their largest) and softmax."""
        ours = [np.reshape(a, (self.batch, -1)) for a in self.ours()]
        for peer, theirs in (("ONNX Runtime", self.onnxruntime()), ("PyTorch", self.pytorch())):
            theirs = [np.reshape(a, (self.batch, -1)) for a in theirs]
            scale = float(np.abs(theirs[0]).max()) or 1.0
            np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-3, atol=1e-3 * scale,
                                       err_msg=f"{self.name} batch {self.batch}: logits vs {peer}")
            np.testing.assert_allclose(ours[1], theirs[1], atol=1e-3,
                                       err_msg=f"{self.name} batch {self.batch}: softmax vs {peer}")


def model_rows(name: str, batch: int, threads: int, repeat: int) -> list[Row]:
    label, _, target, _ = SPECS[name]
    with thread_limit(threads):
        case = Case(name, batch, threads)
        case.check()
        seconds = interleaved({"ours": case.ours, "ort": case.onnxruntime, "torch": case.pytorch}, repeat)
    ms = {key: 1000 * value for key, value in seconds.items()}
    title = f"{label} batch {batch}" + (" (blobs freed)" if case.mode == "blobs freed" else "")
    return [Row("models", title, "ONNX Runtime", ms["ours"], ms["ort"], threads=threads, target=target),
            Row("models", title, "PyTorch", ms["ours"], ms["torch"], threads=threads)]


def rows(threads: int, repeat: int, quick: bool = False, models=DEFAULT_MODELS, batches=BATCHES) -> list[Row]:
    found = []
    for name in models:
        for batch in (QUICK_BATCHES[name] if quick else batches):
            found += model_rows(name, batch, threads, repeat)
    return found


def main() -> None:
    models, batches, threads, repeat, profile = model_bench_args(__doc__, SPECS, DEFAULT_MODELS, BATCHES,
                                                                 "where our time goes, per op type")
    if profile:
        from _profile import profile
        for name in models:
            for batch in batches:
                for count in threads:
                    with thread_limit(count):
                        print(profile(Case(name, batch, count), count, repeat))
        return
    table = [row for count in threads for row in rows(count, repeat, models=models, batches=batches)]
    print(format_table(table))


if __name__ == "__main__":
    main()
