"""Caffe2's `control` module: loops and branches made of execution steps.

    from pycaffe2 import control, core
    step = control.While("count", cond_net, body_net)   # cond_net's last external output is the bool
    plan = core.Plan("p"); plan.AddStep(step)

Each function returns an ExecutionStep for a Plan. A condition is a scalar bool
blob, or a Net whose last external output is that blob (run first, each time
the condition is needed). Steps stop through `should_stop_blob`; a step that
must run at most once (If's branches) also has `only_once`. For the ops If and
While, which run nets inside one net, see net_builder's IfNet and WhileNet.
"""
from __future__ import annotations

from pycaffe2 import core
from pycaffe2.errors import PyCaffe2Error

_used_step_names: set[str] = set()


def _step_name(control_name: str, base_name: str) -> str:
    """A step name not used before in this process: `base/control`, then `_1`, `_2`, ..."""
    name, k = f"{base_name}/{control_name}", 1
    while name in _used_step_names:
        name, k = f"{base_name}/{control_name}_{k}", k + 1
    _used_step_names.add(name)
    return name


def _as_list(items) -> list:
    """(a, b) -> [a, b]; (a,) -> [a]; ([a, b],) -> [a, b]."""
    if not items:
        raise ValueError("input cannot be empty.")
    if len(items) == 1:
        return items[0] if isinstance(items[0], list) else [items[0]]
    return list(items)


def _is_nets(nets_or_steps) -> bool:
    if isinstance(nets_or_steps, list):
        return all(isinstance(n, core.Net) for n in nets_or_steps)
    return isinstance(nets_or_steps, core.Net)


def _prepend(nets_or_steps, *nets) -> list:
    nets_or_steps, nets = _as_list((nets_or_steps,)), list(nets)
    return nets + nets_or_steps if _is_nets(nets_or_steps) else [Do("prepend", nets)] + nets_or_steps


def _append(nets_or_steps, *nets) -> list:
    nets_or_steps, nets = _as_list((nets_or_steps,)), list(nets)
    return nets_or_steps + nets if _is_nets(nets_or_steps) else nets_or_steps + [Do("append", nets)]


def GetConditionBlobFromNet(condition_net) -> core.BlobReference:
    """The condition a net computes: its last external output (a scalar bool)."""
    outputs = condition_net.Proto().external_output
    if not outputs:
        raise PyCaffe2Error(f"condition net {condition_net.Name()} must have at least one external output")
    return core.BlobReference(outputs[-1])


def BoolNet(*blobs_with_bool_value) -> core.Net:
    """A net setting each (blob, bool) pair's blob to that constant."""
    net = core.Net("bool_net")
    for blob, value in _as_list(blobs_with_bool_value):
        net.AddExternalOutput(net.ConstantFill([], [blob], shape=[], value=value, dtype=core.DataType.BOOL))
    return net


def NotNet(condition_blob_or_net):
    """(net, its output): the negation of a condition blob or condition net."""
    condition = (GetConditionBlobFromNet(condition_blob_or_net)
                 if isinstance(condition_blob_or_net, core.Net) else condition_blob_or_net)
    net = core.Net("not_net")
    out = net.Not(condition)
    net.AddExternalOutput(out)
    return net, out


def _copy_condition_net(condition_blob):
    net = core.Net("copy_condition_blob_net")
    out = net.Copy(condition_blob)
    net.AddExternalOutput(out)
    return net, out


def _relate(net: core.Net, conditions, relation: str):
    last = conditions[0]
    for condition in conditions[1:]:
        last = getattr(net, relation)([last, condition])
    net.AddExternalOutput(last)
    return net


def MergeConditionNets(name, condition_nets, relation):
    """One net running every condition net, whose condition is their And / Or."""
    if not isinstance(condition_nets, list):
        return condition_nets
    if len(condition_nets) <= 1:
        return condition_nets[0] if condition_nets else None
    merged = core.Net(name)
    for net in condition_nets:
        merged.Proto().op.extend(net.Proto().op)
        merged.Proto().external_input.extend(net.Proto().external_input)
    return _relate(merged, [GetConditionBlobFromNet(n) for n in condition_nets], relation)


