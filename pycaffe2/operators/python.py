"""Python-family kernels (CPU): Python and PythonGradient call a function this
process registered (schema/inference/python.py), on TensorCPU wrappers as
Caffe2's binding gives them, and the gradient maker lays out PythonGradient's
blobs as Caffe2 does. Inputs are read-only views, so a function cannot change
the workspace's arrays behind the op's back; outputs are written only after
the function returns, so one that raises leaves every blob as it was. On CUDA
the op runs as Caffe2's GPUFallbackOp ran it: GPU inputs copied to the host,
the function called there, its outputs copied to the GPU."""
from __future__ import annotations

import functools

import numpy as np

from pycaffe2.devices.cuda import is_gpu_array
from pycaffe2.operators import _cuda as cuda
from pycaffe2.operators.registry import GradientError, register_cpu, register_cuda, register_gradient
from pycaffe2.schema.inference import ShapeError
from pycaffe2.schema.inference.python import PICKLED_ARGS, registered_function
from pycaffe2.tensor_proto import dtype_of


class TensorCPU:
    """One blob as a Python op's function sees it (Caffe2's TensorCPU): `.data` is the
    NumPy array itself, `.shape` its shape; `.feed(array)` replaces it with a copy,
    `.reshape(shape)` resizes it (keeping the values when the size is unchanged,
    else zeros of the same type, float32 for a new blob)."""

    def __init__(self, array: np.ndarray | None = None, writable: bool = True):
        if array is None:
            array = np.zeros((0,), np.float32)
        elif not writable:
            array = array.view()
            array.flags.writeable = False
        self._array, self._writable = array, writable

    @property
    def data(self) -> np.ndarray:
        return self._array

    @property
    def shape(self) -> tuple:
        return self._array.shape

    _shape = shape

    def fetch(self) -> np.ndarray:
        return self._array.copy()

    def _check_writable(self) -> None:
        if not self._writable:
            raise ValueError("a Python op's inputs are read-only; write to its outputs")

    def feed(self, value) -> bool:
        self._check_writable()
        self._array = np.array(value)
        return True

    def reshape(self, shape) -> None:
        self._check_writable()
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape)) == self._array.size:
            self._array = self._array.reshape(shape)
        else:
            self._array = np.zeros(shape, self._array.dtype)

    _reshape = reshape

    def init(self, shape, data_type) -> None:
        """Caffe2's init: a zeroed array of `shape` and TensorProto data type `data_type`."""
        self._check_writable()
        self._array = np.zeros(tuple(int(d) for d in shape), dtype_of(data_type))


def _wrap_outputs(output_names, input_names, inputs, workspace) -> list[TensorCPU]:
    """An output starts as its blob's current array (copied): an input it shares a name
    with, or the workspace's; else empty."""
    current = dict(zip(input_names, inputs))
    blobs = getattr(workspace, "blobs", {})
    wrappers = []
    for name in output_names:
        value = current.get(name, blobs.get(name))
        wrappers.append(TensorCPU(np.array(value) if isinstance(value, np.ndarray) else None))
    return wrappers


def _python_kernel(gradient: bool, token, pickled_builder, pickled_grad_builder, input_names, output_names,
                   workspace):
    pickled = next((name for name, value in zip(PICKLED_ARGS, (pickled_builder, pickled_grad_builder))
                    if value), None)
    registered = registered_function(token, pickled, gradient)
    function = registered.gradient if gradient else registered.forward
    takes_workspace = registered.pass_workspace and not gradient  # as Caffe2: gradients never take it
    if takes_workspace and workspace is None:
        raise ValueError("the function takes the workspace (pass_workspace), and this net was compiled "
                         "without one: create or run it through a Workspace")

    def run(*inputs):
        tensors = [TensorCPU(x, writable=False) if isinstance(x, np.ndarray) else x for x in inputs]
        outputs = _wrap_outputs(output_names, input_names, inputs, workspace)
        if takes_workspace:
            function(tensors, outputs, workspace)
        else:
            function(tensors, outputs)
        return tuple(output.data for output in outputs)
    return run


@register_cpu("Python", specialize=True)
def python(*, token, pickled_builder, pickled_grad_builder, input_names, output_names, workspace):
    return _python_kernel(False, token, pickled_builder, pickled_grad_builder, input_names, output_names,
                          workspace)


@register_cpu("PythonGradient", specialize=True)
def python_gradient(*, token, pickled_builder, pickled_grad_builder, input_names, output_names, workspace):
    return _python_kernel(True, token, pickled_builder, pickled_grad_builder, input_names, output_names,
                          workspace)


def _on_host(factory):
    """The CUDA twin of a Python-op kernel factory (Caffe2's GPUFallbackOp)."""
    @functools.wraps(factory)  # the registry reads the CPU factory's args through this
    def make(**args):
        run = factory(**args)

        def run_on_host(*inputs):
            outputs = run(*(x.get() if is_gpu_array(x) else x for x in inputs))
            return tuple(cuda.as_gpu(y) for y in outputs)
        return run_on_host
    return make


register_cuda("Python", specialize=True)(_on_host(python))
register_cuda("PythonGradient", specialize=True)(_on_host(python_gradient))


@register_gradient("Python")
def make_python_gradient(g):
    """Inputs: forward inputs, forward outputs, output gradients (grad_output_indices'
    when given); outputs: input gradients (grad_input_indices' when given)."""
    try:
        registered_function(g.arg("token"), None, gradient=True)
    except ShapeError as exc:
        raise GradientError(str(exc)) from exc
    n_in, n_out = len(g.op.input), len(g.op.output)
    go_indices = list(g.arg("grad_output_indices")) or list(range(n_out))
    gi_indices = list(g.arg("grad_input_indices")) or list(range(n_in))
    for kind, indices, count in (("grad_output_indices", go_indices, n_out),
                                 ("grad_input_indices", gi_indices, n_in)):
        if any(not 0 <= i < count for i in indices):
            raise GradientError(f"{kind} {indices} must lie in 0..{count - 1}")
    inputs = [g.I(i) for i in range(n_in)] + [g.O(i) for i in range(n_out)] + [g.GO(i) for i in go_indices]
    return [g.Op("PythonGradient", inputs, [g.GI(i) for i in gi_indices])]
