"""Hostile input through nets held in args (If, While, Do, step nets): nets nested
past MAX_NET_NESTING, in memory or in a file, end in one clear error at validate,
CreateNet, the gradient builder and `pycaffe2 run`, never a RecursionError; a
While that never ends is the user's program, but Ctrl-C stops it cleanly."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe2 import core, memonger, netfile
from pycaffe2.cli import main
from pycaffe2.errors import NetError, NetFileError, PyCaffe2Error
from pycaffe2.executor import Workspace
from pycaffe2.gradient import GradientError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import MAX_NET_NESTING, inner_nets, net_from_text
from pycaffe2.schema.checker import check_net

TOO_DEEP = "nets nested more than 16 deep"


def nested(depth: int, kind: str = "If") -> caffe2_pb2.NetDef:
    """`depth` control ops, each holding the next net; built in place, as protobuf
    refuses to copy messages nested more than 100 deep."""
    root = caffe2_pb2.NetDef(name="n0", external_input=["c", "x"], external_output=["y"])
    net = root
    for level in range(depth):
        if kind == "Do":
            op = net.op.add(type="Do", input=["x", "ws"], output=["y", "ws"])
            op.arg.add(name="inner_blobs", strings=[b"x", b"y"])
            op.arg.add(name="outer_blobs_idx", ints=[0, 1])
            net = op.arg.add(name="net").n
        elif kind == "While":
            op = net.op.add(type="While", input=["c", "x"], output=["y"])
            net = op.arg.add(name="loop_net").n
        else:
            op = net.op.add(type="If", input=["c", "x"], output=["y"])
            net = op.arg.add(name="then_net").n
        net.name = f"n{level + 1}"
    net.op.add(type="Copy", input=["x"], output=["y"])
    return root


def feeds(ws):
    ws.FeedBlob("c", np.array(False))
    ws.FeedBlob("x", np.ones(2, np.float32))


def test_the_cap_is_what_a_file_can_hold(tmp_path):
    assert MAX_NET_NESTING == 16
    net = nested(MAX_NET_NESTING)
    assert not [p for p in check_net(net, known_blobs=["c", "x"]) if p.kind == "nesting"]
    ws = Workspace("ok")
    feeds(ws)
    ws.FeedBlob("c", np.array(True))
    ws.RunNetOnce(net)
    np.testing.assert_array_equal(ws.FetchBlob("y"), np.ones(2))
    for suffix in (".pb", ".pbtxt", ".json", ".yaml"):
        netfile.save_net(net, tmp_path / f"net{suffix}")
        assert netfile.load_net(tmp_path / f"net{suffix}") == net


@pytest.mark.parametrize("kind", ["If", "While", "Do"])
@pytest.mark.parametrize("depth", [MAX_NET_NESTING + 1, 3000])
def test_too_deep_in_memory_is_one_error_everywhere(kind, depth):
    net = nested(depth, kind)
    problems = check_net(net)
    assert [p.kind for p in problems] == ["nesting"] and TOO_DEEP in problems[0].message
    assert f"op 0 ({kind})" in problems[0].message
    ws = Workspace("deep")
    feeds(ws)
    before = {name: ws.FetchBlob(name) for name in ws.Blobs()}
    for call in (ws.RunNetOnce, ws.CreateNet):
        with pytest.raises(NetError, match=TOO_DEEP):
            call(net)
    assert ws.Nets() == [] and sorted(ws.Blobs()) == sorted(before)  # nothing half-made
    with pytest.raises(GradientError, match=TOO_DEEP):
        core.Net(net).AddGradientOperators(["y"])
    assert "x" in memonger._nested_blobs(net.op[0])  # walks without recursion


def test_a_deep_text_step_net_is_refused_not_recursed():
    deep = "op { type: 'If' arg { name: 'then_net' n { " * 400 + "} } }" * 400
    net, problem = net_from_text(deep)
    assert net is None and "nested" in problem
    assert net_from_text("op { type: ")[1].startswith("not a NetDef in text form")
    op = caffe2_pb2.OperatorDef(type="RecurrentNetwork")
    op.arg.add(name="step_net", s=deep.encode())
    op.arg.add(name="backward_step_net", s=b"op { type: 'Copy' input: 'a' output: 'b' }")
    assert [name for name, _ in inner_nets(op)] == ["backward_step_net"]
    # memonger cannot know what an unreadable step net names, so it leaves the net alone
    with pytest.raises(PyCaffe2Error, match="nested more than 64 messages deep; the net is left as it was"):
        memonger._nested_blobs(op)


def write_deep_files(folder, depth):
    net = nested(depth)
    (folder / "deep.pbtxt").write_text(text_format.MessageToString(net))
    return folder / "deep.pbtxt"


def test_a_file_past_the_cap_is_one_line_at_validate_and_run(tmp_path, capsys):
    path = write_deep_files(tmp_path, MAX_NET_NESTING + 1)  # fits protobuf's 64 messages
    assert main(["validate", str(path)]) != 0
    out = capsys.readouterr()
    assert str(path) in out.out + out.err and TOO_DEEP in out.out + out.err
    assert "Traceback" not in out.out + out.err
    np.save(tmp_path / "c.npy", np.array(True))
    np.save(tmp_path / "x.npy", np.ones(2, np.float32))
    assert main(["run", str(path), "--feed", f"c={tmp_path / 'c.npy'}", "--feed", f"x={tmp_path / 'x.npy'}"]) != 0
    err = capsys.readouterr().err
    assert TOO_DEEP in err and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("suffix", [".pbtxt", ".yaml", ".json"])
def test_a_file_nested_thousands_deep_names_the_file(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    inner = "{name: t, op: [{type: Copy, input: [x], output: [y]}]}"
    if suffix == ".pbtxt":
        path.write_text("op { type: 'If' arg { name: 'then_net' n { " * 2000 + "} } }" * 2000)
    else:
        for _ in range(2000):
            inner = f'{{"name": "n", "op": [{{"type": "If", "input": ["c", "x"], "arg": {{"then_net": {inner}}}}}]}}'
        path.write_text(inner.replace("{name: t", '{"name": "t"').replace("type: Copy", '"type": "Copy"')
                        .replace("input: [x]", '"input": ["x"]').replace("output: [y]", '"output": ["y"]')
                        .replace(", op: [", ', "op": ['))
    with pytest.raises(NetFileError) as info:
        netfile.load_model(path)
    assert str(path) in str(info.value) and "deep" in str(info.value)


def test_a_list_of_nets_where_one_net_goes_is_described_in_one_line():
    op = caffe2_pb2.OperatorDef(type="If", input=["c", "x"], output=["y"])
    arg = op.arg.add(name="then_net")
    arg.nets.add(name="a").op.add(type="Copy", input=["x"], output=["y"])
    arg.nets.add(name="b")
    problems = check_net(caffe2_pb2.NetDef(name="m", op=[op], external_input=["c", "x"]))
    assert [str(p) for p in problems] == [
        "op 0 (If): arg 'then_net' must be net, got a list of 2 net(s) (field nets)"]


def test_do_net_reading_an_unbound_outer_blob_is_named():
    op = caffe2_pb2.OperatorDef(type="Do", input=["x", "ws"], output=["y", "ws"])
    op.arg.add(name="inner_blobs", strings=[b"ix", b"iy"])
    op.arg.add(name="outer_blobs_idx", ints=[0, 1])
    op.arg.add(name="net").n.op.add(type="Add", input=["ix", "z"], output=["iy"])
    net = caffe2_pb2.NetDef(name="m", op=[op], external_input=["x", "z", "ws"])
    assert any("input 'z' is not an external_input" in str(p) for p in check_net(net))


FOREVER = """\
name: forever
external_input: [cond, x]
external_output: [y]
op:
  - {type: Copy, input: [x], output: [y]}
  - type: While
    input: [cond, x, y]
    output: [y]
    arg:
      loop_net: {name: body, op: [{type: Add, input: [y, x], output: [y]}]}
