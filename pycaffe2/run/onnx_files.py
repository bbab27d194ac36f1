"""`.onnx` files on the command line: convert both ways, run and validate through
pycaffe2.onnx.backend (ONNX -> NetDef) and pycaffe2.onnx.export (NetDef -> ONNX).

onnx is an optional extra: without it each of these raises a PyCaffe2Error saying
`pip install 'pycaffe2[onnx]'` (exit 2 on the command line). Outputs are written only
where the user said, atomically, and never over the input.
"""
from __future__ import annotations

import time
from pathlib import Path

from pycaffe2.errors import ConversionError, NetFileError, PyCaffe2Error, RunError

ONNX_SUFFIX = ".onnx"


def is_onnx(path) -> bool:
    return str(path).lower().endswith(ONNX_SUFFIX)


def _require_onnx() -> None:
    from pycaffe2.onnx.export_files import require_onnx
    require_onnx()


def _backend():
    """pycaffe2.onnx.backend (ONNX -> NetDef), or the install hint."""
    _require_onnx()
    from pycaffe2.onnx import backend
    return backend


def _export():
    """pycaffe2.onnx.export (NetDef -> ONNX), or the install hint."""
    _require_onnx()
    from pycaffe2.onnx import export
    return export


def _same_file(a, b) -> bool:
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.exists() and a.samefile(b))
    except OSError:
        return False


def _check_not_input(source, target) -> None:
    targets = [target] + [Path(target) / name for name in ("init_net.pb", "predict_net.pb")]
    if any(_same_file(source, t) for t in targets):
        raise PyCaffe2Error(f"{target}: is the input {source}; write the conversion elsewhere")


# ---------------------------------------------------------------- ONNX -> NetDef

class NeedsRun(ConversionError):
    """The model's translation needs values known only when it runs: no static nets."""


def prepared(path):
    """(ModelProto, the backend's rep) of an .onnx file; errors name the file."""
    rep = _backend().prepare(str(path))
    return rep.model, rep


def static_nets(path, rep):
    """(init NetDef or None, predict NetDef) of a rep translated without running it."""
    try:
        init, predict = rep.init_net, rep.predict_net
    except ConversionError:
        raise NeedsRun("its translation needs values known only when it runs (attribute-like inputs "
                       "computed from the fed data), so it cannot become a static net file; run it "
                       "with `pycaffe2 run`", file=str(path)) from None
    return (init if init is not None and len(init.op) else None), predict


def graph_input_shapes(model) -> dict:
    from pycaffe2.onnx.export_files import input_shapes
    return input_shapes(model)


def onnx_to_netfile(source, target) -> str:
    """Write the nets the backend translates `source` into as `target` (a model folder or a
    .yaml/.json model file; a .pb/.pbtxt when the model has no initializers)."""
    from pycaffe2 import netfile
    _check_not_input(source, target)
    model, rep = prepared(source)
    init, predict = static_nets(source, rep)
    result = netfile.Model(predict, init)
    if Path(target).suffix.lower() in (".yaml", ".yml", ".json"):
        result.input_shapes = graph_input_shapes(model)
    _save_atomically(result, Path(target))
    return f"{target}: {len(predict.op)} op(s), {len(init.op) if init else 0} init op(s)"


def _save_atomically(model, target: Path) -> None:
    """netfile.save_model, each file written beside its target first, then renamed over it."""
    from pycaffe2 import netfile
    if target.is_dir() or not target.suffix:  # a model folder: its two files, each atomically
        if model.init_net is None and (target / "init_net.pb").exists():
            raise NetFileError("holds an init_net.pb and this model has no init net to replace it",
                               file=str(target))
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NetFileError(f"cannot make folder: {exc.strerror}", file=str(target)) from None
        for key, net in model.nets():
            _atomically(lambda path, net=net: netfile.save_net(net, path), target / f"{key}.pb")
    else:
        _atomically(lambda path: netfile.save_model(model, path), target)


def _atomically(write, path: Path) -> None:
    import os
    temp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # the suffix picks the format
    try:
        write(temp)
        os.replace(temp, path)
    except OSError as exc:
        raise NetFileError(f"cannot write: {exc.strerror or exc}", file=str(path)) from None
    finally:
        if temp.exists():
            temp.unlink()


