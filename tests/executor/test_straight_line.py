"""The generated run function: blobs in locals, stored as each step returns; sync points
around steps that see the blob mapping; bound args as keywords (or a dict when a key is
no identifier); blob names from the file never become code; a failure or a Ctrl-C
leaves what the earlier steps computed."""
import itertools

import numpy as np
import pytest

from pycaffe2.errors import OpFailure
from pycaffe2.executor import Workspace, compile_net
from pycaffe2.executor.net import Step
from pycaffe2.executor.straight_line import generate, recover
from pycaffe2.operators import load_kernels
from pycaffe2.operators.registry import Kernel
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import make_op


def step(index, function, inputs, outputs, kwargs=None, **flags):
    return Step(index, "Test", function, tuple(inputs), tuple(outputs), kwargs or {},
                single=len(outputs) == 1, **flags)


def test_outputs_reach_the_mapping_and_inputs_are_read_once():
    reads = []

    class Recording(dict):
        def __getitem__(self, key):
            reads.append(key)
            return super().__getitem__(key)
    steps = [step(0, np.add, ["X", "X"], ["a"]), step(1, np.multiply, ["a", "X"], ["b"]),
             step(2, lambda a, b: (a - b, a + b), ["a", "b"], ["c", "d"])]
    run, _ = generate(steps)
    blobs = Recording(X=np.array([1.0, 2.0]))
    run(blobs)
    assert reads == ["X"]
    np.testing.assert_array_equal(blobs["b"], [2.0, 8.0])
    np.testing.assert_array_equal(blobs["d"], [4.0, 12.0])


def test_keywords_and_a_dict_for_keys_that_are_no_identifiers():
    def scale(x, *, factor, **more):
        return x * factor + more.get("not an identifier", 0)
    steps = [step(0, scale, ["X"], ["a"], {"factor": 3.0}),
             step(1, scale, ["a"], ["b"], {"factor": 2.0, "not an identifier": 1.0})]
    run, _ = generate(steps)
    blobs = {"X": np.array([1.0])}
    run(blobs)
    np.testing.assert_array_equal(blobs["b"], [7.0])


def test_a_sync_step_sees_freeable_blobs_and_blobs_are_reread_after_it():
    def control(a, *, blobs):  # reads a blob it was not given, writes one by name
        return {"c": blobs["b"] + a}
    steps = [step(0, np.negative, ["X"], ["a"]), step(1, np.negative, ["a"], ["b"]),
             Step(2, "Control", control, ("a",), (), {}, False, wants_blobs=True, writes=("c",)),
             step(3, np.negative, ["c"], ["d"])]
    run, _ = generate(steps, free_after=[(), (), ("a", "b"), ()])
    blobs = {"X": np.array([2.0])}
    run(blobs)
    assert sorted(blobs) == ["X", "c", "d"]
    np.testing.assert_array_equal(blobs["d"], [0.0])


def test_names_from_a_file_are_values_not_code():
    odd = ["a; import os", "x)\n", "'quoted'", "B", "k0", "n0", "__import__('os')"]
    net = caffe2_pb2.NetDef(name="odd", external_input=[odd[0]])
    for before, after in itertools.pairwise(odd):
        net.op.append(make_op("Relu", [before], [after]))
    ws = Workspace()
    ws.FeedBlob(odd[0], np.array([-1.0, 1.0], np.float32))
    ws.CreateNet(net)
    ws.RunNet("odd")
    np.testing.assert_array_equal(ws.FetchBlob(odd[-1]), [0.0, 1.0])
    assert sorted(ws.Blobs()) == sorted(odd)


def test_a_failing_step_is_found_and_its_inputs_described():
    def fails(a):
        raise ValueError("no")
    steps = [step(0, np.negative, ["X"], ["a"]), step(1, fails, ["a"], ["b"])]
    run, lines = generate(steps, free_after=[(), ("a",)])
    blobs = {"X": np.array([2.0])}
    with pytest.raises(ValueError) as info:
        run(blobs)
    failed, in_locals = recover(info.value, lines)
    assert failed is steps[1] and list(in_locals) == ["a"] and "a" not in blobs  # freeable: a local
    np.testing.assert_array_equal(in_locals["a"], [-2.0])


def test_ctrl_c_in_a_kernel_keeps_what_ran_and_is_not_wrapped():
    def interrupted(x):
        raise KeyboardInterrupt
    kernels = dict(load_kernels())
    kernels["Sigmoid"] = Kernel("Sigmoid", interrupted, (), ())
    net = caffe2_pb2.NetDef(name="n", op=[make_op("Relu", ["X"], ["a"]), make_op("Sigmoid", ["a"], ["b"])])
    compiled = compile_net(net, known_blobs=["X"], kernels=kernels)
    blobs = {"X": np.array([-1.0, 1.0], np.float32)}
    with pytest.raises(KeyboardInterrupt):
        compiled.run(blobs)
    np.testing.assert_array_equal(blobs["a"], [0.0, 1.0])
    assert "b" not in blobs


def test_a_kernel_returning_too_few_outputs_writes_none():
    kernels = dict(load_kernels())
    kernels["Split"] = Kernel("Split", lambda x, **args: (x,), ("axis", "split", "order", "add_axis"), ())
    net = caffe2_pb2.NetDef(name="n", op=[make_op("Relu", ["X"], ["a"]),
                                          make_op("Split", ["a"], ["p", "q"], {"split": [1, 1]})])
    ws = Workspace()
    ws.FeedBlob("X", np.array([-1.0, 1.0], np.float32))
    compiled = compile_net(net, known_blobs=["X"], kernels=kernels)
    with pytest.raises(OpFailure, match=r"op 1 \(Split\).*IndexError"):
        compiled.run(ws.blobs)
    assert sorted(ws.blobs) == ["X", "a"]
