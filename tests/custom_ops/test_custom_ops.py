"""User-defined ops without editing pycaffe2 (pycaffe2.custom_ops): schema folders from
Python, --schemas, PYCAFFE2_SCHEMAS and entry points; kernels from a module the user
imports, --plugin or an entry point; bad schema files are clear errors, and nothing a schema
file names is imported."""
import os
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import pycaffe2.schema as schema_module
from pycaffe2 import custom_ops
from pycaffe2.cli import main
from pycaffe2.errors import SchemaError
from pycaffe2.executor import Workspace
from pycaffe2.gradient.backward import GetBackwardPass
from pycaffe2.operators import registry
from pycaffe2.schema import get_schema
from pycaffe2.schema.checker import check_net
from pycaffe2.testing import check_gradient_op, check_reference, make_op
from tests.registries import registries_restored

HERE = Path(__file__).parent
SCHEMAS = HERE / "schemas"
PLUGIN = "tests.custom_ops.square_plugin"
X = np.array([[-1.5, 0.5], [2.0, 3.0]], np.float32)


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Every registry as it was before the test (the plugin registers into the real ones)."""
    monkeypatch.delenv(custom_ops.SCHEMAS_ENV, raising=False)
    with registries_restored():
        yield
    sys.modules.pop(PLUGIN, None)


def use_plugin():
    custom_ops.load_plugin(PLUGIN)
    return custom_ops.load_schema_dir(SCHEMAS)


def square_net(alpha=2.0) -> str:
    return ("name: sq\nexternal_input: [X]\nexternal_output: [Y]\n"
            f"op:\n  - {{type: ScaledSquare, input: [X], output: [Y], arg: {{alpha: {alpha}}}}}\n")


# ---------------------------------------------------------------- from Python

def test_python_api_loads_schemas_and_runs_the_kernel():
    assert use_plugin() == ["ScaledSquare", "ScaledSquareGradient"]
    assert get_schema("ScaledSquare").args["alpha"].default == 1.0
    check_reference("ScaledSquare", [X], lambda x, alpha: (alpha * x * x,), {"alpha": 3.0})
    assert custom_ops.load_schema_dir(SCHEMAS) == []  # a folder loads once
    assert custom_ops.user_schema_dirs() == [SCHEMAS.resolve()]


def test_gradient_of_a_user_op():
    use_plugin()
    check_gradient_op("ScaledSquare", [X], "ScaledSquareGradient", [X, np.ones_like(X)], {0: 0},
                      [np.ones_like(X)], {"alpha": 0.5})
    grad_ops, grads = GetBackwardPass([make_op("ScaledSquare", ["X"], ["Y"])], ["Y"])
    assert [op.type for op in grad_ops][-1] == "ScaledSquareGradient" and grads["X"] == "X_grad"


def test_user_inference_rule_is_used_by_validate():
    use_plugin()
    net = make_op("ScaledSquare", ["X"], ["Y"])
    from pycaffe2.proto import caffe2_pb2
    from pycaffe2.schema.bind import TensorInfo
    from pycaffe2.schema.checker import check_net as check
    problems = check(caffe2_pb2.NetDef(op=[net], external_input=["X"]),
                     shapes={"X": TensorInfo((2,), "int32")})
    assert [p.kind for p in problems] == ["shape"] and "X must be a float tensor" in problems[0].message


# ---------------------------------------------------------------- from the command line

def test_cli_validate_and_run_with_plugin_and_schemas(tmp_path, capsys):
    net = tmp_path / "net.yaml"
    net.write_text(square_net())
    np.save(tmp_path / "x.npy", X)
    assert main(["validate", str(net), "--no-plugins"]) == 1  # unknown op without them
    assert "unknown op type 'ScaledSquare'" in capsys.readouterr().out
    assert main(["validate", str(net), "--plugin", PLUGIN, "--schemas", str(SCHEMAS)]) == 0
    assert main(["run", str(net), "--plugin", PLUGIN, "--schemas", str(SCHEMAS),
                 "--feed", f"X={tmp_path / 'x.npy'}", "--out", str(tmp_path / "out.npz")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npz")["Y"], 2 * X * X)


def test_cli_ops_shows_a_user_op(capsys):
    assert main(["ops", "ScaledSquare", "--schemas", str(SCHEMAS), "--no-plugins"]) == 2
    assert "unknown inference rule 'scaled_square'" in capsys.readouterr().err  # its rule is in the plugin
    assert main(["ops", "ScaledSquare", "--plugin", PLUGIN, "--schemas", str(SCHEMAS)]) == 0
    assert "alpha * X * X" in capsys.readouterr().out


def test_environment_variable_names_schema_folders(monkeypatch, tmp_path):
    monkeypatch.setenv(custom_ops.SCHEMAS_ENV, os.pathsep.join(["", str(SCHEMAS)]))
    schema_module.all_schemas.cache_clear()
    try:
        custom_ops.load_plugin(PLUGIN)
        assert get_schema("ScaledSquare") is not None
    finally:
        monkeypatch.delenv(custom_ops.SCHEMAS_ENV)
        schema_module.all_schemas.cache_clear()
        schema_module._user_dirs.clear()
    assert get_schema("ScaledSquare") is None


def fake_entry_points(*values):
    def entry_points(group=None):
        assert group == custom_ops.ENTRY_POINT_GROUP
        return [metadata.EntryPoint(name=f"ep{i}", value=value, group=group) for i, value in enumerate(values)]
    return entry_points


def test_entry_point_function_returning_schema_folders(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(f"{PLUGIN}:schemas"))
    net = tmp_path / "net.yaml"
    net.write_text(square_net())
    assert main(["validate", str(net)]) == 0
    assert custom_ops.load_plugins() == []  # each entry point loads once


def test_entry_point_module(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(PLUGIN))
    assert custom_ops.load_plugins() == ["ep0"]
    assert "ScaledSquare" in registry.CPU_KERNELS and get_schema("ScaledSquare") is None


@pytest.mark.parametrize("value, message", [
    ("no_such_module_for_pycaffe2", "plugin entry point 'ep0' (no_such_module_for_pycaffe2) failed"),
    (f"{PLUGIN}:SCHEMAS", "failed: TypeError"),  # a Path is not callable
    ("os.path:sep", "failed: TypeError"),
])
def test_broken_entry_points_are_named(monkeypatch, value, message):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points(value))
    with pytest.raises(custom_ops.PluginError) as info:
        custom_ops.load_plugins()
    assert message in str(info.value)


def test_entry_point_returning_nonsense(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points("os:getcwd"))
    monkeypatch.chdir(HERE)  # os.getcwd returns a str: a folder, with no schema files in it
    assert custom_ops.load_plugins() == ["ep0"]
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points("os:cpu_count"))
    with pytest.raises(custom_ops.PluginError, match="returned int; expected None or schema folder paths"):
        custom_ops.load_plugins()


def test_bad_plugin_module_is_a_usage_error(capsys):
    assert main(["ops", "--plugin", "no_such_module_for_pycaffe2", "--no-plugins"]) == 2
    assert "plugin module 'no_such_module_for_pycaffe2' failed to import" in capsys.readouterr().err


# ---------------------------------------------------------------- bad schema files

BOMB = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcde", "bcdef")) + "g: [*f, *f]\n"
GOOD = """ops:
  MyOp:
    doc: Does something.
    inputs: [X]
    outputs: [Y]
    gradient: none
