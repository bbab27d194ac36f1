"""indexing_nd family (GatherElements, GatherND, ScatterElements, ScatterND, TensorScatter
and the gathers' gradients): each op against a loop reference written here from ONNX's
op docs, the gradients against central differences, shape inference and the errors."""
import itertools

import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

FAILS = (OpFailure, NetError)
rng = np.random.default_rng(0)


def rand(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def reference_gather_elements(data, indices, axis=0):
    axis %= data.ndim
    out = np.empty(indices.shape, data.dtype)
    for position in np.ndindex(indices.shape):
        source = list(position)
        source[axis] = indices[position] % data.shape[axis]  # negatives from the end
        out[position] = data[tuple(source)]
    return out


def reference_gather_nd(data, indices, batch_dims=0):
    batch = indices.shape[:batch_dims]
    rows = []
    for b in np.ndindex(batch):
        for tup in indices[b].reshape(-1, indices.shape[-1]):
            dims = data.shape[batch_dims:]
            rows.append(data[b][tuple(int(i) % d for i, d in zip(tup, dims))])
    return np.array(rows, data.dtype).reshape(indices.shape[:-1] + data.shape[batch_dims + indices.shape[-1]:])


COMBINE = {"none": lambda a, b: b, "add": lambda a, b: a + b, "mul": lambda a, b: a * b,
           "max": max, "min": min}


def reference_scatter_elements(data, indices, updates, axis=0, reduction="none"):
    out, axis = data.copy(), axis % data.ndim
    for position in np.ndindex(indices.shape):
        target = list(position)
        target[axis] = indices[position] % data.shape[axis]
        out[tuple(target)] = COMBINE[reduction](out[tuple(target)], updates[position])
    return out


def reference_scatter_nd(data, indices, updates, reduction="none"):
    out = data.copy()
    for position in np.ndindex(indices.shape[:-1]):
        target = tuple(int(i) % d for i, d in zip(indices[position], data.shape))
        for inner in np.ndindex(data.shape[len(target):]):
            out[target + inner] = COMBINE[reduction](out[target + inner], updates[position + inner])
    return out


@pytest.mark.parametrize("dims, index_dims, axis", [((3, 3), (2, 3), 0), ((2, 2), (2, 2), 1),
                                                    ((3, 4, 2), (3, 2, 2), -2), ((4,), (6,), 0)])
@pytest.mark.parametrize("index_type", [np.int32, np.int64])
def test_gather_elements(dims, index_dims, axis, index_type):
    data = rand(*dims)
    indices = rng.integers(-dims[axis], dims[axis], index_dims).astype(index_type)
    check_reference("GatherElements", [data, indices], reference_gather_elements, {"axis": axis})


def test_gather_elements_gradient():
    data = rand(3, 4).astype(np.float64)
    indices = np.array([[0, 2, -1, 2], [2, 2, 0, 1]], np.int64)  # repeats add up
    dy = rand(2, 4).astype(np.float64)
    check_gradient_op("GatherElements", [data, indices], "GatherElementsGradient", [data, indices, dy],
                      {0: 0}, [dy], {"axis": 0})
    check_gradient_op("GatherElements", [data, indices.T[:3]], "GatherElementsGradient",
                      [data, indices.T[:3], dy.T[:3]], {0: 0}, [dy.T[:3]], {"axis": 1})
    (grad,), _ = GetGradientForOp(make_op("GatherElements", ["d", "i"], ["y"], {"axis": 1}), ["y_grad"])
    assert grad.type == "GatherElementsGradient" and list(grad.input) == ["d", "i", "y_grad"]


@pytest.mark.parametrize("dims, index_dims, batch_dims", [
    ((2, 2), (2, 2), 0), ((2, 2), (2, 1), 0), ((2, 2, 2), (2, 2), 0), ((2, 2, 2), (2, 1, 2), 0),
    ((2, 2, 2), (2, 1), 1), ((2, 3, 4, 2), (2, 3, 5, 1), 2), ((3, 4), (0, 2), 0),
])
def test_gather_nd(dims, index_dims, batch_dims):
    data = rand(*dims)
    bounds = np.array(dims[batch_dims:batch_dims + index_dims[-1]])
    indices = (rng.integers(-(2**20), 2**20, index_dims) % (2 * bounds) - bounds).astype(np.int64)
    check_reference("GatherND", [data, indices], reference_gather_nd, {"batch_dims": batch_dims})
    dy = rand(*reference_gather_nd(data, indices, batch_dims).shape).astype(np.float64)
    check_gradient_op("GatherND", [data.astype(np.float64), indices], "GatherNDGradient",
                      [data.astype(np.float64), indices, dy], {0: 0}, [dy], {"batch_dims": batch_dims})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("dims, index_dims, axis", [((3, 3), (2, 3), 0), ((1, 5), (1, 2), 1),
                                                    ((2, 3, 4), (2, 2, 3), -1)])
def test_scatter_elements(reduction, dims, index_dims, axis):
    data = rand(*dims)
    indices = rng.integers(-dims[axis], dims[axis], index_dims).astype(np.int64)
    if reduction == "none":  # distinct targets along the axis: ONNX leaves repeats undefined
        line = rng.permutation(dims[axis])[:index_dims[axis]]
        indices = np.broadcast_to(np.moveaxis(line.reshape((-1,) + (1,) * (len(dims) - 1)), 0, axis),
                                  index_dims).copy()
    updates = rand(*index_dims)
    check_reference("ScatterElements", [data, indices, updates], reference_scatter_elements,
                    {"axis": axis, "reduction": reduction})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("dims, index_dims", [((4, 4, 4), (2, 1)), ((4, 4, 4), (2, 2)), ((8,), (4, 1)),
                                              ((3, 2), (2, 2, 2))])
def test_scatter_nd(reduction, dims, index_dims):
    data = rand(*dims)
    depth = index_dims[-1]
    targets = list(itertools.product(*(range(d) for d in dims[:depth])))
    picked = rng.permutation(len(targets))[:int(np.prod(index_dims[:-1]))]
    indices = np.array([targets[i] for i in picked], np.int64).reshape(index_dims)
    if reduction != "none":
        indices[..., 0].flat[0] = indices[..., 0].flat[-1] - dims[0]  # a repeat, written negative
        indices.reshape(-1, depth)[0, 1:] = indices.reshape(-1, depth)[-1, 1:]
    updates = rand(*(index_dims[:-1] + dims[depth:]))
    check_reference("ScatterND", [data, indices, updates], reference_scatter_nd, {"reduction": reduction})


def reference_tensor_scatter(past, update, write_indices=None, axis=-2, mode="linear"):
    out, axis = past.copy(), axis % past.ndim
    starts = np.zeros(past.shape[0], np.int64) if write_indices is None else write_indices
    for position in np.ndindex(update.shape):
        target = list(position)
        target[axis] = starts[position[0]] + position[axis]
        if mode == "circular":
            target[axis] %= past.shape[axis]
        out[tuple(target)] = update[position]
    return out


@pytest.mark.parametrize("past, update, write, axis, mode", [
    ((2, 1, 4, 5), (2, 1, 1, 5), [1, 2], -2, "linear"),
    ((2, 1, 4, 5), (2, 1, 2, 5), [1, 3], -2, "circular"),
    ((3, 4, 5), (3, 2, 5), [1, 2, 0], 1, "linear"),
    ((3, 4, 5), (3, 4, 2), None, 2, "linear"),
])
def test_tensor_scatter(past, update, write, axis, mode):
    inputs = [rand(*past), rand(*update)] + ([] if write is None else [np.array(write, np.int64)])
    check_reference("TensorScatter", inputs, reference_tensor_scatter, {"axis": axis, "mode": mode})


def test_inference():
    f, i64 = "float32", "int64"
    assert infer("GatherElements", [(3, 4), TensorInfo((2, 4), i64)], axis=0) == [TensorInfo((2, 4))]
    assert infer("GatherND", [(2, 3, 4), TensorInfo((2, 5, 1), i64)], batch_dims=1) == [TensorInfo((2, 5, 4))]
    assert infer("GatherND", [TensorInfo((2, 3), "int32"), TensorInfo((7, 2), i64)]) == [TensorInfo((7,), "int32")]
    assert infer("GatherNDGradient", [(2, 3), TensorInfo((7, 1), i64), (7, 3)]) == [TensorInfo((2, 3))]
    assert infer("GatherElementsGradient", [(2, 3), TensorInfo((1, 3), i64), (1, 3)]) == [TensorInfo((2, 3))]
    assert infer("ScatterElements", [(3, 3), TensorInfo((2, 3), i64), (2, 3)]) == [TensorInfo((3, 3), f)]
    assert infer("ScatterND", [(4, 4), TensorInfo((2, 1), i64), (2, 4)]) == [TensorInfo((4, 4), f)]
    assert infer("TensorScatter", [(2, 4, 3), (2, 1, 3), TensorInfo((2,), i64)]) == [TensorInfo((2, 4, 3))]
    assert infer("ScatterND", [None, TensorInfo((2, 1), i64), (2, 4)]) == [None]


I64 = "int64"
INFERENCE_ERRORS = [
    ("GatherElements", [(3, 4), TensorInfo((2,), I64)], {}, r"INDICES \[2\] must have DATA's rank 2"),
    ("GatherElements", [(3, 4), TensorInfo((2, 5), I64)], {}, r"must fit in DATA \[3, 4\] off axis 0"),
    ("GatherElements", [(3, 4), TensorInfo((2, 4), "float32")], {}, "indices must be int32 or int64"),
    ("GatherElements", [(3, 4), TensorInfo((2, 4), I64)], {"axis": 2}, "axis 2 is out of range"),
    ("GatherND", [(2, 3), TensorInfo((4, 3), I64)], {}, r"last dim 3 must be in \[1, DATA \[2, 3\]'s rank"),
    ("GatherND", [(2, 3), TensorInfo((4, 0), I64)], {}, r"last dim 0 must be in \[1, DATA"),
    ("GatherND", [(2, 3), TensorInfo((3, 1), I64)], {"batch_dims": 1}, "first 1 dims of DATA"),
    ("GatherND", [(2, 3), TensorInfo((2, 1), I64)], {"batch_dims": 2}, "batch_dims 2 must be less than"),
    ("GatherNDGradient", [(2, 3), TensorInfo((7, 1), I64), (7, 2)], {}, r"dY \[7, 2\] must have the gathered"),
    ("GatherElementsGradient", [(2, 3), TensorInfo((1, 3), I64), (1, 2)], {}, r"dY \[1, 2\] must have INDICES"),
    ("ScatterElements", [(3, 3), TensorInfo((2, 3), I64), (3, 3)], {}, r"UPDATES \[3, 3\] must have INDICES'"),
    ("ScatterElements", [(3, 3), TensorInfo((2, 3), I64), TensorInfo((2, 3), "int32")], {},
     r"UPDATES \(int32\) must have DATA's type float32"),
    ("ScatterND", [(4, 4), TensorInfo((2, 1), I64), (2, 3)], {}, r"UPDATES \[2, 3\] must have the shape INDICES"),
    ("TensorScatter", [(2, 4, 3), (2, 5, 3)], {"axis": 1}, "where it may be shorter"),
    ("TensorScatter", [(2, 4, 3), (2, 1, 3)], {"axis": 0}, "must not be the batch axis 0"),
    ("TensorScatter", [(2, 4, 3), (2, 1, 3), TensorInfo((3,), I64)], {"axis": 1}, r"WRITE_INDICES \[3\] must be 1-D"),
]


@pytest.mark.parametrize("op_type, shapes, args, message", INFERENCE_ERRORS)
def test_inference_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, **args)
    inputs = [np.zeros(s.shape, s.dtype) if isinstance(s, TensorInfo) else np.zeros(s, np.float32)
              for s in shapes]
    with pytest.raises(FAILS, match=message):
        run_op(op_type, inputs, args)


