"""Stop-gradient on chosen parameters, declared instead of wired by hand.

A `BlockGradients` rule says: gradients of the matching losses may not reach
the matching blobs through the matching ops. It acts on the edge from an op
to one of its inputs, which is what a stop_gradient on a private copy of that
input would do in TensorFlow or JAX, without the copy and without running the
forward ops twice:

    BlockGradients("enc/*")                             # no loss updates enc/* anywhere
    BlockGradients("*", ops=lambda op: op.output[0].startswith("explain/"))  # a region
    only_update("gln/*", losses=["loss_a"])             # loss_a trains gln/* and no other parameter

`params` is a glob pattern, a list of them, or a predicate on the blob name.
It matches any blob of that name, intermediate values included ("reg/*" also
cuts `reg/r` when an op of the pass writes it) unless `leaves_only` is set.
`ops` selects forward ops by predicate on the OperatorDef, by a set of
indices into the ops given to the backward pass, or by a glob matched against
their outputs; `losses` names the ys the rule holds for (all when None).

`only_update` blocks parameters only, so it needs to know which blobs are
parameters: the backward pass is told by `params=` (ModelHelper passes its
own `params`). Data inputs and intermediate values keep their gradients.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pycaffe2.proto import caffe2_pb2

BlobSelector = str | Iterable[str] | Callable[[str], bool]
OpSelector = None | str | Iterable[int] | Callable[[caffe2_pb2.OperatorDef], bool]


def name_matcher(selector: BlobSelector) -> Callable[[str], bool]:
    """A predicate on blob names from a glob, a list of globs (or names), or a predicate.
    Plain names go in a set and globs in one regex: a model's params are hundreds of names."""
    if callable(selector):
        return selector
    patterns = [selector] if isinstance(selector, str) else [str(p) for p in selector]
    exact = {p for p in patterns if not any(c in p for c in "*?[")}
    globs = [p for p in patterns if p not in exact]
    regex = re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None
    return lambda name: name in exact or (regex is not None and regex.match(name) is not None)


@dataclass(frozen=True)
class _AllBut:
    """The blob names `allowed` does not match (readable in error messages)."""

    allowed: BlobSelector

    def __post_init__(self):
        object.__setattr__(self, "_allowed", name_matcher(self.allowed))

    def __call__(self, name: str) -> bool:
        return not self._allowed(name)

    def __repr__(self) -> str:
        return f"all but {self.allowed!r}"


@dataclass(frozen=True)
class BlockGradients:
    params: BlobSelector
    ops: OpSelector = None
    losses: Iterable[str] | None = None
    leaves_only: bool = False  # match only blobs no op of the pass produces (parameters, data)
    params_only: bool = False  # match only blobs the pass was told are parameters (params=)

    def __post_init__(self):
        object.__setattr__(self, "_matches", name_matcher(self.params))

    def holds_for(self, loss: str) -> bool:
        return self.losses is None or loss in set(self.losses)

    def blocks(self, index: int, op: caffe2_pb2.OperatorDef, blob: str, is_leaf: bool,
               is_param: bool) -> bool:
        """Does this rule cut the gradient from op `index` to its input `blob`?"""
        if (self.leaves_only and not is_leaf) or (self.params_only and not is_param):
            return False
        return self._matches(blob) and self._selects(index, op)

    def _selects(self, index: int, op) -> bool:
        if self.ops is None:
            return True
        if callable(self.ops):
            return bool(self.ops(op))
        if isinstance(self.ops, str):
            return any(fnmatch.fnmatchcase(name, self.ops) for name in op.output)
        return index in set(self.ops)


def only_update(params: BlobSelector, losses: Iterable[str] | None = None, ops: OpSelector = None) -> BlockGradients:
    """The given losses may update only the matching parameters: every other
    parameter (named by the backward pass's `params=`) is blocked; data inputs
    and intermediate values are not touched."""
    return BlockGradients(_AllBut(params), ops=ops, losses=losses, params_only=True)
