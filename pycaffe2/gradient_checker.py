"""Numeric gradient checks: registered gradients vs central differences.

`check_op_gradient` checks one op the way Caffe2's GradientChecker does: the
loss is 1/2 * sum of the squares of the chosen outputs (so each output's
gradient is the output itself), the op's gradient ops come from the registry,
and each element of the checked input is moved by +-stepsize. Float inputs
are promoted to float64 first where the op allows it, so the differences
measure the gradient, not float32 rounding. `check_net_gradient` does the same
for a whole net and its backward pass, with loss = sum of the chosen outputs.

Both return a GradientReport and raise nothing; `assert report.ok, report`
prints the worst element.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pycaffe2.executor import Workspace
from pycaffe2.gradient import GetBackwardPass, GetGradientForOp, GradientSlice
from pycaffe2.proto import caffe2_pb2


@dataclass
class GradientReport:
    ok: bool
    name: str
    analytic: np.ndarray
    numeric: np.ndarray

    def __str__(self) -> str:
        if self.analytic.shape != self.numeric.shape:
            return (f"gradient of {self.name}: shape {list(self.analytic.shape)} "
                    f"!= input shape {list(self.numeric.shape)}")
        error = np.abs(self.analytic - self.numeric)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(error)), error.shape)) if error.size else ()
        verdict = "ok" if self.ok else "MISMATCH"
        return (f"gradient of {self.name}: {verdict}; worst element {list(worst)}: analytic "
                f"{self.analytic[worst]:.6g}, numeric {self.numeric[worst]:.6g} (|diff| {error.max():.3g})")


def _promoted(value, promote: bool):
    array = np.asarray(value)
    return array.astype(np.float64) if promote and array.dtype == np.float32 else array


def central_differences(loss, x: np.ndarray, stepsize: float) -> np.ndarray:
    """d loss() / d x by central differences; `loss` reads `x`, which is moved in place
    one element at a time and restored."""
    estimate = np.zeros(x.shape, np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + stepsize
        up = loss()
        x[index] = original - stepsize
        down = loss()
        x[index] = original
        estimate[index] = (up - down) / (2 * stepsize)
    return estimate


def check_op_gradient(op: caffe2_pb2.OperatorDef, inputs: list, input_to_check: int,
                      outputs_with_grads=(0,), stepsize: float = 1e-3, threshold: float = 5e-3,
                      float64: bool = True) -> GradientReport:
    """Check the registered gradient of `op` for input `input_to_check`."""
    values = [_promoted(v, float64) for v in inputs]
    workspace = Workspace("_gradient_check")

    def forward() -> list:
        for name, value in zip(op.input, values):
            workspace.FeedBlob(name, value)
        workspace.RunOperatorOnce(op)
        return [workspace.FetchBlob(op.output[i]) for i in outputs_with_grads]

    def loss() -> float:
        return sum(0.5 * float(np.sum(np.square(y, dtype=np.float64))) for y in forward())

    outputs = forward()
    g_output = [None] * len(op.output)
    for i, y in zip(outputs_with_grads, outputs):
        g_output[i] = f"{op.output[i]}_grad"
        workspace.FeedBlob(g_output[i], y)
    grad_ops, g_input = GetGradientForOp(op, g_output)
    workspace.RunOperatorsOnce(grad_ops)
    analytic = _dense(workspace, g_input[input_to_check], values[input_to_check])
    numeric = central_differences(loss, values[input_to_check], stepsize)
    return _report(op.input[input_to_check], analytic, numeric, threshold)


def check_net_gradient(net: caffe2_pb2.NetDef, outputs_with_grad, input_values: dict, inputs_to_check,
                       stepsize: float = 1e-3, threshold: float = 5e-3, float64: bool = True,
                       **backward_options) -> list[GradientReport]:
    """Check the backward pass of `net` (built by GetBackwardPass with
    `backward_options`) for each blob in `inputs_to_check`; loss = sum of the outputs."""
    values = {name: _promoted(v, float64) for name, v in input_values.items()}
    workspace = Workspace("_net_gradient_check")

    def forward(ops) -> None:
        for name, value in values.items():
            workspace.FeedBlob(name, value)
        workspace.RunOperatorsOnce(ops)

    def loss() -> float:
        forward(net.op)
        return sum(float(np.sum(workspace.FetchBlob(y), dtype=np.float64)) for y in outputs_with_grad)

    # Seeds fed as ones of each output's own dtype (a ConstantFill seed would be float32).
    seeds = {y: f"{y}_seed_grad" for y in outputs_with_grad}
    grad_ops, grad_map = GetBackwardPass(list(net.op), seeds, **backward_options)
    forward(net.op)
    for y, seed in seeds.items():
        workspace.FeedBlob(seed, np.ones_like(workspace.FetchBlob(y)))
    workspace.RunOperatorsOnce(grad_ops)
    reports = []
    for name in inputs_to_check:
        numeric = central_differences(loss, values[name], stepsize)
        if grad_map.get(name) is None:
            analytic = np.zeros_like(numeric)  # blocked or unreached: must be zero numerically
        else:
            analytic = _dense(workspace, grad_map[name], values[name])
        reports.append(_report(name, analytic, numeric, threshold))
    return reports


def _report(name, analytic, numeric, threshold) -> GradientReport:
    analytic = np.asarray(analytic, dtype=np.float64)
    ok = analytic.shape == numeric.shape and bool(
        np.all(np.isclose(analytic, numeric, atol=threshold, rtol=threshold)))
    return GradientReport(ok, name, analytic, numeric)


class GradientChecker:
    """Caffe2's spelling: `GradientChecker(stepsize, threshold, device_option).CheckSimple(...)`
    returns (ok, analytic gradient, numeric estimate). Unlike check_op_gradient it keeps
    the inputs' dtypes, as Caffe2 does (its op tests are tuned for float32 steps); the
    loss is still summed in float64."""

    def __init__(self, stepsize: float, threshold: float, device_option=None,
                 workspace_name: str = "gradient_check", input_device_options=None):
        self._stepsize, self._threshold = stepsize, threshold
        self._device_option = device_option or caffe2_pb2.DeviceOption()
        self._workspace_name = workspace_name
        self._input_device_options = input_device_options or {}

    def CheckSimple(self, op, inputs, input_to_check: int, outputs_with_grads, grad_ops=None,
                    input_device_options=None, ensure_outputs_are_inferred: bool = False):
        device_options = input_device_options or self._input_device_options
        op = _on_device(op, self._device_option)
        workspace = Workspace(self._workspace_name)
        if grad_ops is None:
            grad_ops, g_input = GetGradientForOp(op, [f"{name}_grad" for name in op.output])
        else:
            g_input = [f"{name}_grad" for name in op.input]
        grad_name = g_input[input_to_check]
        if grad_name is None:
            raise ValueError(f"{op.type} gives no gradient for input {input_to_check} ({op.input[input_to_check]})")
        grad_ops = [_on_device(g, self._device_option) for g in grad_ops]
        values = [np.array(v) for v in inputs]

        def run_forward() -> list:
            for name, value in zip(op.input, values):
                workspace.FeedBlob(name, value, device_options.get(name, self._device_option))
            workspace.RunOperatorOnce(op)
            return [workspace.FetchBlob(op.output[i]) for i in outputs_with_grads]

        def loss() -> float:
            return sum(0.5 * float(np.sum(np.square(y, dtype=np.float64))) for y in run_forward())

        for i, y in zip(outputs_with_grads, run_forward()):
            workspace.FeedBlob(f"{op.output[i]}_grad", y, self._device_option)
        workspace.RunOperatorsOnce(grad_ops)
        grad = _dense(workspace, grad_name, values[input_to_check])
        estimate = central_differences(loss, values[input_to_check], self._stepsize)
        estimate = estimate.astype(values[input_to_check].dtype, copy=False)
        ok = grad.shape == estimate.shape and bool(
            np.all(np.isclose(grad, estimate, atol=self._threshold, rtol=self._threshold)))
        return ok, grad, estimate


def _on_device(op, device_option):
    if op.HasField("device_option") or device_option is None:
        return op
    placed = caffe2_pb2.OperatorDef()
    placed.CopyFrom(op)
    placed.device_option.CopyFrom(device_option)
    return placed


def _dense(workspace, grad_name, like: np.ndarray) -> np.ndarray:
    """The gradient blob; a (indices, values) gradient slice is scattered into zeros."""
    if isinstance(grad_name, GradientSlice):
        indices = workspace.FetchBlob(str(grad_name.indices))
        values = workspace.FetchBlob(str(grad_name.values))
        dense = np.zeros_like(like)
        np.add.at(dense, indices, values)
        return dense
    return workspace.FetchBlob(str(grad_name))
