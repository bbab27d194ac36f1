"""Caffe2's memonger: fewer distinct blobs, by giving a blob's name to a new blob
once every op that touches the old one is done with it.

Each shareable blob lives from the op that first writes it to the last op that
reads or writes it. Ops are walked in order; an op's new outputs take a name
that has been freed, else keep their own. A name is free for op k only when
every op that touched its old value is an ancestor of k in the net's data flow
(for the dag executor) or runs before k (simple nets), so no reordering can
make the new value overwrite the old one before its last reader has run. An op
never gets an output under a name it also reads, so no in-place pair appears
that the net did not have.

What is never shared: external inputs and outputs, blobs some op reads before
any op writes them (they come from outside the net), the blobs a caller names
(inputs, losses, parameter gradients, `dont_share_blobs`), and every blob a
nested net (If/While/RecurrentNetwork step nets) mentions, since those refer to
outer blobs by name.

    optimized = memonger.optimize_inference_for_dag(net, ["data"])
    memonger.verify_graph_equality(net, optimized)  # same computation
"""
from __future__ import annotations

import collections
import copy
import enum

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor.liveness import last_touches, net_own_blobs
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import nested_blobs, net_from_text

LiveRange = collections.namedtuple("LiveRange", ["defined", "used", "size"])
Optimization = collections.namedtuple("Optimization", ["net", "assignments", "blob_assignments"])
Statistics = collections.namedtuple("Statistics", ["baseline_nbytes", "optimized_nbytes"])


class AssignmentAlgorithm(enum.IntEnum):
    GREEDY = 0
    DYNAMIC_PROGRAMMING = 1  # accepted for Caffe2's signature; sizes steer the greedy choice instead


def _proto(net) -> caffe2_pb2.NetDef:
    return net.Proto() if hasattr(net, "Proto") else net


def _nested_blobs(op) -> set[str]:
    """Every blob a nested net or string argument of `op` names: kept by name, never shared.
    A step net held as text that does not parse is refused."""
    return nested_blobs(op, check_text_net=_step_net)


def _step_net(op, arg) -> caffe2_pb2.NetDef:
    """A step net held as text (as Caffe2 stores it); anything else is refused (the blobs it
    names are unknown, so no renaming could be shown safe)."""
    step, problem = net_from_text(arg.s)
    if problem:
        raise PyCaffe2Error(f"memonger: op {op.type} ({', '.join(op.output)}): arg '{arg.name}' is {problem}; "
                            "the net is left as it was")
    return step


def compute_interference_graph(ops) -> dict[int, set[int]]:
    """op index -> the indices of the ops that read what it wrote (its data-flow children)."""
    children = {i: set() for i in range(len(ops))}
    writer = {}
    for i, op in enumerate(ops):
        for name in op.input:
            if name in writer and writer[name] != i:
                children[writer[name]].add(i)
        for name in op.output:
            writer[name] = i
    return children


