"""Running a model end to end: what `pycaffe2 run` and `run_model` share.

A model is a net file, a model file or a folder with init_net.pb and
predict_net.pb (see `netfile.load_model`). Before anything runs, every op type
the model uses that pycaffe2 has no kernel for is listed at once, with counts.
Then the init net runs once, the feeds are stored (over whatever the init net
made, so an input an init net holds can be replaced), the inputs nothing
provides are either refused by name or, with `random_init`, given made-up
weights (`pycaffe2.run.random_init`), and the predict net runs `iters` times.
With `free_blobs` (the command line's default) the predict net drops each blob
it makes for itself after its last use, keeping its external outputs and the
blobs named to `keep` (the fetched ones).
Faults are `RunError` (the request is wrong: exit 2 on the command line) or
`RunFailure` (a net failed while running: exit 1), with one-line messages that
name the file, blob or op.
"""
from __future__ import annotations

import difflib
import functools
import time
from collections import Counter

import numpy as np

from pycaffe2 import netfile
from pycaffe2.errors import PyCaffe2Error, RunError, RunFailure
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.confine import check_data_paths
from pycaffe2.run.int8_feeds import as_int8_feed
from pycaffe2.run.random_init import can_make_up, made_up_weights

DEVICES = ("cpu", "cuda")


# ---------------------------------------------------------------- the model

def missing_op_types(nets) -> Counter:
    """{op type: number of ops} for the op types in `nets` that have no CPU kernel."""
    from pycaffe2.operators import load_kernels
    kernels = load_kernels()
    return Counter(op.type for net in nets for op in net.op if op.type not in kernels)


def describe_missing_ops(missing: Counter) -> str:
    listed = ", ".join(f"{op_type} ({n} op{'s' if n != 1 else ''})"
                       for op_type, n in sorted(missing.items(), key=lambda kv: (-kv[1], kv[0])))
    kinds = len(missing)
    return f"model uses {kinds} op type{'s' if kinds != 1 else ''} pycaffe2 does not have: {listed}"


def _as_model(path_or_model, init, allow_outside_paths: bool = False) -> netfile.Model:
    if isinstance(path_or_model, netfile.Model):
        model = netfile.Model(path_or_model.predict_net, path_or_model.init_net, path_or_model.plan,
                              dict(path_or_model.input_shapes), dict(path_or_model.files))
    elif isinstance(path_or_model, caffe2_pb2.NetDef):
        model = netfile.Model(path_or_model)
    else:
        model = netfile.load_model(path_or_model, allow_outside_paths=allow_outside_paths)
    if init is not None:
        model.init_net = init if isinstance(init, caffe2_pb2.NetDef) else netfile.load_net(init)
        model.files["init_net"] = "" if isinstance(init, caffe2_pb2.NetDef) else str(init)
    return model


def _needed_inputs(net: caffe2_pb2.NetDef) -> dict[str, tuple[int, int]]:
    """Blobs the net reads before any of its ops writes them: name -> (op index, input index)."""
    written, needed = set(), {}
    for index, op in enumerate(net.op):
        for position, name in enumerate(op.input):
            if name not in written:
                needed.setdefault(name, (index, position))
        written.update(op.output)
    return needed


