"""List the public Python names of Caffe2's front-end modules, for
tests/data/caffe2_python_names.yaml.

    python scripts/extract_caffe2_names.py /path/to/caffe2.git COMMIT > names.yaml

Reads caffe2/python/{workspace,core,model_helper,brew,optimizer,data_parallel_model}.py
at COMMIT with `git show` and parses them (nothing is executed). Public means:
not starting with '_'. Module level: functions, classes and assigned names (not
imported ones). For core's Net, BlobReference, ExecutionStep and Plan and
model_helper's ModelHelper: their methods and properties. For brew: the helper
names its HelperWrapper registers (the keys of its `_registry` dict).
"""
import ast
import subprocess
import sys

MODULES = ("workspace", "core", "model_helper", "brew", "optimizer", "data_parallel_model")
CLASSES = {"core": ("Net", "BlobReference", "ExecutionStep", "Plan"), "model_helper": ("ModelHelper",)}


def public(name: str) -> bool:
    return not name.startswith("_")


def assigned(node) -> list:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:  # `x = ...` and `x, y = ...`, not `sys.modules[...] = ...`
        for sub in target.elts if isinstance(target, ast.Tuple) else [target]:
            if isinstance(sub, ast.Name):
                names.append(sub.id)
    return names


def module_names(tree) -> set:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            names.update(assigned(node))
        elif isinstance(node, (ast.If, ast.Try)):  # names defined under a module-level if/try
            for inner in ast.walk(node):
                if isinstance(inner, (ast.FunctionDef, ast.ClassDef)):
                    names.add(inner.name)
    return {n for n in names if public(n)}


def class_names(tree, cls: str) -> set:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            return {item.name for item in node.body
                    if isinstance(item, ast.FunctionDef) and public(item.name)}
    raise SystemExit(f"class {cls} not found")


def brew_helpers(tree) -> set:
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and node.keys and all(isinstance(k, ast.Constant) for k in node.keys):
            keys = {k.value for k in node.keys}
            if "fc" in keys:
                return keys
    raise SystemExit("brew's helper table not found")


def main(repo: str, commit: str) -> None:
    out = [f"# caffe2/python at {commit}"]
    for module in MODULES:
        text = subprocess.run(["git", "--git-dir", repo, "show", f"{commit}:caffe2/python/{module}.py"],
                              check=True, capture_output=True, text=True).stdout
        tree = ast.parse(text)
        sections = {module: module_names(tree)}
        for cls in CLASSES.get(module, ()):
            sections[f"{module}.{cls}"] = class_names(tree, cls)
        if module == "brew":
            sections["brew"] |= brew_helpers(tree)
        for key, names in sections.items():
            out.append(f"{key}:")
            out.extend(f"  - {name}" for name in sorted(names))
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
