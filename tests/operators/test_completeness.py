"""The schemas and the kernel registry describe the same ops."""
import inspect

from pycaffe2.operators import load_kernels
from pycaffe2.schema import all_schemas


def test_every_op_with_a_cpu_device_has_a_cpu_kernel():
    kernels = load_kernels()
    missing = sorted(t for t, s in all_schemas().items() if "cpu" in s.devices and t not in kernels)
    assert missing == []


def test_every_cpu_kernel_has_a_schema_saying_cpu():
    schemas = all_schemas()
    assert sorted(t for t in load_kernels() if t not in schemas or "cpu" not in schemas[t].devices) == []


def test_kernels_take_only_args_their_schema_declares():
    schemas = all_schemas()
    unknown = {t: sorted(set(k.arg_names) - set(schemas[t].args)) for t, k in load_kernels().items()}
    assert {t: names for t, names in unknown.items() if names} == {}


def test_kernel_signatures_give_no_arg_defaults():
    """Kernel signatures give no arg defaults: the schema supplies every default once, at CreateNet."""
    with_defaults = []
    for op_type, kernel in load_kernels().items():
        for parameter in inspect.signature(kernel.function).parameters.values():
            if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is not parameter.empty:
                with_defaults.append(f"{op_type}.{parameter.name}")
    assert with_defaults == []


def test_every_op_whose_schema_lists_gradient_ops_has_a_maker():
    from pycaffe2.gradient import GRADIENT_MAKERS
    load_kernels()
    schemas = {s.type: s for s in all_schemas().values()}
    missing = sorted(t for t, s in schemas.items() if isinstance(s.gradient, tuple) and t not in GRADIENT_MAKERS)
    stray = sorted(t for t in GRADIENT_MAKERS if t not in schemas or not isinstance(schemas[t].gradient, tuple))
    assert (missing, stray) == ([], [])


def test_schemas_say_cuda_exactly_where_a_cuda_kernel_is_registered():
    from pycaffe2.operators import CUDA_KERNELS
    load_kernels()
    said = {t for t, s in all_schemas().items() if "cuda" in s.devices}
    assert said == set(CUDA_KERNELS)


def test_every_op_is_named_in_its_family_tests():
    """Each family's ops are tested in tests/operators/test_<family>.py: every op type
    (gradient ops included) appears there as a string."""
    import re
    from pathlib import Path

    here = Path(__file__).resolve().parent
    untested = []
    for name, schema in sorted(all_schemas().items()):
        module = here / f"test_{schema.family}.py"
        text = module.read_text() if module.is_file() else ""
        if name == schema.type and not re.search(rf"[\"']{re.escape(name)}[\"']", text):
            untested.append(f"{name} (tests/operators/test_{schema.family}.py)")
    assert untested == []
