"""The ONNX model fuzzer (tests/fuzz/test_fuzz_onnx.py), on the pattern of
harness.py: small valid models that real converters translate are mutated
(bytes flipped, cut, spliced; a field anywhere in the ModelProto set to an odd
value: dims, opsets, names, attribute types, data types...), written to a file,
prepared and run. A model passes when it runs, or is refused with a
PyCaffe2Error that names the file (prepare) or any PyCaffe2Error (a run, whose
fed inputs come from the model's declared types); anything else, or a run past
the time limit, is a failure."""
from __future__ import annotations

import random
import signal
import threading
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from pycaffe2.errors import PyCaffe2Error
from tests.fuzz.mutations import MUTATIONS, TOKENS, _insert, mutate_message

# Fed arrays are made only this large (a mutated declaration may ask for 2**40 elements).
MAX_FED_ELEMENTS = 4096


@lru_cache(maxsize=1)
def seeds() -> list[bytes]:
    """Small models over real converters (reductions with axes as input or attribute,
    Gemm, MatMul, ArgMax, Einsum, Constant; If and Loop with subgraphs; Slice, Gather,
    TopK, OneHot with constant arguments), serialized."""
    from onnx import TensorProto, helper, numpy_helper

    def info(name, elem=TensorProto.FLOAT, shape=(2, 3)):
        return helper.make_tensor_value_info(name, elem, shape)

    def model(nodes, inputs, outputs, initializers=(), opset=17):
        graph = helper.make_graph(nodes, "seed", inputs, outputs, initializer=list(initializers))
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [info("t")])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [info("e")])
    body = helper.make_graph([helper.make_node("Not", ["c_in"], ["n"]), helper.make_node("Not", ["n"], ["c_out"]),
                              helper.make_node("Add", ["v_in", "v_in"], ["v_out"]),
                              helper.make_node("Relu", ["v_in"], ["scan"])], "body",
                             [info("i", TensorProto.INT64, []), info("c_in", TensorProto.BOOL, []), info("v_in")],
                             [info("c_out", TensorProto.BOOL, []), info("v_out"), info("scan")])
    control = [
        model([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
              [info("c", TensorProto.BOOL, []), info("x")], [info("y")]),
        model([helper.make_node("Loop", ["m", "c", "x"], ["y", "s"], body=body)],
              [info("x")], [info("y"), info("s", shape=None)], [const("m", np.array(3, np.int64)), const("c", True)]),
        model([helper.make_node("Slice", ["x", "st", "en", "ax"], ["s"]),
               helper.make_node("Gather", ["s", "ix"], ["g"], axis=1),
               helper.make_node("TopK", ["g", "k"], ["y", "i"], axis=-1),
               helper.make_node("OneHot", ["i", "d", "ov"], ["o"])],
              [info("x")], [info("y", shape=None), info("o", shape=None)],
              [const("st", np.array([0], np.int64)), const("en", np.array([2], np.int64)),
               const("ax", np.array([1], np.int64)), const("ix", np.array([1, 0], np.int64)),
               const("k", np.array([1], np.int64)), const("d", np.array(4, np.int64)),
               const("ov", np.array([0, 1], np.float32))]),
    ]
    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    bias = numpy_helper.from_array(np.ones(4, np.float32), "b")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    return [
        model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], alpha=0.5, transB=0)],
              [info("x")], [info("y", shape=(2, 4))], [weights, bias]),
        model([helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
               helper.make_node("ArgMax", ["x"], ["i"], axis=1, keepdims=0),
               helper.make_node("ReduceMax", ["s"], ["y"], keepdims=0)],
              [info("x")], [info("y", shape=[]), info("i", TensorProto.INT64, (2,))], [axes]),
        model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[0], keepdims=0)],
              [info("x")], [info("y", shape=(3,))], opset=13),
        model([helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)],  # traced: axes fed
              [info("x"), info("a", TensorProto.INT64, (1,))], [info("y", shape=None)]),
        model([helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.eye(3, dtype=np.float32))),
               helper.make_node("MatMul", ["x", "c"], ["m"]),
               helper.make_node("Einsum", ["m"], ["y"], equation="ij->j")],
              [info("x")], [info("y", shape=(3,))]),
        *control,
    ]


