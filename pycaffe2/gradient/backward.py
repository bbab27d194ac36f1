"""Building a backward pass from forward ops, as Caffe2's core.py does.

The forward ops are replayed in SSA form: every write of a blob makes a new
version, so an in-place op's input and output are different versions of one
name. Ops are then visited in reverse. An op gets gradient ops only when one
of its outputs has a gradient and one of its input edges can carry a
gradient somewhere useful: not through a NO_GRADIENT op, not into a blocked
parameter (see blocking.py), not into a branch that leads only to blocked
parameters. Which blobs are parameters is never guessed: `params=` names them,
and rules that act on parameters only (only_update) refuse to work without it.
A blob version read by several ops collects one gradient from each; the first
keeps `<blob>_grad`, the others are renamed
`_<blob>_grad_autosplit_<k>`, and a Sum op adds them up once the earliest
reader has been visited. Sparse gradients (GradientSlice, e.g. Gather's) are
added up by concatenation instead (accumulate.py); op-made parts of several
are all renamed `_<name>_autosplit_<k>`, as in Caffe2. A gradient op that reads a forward blob at a version
a later in-place op overwrote is refused, naming the blob and the versions.

Where Caffe2, which keeps one gradient per blob name, would hand an op the
gradient of another version of its output (a write overwritten unread by an
op that does not read it), the pass refuses too, as does a StopGradient whose
output nothing reads. Ops from Python makers are taken as returned; the seeds
and the Sum ops are not marked `is_gradient_op`, as in Caffe2.

With blocking rules that differ between losses, each group of losses sharing
the same rules gets its own pass (its gradient names tagged with the group's
first loss), and the groups' gradients of each blob are summed into
`<blob>_grad` at the end.
"""
from __future__ import annotations

from collections import defaultdict

from pycaffe2.errors import OrphanStopGradient
from pycaffe2.gradient.accumulate import concat_ops, densify_op, parts, sum_op
from pycaffe2.gradient.blocking import BlockGradients, name_matcher
from pycaffe2.gradient.for_op import gradient_kind, is_gradient_source, make_gradient
from pycaffe2.operators.registry import GradientError, GradientSlice
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import nesting_problem

Version = tuple  # (blob name, version number)


class ForwardSSA:
    """The forward ops' reads and writes, by blob version."""

    def __init__(self, ops):
        self.ops = list(ops)
        self.frontier: dict[str, int] = defaultdict(int)
        self.inputs: list[list[Version]] = []
        self.outputs: list[list[Version]] = []
        self.writers: dict[Version, int] = {}
        self.readers: dict[Version, list[int]] = defaultdict(list)
        for index, op in enumerate(self.ops):
            self.inputs.append([(name, self.frontier[name]) for name in op.input])
            for key in set(self.inputs[-1]):
                self.readers[key].append(index)
            for name in op.output:
                self.frontier[name] += 1
            self.outputs.append([(name, self.frontier[name]) for name in op.output])
            for key in self.outputs[-1]:
                self.writers[key] = index

    def final(self, name: str) -> Version:
        return (name, self.frontier[name])

    def version_history(self, name: str) -> str:
        writes = sorted((v, i) for (blob, v), i in self.writers.items() if blob == name)
        return ", ".join(f"v{v} by op {i} ({self.ops[i].type})" for v, i in writes)


def GetBackwardPass(ops, ys, block=(), params=None):
    """(gradient ops, {blob: gradient blob}) for `ys` (a list of blobs seeded
    with ones, or a dict blob -> given gradient blob or None). `block` holds
    BlockGradients rules; `params` names the parameters (names, glob patterns
    or a predicate), which rules such as only_update act on."""
    ops, ys = list(ops), (dict(ys) if isinstance(ys, dict) else {y: None for y in ys})
    problem = nesting_problem(ops)
    if problem:  # a control op's gradient builds its nets' backward passes, one level each
        raise GradientError(problem)
    _check_stop_gradients(ops)
    rules = list(block)
    needing = [rule for rule in rules if rule.params_only]
    if needing and params is None:
        raise GradientError(
            f"{len(needing)} blocking rule(s) act on parameters only (first: {needing[0]!r}), but no "
            "parameters are known: pass params=[names or glob patterns] to AddGradientOperators or "
            "GetBackwardPass (ModelHelper.AddGradientOperators passes model.params)")
    is_param = name_matcher(params if params is not None else ())
    groups: dict[tuple, list[str]] = defaultdict(list)
    for y in ys:
        groups[tuple(i for i, rule in enumerate(rules) if rule.holds_for(y))].append(y)
    if len(groups) == 1:
        (rule_ids, group_ys), = groups.items()
        return _Pass(ops, {y: ys[y] for y in group_ys}, [rules[i] for i in rule_ids], "",
                     is_param).build()
    return _merge_groups(ops, ys, rules, groups, is_param)