@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("GatherElements", [rand(3, 2), np.array([[3, 0]])], {}, "index 3 is out of range for DATA axis 0 of size 3"),
    ("GatherElements", [rand(3, 2), np.array([[0, -3]])], {"axis": 1}, "index -3 is out of range"),
    ("GatherND", [rand(3, 2), np.array([[0, 2]])], {}, "index 2 is out of range for DATA of size 2"),
    ("ScatterElements", [rand(3, 2), np.array([[-4, 0]]), rand(1, 2)], {}, "index -4 is out of range"),
    ("ScatterND", [rand(3, 2), np.array([[5]]), rand(1, 2)], {}, "index 5 is out of range for DATA of size 3"),
    ("TensorScatter", [rand(2, 4, 3), rand(2, 2, 3), np.array([1, 3])], {"axis": 1}, "run past the sequence"),
    ("TensorScatter", [rand(2, 4, 3), rand(2, 2, 3), np.array([1, 4])], {"axis": 1}, r"write index 4 is out of range"),
])
def test_value_errors(op_type, inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op(op_type, inputs, args)


def test_inputs_are_never_modified():
    data = rand(3, 3)
    before = data.copy()
    run_op("ScatterElements", [data, np.array([[1, 1, 1]]), rand(1, 3)], {"reduction": "add"})
    run_op("ScatterND", [data, np.array([[1]]), rand(1, 3)])
    run_op("TensorScatter", [data, rand(3, 1), np.array([0, 1, 2])], {"axis": 1})
    np.testing.assert_array_equal(data, before)


@pytest.mark.parametrize("reduction", ["none", "add"])
def test_scatter_gradients(reduction):
    data = rand(3, 4).astype(np.float64)
    indices = np.array([[0, 2, -1, 1], [2, 0, 1, 2]], np.int64)  # distinct per column
    updates = rand(2, 4).astype(np.float64)
    dy = rand(3, 4).astype(np.float64)
    args = {"axis": 0, "reduction": reduction}
    check_gradient_op("ScatterElements", [data, indices, updates], "ScatterElementsGradient", [dy, indices],
                      {0: 0, 1: 2}, [dy], args)
    nd_indices = np.array([[1], [-1]], np.int64)
    nd_updates = rand(2, 4).astype(np.float64)
    check_gradient_op("ScatterND", [data, nd_indices, nd_updates], "ScatterNDGradient", [dy, nd_indices],
                      {0: 0, 1: 2}, [dy], {"reduction": reduction})
    (grad,), _ = GetGradientForOp(make_op("ScatterND", ["d", "i", "u"], ["y"], {"reduction": reduction}),
                                  ["y_grad"])
    assert list(grad.input) == ["y_grad", "i"] and list(grad.output) == ["d_grad", "u_grad"]


def test_scatter_gradient_of_other_reductions_is_refused():
    from pycaffe2.errors import GradientError
    with pytest.raises(GradientError, match="reduction 'mul' is not implemented"):
        GetGradientForOp(make_op("ScatterElements", ["d", "i", "u"], ["y"], {"reduction": "mul"}), ["y_grad"])
    with pytest.raises(ShapeError, match="reduction 'max' is not implemented"):
        infer("ScatterNDGradient", [(3, 4), TensorInfo((2, 1), "int64")], 2, reduction="max")
