"""What protobuf lets through when it decodes bytes from a file, checked here.

Python's protobuf hands a `string` field whose bytes are not UTF-8 back as
`bytes` (a str everywhere else), and reads messages nested up to 100 deep
from binary but deeper from text, so a .pbtxt could convert into a .pb that
no longer reads. Every loader asks `message_problem` about what it decoded,
and writers ask it too, so whatever one format accepts every other can hold.

Control ops (If, While, Do, ...) and RecurrentNetwork carry nets in their args,
so nets nest. Caffe2 sets no limit; here every walker of nested nets (the
checker behind validate and CreateNet, the executor, the gradient builder)
would recurse once per level, so `nesting_problem` refuses nets nested more
than MAX_NET_NESTING deep before any of them starts, whether the net came
from a file or was built in Python.
"""
from __future__ import annotations

from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor

from pycaffe2.proto import caffe2_pb2

MAX_DEPTH = 64  # nested messages; binary protobuf refuses more than 100
# nets inside op args inside nets; each level is 3 messages (net, op, arg), so
# whatever stays within it also fits MAX_DEPTH and can be written to a file
MAX_NET_NESTING = 16


def is_repeated(fd) -> bool:
    # protobuf 5.28+ has is_repeated; older releases only have label.
    flag = getattr(fd, "is_repeated", None)
    return flag if flag is not None else fd.label == FieldDescriptor.LABEL_REPEATED


def message_problem(message) -> str | None:
    """What is wrong with a decoded message ('op[2].type is not UTF-8 text',
    'messages nested more than 64 deep', 'required field ... missing'), or None.
    Walks without recursion."""
    if message.IsInitialized() and _clean(message):
        return None  # the common case, found without naming every field on the way
    if not message.IsInitialized():  # binary protobuf parses them, then cannot write them
        missing = message.FindInitializationErrors()
        return f"required field {missing[0]} is missing" + (
            f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    stack = [(message, "", 1)]
    while stack:
        current, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            shown = path if len(path) <= 80 else "..." + path[-77:]
            return f"messages nested more than {MAX_DEPTH} deep (at {shown})"
        for fd, value in current.ListFields():
            if fd.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE):
                continue  # numbers and bytes cannot be wrong here
            name = f"{path}.{fd.name}" if path else fd.name
            items = list(enumerate(value)) if is_repeated(fd) else [(None, value)]
            for index, item in items:
                where = name if index is None else f"{name}[{index}]"
                if fd.type == FieldDescriptor.TYPE_STRING and isinstance(item, bytes):
                    return f"{where} is not UTF-8 text"
                if fd.type == FieldDescriptor.TYPE_MESSAGE:
                    stack.append((item, where, depth + 1))
    return None


_REPEATED: dict = {}  # field descriptor -> is_repeated


