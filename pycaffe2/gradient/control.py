"""Gradient makers of the control ops (If, Do, While), which need backward
passes of the nets they hold, so they live here rather than beside the kernels.

- If: one backward pass per branch, seeded with the If's output gradients; the
  gradient op is an If on the same condition running the chosen branch's
  gradient net. Both branches leave each gradient in the same blob: a branch
  that does not touch a blob passes its output gradient through (Copy) or
  gives zeros (ConstantFill) for a blob it only lacks.
- Do: the inner net's backward pass, seeded through `<inner>/_DO_OPERATOR_INNER_GRAD_`
  names bound to the outer gradients; the gradient Do (is_gradient_op) pops the
  workspace its forward Do pushed, so it reads the forward net's local blobs.
- While (a loop body of one Do op, as NetBuilder and brew make it): the gradient
  While runs the body's gradient once per forward pass, newest first, while the
  body's workspace stack still holds a workspace (HasScope); after each pass the
  gradients of the loop's state become the next pass's output gradients, and
  gradients of blobs the loop only reads add up over the passes.
"""
from __future__ import annotations

from pycaffe2.gradient.backward import GetBackwardPass
from pycaffe2.operators.registry import GradientError, GradientSlice, register_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import ShapeError
from pycaffe2.schema.inference.control import do_bindings

INNER_GRAD = "/_DO_OPERATOR_INNER_GRAD_"


def _op(op_type, inputs, outputs, **args) -> caffe2_pb2.OperatorDef:
    op = caffe2_pb2.OperatorDef(type=op_type, input=list(inputs), output=list(outputs))
    op.arg.extend(make_argument(name, value) for name, value in args.items())
    return op


def _net_arg(op, name: str):
    for arg in op.arg:
        if arg.name == name and arg.HasField("n"):
            return arg.n
    return None


def _seeds(g) -> tuple[list, dict[str, str]]:
    """(Copy ops, {output: its dense gradient}) of the op's outputs that have one; two
    outputs given one gradient blob (Sum's inputs get the same) get a copy each, as
    Do binds each outer blob to one inner name."""
    copies, seeds = [], {}
    for i, output in enumerate(g.op.output):
        if not g.has_GO(i) or output in seeds:
            continue
        grad = g.g_output[i]
        if isinstance(grad, GradientSlice):
            raise GradientError(f"output '{output}' has a sparse gradient; control ops need dense ones")
        if grad in seeds.values():
            copies.append(_op("Copy", [grad], [f"{output}_{grad}_DEDUP"]))
            grad = copies[-1].output[0]
        seeds[output] = grad
    return copies, seeds


def _backward(ops, seeds, what: str):
    try:
        return GetBackwardPass(list(ops), dict(seeds))
    except GradientError as exc:
        raise GradientError(f"in {what}: {exc}") from exc


def _gradient_net(source: caffe2_pb2.NetDef, ops) -> caffe2_pb2.NetDef:
    net = caffe2_pb2.NetDef(name=(source.name + "_grad") if source.name else "")
    if source.type:
        net.type = source.type
    if source.HasField("device_option"):
        net.device_option.CopyFrom(source.device_option)
    net.op.extend(ops)
    return net


def _reads_and_writes(ops):
    """(names the ops read before writing them, names they write), in first-seen order."""
    reads, writes = [], []
    for op in ops:
        reads.extend(n for n in op.input if n not in writes and n not in reads)
        writes.extend(n for n in op.output if n not in writes)
    return reads, writes


def _overwritten(ops) -> set[str]:
    """Blobs the ops write before reading: their incoming values get no gradient (a
    backward pass's map still names the output's gradient for them)."""
    reads, writes = _reads_and_writes(ops)
    return set(writes) - set(reads)


def _record_reads(g, names) -> None:
    """Tell the backward pass which forward blobs the gradient op reads (version checks):
    a blob the op also writes is read as the op left it."""
    names = set(names)
    for i, name in enumerate(g.op.output):
        if name in names:
            g.O(i)
    for i, name in enumerate(g.op.input):
        if name in names and name not in g.op.output:
            g.I(i)


