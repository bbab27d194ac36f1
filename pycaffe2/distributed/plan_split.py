"""Splitting a plan's training loop into the three nets of data-parallel training.

The loop's nets (in the order one iteration runs them) are cut into:

- input: the ops that read a batch from a DB (TensorProtosDBInput, ImageInput, and any op that
  reads a reader blob a CreateDB made). Their outputs are the shard blobs: every replica reads
  the whole batch and keeps its rows. They may read nothing the iteration wrote before them;
- step: every other op before the update: forward, backward, the iteration counter, the
  learning rate;
- update: from the first dense optimizer op (WeightedSum, MomentumSGDUpdate, Adam, Adagrad,
  RmsProp, ...) that rewrites a carried blob it reads (a parameter or its momentum) to the end.

Sync set: the blobs the update reads that the step wrote this iteration (the gradients; the
learning rate, identical anyway), then the carried blobs the step itself rewrites (SpatialBN's
running mean and variance), so that every replica holds the same state after each iteration.
The engine averages only floating-point blobs: integer state (the iteration counter) is the same
on every replica by construction.

Refused, with a RunError naming the net and op: a loop that reads no DB (nothing to shard), a
loop with no dense optimizer op, a sparse optimizer (SparseAdagrad, ScatterWeightedSum, ...:
replicas update different rows, which averaging cannot join), an input op that reads what the
iteration computed, a loop that stops on a blob or repeats substeps, and a batch smaller than
the number of workers. Ops between the last gradient and the first optimizer op (gradient
clipping, for one) run on each replica's own gradients, before the average.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from pycaffe2.errors import RunError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.plan_job import carried_state

INPUT_OPS = frozenset({"TensorProtosDBInput", "ImageInput"})
DENSE_OPTIMIZER_OPS = frozenset({
    "WeightedSum", "MomentumSGDUpdate", "MomentumSGD", "Adagrad", "DecayAdagrad", "Adam", "RmsProp",
    "Ftrl", "GFtrl", "Adadelta", "Wngrad", "Storm", "YellowFin"})
SPARSE_PREFIXES = ("Sparse", "RowWiseSparse", "Scatter", "SmartDecaySparse")


@dataclass
class LoopSplit:
    """The loop as data-parallel training runs it."""
    reader_init: caffe2_pb2.NetDef          # the CreateDB ops of the readers, with absolute paths
    input_net: caffe2_pb2.NetDef
    step_net: caffe2_pb2.NetDef
    update_net: caffe2_pb2.NetDef
    shard: list[str] = field(default_factory=list)
    sync: list[str] = field(default_factory=list)
    origins: dict = field(default_factory=dict)  # {split net: [(loop net, op index) of each op]}


def split_loop(loop, nets: dict, workers: int) -> LoopSplit:
    """Split the loop step `loop` of a plan whose nets are `nets` ({name: NetDef})."""
    what = f"training loop '{loop.name}'"
    _check_loop_shape(loop, what)
    located = _loop_ops(loop, nets)
    readers = _reader_ops(nets.values())
    inputs = [(where, op) for where, op in located if op.type in INPUT_OPS or set(op.input) & set(readers)]
    if not inputs:
        raise RunError(f"{what} reads no DB (no TensorProtosDBInput or ImageInput op, nor an op reading a "
                       "CreateDB reader): there is no batch to split over workers")
    _check_inputs(located, inputs, readers, workers, what)
    rest = [(where, op) for where, op in located if (where, op) not in inputs]
    carried = set(carried_state([nets[name] for name in _net_names(loop)]))
    for where, op in rest:
        if op.type.startswith(SPARSE_PREFIXES):
            raise RunError(f"{where} ({op.type}) is a sparse update: replicas would update different rows, "
                           "which averaging cannot join; data-parallel training needs dense gradients")
    start = next((i for i, (_, op) in enumerate(rest) if op.type in DENSE_OPTIMIZER_OPS
                  and set(op.output) & set(op.input) & carried), None)
    if start is None:
        raise RunError(f"{what} has no optimizer op ({', '.join(sorted(DENSE_OPTIMIZER_OPS))}) updating a "
                       "parameter it carries from one iteration to the next: nothing to average before")
    step_ops, update_ops = [op for _, op in rest[:start]], [op for _, op in rest[start:]]
    base = loop.network[0] if len(_net_names(loop)) == 1 else (loop.name or "loop")
    parts = {f"{base}_input": inputs, f"{base}_step": rest[:start], f"{base}_update": rest[start:]}
    shard = _unique(name for _, op in inputs for name in op.output)
    step_written = {name for op in step_ops for name in op.output}
    sync = _unique([name for op in update_ops for name in op.input if name in step_written]
                   + [name for op in step_ops for name in op.output if name in carried])
    needed = {name for _, op in inputs for name in op.input}
    return LoopSplit(reader_init=_net(f"{base}_readers", [op for op in readers.values()
                                                          if set(op.output) & needed]),
                     input_net=_net(f"{base}_input", [op for _, op in inputs]),
                     step_net=_net(f"{base}_step", step_ops, _outputs(loop, nets)),
                     update_net=_net(f"{base}_update", update_ops), shard=shard, sync=sync,
                     origins={name: [_origin(where) for where, _ in ops] for name, ops in parts.items()})


def _origin(where: str) -> tuple[str, int]:
    """("net", index) from "net 'net': op index"."""
    net, _, index = where.rpartition(": op ")
    return net[len("net '"):-1], int(index)


def _check_loop_shape(loop, what: str) -> None:
    if loop.should_stop_blob:
        raise RunError(f"{what} stops on blob '{loop.should_stop_blob}': data-parallel training needs "
                       "a fixed iteration count (num_iter)")
    for sub in loop.substep:
        if sub.num_iter > 1 or sub.should_stop_blob or sub.substep or sub.concurrent_substeps or sub.only_once:
            raise RunError(f"{what}: substep '{sub.name}' does not run its nets once per iteration, "
                           "which data-parallel training cannot split")


def _net_names(loop) -> list[str]:
    return list(loop.network) + [name for sub in loop.substep for name in sub.network]


def _loop_ops(loop, nets: dict) -> list[tuple[str, caffe2_pb2.OperatorDef]]:
    """Every op of one iteration, in order, each with 'net NAME: op I' and its net's device."""
    found = []
    for name in _net_names(loop):
        net = nets[name]
        for index, op in enumerate(net.op):
            op = _copy(op)
            if net.HasField("device_option") and not op.HasField("device_option"):
                op.device_option.CopyFrom(net.device_option)
            found.append((f"net '{name}': op {index}", op))
    return found


