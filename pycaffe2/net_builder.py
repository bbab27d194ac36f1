"""Caffe2's net_builder: build nets, loops and conditional blocks with `with`.

    from pycaffe2.net_builder import NetBuilder, ops
    with NetBuilder() as nb:
        x = ops.Const(5)
        with ops.loop():
            ops.stop_if(ops.LE([x, ops.Const(0)]))
            ops.Add([x, ops.Const(-1)], [x])
    plan = core.Plan("p"); plan.AddStep(core.to_execution_step(nb))

Two ways to branch and loop, as in Caffe2. `ops.If` / `ops.loop` / `ops.stop_if`
build execution steps that stop on a stop blob (plan-level control). `ops.IfNet` /
`ops.Else` / `ops.WhileNet` / `ops.Condition` build single nets with If and While
ops whose blocks run in Do scopes (control_ops_util): a blob first written inside
a block is local to it; blobs written before the block (its lexical scope) are
the outer ones. `NetBuilder(_use_control_ops=True)` merges everything into one
net (`nb.get()[0]`), which AddGradientOperators can differentiate.
"""
from __future__ import annotations

import threading

from pycaffe2 import core
from pycaffe2.control_ops_util import add_if_op, add_while_op
from pycaffe2.errors import PyCaffe2Error

_active = threading.local()


def _stack() -> list:
    if not hasattr(_active, "builders"):
        _active.builders = []
    return _active.builders


class NetBuilder:
    """Collects nets and nested builders in order; see the module docstring."""

    def __init__(self, name=None, initial_scope=None, _stop_blob_required=False, _stop_blob=None,
                 _fullname=None, _use_control_ops=False):
        parent = NetBuilder.current(required=False)
        if _fullname and name:
            raise PyCaffe2Error("NetBuilder: give name or _fullname, not both")
        if _use_control_ops and (_stop_blob_required or _stop_blob):
            raise PyCaffe2Error("NetBuilder: stop blobs are not used with control ops")
        self.name = _fullname or "/".join(n for n in (parent.name if parent else None, name) if n)
        self._frozen, self._current_net, self._children = False, None, []
        if parent:
            parent._update_lexical_scope()
        self._init_lexical_scope = set(parent._lexical_scope) if parent else set()
        self._init_lexical_scope |= {str(b) for b in initial_scope or ()}
        self._lexical_scope = set(self._init_lexical_scope)
        self._stop_blob, self._stop_blob_required = _stop_blob, _stop_blob_required
        self._use_control_ops = _use_control_ops

    @staticmethod
    def current(required: bool = True):
        builders = _stack()
        if not builders and required:
            raise PyCaffe2Error("no NetBuilder is active (use `with NetBuilder():`)")
        return builders[-1] if builders else None

    def __enter__(self):
        _stack().append(self)
        return self

    def __exit__(self, etype, *args):
        try:
            if etype is None:
                self._finish()
        finally:  # a block that fails to build leaves the builder stack as it found it
            _stack().pop()
        if self._use_control_ops and self._children:
            children = self._children
            self._reset_children()
            self._children = [NetBuilder.merge_nets(children, self._lexical_scope)]
        self.freeze()
        if etype is None and self._stop_blob_required and self._stop_blob is None:
            raise PyCaffe2Error(f"NetBuilder {self}: needs a stop condition (ops.stop or ops.stop_if)")

    def _finish(self) -> None:
        """What a kind of block adds when its `with` body is done (still the active builder)."""

    def stop_blob(self):
        """The builder's stop blob, made (False) on first use."""
        self._no_control_ops("stop blobs")
        if self._stop_blob is None:
            net = self.current_net()
            self._stop_blob = core.BlobReference(net.NextName("stop_blob"), net=net)
            net.Const(False, blob_out=self._stop_blob)
            if self._current_net is not self._children[0]:  # reset it at the start of every pass
                self._children.insert(0, core.Net("stop_blob_init"))
                self._children[0].Const(False, blob_out=self._stop_blob)
        return self._stop_blob

    def stop_if(self, blob) -> None:
        self._no_control_ops("stop_if")
        stop = self.stop_blob()
        ops.Or([stop, blob], [stop])
        self._current_net = None  # what follows runs in a new net, after the stop check

    def _no_control_ops(self, what: str) -> None:
        if self._use_control_ops:
            raise PyCaffe2Error(f"{what} cannot be used in a NetBuilder with control ops")

    def _assert_mutable(self) -> None:
        if self._frozen:
            raise PyCaffe2Error(f"this NetBuilder ({self}) has been built already")

    def _update_lexical_scope(self) -> None:
        self._lexical_scope = set(self._init_lexical_scope)
        for child in self._children:
            if isinstance(child, core.Net):
                self._lexical_scope |= child.UsedBlobNames()
            elif isinstance(child, NetBuilder) and child._use_control_ops:
                self._lexical_scope |= child._lexical_scope

    def _reset_children(self) -> None:
        self._current_net, self._children = None, []
        self._lexical_scope = set(self._init_lexical_scope)

    def add(self, child):
        self._assert_mutable()
        if self._use_control_ops and not (isinstance(child, core.Net) or
                                          (isinstance(child, NetBuilder) and child._use_control_ops)):
            raise PyCaffe2Error("a NetBuilder with control ops takes only nets and control-op blocks")
        self._current_net = child if isinstance(child, core.Net) else None
        self._children.append(child)
        self._update_lexical_scope()
        return child

    def current_net(self, name=None) -> core.Net:
        self._assert_mutable()
        if self._current_net is None or name is not None:
            self.add(core.Net(name or self.name or "net"))
        return self._current_net

    def freeze(self) -> None:
        for child in self._children:
            if hasattr(child, "freeze"):
                child.freeze()
        self._current_net, self._frozen = None, True

    def get(self) -> list:
        self.freeze()
        return self._children

    @staticmethod
    def merge_nets(nets_or_builders, outer_blob_names):
        """One net of the children's ops; external outputs only those the outer scope has."""
        net = None
        for child in nets_or_builders:
            if isinstance(child, NetBuilder):
                nets = child.get()
                if not child._use_control_ops or len(nets) != 1:
                    raise PyCaffe2Error("only control-op blocks (one net each) can be merged")
                child = nets[0]
            net = child if net is None else net.AppendNet(child)
        if net is not None:
            outputs = [b for b in net.Proto().external_output if b in outer_blob_names]
            del net.Proto().external_output[:]
            net.Proto().external_output.extend(outputs)
        return net

    def __str__(self) -> str:
        return self.name or "Un-named NetBuilder"


