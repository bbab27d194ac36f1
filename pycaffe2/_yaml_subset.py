"""A quick reader for the plain YAML most net files are written in, giving
exactly what _yaml's line-tracking loader gives (LineDict/LineList, the same
lines, the same scalar types), or NOT_PLAIN for anything else.

PyYAML builds every node in Python even over libyaml, about 4 us a line; net
files use a small corner of YAML: block mappings and sequences indented with
spaces, flow collections (`{type: Relu, input: [X]}`, going on over the next
lines when a writer wraps them), plain and simply quoted scalars, comments.
That corner is read here line by line. Everything else (anchors, aliases, tags,
block scalars, multi-line scalars, quotes or blank lines inside a wrapped flow,
escapes, tabs, non-ASCII text, a key written twice, a key near YAML's length
limit, a node this reader is not sure about) gives NOT_PLAIN, and _yaml reads
the text with PyYAML as before, which also reports every error. Plain scalars are typed by PyYAML's
own resolvers and constructors, so `yes`, `0x1F`, `1.0e+3` mean what they mean
there.
"""
from __future__ import annotations

import bisect
import re

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode

from pycaffe2._yaml import LineDict, LineList, resolvers


class _NotPlain(Exception):
    pass


NOT_PLAIN = object()
_OUTSIDE = re.compile(r"[^\n\x20-\x7e]")  # tabs, CR, control characters, non-ASCII: PyYAML's business
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_KEY_CHARS = 1000  # YAML allows an implicit key 1024 characters (PyYAML and libyaml count a little differently)
_PLAIN_KEY = re.compile(r"""[^-?:,\[\]{}#&*!|>'"%@`\s][^:#]*""")
_FLOW_PLAIN = re.compile(r"""(?:[^-?:,\[\]{}#&*!|>'"%@`\s]|-[0-9.])[^,\[\]{}#:]*""")
_SPACES = re.compile(r" *")
_NAME = r"""(?:[^-?:,\[\]{}#&*!|>'"%@`\s]|-[0-9.])[^,\[\]{}#:'"]*"""
_NAMES = re.compile(rf"\[ *(?:{_NAME}(?:, *{_NAME})*)?\]")  # a one-line flow sequence of plain scalars
_PAIR = rf"{_NAME}: +{_NAME}"
_PAIRS = re.compile(rf"\{{ *(?:{_PAIR}(?:, *{_PAIR})*)?\}}")  # a one-line flow mapping of plain scalars
_LINES = re.compile(r"^( *)([^\n]*)", re.MULTILINE)  # no lazy or nested repeats: linear on any line
_STR = "tag:yaml.org,2002:str"
_SCALARS: dict[str, object] = {}  # plain scalar text -> its value (all immutable), shared by every file
_CONSTRUCTOR = SafeConstructor()
_BUILD = {"tag:yaml.org,2002:int": _CONSTRUCTOR.construct_yaml_int,
          "tag:yaml.org,2002:float": _CONSTRUCTOR.construct_yaml_float,
          "tag:yaml.org,2002:bool": _CONSTRUCTOR.construct_yaml_bool,
          "tag:yaml.org,2002:null": _CONSTRUCTOR.construct_yaml_null}


def load(text: str):
    """The tree of `text`, as _yaml.load builds it, or NOT_PLAIN."""
    if _OUTSIDE.search(text):
        return NOT_PLAIN
    try:
        return _Reader(text).document()
    except (_NotPlain, RecursionError, IndexError):
        return NOT_PLAIN


def _plain(text: str):
    """A plain scalar's value, typed as PyYAML's resolvers and constructors type it."""
    value = _SCALARS.get(text, _SCALARS)
    if value is not _SCALARS:
        return value
    tag = _STR
    for candidate, pattern in resolvers(text[:1]):
        if pattern.match(text):
            tag = candidate
            break
    if tag == _STR:
        value = text
    elif tag in _BUILD:
        value = _BUILD[tag](ScalarNode(tag, text))
    else:  # timestamps, merge keys, '=': left to PyYAML
        raise _NotPlain
    if len(_SCALARS) > 100_000:
        _SCALARS.clear()
    _SCALARS[text] = value
    return value


def _uncomment(content: str) -> str:
    if "'" in content or '"' in content:
        raise _NotPlain  # a '#' that may sit inside quotes
    cut = content.find(" #")
    return content[:cut].rstrip(" ") if cut >= 0 else content


def _depth(text: str) -> int:
    """Brackets opened and not closed in `text`."""
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")