"""


def wait_until_running(process, cpu_seconds: float = 3.0, deadline_s: float = 60.0) -> None:
    """Until the child has spent `cpu_seconds` of CPU (its imports done, its loop running), not
    a fixed wall time: on a loaded machine a Ctrl-C sent mid-import tests something else."""
    stat = Path(f"/proc/{process.pid}/stat")
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        stat.read_text()
    except (OSError, ValueError, AttributeError):
        time.sleep(3)  # no /proc here: the wall time that is enough on an idle machine
        return
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        if (int(fields[11]) + int(fields[12])) / ticks >= cpu_seconds:  # utime + stime
            return
        time.sleep(0.1)


def ctrl_c_as_a_terminal_gives_it():
    """The child's SIGINT as a shell starts a program: handled, not blocked. In the full suite
    the test process once held SIGINT ignored or blocked when these children started (they
    inherit both), and the child then never saw the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def test_ctrl_c_stops_a_while_that_never_ends(tmp_path):
    (tmp_path / "forever.yaml").write_text(FOREVER)
    np.save(tmp_path / "c.npy", np.array(True))
    np.save(tmp_path / "x.npy", np.ones(3, np.float32))
    process = subprocess.Popen(
        [sys.executable, "-m", "pycaffe2", "run", "forever.yaml", "--feed", "cond=c.npy", "--feed", "x=x.npy",
         "--out", "out.npz"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_as_a_terminal_gives_it)  # noqa: PLW1509 (two signal calls, safe after fork)
    try:
        wait_until_running(process)  # the import and the first thousands of iterations
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    assert not (tmp_path / "out.npz").exists()


def test_an_interrupted_while_leaves_the_workspace_as_it_was():
    net = caffe2_pb2.NetDef(name="forever")
    op = net.op.add(type="While", input=["cond", "x", "y"], output=["y"])
    op.arg.add(name="loop_net").n.op.add(type="Add", input=["y", "x"], output=["y"])
    ws = Workspace("interrupted")
    ws.FeedBlob("cond", np.array(True))
    ws.FeedBlob("x", np.ones(3, np.float32))
    ws.FeedBlob("y", np.zeros(3, np.float32))

    def interrupt(*_):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            ws.RunNetOnce(net)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    np.testing.assert_array_equal(ws.FetchBlob("y"), np.zeros(3))  # the loop's writes never landed
    assert sorted(ws.Blobs()) == ["cond", "x", "y"]


PLAN_FOREVER = """\
init_net:
  name: init
  op:
  - {type: ConstantFill, output: [cond], arg: {shape: [], value: 1, dtype: 5}}
  - {type: ConstantFill, output: [x], arg: {shape: [3], value: 1.0}}
predict_net:
  name: forever
  external_input: [cond, x]
  external_output: [y]
  op:
  - {type: Copy, input: [x], output: [y]}
  - type: While
    input: [cond, x, y]
    output: [y]
    arg:
      loop_net: {name: body, op: [{type: Add, input: [y, x], output: [y]}]}
plan:
  name: fit
  network:
  - {name: init, op: [{type: ConstantFill, output: [cond], arg: [{name: shape, ints: []}, {name: value, f: 1},
                                                                   {name: dtype, i: 5}]},
                      {type: ConstantFill, output: [x], arg: [{name: shape, ints: [3]}, {name: value, f: 1}]}]}
  - name: forever
    op:
    - {type: Copy, input: [x], output: [y]}
    - type: While
      input: [cond, x, y]
      output: [y]
      arg: [{name: loop_net, n: {name: body, op: [{type: Add, input: [y, x], output: [y]}]}}]
  execution_step:
  - {name: init, network: [init]}
  - {name: loop, network: [forever], num_iter: 5}
"""


def test_ctrl_c_twice_stops_a_plan_whose_iteration_never_ends(tmp_path):
    """A plan finishes its iteration on the first Ctrl-C, and says so; this one never
    would, and the second stops it at once."""
    (tmp_path / "model.yaml").write_text(PLAN_FOREVER)
    assert main(["validate", str(tmp_path / "model.yaml")]) == 0
    process = subprocess.Popen([sys.executable, "-m", "pycaffe2", "run", "model.yaml", "--checkpoint", "ckpt"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ctrl_c_as_a_terminal_gives_it)  # noqa: PLW1509 (two signal calls, safe after fork)
    try:
        wait_until_running(process)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        time.sleep(1)
        assert process.poll() is None, process.communicate()  # still in the While
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    assert "Ctrl-C again to stop at once" in err and "stopped at once" in err


def test_a_nested_net_declaring_an_input_the_op_cannot_give_is_named(tmp_path, capsys):
    """Its external_input is a promise the outer net must keep; validate says when it
    cannot (run would fail inside the If, at the op that reads it)."""
    (tmp_path / "ext.yaml").write_text("""\
name: m
external_input: [c, x]
external_output: [y]
op:
  - {type: Copy, input: [x], output: [y]}
  - type: If
    input: [c, x]
    output: [y]
    arg:
      then_net: {name: t, external_input: [x, nothere], op: [{type: Copy, input: [nothere], output: [y]}]}
""")
    assert main(["validate", str(tmp_path / "ext.yaml")]) == 1
    assert capsys.readouterr().out == (f"{tmp_path / 'ext.yaml'}:6: op 1 (If): then_net (net 't'): external_input "
                                       "'nothere' is not a blob the op can give it\n")


def test_nested_mutations_of_every_net_seed_are_accepted_or_refused_by_name(tmp_path):
    """The fuzzer's nesting mutation (1 to 24 levels of If/While/Do, as `n` or `nets`)
    on each seed net, through each text format as well as binary."""
    import random

    from tests.fuzz import harness
    from tests.fuzz.mutations import nest_message
    rng, outcomes = random.Random(15), []
    for seed in harness.seeds()["pb"]:
        net = caffe2_pb2.NetDef.FromString(seed)
        nest_message(net, rng)
        data = net.SerializePartialToString()
        for family in ("pb", "pbtxt"):
            if family == "pbtxt":
                data = text_format.MessageToString(net).encode()
            outcome, exc = harness.run_one(family, data, tmp_path)
            assert outcome != "failed", exc
            outcomes.append(outcome)
    assert "refused" in outcomes
