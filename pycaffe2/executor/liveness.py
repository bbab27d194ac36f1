"""Which blobs a net makes for itself, and when each is last touched: the live-range
facts that both blob freeing at CreateNet (`free_blobs`) and the memonger's blob
sharing stand on.

A net's own blob is one it writes before any op reads it. Never its own: external
inputs and outputs, blobs an op reads before the net writes them (they come from
outside, or carry over from one RunNet to the next), every name a nested net
(If/While/Do/RecurrentNetwork) or a string argument mentions (they refer to outer
blobs by name), and the names a caller keeps. Uses are given as (reads, writes)
pairs per op, so callers pass OperatorDefs or compiled steps alike.
"""
from __future__ import annotations

from pycaffe2.proto.checks import nested_blobs


def own_blobs(uses, keep=()) -> set[str]:
    """The blobs written before any op reads them, less `keep`. `uses`: (reads, writes)
    per op, in run order."""
    read_first, written = set(keep), set()
    for reads, writes in uses:
        read_first.update(name for name in reads if name not in written)
        written.update(writes)
    return written - read_first


def net_own_blobs(net, uses=None, keep=(), check_text_net=None) -> set[str]:
    """`own_blobs` of `net` less its external inputs and outputs, `keep` and every name its
    nested nets mention. `uses` default to its ops' (inputs, outputs)."""
    kept = set(keep) | set(net.external_input) | set(net.external_output)
    for op in net.op:
        kept |= nested_blobs(op, check_text_net)
    return own_blobs([(op.input, op.output) for op in net.op] if uses is None else uses, kept)


def last_touches(uses, opaque=()) -> dict[str, int]:
    """blob -> the index of the last op that reads or writes it. An op in `opaque` may
    read any blob by name (it gets the workspace): every blob written before it lives
    at least until it."""
    last, opaque = {}, set(opaque)
    for index, (reads, writes) in enumerate(uses):
        if index in opaque:
            last.update(dict.fromkeys(last, index))
        last.update(dict.fromkeys(reads, index))
        last.update(dict.fromkeys(writes, index))
    return last


def free_after(uses, freeable, opaque=()) -> list[tuple[str, ...]]:
    """For each op, the blobs of `freeable` that no later op touches: free once it is done."""
    plan = [[] for _ in uses]
    for name, index in last_touches(uses, opaque).items():
        if name in freeable:
            plan[index].append(name)
    return [tuple(sorted(names)) for names in plan]
