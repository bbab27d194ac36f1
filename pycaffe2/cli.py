"""The `pycaffe2` command line: validate, ops, convert, optimize, run, db, graph."""
from __future__ import annotations

import argparse
import sys

from pycaffe2.cli_run import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_USAGE, _is_onnx, cmd_run
from pycaffe2.errors import PyCaffe2Error


def cmd_validate(args) -> int:
    from pycaffe2.validate import Report, parse_input_shape, validate
    from pycaffe2.validate_report import render
    shapes = dict(parse_input_shape(spec) for spec in args.input_shape)
    onnx_paths = [path for path in args.files if _is_onnx(path)]
    args.files = [path for path in args.files if path not in onnx_paths]
    report = validate(args.files, input_shapes=shapes, exclude=args.exclude,
                      skip_non_nets=args.skip_non_nets, allow_outside_paths=args.allow_outside_paths,
                      init=args.init) if args.files else Report()
    for path in onnx_paths:  # named explicitly; folder walks look for Caffe2 net files only
        from pycaffe2.run.onnx_files import validate_onnx
        report.checked.append(path)
        report.problems += validate_onnx(path)
    out, summary = render(report, args.format, version=package_version())
    if out:
        print(out)
    print(summary, file=sys.stderr)
    for warning in report.warnings:
        print(f"pycaffe2 validate: warning: {warning}", file=sys.stderr)
    for name in report.unread_shapes:
        print(f"pycaffe2 validate: warning: --input-shape {name}: no checked net reads blob '{name}'",
              file=sys.stderr)
    if not report.checked and not report.skipped:
        print("pycaffe2 validate: no net files found", file=sys.stderr)
        return EXIT_USAGE
    unreadable = any(p.kind == "file" for p in report.problems)
    return EXIT_USAGE if unreadable else EXIT_INVALID if report.problems else EXIT_OK


def package_version() -> str:
    """The installed distribution's version, else the package's own __version__."""
    from importlib import metadata
    try:
        return metadata.version("pycaffe2")
    except metadata.PackageNotFoundError:
        import pycaffe2
        return pycaffe2.__version__


def cmd_ops(args) -> int:
    from pycaffe2.schema import catalogue, closest_types, get_schema
    if args.markdown:
        print(catalogue.markdown(), end="")
    elif args.type:
        schema = get_schema(args.type)
        if schema is None:
            close = closest_types(args.type)
            print(f"pycaffe2 ops: unknown op type '{args.type}'"
                  + (f" (did you mean {', '.join(close)}?)" if close else ""), file=sys.stderr)
            return EXIT_USAGE
        print(catalogue.describe(schema))
    else:
        print(catalogue.summary())
    return EXIT_OK


def cmd_convert(args) -> int:
    from pycaffe2 import netfile
    if (args.input_shape or args.opset is not None) and not _is_onnx(args.output):
        raise PyCaffe2Error("--input-shape and --opset apply to exports (OUTPUT ending in .onnx)")
    if _is_onnx(args.input) and _is_onnx(args.output):
        raise PyCaffe2Error("both files are .onnx: convert goes between ONNX and Caffe2's formats")
    if _is_onnx(args.output):
        from pycaffe2.run import onnx_files
        from pycaffe2.validate import parse_input_shape
        shapes = dict(parse_input_shape(spec) for spec in args.input_shape)
        print(onnx_files.netfile_to_onnx(args.input, args.output, shapes, args.opset,
                                         args.allow_outside_paths), file=sys.stderr)
    elif _is_onnx(args.input):
        from pycaffe2.run import onnx_files
        print(onnx_files.onnx_to_netfile(args.input, args.output), file=sys.stderr)
    else:
        netfile.save_model(netfile.load_model(args.input, allow_outside_paths=args.allow_outside_paths),
                           args.output)
    return EXIT_OK


def cmd_optimize(args) -> int:
    from pycaffe2.run.confine import default_roots
    from pycaffe2.run.optimize import optimize_model
    record = optimize_model(args.input, args.output, init=args.init, init_out=args.init_out, keep=args.keep,
                            conv_relu=args.conv_relu, data_roots=args.data_root or default_roots(args.input),
                            allow_outside_paths=args.allow_outside_paths)
    print(f"{args.output}: {record.summary()}")
    for note in record.skipped:
        print(f"  left {note}")
    return EXIT_OK


