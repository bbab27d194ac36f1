"""Caffe2's Python op, front end: what core.Net.Python and core.CreatePythonOperator do.

    def f(inputs, outputs):
        outputs[0].feed(2 * inputs[0].data)
    net.Python(f)(["x"], ["y"])

`register` builds the functions (from a (builder, args, kwargs) tuple, or a
python_func_type class with forward and backward), registers them in this
process's registry under a fresh token and returns it; the op carries only
the token. A builder tuple is called here, once, and never pickled: Caffe2
pickled it into the op for other processes to unpickle, which pycaffe2 never
does with anything read from a net (schema/inference/python.py).
"""
from __future__ import annotations

from pycaffe2.c_module import BoundWorkspace
from pycaffe2.core import CreateOperator
from pycaffe2.schema.inference.python import register_function, register_gradient_function


class RunningWorkspace(BoundWorkspace):
    """The workspace a Python op runs in, in Caffe2's spelling of it (`ws.blobs[name].fetch()`,
    `ws.fetch_blob`, `ws.create_blob`, `ws.run`): what a pass_workspace function gets."""

    def __init__(self, workspace):  # the running executor Workspace, not a new one
        self.workspace = workspace

    def FetchBlob(self, name):
        return self.workspace.FetchBlob(str(name))

    def FeedBlob(self, name, value, device_option=None) -> bool:
        return self.workspace.FeedBlob(str(name), value, device_option)

    def HasBlob(self, name) -> bool:
        return self.workspace.HasBlob(str(name))

    def Blobs(self) -> list:
        return self.workspace.Blobs()


def _built(function):
    """A (builder, args, kwargs) tuple called into the function it builds."""
    if not isinstance(function, tuple):
        return function
    if len(function) != 3:
        raise ValueError("a Python op builder must be a tuple (builder, args, kwargs)")
    builder, args, kwargs = function
    return builder(*args, **kwargs)


def _with_workspace_view(function):
    def call(inputs, outputs, workspace):
        return function(inputs, outputs, RunningWorkspace(workspace))
    call.__name__ = getattr(function, "__name__", "python_op")
    return call


def register(f, grad_f=None, python_func_type=None, pass_workspace: bool = False) -> str:
    """Register f (and grad_f) in this process; returns the token the op names."""
    if python_func_type is not None:
        instance = python_func_type(f)
        f, grad_f = instance.forward, getattr(instance, "backward", None)
    elif grad_f is not None and isinstance(f, tuple) != isinstance(grad_f, tuple):
        raise ValueError("a builder tuple has to be passed to both f and grad_f or neither")
    f, grad_f = _built(f), _built(grad_f)
    token = register_function(_with_workspace_view(f) if pass_workspace else f, pass_workspace)
    if grad_f is not None:
        register_gradient_function(token, grad_f)
    return token


def python_op_args(f, grad_f=None, python_func_type=None, pass_workspace=False, grad_output_indices=None,
                   grad_input_indices=None) -> dict:
    """The Python op's args for these functions (registering them)."""
    return {"token": register(f, grad_f, python_func_type, pass_workspace),
            "grad_output_indices": list(grad_output_indices or []),
            "grad_input_indices": list(grad_input_indices or [])}


def CreatePythonOperator(f, inputs, outputs, grad_f=None, pass_workspace=False, python_func_type=None,
                         *args, **kwargs):
    """A Python OperatorDef calling f(inputs, outputs) (f(inputs, outputs, workspace) with
    pass_workspace); grad_output_indices / grad_input_indices may come in kwargs."""
    indices = {key: kwargs.pop(key, None) for key in ("grad_output_indices", "grad_input_indices")}
    kwargs.update(python_op_args(f, grad_f, python_func_type, pass_workspace, **indices))
    return CreateOperator("Python", inputs, outputs, *args, **kwargs)