def CombineConditions(name, condition_nets, relation):
    """A net computing the And / Or of the nets' conditions, without running the nets."""
    if not condition_nets:
        return None
    if not isinstance(condition_nets, list):
        raise TypeError("condition_nets must be a list of nets.")
    if len(condition_nets) == 1:
        return _copy_condition_net(GetConditionBlobFromNet(condition_nets[0]))[0]
    return _relate(core.Net(name), [GetConditionBlobFromNet(n) for n in condition_nets], relation)


def Do(name, *nets_or_steps):
    """Run the nets or steps once, in order."""
    nets_or_steps = _as_list(nets_or_steps)
    if len(nets_or_steps) == 1 and isinstance(nets_or_steps[0], core.ExecutionStep):
        return nets_or_steps[0]
    return core.scoped_execution_step(_step_name("Do", name), nets_or_steps)


def DoParallel(name, *nets_or_steps):
    """Run the nets or steps at the same time and wait for all of them."""
    nets_or_steps = _as_list(nets_or_steps)
    if len(nets_or_steps) == 1 and isinstance(nets_or_steps[0], core.ExecutionStep):
        return nets_or_steps[0]
    return core.scoped_execution_step(_step_name("DoParallel", name), nets_or_steps, concurrent_substeps=True)


def _run_once_if(name, condition, nets_or_steps):
    """Run once when the condition holds: a step stopped by NOT condition."""
    not_net, stop = NotNet(condition)
    first = [condition, not_net] if isinstance(condition, core.Net) else [not_net]
    nets_or_steps = _prepend(nets_or_steps, *first)

    def step(control_name):
        return core.scoped_execution_step(_step_name(control_name, name), nets_or_steps,
                                          should_stop_blob=stop, only_once=True)
    if _is_nets(nets_or_steps):  # the stop blob starts False, whatever an earlier run left
        return Do(name + "/_RunOnceIf", BoolNet((stop, False)), step("_RunOnceIf-inner"))
    return step("_RunOnceIf")


def _run_once_if_not(name, condition, nets_or_steps):
    """Run once when the condition does not hold: a step stopped by the condition."""
    if isinstance(condition, core.Net):
        stop, nets_or_steps = GetConditionBlobFromNet(condition), _prepend(nets_or_steps, condition)
    else:
        copy_net, stop = _copy_condition_net(condition)
        nets_or_steps = _prepend(nets_or_steps, copy_net)
    return core.scoped_execution_step(_step_name("_RunOnceIfNot", name), nets_or_steps,
                                      should_stop_blob=stop, only_once=True)


def For(name, nets_or_steps, iter_num):
    """Run the nets or steps `iter_num` times (a counter counts up to it; Caffe2's
    CreateCounter and CountDown ops are not in pycaffe2)."""
    init_net, iter_net = core.Net("init-net"), core.Net("For-iter")
    counter = init_net.ConstantFill([], init_net.NextName("for_counter"), shape=[], value=0,
                                    dtype=core.DataType.INT64)
    limit = init_net.ConstantFill([], init_net.NextName("for_limit"), shape=[], value=int(iter_num),
                                  dtype=core.DataType.INT64)
    one = init_net.ConstantFill([], init_net.NextName("for_one"), shape=[], value=1, dtype=core.DataType.INT64)
    iter_net.Add([counter, one], [counter])
    done = iter_net.GT([counter, limit])
    loop = core.scoped_execution_step(_step_name("For-inner", name), _prepend(nets_or_steps, iter_net),
                                      should_stop_blob=done)
    return Do(name + "/For", Do(name + "/For-init-net", init_net), loop)


def While(name, condition_blob_or_net, nets_or_steps):
    """Run the nets or steps again and again while the condition holds (checked first)."""
    not_net, stop = NotNet(condition_blob_or_net)
    first = [condition_blob_or_net, not_net] if isinstance(condition_blob_or_net, core.Net) else [not_net]
    nets_or_steps = _prepend(nets_or_steps, *first)

    def step(control_name):
        return core.scoped_execution_step(_step_name(control_name, name), nets_or_steps, should_stop_blob=stop)
    if _is_nets(nets_or_steps):
        return Do(name + "/While", BoolNet((stop, False)), step("While-inner"))
    return step("While")


