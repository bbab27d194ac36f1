"""The sequence_mask family: SequenceMask against a loop-by-loop NumPy reference in
every mode, with batch and repeat_from_axis; its gradient against central
differences; inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

RULES = {
    "sequence": lambda i, j, v, r: j >= v[i],
    "window": lambda i, j, v, r: j > v[i] + r or j < v[i] - r,
    "upper": lambda i, j, v, r: j > i,
    "lower": lambda i, j, v, r: j < i,
    "upperdiag": lambda i, j, v, r: j >= i,
    "lowerdiag": lambda i, j, v, r: j <= i,
}


def reference(shape, mode, axis, batch=None, repeat_from=None, radius=10, fill=-1.0):
    """Masks entry by entry on the [before, rows, cols, after] view."""
    start = batch + 1 if batch is not None else 0
    end = repeat_from % len(shape) if repeat_from is not None else len(shape)
    view = [int(np.prod(shape[:start])), int(np.prod(shape[start:axis])),
            int(np.prod(shape[axis:end])), int(np.prod(shape[end:]))]

    def ref(x, *values, **_):
        out = x.copy().reshape(view)
        for b in range(view[0]):
            for i in range(view[1]):
                for j in range(view[2]):
                    if RULES[mode](i, j, values[0] if values else None, radius):
                        out[b, i, j, :] = fill
        return [out.reshape(shape)]
    return ref


def values_for(mode, rows, cols, rng):
    return [rng.integers(0, cols + 1, rows).astype(np.int32)] if mode in ("sequence", "window") else []


CASES = [((3, 5), 1, None, None), ((2, 3, 4), 2, None, None), ((2, 3, 4), 1, None, None), ((2, 3, 4), 2, 0, None),
         ((2, 3, 2, 2), 3, 1, None), ((3, 4, 2), 1, None, 2), ((3, 4, 2), 1, None, -1), ((4, 4), -1, None, None)]


@pytest.mark.parametrize("mode", list(RULES))
@pytest.mark.parametrize("shape, axis, batch, repeat_from", CASES)
def test_sequence_mask(mode, shape, axis, batch, repeat_from):
    rng = np.random.default_rng(0)
    axis_ = axis % len(shape)
    start = batch + 1 if batch is not None else 0
    end = repeat_from % len(shape) if repeat_from is not None else len(shape)
    rows, cols = int(np.prod(shape[start:axis_])), int(np.prod(shape[axis_:end]))
    x = rng.standard_normal(shape).astype(np.float32)
    args = {"mode": mode, "axis": axis, "radius": 1, "fill_val": -1.0}
    args.update({k: v for k, v in (("batch", batch), ("repeat_from_axis", repeat_from)) if v is not None})
    check_reference("SequenceMask", [x, *values_for(mode, rows, cols, rng)],
                    reference(shape, mode, axis_, batch, repeat_from, radius=1), args)


def test_default_fill_is_minus_infinity():
    out, = run_op("SequenceMask", [np.ones((2, 3), np.float32), np.array([1, 3], np.int32)])
    np.testing.assert_array_equal(out, [[1, -np.inf, -np.inf], [1, 1, 1]])


@pytest.mark.parametrize("mode", ["sequence", "window", "lowerdiag"])
def test_sequence_mask_gradient(mode):
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    values = values_for(mode, 2, 12, rng)
    args = {"mode": mode, "axis": 1, "radius": 2, "fill_val": 1e-9}
    (grad_op,), _ = GetGradientForOp(make_op("SequenceMask", ["x", "l"][:1 + len(values)], ["y"], args),
                                     ["y_grad"])
    assert grad_op.type == "SequenceMask" and list(grad_op.input) == ["y_grad", "l"][:1 + len(values)]
    assert {a.name: a.i for a in grad_op.arg if a.name == "grad"} == {"grad": 1}
    check_gradient_op("SequenceMask", [x, *values], "SequenceMask", [dy, *values], {0: 0}, [dy],
                      args | {"grad": 1})
    got, = run_op("SequenceMask", [dy, *values], args | {"grad": 1})
    expected = reference((2, 3, 4), mode, 1, radius=2, fill=0.0)(dy, *values)[0]
    np.testing.assert_array_equal(got, expected)


def test_inference():
    assert infer("SequenceMask", [(2, 3, 4), (2,)])[0].shape == (2, 3, 4)
    assert infer("SequenceMask", [(2, 3, 4)], mode="upper", axis=2)[0].shape == (2, 3, 4)
    with pytest.raises(ShapeError, match=r"lengths \[3\] must have 2 entries"):
        infer("SequenceMask", [(2, 3, 4), (3,)])
    with pytest.raises(ShapeError, match="mode 'diag' is not one of"):
        infer("SequenceMask", [(2, 3)], mode="diag")
    with pytest.raises(ShapeError, match="mode 'upper' takes 1 input"):
        infer("SequenceMask", [(2, 3), (2,)], mode="upper")
    with pytest.raises(ShapeError, match="batch 1 must come before axis 1"):
        infer("SequenceMask", [(2, 3, 4), (1,)], batch=1)
    with pytest.raises(ShapeError, match="repeat_from_axis 1 must come after axis 1"):
        infer("SequenceMask", [(2, 3, 4), (2,)], repeat_from_axis=1)


def test_run_errors():
    with pytest.raises((OpFailure, NetError), match="mode 'sequence' takes 2 inputs"):
        run_op("SequenceMask", [np.ones((2, 3), np.float32)])
