"""The net checker behind `pycaffe2 validate`: every problem at once.

It checks each op against its schema (type, input/output counts, args and
their types and values, in-place rules), follows blobs through the net (a
blob read before anything provides it, two writers in a `dag` net, external
outputs never produced) and runs shape and type inference where input shapes
are known (declared in a model file's `input_shapes`, or produced by the init
net's fills). Each Problem carries the file, line (YAML), net, op index, op
type, a kind and a message.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass

from pycaffe2.errors import PyCaffe2Error, location
from pycaffe2.files import max_blob_bytes
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import nesting_problem
from pycaffe2.schema import closest_types, get_schema
from pycaffe2.schema.args import arg_value, fits, set_fields
from pycaffe2.schema.bind import (
    UNFIT,
    ShapeError,
    TensorInfo,
    bind_args,
    bound_with,
    facts,
    fitting_value,
    infer_op,
)
from pycaffe2.schema.inference.control import do_bindings

NET_TYPES = ("", "simple", "dag", "async_dag", "async_polling", "async_scheduling",
             "async_simple", "singlethread_async", "prof_dag",
             "rnn")  # older Caffe2 models' RecurrentNetwork step nets; run as simple nets
CONCURRENT_NET_TYPES = ("dag", "async_dag", "async_polling", "async_scheduling", "prof_dag")


@dataclass(frozen=True)
class Problem:
    kind: str
    message: str
    file: str | None = None
    line: int | None = None
    net: str | None = None
    op_index: int | None = None
    op_type: str | None = None

    def __str__(self) -> str:
        where = location(self.file, self.line, self.op_index, self.op_type)
        net = f"[{self.net}] " if self.net else ""
        return f"{where}: {net}{self.message}" if where else net + self.message

    def to_dict(self) -> dict:
        return asdict(self)


class _NetChecker:
    """Checks one NetDef; blobs and shapes known before it are passed in."""

    def __init__(self, net, file, op_lines, net_key, known_blobs, shapes):
        self.net, self.file, self.op_lines, self.net_key = net, file, op_lines or {}, net_key
        self.available = set(net.external_input) | set(known_blobs)
        self.shapes: dict[str, TensorInfo] = dict(shapes)
        self.problems: list[Problem] = []
        # As Caffe2's NetBase: a net that declares its external inputs must read nothing
        # else before making it; one that declares none reads whatever is there when it runs
        # (a predict net that Glow or a script feeds by name beside its init net's blobs).
        self.strict_inputs = bool(net.external_input)
        # a control op's nets may place their ops in the outer net's partitions
        self.partitions = {p.name for p in net.partition_info}
        try:  # the blob cap, read once for the net's shape inference
            self.max_bytes = max_blob_bytes()
        except PyCaffe2Error:  # a bad setting: each op's inference reads it again and reports it
            self.max_bytes = None

    def report(self, kind, message, index=None, op_type=None):
        line = self.op_lines.get(index) if index is not None else None
        self.problems.append(Problem(kind, message, self.file, line, self.net_key, index, op_type))

    def run(self) -> list[Problem]:
        if self.net.type not in NET_TYPES:
            self.report("net-type", f"unknown net type '{self.net.type}' "
                        f"(known: {', '.join(t for t in NET_TYPES if t)})")
        self.check_partitions()
        first_writer = self._first_writers()
        writers: dict[str, int] = {}
        for index, op in enumerate(self.net.op):
            self.check_op(index, op, first_writer)
            if self.net.type in CONCURRENT_NET_TYPES:
                for blob in op.output:
                    if blob in writers and writers[blob] != index:
                        self.report("dag-write", f"blob '{blob}' is written by op {writers[blob]} too; "
                                    "ops of a dag net run concurrently, so each blob needs one writer",
                                    index, op.type)
                    writers.setdefault(blob, index)
            self.available.update(op.output)
        for blob in self.net.external_output:
            if blob not in self.available:
                self.report("external-output", f"external_output '{blob}' is never produced")
        return self.problems

    def check_partitions(self):
        """Glow's pre-partitioned nets list partitions in partition_info and place ops in
        them by device_option.node_name. Running here ignores the placement (one process
        runs every op), which computes the same blobs; a name that no entry holds is a
        fault in the file."""
        seen = set()
        for index, partition in enumerate(self.net.partition_info):
            if not partition.name:
                self.report("partition", f"partition_info[{index}] has no name")
            elif partition.name in seen:
                self.report("partition", f"partition_info[{index}]: partition '{partition.name}' "
                            "is listed twice")
            seen.add(partition.name)
        node = self.net.device_option.node_name
        if node and node not in self.partitions:
            self.report("partition", self._no_partition_text(node, "the net's device_option"))

    def _no_partition_text(self, node, where) -> str:
        if not self.partitions:
            return (f"{where}.node_name '{node}' names a partition, but the net has no "
                    "partition_info (Caffe2 wants node_name empty when a net runs)")
        return (f"{where}.node_name '{node}' names no partition_info entry of the net "
                f"(partitions: {', '.join(sorted(self.partitions))})")

    def _first_writers(self) -> dict[str, int]:
        first: dict[str, int] = {}
        for index, op in enumerate(self.net.op):
            for blob in op.output:
                first.setdefault(blob, index)
        return first

    def check_op(self, index, op, first_writer):
        schema = get_schema(op.type)
        if schema is None:
            close = closest_types(op.type)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            self.report("unknown-op", f"unknown op type '{op.type}'{hint}", index, op.type)
        self.check_inputs(index, op, first_writer)
        node = op.device_option.node_name
        if node and node not in self.partitions:
            self.report("partition", self._no_partition_text(node, "device_option"), index, op.type)
        if schema is None:
            for blob in op.output:
                self.shapes.pop(blob, None)
            return
        counts_ok = self.check_counts(index, op, schema)
        known = facts(schema)
        fitted = self.check_args(index, op, schema, known)
        if known.has_net_args:
            self.check_subnets(index, op, schema)
        if counts_ok:
            self.check_inplace(index, op, schema)
        self.infer(index, op, counts_ok, schema, known, fitted)

    def check_inputs(self, index, op, first_writer):
        for blob in op.input:
            if blob in self.available:
                continue
            later = first_writer.get(blob)
            if later is not None and later >= index:
                self.report("undefined-blob", f"input '{blob}' is read before op {later} writes it",
                            index, op.type)
            elif self.strict_inputs:
                self.report("undefined-blob", f"input '{blob}' is not an external_input "
                            "and no earlier op produces it", index, op.type)

    def check_counts(self, index, op, schema) -> bool:
        ok = True
        for kind, blobs, count, specs in (("input", op.input, schema.num_inputs, schema.inputs),
                                          ("output", op.output, schema.num_outputs, schema.outputs)):
            if not count.allows(len(blobs)):
                names = ", ".join(s.name for s in specs)
                plural = "" if count.describe() == "1" else "s"
                self.report(f"{kind}-count", f"takes {count.describe()} {kind}{plural}"
                            + (f" ({names})" if names else "") + f", got {len(blobs)}", index, op.type)
                ok = False
        return ok

    def check_args(self, index, op, schema, known) -> dict:
        """Reports what is wrong with the op's args; returns each known arg's fitting value
        (or UNFIT), the last of a name given twice counting, as bind.bound_with takes them."""
        seen, fitted = set(), {}
        for arg in op.arg:
            if arg.name in seen:
                self.report("arg-duplicate", f"arg '{arg.name}' is given twice", index, op.type)
            seen.add(arg.name)
            spec = schema.args.get(arg.name)
            if spec is None:
                close = difflib.get_close_matches(arg.name, list(schema.args), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.report("unknown-arg", f"unknown arg '{arg.name}'{hint}", index, op.type)
                continue
            value = fitted[arg.name] = fitting_value(arg, known.fields[arg.name], known.empty_list_ok[arg.name],
                                                     UNFIT)
            if value is UNFIT:
                stored = ", ".join(set_fields(arg)) or "nothing"
                self.report("arg-type", f"arg '{arg.name}' must be {spec.type_text}, "
                            f"got {_describe(arg)} (field {stored})", index, op.type)
            elif spec.allowed is not None or spec.min is not None or spec.max is not None:
                problem = spec.violation(value)
                if problem:
                    self.report("arg-value", f"arg '{arg.name}': {problem}", index, op.type)
        for name in known.required:
            if name not in seen:
                self.report("missing-arg", f"required arg '{name}' is missing", index, op.type)
        return fitted

    def check_subnets(self, index, op, schema):
        """A control op's nets are checked like any net: If's and While's see the
        outer blobs, Do's only the blobs bound to it (and its own)."""
        known, shapes, strict = self.available | set(op.input), self.shapes, self.strict_inputs
        if op.type == "Do":
            if any(arg.name in schema.args and not fits(arg, schema.args[arg.name].types) for arg in op.arg):
                return  # check_args said which arg is wrong; bindings from defaults would only add noise
            try:
                args = bind_args(schema, op)
                bindings = do_bindings(op.input, op.output, args["inner_blobs"], args["outer_blobs_idx"])
            except (ShapeError, ValueError) as exc:
                self.report("arg-value", str(exc), index, op.type)
                return
            # a gradient Do also reads the forward workspace's saved blobs; a reused
            # workspace holds whatever earlier runs left in it
            known, strict = set(bindings) | set(args["saved_fwd_blobs"] if op.is_gradient_op else ()), \
                not args["reuse_workspace"]
            shapes = {inner: self.shapes[outer] for inner, outer in bindings.items() if outer in self.shapes}
        elif op.type in ("Loop", "Scan"):  # the op itself feeds its body's formal inputs
            known = known | {name.decode("utf-8", "replace") if isinstance(name, bytes) else name
                             for arg in op.arg if arg.name == "body_inputs" for name in arg.strings}
        for arg in op.arg:
            spec = schema.args.get(arg.name)
            if spec is None or not fits(arg, spec.types) or not set(spec.types) & {"net", "nets"}:
                continue
            for net in ([arg.n] if arg.HasField("n") else list(arg.nets)):
                # the net's external_input declares blobs it takes from here; it cannot make them
                missing = [blob for blob in net.external_input if blob not in known] if strict else []
                for blob in dict.fromkeys(missing):
                    self.report("undefined-blob", f"{arg.name} (net '{net.name}'): external_input '{blob}' "
                                "is not a blob the op can give it", index, op.type)
                checker = _NetChecker(net, None, None, None, known, shapes)
                checker.strict_inputs = strict
                checker.partitions |= self.partitions
                for problem in checker.run():
                    self.report(problem.kind, f"{arg.name} (net '{net.name}'): {problem}", index, op.type)

    def check_inplace(self, index, op, schema):
        if not schema.inplace_enforced and (schema.inplace_any or not set(op.input).intersection(op.output)):
            return  # nothing shared, nothing enforced
        for i, blob_in in enumerate(op.input):
            for o, blob_out in enumerate(op.output):
                if blob_in == blob_out and not schema.inplace_ok(i, o):
                    self.report("inplace", f"input {i} ({schema.input_name(i)}) and output {o} "
                                f"({schema.output_name(o)}) are both '{blob_in}', but {op.type} "
                                f"{_inplace_text(schema)}", index, op.type)
        for i, o in sorted(schema.inplace_enforced):
            if i < len(op.input) and o < len(op.output) and op.input[i] != op.output[o]:
                self.report("inplace", f"output {o} ({schema.output_name(o)}) must be the same blob "
                            f"as input {i} ({schema.input_name(i)}) '{op.input[i]}', got "
                            f"'{op.output[o]}'", index, op.type)

    def infer(self, index, op, counts_ok, schema, known, fitted):
        outputs = [None] * len(op.output)
        if counts_ok:
            inputs = [self.shapes.get(blob) for blob in op.input]
            try:
                args = bound_with(known, fitted) if schema.inference != "none" else None
                outputs = infer_op(op, inputs, schema, self.max_bytes, args)
            except ShapeError as exc:
                known = ", ".join(f"{blob}: {info.describe()}" for blob, info
                                  in zip(op.input, inputs) if info is not None)
                self.report("shape", f"{exc} (inputs {known})" if known else str(exc), index, op.type)
            except Exception as exc:  # noqa: BLE001 (a fault in a rule must not hide the other problems)
                self.report("internal", f"shape inference failed: {type(exc).__name__}: {exc}",
                            index, op.type)
        for blob, info in zip(op.output, outputs):
            if info is None:
                self.shapes.pop(blob, None)
            else:
                self.shapes[blob] = info