def _names(names, limit: int = 8) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _hint(name, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------- running

class ModelRunner:
    """A model made ready to run: its init net run, its inputs fed or made up and
    its predict net created in a private Workspace (`self.workspace`).

    `data_roots` (folders) confines the files the model's ops read and write
    (Save, Load, CreateDB, ...: `run/confine.py`), checked before anything runs;
    None, the default from Python, confines nothing, as in Caffe2.
    `allow_outside_paths` lets a model file name net files outside its folder.
    `free_blobs`, `keep` and `optimize`: as `Workspace.CreateNet`'s, for the predict net;
    `workers`: the ops a dag predict net runs at once, instead of its file's num_workers."""

    def __init__(self, path_or_model, init=None, feeds=None, random_init: bool = False,
                 out_channels=None, seed: int | None = None, device: str | None = None, data_roots=None,
                 allow_outside_paths: bool = False, *, free_blobs: bool = False, keep=(),
                 optimize: bool = False, workers: int | None = None):
        if out_channels and not random_init:
            raise RunError("out_channels (--out-channels) only applies with random_init (--random-init)")
        self.model = _as_model(path_or_model, init, allow_outside_paths)
        moved: list[int] = []  # --device cpu turns cross-device copies into Copy: place first
        nets = {key: placed(net, device, moved) for key, net in self.model.nets()}
        self.moved_to_cpu = sum(moved)  # device options `device="cpu"` changed
        missing = missing_op_types(nets.values())
        if missing:
            where = self.model.files.get("predict_net")
            raise RunError((f"{where}: " if where else "") + describe_missing_ops(missing))
        if data_roots is not None:
            check_data_paths([(self.model.files.get(key), net) for key, net in nets.items()], data_roots)
        self.predict_net, self.init_net = nets["predict_net"], nets.get("init_net")
        self.predict_net.name = self.predict_net.name or "predict_net"
        if workers is not None:
            if workers < 1:
                raise RunError(f"workers (--dag-workers) must be at least 1, not {workers}")
            self.predict_net.num_workers = workers
        self.workspace = Workspace("pycaffe2_run", seed=seed)
        self.made_up: dict[str, np.ndarray] = {}
        self.quantized_feeds: dict = {}  # float feeds an Int8 op reads, as quantized (run.int8_feeds)
        self._run_init()
        self._feed(dict(feeds or {}))
        self._provide_inputs(random_init, dict(out_channels or {}), seed)
        self.free_blobs = free_blobs
        self._stage("predict_net", functools.partial(self.workspace.CreateNet, free_blobs=free_blobs,
                                                     keep=tuple(keep or ()), optimize=optimize),
                    self.predict_net, True)

    def _stage(self, key, function, *args):
        """Call `function`, turning its errors into a RunFailure that names the net's file."""
        where = self.model.files.get(key) or key
        try:
            return function(*args)
        except RunError:
            raise
        except PyCaffe2Error as exc:
            raise RunFailure(f"{where}: {exc}") from None

    def _run_init(self) -> None:
        if self.init_net is not None:
            self._stage("init_net", self.workspace.RunNetOnce, self.init_net)

    def _feed(self, feeds: dict) -> None:
        needed = _needed_inputs(self.predict_net)
        for name, value in feeds.items():
            if name not in needed:
                raise RunError(f"feed '{name}': no op of net '{self.predict_net.name}' reads it "
                               f"before writing it" + _hint(name, needed))
            op_index = needed[name][0]
            value = as_int8_feed(name, value, op_index, self.predict_net.op[op_index].type)
            if value is not feeds[name]:
                self.quantized_feeds[name] = value
            try:
                self.workspace.FeedBlob(name, value)
            except (TypeError, ValueError) as exc:
                raise RunError(f"feed '{name}': {exc}") from None

    def _provide_inputs(self, random_init: bool, out_channels: dict, seed) -> None:
        needed = _needed_inputs(self.predict_net)
        missing = [name for name in needed if not self.workspace.HasBlob(name)]
        if not missing:
            return
        if not random_init:
            raise RunError(f"net '{self.predict_net.name}' reads {len(missing)} input(s) nothing "
                           f"provides: {_names(missing)}; feed them, give an init net, or make up "
                           "weights with --random-init (random_init=True)")
        data = [name for name in missing if _is_data(self.predict_net, *needed[name])]
        if data:
            raise RunError(f"input(s) {_names(data)} of net '{self.predict_net.name}' are data, "
                           f"not weights: feed them (--feed {data[0]}=PATH.npy)")
        self.made_up = self._made_up_weights(needed, out_channels, seed)
        for name, value in self.made_up.items():
            self.workspace.FeedBlob(name, value)

    def _made_up_weights(self, needed, out_channels, seed) -> dict:
        inputs = {name: self.workspace.FetchBlob(name) for name in needed
                  if self.workspace.HasBlob(name)}
        try:
            made = made_up_weights(self.predict_net, inputs, out_channels,
                                   seed=0 if seed is None else seed)
        except PyCaffe2Error as exc:
            raise RunFailure(f"random init: {exc}") from None
        except (ArithmeticError, LookupError, TypeError, ValueError) as exc:  # a rule's surprise
            raise RunFailure(f"random init: {type(exc).__name__}: {exc}") from None
        unused = [name for name in out_channels if name not in made]
        if unused:
            raise RunError(f"--out-channels: {_names(unused)} is not a made-up weight"
                           + _hint(unused[0], made))
        return made

    def feed(self, feeds: dict) -> None:
        """Store new values for inputs, checked as at construction (the next batch of rows)."""
        self._feed(dict(feeds))

    def run(self, iters: int = 1) -> float:
        """Run the predict net `iters` times; returns the seconds per run."""
        check_iters(iters)
        start = time.perf_counter()
        self._stage("predict_net", self.workspace.RunNet, self.predict_net.name, iters)
        return (time.perf_counter() - start) / iters

    def fetch(self, names=None) -> dict[str, np.ndarray]:
        """The named blobs (default: the predict net's external outputs)."""
        names = list(self.predict_net.external_output) if names is None else list(names)
        if not names:
            raise RunError(f"net '{self.predict_net.name}' names no external_output: say which "
                           "blobs to fetch (--fetch NAME)")
        blobs = self.workspace.Blobs()
        absent = [name for name in names if name not in self.workspace.blobs]
        freed = [name for name in absent if self.workspace.freed_by(name) is not None]
        if freed:
            raise RunError(f"cannot fetch {_names(freed)}: net '{self.predict_net.name}' frees it after "
                           "its last use; name it when the net is created (pycaffe2 run: --fetch keeps it, "
                           "--keep-all keeps every blob; Python: keep=[...] or free_blobs=False)")
        if absent:
            raise RunError(f"cannot fetch {_names(absent)}: no such blob after running net "
                           f"'{self.predict_net.name}'" + _hint(absent[0], blobs))
        return {name: self.workspace.FetchBlob(name) for name in names}


def placed(net: caffe2_pb2.NetDef, device: str | None, moved: list | None = None) -> caffe2_pb2.NetDef:
    """A copy of `net` for `device`.

    None: the devices the net names (the CPU where it names none). cpu: everything on
    the CPU, whatever device options the net or its ops (or nets held in their args)
    carry; CopyCPUToGPU / CopyGPUToCPU become plain Copy; how many options and ops were
    changed is appended to `moved`. cuda: every op that names no device of its own (nor
    has its net) and has a CUDA kernel runs on the GPU; the others (readers, the
    iteration counter, Save) stay on the CPU, and the executor copies blobs between them."""
    if device is not None and device not in DEVICES:
        raise RunError(f"unknown device '{device}' (expected cpu or cuda)")
    copy = _copy(net)
    if device == "cpu":
        changed = _onto_cpu(copy)
        if moved is not None:
            moved.append(changed)
    from pycaffe2.devices import cuda
    if device is None and _onto_cpu(_copy(copy)):
        reason = cuda.unavailable_reason()
        if reason is not None:
            raise RunError(f"net '{net.name}' names a GPU device, which is not available here: {reason}; "
                           "run it on the CPU with --device cpu (device='cpu')")
    if device != "cuda" or copy.HasField("device_option"):
        return copy
    from pycaffe2.operators import CUDA_KERNELS, load_kernels
    reason = cuda.unavailable_reason()
    if reason is not None:
        raise RunError(f"device cuda: CUDA is not available here: {reason}")
    load_kernels()
    for op in copy.op:
        if not op.HasField("device_option") and op.type in CUDA_KERNELS:
            op.device_option.device_type = caffe2_pb2.PROTO_CUDA
    return copy


def _copy(net: caffe2_pb2.NetDef) -> caffe2_pb2.NetDef:
    copy = caffe2_pb2.NetDef()
    copy.CopyFrom(net)
    return copy


_CROSS_DEVICE_COPIES = ("CopyCPUToGPU", "CopyGPUToCPU")


def _onto_cpu(net: caffe2_pb2.NetDef) -> int:
    """Point every device option in `net` (in place, nested nets included) at the CPU;
    the number of options and cross-device copies changed."""
    changed = 0
    owners = [net, *net.op]
    for owner in owners:
        option = owner.device_option
        if owner.HasField("device_option") and option.device_type != caffe2_pb2.PROTO_CPU:
            option.device_type = caffe2_pb2.PROTO_CPU
            option.ClearField("device_id")
            changed += 1
    for op in net.op:
        if op.type in _CROSS_DEVICE_COPIES:  # the copy is an identity when both ends are the CPU
            op.type = "Copy"
            changed += 1
        for arg in op.arg:
            for inner in ([arg.n] if arg.HasField("n") else []) + list(arg.nets):
                changed += _onto_cpu(inner)
    return changed


def cpu_override_note(moved: int) -> str:
    """The one-line note `pycaffe2 run --device cpu` prints when it changed the model."""
    return (f"--device cpu: {moved} device option(s) and cross-device copies in the model "
            "point at the CPU for this run")


def check_iters(iters: int) -> None:
    if iters < 1:
        raise RunError(f"iters must be at least 1, got {iters}")


def _is_data(net, op_index: int, position: int) -> bool:
    """Whether a blob first read at (op, input position) is data rather than a weight
    random init can make up (one its op's schema flags with `param`)."""
    return not can_make_up(net.op[op_index].type, position)


def run_model(path_or_model, init=None, feeds=None, fetch=None, random_init: bool = False,
              iters: int = 1, seed: int | None = None, out_channels=None,
              device: str | None = None, keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run a model and return {blob name: array} for `fetch` (default: the
    predict net's external outputs).

    `path_or_model`: a net file, model file or init/predict folder, a
    `netfile.Model` or a predict NetDef; `init`: an init net (path or NetDef)
    to use instead of the model's; `feeds`: {blob: array}; `random_init`:
    make up weights for the inputs nothing provides (`out_channels`: {weight
    blob: output channels}, 16 otherwise); `seed` seeds the workspace's random
    ops and the made-up weights; `device`: None (the devices the file names),
    "cpu" (everything on the CPU) or "cuda" (see `placed`). The predict net frees
    the blobs it makes once no later op reads them (only `fetch` comes back), unless
    `keep_all`.
    """
    check_iters(iters)
    runner = ModelRunner(path_or_model, init, feeds, random_init, out_channels, seed, device,
                         free_blobs=not keep_all, keep=() if fetch is None else tuple(fetch))
    runner.run(iters)
    return runner.fetch(fetch)
