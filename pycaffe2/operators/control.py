"""Control-flow kernels: If, While, Do, CreateScope, HasScope.

Their nets come compiled (the executor passes `subnets`, each inheriting the
op's device option, so an If on CUDA runs its branches' kernels on CUDA; the
same functions serve both devices) and they run them on the live blob mapping (`blobs`).
Each kernel runs its nets on an Overlay and returns the overlay's writes, which
the executor stores only when the whole op succeeded, so a failing inner op
leaves the outer blobs as they were. Do's child workspace (a ChildWorkspace)
sees only the blobs bound to it; the workspace stack keeps every forward
child so that a gradient Do can pop it and run its gradient net where the
forward net's local blobs still are. The gradient makers are in
pycaffe2/gradient/control.py (they build backward passes of the inner nets).
"""
from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from pycaffe2.devices.cuda import is_gpu_array
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.operators.registry import register_cpu, register_cuda
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.control import (
    check_condition,
    do_bindings,
    loop_counts,
    scan_axis,
    scan_counts,
)


class Overlay(MutableMapping):
    """Reads fall through to `parent`; writes stay here until committed."""

    def __init__(self, parent):
        self.parent, self.writes = parent, {}

    def __getitem__(self, name):
        return self.writes[name] if name in self.writes else self.parent[name]

    def __setitem__(self, name, value):
        self.writes[name] = value

    def __delitem__(self, name):
        raise PyCaffe2Error(f"blob '{name}' cannot be removed inside a control op")

    def __contains__(self, name):
        return name in self.writes or name in self.parent

    def __iter__(self):
        yield from self.writes
        yield from (name for name in self.parent if name not in self.writes)

    def __len__(self):
        return sum(1 for _ in self)


class ChildWorkspace(MutableMapping):
    """A Do op's workspace: bound names read and write the parent's blobs,
    every other name is local (and local copies win over bindings)."""

    def __init__(self, parent, bindings: dict):
        self.parent, self.bindings, self.local = parent, dict(bindings), {}

    def bind(self, parent, bindings: dict, skip_local: bool = False) -> None:
        self.parent = parent
        for inner, outer in bindings.items():
            if skip_local and inner in self.local:
                continue
            self.local.pop(inner, None)
            self.bindings[inner] = outer

    def __getitem__(self, name):
        if name in self.local or name not in self.bindings:
            return self.local[name]
        return self.parent[self.bindings[name]]

    def __setitem__(self, name, value):
        if name in self.bindings and name not in self.local:
            self.parent[self.bindings[name]] = value
        else:
            self.local[name] = value

    def __delitem__(self, name):
        del self.local[name]

    def __contains__(self, name):
        return name in self.local or (name in self.bindings and self.bindings[name] in self.parent)

    def __iter__(self):
        yield from self.local
        yield from (name for name in self.bindings if name not in self.local and self.bindings[name] in self.parent)

    def __len__(self):
        return sum(1 for _ in self)

    def keep_copies(self, names) -> None:
        """Local copies of bound blobs as they are now (copy_external_blobs)."""
        for name in names:
            if name in self.bindings and self.bindings[name] in self.parent:
                self.local[name] = self.parent[self.bindings[name]]


class WorkspaceStack:
    """Caffe2's workspace stack: forward Do ops push, gradient Do ops pop."""

    def __init__(self):
        self.workspaces: list[ChildWorkspace] = []

    def __repr__(self) -> str:
        return f"WorkspaceStack({len(self.workspaces)} workspace(s))"

    def empty(self) -> bool:
        return not self.workspaces

    def push(self, parent, bindings) -> ChildWorkspace:
        self.workspaces.append(ChildWorkspace(parent, bindings))
        return self.workspaces[-1]

    def reuse_top(self, parent, bindings) -> ChildWorkspace:
        self.workspaces[-1].bind(parent, bindings)
        return self.workspaces[-1]

    def pop(self, parent, grad_bindings) -> ChildWorkspace:
        if not self.workspaces:
            raise PyCaffe2Error("the workspace stack is empty: the gradient Do has no forward workspace "
                                "to run in (did the forward Do run?)")
        workspace = self.workspaces.pop()
        workspace.bind(parent, grad_bindings, skip_local=True)
        return workspace