def _key_line(content: str):
    """(key, what follows `key: ` or None) when a line's content is a block mapping's key
    line: a plain key (no ':' or '#', not starting with an indicator) or a quoted one
    without escapes, then ':' and a space or the end of the line; else None."""
    first = content[0]
    if first == "'" or first == '"':
        end = content.find(first, 1)
        if end < 0 or (first == '"' and "\\" in content[1:end]):
            return None
        key, tail = content[1:end], content[end + 1:].lstrip(" ")
        if len(content) - len(tail) > _KEY_CHARS:
            return None
    else:
        colon = content.find(":")
        if colon < 0 or colon > _KEY_CHARS or not _PLAIN_KEY.fullmatch(content, 0, colon):
            return None
        key, tail = None, content[colon:]
    if tail[:1] != ":" or tail[1:2] not in ("", " "):
        return None
    rest = tail[1:].lstrip(" ") or None
    return (_plain(content[:colon].rstrip(" ")) if key is None else key), rest


def _dash(content: str) -> bool:
    """Whether a line's content is a block sequence entry ('-' then a space or nothing)."""
    return content[0] == "-" and content[1:2] in ("", " ")


class _Reader:
    """Block structure by indentation over (indent, content, line) entries."""

    def __init__(self, text: str):
        entries = [(len(spaces), content.rstrip(" "), number) for number, (spaces, content)
                   in enumerate(_LINES.findall(text), 1) if content and content[0] != "#"]
        if "#" in text:
            entries = [(indent, _uncomment(content) if "#" in content else content, number)
                       for indent, content, number in entries]
        if entries and ("---" in text or "..." in text):
            documents = [entry for entry in entries if entry[0] == 0 and entry[1][:3] in ("---", "...")]
            if documents and (len(documents) > 1 or documents[0] is not entries[0] or entries[0][1] != "---"):
                raise _NotPlain  # documents, directives' ends, a second document
            entries = entries[len(documents):]
        self.entries = entries

    def document(self):
        if not self.entries:
            return None
        value, end = self.node(0)
        if end != len(self.entries):
            raise _NotPlain
        return value

    def node(self, i: int):
        """The block node whose first line is entry i: (value, the next entry)."""
        indent, content, _ = self.entries[i]
        if _dash(content):
            return self.sequence(i, indent)
        match = _key_line(content)
        if match:
            return self.mapping(i, indent, match)
        return self.inline(i, content, indent)

    def inline(self, i: int, text: str, indent: int):
        """(value, next entry) of a scalar or flow collection written on entry i after
        `key: ` or `- ` (`indent`: the enclosing block's); a flow may go on over the next
        lines, indented further."""
        first = text[0]
        if ":" not in text and first not in _INDICATORS:
            return _plain(text), i + 1
        if first not in "[{":
            return _scalar(text), i + 1
        line, breaks = self.entries[i][2], []
        if _NAMES.fullmatch(text):  # [a, b, c]: the common flow, split at once
            names = text[1:-1].split(",") if text[1:-1].strip(" ") else []
            items = LineList(_plain(name.strip(" ")) for name in names)
            items.line, items.item_lines = line, [line] * len(items)
            return items, i + 1
        if _PAIRS.fullmatch(text):  # {a: 1, b: x}: the common flow mapping
            pairs = [pair.split(":") for pair in text[1:-1].split(",")] if text[1:-1].strip(" ") else []
            if any(len(key) > _KEY_CHARS for key, _ in pairs):
                raise _NotPlain
            mapping = LineDict((_plain(key.strip(" ")), _plain(value.strip(" "))) for key, value in pairs)
            if len(mapping) != len(pairs):
                raise _NotPlain  # a key written twice
            mapping.line = line
            return mapping, i + 1
        depth = _depth(text)
        if depth:
            parts, length = [text], len(text)
            while depth:
                i += 1
                if i == len(self.entries):
                    raise _NotPlain
                more, number = self.entries[i][1], self.entries[i][2]
                if number != line + len(breaks) + 1 or self.entries[i][0] <= indent \
                        or "'" in more or '"' in more or "'" in text or '"' in text:
                    raise _NotPlain  # a blank or comment line inside (folding), too little indent, quotes
                breaks.append(length + 1)
                parts.append(more)
                length += 1 + len(more)
                depth += _depth(more)
            text = " ".join(parts)
        value, end = _Flow(text, line, breaks).node(0)
        if end != len(text):
            raise _NotPlain
        return value, i + 1

    def mapping(self, i: int, indent: int, match):
        """The block mapping whose first key is on entry i (`match`: its _key_line answer)."""
        entries, count = self.entries, len(self.entries)
        result = LineDict()
        result.line = entries[i][2]
        while True:
            if match is None:
                raise _NotPlain
            key, rest = match
            if key in result:
                raise _NotPlain  # PyYAML's loader names both lines
            if rest is not None:
                result[key], i = self.inline(i, rest, indent)
            elif i + 1 < count and entries[i + 1][0] > indent:
                result[key], i = self.node(i + 1)
            elif i + 1 < count and entries[i + 1][0] == indent and _dash(entries[i + 1][1]):
                result[key], i = self.sequence(i + 1, indent)  # a sequence may sit at its key's indent
            else:
                result[key], i = None, i + 1
            if i >= count or entries[i][0] < indent:
                return result, i
            if entries[i][0] > indent:
                raise _NotPlain
            match = _key_line(entries[i][1])

    def sequence(self, i: int, indent: int):
        entries, count = self.entries, len(self.entries)
        result = LineList()
        result.line = entries[i][2]
        result.item_lines = lines = []
        while True:
            _, content, line = entries[i]
            rest = content[1:].lstrip(" ")
            if not rest:
                raise _NotPlain  # an empty item, or one on the lines below
            match = None
            if ":" not in rest and rest[0] not in _INDICATORS:
                result.append(_plain(rest))  # the common item: a name or a number
                i += 1
            elif _dash(rest):
                entries[i] = (indent + len(content) - len(rest), rest, line)  # a node starting on the item's line
                value, i = self.sequence(i, entries[i][0])
                result.append(value)
            elif rest[0] not in "[{'\"" and (match := _key_line(rest)):
                entries[i] = (indent + len(content) - len(rest), rest, line)
                value, i = self.mapping(i, entries[i][0], match)
                result.append(value)
            else:
                value, i = self.inline(i, rest, indent)
                result.append(value)
            lines.append(line)
            if i >= count or entries[i][0] < indent:
                return result, i
            if entries[i][0] > indent:
                raise _NotPlain
            if not _dash(entries[i][1]):
                return result, i  # a key after a sequence at its key's indent


