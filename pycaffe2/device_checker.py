"""Caffe2's DeviceChecker: run one op (or net) on each device option and compare outputs.

    DeviceChecker(0.01, [cpu_do, cuda_do]).CheckSimple(op, [x], [0])  # -> bool

Each device runs in a fresh Workspace; the first device's outputs are the
reference. With CPU device options only (no GPU), it still runs the op once.
"""
from __future__ import annotations

import numpy as np

from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2


def placed_on(op, device_option):
    """A copy of `op` that runs on `device_option`."""
    copy = caffe2_pb2.OperatorDef()
    copy.CopyFrom(op)
    copy.device_option.CopyFrom(device_option)
    return copy


class DeviceChecker:
    def __init__(self, threshold: float, device_options):
        self._threshold = threshold
        self._device_options = list(device_options)

    def _same(self, name, reference, got, option) -> bool:
        reference, got = np.asarray(reference), np.asarray(got)
        if reference.dtype.kind in "biufc" and got.dtype.kind in "biufc":
            ok = reference.shape == got.shape and bool(np.allclose(
                got, reference, atol=self._threshold, rtol=self._threshold, equal_nan=True))
        else:
            ok = reference.shape == got.shape and bool(np.all(reference == got))
        if not ok:
            print(f"DeviceChecker: {name} differs on {option} from {self._device_options[0]}")
        return ok

    def CheckSimple(self, op, inputs, outputs_to_check, input_device_options=None) -> bool:
        """Outputs `outputs_to_check` (indices) agree on every device option."""
        input_device_options = input_device_options or {}
        results = []
        for option in self._device_options:
            workspace = Workspace("_device_check")
            for name, value in zip(op.input, inputs):
                workspace.FeedBlob(name, value, input_device_options.get(name, option))
            workspace.RunOperatorOnce(placed_on(op, option))
            results.append([workspace.FetchBlob(op.output[i]) for i in outputs_to_check])
        return all(self._same(op.output[i], reference, got, option)
                   for option, outputs in zip(self._device_options[1:], results[1:])
                   for i, reference, got in zip(outputs_to_check, results[0], outputs))

    def CheckNet(self, net, inputs=None, blobs_to_check=None, ignore=()) -> bool:
        """Run the net (a NetDef or core.Net) on each device; blobs (default: all it
        ends with, less `ignore`) agree."""
        proto = net.Proto() if hasattr(net, "Proto") else net
        inputs = inputs or {}
        results = []
        for option in self._device_options:
            workspace = Workspace("_device_check")
            for name, value in inputs.items():
                workspace.FeedBlob(name, value, option)
            placed = caffe2_pb2.NetDef()
            placed.CopyFrom(proto)
            placed.device_option.CopyFrom(option)
            for op in placed.op:
                op.device_option.CopyFrom(option)
            workspace.RunNetOnce(placed)
            names = blobs_to_check or [b for b in workspace.Blobs() if b not in set(ignore)]
            results.append({name: workspace.FetchBlob(name) for name in names})
        return all(self._same(name, results[0][name], got[name], option)
                   for option, got in zip(self._device_options[1:], results[1:]) for name in got)