def _truth(value, what: str) -> bool:
    if is_gpu_array(value):
        value = value.get()
    if not isinstance(value, np.ndarray):
        raise PyCaffe2Error(f"{what} must be a single bool, got a {type(value).__name__}")
    check_condition(value.shape, str(value.dtype))
    return bool(value.reshape(-1)[0])


def _stack(value, name: str) -> WorkspaceStack:
    if not isinstance(value, WorkspaceStack):
        raise PyCaffe2Error(f"'{name}' must be a workspace stack made by CreateScope, got a "
                            f"{type(value).__name__}")
    return value


@register_cuda("If")
@register_cpu("If")
def if_op(condition, *blobs_in, then_net, else_net, subnets, blobs):
    chosen = "then_net" if _truth(condition, "the condition") else "else_net"
    overlay = Overlay(blobs)
    if chosen in subnets:
        subnets[chosen].run(overlay)
    return overlay.writes


@register_cuda("While")
@register_cpu("While")
def while_op(condition, *blobs_in, loop_net, cond_net, subnets, blobs, input_names):
    overlay = Overlay(blobs)
    if "cond_net" in subnets:
        subnets["cond_net"].run(overlay)
    while _truth(overlay[input_names[0]], f"the condition '{input_names[0]}'"):
        subnets["loop_net"].run(overlay)
        if "cond_net" in subnets:
            subnets["cond_net"].run(overlay)
    return overlay.writes


@register_cuda("Do")
@register_cpu("Do")
def do_op(*blobs_in, net, inner_blobs, outer_blobs_idx, saved_fwd_blobs, reuse_workspace,
          copy_external_blobs, subnets, blobs, input_names, output_names, is_gradient_op):
    bindings = do_bindings(input_names, output_names, inner_blobs, outer_blobs_idx)
    stack = _stack(blobs_in[-1], input_names[-1])
    overlay = Overlay(blobs)
    if is_gradient_op:
        child = stack.pop(overlay, bindings)  # saved_fwd_blobs are among its local blobs
    elif reuse_workspace and not stack.empty():
        child = stack.reuse_top(overlay, bindings)
    else:
        child = stack.push(overlay, bindings)
    subnets["net"].run(child)
    if copy_external_blobs and not is_gradient_op:
        child.keep_copies(bindings)
    return overlay.writes


@register_cpu("CreateScope")
def create_scope():
    return WorkspaceStack()


@register_cpu("HasScope")
def has_scope(scope, *, input_names):
    return np.array(not _stack(scope, input_names[0]).empty())


def _optional_scalar(value, what: str):
    """None for an empty tensor (an absent input), else its one value."""
    if value.size == 0:
        return None
    if value.size != 1:
        raise ShapeError(f"{what} must be one value (or empty), got {list(value.shape)}")
    return value.reshape(-1)[0]


def _stack_slices(slices: list, axis: int, backward: bool, what: str) -> np.ndarray:
    if not slices:  # no iteration: nothing says the slice's shape
        return np.zeros((0,), np.float32)
    if backward:
        slices = slices[::-1]
    return np.stack(slices, axis=scan_axis(axis, slices[0].ndim + 1, what))


