"""ONNX models through pycaffe2's backend (`pycaffe2.onnx.backend`) beside ONNX Runtime.

The models: ONNX's "light" real models shipped in the onnx package (Caffe2's model-zoo
nets converted to ONNX: AlexNet, DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet,
SqueezeNet, VGG-19, ZFNet-512; their weights made by ConstantOfShape nodes), and the
bundled nets/models exported to ONNX by `pycaffe2.onnx.export` when it is present.
For each model at each batch it checks that pycaffe2 and ONNX Runtime give the same
outputs (the largest difference relative to ORT's largest output; a row's case says
so when that exceeds 1e-4), then times, in interleaved rounds (medians):
- prepare: `backend.prepare(model)` (the translation) beside creating ORT's
  InferenceSession from the serialized model (every graph optimization); one thread;
- run: `rep.run([x])` beside `session.run`, pycaffe2 inside
  `pycaffe2.executor.num_threads(t)`, ORT with t intra-op threads;
- optimized: `rep.init_net` run once and `rep.predict_net` (whose ops on constants
  alone, ConstantOfShape's weights say, the translation has already moved into the
  init net) through `CreateNet(optimize=True, free_blobs=True)`
  (pycaffe2.transforms.optimize_inference: SpatialBN folded into Conv, Dropout
  dropped, ops in place); a run is FeedBlob, RunNet, FetchBlob.
Batch 8 re-declares the input's batch dim; the light models' Reshape shapes are
initializers holding batch 1, so a leading 1 there becomes 0 (ONNX: copy that dim
from the input), and the batch-8 ORT output's first row is checked against the
unchanged batch-1 model's. A model whose graph cannot be re-batched, or that pycaffe2
cannot translate, is skipped with the reason (the ConversionError's message).

    python benchmarks/onnx_models_vs_ort.py [--models resnet50,vgg19] [--batches 1,8]
        [--threads 1,2] [--repeat 5] [--profile]

On a machine whose cores other processes keep busy, the rows with more than one thread
measure contention more than code: NumPy's BLAS pool waits for its second thread at
every GEMM, and pycaffe2 makes many small ones (seen: 2-thread runs 5-20x slower than
1-thread ones on 2 shared cores, where ORT, whose pool does not spin, lost ~2x).

--profile prints, instead of the table, where the optimized net's time goes per op
type beside ONNX Runtime's per-node profile (benchmarks/_profile.py).
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from _common import Row, format_table, interleaved, model_bench_args
from _ort import session

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace, num_threads
from pycaffe2.proto import caffe2_pb2

ROOT = Path(__file__).resolve().parent.parent
LIGHT = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data" / "light"
# name: (label, source): "light:<file stem>" or "export:<nets/models folder>:<input CHW>"
SPECS = {
    "alexnet": ("AlexNet", "light:bvlc_alexnet"),
    "densenet121": ("DenseNet-121", "light:densenet121"),
    "inception_v1": ("Inception v1", "light:inception_v1"),
    "inception_v2": ("Inception v2", "light:inception_v2"),
    "resnet50": ("ResNet-50", "light:resnet50"),
    "shufflenet": ("ShuffleNet", "light:shufflenet"),
    "squeezenet": ("SqueezeNet", "light:squeezenet"),
    "vgg19": ("VGG-19", "light:vgg19"),
    "zfnet512": ("ZFNet-512", "light:zfnet512"),
    "lenet_export": ("LeNet (exported)", "export:lenet:1,28,28"),
    "squeezenet1_1_export": ("SqueezeNet 1.1 (exported)", "export:squeezenet1_1:3,224,224"),
    "resnet50_export": ("ResNet-50 (exported)", "export:resnet50:3,224,224"),
}
BATCHES = (1, 8)
QUICK = (("squeezenet", 1), ("resnet50", 1))
TOLERANCE = 1e-4  # relative to the largest output of ORT's
SKIPPED: list[str] = []  # why models or batches were left out, for main() to print


def _quiet_onnxruntime() -> None:
    """ORT warns on every session of a light model (an unused initializer): errors only."""
    import onnxruntime
    onnxruntime.set_default_logger_severity(3)


class _Serialized:
    """A model already serialized, for _ort.session: ORT's creation is timed without
    the serializing (pycaffe2's prepare gets the ModelProto, parsed already)."""

    def __init__(self, data: bytes):
        self.data = data

    def SerializeToString(self) -> bytes:
        return self.data


class Skip(Exception):
    """A model or batch this benchmark cannot run, with the reason."""


@functools.cache
def load(name: str) -> onnx.ModelProto:
    """Model `name` at its own batch (1)."""
    kind, _, rest = SPECS[name][1].partition(":")
    if kind == "light":
        return onnx.load(str(LIGHT / f"light_{rest}.onnx"))
    try:
        from pycaffe2.onnx.export import export_model
    except ImportError:
        raise Skip("pycaffe2.onnx.export is not present") from None
    from pycaffe2 import netfile
    folder, chw = rest.split(":")
    model = netfile.load_model(ROOT / "nets" / "models" / folder)
    return export_model(model.predict_net, model.init_net, {"data": (1, *map(int, chw.split(",")))})


def data_input(model) -> onnx.ValueInfoProto:
    initializers = {tensor.name for tensor in model.graph.initializer}
    (entry,) = [entry for entry in model.graph.input if entry.name not in initializers]
    return entry


def at_batch(model, batch: int):
    """(a copy of `model` taking `batch` rows, whether a Reshape shape was changed)."""
    if batch == 1:
        return model, False
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    for entry in [data_input(copy), *graph.output]:
        dims = entry.type.tensor_type.shape.dim
        if not dims or dims[0].dim_value != 1:
            raise Skip(f"{entry.name}'s first dim is not a batch of 1")
        dims[0].dim_value = batch
    del graph.value_info[:]
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    produced = {out for node in graph.node for out in node.output}
    patched, batched = set(), {data_input(copy).name}  # batched: what the data flows into
    for node in graph.node:
        if any(name in batched for name in node.input):
            batched.update(node.output)
        if node.op_type != "Reshape" or node.input[0] not in batched or node.input[1] in patched:
            continue  # a Reshape of a weight keeps its shape
        if node.input[1] not in initializers:
            if node.input[1] in produced:
                continue  # computed (from Shape, say): follows the batch by itself
            raise Skip(f"Reshape {node.name or node.output[0]}: its shape is a graph input")
        tensor = initializers[node.input[1]]
        shape = onnx.numpy_helper.to_array(tensor)
        if shape.size == 0 or shape[0] not in (1, 0, -1):
            raise Skip(f"Reshape {node.name or node.output[0]} fixes the batch at {shape[:1]}")
        if shape[0] == 1:
            shape = shape.copy()
            shape[0] = 0  # copy the batch from the Reshape's input
            tensor.CopyFrom(onnx.numpy_helper.from_array(shape, tensor.name))
        patched.add(node.input[1])
    return copy, bool(patched)


def with_logits(model) -> onnx.ModelProto:
    """`model` with its last Softmax's input as one more graph output (first), when it ends
    in one: the light models' weights are all 0.02, so every logit is the same number up to
    rounding, and a softmax of large equal logits turns on rounding that the two sides do in
    different orders (rows of 1/32 beside 1/1000); the logits themselves agree."""
    last = model.graph.node[-1]
    if last.op_type != "Softmax" or last.input[0] in {entry.name for entry in model.graph.output}:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.output.insert(0, onnx.helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT, None))
    return copy