def _gradient_op(g, op_type, inputs, outputs, args) -> caffe2_pb2.OperatorDef:
    op = caffe2_pb2.OperatorDef(type=op_type, input=list(inputs), output=list(outputs))
    if g.op.name:
        op.name = g.op.name + "_grad"
    op.arg.extend(args)
    return op


# -- If ------------------------------------------------------------------------------------------

@register_gradient("If")
def make_if_gradient(g):
    copies, seeds = _seeds(g)
    branches = [(name, net) for name in ("then_net", "else_net")
                if (net := _net_arg(g.op, name)) is not None]
    passes = {name: _backward(net.op, seeds, name) for name, net in branches}
    inputs = list(g.op.input)
    # one gradient blob per input, whichever branch ran
    overwritten = {name: _overwritten(net.op) for name, net in branches}
    canonical = {}
    for name, (_, grad_map) in passes.items():
        for blob in inputs[1:]:
            grad = grad_map.get(blob)
            if grad is not None and blob not in canonical and not isinstance(grad, GradientSlice):
                canonical[blob] = grad
    grad_nets = {}
    for name, net in branches:
        ops, grad_map = passes[name]
        ops = list(ops)
        for blob, target in canonical.items():
            have = None if blob in overwritten[name] else grad_map.get(blob)
            if have == target:
                continue
            if blob in overwritten[name]:  # the branch replaced the blob: its old value does not count
                ops.append(_op("ConstantFill", [blob], [target], value=0.0))
            elif have is not None:
                ops.append(_op("Copy", [have], [target]))
            elif blob in seeds:  # the branch leaves the blob as it was: its gradient passes through
                ops.append(_op("Copy", [seeds[blob]], [target]))
            else:
                ops.append(_op("ConstantFill", [blob], [target], value=0.0))
        grad_nets[name] = _gradient_net(net, ops)
    if "else_net" not in grad_nets and any(blob not in seeds for blob in canonical):
        zeros = [_op("ConstantFill", [blob], [target], value=0.0)
                 for blob, target in canonical.items() if blob not in seeds]
        passthrough = [_op("Copy", [seeds[blob]], [target]) for blob, target in canonical.items()
                       if blob in seeds and seeds[blob] != target]
        grad_nets["else_net"] = _gradient_net(branches[0][1], zeros + passthrough)
        grad_nets["else_net"].name += "_else"
    all_ops = [op for net in grad_nets.values() for op in net.op]
    reads, writes = _reads_and_writes(all_ops)
    _record_reads(g, reads + [g.op.input[0]])
    condition = g.op.input[0]
    for i, blob in enumerate(inputs):
        if blob in canonical:
            g.SetDense(i, canonical[blob])
    args = [make_argument(name, net) for name, net in grad_nets.items()]
    return copies + [_gradient_op(g, "If", [condition] + [r for r in reads if r != condition], writes, args)]


# -- Do ------------------------------------------------------------------------------------------

def _do_parts(op):
    net = _net_arg(op, "net")
    if net is None:
        raise GradientError("has no net")
    args = {arg.name: arg for arg in op.arg}
    inner = [s.decode() for s in args["inner_blobs"].strings] if "inner_blobs" in args else []
    index = list(args["outer_blobs_idx"].ints) if "outer_blobs_idx" in args else []
    if "reuse_workspace" in args and args["reuse_workspace"].i:
        raise GradientError("a Do op with reuse_workspace has no gradient (it keeps no workspace per run)")
    try:
        bindings = do_bindings(list(op.input), list(op.output), inner, index)
    except ShapeError as exc:
        raise GradientError(str(exc)) from exc
    return net, bindings


