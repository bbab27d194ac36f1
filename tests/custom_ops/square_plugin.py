"""A user's plugin module for tests/custom_ops: kernels, gradient and inference rule of
ScaledSquare, whose schema is in schemas/scaled_square.yaml."""
from pathlib import Path

from pycaffe2 import custom_ops

SCHEMAS = Path(__file__).with_name("schemas")


@custom_ops.inference_rule("scaled_square")
def _infer(op, inputs):
    x = inputs[0]
    if x is not None and not x.dtype.startswith("float"):
        raise custom_ops.ShapeError(f"X must be a float tensor, got {x.dtype}")
    return [x]


@custom_ops.register_cpu("ScaledSquare")
def scaled_square(x, *, alpha):
    return (alpha * x * x).astype(x.dtype, copy=False)


@custom_ops.register_cpu("ScaledSquareGradient")
def scaled_square_gradient(x, dy, *, alpha):
    return (2 * alpha * x * dy).astype(x.dtype, copy=False)


custom_ops.gradient_op("ScaledSquare", "I0 GO0")


def schemas():
    """The entry point's function: the schema folders to load."""
    return [SCHEMAS]
