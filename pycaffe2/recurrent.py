"""Caffe2's recurrent.recurrent_net: one RecurrentNetwork op from a cell net.

The cell net is one timestep; its external inputs are the sequence's slice
(input_t), the previous states and any outer blobs (parameters: "references").
Each state gets a (T + 1) x N x D buffer `<scope>/<state>_states`, exposed as
the outputs `<state output>_all` (rows 1..T) and `<state output>_last`. The
backward step net is the cell's own backward pass, built here by the gradient
registry with the cell outputs' gradients as given blobs.
"""
from __future__ import annotations

from pycaffe2 import core, workspace
from pycaffe2.core_net import blobs_read_before_written
from pycaffe2.gradient import GetBackwardPass
from pycaffe2.proto import caffe2_pb2


def _written(ops) -> set[str]:
    return {name for op in ops for name in op.output}


def _accumulate_into_given(proto: caffe2_pb2.NetDef) -> None:
    """A backward op writing a blob the step is given (a state output's gradient that the
    next step's links also fill) adds to it instead of replacing it, as in Caffe2."""
    given = set(proto.external_input)
    ops = list(proto.op)
    del proto.op[:]
    for op in ops:
        proto.op.add().CopyFrom(op)
        for j, name in enumerate(op.output):
            if name in given and name not in op.input:
                proto.op[-1].output[j] = name + "_accum"
                proto.op.add().CopyFrom(core.CreateOperator("Sum", [name, name + "_accum"], [name]))


def _backward_step(cell: caffe2_pb2.NetDef, recompute):
    """(backward step NetDef, {blob: its gradient blob}) of the cell net."""
    outputs = list(cell.external_output)
    grad_ops, grad_map = GetBackwardPass(cell.op, {o: o + "_grad" for o in outputs})
    backward = core.Net("RecurrentBackwardStep").Proto()
    backward.op.extend(op for op in cell.op if recompute.intersection(op.output))
    backward.op.extend(grad_ops)
    forward_written = _written(cell.op)
    backward.external_input.extend(
        b for b in blobs_read_before_written(backward.op) if b in forward_written and b not in outputs)
    backward.type = "simple"
    return backward, {str(k): str(v) for k, v in grad_map.items()}


