"""Net compilation and the runners.

`compile_net` does all the work once: it checks the net against the schemas,
resolves each op's kernel and binds its args (typed, defaulted). The result
is a list of Steps, turned into one straight-line function for sequential
runs (`straight_line`: RunNet pays no per-op interpretation) and scheduled on
a thread pool for concurrent `dag` runs (`dag`). Each op reads its inputs,
calls its kernel and only then writes its outputs, so a failing op leaves
every blob as it was. With `free_blobs`, a run drops the blobs the net makes
for itself once no later op touches them (`liveness`).
"""
from __future__ import annotations

from collections import ChainMap

import numpy as np

from pycaffe2.errors import NetError, OpFailure, PyCaffe2Error
from pycaffe2.executor import straight_line, threads
from pycaffe2.executor.dag import dependencies, run_dag
from pycaffe2.executor.liveness import free_after, net_own_blobs
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import bind_args
from pycaffe2.schema.checker import CONCURRENT_NET_TYPES, check_net

# Problems the checker finds that may vanish once blobs are fed (or that a runner tolerates):
# every other problem, shape problems included, holds whatever the workspace holds, because
# compile_net knows no fed shapes, only those the net's own fills fix.
# A partition problem (node_name naming no partition) is the file's fault, but running
# ignores placement altogether, so it computes the same blobs: validate reports it, CreateNet runs.
RUN_TIME_KINDS = ("undefined-blob", "dag-write", "external-output", "partition")


class Step:
    """One op, ready to call. `single` kernels return one array, the others a tuple;
    a kernel of an op without outputs returns nothing, or a dict of the blobs it
    writes by names known only when it runs (Load with load_all). `writes`: the op's
    declared outputs (a control op writes them through its nets). `opaque`: the kernel
    gets the workspace, so it may read any blob by name."""

    __slots__ = (
        "function",
        "index",
        "inputs",
        "kwargs",
        "op_type",
        "opaque",
        "outputs",
        "single",
        "wants_blobs",
        "writes",
    )

    def __init__(self, index, op_type, function, inputs, outputs, kwargs, single, wants_blobs=False,
                 writes=None, opaque=False):
        self.index, self.op_type, self.function = index, op_type, function
        self.inputs, self.outputs, self.kwargs, self.single = inputs, outputs, kwargs, single
        self.wants_blobs = wants_blobs  # a control op: it also gets the live blob mapping
        self.writes = tuple(outputs if writes is None else writes)
        self.opaque = opaque

    @property
    def sync(self) -> bool:
        """Whether the step may see the blob mapping itself, beyond its inputs and outputs."""
        return self.wants_blobs or self.opaque or not self.outputs

    def run(self, blobs: dict, net_name: str) -> None:
        try:
            args = [blobs[name] for name in self.inputs]
            if self.wants_blobs:  # a control op: it also gets the live blob mapping
                result = self.function(*args, blobs=blobs, **self.kwargs)
            else:
                result = self.function(*args, **self.kwargs)
            if self.single:
                blobs[self.outputs[0]] = result
            elif not self.outputs:  # a side effect, or blobs named at run time (Load's load_all)
                blobs.update(result or ())
            else:  # all outputs are computed before any is written
                values = tuple(result[k] for k in range(len(self.outputs)))
                blobs.update(zip(self.outputs, values))
        except Exception as exc:
            raise self.failure(exc, blobs, net_name) from exc

    def failure(self, exc, blobs, net_name) -> OpFailure:
        described = []
        for name in self.inputs:
            value = blobs.get(name)
            if isinstance(value, np.ndarray):
                described.append(f"{name} {list(value.shape)} {value.dtype}")
            else:
                described.append(f"{name} ({'missing' if value is None else type(value).__name__})")
        if isinstance(exc, KeyError) and exc.args and exc.args[0] in self.inputs \
                and exc.args[0] not in blobs:
            cause = f"input blob '{exc.args[0]}' has no value"
        elif isinstance(exc, PyCaffe2Error):  # the project's own words need no class name
            cause = str(exc)
        else:
            cause = f"{type(exc).__name__}: {exc}"
        return OpFailure(net_name, self.index, self.op_type, described, cause)


