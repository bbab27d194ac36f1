"""Mutations for the fuzzer (tests/fuzz/harness.py): the byte-level ones an
attacker starts with (bit flips, truncation, splices, inserted bytes and
tokens, repeats, deletions) and format-aware ones that get further into a
loader: a field of a protobuf message, a value of a JSON/YAML tree, the header
of an .npy array (and of the arrays inside an .npz) changed to an odd value."""
from __future__ import annotations

import io
import json
import random
import struct
import zipfile

import yaml
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor

from pycaffe2 import db
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import is_repeated as _repeated
from tests.fuzz.seeds import seeds

# Inserted whole, beside random bytes: what makes parsers take unusual paths.
TOKENS = {
    "text": [b"\xff", b"\x00", b"\\ud800", b"\\udfff", b"\xed\xa0\x80", b"99999999999999999999999",
             b"-1", b"-9223372036854775809", b"1e999", b"nan", b"0x", b"\n", b"  ", b"\t", b"'", b'"'],
    "pbtxt": [b"arg { name: 'a' n { ", b" } ", b"op { ", b"\"\\377\"", b"device_option { ",
              b"ints: 4294967296 ", b"i: -9223372036854775809 ", b"type: 'Relu' ", b"s: '\\x80' "],
    "json": [b"[", b"]", b"{", b"}", b"null", b'{"base64": "', b'"\\ud800"', b",", b":", b"true",
             b'"arg": {"a": {"n": ', b'"ints": [1e400]', b'"op": [{"type": "Relu"}]'],
    "yaml": [b"&a ", b"*a", b"<<: *a\n", b"!!binary ", b"!!python/object:os.system ", b"- ", b"? ",
             b": ", b"{", b"[", b"~", b"\"\\ud800\"", b"\n  - ", b"predict_net: ", b"plan: ",
             b"input_shapes: {x: [-1]}\n", b"!!float ", b"0o777", b".inf"],
    "binary": [b"\xff" * 10 + b"\x01", b"\x80" * 11, b"\x00\x00\x00\x80", b"\xff\xff\xff\x7f",
               b"\xff\xff\xff\xff", b"\x08\xff\xff\xff\xff\x0f", b"\x12\x00", b"\x0a\xff\x01"],
    "npy": [b"\x93NUMPY\x01\x00", b"\x93NUMPY\x03\x00", b"'shape': (", b"(99999999999, 99999999)",
            b"'descr': '|O'", b"'<f8'", b"'fortran_order': True", b"(-1,)", b"PK\x03\x04", b"PK\x01\x02"],
}
_FAMILY_TOKENS = {"pb": ("binary",), "folder": ("binary",), "minidb": ("binary",),
                  "pbtxt": ("pbtxt", "text"), "json": ("json", "text"), "yaml": ("yaml", "text"),
                  "model": ("yaml", "text"), "npy": ("npy", "binary"), "npz": ("npy", "binary")}


def _flip(data: bytes, rng: random.Random, others) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _truncate(data: bytes, rng: random.Random, others) -> bytes:
    return data[:rng.randint(0, len(data))]


def _splice(data: bytes, rng: random.Random, others) -> bytes:
    other = rng.choice(others)
    return data[:rng.randint(0, len(data))] + other[rng.randint(0, len(other)):]


def _insert(data: bytes, rng: random.Random, others, tokens=()) -> bytes:
    at = rng.randint(0, len(data))
    if tokens and rng.random() < 0.7:
        piece = rng.choice(tokens) * (rng.choice((1, 1, 1, 2, 50)))
    else:
        piece = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return data[:at] + piece + data[at:]


def _repeat(data: bytes, rng: random.Random, others) -> bytes:
    """A stretch copied in place several times (nesting, long lists)."""
    if not data:
        return data
    begin = rng.randrange(len(data))
    end = min(len(data), begin + rng.randint(1, 64))
    return data[:begin] + data[begin:end] * rng.randint(2, 40) + data[end:]


def _delete(data: bytes, rng: random.Random, others) -> bytes:
    if not data:
        return data
    begin = rng.randrange(len(data))
    return data[:begin] + data[begin + rng.randint(1, 16):]


MUTATIONS = (_flip, _truncate, _splice, _insert, _insert, _repeat, _delete)

# Field values that take loaders down unusual paths, by protobuf type.
_INTS = (0, 1, -1, 2, 7, 2**31 - 1, -2**31, 2**32, 2**40, 2**62, -2**63, 2**63 - 1)
_FLOATS = (0.0, -0.0, 1.5, float("nan"), float("inf"), -float("inf"), 3.4e38, 1e-45)
_TEXTS = ("", "X", "Relu", "FC", "a" * 300, "\u00e9", "#%0", "w#%1", "../x", "/dev/zero", "\n")


