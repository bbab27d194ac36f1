"""ONNX's node test cases (built in memory by onnx 1.23, which ships no node data)
and the line between the ones in pycaffe2's scope and the rest.

Out of scope, by the issue that brought the backend (each with its reason):
sequence, optional and map types; string tensors; ops of other domains
(ai.onnx.ml, ai.onnx.preview.training); quantized ops; dtypes NumPy has no plain
type for (bfloat16, float8, int4/uint4, float4, int2/uint2) and complex ones;
training-only cases; random ops; ImageDecoder. Everything else is in scope.

Run as a script to see cases pass or fail while working on converters:

    python tests/onnx_node_cases.py Resize ReduceSum [-v]     cases using these ops
    python tests/onnx_node_cases.py --all                     every case, counts per op
    python tests/onnx_node_cases.py --all --write-expected    also rewrite the expected-failure
                                                              list of tests/test_onnx_backend.py
"""
from __future__ import annotations

import argparse
import collections
import functools
import re
import sys
import traceback
import warnings
from pathlib import Path

QUANTIZED = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
             "MatMulInteger", "ConvInteger"}
RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial"}
TRAINING = {"SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"}
OTHER = {"ImageDecoder"}
DEFAULT_DOMAINS = ("", "ai.onnx")


@functools.cache
def collect() -> list:
    """Every node test case of the installed onnx (the list ONNX's BackendTest runs), in a stable order."""
    from onnx.backend.test.loader import load_model_tests
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    return sorted(cases, key=lambda case: case.name)


def _plain_dtype(elem_type: int) -> bool:
    from onnx import TensorProto
    return elem_type in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BOOL,
                         TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
                         TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
                         TensorProto.UNDEFINED)


def _graphs(graph):
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs]:
                if sub.node:
                    yield from _graphs(sub)


def out_of_scope(case) -> str | None:
    """Why `case` is out of pycaffe2's scope, or None when it is in."""
    from onnx import AttributeProto, TensorProto
    model = case.model
    for graph in _graphs(model.graph):
        for entry in [*graph.input, *graph.output, *graph.value_info]:
            kind = entry.type.WhichOneof("value")
            if kind not in (None, "tensor_type"):
                return "sequence, optional or map types"
            if entry.type.tensor_type.elem_type == TensorProto.STRING:
                return "string tensors"
            if not _plain_dtype(entry.type.tensor_type.elem_type):
                return "exotic dtype (bfloat16, float8, int4, float4, int2, complex)"
        for tensor in graph.initializer:
            if tensor.data_type == TensorProto.STRING:
                return "string tensors"
            if not _plain_dtype(tensor.data_type):
                return "exotic dtype (bfloat16, float8, int4, float4, int2, complex)"
        for node in graph.node:
            if node.domain not in DEFAULT_DOMAINS:
                return f"other domain ({node.domain})"
            if node.op_type in QUANTIZED:
                return "quantized op"
            if node.op_type in RANDOM:
                return "random op"
            if node.op_type in TRAINING:
                return "training-only op"
            if node.op_type in OTHER:
                return f"{node.op_type}"
            if node.op_type in ("Dropout", "BatchNormalization") and (
                    "training" in case.name or any(a.name == "training_mode" and a.i for a in node.attribute)):
                return "training mode"
            if node.op_type.startswith(("Sequence", "Optional", "String", "Regex")) or node.op_type in (
                    "ConcatFromSequence", "SplitToSequence"):
                return "sequence, optional or string ops"
            for attribute in node.attribute:
                if attribute.name in ("to", "dtype", "output_datatype") and attribute.type == AttributeProto.INT \
                        and not _plain_dtype(attribute.i):
                    return "exotic dtype (bfloat16, float8, int4, float4, int2, complex)"
                if attribute.type == AttributeProto.TENSOR:
                    if attribute.t.data_type == TensorProto.STRING:
                        return "string tensors"
                    if not _plain_dtype(attribute.t.data_type):
                        return "exotic dtype (bfloat16, float8, int4, float4, int2, complex)"
    return None


def op_types(case) -> set:
    return {node.op_type for graph in _graphs(case.model.graph) for node in graph.node}


def run_case(case) -> None:
    """Prepare and run `case` on pycaffe2's backend as ONNX's runner does; raises on a mismatch."""
    from onnx.backend.test.runner import Runner, _normalize_tensor

    from pycaffe2.onnx import backend
    rep = backend.prepare(case.model, "CPU")
    for inputs, ref_outputs in case.data_sets:
        outputs = rep.run([_normalize_tensor(item) for item in inputs])
        Runner.assert_similar_outputs([_normalize_tensor(item) for item in ref_outputs], list(outputs),
                                      rtol=case.rtol, atol=case.atol)


EXPECTED = Path(__file__).parent / "data" / "onnx_expected_failures.txt"


def write_expected(failures: dict) -> None:
    """The expected-failure list: per op (or expanded function), its most common
    error as the reason, then the case names."""
    lines = ["# ONNX node cases in scope that fail today, grouped by op; each heading is the",
             "# reason (the most common error of the group). Written by",
             "# `python tests/onnx_node_cases.py --all --write-expected`; a case that starts",
             "# passing fails tests/test_onnx_backend.py until it leaves this list.", ""]
    for key in sorted(failures):
        reason = collections.Counter(message for _, message in failures[key]).most_common(1)[0][0]
        lines.append(f"# {key}: {reason}")
        lines.extend(name for name, _ in sorted(failures[key]))
        lines.append("")
    EXPECTED.write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ops", nargs="*", help="ONNX op types (cases whose graph uses any of them)")
    parser.add_argument("--all", action="store_true", help="every case, with counts per op")
    parser.add_argument("-v", "--verbose", action="store_true", help="full tracebacks")
    parser.add_argument("--failures", action="store_true", help="print only failing cases")
    parser.add_argument("--write-expected", action="store_true",
                        help=f"with --all: write the failing cases, grouped by op and cause, to {EXPECTED}")
    args = parser.parse_args(argv)
    failures = collections.defaultdict(list)
    wanted = set(args.ops)
    counts = collections.Counter()
    per_op = collections.defaultdict(collections.Counter)
    for case in collect():
        ops = op_types(case)
        if not args.all and not ops & wanted:
            continue
        reason = out_of_scope(case)
        key = next(iter(ops)) if len(ops) == 1 else "expanded " + "_".join(case.name.split("_")[1:3])
        if reason:
            status, message = "OUT", reason
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run_case(case)
                status, message = "PASS", ""
            except Exception as exc:  # noqa: BLE001  (a report of every failure)
                status = "FAIL"
                message = traceback.format_exc() if args.verbose else (str(exc).strip().splitlines() or [
                    type(exc).__name__])[0][:300]
        counts[status] += 1
        per_op[key][status] += 1
        if status == "FAIL":
            first = message.strip().splitlines()[0] if message.strip() else "fails"
            failures[key].append((case.name, re.sub(r"\d+", "N", first)[:160]))
        if not args.all and (status == "FAIL" or not args.failures):
            print(f"{status:4} {case.name}  {message}")
    if args.all:
        for key, counter in sorted(per_op.items()):
            if counter["FAIL"] or counter["PASS"]:
                print(f"{key:50} pass {counter['PASS']:3}  fail {counter['FAIL']:3}  out {counter['OUT']:3}")
    if args.all and args.write_expected:
        write_expected(failures)
    in_scope = counts["PASS"] + counts["FAIL"]
    print(f"in scope {in_scope}: pass {counts['PASS']}, fail {counts['FAIL']}; out of scope {counts['OUT']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
