"""The top_k family: TopK against a NumPy reference written from Caffe2's
top_k_test.py semantics (ties to the lower index, padding past the axis's
length), TopKGradient against central differences, inference and errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer


def top_k_reference(x, k, axis=-1, largest=1, **_):
    """Loops over every line along the axis, sorting (value, index) pairs."""
    axis %= x.ndim
    moved = np.moveaxis(x, axis, -1)
    lines = moved.reshape(-1, moved.shape[-1])
    values = np.zeros((len(lines), k), x.dtype)
    indices = np.full((len(lines), k), -1, np.int64)
    for r, line in enumerate(lines):
        ranked = sorted(range(len(line)), key=lambda i: (-int(line[i]) if largest else int(line[i]), i))[:k]
        values[r, :len(ranked)] = line[ranked]
        indices[r, :len(ranked)] = ranked
    shape = (*moved.shape[:-1], k)
    values = np.moveaxis(values.reshape(shape), -1, axis)
    indices = np.moveaxis(indices.reshape(shape), -1, axis)
    flat = np.full(indices.shape, -1, np.int64)
    for position in np.ndindex(indices.shape):
        if indices[position] >= 0:
            source = list(position)
            source[axis] = indices[position]
            flat[position] = np.ravel_multi_index(source, x.shape)
    return values, indices, flat.reshape(-1)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), k=st.integers(1, 7),
       axis_seed=st.integers(0, 10), seed=st.integers(0, 2**16), flatten=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_top_k(shape, k, axis_seed, seed, flatten, dtype):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 3, shape).astype(dtype)  # small integers: many ties
    axis = axis_seed % (len(shape) + 1) - 1  # -1 .. rank - 1
    outputs = 3 if flatten else 2
    check_reference("TopK", [x], lambda x, **a: top_k_reference(x, **a)[:outputs], {"k": k, "axis": axis},
                    num_outputs=outputs)


def test_top_k_default_axis_and_padding():
    x = np.array([[3, 1, 3, 2]], np.float32)
    values, indices = run_op("TopK", [x], {"k": 6}, num_outputs=2)
    np.testing.assert_array_equal(values, [[3, 3, 2, 1, 0, 0]])
    np.testing.assert_array_equal(indices, [[0, 2, 3, 1, -1, -1]])
    assert indices.dtype == np.int64


@pytest.mark.parametrize("shape, k, axis", [((2, 5), 2, -1), ((3, 4, 2), 3, 1), ((4,), 6, 0)])
def test_top_k_gradient(shape, k, axis):
    rng = np.random.default_rng(3)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 2  # distinct: no kinks
    values, indices = run_op("TopK", [x], {"k": k, "axis": axis}, num_outputs=2)
    d_values = rng.standard_normal(values.shape)
    (grad_op,), _ = GetGradientForOp(make_op("TopK", ["x"], ["v", "i"], {"k": k, "axis": axis}), ["v_grad", None])
    assert grad_op.type == "TopKGradient" and list(grad_op.input) == ["v_grad", "i", "x"]
    check_gradient_op("TopK", [x], "TopKGradient", [d_values, indices, x], {0: 0}, [d_values, None],
                      {"k": k, "axis": axis}, num_outputs=2)


def test_inference():
    assert infer("TopK", [(3, 7)], 2, k=4) == [TensorInfo((3, 4), "float32"), TensorInfo((3, 4), "int64")]
    assert infer("TopK", [(3, 7, 2)], 3, k=2, axis=1)[2] == TensorInfo((12,), "int64")
    assert infer("TopKGradient", [(3, 4), TensorInfo((3, 4), "int64"), (3, 7)])[0].shape == (3, 7)


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("TopK", [(3, 4)], {"k": 2, "axis": 2}, r"axis 2 is out of range for X \[3, 4\]"),
    ("TopK", [TensorInfo((3,), "bool")], {"k": 2}, "X must be a numeric tensor, got bool"),
    ("TopK", [(3, 4)], {}, "needs the `k` arg or the K input"),
    ("TopK", [(3, 4), TensorInfo((2,), "int64")], {}, r"K must hold one int32 or int64, got \[2\] int64"),
    ("TopK", [(3, 4), TensorInfo((1,), "float32")], {}, "K must hold one int32 or int64"),
    ("TopKGradient", [(3, 2), TensorInfo((3, 2), "int64"), (4, 5)], {}, r"must match X \[4, 5\] off axis 1"),
    ("TopKGradient", [(3, 2), TensorInfo((3, 2), "float32"), (3, 5)], {}, "Indices must be an int64 tensor"),
])
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)


def test_run_errors():
    with pytest.raises((OpFailure, NetError), match="needs the `k` arg or the K input"):
        run_op("TopK", [np.ones((2, 3), np.float32)], num_outputs=2)
    with pytest.raises((OpFailure, NetError), match="k must be >= 1, got 0"):
        run_op("TopK", [np.ones((2, 3), np.float32), np.array([0], np.int64)], num_outputs=2)
    with pytest.raises((OpFailure, NetError), match="arg 'k'"):
        run_op("TopK", [np.ones((2, 3), np.float32)], {"k": 0}, num_outputs=2)
    with pytest.raises((OpFailure, NetError), match="Indices hold 9, out of range"):
        run_op("TopKGradient", [np.ones((1, 1)), np.array([[9]], np.int64), np.ones((1, 3))], {"k": 1})


def test_a_huge_k_is_refused_before_allocating():
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op("TopK", [np.ones((2, 3), np.float32)], {"k": 2**31 - 1}, num_outputs=2)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), k=st.integers(1, 5),
       axis_seed=st.integers(0, 10), seed=st.integers(0, 2**16), largest=st.booleans(),
       dtype=st.sampled_from([np.float32, np.int32, np.int64, np.uint64, np.uint8]),
       k_type=st.sampled_from([np.int32, np.int64]))
def test_top_k_onnx_extras(shape, k, axis_seed, seed, largest, dtype, k_type):
    """The K input, the k smallest and integer X (unsigned: no negation trick)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, shape).astype(dtype) * (2**40 if dtype == np.uint64 else 1)  # ties, big uint64
    axis = axis_seed % (len(shape) + 1) - 1
    k_input = np.array([k] if seed % 2 else k, k_type)  # 1-D or a scalar
    check_reference("TopK", [x, k_input], lambda x, _, **a: top_k_reference(x, k, **a)[:2],
                    {"axis": axis, "largest": int(largest), "sorted": 1}, num_outputs=2)


def test_top_k_inference_with_k_input_is_unknown():
    assert infer("TopK", [(3, 7), TensorInfo((1,), "int64")], 2) == [None, None]
