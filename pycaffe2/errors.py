"""The project's error types.

Every error a user can provoke with a file, a schema or a net is one of these,
and its message says where: the file, the line (YAML), the op index and type.
They derive from RuntimeError because Caffe2's Python API raised RuntimeError
for the same faults, and ported scripts catch that.
"""
from __future__ import annotations


class PyCaffe2Error(RuntimeError):
    """Base of all pycaffe2 errors."""


def location(file: str | None = None, line: int | None = None,
             op_index: int | None = None, op_type: str | None = None) -> str:
    """'file:line: op 3 (Conv)' with whichever parts are known."""
    parts = []
    if file:
        parts.append(f"{file}:{line}" if line else str(file))
    if op_index is not None:
        parts.append(f"op {op_index}" + (f" ({op_type})" if op_type else ""))
    elif op_type:
        parts.append(op_type)
    return ": ".join(parts)


class LocatedError(PyCaffe2Error):
    """An error tied to a place in a file or net."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 op_index: int | None = None, op_type: str | None = None):
        self.message, self.file, self.line = message, file, line
        self.op_index, self.op_type = op_index, op_type
        where = location(file, line, op_index, op_type)
        super().__init__(f"{where}: {message}" if where else message)


class SchemaError(LocatedError):
    """A schema file is malformed, or an op type has no schema."""


class NetFileError(LocatedError):
    """A net or model file cannot be read or written."""


class GradientError(PyCaffe2Error):
    """A backward pass cannot be built."""
