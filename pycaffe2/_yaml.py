"""Safe YAML loading that remembers line numbers, and the checks every loaded
YAML or JSON tree gets before it becomes protobuf messages.

Only YAML's plain types are built (SafeLoader); nothing in a file can name a
Python object. Mappings come back as `LineDict`, a dict that knows the line it
started on, so errors can point into the file.
"""
from __future__ import annotations

import re

import yaml

# libyaml's parser is fast but overflows the C stack (a crash, not an error)
# on deeply nested input; the pure-Python parser raises RecursionError instead.
# The C parser only gets text whose nesting is provably shallow: few flow
# brackets in all, and no deeply indented line.
_FAST_MAX_BRACKETS = 10_000
_DEEP_INDENT = re.compile(rb"^[ \t?:-]{1000,}", re.MULTILINE)


class LineDict(dict):
    """A dict with `.line`: the 1-based line where the mapping starts."""

    line: int | None = None


class LineList(list):
    """A list with `.line` and `.item_lines` (the line of each item)."""

    line: int | None = None
    item_lines: tuple[int, ...] | list[int] = ()  # set per instance by the loader


class _LineLoader(yaml.SafeLoader):
    pass


class _FastLineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_mapping(loader, node):
    # A key written twice in one mapping is refused (YAML says keys are unique;
    # PyYAML would let the last win). Keys that `<<` merges in may be overridden.
    own_keys = {id(key_node) for key_node, _ in node.value if key_node.tag != _MERGE_TAG}
    # Flatten merge keys the way SafeLoader does, then keep the line.
    loader.flatten_mapping(node)
    mapping = LineDict()
    first_lines: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping key is not a plain value", key_node.start_mark)
        if id(key_node) in own_keys:
            line = key_node.start_mark.line + 1
            if key in first_lines:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r:.60} on lines {first_lines[key]} and {line}",
                    key_node.start_mark)
            first_lines[key] = line
        mapping[key] = loader.construct_object(value_node, deep=True)
    mapping.line = node.start_mark.line + 1
    return mapping


def _construct_sequence(loader, node):
    items = LineList(loader.construct_object(child, deep=True) for child in node.value)
    items.line = node.start_mark.line + 1
    items.item_lines = [child.start_mark.line + 1 for child in node.value]
    return items


for _loader in (_LineLoader, _FastLineLoader):
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load(text: str | bytes):
    """Parse YAML safely; raises yaml.YAMLError (with a mark) on bad input,
    RecursionError on absurdly deep nesting. Plain net files are read by
    _yaml_subset, which gives the same tree; the rest by PyYAML."""
    from pycaffe2 import _yaml_subset
    data = text.encode("utf-8") if isinstance(text, str) else text
    if data.isascii():
        tree = _yaml_subset.load(data.decode("ascii"))
        if tree is not _yaml_subset.NOT_PLAIN:
            return tree
    return load_pyyaml(data)


def load_pyyaml(text: str | bytes):
    """`load` by PyYAML alone (what every file went through before _yaml_subset)."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    shallow = data.count(b"[") + data.count(b"{") <= _FAST_MAX_BRACKETS \
        and not _DEEP_INDENT.search(data)
    return yaml.load(data, Loader=_FastLineLoader if shallow else _LineLoader)


def resolvers(first: str) -> list:
    """The implicit resolvers (tag, pattern) the loaders try on a plain scalar starting with `first`."""
    table = _FastLineLoader.yaml_implicit_resolvers
    return table.get(first, []) + table.get(None, [])


def error_line(exc: yaml.YAMLError) -> int | None:
    """The 1-based line a YAML error points at, if it says."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def line_of(obj, default: int | None = None) -> int | None:
    return getattr(obj, "line", None) or default


def tree_problem(tree, max_values: int, data: bytes | None = None) -> tuple[str, int | None] | None:
    """(what is wrong, line) for a loaded YAML/JSON tree, or None: text that no
    protobuf string can hold (escapes can spell lone surrogates, \\ud800, in
    keys as in values), or more than `max_values` values once YAML aliases are
    expanded (a billion laughs, or an alias inside itself). Walks without
    recursion. Given the text it came from (`data`, with `max_values` at least
    twice its length), the walk is skipped when the text cannot hold either: no
    backslash (no escapes; decoding refuses lone surrogates) and no '*' (no alias,
    so no more than about one value per character)."""
    if data is not None and b"\\" not in data and b"*" not in data and max_values >= 2 * len(data):
        return None
    stack, count = [(tree, tree)], 0
    while stack:
        node, container = stack.pop()
        count += 1
        if count > max_values:
            return (f"more than {max_values:,} values once aliases are expanded "
                    "(or an alias refers to itself)"), None
        if isinstance(node, dict):
            stack += [(item, node) for pair in node.items() for item in pair]
        elif isinstance(node, list):
            stack += [(item, node) for item in node]
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                text = node[max(exc.start - 10, 0):exc.end + 10]
                return f"text {text!r} is not valid Unicode (a lone surrogate)", line_of(container)
    return None