def _clean(message) -> bool:
    """Whether message_problem would find nothing past IsInitialized: its walk, without paths."""
    stack = [(message, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        for fd, value in current.ListFields():
            kind = fd.type
            if kind != FieldDescriptor.TYPE_STRING and kind != FieldDescriptor.TYPE_MESSAGE:
                continue
            repeated = _REPEATED.get(fd)
            if repeated is None:
                repeated = _REPEATED[fd] = is_repeated(fd)
            if kind == FieldDescriptor.TYPE_MESSAGE:
                if repeated:
                    stack += [(item, depth + 1) for item in value]
                else:
                    stack.append((value, depth + 1))
            elif bytes in (set(map(type, value)) if repeated else (type(value),)):
                return False
    return True


def message_from_bytes(cls, data) -> tuple:
    """(message, None) for `data` decoded as a binary `cls` whose strings check out,
    or (None, what is wrong with it)."""
    message = cls()
    try:
        message.ParseFromString(bytes(data))
    except Exception as exc:  # noqa: BLE001 (protobuf raises several types for bad bytes)
        return None, f"not a {cls.DESCRIPTOR.name} ({exc})"
    problem = message_problem(message)
    return (None, problem) if problem else (message, None)


def net_from_text(value) -> tuple[caffe2_pb2.NetDef | None, str | None]:
    """(net, None) for a NetDef in protobuf text form (how older RecurrentNetwork
    models store step_net), or (None, what is wrong with it)."""
    net = caffe2_pb2.NetDef()
    try:
        text_format.Parse(value.decode("utf-8") if isinstance(value, bytes) else value, net)
    except (text_format.ParseError, UnicodeDecodeError) as exc:
        return None, f"not a NetDef in text form: {exc}"
    except RecursionError:  # protobuf's text parser recurses once per message
        return None, f"a NetDef in text form nested more than {MAX_DEPTH} messages deep"
    problem = message_problem(net)
    return (None, problem) if problem else (net, None)


def inner_nets(op) -> list[tuple[str, caffe2_pb2.NetDef]]:
    """(arg name, net) for each net an op carries: `n`, each of `nets`, and a
    step net in text form that parses (one that does not is its op's own error)."""
    found = []
    for arg in op.arg:
        if arg.HasField("n"):
            found.append((arg.name, arg.n))
        found += [(f"{arg.name}[{i}]", net) for i, net in enumerate(arg.nets)]
        if arg.name.endswith("step_net") and arg.HasField("s"):
            net, _ = net_from_text(arg.s)
            if net is not None:
                found.append((arg.name, net))
    return found


def nesting_problem(ops) -> str | None:
    """What is wrong when the nets inside `ops` (a net's ops) nest more than
    MAX_NET_NESTING deep, naming the path to the deepest one; None when they
    do not. Walks without recursion."""
    stack = [(list(ops), "", 0)]
    while stack:
        current, path, depth = stack.pop()
        for index, op in enumerate(current):
            for name, net in inner_nets(op):
                where = f"{path} > op {index} ({op.type}) {name}" if path else f"op {index} ({op.type}) {name}"
                if depth + 1 > MAX_NET_NESTING:
                    shown = where if len(where) <= 160 else where[:157] + "..."
                    return (f"nets nested more than {MAX_NET_NESTING} deep inside op args (at {shown}); "
                            f"at most {MAX_NET_NESTING} levels of nets are supported")
                stack.append((net.op, where, depth + 1))
    return None


# ---------------------------------------------------------------- unknown fields

UNKNOWN_FIELDS_KEY = "unknown_fields"  # how the YAML/JSON spellings keep them (base64 wire bytes)


def _unknown_numbers(message) -> list[int]:
    """The numbers of the undeclared fields `message` itself holds."""
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet
    except ImportError:  # protobuf before 4.22: only whether there are any
        return [0] if unknown_bytes(message) else []
    return sorted({field.field_number for field in UnknownFieldSet(message)})


def unknown_bytes(message) -> bytes:
    """The wire bytes of the fields of `message` itself (not of its submessages)
    that caffe2.proto does not declare: what a newer or foreign writer put there."""
    rest = type(message)()
    rest.CopyFrom(message)
    for fd, _ in rest.ListFields():
        rest.ClearField(fd.name)
    return rest.SerializeToString()


def has_unknown_fields(message) -> bool:
    """Whether `message` itself holds fields caffe2.proto does not declare."""
    return bool(_unknown_numbers(message))


def unknown_field_path(message) -> str | None:
    """Where the first message holding undeclared fields sits ('op[2].arg[0]',
    '' for the top), with their numbers, or None when there are none."""
    stack = [(message, "")]
    while stack:
        current, path = stack.pop()
        numbers = _unknown_numbers(current)
        if numbers:
            return f"{path or 'the top level'} (field number {', '.join(map(str, numbers))})"
        for fd, value in current.ListFields():
            if fd.type != FieldDescriptor.TYPE_MESSAGE:
                continue
            name = f"{path}.{fd.name}" if path else fd.name
            items = enumerate(value) if is_repeated(fd) else [(None, value)]
            stack.extend((item, name if index is None else f"{name}[{index}]") for index, item in items)
    return None


def nested_blobs(op, check_text_net=None) -> set[str]:
    """Every blob name inside the nets an op carries in its arguments, however deep
    (walked without recursion), and every string an argument holds (RecurrentNetwork's
    links and aliases name outer blobs that way). `check_text_net(op, arg)` is called
    for each step net held as text, at any depth (the memonger refuses one that does
    not parse)."""
    names, stack = set(), [op]
    while stack:
        current = stack.pop()
        for arg in current.arg:
            names.update(_text(value) for value in ([arg.s] if arg.HasField("s") else []) + list(arg.strings))
            if check_text_net is not None and arg.name.endswith("step_net") and arg.s:
                check_text_net(current, arg)
        for _, net in inner_nets(current):
            names.update(net.external_input, net.external_output)
            for inner in net.op:
                names.update(inner.input, inner.output)
                stack.append(inner)
    return names


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")