# ---------------------------------------------------------------- NetDef -> ONNX

def netfile_to_onnx(source, target, input_shapes=None, opset=None, allow_outside_paths=False) -> str:
    """Export the model `source` (any net or model file or folder) to `target` (.onnx)."""
    from pycaffe2 import netfile
    export = _export()
    _check_not_input(source, target)
    model = netfile.load_model(source, allow_outside_paths=allow_outside_paths)
    if model.plan is not None and not len(model.predict_net.op):
        raise PyCaffe2Error(f"{source}: a plan, not an init/predict model: nothing to export")
    shapes = {**model.input_shapes, **(input_shapes or {})}
    start = time.perf_counter()
    try:
        onnx_model = export.export_model(model.predict_net, model.init_net, shapes,
                                         opset=export.DEFAULT_OPSET if opset is None else opset)
    except ConversionError as exc:
        if exc.file:
            raise
        raise ConversionError(exc.message, file=model.files.get("predict_net", str(source))) from None
    export.save_model(onnx_model, target)
    graph = onnx_model.graph
    return (f"{target}: opset {onnx_model.opset_import[0].version}, {len(graph.node)} node(s), "
            f"{len(graph.initializer)} initializer(s), exported in {time.perf_counter() - start:.2f} s")


# ---------------------------------------------------------------- run and validate

def refuse_run_flags(args) -> None:
    """`pycaffe2 run` flags that have no meaning for an .onnx model."""
    refused = [flag for flag, given in (("--init", args.init), ("--random-init", args.random_init),
                                        ("--out-channels", args.out_channels), ("--fetch", args.fetch),
                                        ("--checkpoint", args.checkpoint), ("--save-every", args.save_every),
                                        ("--resume", args.resume), ("--optimize", args.optimize),
                                        ("--device", args.device == "cuda"), ("--workers", args.workers))
               if given]
    if refused:
        raise RunError(f"{', '.join(refused)}: not for .onnx models (they run through the ONNX backend, "
                       "which feeds the graph's inputs and returns its outputs)")


def run_onnx(path, feeds: dict, iters: int = 1):
    """({output name: array}, seconds per run) of the model run `iters` times on `feeds`."""
    import numpy as np
    model, rep = prepared(path)
    from pycaffe2.onnx.export_files import fed_inputs
    wanted = fed_inputs(model)
    unknown = [name for name in feeds if name not in wanted]
    if unknown:
        raise RunError(f"feed '{unknown[0]}': not an input of {path} (its inputs: {', '.join(wanted) or 'none'})")
    missing = [name for name in wanted if name not in feeds]
    if missing:
        shapes = graph_input_shapes(model)
        listed = ", ".join(f"'{m}'" + (f" {list(shapes[m][0])} {shapes[m][1]}" if m in shapes else "")
                           for m in missing)
        raise RunError(f"{path}: feed every input ({listed}): --feed NAME=PATH.npy")
    inputs = [np.asarray(feeds[name]) for name in wanted]
    start = time.perf_counter()
    for _ in range(iters):  # the first run may translate again, with the values known
        outputs = rep.run(inputs)
    seconds = (time.perf_counter() - start) / iters
    names = [v.name for v in model.graph.output]
    return dict(zip(names, [np.asarray(o) for o in outputs])), seconds


def validate_onnx(path) -> list:
    """validate's Problems for one .onnx file: unreadable, onnx.checker, translation, the nets."""
    from pycaffe2 import netfile
    from pycaffe2.onnx.export_files import checker_problem
    from pycaffe2.schema.checker import Problem, check_model
    backend = _backend()
    try:
        model = backend.load_model(str(path))
    except NetFileError as exc:
        return [Problem("file", exc.message, exc.file or str(path), exc.line)]
    problem = checker_problem(model)
    if problem:
        return [Problem("onnx-checker", problem, str(path))]
    try:
        init, predict = static_nets(path, backend.prepare(str(path)))
    except NeedsRun:
        return []  # valid as far as a static look goes: its nets exist only at its first run
    except ConversionError as exc:
        return [Problem("onnx-translate", exc.message, str(path), None, None, exc.op_index, exc.op_type)]
    nets = netfile.Model(predict, init, input_shapes=graph_input_shapes(model),
                         files={"predict_net": str(path), "init_net": str(path)})
    return check_model(nets)