def nest_model(model, rng: random.Random) -> None:
    """The graph's nodes moved into the then (or else) branch of Ifs nested one to 24
    deep (MAX_SUBGRAPH_DEPTH is 16), the outermost If writing the first graph output."""
    from onnx import AttributeProto, GraphProto, NodeProto
    inner = GraphProto(name="nested", node=list(model.graph.node), output=list(model.graph.output)[:1])
    for _ in range(rng.randint(1, 24)):
        node = NodeProto(op_type="If", input=[model.graph.input[0].name if model.graph.input else "c"],
                         output=[entry.name for entry in inner.output])
        branches = ["then_branch", "else_branch"]
        rng.shuffle(branches)  # one holds the nest (copying it into both would double it per level)
        node.attribute.add(name=branches[0], type=AttributeProto.GRAPH).g.CopyFrom(inner)
        node.attribute.add(name=branches[1], type=AttributeProto.GRAPH).g.name = "empty"
        inner = GraphProto(name="nested", node=[node], output=list(inner.output))
    del model.graph.node[:]
    model.graph.node.extend(inner.node)


def _mutate_model(data: bytes, rng: random.Random) -> bytes:
    from onnx import ModelProto
    model = ModelProto()
    model.ParseFromString(data)
    if rng.random() < 0.1:
        nest_model(model, rng)
    for _ in range(rng.randint(1, 3)):
        mutate_message(model, rng)
    return model.SerializePartialToString()


def mutate(rng: random.Random) -> bytes:
    """A seed after a field mutation (most often) and/or one to three byte mutations."""
    pool = seeds()
    data = rng.choice(pool)
    if rng.random() < 0.85:
        data = _mutate_model(data, rng)
        if rng.random() < 0.8:
            return data
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(MUTATIONS)
        data = mutation(data, rng, pool, TOKENS["binary"]) if mutation is _insert else mutation(data, rng, pool)
    return data


def _feeds(rep, rng: random.Random) -> list | None:
    """Arrays as the model declares its inputs (unknown dims 2, an int input [0] or [1],
    now and then a wrong dtype); None when a declaration asks for too large an array."""
    feeds = []
    for name in rep.inputs:
        dtype, shape = rep._declared.get(name, (None, None))
        dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(np.float32)
        shape = tuple(2 if dim is None else dim for dim in (shape if shape is not None else (2, 3)))
        if int(np.prod(shape, dtype=object)) > MAX_FED_ELEMENTS:
            return None
        if rng.random() < 0.1:
            dtype = np.dtype(rng.choice((np.float64, np.int32, np.bool_)))
        values = rng.choice((0, 1)) if dtype.kind in "iu" else 1.5
        feeds.append(np.full(shape, values, dtype=dtype))
    return feeds


def _loops(model) -> bool:
    from pycaffe2.onnx.checks import walk_graphs
    return any(node.op_type in ("Loop", "Scan") for graph, _, _ in walk_graphs(model.graph) for node in graph.node)


class Hang(Exception):
    """The model ran past run_one's time limit."""


def _hang(signum, frame):
    raise Hang("still running after the time limit")


def run_one(data: bytes, folder: Path, rng: random.Random, seconds: float = 10.0):
    """('accepted' | 'refused', None | the error) when the backend behaves, ('failed',
    the exception) when it raises anything but a PyCaffe2Error, a prepare error does
    not name the file, or it runs past `seconds` (checked on the main thread only)."""
    from pycaffe2.onnx import backend
    path = folder / "model.onnx"
    path.write_bytes(data)
    timed = threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _hang)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a newer opset than the converters know
            try:
                rep = backend.prepare(str(path))
            except PyCaffe2Error as exc:
                if str(path) not in str(exc):
                    return "failed", AssertionError(f"the error does not name the file: {exc}")
                return "refused", exc
            feeds = _feeds(rep, rng)
            if feeds is None:
                return "accepted", None
            if timed:  # a run gets a quarter second: a Loop may be told to take 2**62 trips
                signal.setitimer(signal.ITIMER_REAL, 0.25)
            try:
                rep.run(feeds)
                rep.run(feeds)  # the cached (or traced) net again
            except PyCaffe2Error as exc:
                return "refused", exc
            except Hang as exc:
                if _loops(rep.model):  # as long as the model says: its semantics, not a hang
                    return "refused", exc
                raise
    except Exception as exc:  # noqa: BLE001 (the fuzzer's whole point)
        return "failed", exc
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return "accepted", None


def fuzz_with_hypothesis(folder: Path, examples: int) -> None:
    """As harness.fuzz_with_hypothesis: hypothesis draws the random choices (seeded,
    so the run is the same each time) and fails on the first misbehaving model."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False))
    def check(rng):
        data = mutate(rng)
        outcome, exc = run_one(data, folder, rng)
        if outcome == "failed":
            raise AssertionError(f"the ONNX backend raised {type(exc).__name__}: {exc} on {data[:300]!r}") from exc

    check()
