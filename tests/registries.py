"""Every registry of ops (and of ONNX converters) as it was: for tests that register made-up ops (the registries are global,
and a later test lists every op family: test_completeness, test_create_net_refusals, docs)."""
import contextlib

import pycaffe2.schema as schema_module
from pycaffe2 import custom_ops
from pycaffe2.operators import registry
from pycaffe2.schema.inference import RULES


@contextlib.contextmanager
def registries_restored():
    registry.load_kernels()  # pycaffe2's own first, so that restoring keeps them
    saved = [(table, dict(table)) for table in (registry.CPU_KERNELS, registry.CUDA_KERNELS,
                                                 registry.GRADIENT_MAKERS, RULES, schema_module.all_schemas())]
    dirs = list(schema_module._user_dirs)
    entry_points = set(custom_ops._loaded_entry_points)
    try:
        yield
    finally:
        for table, content in saved:
            table.clear()
            table.update(content)
        schema_module._user_dirs[:] = dirs
        custom_ops._loaded_entry_points.clear()
        custom_ops._loaded_entry_points.update(entry_points)


@contextlib.contextmanager
def converters_restored():
    """The ONNX converter registry as it was (for tests that register made-up node types)."""
    from pycaffe2.onnx import registry as onnx_registry
    onnx_registry._load_converters()
    before = {key: list(value) for key, value in onnx_registry._CONVERTERS.items()}
    try:
        yield
    finally:
        onnx_registry._CONVERTERS.clear()
        onnx_registry._CONVERTERS.update(before)