def cmd_db_write(args) -> int:
    from pycaffe2 import db
    count = db.write_npz_to_db(args.npz, args.output, db_type=args.db_type)
    print(f"wrote {count} record(s) to {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_db_info(args) -> int:
    from pycaffe2 import db
    db_type = args.db_type or db.detect_db_type(args.file)
    if db_type is None:
        raise db.DBError(f"{args.file}: not a minidb file or an lmdb or leveldb folder (give --db-type)")
    print(db.describe_db(args.file, db_type))
    return EXIT_OK


def cmd_graph(args) -> int:
    from pycaffe2 import graph
    return graph.graph_main(args.file, args.output, args.minimal, args.allow_outside_paths)


def _extension_options() -> argparse.ArgumentParser:
    """--schemas, --plugin and --no-plugins: user-defined ops (pycaffe2.custom_ops)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("user-defined ops")
    group.add_argument("--schemas", action="append", default=[], metavar="DIR",
                       help="a folder of op schema files (YAML) to add; repeatable (also: the "
                       "PYCAFFE2_SCHEMAS environment variable)")
    group.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                       help="import a Python module (dotted name) that registers kernels; repeatable")
    group.add_argument("--no-plugins", action="store_true",
                       help="do not load the installed packages' 'pycaffe2.ops' entry points")
    return options


def load_extensions(args) -> None:
    """Installed plugins (entry points), then --plugin modules, then --schemas folders."""
    from pycaffe2 import custom_ops
    if not args.no_plugins:
        custom_ops.load_plugins()
    for module in args.plugin:
        custom_ops.load_plugin(module)
    for folder in args.schemas:
        custom_ops.load_schema_dir(folder)


def _path_options(command, data_roots: str = "") -> None:
    """--allow-outside-paths, and --data-root (`data_roots` says for which ops) where the
    command runs ops that read or write files."""
    if data_roots:
        command.add_argument("--data-root", action="append", default=[], metavar="DIR",
                             help=f"a folder {data_roots} may use; repeatable (default: the model's "
                             "folder and the working folder)")
    command.add_argument("--allow-outside-paths", action="store_true",
                         help="let a model file name net files outside its folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pycaffe2", description="Caffe2-style nets from files.")
    parser.add_argument("--version", action="version", version=f"pycaffe2 {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    extensions = _extension_options()
    validate = commands.add_parser("validate", help="check net files against the op schemas",
                                   parents=[extensions])
    validate.add_argument("files", nargs="+", help="net files, model files or folders")
    validate.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text",
                          help="github: workflow annotations; sarif: SARIF 2.1.0 for code scanning")
    validate.add_argument("--input-shape", action="append", default=[], metavar="NAME=d0,d1,...",
                          help="shape of an input blob (optionally :dtype, default float32), so "
                          "shapes are followed through the nets; repeatable")
    validate.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                          help="skip paths matching GLOB (.gitignore syntax, relative to the "
                          "working directory); repeatable")
    validate.add_argument("--init", metavar="FILE",
                          help="an init net checked with each file (instead of a model's own), "
                               "for a predict net that reads the blobs it makes")
    validate.add_argument("--skip-non-nets", action="store_true",
                          help="skip named YAML/JSON files whose content is not a net, as folder "
                          "walks do (for pre-commit, which names every staged file)")
    validate.set_defaults(run=cmd_validate)
    _path_options(validate)
    ops = commands.add_parser("ops", help="the operator catalogue", parents=[extensions])
    ops.add_argument("type", nargs="?", help="one op type to describe")
    ops.add_argument("--markdown", action="store_true", help="print docs/operators.md")
    ops.set_defaults(run=cmd_ops)
    convert = commands.add_parser("convert", help="convert between .pb .pbtxt .yaml .json .onnx (and model "
                                  "folders)", parents=[extensions])
    convert.add_argument("input", help="net file, model file or folder, or an .onnx model")
    convert.add_argument("output", help="net or model file, model folder, or .onnx (export; needs the onnx "
                         "extra: pip install 'pycaffe2[onnx]')")
    convert.add_argument("--input-shape", action="append", default=[], metavar="NAME=d0,d1,...",
                         help="export: the shape (optionally :dtype) of an input the init net does not make "
                         "(over the model file's input_shapes); repeatable")
    convert.add_argument("--opset", type=int, metavar="N", help="export: the ONNX opset (13 to 21; default 17)")
    _path_options(convert)
    convert.set_defaults(run=cmd_convert)
    optimize = commands.add_parser("optimize", help="inference transforms (SpatialBN folding, Dropout "
                                   "removal, ops in place) written as a new model", parents=[extensions])
    optimize.add_argument("input", help="model folder, model file, or predict net file (with --init)")
    optimize.add_argument("output", help="folder or model file (.yaml/.json); the predict net file "
                          "with --init-out")
    optimize.add_argument("--init", metavar="FILE", help="the init net of a predict net file")
    optimize.add_argument("--init-out", metavar="FILE", help="write the init net here, the predict net to OUTPUT")
    optimize.add_argument("--keep", action="append", default=[], metavar="BLOB",
                          help="a blob that must stay fetchable (as external outputs do); repeatable")
    optimize.add_argument("--conv-relu", action="store_true",
                          help="also fuse a Conv read only by a Relu into one ConvRelu (Caffe2 ran it "
                          "with its dnnlowp ops only)")
    _path_options(optimize, "the init net's Load ops (when it must run)")
    optimize.set_defaults(run=cmd_optimize)
    run = commands.add_parser("run", help="run a model: init net once, then the predict net",
                              parents=[extensions])
    run.add_argument("file", help="net file, model file, folder with init_net.pb + predict_net.pb, or .onnx")
    run.add_argument("--init", help="init net to run first (instead of the model's own)")
    run.add_argument("--feed", action="append", default=[], metavar="NAME=PATH.npy",
                     help="feed a blob from .npy (or NAME=PATH.npz:member); repeatable")
    run.add_argument("--fetch", action="append", metavar="NAME",
                     help="blob to fetch (default: the net's external_output); repeatable")
    run.add_argument("--random-init", action="store_true",
                     help="make up weights for the inputs nothing provides")
    run.add_argument("--out-channels", action="append", default=[], metavar="BLOB=N",
                     help="with --random-init: output channels of one made-up weight (default 16)")
    run.add_argument("--iters", type=int, help="runs of the predict net (default 1), or iterations "
                     "of a plan's training loop (default: the plan's num_iter)")
    run.add_argument("--out", metavar="RESULTS.npz", help="save the fetched blobs instead of printing")
    run.add_argument("--seed", type=int, help="seed for random ops and made-up weights")
    run.add_argument("--device", choices=("cpu", "cuda"),
                     help="cpu: everything on the CPU, whatever devices the file names; cuda: ops "
                     "that name no device go to the GPU (default: the devices the file names)")
    run.add_argument("--keep-all", action="store_true",
                     help="keep every blob the predict net makes, for debugging (default: each is freed "
                     "after its last use, except the --fetch blobs and the external outputs)")
    run.add_argument("--optimize", action="store_true",
                     help="create the predict net through the inference transforms (SpatialBN folded, "
                     "test-mode Dropout dropped, Conv + Relu fused, ops in place; see `pycaffe2 optimize`); "
                     "the file is not changed")
    run.add_argument("--dag-workers", type=int, metavar="N",
                     help="ops a dag predict net runs at once (default: the file's num_workers)")
    run.add_argument("--threads", type=int, metavar="N",
                     help="threads for BLAS and the most ops a dag net runs at once (default: the "
                     "libraries' own, usually one per core)")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.add_argument("--checkpoint", metavar="DIR", help="plans: keep the training state in DIR")
    run.add_argument("--save-every", type=int, metavar="N", help="plans: checkpoint every N iterations")
    run.add_argument("--resume", action="store_true", help="plans: continue from the checkpoint in DIR "
                     "(refused when there is none)")
    scale = run.add_argument_group("past one process (Dask; needs pycaffe2[distributed])")
    scale.add_argument("--workers", type=int, metavar="N",
                       help="worker processes of an embedded Dask LocalCluster: a model's feeds scored in "
                       "batches across them (--batch-size), or a plan's training loop data-parallel")
    scale.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="use the workers of this running Dask cluster instead of starting any")
    scale.add_argument("--batch-size", type=int, metavar="B",
                       help="rows of the feeds (first axis) one worker scores at a time "
                       "(default: the rows split evenly over the workers); without --workers or "
                       "--scheduler, the batches run one after another in this process (no Dask)")
    _path_options(run, "the model's Save/Load/CreateDB ops")
    run.set_defaults(run=cmd_run)
    db_cmd = commands.add_parser("db", help="DBs of TensorProtos (minidb, lmdb, leveldb): write from .npz, "
                                 "describe")
    db_actions = db_cmd.add_subparsers(dest="action", required=True)
    db_write = db_actions.add_parser("write", help="turn an .npz of arrays into a DB, one record "
                                     "per example (the arrays' first axis)")
    db_write.add_argument("npz")
    db_write.add_argument("output")
    db_write.add_argument("--db-type", default="minidb", choices=["minidb", "lmdb", "leveldb"],
                          help="lmdb and leveldb need the db extra: pip install 'pycaffe2[db]'")
    db_write.set_defaults(run=cmd_db_write)
    db_info = db_actions.add_parser("info", help="describe a DB (a minidb file, an lmdb or leveldb folder)")
    db_info.add_argument("file")
    db_info.add_argument("--db-type", choices=["minidb", "lmdb", "leveldb"],
                         help="default: from what the path holds")
    db_info.set_defaults(run=cmd_db_info)
    graph = commands.add_parser("graph", help="a picture of the net (.svg, .png or .dot)",
                                parents=[extensions])
    graph.add_argument("file")
    graph.add_argument("-o", "--output", required=True)
    graph.add_argument("--minimal", action="store_true", help="ops only; blobs become labelled edges")
    _path_options(graph)
    graph.set_defaults(run=cmd_graph)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "schemas"):
            load_extensions(args)
        return args.run(args)
    except PyCaffe2Error as exc:
        print(f"pycaffe2 {args.command}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_INVALID if _is_failure(exc) else EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"pycaffe2 {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # `run` promises one line, never a traceback, even for a bug
        if args.command != "run":
            raise
        print(f"pycaffe2 {args.command}: internal error: {type(exc).__name__}: "
              f"{_one_line(str(exc))}", file=sys.stderr)
        return EXIT_INVALID


def _is_failure(exc) -> bool:
    from pycaffe2.run import RunFailure
    return isinstance(exc, RunFailure)


def _one_line(message: str) -> str:
    """A multi-line message ('cannot create net n:\\n  a\\n  b') as one line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) < 2:
        return message.strip()
    return lines[0] + " " + "; ".join(lines[1:])


if __name__ == "__main__":
    sys.exit(main())