def topological_sort_traversal(graph: dict[int, set[int]]) -> list[int]:
    """The ops in an order that respects `graph`, the lowest ready index first (so a
    net already in order keeps it)."""
    import heapq
    indegree = collections.Counter(child for kids in graph.values() for child in kids)
    ready = [node for node in graph if indegree[node] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for child in graph[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, child)
    if len(order) != len(graph):
        raise PyCaffe2Error("memonger: the net's data flow has a cycle")
    return order


def _ancestors(ops, parallel: bool) -> list[int]:
    """For each op, a bit set of the ops that surely run before it."""
    if not parallel:
        return [(1 << i) - 1 for i in range(len(ops))]
    parents = collections.defaultdict(set)
    for parent, kids in compute_interference_graph(ops).items():
        for kid in kids:
            parents[kid].add(parent)
    before = []
    for i in range(len(ops)):
        bits = 0
        for parent in parents[i]:
            bits |= before[parent] | (1 << parent)
        before.append(bits)
    return before


def compute_ranges(linearized_ops, blob_sizes=None) -> dict[str, LiveRange]:
    """blob -> LiveRange(first op writing it, last op reading it (None if none), size)."""
    defined, used = {}, {}
    for i, op in enumerate(linearized_ops):
        for name in op.input:
            used[name] = i
        for name in op.output:
            defined.setdefault(name, i)
    return {name: LiveRange(defined.get(name), used.get(name), (blob_sizes or {}).get(name))
            for name in dict.fromkeys(list(defined) + list(used))}


def _share(ops, shareable, parallel: bool, blob_sizes=None) -> list[list[str]]:
    """Groups of blobs that can hold one name, each in order of definition."""
    before = _ancestors(ops, parallel)
    touched_by = collections.defaultdict(int)  # blob -> bit set of the ops touching it
    for i, op in enumerate(ops):
        for name in list(op.input) + list(op.output):
            touched_by[name] |= 1 << i
    last = last_touches([(op.input, op.output) for op in ops])
    groups, group_of, free = [], {}, []  # free: [(group index, ops that touched its last blob)]
    for i, op in enumerate(ops):
        reading = {group_of.get(name) for name in op.input}
        for name in op.output:
            if name not in shareable or name in group_of:
                continue
            usable = [(index, touched) for index, touched in free
                      if touched & ~before[i] == 0 and index not in reading]
            if usable:
                size = (blob_sizes or {}).get(name)
                choice = min(usable, key=lambda entry: _fit(groups[entry[0]], size, blob_sizes))
                free.remove(choice)
                group_of[name] = choice[0]
                groups[choice[0]].append(name)
            else:
                group_of[name] = len(groups)
                groups.append([name])
        for name in dict.fromkeys(list(op.input) + list(op.output)):
            if name in group_of and last[name] == i:
                free.append((group_of[name], touched_by[name]))
    return groups


def _fit(group, size, blob_sizes):
    """Best fit when sizes are known: the smallest group at least as large, then the largest."""
    if size is None or not blob_sizes:
        return 0
    held = max(blob_sizes.get(name, 0) for name in group)
    return (0, held - size) if held >= size else (1, size - held)


def _shareable(net, keep) -> set[str]:
    """The blobs the net makes itself (executor.liveness.net_own_blobs)."""
    return net_own_blobs(net, keep=keep, check_text_net=_step_net)


def apply_assignments(net, blob_assignments) -> None:
    """Rename every op input, output and control input by `blob_assignments`, in place."""
    for op in net.op:
        for field in (op.input, op.output, op.control_input):
            for i, name in enumerate(field):
                field[i] = blob_assignments.get(name, name)


def compute_blob_assignments(assignments) -> dict[str, str]:
    """blob -> the name it takes: each group's last blob's (as Caffe2)."""
    return {name: group[-1][0] for group in assignments if len(group) > 1 for name, _ in group}


def _all_names(net) -> set[str]:
    names = set(net.external_input) | set(net.external_output)
    for op in net.op:
        names.update(op.input, op.output, op.control_input)
        names |= _nested_blobs(op)
    return names


def _renamed(net, groups, prefix: str) -> tuple[caffe2_pb2.NetDef, dict[str, str]]:
    """Each group under one new name that no blob of the net has already (a taken name
    would merge two blobs)."""
    taken, mapping, j = _all_names(net), {}, 0
    for group in (g for g in groups if len(g) > 1):
        while f"{prefix}__m{j}_shared" in taken:
            j += 1
        mapping.update((name, f"{prefix}__m{j}_shared") for name in group)
        j += 1
    optimized = copy.deepcopy(net)
    apply_assignments(optimized, mapping)
    return optimized, mapping


def optimize_interference(net, static_blobs, ordering_function=topological_sort_traversal, blob_sizes=None,
                          algo=AssignmentAlgorithm.GREEDY) -> Optimization:
    """Order the ops by `ordering_function` over the data-flow graph, then share every
    blob not in `static_blobs` (nor external) by live ranges in that order."""
    net = copy.deepcopy(_proto(net))
    order = ordering_function(compute_interference_graph(net.op))
    ops = [copy.deepcopy(net.op[i]) for i in order]
    del net.op[:]
    net.op.extend(ops)
    groups = _share(net.op, _shareable(net, static_blobs), net.type not in ("", "simple"), blob_sizes)
    ranges = compute_ranges(net.op, blob_sizes)
    assignments = [[(name, ranges[name]) for name in group] for group in groups]
    blob_assignments = compute_blob_assignments(assignments)
    apply_assignments(net, blob_assignments)
    return Optimization(net=net, assignments=assignments, blob_assignments=blob_assignments)


def optimize_inference_for_dag(net, input_blobs, namescope: str = "") -> caffe2_pb2.NetDef:
    """Share the activations (blobs under `namescope`) of an inference net, safely for
    the dag executor; `input_blobs` and external blobs keep their names."""
    proto = _proto(net)
    shareable = {name for name in _shareable(proto, [str(b) for b in input_blobs]) if name.startswith(namescope)}
    return _renamed(proto, _share(proto.op, shareable, parallel=True), namescope)[0]


def share_grad_blobs(net, losses, param_grads, namescope, dont_share_blobs=None, share_activations=False,
                     blob_shapes=None) -> caffe2_pb2.NetDef:
    """Share the gradient blobs (names with "_grad" under `namescope`) of a training net,
    and with `share_activations` the forward blobs too; losses, `param_grads` and
    `dont_share_blobs` keep their names. Returns the new NetDef (Caffe2: assign to net._net)."""
    proto = _proto(net)
    scope = namescope if not namescope or namescope.endswith("/") else namescope + "/"
    keep = {str(b) for b in list(losses) + list(param_grads) + list(dont_share_blobs or ())}

    def in_scope(name):
        return name.startswith((scope, "_" + scope))

    shareable = {name for name in _shareable(proto, keep) if in_scope(name) and
                 ("_grad" in name or share_activations)}
    sizes = {name: _count(shape) for name, shape in (blob_shapes or {}).items()}
    return _renamed(proto, _share(proto.op, shareable, proto.type not in ("", "simple"), sizes), scope)[0]


def _count(shape) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


def _sources(net) -> list:
    """Each op's type, args and, for each input, which op output (or external name) feeds it."""
    writer, described = {}, []
    for i, op in enumerate(net.op):
        inputs = [writer.get(name, ("external", name)) for name in op.input]
        described.append((op.type, op.engine, [a.SerializeToString() for a in op.arg], inputs, len(op.output)))
        for k, name in enumerate(op.output):
            writer[name] = (i, k)
    outputs = [writer.get(name, ("external", name)) for name in net.external_output]
    return [described, outputs]


def verify_graph_equality(net_a, net_b) -> bool:
    """True when the nets compute the same thing: same ops, each input fed by the same
    op output (blob names may differ), and the same external outputs."""
    return _sources(_proto(net_a)) == _sources(_proto(net_b))


def verify_inplace_blobs(net_a, net_b) -> bool:
    """True when both nets have the same in-place (input index, output index) pairs, op by op."""
    def pairs(net):
        return [{(i, o) for i, a in enumerate(op.input) for o, b in enumerate(op.output) if a == b}
                for op in _proto(net).op]
    return pairs(net_a) == pairs(net_b)


def compute_statistics(assignments) -> Statistics:
    """Bytes the assigned blobs take now (in the current workspace) apart, and shared."""
    from pycaffe2 import workspace
    nbytes = {name: workspace.FetchBlob(name).nbytes for group in assignments for name, _ in group}
    return Statistics(baseline_nbytes=sum(nbytes.values()),
                      optimized_nbytes=sum(max(nbytes[name] for name, _ in group) for group in assignments))
