"""RecurrentNetwork and its gradient (NumPy, CPU): a step net compiled once at
CreateNet and run per timestep over a private dict of blobs.

Caffe2 shows a step its slice of a sequence or state as a view, so ops writing
the internal blob write the buffer. Kernels here never write into arrays, so
the same effect comes from two moves per step: before it, each link's internal
blob is set to its rows of the external buffer; after it, the internal blobs
the step net writes are copied back into those rows. The forward pass keeps
each step's blobs (Caffe2's step workspaces) in its last output, where the
backward pass finds the activations of step t when it runs step t's gradient.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.operators.registry import register_cpu, register_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import net_from_text
from pycaffe2.schema.inference.recurrent_network import (
    ShapeError,
    check_aliases,
    check_gradient_args,
    check_initial_state,
    check_sequence,
    check_states,
    check_window,
    links,
)


class StepWorkspaces:
    """The forward pass's record for the backward pass: every step's blobs and the
    filled state buffers. A blob value, not a tensor (as Caffe2's step workspaces)."""

    def __init__(self, steps: list, states: dict, for_backward: bool):
        self.steps, self.states, self.for_backward = steps, states, for_backward

    def __repr__(self) -> str:
        return f"StepWorkspaces({len(self.steps)} steps, states {sorted(self.states)})"


def _net(value, what: str) -> caffe2_pb2.NetDef:
    """A NetDef arg, given as a NetDef or (as older Caffe2 models do) in text form."""
    if isinstance(value, caffe2_pb2.NetDef):
        net = caffe2_pb2.NetDef()
        net.CopyFrom(value)
    else:
        net, problem = net_from_text(value)
        if problem:
            raise ShapeError(f"{what} is {problem}")
    if net.type == "rnn":  # older Caffe2 models' step nets; Caffe2 runs them as simple nets
        net.type = "simple"
    return net


class _StepNet:
    """A compiled step net with the links it sees, run on a dict of blobs. The
    internal blobs of the links into `write_back` buffers are copied into their rows
    as soon as the op writing them has run, so later ops of the step that read
    those rows through another link (a window) see them, as in Caffe2."""

    def __init__(self, net, step_links, timestep: str, outer_names, write_back, compile_net):
        self.links, self.timestep = step_links, timestep
        known = set(outer_names) | {link.internal for link in step_links} | {timestep}
        targets = {link.internal for link in step_links if link.external in write_back}
        # A segment ends with the last op writing a linked blob (an in-place op after the
        # first writer, as attention's Reshape, still changes what the rows get).
        last_writer = {name: index for index, op in enumerate(net.op) for name in op.output if name in targets}
        ends = set(last_writer.values())
        self.segments, start = [], 0
        for index, op in enumerate(net.op):
            if index in ends or index == len(net.op) - 1:
                segment = caffe2_pb2.NetDef()
                segment.CopyFrom(net)
                del segment.op[:]
                segment.op.extend(net.op[start:index + 1])
                written = {name for name, last in last_writer.items() if start <= last <= index}
                self.segments.append((compile_net(segment, known), written))
                known |= {name for op in segment.op for name in op.output}
                start = index + 1
        self.written = {name for op in net.op for name in op.output}

    def run(self, blobs: dict, buffers: dict, t: int) -> dict:
        """Run step t on `blobs` (updated in place), writing linked blobs into their
        rows of `buffers`."""
        blobs[self.timestep] = np.array([t], np.int32)
        for link in self.links:
            rows = buffers[link.external]
            check_window(t + link.offset, link.window, len(rows), link)
            blobs[link.internal] = rows[t + link.offset:t + link.offset + link.window]
        for compiled, written in self.segments:
            compiled.run(blobs)
            for link in self.links:
                if link.internal in written:
                    self._write(blobs, buffers, t, link)
        return blobs

    @staticmethod
    def _write(blobs, buffers, t, link):
        target = buffers[link.external][t + link.offset:t + link.offset + link.window]
        value = np.asarray(blobs[link.internal])
        if value.size != target.size:
            raise ShapeError(f"step {t} wrote '{link.internal}' of shape {list(value.shape)}, but its "
                             f"rows of '{link.external}' are {list(target.shape)}")
        # In Caffe2 the blob is a view of the rows, so a write of the same size but
        # another shape (an in-place Reshape's gradient) lands there too.
        target[...] = value.reshape(target.shape)
        blobs[link.internal] = target.reshape(value.shape)  # later readers see the rows, in their shape


def _initial_rows(value: np.ndarray, n: int) -> np.ndarray:
    """An initial state as [K, N, D]: [D] is repeated over the batch."""
    if value.ndim == 1:
        return np.broadcast_to(value, (1, n, value.shape[0]))
    return value[None] if value.ndim == 2 else value


@register_cpu("RecurrentNetwork", specialize=True)
def recurrent_network(*, step_net, recurrent_states, initial_recurrent_state_ids, link_internal, link_external,
                      link_offset, link_window, alias_src, alias_dst, alias_offset, timestep, backward_step_net,
                      input_names, output_names, compile_net):
    check_states(recurrent_states, initial_recurrent_state_ids, len(input_names))
    check_aliases(alias_src, alias_dst, alias_offset, recurrent_states, output_names[:-1])
    step_links = links(link_internal, link_external, link_offset, link_window)
    step = _StepNet(_net(step_net, "step_net"), step_links, timestep, input_names, recurrent_states, compile_net)
    keep_steps = backward_step_net is not None

    def run(*inputs):
        outer = dict(zip(input_names, inputs))
        seq_len, n = check_sequence(inputs[0].shape)
        states = {}
        for state, index in zip(recurrent_states, initial_recurrent_state_ids):
            check_initial_state(inputs[index].shape, n, input_names[index])
            initial = _initial_rows(inputs[index], n)
            states[state] = np.zeros((seq_len + len(initial),) + initial.shape[1:], initial.dtype)
            states[state][:len(initial)] = initial
        buffers = {**outer, **states}
        steps = [step.run(dict(outer), buffers, t) for t in range(seq_len)]
        exposed = dict(states)  # an output may be a whole state buffer, as Caffe2's shared blob
        for src, dst, offset in zip(alias_src, alias_dst, alias_offset):
            rows = states[src]
            exposed[dst] = rows[offset if offset >= 0 else len(rows) + offset:]
        return (*(exposed[name] for name in output_names[:-1]),
                StepWorkspaces(steps if keep_steps else [], states, keep_steps))

    return run


@register_gradient("RecurrentNetwork")
def make_recurrent_network_gradient(g):
    with_grads, params = g.arg("outputs_with_grads"), g.arg("param")
    initial = g.arg("initial_recurrent_state_ids")
    inputs = [g.GO(i) for i in with_grads] + [g.I(i) for i in range(len(g.op.input))] + \
        [g.O(i) for i in range(len(g.op.output))]
    outputs = [g.GI(0)] + [g.GI(i) for i in params] + [g.GI(i) for i in initial]
    return [g.Op("RecurrentNetworkGradient", inputs, outputs)]


def _external_gradients(alias_src, alias_offset, outputs_with_grads, grads, states):
    """{state: gradient of its all-rows output} and {state: of its last-row output},
    each shaped like the rows it belongs to."""
    all_rows, last_row = {}, {}
    for grad, index in zip(grads, outputs_with_grads):
        rows = states[alias_src[index]]
        expected = rows.shape[1:] if alias_offset[index] == -1 else (len(rows) - 1,) + rows.shape[1:]
        if np.size(grad) != int(np.prod(expected)):
            raise ShapeError(f"the gradient of output {index} has shape {list(np.shape(grad))}, expected "
                             f"{list(expected)}")
        (last_row if alias_offset[index] == -1 else all_rows)[alias_src[index]] = np.reshape(grad, expected)
    return all_rows, last_row


def _initial_gradient(grad_rows: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """The gradient of an initial state from its state's gradient rows."""
    if initial.ndim == 3:
        return grad_rows[:len(initial)].copy()
    first = grad_rows[0]
    return first.copy() if initial.ndim == 2 else first.sum(axis=0)


@register_cpu("RecurrentNetworkGradient", specialize=True)
def recurrent_network_gradient(*, backward_step_net, recurrent_states, initial_recurrent_state_ids, link_internal,
                               link_external, link_offset, link_window, backward_link_internal,
                               backward_link_external, backward_link_offset, alias_src, alias_offset, timestep,
                               param, param_grads, outputs_with_grads, input_names, output_names, compile_net):
    check_gradient_args(param, param_grads, outputs_with_grads, alias_offset, alias_src, recurrent_states,
                        len(output_names), len(initial_recurrent_state_ids))
    if backward_step_net is None:
        raise ShapeError("no backward_step_net: the forward op was built forward only")
    k = len(outputs_with_grads)
    beyond = [i for i in list(param) + list(initial_recurrent_state_ids) if not 0 <= k + i < len(input_names) - 1]
    if beyond:
        raise ShapeError(f"param / initial_recurrent_state_ids {beyond} are not inputs of the forward op")
    input_grad = input_names[k] + "_grad"
    grad_links = links(backward_link_internal, backward_link_external, backward_link_offset, what="backward_link")
    buffers = {s + "_grad" for s in recurrent_states} | {input_grad}
    stray = sorted({link.external for link in grad_links} - buffers)
    if stray:
        raise ShapeError(f"backward links {stray} are neither a state's gradient nor '{input_grad}'")
    step_links = links(link_internal, link_external, link_offset, link_window) + grad_links
    step = _StepNet(_net(backward_step_net, "backward_step_net"), step_links, timestep, input_names, buffers,
                    compile_net)
    param_names = [input_names[k + p] for p in param]
    step_grads = list(param_grads) or list(output_names[1:1 + len(param)])

    def run(*inputs):
        scratch = inputs[-1]
        if not isinstance(scratch, StepWorkspaces) or not scratch.for_backward:
            raise ShapeError("the last input must be the step_workspaces of a RecurrentNetwork built with a "
                             "backward_step_net")
        outer = dict(zip(input_names, inputs))
        states = scratch.states
        gradients = {s + "_grad": np.zeros_like(states[s]) for s in recurrent_states}
        gradients[input_grad] = np.zeros_like(inputs[k])
        all_rows, last_row = _external_gradients(alias_src, alias_offset, outputs_with_grads, inputs[:k], states)
        for state, grad in last_row.items():
            gradients[state + "_grad"][-1] += grad
        sums = [np.zeros_like(outer[name]) for name in param_names]
        for t in reversed(range(len(scratch.steps))):
            for state, grad in all_rows.items():
                gradients[state + "_grad"][t + 1] += grad[t]
            blobs = step.run({**outer, **scratch.steps[t]}, {**outer, **states, **gradients}, t)
            for total, name in zip(sums, step_grads):
                if name in blobs and name in step.written:
                    total += blobs[name]
        initial = [_initial_gradient(gradients[s + "_grad"], inputs[k + i])
                   for s, i in zip(recurrent_states, initial_recurrent_state_ids)]
        return (gradients[input_grad], *sums, *initial)

    return run