@register_cpu("Loop")
def loop_op(max_trip, condition, *blobs_in, body, body_inputs, subnets, blobs, output_names):
    carried, scans = loop_counts(2 + len(blobs_in), body_inputs, body.external_output)
    limit, keep_going = _optional_scalar(max_trip, "M"), _optional_scalar(condition, "cond")
    keep_going = True if keep_going is None else bool(keep_going)
    values, slices = list(blobs_in[:carried]), [[] for _ in range(scans)]
    overlay, outs, step = Overlay(blobs), list(body.external_output), 0
    while keep_going and (limit is None or step < int(limit)):
        overlay[body_inputs[0]], overlay[body_inputs[1]] = np.array(step, np.int64), np.array(keep_going)
        overlay.writes.update(zip(body_inputs[2:], values))
        subnets["body"].run(overlay)
        keep_going = _truth(overlay[outs[0]], f"the body's condition '{outs[0]}'")
        values = [overlay[name] for name in outs[1:1 + carried]]
        for k, name in enumerate(outs[1 + carried:]):
            slices[k].append(overlay[name])
        step += 1
    results = values + [_stack_slices(s, 0, False, "scan output") for s in slices]
    return dict(zip(output_names, results))


def _scan_once(states, inputs, args, subnets, overlay) -> tuple[list, list]:
    """One unbatched scan: (final states, scan outputs)."""
    body, names = args["body"], args["body_inputs"]
    n_states, n_scans = len(states), len(inputs)
    directions = list(args["scan_input_directions"]) or [0] * n_scans
    axes = [scan_axis(a, x.ndim, "scan input") for a, x in zip(list(args["scan_input_axes"]) or [0] * n_scans,
                                                               inputs)]
    lengths = {x.shape[a] for x, a in zip(inputs, axes)}
    if len(lengths) != 1:
        raise ShapeError(f"the scan inputs disagree on the sequence length: {sorted(lengths)}")
    (length,) = lengths
    outs = list(body.external_output)
    slices = [[] for _ in outs[n_states:]]
    for t in range(length):
        overlay.writes.update(zip(names[:n_states], states))
        for name, x, axis, backward in zip(names[n_states:], inputs, axes, directions):
            overlay[name] = np.take(x, length - 1 - t if backward else t, axis=axis)
        subnets["body"].run(overlay)
        states = [overlay[name] for name in outs[:n_states]]
        for k, name in enumerate(outs[n_states:]):
            slices[k].append(overlay[name])
    out_dirs = list(args["scan_output_directions"]) or [0] * len(slices)
    out_axes = list(args["scan_output_axes"]) or [0] * len(slices)
    return states, [_stack_slices(s, a, d == 1, "scan output") for s, a, d in zip(slices, out_axes, out_dirs)]


@register_cpu("Scan")
def scan_op(*blobs_in, body, body_inputs, num_scan_inputs, scan_input_directions, scan_input_axes,
            scan_output_directions, scan_output_axes, batched, subnets, blobs, output_names):
    n_states, _ = scan_counts(len(blobs_in), body_inputs, body.external_output, num_scan_inputs, batched)
    args = {"body": body, "body_inputs": body_inputs, "scan_input_directions": scan_input_directions,
            "scan_input_axes": scan_input_axes, "scan_output_directions": scan_output_directions,
            "scan_output_axes": scan_output_axes}
    first = 1 if batched else 0
    states = list(blobs_in[first:first + n_states])
    inputs = list(blobs_in[first + n_states:first + n_states + num_scan_inputs])
    overlay = Overlay(blobs)
    if not batched:
        states, outputs = _scan_once(states, inputs, args, subnets, overlay)
        return dict(zip(output_names, states + outputs))
    if blobs_in[0].size and np.any(blobs_in[0] != inputs[0].shape[1]):
        raise ShapeError("sequence_lens shorter than the scan inputs are not supported")
    per_batch = [_scan_once([s[b] for s in states], [x[b] for x in inputs], args, subnets, overlay)
                 for b in range(inputs[0].shape[0])]
    results = [np.stack([p[0][k] for p in per_batch]) for k in range(n_states)]
    results += [np.stack([p[1][k] for p in per_batch]) for k in range(len(per_batch[0][1]))] if per_batch else []
    return dict(zip(output_names, results))
