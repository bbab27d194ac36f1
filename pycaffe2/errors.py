"""Every error class of the project, in one place.

Every error a user can provoke with a file, a schema, a net or a command is one
of these. They derive from RuntimeError because Caffe2's Python API raised
RuntimeError for the same faults, and ported scripts catch that.

    PyCaffe2Error                 base of them all
      LocatedError                file, line (YAML), op index and type
        SchemaError               a schema file is malformed, or an op has no schema
        NetFileError              a net or model file cannot be read or written
        ConversionError           an ONNX model cannot become a NetDef, or a NetDef an
                                  ONNX model (file, node or op index, type, what)
      ShapeError                  an op's args, input/output counts or input shapes cannot
                                  work (also a ValueError); raised by the schema's inference
                                  rules, which the kernels call too, so validate and run agree
      GradientError               a backward pass cannot be built
        OrphanStopGradient        a StopGradient's output nothing reads (also a ValueError,
                                  as Caffe2 raised)
      NetError                    CreateNet refuses a net; lists every problem
      OpFailure                   an op failed while a net ran; names net, op, inputs
      DBError                     a DB cannot be opened, read or written
      CUDAUnavailable             CUDA was asked for and cannot be used here
      RunError                    `pycaffe2 run` was asked wrongly (bad feed, unknown ops): exit 2
      RunFailure                  a net of the model failed while it ran: exit 1
        WorkerLost                a Dask worker died mid-run; says what was lost

Messages say what is wrong and never start with the op's name: the layer
that knows where the op sits (the checker, CreateNet, OpFailure, the
backward-pass builder) prefixes "op N (Type)" once.
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


class ConversionError(LocatedError):
    """An ONNX model cannot be translated to NetDefs, or NetDefs exported to ONNX."""


class GradientError(PyCaffe2Error):
    """A backward pass cannot be built."""


class OrphanStopGradient(GradientError, ValueError):
    """A StopGradient writes a blob no op reads: the stop cuts nothing."""


class ShapeError(PyCaffe2Error, ValueError):
    """Args, counts or known input shapes and types that the op cannot take."""


class NetError(PyCaffe2Error):
    """A net cannot be created: it names the net and lists every problem."""


class OpFailure(PyCaffe2Error):
    """An op failed while a net ran."""

    def __init__(self, net_name, index, op_type, inputs, cause):
        self.net_name, self.op_index, self.op_type, self.cause = net_name, index, op_type, cause
        self.inputs = inputs
        described = ", ".join(inputs) if inputs else "none"
        super().__init__(f"Error running net {net_name}: op {index} ({op_type}) failed: {cause} "
                         f"[inputs: {described}]")


class DBError(PyCaffe2Error):
    """A DB cannot be opened, read or written; names the file (and byte offset)."""


class CUDAUnavailable(PyCaffe2Error):
    """CUDA was asked for and cannot be used here; the message says why."""


class RunError(PyCaffe2Error):
    """The run was asked for wrongly: a bad feed, a missing input, unknown ops."""


class RunFailure(PyCaffe2Error):
    """A net of the model failed while it ran."""


class WorkerLost(RunFailure):
    """A Dask worker died mid-run: names it and what was lost (batches re-run, or the
    iterations since the last checkpoint and how to resume)."""