def _messages(message) -> list:
    """Every message inside `message`, itself first."""
    found, stack = [], [message]
    while stack:
        current = stack.pop()
        found.append(current)
        for fd, value in current.ListFields():
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                stack.extend(value if _repeated(fd) else [value])
    return found


def _field_value(fd, rng: random.Random):
    kind = fd.type
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice(fd.enum_type.values).number
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return rng.choice(_FLOATS)
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice(_TEXTS)
    if kind == FieldDescriptor.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 3, 4, 5, 8, 17))))
    return rng.choice(_INTS)


def mutate_message(message, rng: random.Random) -> None:
    """One field somewhere in `message` set, appended to or cleared."""
    target = rng.choice(_messages(message))
    fd = rng.choice(target.DESCRIPTOR.fields)
    if rng.random() < 0.15:
        target.ClearField(fd.name)
        return
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if not _repeated(fd):
            getattr(target, fd.name).SetInParent()
        else:
            getattr(target, fd.name).add()
        return
    for _ in range(8):  # a value the field takes (ints out of its range are refused here)
        try:
            value = _field_value(fd, rng)
            if _repeated(fd):
                field = getattr(target, fd.name)
                if len(field) and rng.random() < 0.5:
                    field[rng.randrange(len(field))] = value
                else:
                    field.append(value)
            else:
                setattr(target, fd.name, value)
            return
        except (ValueError, TypeError):
            continue


def nest_message(net, rng: random.Random) -> None:
    """One of the net's ops made a control op holding the net's ops as a nested
    net, one to 24 levels deep (MAX_NET_NESTING is 16), in an arg the schema
    has or not, as `n` or as a list in `nets`."""
    kind, arg_name = rng.choice((("If", "then_net"), ("If", "else_net"), ("While", "loop_net"),
                                 ("While", "cond_net"), ("Do", "net"), ("Relu", "net")))
    inner = caffe2_pb2.NetDef(name="nested", op=list(net.op)[:8])
    for _ in range(rng.randint(1, 24)):
        op = caffe2_pb2.OperatorDef(type=kind, input=["c", "x"], output=["y"])
        arg = op.arg.add(name=arg_name)
        if rng.random() < 0.2:
            arg.nets.add().MergeFrom(inner)
        else:
            arg.n.MergeFrom(inner)
        inner = caffe2_pb2.NetDef(name="nested", op=[op])
    net.op.insert(rng.randint(0, len(net.op)), inner.op[0])


def _mutate_pb(data: bytes, rng: random.Random, cls=caffe2_pb2.NetDef) -> bytes:
    message = cls()
    try:
        message.ParseFromString(data)
    except Exception:  # noqa: BLE001 (an earlier mutation broke it: leave it to the byte mutations)
        return data
    if cls is caffe2_pb2.NetDef and rng.random() < 0.2:
        nest_message(message, rng)
    for _ in range(rng.randint(1, 3)):
        mutate_message(message, rng)
    return message.SerializePartialToString()


def _records(data: bytes) -> list[tuple[bytes, bytes]] | None:
    records, offset = [], 0
    while offset + 8 <= len(data):
        key_len, value_len = struct.unpack_from("<ii", data, offset)
        if key_len <= 0 or value_len <= 0:
            return None
        begin = offset + 8
        records.append((data[begin:begin + key_len], data[begin + key_len:begin + key_len + value_len]))
        offset = begin + key_len + value_len
    return records


def _mutate_minidb(data: bytes, rng: random.Random) -> bytes:
    records = _records(data)
    if not records:
        return data
    index = rng.randrange(len(records))
    key, value = records[index]
    if rng.random() < 0.15:
        key = rng.choice((b"\xff\xfe", key + b"\x80", b"w#%9", b"x", key * 2))
    else:
        cls = caffe2_pb2.BlobProto if db._is_blob_proto(value) else caffe2_pb2.TensorProtos
        value = _mutate_pb(value, rng, cls)
    records[index] = (key, value)
    if rng.random() < 0.2:
        records.insert(rng.randrange(len(records) + 1), rng.choice(records))
    return b"".join(struct.pack("<ii", len(k), len(v)) + k + v for k, v in records if k and v)


_DESCRS = ("<f4", ">f8", "|b1", "<i8", "|u1", "<c16", "|O", "<U3", "|S0", "|V8", "<m8[s]", "[('a', '<i4')]")
_SHAPES = ("()", "(0,)", "(3,)", "(2, 3)", "(-1,)", "(10**12,)", "(99999999999, 99999999999)",
           "(3, 4)", "(1, 0, 5)", "[3]", "(2.5,)", "('a',)", "(1,) * 40")


