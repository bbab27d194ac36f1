"""ONNX Runtime sessions as the benchmarks run them: every graph optimization, a set
number of intra-op threads, sequential execution, idle workers asleep.

The models come from pycaffe2's exporter (pycaffe2.onnx.export). This module imports
onnxruntime alone (neither onnx nor pycaffe2), so that a process that only runs a saved
model (benchmarks/memory.py's) holds no more than onnxruntime.
"""
from __future__ import annotations


def session(model, threads: int, profile_prefix: str | None = None):
    """An ONNX Runtime CPU session on `model` (a ModelProto or a file's path) with every
    graph optimization, `threads` intra-op threads and sequential execution
    (profiling to `profile_prefix`*.json if given)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # idle workers sleep rather than spin on the cores the next contestant in this process needs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
