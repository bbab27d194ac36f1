"""Inference rules of the control family, and the checks its kernels share:
the condition blob of If and While, and Do's blob bindings (CreateNet, validate
and a run refuse the same bindings with the same words)."""
from __future__ import annotations

from pycaffe2.schema.inference import ShapeError, TensorInfo, rule


def check_condition(shape, dtype) -> None:
    """A condition is one bool (any rank, one element)."""
    size = 1
    for dim in shape:
        size *= int(dim)
    if size != 1 or dtype not in (None, "bool"):
        raise ShapeError(f"the condition must be a single bool, got {list(shape)} {dtype}")


def do_bindings(inputs, outputs, inner_blobs, outer_blobs_idx) -> dict[str, str]:
    """{inner name: outer name} of a Do op; the last input and output are its
    workspace stack. Every outer blob must be bound to exactly one inner name."""
    if not inputs or not outputs:
        raise ShapeError("needs the workspace stack as its last input and last output")
    if inputs[-1] != outputs[-1]:
        raise ShapeError(f"the last input ('{inputs[-1]}') and last output ('{outputs[-1]}') must be "
                         "the same workspace stack blob")
    for kind, names in (("input", inputs[:-1]), ("output", outputs[:-1])):
        repeated = sorted({n for n in names if list(names).count(n) > 1})
        if repeated:
            raise ShapeError(f"{kind} blob(s) {', '.join(repeated)} are listed twice")
    outer = list(inputs[:-1]) + list(outputs[:-1])
    if len(inner_blobs) != len(outer_blobs_idx):
        raise ShapeError(f"inner_blobs has {len(inner_blobs)} name(s) but outer_blobs_idx "
                         f"{len(outer_blobs_idx)} index(es)")
    bindings: dict[str, str] = {}
    for inner, index in zip(inner_blobs, outer_blobs_idx):
        if inner in bindings:
            raise ShapeError(f"inner blob '{inner}' is bound twice")
        if not 0 <= index < len(outer):
            raise ShapeError(f"outer_blobs_idx {index} (inner '{inner}') is out of range [0, {len(outer) - 1}]")
        if outer[index] in bindings.values():
            raise ShapeError(f"outer blob '{outer[index]}' is bound to two inner names")
        bindings[inner] = outer[index]
    unbound = sorted(set(outer) - set(bindings.values()))
    if unbound:
        raise ShapeError(f"outer blob(s) {', '.join(unbound)} are bound to no inner name")
    return bindings


@rule("control_if")
def infer_if(op, inputs):
    if inputs and inputs[0] is not None:
        check_condition(inputs[0].shape, inputs[0].dtype)
    return [None] * op.n_outputs


@rule("control_has_scope")
def infer_has_scope(op, inputs):
    return [TensorInfo((), "bool")]


def loop_counts(n_inputs: int, body_inputs, body_outputs) -> tuple[int, int]:
    """Loop's (loop-carried, scan outputs) counts from its body's formal names."""
    carried = len(body_inputs) - 2
    if carried < 0:
        raise ShapeError(f"body_inputs must name the iteration number and the condition first, got "
                         f"{list(body_inputs)}")
    if n_inputs < 2 + carried:
        raise ShapeError(f"{carried} loop-carried value(s) need {2 + carried} inputs, got {n_inputs}")
    scans = len(body_outputs) - 1 - carried
    if scans < 0:
        raise ShapeError(f"the body must output the condition and {carried} loop-carried value(s), it "
                         f"outputs {list(body_outputs)}")
    return carried, scans


def scan_counts(n_inputs: int, body_inputs, body_outputs, num_scan_inputs: int, batched) -> tuple[int, int]:
    """Scan's (states, scan outputs) counts from its body's formal names."""
    states = len(body_inputs) - num_scan_inputs
    if states < 0 or n_inputs < (1 if batched else 0) + len(body_inputs):
        raise ShapeError(f"body_inputs {list(body_inputs)} must name the states and {num_scan_inputs} scan "
                         f"input(s), each fed by an input of the op")
    if len(body_outputs) < states:
        raise ShapeError(f"the body must output {states} state(s), it outputs {list(body_outputs)}")
    return states, len(body_outputs) - states


def scan_axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{what} axis {axis} is out of range for rank {rank}")
    return axis % rank