def _describe(arg) -> str:
    if arg.HasField("n"):  # a net's repr is its whole text form, many lines
        return f"a net ('{arg.n.name}')" if arg.n.name else "a net"
    if len(arg.nets):
        return f"a list of {len(arg.nets)} net(s)"
    text = repr(arg_value(arg))
    return text if len(text) <= 40 else text[:37] + "..."


def _inplace_text(schema) -> str:
    pairs = sorted(schema.inplace_allowed | schema.inplace_enforced)
    if not pairs:
        return "cannot run in place"
    return "allows in place only " + ", ".join(
        f"input {i} -> output {o}" for i, o in pairs)


def check_net(net: caffe2_pb2.NetDef, *, file: str | None = None, op_lines=None,
              net_key: str | None = None, known_blobs=(), shapes=None) -> list[Problem]:
    """Every problem in one NetDef. `known_blobs` are provided from outside
    (an init net, a workspace); `shapes` maps blob -> TensorInfo."""
    problem = nesting_problem(net.op)
    if problem:  # checking it would recurse once per level
        return [Problem("nesting", problem, file, None, net_key)]
    return _NetChecker(net, file, op_lines, net_key, known_blobs, shapes or {}).run()


def check_model(model) -> list[Problem]:
    """Every problem in a netfile.Model: the init net first, then the predict
    net, which sees the init net's blobs and shapes."""
    problems, known = [], set()
    shapes = {name: TensorInfo(dims, dtype) for name, (dims, dtype) in model.input_shapes.items()}
    nesting = [Problem("nesting", problem, model.files.get(key), None, key)
               for key, net in model.nets() if (problem := nesting_problem(net.op))]
    if nesting:
        return nesting
    for key, net in model.nets():
        checker = _NetChecker(net, model.files.get(key), model.op_lines.get(key),
                              key if model.init_net is not None else None, known, shapes)
        problems += checker.run()
        known |= checker.available
        shapes = checker.shapes
    if model.plan is not None:
        problems += _check_plan(model)
    return problems


def _check_plan(model) -> list[Problem]:
    """Plan steps name nets that exist, and hold either substeps or nets."""
    file = model.files.get("predict_net")
    nets = {net.name for _, net in model.nets()} | {net.name for net in model.plan.network}
    problems = []

    def walk(step, path):
        where = f"plan step '{path}'"
        if step.substep and step.network:
            problems.append(Problem("plan", f"{where} has both substeps and networks", file, net="plan"))
        for name in step.network:
            if name not in nets:
                problems.append(Problem("plan", f"{where} runs unknown net '{name}' (known: "
                                        f"{', '.join(sorted(nets))})", file, net="plan"))
        for sub in step.substep:
            walk(sub, f"{path}/{sub.name}")

    for step in model.plan.execution_step:
        walk(step, step.name)
    return problems

