"""A net's steps as one generated Python function: RunNet with no per-op interpretation.

Each blob lives in a local variable of the generated function while it runs: an
input is read from the blob mapping once, at its first use; what a step writes
stays in locals, and reaches the mapping at the end of the run (or is dropped
with `del` once no later step touches it, under `free_blobs`). A step that may
see the mapping itself (control ops, Load with load_all, kernels given the
workspace) is a sync point: the locals written so far are stored before it, and
blobs are read afresh after it.

The generated source holds only identifiers made here (v0, n0, k0, w0, ...):
blob names, kernels and args come in as values, so nothing from a net file
becomes code. When a step fails, `recover` finds its line, and the values its
earlier steps computed are stored from the failed call's locals, so the mapping
is what running the steps one by one would have left.
"""
from __future__ import annotations

FILENAME = "<pycaffe2 net>"


class Line:
    """What a generated line that calls a kernel stands for: its step, and the blobs
    held only in locals when it starts ({blob name: local name})."""

    __slots__ = ("pending", "step")

    def __init__(self, step, pending: dict):
        self.step, self.pending = step, pending


def generate(steps, free_after=None):
    """(run(blobs), {line number: Line}) for `steps`; `free_after[i]`: the blobs to drop
    once step i is done."""
    names = sorted({name for step in steps for name in step.inputs + step.outputs + step.writes}
                   | {name for names in (free_after or ()) for name in names})
    freed = {name for names in (free_after or ()) for name in names}
    local = {name: f"v{i}" for i, name in enumerate(names)}
    const = {name: f"n{i}" for i, name in enumerate(names)}
    body, lines = [], {}
    loaded, bound, pending = set(), set(), {}  # pending: written to locals, not yet to B
    stored, anything_stored = set(), False  # blobs B may hold by now (to drop when freed)

    def read(name):  # the first read of a blob takes it from B into its local
        if name in loaded:
            return local[name]
        loaded.add(name)
        bound.add(name)
        return f"({local[name]} := B[{const[name]}])"

    def store_pending():
        body.extend(f"B[{const[name]}] = {local[name]}" for name in pending)
        stored.update(pending)
        pending.clear()

    for i, step in enumerate(steps):
        if step.sync:
            store_pending()
        args = [read(name) for name in step.inputs] + (["blobs=B"] if step.wants_blobs else []) \
            + ([f"**w{i}"] if step.kwargs else [])
        call = f"k{i}({', '.join(args)})"
        lines[len(body) + 3] = Line(step, {name: local[name] for name in pending})  # after def, prologue
        if step.sync:
            body.append(_sync_call(step, call, const))
            stored.update(step.outputs)
            loaded.clear()  # the step may have written any blob
            anything_stored = anything_stored or not step.outputs or step.wants_blobs
        else:
            kept = [name for name in step.outputs if name not in freed]
            body.append(_local_call(step, call, local) + "".join(f"; B[{const[name]}] = {local[name]}"
                                                                  for name in kept))
            loaded.update(step.outputs)
            bound.update(step.outputs)
            stored.update(kept)
            pending.update(dict.fromkeys(name for name in step.outputs if name in freed))
        for name in (free_after[i] if free_after else ()):
            if name in bound:
                body.append(f"del {local[name]}")
                bound.discard(name)
                loaded.discard(name)
            pending.pop(name, None)
            if anything_stored or name in stored:
                body.append(f"B.pop({const[name]}, None)")
    store_pending()
    source = ["def run(B):", "    pass"] + ["    " + line for line in body]  # pass: an empty net is valid
    # kernels, args and blob names are the function's globals: no prologue, a small frame
    namespace = {f"k{i}": step.function for i, step in enumerate(steps)}
    namespace.update((f"w{i}", step.kwargs) for i, step in enumerate(steps) if step.kwargs)
    namespace.update((const[name], name) for name in names)
    # only identifiers made above: no text from a net file is in the source
    exec(compile("\n".join(source), FILENAME, "exec"), namespace)  # noqa: S102 (see above)
    return namespace["run"], lines


def _local_call(step, call: str, local: dict) -> str:
    targets = [local[name] for name in step.outputs]
    if step.single:
        return f"{targets[0]} = {call}"
    # every output is computed before any is written
    return f"_r = {call}; {', '.join(targets)}, = " + "".join(f"_r[{k}], " for k in range(len(targets)))


def _sync_call(step, call: str, const: dict) -> str:
    """A step that may see the mapping writes its outputs there directly."""
    if not step.outputs:  # a side effect (Save), or {name: value} of blobs named at run time
        return f"B.update({call} or ())"
    if step.single:
        return f"B[{const[step.outputs[0]]}] = {call}"
    targets = ", ".join(f"B[{const[name]}]" for name in step.outputs)
    return f"_r = {call}; {targets}, = " + "".join(f"_r[{k}], " for k in range(len(step.outputs)))


def recover(exc, lines, blobs):
    """The step whose generated line raised `exc` (None when no step's line did), after
    storing in `blobs` what the steps before it computed."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
        tb = tb.tb_next
    if tb is None:
        return None
    line = lines.get(tb.tb_lineno)
    if line is None:
        return None
    values = tb.tb_frame.f_locals
    for name, variable in line.pending.items():
        if variable in values:
            blobs[name] = values[variable]
    return line.step
