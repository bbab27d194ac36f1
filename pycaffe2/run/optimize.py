"""`pycaffe2 optimize IN OUT`: a model's inference transforms (pycaffe2.transforms) written to new files.

IN is a model folder (init_net.pb + predict_net.pb), a model file (.yaml/.json) or a predict
net file with `init` naming its init net. OUT is a folder or a model file, or (with
`init_out`) the predict net file beside the init net file; any format netfile writes. The
input is checked first (what CreateNet would refuse is refused here, naming the file and op).
Parameter values come from the init net's constant fills; an init net that makes them
otherwise (random fills, Load) is run once on the CPU, its files confined to `data_roots`.
Nothing is written until every output is ready, and no output may be an input file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from pycaffe2 import netfile
from pycaffe2.errors import NetFileError, PyCaffe2Error, RunError
from pycaffe2.executor import Workspace
from pycaffe2.executor.net import RUN_TIME_KINDS  # what CreateNet tolerates, tolerated here too
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.confine import check_data_paths
from pycaffe2.schema.checker import check_net
from pycaffe2.transforms import CONSTANT_FILLS, Record, optimize_inference


def optimize_model(source, output, *, init=None, init_out=None, keep=(), conv_relu: bool = False,
                   data_roots=None, allow_outside_paths: bool = False) -> Record:
    """Optimize the model at `source` into `output` (and `init_out`); returns what was done."""
    model = netfile.load_model(source, allow_outside_paths=allow_outside_paths)
    if init is not None:
        model.init_net, model.files["init_net"] = netfile.load_net(init), str(init)
    if model.plan is not None:
        raise RunError(f"{source}: has a training plan; optimize takes an init and a predict net")
    targets = _targets(model, Path(output), init_out)
    _refuse_inputs(source, model, targets)
    _check(model)
    params = _run_init(model, data_roots) if _needs_run(model.init_net) else None
    result = optimize_inference(model.predict_net, model.init_net, params=params, keep=keep,
                                fuse_conv_relu=conv_relu)
    new = netfile.Model(result.predict_net, result.init_net, input_shapes=model.input_shapes)
    _write_all(targets, new)
    return result.record


def _targets(model, output: Path, init_out) -> list[tuple[Path, str | None]]:
    """(path, key) to write: key names the net, None the whole model (one file)."""
    if init_out is not None:
        if model.init_net is None:
            raise RunError(f"--init-out {init_out}: the model has no init net")
        if output.is_dir() or not output.suffix:
            raise RunError(f"{output}: with --init-out, OUT is the predict net file")
        return [(output, "predict_net"), (Path(init_out), "init_net")]
    if output.is_dir() or not output.suffix:
        if model.input_shapes:
            raise RunError(f"{output}: a model folder cannot keep input_shapes; write .yaml or .json")
        return [(output / f"{key}.pb", key) for key, _ in model.nets()]
    if output.suffix.lower() not in netfile.NET_SUFFIXES:
        raise RunError(f"{output}: unknown net file extension '{output.suffix}' "
                       f"(expected one of {', '.join(netfile.NET_SUFFIXES)}, or a folder)")
    if model.init_net is None and not model.input_shapes:
        return [(output, "predict_net")]
    if output.suffix.lower() in (".pb", ".pbtxt"):
        raise RunError(f"{output}: a model with an init net needs a folder, a .yaml/.json model file, "
                       "or --init-out FILE for the init net")
    return [(output, None)]


def _refuse_inputs(source, model, targets) -> None:
    inputs = {Path(f).resolve() for f in model.files.values() if f}
    if Path(source).is_dir():
        inputs |= {Path(source, name).resolve() for name in ("init_net.pb", "predict_net.pb")}
    for path, _ in targets:
        if path.resolve() in inputs:
            raise RunError(f"{path}: is an input of this optimize; write the result elsewhere")


def _check(model) -> None:
    known = set()
    for key, net in model.nets():
        problems = [p for p in check_net(net, file=model.files.get(key), op_lines=model.op_lines.get(key),
                                         known_blobs=known) if p.kind not in RUN_TIME_KINDS]
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise RunError(f"{problems[0]}{more}")
        known |= {name for op in net.op for name in op.output}


def _needs_run(init_net) -> bool:
    return init_net is not None and any(op.type not in CONSTANT_FILLS or op.input for op in init_net.op)


def _run_init(model, data_roots) -> dict:
    """The arrays the init net makes, from one run on the CPU."""
    net = caffe2_pb2.NetDef()
    net.CopyFrom(model.init_net)
    net.ClearField("device_option")
    for op in net.op:
        op.ClearField("device_option")
    if data_roots is not None:
        check_data_paths([(model.files.get("init_net"), net)], data_roots)
    workspace = Workspace("pycaffe2_optimize")
    try:
        workspace.RunNetOnce(net)
    except PyCaffe2Error as exc:  # OpFailure, NetError: they name the op
        raise RunError(f"{model.files.get('init_net') or 'init net'}: {exc}") from None
    return {name: value for name, value in workspace.blobs.items() if isinstance(value, np.ndarray)}


def _write_all(targets, model) -> None:
    """Each output to a temporary file beside it, then all moved into place."""
    written: list[tuple[str, Path]] = []
    made_folders = []
    path = targets[0][0]
    try:
        for path, key in targets:
            if not path.parent.exists():
                path.parent.mkdir(parents=True)
                made_folders.append(path.parent)
            handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
            os.close(handle)
            os.chmod(temp, 0o666 & ~_umask())  # as a plain open() would make it
            written.append((temp, path))
            try:
                if key is None:
                    netfile.save_model(model, temp)
                else:
                    netfile.save_net(getattr(model, key), temp)
            except NetFileError as exc:  # name the file asked for, not the temporary one
                raise NetFileError(str(exc).replace(temp, str(path)), file=None) from None
        for temp, path in written:  # path: the file an error names
            os.replace(temp, path)
    except OSError as exc:
        raise NetFileError(f"cannot write: {exc.strerror or exc}", file=str(path)) from None
    finally:
        for temp, _ in written:
            if os.path.exists(temp):
                os.unlink(temp)
        for folder in reversed(made_folders):
            if not any(folder.iterdir()):
                folder.rmdir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