class CompiledNet:
    """A net ready to run. `freeable`: the blobs a run drops once no later op touches
    them (CreateNet's free_blobs); one that is in the workspace when a run starts
    is kept for that run, as are all blobs a run does not make."""

    def __init__(self, name: str, steps: list[Step], concurrent: bool, num_workers: int,
                 uses_cuda: bool = False, freeable=frozenset()):
        self.name, self.steps = name, steps
        self.concurrent = concurrent and num_workers > 1
        self.num_workers = num_workers
        self.dependencies = dependencies(steps) if self.concurrent else None
        self.freeable = frozenset(freeable)
        self.uses = [(step.inputs, step.writes) for step in steps]
        self.opaque = [index for index, step in enumerate(steps) if step.opaque]
        self._plans = {frozenset(): self._plan(self.freeable)}  # kept blobs -> (run, lines)
        self.dag_plans: dict = {}  # kept blobs -> what each step holds (executor.dag)
        self.uses_cuda, self.stream = uses_cuda, None  # a net's kernels queue on its own stream

    def _plan(self, free):
        return straight_line.generate(self.steps, free_after(self.uses, free, self.opaque) if free else None)

    def run(self, blobs: dict) -> None:
        if not self.uses_cuda:
            return self._run(blobs)
        from pycaffe2.devices import cuda
        if self.stream is None:
            self.stream = cuda.new_stream()
        with cuda.on_stream(self.stream):
            self._run(blobs)
        self.stream.synchronize()  # as Caffe2's Run: done, and a kernel's fault shows here

    def kept(self, blobs) -> frozenset:
        """The freeable blobs this run keeps: those already in `blobs`."""
        if not self.freeable or self.freeable.isdisjoint(blobs):
            return frozenset()
        return self.freeable.intersection(blobs)

    def _run(self, blobs: dict) -> None:
        if self.concurrent:
            workers = self.num_workers if threads.LIMIT is None else min(self.num_workers, threads.LIMIT)
            if workers > 1:
                return run_dag(self, blobs, workers)
        kept = self.kept(blobs)
        plan = self._plans.get(kept)
        if plan is None:
            plan = self._plans[kept] = self._plan(self.freeable - kept)
        run, lines = plan
        try:
            run(blobs)
        except BaseException as exc:  # a Ctrl-C too
            for name in self.freeable - kept:  # a failed run leaves none of the blobs it frees
                blobs.pop(name, None)
            found = straight_line.recover(exc, lines)
            if found is None or not isinstance(exc, Exception):
                raise
            step, in_locals = found
            raise step.failure(exc, ChainMap(in_locals, blobs), self.name) from exc


def prepare(net: caffe2_pb2.NetDef) -> caffe2_pb2.NetDef:
    """A private copy, with the net's device_option copied to ops that have none."""
    copy = caffe2_pb2.NetDef()
    copy.CopyFrom(net)
    if copy.HasField("device_option"):
        for op in copy.op:
            if not op.HasField("device_option"):
                op.device_option.CopyFrom(copy.device_option)
    return copy


def compile_net(net: caffe2_pb2.NetDef, known_blobs=(), kernels=None, rng=None, workspace=None, *,
                free_blobs: bool = False, keep=()) -> CompiledNet:
    """Check `net` and bind every op to its kernel on its device (`workspace`: the
    Workspace it will run in, for kernels that take it); raises NetError listing
    every problem. A CPU op reading a blob an earlier CUDA op of the net
    left on the GPU reads a copy made by an inserted CopyGPUToCPU step.
    `free_blobs`: each run drops the blobs the net makes for itself once no later
    op touches them, except those in `keep` (see `freeable`)."""
    from pycaffe2.operators import CUDA_KERNELS, load_kernels
    registries = {caffe2_pb2.PROTO_CPU: ("CPU", load_kernels() if kernels is None else kernels),
                  caffe2_pb2.PROTO_CUDA: ("CUDA", CUDA_KERNELS)}
    net = prepare(net)
    name = net.name or "(unnamed net)"
    found = [p for p in check_net(net, known_blobs=known_blobs) if p.kind not in RUN_TIME_KINDS]
    problems = [str(p) for p in found]
    if any(p.kind == "nesting" for p in found):  # compiling the nets would recurse once per level
        raise NetError(f"cannot create net {name}:\n  " + "\n  ".join(problems))
    rejected = {p.op_index for p in found}
    steps, on_gpu, wants_cuda = [], set(), []
    for index, op in enumerate(net.op):
        if index in rejected:
            continue  # already reported; its args may not even bind
        device = op.device_option.device_type
        if device not in registries:
            problems.append(f"op {index} ({op.type}): device type {device} is not available "
                            "(CPU and CUDA only)")
            continue
        device_name, registry = registries[device]
        kernel = registry.get(op.type)
        if kernel is None:
            problems.append(f"op {index} ({op.type}): no {device_name} kernel for {op.type}")
            continue
        if device == caffe2_pb2.PROTO_CUDA:
            wants_cuda.append(index)
        try:
            step = _step(index, op, kernel, rng, kernels, workspace)
        except (ValueError, PyCaffe2Error) as exc:  # a kernel factory refusing its args
            problems.append(f"op {index} ({op.type}): {exc}")
            continue
        if device == caffe2_pb2.PROTO_CPU:
            step = _read_gpu_blobs_on_cpu(step, on_gpu, steps)
        _track_gpu_blobs(step, op.output, device, on_gpu)
        steps.append(step)
    if wants_cuda:
        problems.extend(_cuda_problem(wants_cuda))
    if problems:
        raise NetError(f"cannot create net {name}:\n  " + "\n  ".join(problems))
    workers = max(net.num_workers, _int_arg(net, "num_workers", 1), 1)
    return CompiledNet(name, steps, net.type in CONCURRENT_NET_TYPES, workers, uses_cuda=bool(wants_cuda),
                       freeable=_freeable(net, steps, keep) if free_blobs else ())