class Operations:
    """`ops`: every op type adds an op to the active builder's current net; the
    methods below open blocks."""

    def net(self, net=None, name=None):
        """Add `net` to the active builder, or return its current net (a new one named `name`)."""
        if net is not None and name is not None:
            raise PyCaffe2Error("ops.net: give net or name, not both")
        if net is not None:
            NetBuilder.current().add(net)
            return net
        return NetBuilder.current().current_net(name=name)

    def __getattr__(self, op_type):
        if op_type.startswith("__"):
            raise AttributeError(op_type)
        if NetBuilder.current(required=False) is None:
            raise AttributeError("No active NetBuilder.")
        return getattr(self.net(), op_type)

    def stop(self):
        """Stop the current execution step here."""
        return self.stop_if(ops.Const(True))

    def stop_if(self, blob):
        """Stop the current execution step when the scalar bool `blob` is true."""
        return NetBuilder.current().stop_if(blob)

    def loop(self, iters=None, name=None):
        """A block run again and again until ops.stop_if stops it, or `iters` times."""
        return NetBuilder.current().add(_Loop(iters, name=name))

    def stop_guard(self, has_stopped_blob=None, name=None):
        """A block run once; `has_stopped()` then says whether it was stopped early."""
        return NetBuilder.current().add(_StopGuard(has_stopped_blob=has_stopped_blob, name=name))

    def If(self, cond, name=None):
        """A block run once if the scalar bool `cond` is true (execution steps)."""
        return NetBuilder.current().add(_RunIf(cond, name=name))

    def IfNet(self, cond, name=None):
        """Like If, with an If op; may be followed by ops.Else()."""
        return NetBuilder.current().add(_RunIfNet(cond, name=name))

    def Else(self, name=None):
        """The else block of the IfNet just before it."""
        return _RunElseNet(name=name)

    def WhileNet(self, name=None):
        """A loop with a While op; its first block must be ops.Condition()."""
        return NetBuilder.current().add(_RunWhileNet(name=name))

    def Condition(self, name=None):
        """The WhileNet's condition: run before every pass; its last op writes the bool."""
        if not isinstance(NetBuilder.current(), _RunWhileNet):
            raise PyCaffe2Error("ops.Condition is used outside of ops.WhileNet")
        return _RunWhileCondition(name=name)


ops = Operations()


class _RunOnce(NetBuilder):
    def _finish(self) -> None:
        if self._stop_blob is not None:
            ops.stop()


class _StopGuard(_RunOnce):
    def __init__(self, has_stopped_blob=None, name=None):
        _RunOnce.__init__(self, name)
        self._stopped, self._ran = has_stopped_blob, False

    def __enter__(self):
        builder = _RunOnce.__enter__(self)
        self._stopped = ops.Const(True, blob_out=self._stopped)
        return builder

    def _finish(self) -> None:
        self._ran = True
        ops.Const(False, blob_out=self._stopped)
        _RunOnce._finish(self)

    def has_stopped(self):
        if not self._ran:
            raise PyCaffe2Error("has_stopped() is known only after the stop_guard block")
        return self._stopped


