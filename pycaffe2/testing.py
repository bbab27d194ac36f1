"""Helpers for op tests: run one op, compare with a NumPy reference.

    check_reference("HardSigmoid", [x], reference, args={"alpha": 0.3})

runs the op alone in a fresh Workspace, compares every output with
`reference(*inputs, **args)` (which returns one array or a tuple) and, when
the schema lets input i run in place on output o, runs it that way too and
expects the same result.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.executor import Workspace
from pycaffe2.gradient_checker import central_differences
from pycaffe2.proto import caffe2_pb2
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.schema import get_schema
from pycaffe2.schema.args import make_argument
from pycaffe2.schema.bind import TensorInfo, infer_op


def make_op(op_type: str, inputs, outputs, args=None) -> caffe2_pb2.OperatorDef:
    """An OperatorDef with args typed by the op's schema."""
    schema = get_schema(op_type)
    op = caffe2_pb2.OperatorDef(type=op_type, input=inputs, output=outputs)
    for name, value in (args or {}).items():
        spec = schema.args.get(name) if schema else None
        op.arg.append(make_argument(name, value, spec.types if spec else ()))
    return op


def run_op(op_type: str, inputs: list, args=None, num_outputs: int | None = None,
           input_names=None, output_names=None, seed: int = 0, device_option=None) -> list:
    """Run one op on `inputs` (arrays) and return its outputs as arrays; with a
    `device_option` (CUDA), the inputs are fed to that device and the op runs there."""
    schema = get_schema(op_type)
    input_names = input_names or [f"in{i}" for i in range(len(inputs))]
    if output_names is None:
        count = num_outputs if num_outputs is not None else schema.num_outputs.min
        output_names = [f"out{i}" for i in range(count)]
        for i, o in schema.inplace_enforced:  # e.g. SpatialBN's running stats
            if i < len(input_names) and o < count:
                output_names[o] = input_names[i]
    workspace = Workspace("_op_test", seed=seed)
    for name, value in zip(input_names, inputs):
        workspace.FeedBlob(name, value, device_option=device_option)
    op = make_op(op_type, input_names, output_names, args)
    if device_option is not None:
        op.device_option.CopyFrom(device_option)
    workspace.RunOperatorOnce(op)
    return [workspace.FetchBlob(name) for name in output_names]


def assert_outputs_close(got, expected, atol=1e-4, rtol=1e-4, names=None) -> None:
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    for index, (g, e) in enumerate(zip(got, expected)):
        if e is None:
            continue
        e = np.asarray(e)
        label = names[index] if names else f"output {index}"
        assert g.shape == e.shape, f"{label}: shape {g.shape} != reference {e.shape}"
        if g.dtype.kind in "biufc":
            np.testing.assert_allclose(g, e, atol=atol, rtol=rtol, err_msg=label)
        else:  # strings, bools held as objects: exact
            np.testing.assert_array_equal(g, e, err_msg=label)


CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)


def device_option(device: str):
    """The DeviceOption a test's `device` parameter ("cpu" or "cuda") stands for."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return None if device == "cpu" else CUDA


def check_reference(op_type: str, inputs: list, reference, args=None, num_outputs=None,
                    atol=1e-4, rtol=1e-4, check_inplace=True, device: str = "cpu") -> list:
    """Compare the op on `device` with `reference`; also in place where the schema
    allows it, and the schema's inferred output shapes and types with the outputs.
    Returns the op's outputs."""
    args, option = args or {}, device_option(device)
    got = run_op(op_type, inputs, args, num_outputs, device_option=option)
    expected = reference(*inputs, **args)
    assert_outputs_close(got, expected, atol, rtol)
    assert_inference_agrees(op_type, inputs, args, got)
    if check_inplace:
        schema = get_schema(op_type)
        for i, o in sorted(schema.inplace_allowed):
            if i < len(inputs) and o < len(got):
                in_names = [f"in{k}" for k in range(len(inputs))]
                out_names = [f"out{k}" for k in range(len(got))]
                for ei, eo in {(i, o), *schema.inplace_enforced}:  # enforced pairs always hold
                    if ei < len(in_names) and eo < len(out_names):
                        out_names[eo] = in_names[ei]
                inplace = run_op(op_type, inputs, args, input_names=in_names, output_names=out_names,
                                 device_option=option)
                assert_outputs_close(inplace, expected, atol, rtol)
    return got