def _scalar(text: str):
    """A one-line scalar after `key: ` or `- `: quoted, or plain."""
    first = text[0]
    if first == "'":
        if not text.endswith("'") or len(text) < 2 or "'" in text[1:-1].replace("''", ""):
            raise _NotPlain
        return text[1:-1].replace("''", "'")
    if first == '"':
        if not text.endswith('"') or len(text) < 2 or '"' in text[1:-1] or "\\" in text:
            raise _NotPlain
        return text[1:-1]
    if (first in _INDICATORS and not (first == "-" and text[1:2] and text[1:2] in "0123456789.")) \
            or ": " in text or text.endswith(":"):
        raise _NotPlain
    return _plain(text)


class _Flow:
    """A flow collection on one line."""

    def __init__(self, text: str, line: int, breaks: list[int]):
        self.text, self.first_line, self.breaks = text, line, breaks

    def line(self, pos: int) -> int:
        """The file line of position `pos` (`breaks`: where each line after the first starts)."""
        return self.first_line + bisect.bisect_right(self.breaks, pos) if self.breaks else self.first_line

    def skip(self, pos: int) -> int:
        return _SPACES.match(self.text, pos).end()

    def node(self, pos: int):
        text = self.text
        first = text[pos]
        if first == "[":
            return self.sequence(pos)
        if first == "{":
            return self.mapping(pos)
        return self.scalar(pos)

    def scalar(self, pos: int):
        text = self.text
        first = text[pos]
        if first in "'\"":
            end = text.find(first, pos + 1)
            while first == "'" and end >= 0 and text[end + 1:end + 2] == "'":
                end = text.find("'", end + 2)
            if end < 0 or (first == '"' and "\\" in text[pos:end]):
                raise _NotPlain
            return text[pos + 1:end].replace("''", "'") if first == "'" else text[pos + 1:end], end + 1
        match = _FLOW_PLAIN.match(text, pos)
        if match is None:
            raise _NotPlain
        return _plain(match.group().rstrip(" ")), match.end()

    def sequence(self, pos: int):
        result = LineList()
        result.line, result.item_lines = self.line(pos), []
        pos = self.skip(pos + 1)
        if self.text[pos] == "]":
            return result, pos + 1
        while True:
            start = pos
            value, pos = self.node(pos)
            pos = self.skip(pos)
            if self.text[pos] == ":":
                raise _NotPlain  # a single-pair mapping inside a sequence
            result.append(value)
            result.item_lines.append(self.line(start))
            pos = self.end_or_next(pos, "]")
            if pos < 0:
                return result, -pos

    def mapping(self, pos: int):
        text = self.text
        result = LineDict()
        result.line = self.line(pos)
        pos = self.skip(pos + 1)
        if text[pos] == "}":
            return result, pos + 1
        while True:
            if text[pos] in "[{":
                raise _NotPlain
            start = pos
            key, pos = self.scalar(pos)
            if text[pos] == " ":
                pos = self.skip(pos)
            if pos - start > _KEY_CHARS:
                raise _NotPlain
            if text[pos:pos + 2] != ": " or key in result:
                raise _NotPlain  # `{a}`, `{a:1}`, a key written twice
            value, pos = self.node(self.skip(pos + 2))
            result[key] = value
            pos = self.end_or_next(self.skip(pos), "}")
            if pos < 0:
                return result, -pos

    def end_or_next(self, pos: int, close: str) -> int:
        """After an item: minus the position past `close`, or the next item's position after ','."""
        char = self.text[pos]
        if char == close:
            return -(pos + 1)
        if char != ",":
            raise _NotPlain
        pos = self.skip(pos + 1)
        if self.text[pos] in ",]}":
            raise _NotPlain  # a trailing or doubled comma
        return pos
