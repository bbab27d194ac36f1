"""JSON loading that remembers line numbers, as _yaml does for YAML.

Objects come back as `_yaml.LineDict` and arrays as `_yaml.LineList` (with the
line of each item), so net file errors and checker problems in a .json file
point at their line. A key written twice in one object is refused naming both
lines. Faults raise json.JSONDecodeError (with its line), RecursionError on
absurd nesting, or ValueError for bytes that are not text.

The standard library's scanner does the values; this module parses only
objects and arrays, to note where they start. An array of plain numbers (a
tensor's float_data) or of strings is handed whole to the C decoder, so big
weight lists and name lists cost what json.loads costs.
"""
from __future__ import annotations

import json
import re
from json.decoder import JSONDecodeError, scanstring
from json.scanner import py_make_scanner

from pycaffe2._yaml import LineDict, LineList

_SPACE = re.compile(r"[ \t\n\r]*")
_STRING = r'"[^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*"'
_PLAIN_ARRAY = re.compile(  # numbers only, or strings only: the C decoder takes them whole
    r"\[[ \t\n\r]*-?[0-9][0-9eE.+\- \t\n\r,]*\]|\[[ \t\n\r]*\]"
    rf"|\[[ \t\n\r]*{_STRING}(?:[ \t\n\r]*,[ \t\n\r]*{_STRING})*[ \t\n\r]*\]")


class _Decoder(json.JSONDecoder):
    def __init__(self, text: str):
        super().__init__(strict=True)
        self.text, self.seen_index, self.seen_line = text, 0, 1
        self.parse_object = self._object
        self.parse_array = self._array
        self.scan_once = py_make_scanner(self)

    def line(self, index: int) -> int:
        """The 1-based line of `index`; parsing moves forward, so lines are counted on from the last."""
        if index < self.seen_index:
            return self.text.count("\n", 0, index) + 1
        self.seen_line += self.text.count("\n", self.seen_index, index)
        self.seen_index = index
        return self.seen_line

    def _skip(self, text: str, index: int) -> int:
        return _SPACE.match(text, index).end()

    def _value(self, text: str, index: int):
        try:
            return self.scan_once(text, index)
        except StopIteration as stop:
            raise JSONDecodeError("Expecting value", text, stop.value) from None

    def _object(self, state, strict, scan_once, object_hook, object_pairs_hook, memo=None):
        text, index = state  # index: just past '{'
        result = LineDict()
        result.line = self.line(index - 1)
        first_lines: dict[str, int] = {}
        index = self._skip(text, index)
        if text[index:index + 1] == "}":
            return result, index + 1
        while True:
            if text[index:index + 1] != '"':
                raise JSONDecodeError("Expecting property name enclosed in double quotes", text, index)
            key_line = self.line(index)
            key, index = scanstring(text, index + 1, True)
            if key in first_lines:
                raise JSONDecodeError(f"duplicate key {key!r:.60} on lines {first_lines[key]} and "
                                      f"{key_line}", text, index)
            first_lines[key] = key_line
            index = self._skip(text, index)
            if text[index:index + 1] != ":":
                raise JSONDecodeError("Expecting ':' delimiter", text, index)
            value, index = self._value(text, self._skip(text, index + 1))
            result[key] = value
            index = self._skip(text, index)
            char = text[index:index + 1]
            if char == "}":
                return result, index + 1
            if char != ",":
                raise JSONDecodeError("Expecting ',' delimiter", text, index)
            index = self._skip(text, index + 1)

    def _array(self, state, scan_once):
        text, index = state  # index: just past '['
        result = LineList()
        result.line = self.line(index - 1)
        result.item_lines = []
        numbers = _PLAIN_ARRAY.match(text, index - 1)
        if numbers:
            try:
                result.extend(json.loads(numbers.group()))
                return result, numbers.end()
            except JSONDecodeError:
                pass  # not plain values after all: parse item by item for the error's place
        index = self._skip(text, index)
        if text[index:index + 1] == "]":
            return result, index + 1
        while True:
            result.item_lines.append(self.line(index))
            value, index = self._value(text, index)
            result.append(value)
            index = self._skip(text, index)
            char = text[index:index + 1]
            if char == "]":
                return result, index + 1
            if char != ",":
                raise JSONDecodeError("Expecting ',' delimiter", text, index)
            index = self._skip(text, index + 1)


def load(data: str | bytes):
    """Parse JSON text (bytes in UTF-8, -16 or -32, as json.loads takes them)."""
    text = data.decode(json.detect_encoding(data)) if isinstance(data, bytes) else data
    if text.startswith("\ufeff"):
        raise JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    decoder = _Decoder(text)
    return decoder.decode(text)
