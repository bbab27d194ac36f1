"""Checks of the RecurrentNetwork family's args and inputs (plain lists and shapes,
so CreateNet, validate and a run raise the same ShapeError). The outputs' shapes
depend on the step net, so the rules return them unknown."""
from __future__ import annotations

from typing import NamedTuple

from pycaffe2.schema.inference import OpView, ShapeError, rule


class Link(NamedTuple):
    internal: str
    external: str
    offset: int
    window: int


def links(internal, external, offset, window=None, what: str = "link") -> list[Link]:
    """The links of parallel arg lists, which must be equally long."""
    window = [1] * len(offset) if window is None else list(window)
    lengths = {len(internal), len(external), len(offset), len(window)}
    if len(lengths) != 1:
        raise ShapeError(f"{what}_internal, {what}_external, {what}_offset (and link_window) must be equally "
                         f"long, got {len(internal)}, {len(external)}, {len(offset)}, {len(window)}")
    for name, k, w in zip(internal, offset, window):
        if k < 0 or w < 1:
            raise ShapeError(f"{what} '{name}' needs offset >= 0 and window >= 1, got {k} and {w}")
    return [Link(*fields) for fields in zip(internal, external, offset, window)]


def check_states(states, initial_ids, n_inputs: int) -> None:
    if len(states) != len(initial_ids):
        raise ShapeError(f"recurrent_states and initial_recurrent_state_ids must be equally long, got "
                         f"{len(states)} and {len(initial_ids)}")
    bad = [i for i in initial_ids if not 0 < i < n_inputs]
    if bad:
        raise ShapeError(f"initial_recurrent_state_ids {bad} are not inputs 1..{n_inputs - 1}")


def check_aliases(src, dst, offset, states, outputs) -> None:
    if not len(src) == len(dst) == len(offset):
        raise ShapeError(f"alias_src, alias_dst and alias_offset must be equally long, got "
                         f"{len(src)}, {len(dst)}, {len(offset)}")
    unknown = [s for s in src if s not in states]
    if unknown:
        raise ShapeError(f"alias_src {unknown} are not recurrent_states")
    if outputs is not None:
        missing = [d for d in dst if d not in outputs]
        stray = [o for o in outputs if o not in dst and o not in states]
        if missing or stray:
            raise ShapeError(f"the outputs before step_workspaces must be the alias_dst blobs {list(dst)} and "
                             f"any recurrent_states, got {list(outputs)}")


def check_sequence(shape) -> tuple[int, int]:
    """(T, N) of the input sequence."""
    if len(shape) < 2:
        raise ShapeError(f"input 0 must be a T x N x ... sequence, got shape {list(shape)}")
    return shape[0], shape[1]


def check_initial_state(shape, n: int, name: str) -> None:
    if not 1 <= len(shape) <= 3 or (len(shape) >= 2 and shape[-2] != n):
        raise ShapeError(f"initial state '{name}' must be [D], [N, D] or [K, N, D] with N = {n}, "
                         f"got {list(shape)}")


def check_window(start: int, window: int, rows: int, link: Link) -> None:
    if start + window > rows:
        raise ShapeError(f"link '{link.internal}' reads rows {start}..{start + window - 1} of "
                         f"'{link.external}', which has {rows}")


def check_gradient_args(param, param_grads, outputs_with_grads, alias_offset, alias_src, states,
                        n_outputs: int, n_initial: int) -> None:
    if param_grads and len(param_grads) != len(param):
        raise ShapeError(f"param_grads must name one blob per param, got {len(param_grads)} for {len(param)}")
    if not outputs_with_grads:
        raise ShapeError("outputs_with_grads must name at least one output")
    for index in outputs_with_grads:
        if not 0 <= index < len(alias_src):
            raise ShapeError(f"outputs_with_grads {index} is not an alias output (0..{len(alias_src) - 1})")
        if alias_offset[index] not in (1, -1):
            raise ShapeError(f"output {index} with a gradient must alias rows 1.. or the last row "
                             f"(alias_offset 1 or -1), got {alias_offset[index]}")
    if len(states) != n_initial:
        raise ShapeError(f"recurrent_states and initial_recurrent_state_ids must be equally long, got "
                         f"{len(states)} and {n_initial}")
    if n_outputs != 1 + len(param) + n_initial:
        raise ShapeError(f"needs {1 + len(param) + n_initial} outputs (the input's, the {len(param)} params' "
                         f"and the {n_initial} initial states' gradients), got {n_outputs}")


@rule("recurrent_network")
def recurrent_network(op: OpView, inputs: list) -> list:
    """RecurrentNetwork: the args agree with each other; outputs unknown."""
    states = list(op.arg("recurrent_states"))
    check_states(states, list(op.arg("initial_recurrent_state_ids")), op.n_inputs)
    links(op.arg("link_internal"), op.arg("link_external"), op.arg("link_offset"), op.arg("link_window"))
    check_aliases(op.arg("alias_src"), op.arg("alias_dst"), op.arg("alias_offset"), states, None)
    if inputs[0] is not None:
        _, n = check_sequence(inputs[0].shape)
        for i in op.arg("initial_recurrent_state_ids"):
            if inputs[i] is not None:
                check_initial_state(inputs[i].shape, n, f"input {i}")
    return [None] * op.n_outputs


@rule("recurrent_network_gradient")
def recurrent_network_gradient(op: OpView, inputs: list) -> list:
    """RecurrentNetworkGradient: the args agree with each other; outputs unknown."""
    links(op.arg("backward_link_internal"), op.arg("backward_link_external"), op.arg("backward_link_offset"),
          what="backward_link")
    check_gradient_args(list(op.arg("param")), list(op.arg("param_grads")), list(op.arg("outputs_with_grads")),
                        list(op.arg("alias_offset")), list(op.arg("alias_src")), list(op.arg("recurrent_states")),
                        op.n_outputs, len(op.arg("initial_recurrent_state_ids")))
    return [None] * op.n_outputs