def Until(name, condition_blob_or_net, nets_or_steps):
    """Run the nets or steps again and again until the condition holds (checked first)."""
    if isinstance(condition_blob_or_net, core.Net):
        stop = GetConditionBlobFromNet(condition_blob_or_net)
        nets_or_steps = _prepend(nets_or_steps, condition_blob_or_net)
    else:
        stop = core.BlobReference(str(condition_blob_or_net))
    return core.scoped_execution_step(_step_name("Until", name), nets_or_steps, should_stop_blob=stop)


def DoWhile(name, condition_blob_or_net, nets_or_steps):
    """Like While, with the condition checked after each pass."""
    not_net, stop = NotNet(condition_blob_or_net)
    last = [condition_blob_or_net, not_net] if isinstance(condition_blob_or_net, core.Net) else [not_net]
    nets_or_steps = _append(nets_or_steps, *last)
    return Do(name + "/DoWhile", BoolNet((stop, False)),
              core.scoped_execution_step(_step_name("DoWhile-inner", name), nets_or_steps,
                                         should_stop_blob=stop))


def DoUntil(name, condition_blob_or_net, nets_or_steps):
    """Like Until, with the condition checked after each pass (a condition blob that is
    already true ends the loop after the first net or step)."""
    if not isinstance(condition_blob_or_net, core.Net):
        return core.scoped_execution_step(_step_name("DoUntil", name), nets_or_steps,
                                          should_stop_blob=core.BlobReference(condition_blob_or_net))
    stop = GetConditionBlobFromNet(condition_blob_or_net)
    return Do(name + "/DoUntil", BoolNet((stop, False)),
              core.scoped_execution_step(_step_name("DoUntil-inner", name),
                                         _append(nets_or_steps, condition_blob_or_net), should_stop_blob=stop))


def Switch(name, *conditions):
    """Run each (condition, nets_or_steps) pair's steps whose condition holds (several may)."""
    return core.scoped_execution_step(_step_name("Switch", name),
                                      [_run_once_if(name + "/Switch", c, s) for c, s in _as_list(conditions)])


def SwitchNot(name, *conditions):
    """Like Switch, for the pairs whose condition does not hold."""
    return core.scoped_execution_step(_step_name("SwitchNot", name),
                                      [_run_once_if_not(name + "/SwitchNot", c, s) for c, s in _as_list(conditions)])


def If(name, condition_blob_or_net, true_nets_or_steps, false_nets_or_steps=None):
    """Run true_nets_or_steps when the condition holds, else false_nets_or_steps."""
    if not false_nets_or_steps:
        return _run_once_if(name + "/If", condition_blob_or_net, true_nets_or_steps)
    condition = (GetConditionBlobFromNet(condition_blob_or_net)
                 if isinstance(condition_blob_or_net, core.Net) else condition_blob_or_net)
    return Do(name + "/If", _run_once_if(name + "/If-true", condition_blob_or_net, true_nets_or_steps),
              _run_once_if_not(name + "/If-false", condition, false_nets_or_steps))


def IfNot(name, condition_blob_or_net, true_nets_or_steps, false_nets_or_steps=None):
    """Run true_nets_or_steps when the condition does not hold, else false_nets_or_steps."""
    if not false_nets_or_steps:
        return _run_once_if_not(name + "/IfNot", condition_blob_or_net, true_nets_or_steps)
    condition = (GetConditionBlobFromNet(condition_blob_or_net)
                 if isinstance(condition_blob_or_net, core.Net) else condition_blob_or_net)
    return Do(name + "/IfNot", _run_once_if_not(name + "/IfNot-true", condition_blob_or_net, true_nets_or_steps),
              _run_once_if(name + "/IfNot-false", condition, false_nets_or_steps))