def recurrent_net(net, cell_net, inputs, initial_cell_inputs, links, timestep=None, scope=None,
                  outputs_with_grads=(0,), recompute_blobs_on_backward=None, forward_only=False):
    """Add a RecurrentNetwork op running `cell_net` over `inputs` ([(input_t, sequence)],
    one sequence) to `net`; returns its outputs (`<state>_all`, `<state>_last` per state).

    initial_cell_inputs: [(cell input name, outer blob with its initial value)];
    links: {cell input at t+1: cell output at t}; timestep: the cell's timestep blob
    ("timestep" by default); scope: prefix of the op's internal blobs."""
    if len(inputs) != 1:
        raise ValueError(f"recurrent_net takes one input sequence, got {len(inputs)}")
    cell = cell_net.Proto()
    cell.type = "simple"
    # Caffe2's Net lists every blob an op reads before any op writes it as an external input
    cell.external_input.extend(b for b in blobs_read_before_written(cell.op) if b not in cell.external_input)
    op_name = net.NextName("recurrent")
    prefix = op_name if scope is None else scope

    def scoped(name):
        return f"{prefix}/{name}"

    known = [str(i[0]) for i in inputs] + [str(i[1]) for i in inputs]
    known += [str(x[1]) for x in initial_cell_inputs] + [str(x[0]) for x in initial_cell_inputs]
    if timestep is not None:
        known.append(str(timestep))
    references = [b for b in cell.external_input if b not in known]
    all_inputs = [str(i[1]) for i in inputs] + [str(x[1]) for x in initial_cell_inputs] + references

    recompute = {str(b) for b in recompute_blobs_on_backward or ()}
    backward, grad_map = (None, {}) if forward_only else _backward_step(cell, recompute)
    forward_links, backward_links, aliases, states, all_outputs = [], [], [], [], []
    for cell_input, _ in initial_cell_inputs:
        cell_input = str(cell_input)
        state = scoped(cell_input + "_states")
        cell_output = str(links[cell_input])
        forward_links += [(cell_input, state, 0), (cell_output, state, 1)]
        aliases += [(state, cell_output + "_all", 1), (state, cell_output + "_last", -1)]
        all_outputs += [cell_output + "_all", cell_output + "_last"]
        states.append(state)
        if backward is not None:
            backward_links.append((cell_output + "_grad", state + "_grad", 1))
            backward.external_input.append(cell_output + "_grad")
            written = _written(backward.op)
            prev_grad = cell_input + "_grad" if cell_input + "_grad" in written else grad_map.get(cell_input)
            if prev_grad is not None:
                backward_links.append((prev_grad, state + "_grad", 0))
    for input_t, sequence in inputs:
        forward_links.append((str(input_t), str(sequence), 0))
        if backward is not None and str(input_t) in grad_map:
            backward_links.append((grad_map[str(input_t)], str(sequence) + "_grad", 0))

    args = {}
    if backward is not None:
        backward.external_input.extend(list(cell.external_input) + list(cell.external_output))
        _accumulate_into_given(backward)
        params = [r for r in references if r in grad_map]
        args = {
            "param": [all_inputs.index(p) for p in params],
            "param_grads": [grad_map[p] for p in params],
            "backward_link_internal": [link[0] for link in backward_links],
            "backward_link_external": [link[1] for link in backward_links],
            "backward_link_offset": [link[2] for link in backward_links],
            "outputs_with_grads": list(outputs_with_grads),
            "recompute_blobs_on_backward": sorted(recompute),
        }
        if backward.op:
            args["backward_step_net"] = backward
    # names as they are (BlobReferences): a NameScope around the call must not scope them again
    results = net.RecurrentNetwork(
        [core.BlobReference(b) for b in all_inputs],
        [core.BlobReference(b) for b in all_outputs] + [scoped("step_workspaces")],
        alias_src=[a[0] for a in aliases], alias_dst=[a[1] for a in aliases],
        alias_offset=[a[2] for a in aliases], recurrent_states=states,
        initial_recurrent_state_ids=[all_inputs.index(str(x[1])) for x in initial_cell_inputs],
        link_internal=[link[0] for link in forward_links], link_external=[link[1] for link in forward_links],
        link_offset=[link[2] for link in forward_links], enable_rnn_executor=1, step_net=cell,
        timestep="timestep" if timestep is None else str(timestep), **args)
    return results[:-1]


def set_rnn_executor_config(rnn_op, num_threads=None, max_cuda_streams=None) -> None:
    """Caffe2's step-executor settings on a RecurrentNetwork(Gradient) op; the steps run
    in order here, so the op accepts them and they change nothing."""
    if rnn_op.type not in ("RecurrentNetwork", "RecurrentNetworkGradient"):
        raise ValueError(f"set_rnn_executor_config needs a RecurrentNetwork op, got {rnn_op.type}")
    for name, value in (("num_threads", num_threads), ("max_cuda_streams", max_cuda_streams)):
        if value is not None:
            rnn_op.arg.add(name="rnn_executor." + name, i=value)


def retrieve_step_blobs(net, prefix="rnn") -> list:
    """Copy the blobs each step of `net`'s RecurrentNetwork ops made (kept for the backward
    pass) into the current workspace as `<prefix>_<blob><t>`; returns their names (bytes,
    as Caffe2's string tensor gives them). Blobs the op took from outside are left out."""
    names = []
    for op in net.Proto().op:
        if op.type != "RecurrentNetwork":
            continue
        scratch = workspace.FetchBlob(op.output[-1])
        for t, step in enumerate(getattr(scratch, "steps", ())):
            for blob, value in step.items():
                if blob not in op.input:
                    workspace.FeedBlob(f"{prefix}_{blob}{t}", value)
                    names.append(f"{prefix}_{blob}{t}".encode())
    return names