"""


@pytest.mark.parametrize("text, message", [
    ("ops: [1, 2]", "'ops' must be a mapping"),
    ("- a\n- b\n", "a schema file must be a mapping"),
    ("ops: {MyOp: {doc: x, inputs: [X]\n", "bad YAML"),
    ("ops:\n  Relu: {doc: mine, gradient: none}\n", "defined twice (also at"),
    ("ops:\n  MyOp: {doc: x, aliases: [Relu], gradient: none}\n", "defined twice"),
    ("ops:\n  MyOp: {doc: x, inference: os.system}\n", "unknown inference rule 'os.system'"),
    ("ops:\n  MyOp: {doc: x, inference: [identical]}\n", "'inference' must be a name"),
    ("ops:\n  MyOp: {doc: x, devices: [[cpu]]}\n", "'devices' must be a list of names"),
    ("ops:\n  MyOp: {doc: x, devices: [tpu]}\n", "'devices' must be a list drawn from"),
    ("ops:\n  MyOp: {doc: x, arg_groups: 3}\n", "'arg_groups' must be a list of names"),
    ("ops:\n  MyOp: {doc: x, forward: 3}\n", "'forward' must be a name"),
    ("ops:\n  MyOp: {doc: x, forward: NoSuchOp}\n", "'forward' names unknown op NoSuchOp"),
    ("ops:\n  MyOp: {doc: x, gradient: [NoSuchGradient]}\n", "gradient emits NoSuchGradient"),
    ("ops:\n  MyOp: {doc: x, args: {a: {type: float, default: text}}}\n", "default 'text' is not a float"),
    ("ops:\n  MyOp: {doc: x, args: {a: {type: complex}}}\n", "type must be one of"),
    ("ops:\n  MyOp: {doc: x, python: os.system}\n", "unknown key(s) python"),
    ("ops:\n  MyOp: {doc: x, inputs: [{name: X, param: huge}]}\n", "'param' must be one of"),
    ("ops:\n  'My Op': {doc: x}\n", "must be a name (letters, digits, _)"),
    ("ops:\n  1: {doc: x}\n", "must be a name"),
    ("ops:\n  MyOp: {}\n", "'doc' is required"),
    ("ops:\n  MyOp: !!python/object/apply:os.system [echo hi]\n", "bad YAML"),
    (BOMB, "more than 1,000,000 values"),
])
def test_bad_schema_files_name_the_file(tmp_path, text, message):
    (tmp_path / "mine.yaml").write_text(text)
    with pytest.raises(SchemaError, match=None) as info:
        custom_ops.load_schema_dir(tmp_path)
    assert message in str(info.value) and str(tmp_path / "mine.yaml") in str(info.value)
    assert get_schema("MyOp") is None


def test_a_bad_file_adds_nothing_from_its_folder(tmp_path):
    (tmp_path / "a_good.yaml").write_text(GOOD)
    (tmp_path / "b_bad.yaml").write_text("ops:\n  Other: {doc: x, inference: nope, gradient: none}\n")
    with pytest.raises(SchemaError, match="b_bad.yaml"):
        custom_ops.load_schema_dir(tmp_path)
    assert get_schema("MyOp") is None


def test_not_a_folder(tmp_path):
    with pytest.raises(SchemaError, match="is not a folder of schema files"):
        custom_ops.load_schema_dir(tmp_path / "missing")


def test_cli_bad_schemas_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text("ops: 3")
    assert main(["ops", "--no-plugins", "--schemas", str(tmp_path)]) == 2
    assert "mine.yaml" in capsys.readouterr().err


def test_user_common_groups(tmp_path):
    (tmp_path / "_common.yaml").write_text("arg_groups:\n  mine: {k: {type: int, default: 2}}\n")
    (tmp_path / "ops.yaml").write_text(GOOD + "    arg_groups: [mine]\n")
    assert custom_ops.load_schema_dir(tmp_path) == ["MyOp"]
    assert get_schema("MyOp").args["k"].default == 2
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "_common.yaml").write_text("arg_groups:\n  engine: {}\n")
    with pytest.raises(SchemaError, match="arg group\\(s\\) engine are pycaffe2's already"):
        custom_ops.load_schema_dir(tmp_path / "again")


def test_a_user_op_without_kernel_validates_but_does_not_run(tmp_path):
    (tmp_path / "ops.yaml").write_text(GOOD)
    custom_ops.load_schema_dir(tmp_path)
    from pycaffe2.proto import caffe2_pb2
    net = caffe2_pb2.NetDef(name="n", op=[make_op("MyOp", ["X"], ["Y"])], external_input=["X"])
    assert check_net(net) == []
    workspace = Workspace("w")
    workspace.FeedBlob("X", X)
    with pytest.raises(Exception, match="MyOp"):
        workspace.RunNetOnce(net)


QUANTIZED = """ops:
  MyInt8FC:
    doc: A user's quantized FC; its weights declare their random-init shapes and types.
    inputs:
      - X
      - {name: W, param: {kind: weight, shape: fc_weight, dtype: uint8}}
      - {name: b, param: {kind: zero, shape: out_channels, dtype: int32}}
    outputs: [Y]
    args:
      axis: {type: int, default: 1, doc: First axis of K.}
    gradient: none
