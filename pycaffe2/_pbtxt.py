"""Where each top-level `op` block of a NetDef in protobuf text format starts,
so checker problems in a .pbtxt file carry lines as YAML and JSON ones do.
(protobuf's own text parser keeps no positions.) Only the text's structure is
read here: strings, comments and nesting; the parser proper checks the rest."""
from __future__ import annotations

import re

_TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<open>[{<]) | (?P<close>[}>])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*) | (?P<other>.)
""", re.VERBOSE | re.DOTALL)


def op_lines(text: str) -> dict[int, int]:
    """{op index: 1-based line of its `op` field name} for the top-level ops."""
    lines, depth, line, count = {}, 0, 1, 0
    pending = None  # the line of a top-level `op` name still waiting for its '{'
    for match in _TOKEN.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "open":
            if depth == 0 and pending is not None:
                lines[count] = pending
                count += 1
            depth, pending = depth + 1, None
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "word" and depth == 0:
            pending = line if token == "op" else None
        elif kind not in ("space", "comment") and not (kind == "other" and token == ":"):
            pending = None
        line += token.count("\n")
    return lines