def max_difference(ours, theirs) -> float:
    """The largest |ours - theirs| over the outputs, relative to the largest |theirs|."""
    worst = 0.0
    for a, b in zip(ours, theirs):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            raise AssertionError(f"output shapes differ: {a.shape} vs {b.shape}")
        scale = float(np.abs(b).max()) or 1.0
        worst = max(worst, float(np.abs(a - b).max()) / scale)
    return worst


class Case:
    """One model at one batch: pycaffe2's rep, its optimized prototype and ORT's session."""

    def __init__(self, name: str, batch: int, threads: int):
        from pycaffe2.onnx import backend
        self.name, self.batch, self.threads = name, batch, threads
        self.label = SPECS[name][0]
        _quiet_onnxruntime()
        base = load(name)
        self.model, patched = at_batch(base, batch)
        self.model = with_logits(self.model)
        self.bytes = _Serialized(self.model.SerializeToString())
        self.input = data_input(self.model).name
        shape = [dim.dim_value for dim in data_input(self.model).type.tensor_type.shape.dim]
        self.data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        try:
            self.rep = backend.prepare(self.model)
            self.rep.run([self.data])  # a traced translation happens here
        except PyCaffe2Error as exc:
            raise Skip(f"pycaffe2 cannot run it: {str(exc).splitlines()[0]}") from None
        self.ort = session(self.bytes, threads)
        self.outputs = list(self.rep.outputs)
        if patched:  # the changed Reshapes keep each row's result
            single = session(with_logits(base), 1).run(None, {self.input: self.data[:1]})
            whole = self.onnxruntime()
            assert max_difference([w[:1] for w in whole], single) < TOLERANCE, f"{name}: re-batching changed it"
        self._optimize()

    def _optimize(self) -> None:
        predict = caffe2_pb2.NetDef()
        predict.CopyFrom(self.rep.predict_net)
        predict.name = f"{self.name}_optimized"
        self.ws = Workspace()
        self.ws.RunNetOnce(self.rep.init_net)
        self.ws.CreateNet(predict, overwrite=True, optimize=True, free_blobs=True)
        self.net = predict
        self.optimized_ops = len(self.ws.nets[predict.name].steps)

    def ours(self):
        return list(self.rep.run([self.data]))

    def optimized(self):
        self.ws.FeedBlob(self.input, self.data)
        self.ws.RunNet(self.net.name)
        return [self.ws.blobs[name] for name in self.outputs]

    def onnxruntime(self):
        return self.ort.run(None, {self.input: self.data})

    def differences(self) -> tuple[float, float]:
        """The largest relative difference from ORT of the plain and optimized runs: of the
        logits where with_logits added them, else of every output."""
        count = len(self.outputs) - len(load(self.name).graph.output)
        theirs = self.onnxruntime()[:count or None]
        return (max_difference(self.ours()[:count or None], theirs),
                max_difference(self.optimized()[:count or None], theirs))


