"""A net's steps as one generated Python function: RunNet with no per-op interpretation.

Each blob lives in a local variable of the generated function while it runs: an
input is read from the blob mapping once, at its first use, and each output is
stored in the mapping as soon as its step returns, unless the net frees it
(`free_blobs`): then it stays in its local, and `del` drops it after the last
step that touches it. A step that may see the mapping itself (control ops, Load
with load_all, kernels given the workspace) is a sync point: the freeable locals
written so far are stored before it, and blobs are read afresh after it.
Kernels, their bound args (passed as keywords, no dict per call) and blob names
are the function's globals, so it has no prologue and a small frame.

The generated source holds only identifiers made here (v0, n0, k0, w0_0, ...):
blob names, kernels and args come in as values, so nothing from a net file
becomes code. When a step fails, `recover` finds its line from the traceback.
"""
from __future__ import annotations

import keyword

FILENAME = "<pycaffe2 net>"


class Line:
    """A generated line that calls a kernel: its step, and the step's inputs read from
    locals ({blob name: local name}), to describe them when it fails."""

    __slots__ = ("from_locals", "step")

    def __init__(self, step, from_locals: dict):
        self.step, self.from_locals = step, from_locals


def generate(steps, free_after=None):
    """(run(blobs), {line number: Line}) for `steps`; `free_after[i]`: the blobs to drop
    once step i is done (they never reach the mapping unless a sync point needs them)."""
    freed = {name for names in (free_after or ()) for name in names}
    names = sorted({name for step in steps for name in step.inputs + step.outputs + step.writes} | freed)
    local = {name: f"v{i}" for i, name in enumerate(names)}
    const = {name: f"n{i}" for i, name in enumerate(names)}
    body, lines = [], {}
    loaded, bound, pending = set(), set(), {}  # pending: freeable blobs only in their locals
    stored, anything_stored = set(), False  # freeable blobs the mapping may hold by now

    def read(name, from_locals):  # the first read of a blob takes it from B into its local
        if name in loaded:
            from_locals[name] = local[name]
            return local[name]
        loaded.add(name)
        bound.add(name)
        return f"({local[name]} := B[{const[name]}])"

    for i, step in enumerate(steps):
        if step.sync:
            body.extend(f"B[{const[name]}] = {local[name]}" for name in pending)
            stored.update(pending)
            pending.clear()
        from_locals = {}
        args = [read(name, from_locals) for name in step.inputs] + (["blobs=B"] if step.wants_blobs else []) \
            + _keywords(i, step.kwargs)
        call = f"k{i}({', '.join(args)})"
        lines[len(body) + 3] = Line(step, from_locals)  # 3: after the def and pass lines
        if step.sync:
            body.append(_sync_call(step, call, const))
            stored.update(step.outputs)
            loaded.clear()  # the step may have written any blob
            anything_stored = anything_stored or not step.outputs or step.wants_blobs
        else:
            body.append(_local_call(step, call, local, const, freed))
            loaded.update(step.outputs)
            bound.update(step.outputs)
            pending.update(dict.fromkeys(name for name in step.outputs if name in freed))
        for name in (free_after[i] if free_after else ()):
            if name in bound:
                body.append(f"del {local[name]}")
                bound.discard(name)
                loaded.discard(name)
            pending.pop(name, None)
            if anything_stored or name in stored:
                body.append(f"B.pop({const[name]}, None)")
    source = ["def run(B):", "    pass"] + ["    " + line for line in body]  # pass: an empty net is valid
    namespace = {f"k{i}": step.function for i, step in enumerate(steps)}
    for i, step in enumerate(steps):
        namespace.update(_keyword_values(i, step.kwargs))
    namespace.update((const[name], name) for name in names)
    # only identifiers made above: no text from a net file is in the source
    exec(compile("\n".join(source), FILENAME, "exec"), namespace)  # noqa: S102 (see above)
    return namespace["run"], lines


def _plain(key) -> bool:
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)


def _keywords(i: int, kwargs: dict) -> list[str]:
    """A kernel's bound args as keywords naming globals (no dict unpacked per call); the
    keys are the kernel's parameter names, and any other key goes in a dict."""
    if all(_plain(key) for key in kwargs):
        return [f"{key}=w{i}_{j}" for j, key in enumerate(kwargs)]
    return [f"**w{i}"] if kwargs else []


def _keyword_values(i: int, kwargs: dict) -> dict:
    if all(_plain(key) for key in kwargs):
        return {f"w{i}_{j}": value for j, value in enumerate(kwargs.values())}
    return {f"w{i}": kwargs} if kwargs else {}


def _local_call(step, call: str, local: dict, const: dict, freed) -> str:
    """The call, its outputs into their locals, and those the net keeps into B too."""
    if step.single:
        name = step.outputs[0]
        return f"{local[name]} = {'' if name in freed else f'B[{const[name]}] = '}{call}"
    # every output is computed before any is written
    return (f"_r = {call}; {', '.join(local[name] for name in step.outputs)}, = "
            + "".join(f"_r[{k}], " for k in range(len(step.outputs)))
            + "".join(f"; B[{const[name]}] = {local[name]}" for name in step.outputs if name not in freed))


def _sync_call(step, call: str, const: dict) -> str:
    """A step that may see the mapping writes its outputs there directly."""
    if not step.outputs:  # a side effect (Save), or {name: value} of blobs named at run time
        return f"B.update({call} or ())"
    if step.single:
        return f"B[{const[step.outputs[0]]}] = {call}"
    targets = ", ".join(f"B[{const[name]}]" for name in step.outputs)
    return f"_r = {call}; {targets}, = " + "".join(f"_r[{k}], " for k in range(len(step.outputs)))


def recover(exc, lines):
    """(the step whose generated line raised `exc`, {input blob: value} of its inputs
    held in locals), or None when no step's line raised it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
        tb = tb.tb_next
    line = None if tb is None else lines.get(tb.tb_lineno)
    if line is None:
        return None
    values = tb.tb_frame.f_locals
    return line.step, {name: values[var] for name, var in line.from_locals.items() if var in values}
