"""Caffe2's control_ops_util: add an If or a While op whose nets run in Do
scopes, so that blobs a branch or a loop body makes stay local to it.

Which blobs are outer is decided by the lexical scope (the outer blob names
visible at that point): a blob the net reads before writing must be in it
(else the net would read an undefined blob), a blob it writes is outer when
the scope has it, and every other blob lives only in the Do's workspace.
NetBuilder's IfNet / WhileNet and brew.cond / brew.loop use these helpers.
"""
from __future__ import annotations

from pycaffe2 import core
from pycaffe2.core_net import blobs_read_before_written
from pycaffe2.errors import PyCaffe2Error


def get_external_blob_names(net, lexical_scope):
    """(blobs `net` reads from outside, outer blobs it writes); a read of a blob
    outside the scope is an error."""
    proto = net.Proto() if isinstance(net, core.Net) else net
    scope = {str(b) for b in lexical_scope}
    inputs = blobs_read_before_written(proto.op)
    unknown = [b for b in inputs if b not in scope]
    if unknown:
        raise PyCaffe2Error(f"net '{proto.name}' reads blob(s) {', '.join(unknown)}, which are not defined "
                            "before it (not in its lexical scope)")
    outputs = []
    for op in proto.op:
        outputs.extend(b for b in op.output if b in scope and b not in outputs)
    return set(inputs), set(outputs)


def _do_net(name: str, net, inputs, outputs, stack, **args) -> core.Net:
    """A one-op net: Do(net) binding each outer blob to the inner blob of its name."""
    inputs, outputs = sorted(inputs), sorted(outputs)
    outer = inputs + outputs
    inner = sorted(set(outer))
    do_net = core.Net(name)
    do_net.Do([*inputs, stack], [*outputs, stack], net=net.Proto(), inner_blobs=inner,
              outer_blobs_idx=[outer.index(b) for b in inner], **args)
    do_net.AddExternalOutput(*outputs, stack)
    return do_net


def _scope_blob(net: core.Net, what: str) -> core.BlobReference:
    return net.NextScopedBlob(f"{net.Name()}/workspace_{what}")


def add_if_op(if_net, cond_blob, lexical_scope, then_net, else_net=None) -> None:
    """Append CreateScope ops and an If op running `then_net` (or `else_net`) in Do scopes."""
    branches = [("then", then_net)] + ([("else", else_net)] if else_net else [])
    if_inputs, if_outputs, args = [str(cond_blob)], [], {}
    for label, net in branches:
        reads, writes = get_external_blob_names(net, lexical_scope)
        # a Do's input list may not repeat a blob, but may list one as input and output
        stack = _scope_blob(if_net, f"if_{label}")
        if_net.CreateScope([], [stack])
        args[f"{label}_net"] = _do_net(f"do_{label}_net", net, reads, writes, stack).Proto()
        if_inputs += [b for b in sorted(reads) if b not in if_inputs] + [str(stack)]
        if_outputs += [b for b in sorted(writes) if b not in if_outputs] + [str(stack)]
    if_net.If(if_inputs, if_outputs, **args)
    if_net.AddExternalOutput(*if_outputs)


def add_while_op(while_net, cond_blob, lexical_scope, loop_body_net, condition_body_net=None) -> None:
    """Append CreateScope ops and a While op running the body (and the condition net,
    before the first pass and after each) in Do scopes; the body's Do keeps a copy of
    the outer blobs in each pass's workspace, which its gradient reads."""
    reads, writes = get_external_blob_names(loop_body_net, lexical_scope)
    reads |= writes  # the loop may run zero times: what it writes is passed through
    body_stack = _scope_blob(while_net, "loop_body")
    while_net.CreateScope([], [body_stack])
    args = {"loop_net": _do_net("do_loop_body_net", loop_body_net, reads, writes, body_stack,
                                copy_external_blobs=True).Proto()}
    inputs, outputs = sorted(reads), sorted(writes)
    if condition_body_net is not None:
        cond_reads, cond_writes = get_external_blob_names(condition_body_net, lexical_scope)
        if not any(str(cond_blob) in op.output for op in condition_body_net.Proto().op):
            raise PyCaffe2Error(f"the condition net does not write the condition blob '{cond_blob}'")
        cond_writes.add(str(cond_blob))
        cond_stack = _scope_blob(while_net, "loop_cond")
        while_net.CreateScope([], [cond_stack])
        args["cond_net"] = _do_net("do_loop_condition_net", condition_body_net, cond_reads, cond_writes,
                                   cond_stack).Proto()
        inputs += [b for b in sorted(cond_reads) if b not in inputs] + [str(cond_stack)]
        outputs += [b for b in sorted(cond_writes) if b not in outputs] + [str(cond_stack)]
        if str(cond_blob) not in {str(b) for b in lexical_scope}:
            while_net.ConstantFill([], [str(cond_blob)], dtype=core.DataType.BOOL, value=False, shape=[])
    while_net.While([str(cond_blob), *[b for b in inputs if b != str(cond_blob)], str(body_stack)],
                    [*outputs, str(body_stack)], **args)
    while_net.AddExternalOutput(*outputs, str(body_stack))