def _title(case: Case, what: str, difference: float) -> str:
    title = f"{case.label} {what}"
    return title + (f" (max rel diff {difference:.1e})" if difference > TOLERANCE else "")


def prepare_row(case: Case, repeat: int) -> Row:
    """backend.prepare beside InferenceSession creation, one thread."""
    from pycaffe2.onnx import backend
    seconds = interleaved({"ours": lambda: backend.prepare(case.model),
                           "ort": lambda: session(case.bytes, 1)}, repeat, warmup=0)
    return Row("onnx", f"{case.label} prepare", "ONNX Runtime", 1000 * seconds["ours"], 1000 * seconds["ort"],
               threads=1)


def model_rows(name: str, batch: int, threads: int, repeat: int, with_prepare: bool) -> list[Row]:
    case = Case(name, batch, threads)
    plain, optimized = case.differences()
    found = [prepare_row(case, repeat)] if with_prepare else []
    with num_threads(threads):
        seconds = interleaved({"ours": case.ours, "optimized": case.optimized, "ort": case.onnxruntime}, repeat)
    ms = {key: 1000 * value for key, value in seconds.items()}
    found += [Row("onnx", _title(case, f"batch {batch}", plain), "ONNX Runtime", ms["ours"], ms["ort"],
                  threads=threads),
              Row("onnx", _title(case, f"batch {batch} optimized", optimized), "ONNX Runtime",
                  ms["optimized"], ms["ort"], threads=threads)]
    return found


def rows(threads: int, repeat: int, quick: bool = False, models=tuple(SPECS), batches=BATCHES,
         prepare_batch: int = 1) -> list[Row]:
    """Every model at every batch; prepare rows at `prepare_batch` with one thread. Skips are noted
    in SKIPPED and on stderr."""
    cases = QUICK if quick else [(name, batch) for name in models for batch in batches]
    found, prepared = [], set()
    for name, batch in cases:
        try:
            found += model_rows(name, batch, threads, repeat, with_prepare=threads == 1 and name not in prepared
                                and batch == prepare_batch)
            prepared.add(name)
        except Skip as exc:
            note = f"{SPECS[name][0]} batch {batch}: skipped: {exc}"
            if note not in SKIPPED:
                SKIPPED.append(note)
                print(note, file=sys.stderr)
    return found


def main() -> None:
    models, batches, threads, repeat, profile = model_bench_args(__doc__, SPECS, SPECS, BATCHES,
                                                                 "where the optimized net's time goes, per op type")
    if profile:
        from _profile import profile
        for name in models:
            for batch in batches:
                for count in threads:
                    with num_threads(count):
                        print(profile(_Profiled(Case(name, batch, count)), count, repeat))
        return
    start = time.perf_counter()
    print(format_table([]), flush=True)  # then each row as it comes: every batch 1 first
    for batch in batches:
        for name in models:
            for count in threads:
                for row in rows(count, repeat, models=[name], batches=[batch]):
                    print(format_table([row]).splitlines()[-1], flush=True)
    for note in SKIPPED:
        print(f"- {note}")
    print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)


class _Profiled:
    """A Case in the shape _profile.profile reads (ws, net, ours, onnx, input, data)."""

    def __init__(self, case: Case):
        self.case, self.ws, self.net = case, case.ws, case.net
        self.name, self.batch = case.name, case.batch
        self.onnx, self.input, self.data = case.model, case.input, case.data

    def ours(self):
        return self.case.optimized()


if __name__ == "__main__":
    main()
