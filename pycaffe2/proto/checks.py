"""What protobuf lets through when it decodes bytes from a file, checked here.

Python's protobuf hands a `string` field whose bytes are not UTF-8 back as
`bytes` (a str everywhere else), and reads messages nested up to 100 deep
from binary but deeper from text, so a .pbtxt could convert into a .pb that
no longer reads. Every loader asks `message_problem` about what it decoded,
and writers ask it too, so whatever one format accepts every other can hold.
"""
from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor

MAX_DEPTH = 64  # nested messages; binary protobuf refuses more than 100


def is_repeated(fd) -> bool:
    # protobuf 5.28+ has is_repeated; older releases only have label.
    flag = getattr(fd, "is_repeated", None)
    return flag if flag is not None else fd.label == FieldDescriptor.LABEL_REPEATED


def message_problem(message) -> str | None:
    """What is wrong with a decoded message ('op[2].type is not UTF-8 text',
    'messages nested more than 64 deep', 'required field ... missing'), or None.
    Walks without recursion."""
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