def assert_inference_agrees(op_type: str, inputs: list, args, outputs: list) -> None:
    """The schema's shape and type inference, given the inputs' shapes and dtypes,
    predicts the shape and dtype of every output the kernel produced (or says unknown)."""
    op = make_op(op_type, [f"in{i}" for i in range(len(inputs))], [f"out{i}" for i in range(len(outputs))],
                 args)
    inputs, outputs = [_array_of(v) for v in inputs], [_array_of(v) for v in outputs]
    infos = [TensorInfo(value.shape, value.dtype.name) if isinstance(value, np.ndarray) else None
             for value in inputs]
    for index, (info, value) in enumerate(zip(infer_op(op, infos), outputs)):
        if info is None or not isinstance(value, np.ndarray):
            continue
        assert (tuple(info.shape), info.dtype) == (value.shape, value.dtype.name), (
            f"{op_type} output {index}: inference says {info.describe()}, "
            f"the kernel gave {list(value.shape)} {value.dtype.name}")


def _array_of(value):
    """What shape inference sees of a blob value: an Int8 tensor shows as its data."""
    return value.data if isinstance(value, Int8Tensor) else value


def numeric_gradient(op_type: str, inputs: list, wrt: int, output_grads: list, args=None,
                     num_outputs=None, delta: float = 1e-3) -> np.ndarray:
    """d(sum_o <Y_o, dY_o>)/d(inputs[wrt]) by central differences, in float64.

    `output_grads[o]` is the gradient fed to output o (None: the output does not
    count). Comparing a gradient op's dX with this checks it against its forward op.
    """
    inputs = [np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f" else v for v in inputs]

    trial = list(inputs)
    trial[wrt] = np.array(inputs[wrt])  # moved in place by central_differences

    def objective():
        outputs = run_op(op_type, trial, args, num_outputs)
        return sum(float(np.sum(y.astype(np.float64) * g))
                   for y, g in zip(outputs, output_grads) if g is not None)

    return central_differences(objective, trial[wrt], delta)


def check_gradient_op(forward_type: str, inputs: list, gradient_type: str, gradient_inputs: list,
                      wrt: dict, output_grads: list, args=None, num_outputs=None,
                      atol=1e-2, rtol=1e-2) -> list:
    """Run `gradient_type` on `gradient_inputs` and compare its outputs with
    numeric gradients of `forward_type`: `wrt` maps gradient output index ->
    forward input index. Returns the gradient op's outputs."""
    count = max(max(wrt) + 1, get_schema(gradient_type).num_outputs.min)
    got = run_op(gradient_type, gradient_inputs, args, num_outputs=count)
    assert_inference_agrees(gradient_type, gradient_inputs, args or {}, got)
    for out_index, in_index in wrt.items():
        expected = numeric_gradient(forward_type, inputs, in_index, output_grads, args, num_outputs)
        np.testing.assert_allclose(got[out_index], expected, atol=atol, rtol=rtol,
                                   err_msg=f"{gradient_type} output {out_index} vs numeric d/d input {in_index}")
    return got


def check_devices(op_type: str, inputs: list, args=None, num_outputs=None, atol=1e-5, rtol=1e-5) -> list:
    """Run the op on the CPU and on CUDA (float32 inputs) and compare every output.
    Returns the CUDA outputs."""
    cpu = run_op(op_type, inputs, args, num_outputs)
    gpu = run_op(op_type, inputs, args, num_outputs, device_option=CUDA)
    for i, (g, c) in enumerate(zip(gpu, cpu)):
        # The devices sum in different orders; a float sum's error grows with its largest
        # terms, so an element that cancels to near zero gets the output's scale in atol.
        finite = np.abs(c[np.isfinite(c)]) if c.dtype.kind in "fc" else np.zeros(0)
        scale = max(1.0, float(finite.max(initial=0.0)))
        assert_outputs_close([g], [c], atol * scale, rtol, names=[f"{op_type} CUDA output {i}"])
    return gpu