def _check_stop_gradients(ops) -> None:
    read = {name for op in ops for name in op.input}
    for index, op in enumerate(ops):
        if op.type == "StopGradient" and op.output and op.output[0] not in read:
            raise OrphanStopGradient(
                f"op {index} (StopGradient): its output '{op.output[0]}' is read by no op, so it stops "
                f"nothing; write it in place (StopGradient('{op.input[0]}', '{op.input[0]}')) or read "
                "its output downstream")


def _merge_groups(ops, ys, rules, groups, is_param):
    """One pass per group of losses with the same rules; their gradients summed."""
    all_ops, per_blob = [], defaultdict(list)
    for rule_ids, group_ys in groups.items():
        tag = f"_{group_ys[0]}"
        pass_ops, grads = _Pass(ops, {y: ys[y] for y in group_ys}, [rules[i] for i in rule_ids],
                                tag, is_param).build()
        all_ops.extend(pass_ops)
        for blob, grad in grads.items():
            per_blob[blob].append((grad, tag))
    written = {name for op in ops for name in op.output}
    grad_map, renames = {}, {}
    for blob, grads in per_blob.items():
        target = f"{blob}_grad"
        if len(grads) > 1:
            grad_map[blob] = _add_up(blob, [grad for grad, _ in grads], target, all_ops,
                                     densify_like=None if blob in written else blob)
        elif grads[0][0] == f"{target}{grads[0][1]}":  # only one group reaches it: plain name
            renames[grads[0][0]] = grad_map[blob] = target
        else:  # a seed, a given gradient, one shared with another blob, or a slice
            grad_map[blob] = grads[0][0]
    for op in all_ops:
        op.input[:] = [renames.get(name, name) for name in op.input]
        op.output[:] = [renames.get(name, name) for name in op.output]
    return all_ops, grad_map


def _add_up(blob: str, gradients: list, target: str, grad_ops: list, densify_like: str | None,
            made_first: str | None = None):
    """Append the ops adding up `gradients` of `blob` to `grad_ops`; returns the sum.
    Dense ones sum into `made_first` (an op-made gradient) or `target`; slices
    concatenate; a mix has its slices made dense in the shape of `densify_like`."""
    slices = [g for g in gradients if isinstance(g, GradientSlice)]
    if len(slices) == len(gradients):
        ops, total = concat_ops(slices, target, grad_ops)
        grad_ops.extend(ops)
        return total
    if slices and densify_like is None:
        raise GradientError(
            f"blob '{blob}' gets both dense and sparse (GradientSlice) gradients, and the forward pass "
            "overwrites it, so the sparse ones cannot be made dense in its shape: give the Gather ops "
            "that read it dense_gradient=1")
    dense = []
    for k, gradient in enumerate(gradients):
        if isinstance(gradient, GradientSlice):
            grad_ops.append(densify_op(gradient, densify_like, f"_{target}_densified_{k}", grad_ops))
            gradient = grad_ops[-1].output[0]
        dense.append(gradient)
    output = made_first or target
    grad_ops.append(sum_op(dense, output, grad_ops))
    return output