@register_gradient("Do")
def make_do_gradient(g):
    net, bindings = _do_parts(g.op)
    stack = g.op.input[-1]
    to_inner = {outer: inner for inner, outer in bindings.items()}
    new_bindings: dict[str, str] = {}  # inner name -> outer name, for the gradient Do
    inner_seeds = {}
    copies, seeds = _seeds(g)
    for output, grad in seeds.items():
        if output == stack:
            continue
        inner_seeds[to_inner[output]] = to_inner[output] + INNER_GRAD
        new_bindings[inner_seeds[to_inner[output]]] = grad
    if not inner_seeds:
        return []
    ops, grad_map = _backward(net.op, inner_seeds, "the net of Do")
    ops, overwritten = list(ops), _overwritten(net.op)
    by_outer = {outer: inner for inner, outer in new_bindings.items()}
    gradient_outputs = []
    for i, outer in enumerate(g.op.input[:-1]):
        inner_grad = grad_map.get(to_inner[outer])
        if inner_grad is None or to_inner[outer] in overwritten or isinstance(inner_grad, GradientSlice):
            continue
        outer_grad = g.GI(i)
        target = by_outer.get(outer_grad)  # in place: the output gradient's own binding
        if target is None:
            target = to_inner[outer] + INNER_GRAD + "COPY_"
            new_bindings[target] = by_outer[outer_grad] = outer_grad
        if inner_grad != target:
            ops.append(_op("Copy", [inner_grad], [target]))
        gradient_outputs.append(outer_grad)
    reads, _ = _reads_and_writes(ops)
    gradient_inputs, saved = [], []
    for name in reads:
        if name in new_bindings:
            outer = new_bindings[name]
        elif name in bindings:
            outer = new_bindings.setdefault(name, bindings[name])
        else:
            saved.append(name)  # a local blob of the forward workspace
            continue
        if outer not in gradient_inputs:
            gradient_inputs.append(outer)
    _record_reads(g, set(gradient_inputs) | {stack})
    outer_list = gradient_inputs + gradient_outputs
    inner_names = list(new_bindings)
    args = [make_argument("net", _gradient_net(net, ops)),
            make_argument("inner_blobs", inner_names, ("strings",)),
            make_argument("outer_blobs_idx", [outer_list.index(new_bindings[n]) for n in inner_names], ("ints",)),
            make_argument("saved_fwd_blobs", saved, ("strings",))]
    return copies + [_gradient_op(g, "Do", gradient_inputs + [stack], gradient_outputs + [stack], args)]


# -- While ---------------------------------------------------------------------------------------

@register_gradient("While")
def make_while_gradient(g):
    loop_net = _net_arg(g.op, "loop_net")
    if loop_net is None or len(loop_net.op) != 1 or loop_net.op[0].type != "Do":
        raise GradientError("the gradient of While needs a loop_net of one Do op (as NetBuilder and "
                            "brew.loop make it), so that every pass keeps its workspace")
    _do_parts(loop_net.op[0])
    stack = loop_net.op[0].output[-1]
    copies, seeds = _seeds(g)
    body_ops, grad_map = _backward(loop_net.op, seeds, "loop_net")
    body_ops = list(body_ops)
    before, after = copies, []  # ops ahead of the gradient While; ops ending each of its passes
    gradients = {}
    for blob, seed in seeds.items():
        have = grad_map.get(blob)
        if have is None:  # the pass overwrote the blob without reading it: nothing flows further
            after.append(_op("ConstantFill", [blob], [seed], value=0.0))
            gradients[blob] = seed
        elif have != seed:
            before.append(_op("Copy", [seed], [have]))  # when the loop never ran
            after.append(_op("Copy", [have], [seed]))
            gradients[blob] = have
        else:
            gradients[blob] = seed
    for blob in g.op.input[1:]:
        grad = grad_map.get(blob)
        if blob in seeds or grad is None or isinstance(grad, GradientSlice):
            continue
        total = f"{blob}_grad_while_sum"  # read-only blobs: one contribution per pass
        before.append(_op("ConstantFill", [blob], [total], value=0.0))
        after.append(_op("Sum", [total, grad], [total]))
        gradients[blob] = total
    condition = g.op.name + "/has_scope" if g.op.name else stack + "/has_scope"
    before.insert(0, _op("HasScope", [stack], [condition]))
    body = _gradient_net(loop_net, body_ops + after)
    cond_net = _gradient_net(loop_net, [_op("HasScope", [stack], [condition])])
    cond_net.name = (loop_net.name or "loop") + "_grad_cond"
    reads, writes = _reads_and_writes(body.op)
    _record_reads(g, reads + [stack])
    for i, blob in enumerate(g.op.input):
        if blob in gradients:
            g.SetDense(i, gradients[blob])
    args = [make_argument("loop_net", body), make_argument("cond_net", cond_net)]
    return before + [_gradient_op(g, "While", [condition] + [r for r in reads if r != condition],
                                  writes, args)]