def _freeable(net: caffe2_pb2.NetDef, steps: list[Step], keep) -> set[str]:
    """The blobs the net makes for itself (executor.liveness.net_own_blobs), as its steps
    (copies inserted between devices included) use them, less `keep` (one name, or several)."""
    keep = {keep} if isinstance(keep, str) else set(keep)
    return net_own_blobs(net, [(step.inputs, step.writes) for step in steps], keep)


def _cuda_problem(indices) -> list[str]:
    from pycaffe2.devices.cuda import unavailable_reason
    reason = unavailable_reason()
    if reason is None:
        return []
    return [f"op(s) {', '.join(map(str, indices))} ask for CUDA, which is not available here: {reason}"]


def _to_cpu(value):
    from pycaffe2.devices.cuda import is_gpu_array
    return value.get() if is_gpu_array(value) else value


def _read_gpu_blobs_on_cpu(step: Step, on_gpu: set, steps: list) -> Step:
    """Insert a CopyGPUToCPU step for every input of `step` on the GPU; reroute it."""
    inputs = []
    for name in step.inputs:
        if name in on_gpu:
            copy = f"{name}__cpu"
            steps.append(Step(step.index, "CopyGPUToCPU (inserted)", _to_cpu, (name,), (copy,), {}, True))
            name = copy
        inputs.append(name)
    step.inputs = tuple(inputs)
    return step


def _track_gpu_blobs(step: Step, outputs, device: int, on_gpu: set) -> None:
    """`outputs`: the op's declared outputs (a control op's step writes them through its nets)."""
    lands_on_gpu = device == caffe2_pb2.PROTO_CUDA and step.op_type != "CopyGPUToCPU"
    for name in outputs:
        (on_gpu.add if lands_on_gpu else on_gpu.discard)(name)


def _step(index, op, kernel, rng, kernels=None, workspace=None) -> Step:
    bound = bind_args(get_schema(op.type), op)
    kwargs = {name: bound.get(name) for name in kernel.arg_names}
    if "subnets" in kernel.context:
        kwargs["subnets"] = {name: _compile_subnet(value, op, name, kernels, rng, workspace)
                             for name, value in bound.items() if isinstance(value, caffe2_pb2.NetDef)}
    if "is_gradient_op" in kernel.context:
        kwargs["is_gradient_op"] = op.is_gradient_op
    if "num_outputs" in kernel.context:
        kwargs["num_outputs"] = len(op.output)
    if "input_names" in kernel.context:
        kwargs["input_names"] = tuple(op.input)
    if "output_names" in kernel.context:
        kwargs["output_names"] = tuple(op.output)
    if "workspace" in kernel.context:
        kwargs["workspace"] = workspace
    if "root_folder" in kernel.context:
        kwargs["root_folder"] = getattr(workspace, "root_folder", ".")
    if "engine" in kernel.context:  # the field, or the arg some exporters write
        kwargs["engine"] = op.engine or bound.get("engine") or ""
    if "compile_net" in kernel.context:  # ops running a net of their own (RecurrentNetwork's step net)
        kwargs["compile_net"] = lambda step_net, known_blobs=(): compile_net(
            step_net, known_blobs, kernels=kernels, rng=rng, workspace=workspace)
    if "rng" in kernel.context:
        seeded = op.device_option.HasField("random_seed")
        kwargs["rng"] = np.random.default_rng(op.device_option.random_seed) if seeded else rng
    wants_blobs = "blobs" in kernel.context
    # Summarize may have no output; a control op returns {name: value} of what it writes
    single = get_schema(op.type).num_outputs.max == 1 and len(op.output) == 1 and not wants_blobs
    function = kernel.function
    if kernel.specialize:
        function, kwargs = function(**kwargs), {}
    outputs = () if wants_blobs else tuple(op.output)  # it returns {name: value} of its writes
    return Step(index, op.type, function, tuple(op.input), outputs, kwargs, single, wants_blobs,
                writes=tuple(op.output), opaque="workspace" in kernel.context)


def _compile_subnet(net: caffe2_pb2.NetDef, op, arg_name: str, kernels, rng, workspace=None) -> CompiledNet:
    """A control op's net, compiled; without a device option of its own it runs on the op's."""
    copy = caffe2_pb2.NetDef()
    copy.CopyFrom(net)
    if not copy.name:
        copy.name = f"{op.type}.{arg_name}"
    if not copy.HasField("device_option") and op.HasField("device_option"):
        copy.device_option.CopyFrom(op.device_option)
    return compile_net(copy, kernels=kernels, rng=rng, workspace=workspace)


def _int_arg(net, name, default):
    for arg in net.arg:
        if arg.name == name and arg.HasField("i"):
            return arg.i
    return default