"""


def test_a_user_op_declares_its_random_init_weights(tmp_path):
    from pycaffe2.qtensor import Int8Tensor
    from pycaffe2.run.random_init import made_up_weights

    @custom_ops.register_cpu("MyInt8FC")
    def my_int8_fc(x, w, b, *, axis):
        real = (w.data.astype(np.float32) - w.zero_point) * w.scale
        return x.reshape(x.shape[0], -1) @ real.T + b.data * b.scale

    (tmp_path / "q.yaml").write_text(QUANTIZED)
    custom_ops.load_schema_dir(tmp_path)
    from pycaffe2.proto import caffe2_pb2
    net = caffe2_pb2.NetDef(name="q", op=[make_op("MyInt8FC", ["X", "W", "b"], ["Y"])], external_input=["X"])
    made = made_up_weights(net, {"X": X}, default=3)
    assert isinstance(made["W"], Int8Tensor) and made["W"].data.dtype == np.uint8 and made["W"].shape == (3, 2)
    assert isinstance(made["b"], Int8Tensor) and made["b"].data.dtype == np.int32 and made["b"].shape == (3,)


@pytest.mark.parametrize("param, message", [
    ("{kind: weight, shape: blob}", "param shape must be one of filter"),
    ("{kind: weight, dtype: int4}", "param dtype must be one of float32, uint8, int32"),
    ("{shape: filter}", "'param' must be a kind or {kind, shape, dtype}"),
    ("{kind: weight, module: os}", "unknown key(s) module"),
])
def test_bad_param_declarations(tmp_path, param, message):
    (tmp_path / "q.yaml").write_text(f"ops:\n  MyOp:\n    doc: d\n    inputs: [X, {{name: W, param: {param}}}]\n"
                                     "    outputs: [Y]\n    gradient: none\n")
    with pytest.raises(SchemaError) as info:
        custom_ops.load_schema_dir(tmp_path)
    assert message in str(info.value)
