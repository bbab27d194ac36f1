"""Helpers of the Int8 op tests: random Int8 tensors, and the check that an Int8 op's
output, dequantized, is within one quantization step of a float reference run on the
dequantized inputs."""
import numpy as np

from pycaffe2.qtensor import Int8Tensor
from pycaffe2.testing import assert_inference_agrees, run_op


def q8(rng, shape, scale, zero_point, low=0, high=256) -> Int8Tensor:
    return Int8Tensor(rng.integers(low, high, shape).astype(np.uint8), scale, zero_point)


def real(value):
    return value.dequantize() if isinstance(value, Int8Tensor) else value


def check_int8(op_type, inputs, reference, args=None, steps=1.0, num_outputs=None):
    """Run op_type; its Int8 output 0 dequantized must be within `steps` of its scale of
    reference(*real inputs) clipped to what the output can represent. Returns the outputs."""
    args = args or {}
    got = run_op(op_type, inputs, args, num_outputs=num_outputs)
    y = got[0]
    assert isinstance(y, Int8Tensor), f"{op_type} gave {type(y).__name__}"
    assert y.data.dtype == np.uint8
    expected = np.asarray(reference(*[real(v) for v in inputs]), dtype=np.float64)
    low, high = (0 - y.zero_point) * y.scale, (255 - y.zero_point) * y.scale
    expected = np.clip(expected, low, high)
    assert y.shape == expected.shape, f"shape {y.shape} != reference {expected.shape}"
    error = np.abs(y.dequantize().astype(np.float64) - expected)
    assert error.max(initial=0) <= steps * y.scale * (1 + 1e-5), f"off by {error.max() / y.scale:.3f} steps"
    assert_inference_agrees(op_type, inputs, args, got)
    return got
