"""The blob-version graph the inference transforms work on.

Each op output is a new version of its blob (a Value); each op input points at the
version it reads, so a net that writes a name many times is followed exactly. Passes
rename versions, drop ops and rewire readers; `Graph.rename` refuses whatever could
change what an op reads, and `Graph.emit` writes the NetDef back out.
"""
from __future__ import annotations

from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import nested_blobs
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import bind_args


class Value:
    """One version of a blob: written by one op output (producer None: from outside the net)."""

    __slots__ = ("name", "pinned", "producer", "readers")

    def __init__(self, name: str, producer):
        self.name, self.producer, self.readers, self.pinned = name, producer, [], producer is None


class Node:
    __slots__ = ("alive", "index", "inputs", "op", "outputs", "pos")

    def __init__(self, op, index: int):
        self.op, self.index, self.pos, self.alive = op, index, index, True
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []

    def label(self) -> str:
        return f"op {self.index} ({self.op.type})"


class Graph:
    def __init__(self, net: caffe2_pb2.NetDef, keep):
        self.nodes: list[Node] = []
        live: dict[str, Value] = {}
        for index, op in enumerate(net.op):
            node = Node(op, index)
            for name in op.input:
                value = live.get(name) or live.setdefault(name, Value(name, None))
                value.readers.append(node)
                node.inputs.append(value)
            for name in op.output:
                live[name] = Value(name, node)
                node.outputs.append(live[name])
            self.nodes.append(node)
        # Names nets inside args use, and external inputs' names: no version of them is renamed.
        self.inner = inner_names(net) | set(net.external_input)
        for name in {*net.external_output, *keep}:
            if name in live:  # the final version keeps its name: it is what is fetched
                live[name].pinned = True
        for node in self.nodes:
            for value in (*node.inputs, *node.outputs):
                value.pinned = value.pinned or value.name in self.inner

    def name_free(self, start: int, stop: int, name: str) -> bool:
        """No live op strictly between positions start and stop reads or writes `name`."""
        return not any(node.alive and any(v.name == name for v in (*node.inputs, *node.outputs))
                       for node in self.nodes[start + 1:stop])

    def rename(self, value: Value, name: str, until: Node) -> bool:
        """Call `value` (made in the net, read up to `until`) `name`, with the versions that ops
        before it overwrote in place (so they stay in place); False, changing nothing, when
        that could change what an op reads."""
        chain = [value]  # value, then the version its producer overwrote in place, ...
        while chain[-1].producer is not None:
            same = [v for v in chain[-1].producer.inputs if v.name == chain[-1].name]
            if not same:
                break
            chain.append(same[0])
        if name in self.inner or any(v.pinned or v.producer is None for v in chain):
            return False
        if not self.name_free(chain[-1].producer.pos, until.pos, name):
            return False
        if not all(_producer_allows(v, name, chain) for v in chain):
            return False
        for v in chain:
            v.name = name
        return True

    def remove(self, node: Node) -> None:
        node.alive = False
        for value in node.inputs:
            value.readers = [r for r in value.readers if r is not node]

    @staticmethod
    def merge(into: Value, old: Value) -> None:
        """Readers of `old` read `into` instead (same name by now, or renamed by the caller)."""
        for reader in old.readers:
            reader.inputs = [into if v is old else v for v in reader.inputs]
        into.readers += old.readers
        into.pinned = into.pinned or old.pinned

    def emit(self, net: caffe2_pb2.NetDef) -> caffe2_pb2.NetDef:
        out = caffe2_pb2.NetDef()
        out.CopyFrom(net)
        del out.op[:]
        for node in self.nodes:
            if node.alive:
                op = out.op.add()
                op.CopyFrom(node.op)
                op.input[:] = [v.name for v in node.inputs]
                op.output[:] = [v.name for v in node.outputs]
        return out


def _producer_allows(value: Value, name: str, chain: list[Value]) -> bool:
    """Whether the op making `value` may write it as `name` (its schema's in-place rules)."""
    producer = value.producer
    schema = get_schema(producer.op.type)
    slot = producer.outputs.index(value)
    if schema is None or any(o == slot and producer.inputs[i] not in chain for i, o in schema.inplace_enforced
                             if i < len(producer.inputs)):
        return False
    if any(v.name == name for o, v in enumerate(producer.outputs) if o != slot):
        return False
    return all(schema.inplace_ok(i, slot) for i, v in enumerate(producer.inputs) if v.name == name)


def inner_names(net: caffe2_pb2.NetDef) -> set[str]:
    """Every name the nets inside `net`'s ops mention (proto.checks.nested_blobs): never renamed."""
    return set().union(*(nested_blobs(op) for op in net.op))


def canonical(node: Node) -> str | None:
    """The op's type as its schema spells it (Conv for Conv2D), None without a schema."""
    schema = get_schema(node.op.type)
    return schema.type if schema is not None else None


def bound_args(node: Node) -> dict:
    """The op's args, typed and defaulted by its schema."""
    return bind_args(get_schema(node.op.type), node.op)