def _reader_ops(nets) -> dict[str, caffe2_pb2.OperatorDef]:
    """{reader blob: its CreateDB op}, the DB path made absolute so a worker's folder cannot matter."""
    found = {}
    for net in nets:
        for op in net.op:
            if op.type == "CreateDB" and op.output:
                op = _copy(op)
                for arg in op.arg:
                    if arg.name == "db" and arg.s:
                        arg.s = os.path.abspath(arg.s.decode("utf-8", "replace")).encode("utf-8")
                found[op.output[0]] = op
    return found


def _check_inputs(located, inputs, readers, workers: int, what: str) -> None:
    written = set()
    for where, op in located:
        if (where, op) in inputs:
            computed = [name for name in op.input if name in written and name not in readers]
            if computed:
                raise RunError(f"{where} ({op.type}) reads '{computed[0]}', which the iteration computes "
                               "before it: only batches read straight from a DB can be split over workers")
            batch = next((arg.i for arg in op.arg if arg.name == "batch_size"), None)
            if batch is not None and 0 < batch < workers:
                raise RunError(f"{where} ({op.type}) reads batches of {batch} row(s), fewer than the "
                               f"{workers} workers: every worker needs at least one row")
        written.update(op.output)


def _outputs(loop, nets: dict) -> list[str]:
    return _unique(name for net_name in _net_names(loop) for name in nets[net_name].external_output)


def _net(name: str, ops, outputs=()) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name=name, type="simple")
    for op in ops:
        net.op.add().CopyFrom(op)
    net.external_output.extend(outputs)
    return net


def _copy(op):
    copied = caffe2_pb2.OperatorDef()
    copied.CopyFrom(op)
    return copied


def _unique(names) -> list[str]:
    return list(dict.fromkeys(names))