class _Loop(NetBuilder):
    def __init__(self, iters=None, name=None):
        NetBuilder.__init__(self, name, _stop_blob_required=True)
        self._num_iters = None
        if iters is not None:
            self._inc, self._iter = ops.Const(1), ops.Const(0)
            self._num_iters = iters if isinstance(iters, core.BlobReference) else ops.Const(iters)

    def iter(self):
        if self._num_iters is None:
            raise PyCaffe2Error("this loop has no number of iterations")
        return self._iter

    def __enter__(self):
        builder = NetBuilder.__enter__(self)
        if self._num_iters is not None:
            ops.stop_if(ops.GE([self._iter, self._num_iters]))
        return builder

    def _finish(self) -> None:
        if self._num_iters is not None:
            self.current_net().Add([self._iter, self._inc], [self._iter])


class _RunIf(_RunOnce):
    def __init__(self, cond_blob=None, name=None, _already_ran=None):
        _RunOnce.__init__(self, name)
        self._is_else = cond_blob is None
        if _already_ran is None:
            self._else_blob, self._already_ran = ops.Not(cond_blob), ops.Const(False)
        else:
            self._already_ran = _already_ran
            self._else_blob = _already_ran if cond_blob is None else ops.Or([_already_ran, ops.Not(cond_blob)])

    def __enter__(self):
        builder = _RunOnce.__enter__(self)
        ops.stop_if(self._else_blob)
        ops.Const(True, blob_out=self._already_ran)
        return builder

    def Elif(self, cond, name=None):
        if self._is_else:
            raise PyCaffe2Error("Elif cannot follow Else")
        return NetBuilder.current().add(_RunIf(cond, name=name or self.name, _already_ran=self._already_ran))

    def Else(self, name=None):
        if self._is_else:
            raise PyCaffe2Error("Else cannot follow Else")
        return NetBuilder.current().add(_RunIf(name=name or self.name, _already_ran=self._already_ran))


class _RunIfNet(NetBuilder):
    def __init__(self, cond_blob, name=None):
        NetBuilder.__init__(self, name=name, _use_control_ops=True)
        if not cond_blob:
            raise PyCaffe2Error("IfNet needs a condition blob")
        self._cond_blob, self._then_net, self._else_net = cond_blob, None, None

    def _finish(self) -> None:
        then_nets = self._children
        self._reset_children()
        self._then_net = NetBuilder.merge_nets(then_nets, self._lexical_scope) or core.Net("empty_then_net")
        self._set_net(None)

    def _set_net(self, else_net) -> None:
        """This block's one net: CreateScope ops and the If op."""
        self._else_net = else_net
        if_net = core.Net(self.name + ("/if_else_net" if else_net else "/if_net"))
        add_if_op(if_net, self._cond_blob, self._lexical_scope, self._then_net, else_net)
        self._current_net, self._children = if_net, [if_net]


class _RunElseNet(NetBuilder):
    def __init__(self, name=None):
        NetBuilder.__init__(self, name=name, _use_control_ops=True)
        parent = NetBuilder.current(required=False)
        if not (parent and parent._children and isinstance(parent._children[-1], _RunIfNet)):
            raise PyCaffe2Error("ops.Else must follow an ops.IfNet block")
        self._if_builder = parent._children[-1]

    def _finish(self) -> None:
        else_nets = self._children
        self._reset_children()
        else_net = NetBuilder.merge_nets(else_nets, self._lexical_scope)
        if else_net is not None:
            self._if_builder._set_net(else_net)


class _RunWhileNet(NetBuilder):
    def __init__(self, name=None):
        NetBuilder.__init__(self, name=name, _use_control_ops=True)
        self._cond_builder = None

    def _finish(self) -> None:
        if self._cond_builder is None:
            raise PyCaffe2Error("ops.WhileNet needs an ops.Condition block")
        body = self._children  # the Condition block is not among them
        self._reset_children()
        body_net = NetBuilder.merge_nets(body, self._lexical_scope) or core.Net("empty_loop_body_net")
        while_net = core.Net(self.name + "/while_net")
        add_while_op(while_net, self._cond_builder._cond_blob, self._lexical_scope, body_net,
                     self._cond_builder._cond_net)
        self._current_net, self._children = while_net, [while_net]


class _RunWhileCondition(NetBuilder):
    def __init__(self, name=None):
        NetBuilder.__init__(self, name=name, _use_control_ops=True)
        parent = NetBuilder.current(required=False)
        if parent._cond_builder is not None:
            raise PyCaffe2Error("ops.WhileNet takes one ops.Condition block")
        if parent._children:
            raise PyCaffe2Error("ops.Condition must come before the loop's body")
        parent._cond_builder = self
        self._cond_blob = self._cond_net = None

    def _finish(self) -> None:
        children = self._children
        self._reset_children()
        self._cond_net = NetBuilder.merge_nets(children, self._lexical_scope)
        if self._cond_net is None or not self._cond_net.Proto().op:
            raise PyCaffe2Error("ops.Condition block has no ops")
        last = self._cond_net.Proto().op[-1]
        if len(last.output) != 1:
            raise PyCaffe2Error("the last op of ops.Condition must have one (bool) output")
        self._cond_blob = core.BlobReference(last.output[0])
        self._current_net, self._children = self._cond_net, [self._cond_net]
