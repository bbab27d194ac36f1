"""The `pycaffe2` command line: validate, ops, convert."""
from __future__ import annotations

import argparse
import json
import sys

from pycaffe2.errors import PyCaffe2Error

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def cmd_validate(args) -> int:
    from pycaffe2.schema.checker import check_file, net_files
    files = net_files(args.files)
    problems = [p for path in files for p in check_file(path)]
    unreadable = any(p.kind == "file" for p in problems)
    if args.format == "json":
        print(json.dumps({"valid": not problems, "files_checked": len(files),
                          "problems": [p.to_dict() for p in problems]}, indent=1))
    else:
        for problem in problems:
            print(problem)
        bad_files = len({p.file for p in problems})
        print(f"{len(files)} file(s) checked: " + (
            f"{len(problems)} problem(s) in {bad_files} file(s)" if problems else "all valid"),
            file=sys.stderr)
    if not files:
        print("pycaffe2 validate: no net files found", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE if unreadable else EXIT_INVALID if problems else EXIT_OK


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
    netfile.save_model(netfile.load_model(args.input), args.output)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pycaffe2", description="Caffe2-style nets from files.")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check net files against the op schemas")
    validate.add_argument("files", nargs="+", help="net files, model files or folders")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(run=cmd_validate)
    ops = commands.add_parser("ops", help="the operator catalogue")
    ops.add_argument("type", nargs="?", help="one op type to describe")
    ops.add_argument("--markdown", action="store_true", help="print docs/operators.md")
    ops.set_defaults(run=cmd_ops)
    convert = commands.add_parser("convert", help="convert between .pb .pbtxt .yaml .json")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.set_defaults(run=cmd_convert)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except PyCaffe2Error as exc:
        print(f"pycaffe2 {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
