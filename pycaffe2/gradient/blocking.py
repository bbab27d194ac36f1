"""Stop-gradient on chosen parameters, declared instead of wired by hand.

A `BlockGradients` rule says: gradients of the matching losses may not reach
the matching blobs through the matching ops. It acts on the edge from an op
to one of its inputs, which is what a stop_gradient on a private copy of that
input would do in TensorFlow or JAX, without the copy and without running the
forward ops twice:

    BlockGradients("enc/*")                             # no loss updates enc/* anywhere
    BlockGradients("*", ops=lambda op: op.output[0].startswith("explain/"))  # a region
    only_update("gln/*", losses=["loss_a"])             # loss_a trains gln/* and nothing else

`params` is a glob pattern, a list of them, or a predicate on the blob name;
`ops` selects forward ops by predicate on the OperatorDef, by a set of
indices into the ops given to the backward pass, or by a glob matched against
their outputs; `losses` names the ys the rule holds for (all when None).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Union

from pycaffe2.proto import caffe2_pb2

BlobSelector = Union[str, Iterable[str], Callable[[str], bool]]
OpSelector = Union[None, str, Iterable[int], Callable[[caffe2_pb2.OperatorDef], bool]]


def _name_matcher(selector: BlobSelector) -> Callable[[str], bool]:
    if callable(selector):
        return selector
    patterns = [selector] if isinstance(selector, str) else list(selector)
    return lambda name: any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


@dataclass(frozen=True)
class BlockGradients:
    params: BlobSelector
    ops: OpSelector = None
    losses: Iterable[str] | None = None
    leaves_only: bool = False  # match only blobs no op of the pass produces (parameters, data)

    def holds_for(self, loss: str) -> bool:
        return self.losses is None or loss in set(self.losses)

    def blocks(self, index: int, op: caffe2_pb2.OperatorDef, blob: str, is_leaf: bool) -> bool:
        """Does this rule cut the gradient from op `index` to its input `blob`?"""
        if self.leaves_only and not is_leaf:
            return False
        return _name_matcher(self.params)(blob) and self._selects(index, op)

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
    parameter (a blob the forward ops read but do not produce) is blocked."""
    allowed = _name_matcher(params)
    return BlockGradients(lambda name: not allowed(name), ops=ops, losses=losses, leaves_only=True)
