"""The package's layers: no module imports a module of a higher layer (not even
lazily inside a function), and the module-level imports have no cycle.

proto < schema < netfile, devices < operators < gradient, executor < front end
< run < cli (docs: the design contract's Layout). A new module must be given a
layer here; an upward import is fixed in the code (pass a value in, move a
function down), never by raising the importer's layer.
"""
import ast
import itertools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pycaffe2"

# Module (or package, covering what it holds) -> layer; the longest name that matches wins.
LAYERS = {
    "pycaffe2": 0, "pycaffe2.proto": 0, "pycaffe2.errors": 0, "pycaffe2._yaml": 0, "pycaffe2._yaml_subset": 0, "pycaffe2._json": 0,
    "pycaffe2._pbtxt": 0, "pycaffe2.files": 0, "pycaffe2.paths": 0, "pycaffe2.qtensor": 0,
    "pycaffe2.schema": 1,
    "pycaffe2.netfile": 2, "pycaffe2.netfile_tree": 2, "pycaffe2.transforms": 2, "pycaffe2.protojson": 2, "pycaffe2.devices": 2,
    "pycaffe2.tensor_proto": 2, "pycaffe2.objects": 2, "pycaffe2.db": 2, "pycaffe2.minidb": 2, "pycaffe2.kvdb": 2,
    "pycaffe2.operators": 3, "pycaffe2.validate": 3, "pycaffe2.validate_report": 3,
    "pycaffe2.gradient": 4, "pycaffe2.executor": 4,
    "pycaffe2.testing": 5, "pycaffe2.gradient_checker": 5, "pycaffe2.graph": 5,
    "pycaffe2.core": 5, "pycaffe2.core_net": 5, "pycaffe2.core_devices": 5, "pycaffe2.workspace": 5, "pycaffe2.brew": 5, "pycaffe2.model_helper": 5,
    "pycaffe2.optimizer": 5, "pycaffe2.optimizer_base": 5, "pycaffe2.optimizer_adaptive": 5, "pycaffe2.test_util": 5, "pycaffe2.hypothesis_test_util": 5,
    "pycaffe2.serialized_test": 5, "pycaffe2.device_checker": 5, "pycaffe2.mkl_test_util": 5,
    "pycaffe2.dyndep": 5, "pycaffe2.utils": 5, "pycaffe2.hip_test_util": 5, "pycaffe2.tt_core": 5,
    "pycaffe2.predictor": 5, "pycaffe2.predictor_constants": 5, "pycaffe2.models": 5, "pycaffe2.memonger": 5,
    "pycaffe2.control_ops_util": 5, "pycaffe2.net_builder": 5, "pycaffe2.control": 5,
    "pycaffe2.recurrent": 5, "pycaffe2.rnn_cell": 5, "pycaffe2.attention": 5, "pycaffe2.gru_cell": 5, "pycaffe2.scope": 5,
    "pycaffe2.rnn": 5,
    "pycaffe2.net_drawer": 5, "pycaffe2.visualize": 5, "pycaffe2.cnn": 5,
    "pycaffe2.c_module": 5,  # Caffe2's C++ extension module (workspace.C), front end like workspace
    "pycaffe2.python_op": 5,
    "pycaffe2.custom_ops": 5,  # the documented place for user-defined ops: registration verbs, schema folders, plugins
    "pycaffe2.modeling": 5,
    "pycaffe2.run": 6, "pycaffe2.runner": 6,
    "pycaffe2.onnx": 6,  # ONNX both ways: translates to and from NetDefs, runs them on the executor
    "pycaffe2.distributed": 6,  # scale-out on Dask: runs models and plans (run) on workers
    # Caffe2's name, a front-end module, but one that drives pycaffe2.distributed for Dask clients
    "pycaffe2.data_parallel_model": 6,
    "pycaffe2.cli": 7, "pycaffe2.cli_run": 7, "pycaffe2.__main__": 7,
}
# Each top-level module and subpackage needs its own entry: "pycaffe2" would cover it silently.
TOP_LEVEL = {f"pycaffe2.{p.stem if p.is_file() else p.name}" for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(name: str) -> tuple[int, str]:
    """(layer, the table entry that gives it) of a module."""
    entry = max((key for key in LAYERS if name == key or name.startswith(key + ".")), key=len)
    return LAYERS[entry], entry


def imports(name: str):
    """(imported module, line, the statement as written, module level?) for every pycaffe2
    import of a module, at any depth."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, module_level):
        for child in ast.iter_child_nodes(node):
            nested = module_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((alias.name, child.lineno, ast.unparse(child), module_level))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from the package, up level - 1 packages
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.append((target if target in MODULES else base, child.lineno, ast.unparse(child),
                                  module_level))
            visit(child, nested)

    visit(tree, True)
    unique = {}  # one entry per module and line, however many names the line imports
    for entry in found:
        unique.setdefault(entry[:2], entry)
    return [entry for (target, _), entry in unique.items() if target.partition(".")[0] == "pycaffe2"]


def test_every_top_level_module_has_a_layer():
    assert sorted(TOP_LEVEL - set(LAYERS)) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_higher_layer(name):
    own, own_entry = layer(name)
    upward = []
    for target, line, statement, _ in imports(name):
        theirs, their_entry = layer(target)
        if theirs > own:
            upward.append(f"{MODULES[name].relative_to(PACKAGE.parent)}:{line}: {name} (layer {own}, "
                          f"{own_entry}) imports {target} (layer {theirs}, {their_entry}): {statement}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_module_level_imports_have_no_cycle():
    edges = {name: {} for name in MODULES}
    for name, path in MODULES.items():
        for target, line, statement, module_level in imports(name):
            if module_level and target in MODULES and target != name:
                edges[name].setdefault(target, f"{path.relative_to(PACKAGE.parent)}:{line}: {statement}")
    state, stack = {}, []  # state: 1 on the stack, 2 done

    def cycle_from(name):
        state[name] = 1
        stack.append(name)
        for target in edges[name]:
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := cycle_from(target)):
                return found
        stack.pop()
        state[name] = 2
        return None

    for name in sorted(MODULES):
        if name not in state and (cycle := cycle_from(name)):
            steps = [edges[a][b] for a, b in itertools.pairwise(cycle)]
            pytest.fail("import cycle " + " -> ".join(cycle) + ":\n" + "\n".join(steps))


@pytest.mark.slow
def test_every_module_imports_alone():
    """Each module imports in a fresh interpreter with nothing imported before it, so no
    module leans on another having been imported first."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def import_alone(name):
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                              cwd=PACKAGE.parent, check=False)
        return name, done.returncode, done.stderr.strip().splitlines()[-1:] or [""]

    with ThreadPoolExecutor(max_workers=4) as pool:
        names = sorted(set(MODULES) - {"pycaffe2.__main__"})  # importing it runs the command line
        failures = [f"{name}: {last[0]}" for name, code, last in pool.map(import_alone, names) if code != 0]
    assert failures == []