class _Pass:
    """One backward pass over `ops` for `ys` under fixed blocking rules."""

    def __init__(self, ops, ys: dict, rules: list[BlockGradients], suffix: str, is_param):
        self.ssa = ForwardSSA(ops)
        self.ys, self.rules, self.suffix, self.is_param = ys, rules, suffix, is_param
        self.grad_ops: list[caffe2_pb2.OperatorDef] = []
        self.contributions: dict[Version, list[tuple[str, bool]]] = defaultdict(list)
        self.grads: dict[Version, str] = {}
        self.grad_map: dict[str, str] = {}
        self.by_name: dict[str, Version] = {}  # the version whose gradient Caffe2 would hold per name
        self.useful = self._useful_versions()

    # --- which edges can carry a gradient somewhere useful --------------------------------
    def _edge_blocked(self, index: int, position: int) -> bool:
        op, key = self.ssa.ops[index], self.ssa.inputs[index][position]
        is_leaf = key not in self.ssa.writers
        is_param = bool(self.is_param(key[0]))
        return any(rule.blocks(index, op, key[0], is_leaf, is_param) for rule in self.rules)

    def _useful_versions(self) -> dict[Version, bool]:
        """Which blob versions' gradients are worth computing. As in Caffe2, every
        blob on a path back from a y, up to the outputs of NO_GRADIENT ops; less
        the branches whose every way on ends in a blocked edge."""
        useful: dict[Version, bool] = {}
        for index, op in enumerate(self.ssa.ops):
            for key in self.ssa.inputs[index]:
                useful.setdefault(key, key not in self.ssa.writers)
            sink = gradient_kind(op.type) == "none"
            carries = sink or any(not self._edge_blocked(index, p) and useful[key]
                                  for p, key in enumerate(self.ssa.inputs[index]))
            for key in self.ssa.outputs[index]:
                useful[key] = carries
        return useful

    def _wants(self, index: int, position: int) -> bool:
        return not self._edge_blocked(index, position) and self.useful[self.ssa.inputs[index][position]]

    # --- the walk -------------------------------------------------------------------------
    def build(self):
        self._seed()
        for index in reversed(range(len(self.ssa.ops))):
            self._visit(index)
            for key in dict.fromkeys(self.ssa.inputs[index]):
                if min(self.ssa.readers[key]) == index:
                    self._finalize(key)
        return self.grad_ops, self.grad_map

    def _seed(self) -> None:
        for y, given in self.ys.items():
            key = self.ssa.final(y)
            if given is None:
                given = f"{y}_autogen_grad"
                self.grad_ops.append(caffe2_pb2.OperatorDef(
                    type="ConstantFill", input=[y], output=[given],
                    arg=[caffe2_pb2.Argument(name="value", f=1.0)]))
            self.contributions[key].append((given, (False,)))
            self.by_name[y] = key
            if not self.ssa.readers.get(key):
                self._finalize(key)

    def _visit(self, index: int) -> None:
        op = self.ssa.ops[index]
        g_output = [self.grads.get(key) for key in self.ssa.outputs[index]]
        if not any(self._wants(index, p) for p in range(len(op.input))):
            return
        self._check_stale_names(index)
        if all(g is None for g in g_output) and not is_gradient_source(op):
            return
        ops, context = make_gradient(op, g_output, index, suffix=self.suffix)
        g_input = context.g_input if context is not None else [None] * len(op.input)
        if context is not None:
            self._check_versions(index, context.reads, ops)
        produced = {name for grad_op in ops for name in grad_op.output}
        given = set()
        for position, gradient in enumerate(g_input):
            if gradient is None:
                continue
            if not self._wants(index, position):
                for name in parts(gradient):
                    if name in produced:  # computed anyway by a fused gradient op: keep it out of the way
                        _rename_output(ops, name, f"_{name}_blocked_{index}_{position}")
                continue
            key = self.ssa.inputs[index][position]
            made = tuple(name in produced for name in parts(gradient))
            gradient = self._number(key, gradient, made, ops)
            self.contributions[key].append((gradient, made))
            self.by_name[key[0]] = key
            given.add(key[0])
        for name in set(op.input) & set(op.output) - given:  # in place, and no gradient passes
            self.by_name.pop(name, None)
            self.grad_map.pop(name, None)
        self.grad_ops.extend(ops)

    def _check_stale_names(self, index: int) -> None:
        """An output version with no gradient of its own, while the gradient Caffe2 keeps
        under that name belongs to another version: Caffe2 would hand it to this op."""
        if gradient_kind(self.ssa.ops[index].type) == "none":
            return
        for position, key in enumerate(self.ssa.outputs[index]):
            held = self.by_name.get(key[0])
            if key not in self.grads and held is not None and held != key:
                raise GradientError(
                    f"op {index} ({self.ssa.ops[index].type}): output {position} '{key[0]}' (version "
                    f"{key[1]}) gets no gradient, but the gradient under its name belongs to version "
                    f"{held[1]} (writes: {self.ssa.version_history(key[0])}); Caffe2 would take it for "
                    f"version {key[1]}: give the overwritten blob its own name")

    def _number(self, key: Version, gradient, made: tuple, ops: list):
        """Rename an op-made gradient (part) that is not the first of its kind for
        this blob version: dense ones `_<g>_autosplit_<k-1>`, sparse parts
        `_<g>_autosplit_<k>` (the first sparse ones are renamed at _finalize)."""
        sparse = isinstance(gradient, GradientSlice)
        earlier = [m for g, m in self.contributions[key] if isinstance(g, GradientSlice) == sparse]
        names = list(parts(gradient))
        for j, name in enumerate(names):
            count = sum(m[j] for m in earlier)
            if made[j] and count:  # numbered afresh for each blob version, as in Caffe2
                names[j] = f"_{name}_autosplit_{count - (0 if sparse else 1)}"
                _rename_output(ops, name, names[j])
        return GradientSlice(*names) if sparse else names[0]

    def _finalize(self, key: Version) -> None:
        contributions = self.contributions.pop(key, [])
        if not contributions:
            return
        if len(contributions) == 1:
            gradient = contributions[0][0]
        else:
            gradients = self._first_sparse_renamed(contributions)
            made = [g for g, m in contributions if not isinstance(g, GradientSlice) and m[0]]
            current = self.ssa.frontier[key[0]] == key[1]  # the blob still holds this version
            gradient = _add_up(key[0], gradients, f"{key[0]}_grad{self.suffix}", self.grad_ops,
                               densify_like=key[0] if current else None,
                               made_first=made[0] if made else None)
        self.grads[key] = gradient
        self.grad_map[key[0]] = gradient

    def _first_sparse_renamed(self, contributions) -> list:
        """The gradients, with the op-made slice parts that kept their names (the
        first of their kind, see _number) renamed `_<name>_autosplit_0`."""
        gradients, renamed = [], [False, False]
        for gradient, made in contributions:
            if isinstance(gradient, GradientSlice):
                names = list(gradient)
                for j, name in enumerate(names):
                    if made[j] and not renamed[j]:
                        renamed[j], names[j] = True, f"_{name}_autosplit_0"
                        _rename_output(self.grad_ops, name, names[j])
                gradient = GradientSlice(*names)
            gradients.append(gradient)
        return gradients

    def _check_versions(self, index: int, reads, ops) -> None:
        """Every forward blob the maker read must still hold the version op `index` saw."""
        for role, position in sorted(reads):
            name, version = (self.ssa.inputs if role == "input" else self.ssa.outputs)[index][position]
            if self.ssa.frontier[name] != version:
                raise GradientError(
                    f"op {index} ({self.ssa.ops[index].type}): its gradient ({', '.join(o.type for o in ops)}) "
                    f"needs {role} {position} '{name}' at version {version}, but the forward pass leaves "
                    f"version {self.ssa.frontier[name]} (writes: {self.ssa.version_history(name)}); "
                    f"an in-place op overwrote it")


def _rename_output(ops, old: str, new: str) -> None:
    """Rename the last gradient op output `old` (and later reads of it in `ops`)."""
    for position in reversed(range(len(ops))):
        if old in ops[position].output:
            outputs = list(ops[position].output)
            outputs[len(outputs) - 1 - outputs[::-1].index(old)] = new
            ops[position].output[:] = outputs
            for later in ops[position + 1:]:
                later.input[:] = [new if name == old else name for name in later.input]
            return