def _mutate_npy(data: bytes, rng: random.Random) -> bytes:
    """A new header (descr, fortran_order, shape) over the old data, maybe cut short."""
    end = data.find(b"\n", 0, 4096)
    if not data.startswith(b"\x93NUMPY") or end < 0:
        return data
    descr = repr(rng.choice(_DESCRS)) if rng.random() < 0.9 else "[('a', '<i4'), ('b', '|O')]"
    fortran_order = rng.choice(("False", "True", "1", "None"))
    header = f"{{'descr': {descr}, 'fortran_order': {fortran_order}, 'shape': {rng.choice(_SHAPES)}, }}"
    header = header.encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    body = data[end + 1:]
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body[:rng.randint(0, len(body))]


def _mutate_npz(data: bytes, rng: random.Random) -> bytes:
    """An archive whose members were mutated as .npy files, re-zipped."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: archive.read(info) for info in archive.infolist()}
    except Exception:  # noqa: BLE001 (already broken)
        return data
    name = rng.choice(sorted(members)) if members else "X.npy"
    members[name] = _mutate_npy(members.get(name, b""), rng)
    if rng.random() < 0.2:
        members[rng.choice(("X", "a.npy", "../b.npy", "c.npy"))] = rng.choice(list(members.values()))
    out = io.BytesIO()
    compression = rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2))
    with zipfile.ZipFile(out, "w", compression) as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return out.getvalue()


def _mutate_pbtxt(data: bytes, rng: random.Random) -> bytes:
    net = caffe2_pb2.NetDef()
    try:
        text_format.Parse(data.decode("utf-8"), net)
    except Exception:  # noqa: BLE001 (already broken)
        return data
    for _ in range(rng.randint(1, 3)):
        mutate_message(net, rng)
    return text_format.MessageToString(net).encode("utf-8")


# Values put in place of others in a JSON/YAML tree.
_TREE_VALUES = (None, True, 0, -1, 2**31, 2**64, -2**63 - 1, 1.5, float("nan"), float("inf"), "",
                "Relu", "\ud800", "x\udfffy", "NCHW", [], [1, "a"], [[1]], {}, {"base64": "AA=="},
                {"base64": "!!"}, {"name": "a", "i": 1}, {"shape": [2, -1], "dtype": "float32"},
                {"shape": [1], "dtype": "no"}, {"type": "FC", "input": ["X"], "output": ["Y"]})


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _nodes(tree) -> list:
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            found.append(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
    return found


def _mutate_tree(data: bytes, rng: random.Random, dump) -> bytes:
    """A value somewhere in the tree replaced, or a key renamed or added."""
    try:
        tree = json.loads(data) if dump is None else yaml.load(data, Loader=_YAML_LOADER)
    except Exception:  # noqa: BLE001 (already broken)
        return data
    nodes = _nodes(tree)
    for _ in range(rng.randint(1, 3)):
        if not nodes:
            break
        node = rng.choice(nodes)
        value = rng.choice(_TREE_VALUES)
        if isinstance(node, list):
            if node and rng.random() < 0.7:
                node[rng.randrange(len(node))] = value
            else:
                node.append(value)
        elif node and rng.random() < 0.8:
            node[rng.choice(list(node))] = value
        else:
            node[rng.choice(("arg", "op", "n", "plan", "input_shapes", "init_net", "\udc80", "1"))] = value
    if dump == "yaml":
        try:
            return yaml.dump(tree, Dumper=_YAML_DUMPER).encode("utf-8")
        except UnicodeEncodeError:  # a surrogate: JSON (which is YAML) spells it as an escape
            pass
    return json.dumps(tree).encode("utf-8")


_STRUCTURED = {"pb": _mutate_pb, "folder": _mutate_pb, "minidb": _mutate_minidb,
               "npy": _mutate_npy, "npz": _mutate_npz, "pbtxt": _mutate_pbtxt,
               "json": lambda data, rng: _mutate_tree(data, rng, None),
               "yaml": lambda data, rng: _mutate_tree(data, rng, "yaml"),
               "model": lambda data, rng: _mutate_tree(data, rng, "yaml")}


def mutate(family: str, rng: random.Random) -> bytes:
    """A seed of `family` after one to four random mutations: byte-level ones,
    and for binary formats ones that know the format (a field of a message, the
    header of an array) so that more inputs get past the first parse."""
    pool = seeds()[family]
    data = rng.choice(pool)
    tokens = [t for kind in _FAMILY_TOKENS[family] for t in TOKENS[kind]]
    structured = _STRUCTURED.get(family)
    if structured is not None and rng.random() < 0.7:
        data = structured(data, rng)
        if rng.random() < 0.6:
            return data
    for _ in range(rng.randint(1, 4)):
        mutation = rng.choice(MUTATIONS)
        data = mutation(data, rng, pool, tokens) if mutation is _insert else mutation(data, rng, pool)
    return data
