"""Indexing family (Slice, Gather, SparseToDense and their gradients): each op against
an independent NumPy reference on both devices, gradient ops against numeric
differentiation of their forward ops, the CUDA kernels against their CPU twins for
every element type, shape inference, and the errors (the same words at CreateNet,
on the CPU and on CUDA)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.gradient import GetGradientForOp, GradientSlice
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.operators import DEVICES
from tests.operators.test_tensor import BIG, FAILS, i32, i64, rand, shapes  # the tensor tests' helpers
from tests.schema import infer


def caffe2_range(dim, start, end):
    """Caffe2's slice bounds: negative counts from one past the end, clipped to dim."""
    start, end = (dim + 1 + v if v < 0 else v for v in (start, end))
    return range(min(start, dim), min(end, dim))


def reference_slice(x, starts, ends):
    out = x
    for axis, (start, end) in enumerate(zip(starts, ends)):
        out = np.take(out, list(caffe2_range(x.shape[axis], start, end)), axis=axis)
    return out


def reference_sparse_to_dense(indices, values, first):
    out = np.zeros((first,) + values.shape[1:], values.dtype)
    for index, row in zip(indices, values):
        out[index] += row
    return out


# -- slices -------------------------------------------------------------------------------

SLICES = [((2, 4), [0, 1], [-1, 3]), ((5, 3, 2), [1], [4]), ((5, 3), [0, -3], [-1, -1]),
          ((5, 3), [0, 0], [-1, 10]), ((4, 5), [2, 0], [2, -1]), ((3, 4), [0, 0], [3, 4]),
          ((3, 4, 2), [0, 0, 1], [-1, -1, 2])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims, starts, ends", SLICES)
def test_slice_arg_and_input_forms(dims, starts, ends, device):
    x = rand(*dims)
    expected = reference_slice(x, starts, ends)
    check_reference("Slice", [x], lambda x, **_: expected, {"starts": starts, "ends": ends}, device=device)
    for index_type in (np.int32, np.int64):
        bounds = [np.array(starts, index_type), np.array(ends, index_type)]
        check_reference("Slice", [x] + bounds, lambda *_: expected, device=device)


@pytest.mark.parametrize("dims, starts, ends", SLICES)
def test_slice_gradient(dims, starts, ends):
    x = rand(*dims)
    dy = rand(*reference_slice(x, starts, ends).shape, seed=1)
    args = {"starts": starts, "ends": ends}
    check_gradient_op("Slice", [x], "SliceGradient", [x, dy], {0: 0}, [dy], args)
    bounds = [np.array(starts, np.int64), np.array(ends, np.int64)]
    check_gradient_op("Slice", [x] + bounds, "SliceGradient", [x] + bounds + [dy], {0: 0}, [dy])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("inputs, args, message", [
    ([rand(4, 4)], {"starts": [1, 1], "ends": [2, 2]}, "only one dim may be sliced"),
    ([rand(4, 4)], {"starts": [3], "ends": [1]}, "is not a slice"),
    ([rand(4, 4)], {"starts": [0], "ends": [1, 2]}, "differ in length"),
    ([rand(4, 4)], {"starts": [0, 0, 0], "ends": [1, 1, 1]}, "3 starts for input"),
    ([rand(4, 4)], {}, "needs the `starts` and `ends`"),
    ([rand(4, 4), np.array([0.5], np.float32), i32(1)], {}, "must be a 1-D int tensor"),
])
def test_slice_errors(inputs, args, message, device):
    with pytest.raises(FAILS, match=message):
        run_op("Slice", inputs, args, device_option=device_option(device))


@pytest.mark.parametrize("device", DEVICES)
def test_slice_gradient_checks_dy(device):
    with pytest.raises(FAILS, match=r"dY \[2, 4\] does not match the slice \[1, 4\]"):
        run_op("SliceGradient", [rand(4, 4), rand(2, 4)], {"starts": [1], "ends": [2]},
               device_option=device_option(device))


def test_inputs_are_never_modified():
    x = rand(2, 6, 3)
    before = x.copy()
    run_op("SliceGradient", [x, x[:1]], {"starts": [0], "ends": [1]})
    np.testing.assert_array_equal(x, before)


def caffe2_slice(dims, starts, ends):
    """The Python slices Caffe2's starts/ends mean (negative: from one past the end)."""
    index = []
    for dim, start, end in zip(dims, starts, ends):
        start = dim + 1 + start if start < 0 else start
        end = dim + 1 + end if end < 0 else end
        index.append(slice(start, end))
    return tuple(index)


@pytest.mark.parametrize("dims, starts, ends", [
    ((2, 4), [0, 1], [-1, 3]), ((5, 3, 2), [1], [4]), ((5, 3), [0, -3], [-1, -1]),
    ((5, 3), [0, 0], [-1, 10]),
])
def test_slice_inference_matches_numpy(dims, starts, ends):
    expected = np.zeros(dims)[caffe2_slice(dims, starts, ends)].shape
    assert infer("Slice", [dims], starts=starts, ends=ends)[0].shape == expected


@pytest.mark.parametrize("starts, ends, message", [
    ([1, 1], [2, 2], "only one dim may be sliced"),
    ([3], [1], "is not a slice"),
    ([0], [1, 2], "differ in length"),
    ([0, 0, 0], [1, 1, 1], "3 starts for input"),
])
def test_slice_inference_errors(starts, ends, message):
    with pytest.raises(ShapeError, match=message):
        infer("Slice", [(4, 4)], starts=starts, ends=ends)


def test_slice_inference_from_inputs_and_gradient():
    bounds = [TensorInfo((2,), "int64")] * 2
    assert infer("Slice", [(4, 4), *bounds]) == [None]
    assert infer("SliceGradient", [(4, 4), (2, 4)], starts=[1], ends=[3]) == [TensorInfo((4, 4))]
    assert infer("SliceGradient", [(4, 4), *bounds, (2, 4)]) == [TensorInfo((4, 4))]
    with pytest.raises(ShapeError, match=r"dY \[2, 4\] does not match the slice \[1, 4\]"):
        infer("SliceGradient", [(4, 4), (2, 4)], starts=[1], ends=[2])
    with pytest.raises(ShapeError, match="input starts must be a 1-D int tensor"):
        infer("Slice", [(4, 4), (2,), (2,)])


# -- ONNX's bounds (bounds 'onnx': axes, steps, clamping) ---------------------------------

def onnx_positions(dim, start, end, step):
    """ONNX Slice's doc: negatives count from the end, then clamp to [0, dim] going
    forwards and to [0, dim - 1] (start) and [-1, dim - 1] (end) going backwards."""
    start, end = (v + dim if v < 0 else v for v in (start, end))
    if step > 0:
        return list(range(min(max(start, 0), dim), min(max(end, 0), dim), step))
    return list(range(min(max(start, 0), dim - 1), min(max(end, -1), dim - 1), step))


def reference_onnx_slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for axis, start, end, step in zip(axes, starts, ends, steps):
        x = np.take(x, onnx_positions(x.shape[axis], start, end, step), axis=axis)
    return x


BIG_INT = 2**63 - 1
ONNX_SLICES = [
    ((20, 10, 5), [0, 0], [3, 10], [0, 1], [1, 1]),
    ((20, 10, 5), [0], [-1], [1], [1]),
    ((20, 10, 5), [1000], [1000], [1], [1]),
    ((20, 10, 5), [1], [1000], [1], [1]),
    ((20, 10, 5), [0, 0, 3], [20, 10, 4], None, None),
    ((20, 10, 5), [20, 10, 4], [0, 0, 1], [0, 1, 2], [-1, -3, -2]),
    ((20, 10, 5), [0, 0, 3], [20, 10, 4], [0, -2, -1], None),
    ((4, 6), [-1, BIG_INT], [-BIG_INT - 1, 0], [0, 1], [-1, -2]),
    ((4, 6), [2, 5], [1, 5], [0, 1], [1, 1]),
    ((4, 6), [-10], [BIG_INT], [1], [4]),
]


@pytest.mark.parametrize("dims, starts, ends, axes, steps", ONNX_SLICES)
def test_slice_onnx_bounds(dims, starts, ends, axes, steps):
    x = rand(*dims)
    expected = reference_onnx_slice(x, starts, ends, axes, steps)
    args = {"starts": starts, "ends": ends, "bounds": "onnx"}
    args.update({k: v for k, v in (("axes", axes), ("steps", steps)) if v is not None})
    check_reference("Slice", [x], lambda *_, **__: expected, args)
    bounds = [np.array(starts, np.int64), np.array(ends, np.int64)]
    if axes is not None or steps is not None:
        bounds.append(np.array(range(len(starts)) if axes is None else axes, np.int32))
    if steps is not None:
        bounds.append(np.array(steps, np.int64))
    check_reference("Slice", [x] + bounds, lambda *_, **__: expected, {"bounds": "onnx"})


@pytest.mark.parametrize("dims, starts, ends, axes, steps", ONNX_SLICES[5:8])
def test_slice_onnx_gradient(dims, starts, ends, axes, steps):
    x = rand(*dims)
    dy = rand(*reference_onnx_slice(x, starts, ends, axes, steps).shape, seed=1)
    bounds = [np.array(v, np.int64) for v in (starts, ends, axes or range(len(starts)),
                                                steps or [1] * len(starts))]
    check_gradient_op("Slice", [x] + bounds, "SliceGradient", [x] + bounds + [dy], {0: 0}, [dy],
                      {"bounds": "onnx"})
    (grad,), _ = GetGradientForOp(make_op("Slice", ["x", "s", "e", "a", "t"], ["y"], {"bounds": "onnx"}),
                                  ["y_grad"])
    assert list(grad.input) == ["x", "s", "e", "a", "t", "y_grad"]


@pytest.mark.parametrize("args, message", [
    ({"starts": [0], "ends": [1], "axes": [0]}, "axes and steps need bounds 'onnx'"),
    ({"starts": [0], "ends": [1], "axes": [0, 1], "bounds": "onnx"}, "one entry per sliced axis"),
    ({"starts": [0, 0], "ends": [1, 1], "axes": [1, -1], "bounds": "onnx"}, r"axes \[1, 1\] repeat an axis"),
    ({"starts": [0], "ends": [1], "steps": [0], "bounds": "onnx"}, "must not be 0"),
    ({"starts": [0], "ends": [1], "axes": [2], "bounds": "onnx"}, "axes 2 is out of range for rank 2"),
])
def test_slice_onnx_errors(args, message):
    with pytest.raises(ShapeError, match=message):
        infer("Slice", [(4, 4)], **args)
    with pytest.raises(FAILS, match=message):
        run_op("Slice", [rand(4, 4)], args)


@pytest.mark.gpu
@pytest.mark.slow
def test_slice_cuda_refuses_onnx_bounds():
    with pytest.raises(FAILS, match="the CUDA Slice takes Caffe2's bounds only"):
        run_op("Slice", [rand(4, 4)], {"starts": [0], "ends": [1], "bounds": "onnx"},
               device_option=device_option("cuda"))


# -- gathers and scatters -----------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(dims=shapes, index_shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
       data=st.data())
def test_gather(dims, index_shape, data):
    axis = data.draw(st.integers(-len(dims), len(dims) - 1))
    dim = dims[axis]
    index_type = data.draw(st.sampled_from([np.int32, np.int64]))
    indices = data.draw(hnp.arrays(index_type, index_shape, elements=st.integers(-dim, dim - 1)))
    x = rand(*dims)
    wrapped = [i + dim if i < 0 else i for i in indices.ravel()]
    expected = np.stack([np.take(x, i, axis=axis) for i in wrapped], axis=axis % len(dims)) \
        if wrapped else np.take(x, indices, axis=axis)
    expected = expected.reshape(x.shape[:axis % len(dims)] + indices.shape
                                + x.shape[axis % len(dims) + 1:])
    check_reference("Gather", [x, indices], lambda *_, **__: expected, {"axis": axis})


@pytest.mark.parametrize("device", DEVICES)
def test_gather_match_outer(device):
    x = rand(4, 5, 3)
    indices = np.random.default_rng(1).integers(0, 5, size=(4, 2, 2)).astype(np.int32)
    expected = np.empty((4, 2, 2, 3), np.float32)
    for o, i, j in np.ndindex(4, 2, 2):
        expected[o, i, j] = x[o, indices[o, i, j]]
    check_reference("Gather", [x, indices], lambda *_, **__: expected,
                    {"axis": 1, "match_outer": 1}, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("inputs, args, message", [
    ([rand(5, 3), np.array([5])], {}, "index 5 is out of range for DATA axis 0 of size 5"),
    ([rand(5, 3), np.array([-6])], {}, "index -6 is out of range"),
    ([rand(5, 3), np.array([1.0], np.float32)], {}, "indices must be int32 or int64"),
    ([rand(5, 3), np.array([1])], {"axis": 2}, "axis 2 is out of range"),
    ([rand(4, 5), np.zeros((3, 2), np.int32)], {"axis": 1, "match_outer": 1}, "with match_outer"),
    ([rand(4, 3), i64(1, 4)], {}, "index 4 is out of range"),
    ([rand(4, 3), i32(-5)], {}, "index -5 is out of range"),
])
def test_gather_errors(inputs, args, message, device):
    with pytest.raises(FAILS, match=message):
        run_op("Gather", inputs, args, device_option=device_option(device))


@pytest.mark.parametrize("values_dtype", [np.float32, np.float64, np.int32, np.int64])
def test_sparse_to_dense(values_dtype):
    indices = np.array([3, 0, 3, 1], dtype=np.int64)
    values = (rand(4, 2, 3) * 10).astype(values_dtype)
    (y,) = check_reference("SparseToDense", [indices, values],
                           lambda i, v: reference_sparse_to_dense(i, v, 4))
    assert y.dtype == values_dtype
    check_reference("SparseToDense", [indices.astype(np.int32), values, rand(7, 1)],
                    lambda i, v, like: reference_sparse_to_dense(i, v, 7))
    check_reference("SparseToDense", [indices, values],
                    lambda i, v, output_first_dim: reference_sparse_to_dense(i, v, 5),
                    {"output_first_dim": 5})
    empty = run_op("SparseToDense", [np.zeros(0, np.int32), np.zeros((0, 2), np.float32)])[0]
    assert empty.shape == (0, 2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("inputs, args, message", [
    ([np.array([0, 6]), rand(2, 3), rand(5)], {}, "index 6 is out of range"),
    ([np.array([0, -1]), rand(2, 3)], {}, "index -1 is out of range"),
    ([np.array([0, 1]), rand(3, 3)], {}, r"values \[3, 3\] must have one row per index: their leading dims must be indices' \[2\]"),
    ([np.array(1), rand(3)], {}, "indices must have rank >= 1"),
    ([np.array([0, 1]), rand(2), rand(4)], {"output_first_dim": 4}, "do not also give"),
    ([i64(0, 3), rand(2, 3)], {"output_first_dim": 3}, "index 3 is out of range"),
])
def test_sparse_to_dense_errors(inputs, args, message, device):
    with pytest.raises(FAILS, match=message):
        run_op("SparseToDense", inputs, args, device_option=device_option(device))


@pytest.mark.parametrize("data, indices, axis", [((5, 3), (2, 4), 0), ((5, 3, 2), (4,), 1),
                                                 ((5, 3, 2), (), -1)])
def test_gather_inference_matches_numpy(data, indices, axis):
    expected = np.take(np.zeros(data), np.zeros(indices, dtype=np.int64), axis=axis).shape
    out = infer("Gather", [TensorInfo(data), TensorInfo(indices, "int64")], axis=axis)
    assert out[0].shape == expected


def test_gather_inference_match_outer_errors_and_unknown():
    out = infer("Gather", [TensorInfo((4, 5, 3)), TensorInfo((4, 2), "int32")], axis=1,
                match_outer=1)
    assert out[0].shape == (4, 2, 3)
    with pytest.raises(ShapeError, match="indices must be int32 or int64"):
        infer("Gather", [(5, 3), (2,)])
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        infer("Gather", [TensorInfo((5, 3)), TensorInfo((2,), "int32")], axis=2)
    with pytest.raises(ShapeError, match="with match_outer"):
        infer("Gather", [TensorInfo((4, 5)), TensorInfo((3, 2), "int32")], axis=1, match_outer=1)
    assert infer("Gather", [None, TensorInfo((2,), "int32")]) == [None]


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_to_dense_reads_n_d_indices_flattened(device):
    """A Gather's sparse gradient: indices [2, 3], values [2, 3, 4]; rows repeat."""
    indices, values = np.array([[0, 4, 4], [1, 0, 2]], np.int64), rand(2, 3, 4)
    expected = np.zeros((6, 4), np.float32)
    np.add.at(expected, indices.reshape(-1), values.reshape(6, 4))
    check_reference("SparseToDense", [indices, values, rand(6, 2)], lambda i, v, like: [expected], device=device)


def test_sparse_to_dense_inference():
    indices, values = TensorInfo((4,), "int32"), TensorInfo((4, 3, 2))
    assert infer("SparseToDense", [indices, values, (7, 9)]) == [TensorInfo((7, 3, 2))]
    assert infer("SparseToDense", [indices, values]) == [None]
    assert infer("SparseToDense", [indices, values], output_first_dim=5)[0].shape == (5, 3, 2)
    with pytest.raises(ShapeError, match="one row per index"):
        infer("SparseToDense", [indices, TensorInfo((3, 2)), (7,)])
    assert infer("SparseToDense", [TensorInfo((2, 2), "int64"), TensorInfo((2, 2, 3)), (7,)]) == [TensorInfo((7, 3))]
    with pytest.raises(ShapeError, match=r"leading dims must be indices' \[2, 3\]"):
        infer("SparseToDense", [TensorInfo((2, 3), "int64"), values, (7,)])
    with pytest.raises(ShapeError, match="do not also give output_first_dim"):
        infer("SparseToDense", [indices, values, (7, 9)], output_first_dim=5)


# -- CUDA against the CPU twin: every element type, empty and large tensors ---------------

# op type -> cases of (inputs, args)
CASES = {
    "Slice": [
        ([rand(4, 5, 6)], {"starts": [1, 0], "ends": [3, -1]}),
        ([rand(4, 5, 6)], {"starts": [0, 0, 2], "ends": [-1, -1, -2]}),
        ([rand(4, 5), i64(0, 1), i64(-1, 4)], {}),
        ([rand(4, 5, dtype=np.int32), i32(2), i32(2)], {}),
        ([rand(*BIG)], {"starts": [5], "ends": [120]}),
        ([rand(0, 5)], {"starts": [0, 1], "ends": [-1, 3]}),
    ],
    "SliceGradient": [
        ([rand(4, 5, 6), rand(2, 5, 6)], {"starts": [1], "ends": [3]}),
        ([rand(4, 5), i64(0, 1), i64(-1, 4), rand(4, 3)], {}),
        ([rand(4, 5), rand(4, 0)], {"starts": [0, 2], "ends": [-1, 2]}),
        ([rand(*BIG), rand(130, 200)], {"starts": [0, 7], "ends": [-1, 207]}),
    ],
    "Gather": [
        ([rand(5, 3), i64(4, 0, 4, -1)], {}),
        ([rand(5, 3, 2), np.array([[0, 2], [1, -3]], np.int32)], {"axis": 1}),
        ([rand(3, 4, 2), np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]], np.int64)],
         {"axis": 1, "match_outer": 1}),
        ([rand(4, 3, dtype=np.bool_), i32(3, 1)], {"axis": 0}),
        ([rand(4, 3, dtype=np.int64), np.zeros(0, np.int64)], {}),
        ([rand(4, 3), i64(2)], {"axis": -1}),
        ([rand(*BIG), np.arange(256, -1, -1, dtype=np.int64)], {"axis": 1}),
    ],
    "BatchGather": [
        ([rand(3, 4, 2), np.array([[0, 3], [3, -1]], np.int64)], {}),
        ([rand(3, 4), np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]], np.int32)], {"match_outer": 1}),
    ],
    "SparseToDense": [
        ([i64(0, 3, 0, 1), rand(4, 3)], {}),
        ([i32(2, 2, 2), rand(3, dtype=np.int32)], {"output_first_dim": 5}),
        ([i64(1, 0), rand(2, 2, 2, dtype=np.int64), rand(4, 1)], {}),
        ([np.zeros(0, np.int64), rand(0, 3)], {"output_first_dim": 2}),
        ([np.arange(300, dtype=np.int64) % 7, rand(300, 60)], {}),
    ],
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set(CASES)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, inputs, args",
                         [(op, *case) for op, cases in CASES.items() for case in cases],
                         ids=[f"{op}-{i}" for op, cases in CASES.items() for i in range(len(cases))])
def test_cuda_matches_cpu(op_type, inputs, args):
    gpu = check_devices(op_type, inputs, args)  # sums: double on the GPU
    assert [g.dtype for g in gpu] == [c.dtype for c in run_op(op_type, inputs, args)]


# -- gradient makers: the registered gradient of each op against central differences ----

# (op type, inputs, args, inputs to check)
MAKERS = [
    ("Slice", [rand(3, 4)], {"starts": [1, 0], "ends": [3, -1]}, [0]),
    ("Slice", [rand(2, 5), i64(0, 1), i64(-1, -2)], {}, [0]),
    ("Gather", [rand(5, 3), i64(0, 2, 2, 4)], {"dense_gradient": 1}, [0]),
    ("Gather", [rand(4), i32(3, 1, 1)], {}, [0]),
    ("Gather", [rand(3, 5), i32(0, 4, 4, -1)], {"axis": 1}, [0]),
    ("Gather", [rand(3, 4, 2), np.array([[1, 1], [0, 3], [2, 2]], np.int64)], {"axis": 1, "match_outer": 1}, [0]),
    ("BatchGather", [rand(2, 4, 3), i64(3, 0, 3)], {}, [0]),
    ("SparseToDense", [i64(0, 2, 2), rand(3, 2)], {"output_first_dim": 4}, [1]),
    ("SparseToDense", [i32(3, 1), rand(2), rand(5)], {}, [1]),
]


@pytest.mark.parametrize("op_type, inputs, args, to_check", MAKERS,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MAKERS)])
def test_registered_gradient_matches_numeric(op_type, inputs, args, to_check):
    op = make_op(op_type, [f"X{i}" for i in range(len(inputs))], ["Y0"], args)
    for index in to_check:
        report = check_op_gradient(op, inputs, index, outputs_with_grads=(0,))
        assert report.ok, report


def test_gather_maker_gives_a_sparse_gradient_without_ops():
    grad_ops, g_input = GetGradientForOp(make_op("Gather", ["D", "I"], ["Y"]), ["Y_grad"])
    assert (grad_ops, g_input) == ([], [GradientSlice("I", "Y_grad"), None])


def test_gather_maker_with_dense_gradient_scatters_with_sparse_to_dense():
    grad_ops, g_input = GetGradientForOp(make_op("Gather", ["D", "I"], ["Y"], {"dense_gradient": 1}), ["Y_grad"])
    (op,) = grad_ops
    assert (op.type, list(op.input), g_input) == ("SparseToDense", ["I", "Y_grad", "D"], ["D_grad", None])


@pytest.mark.parametrize("args", [{"axis": 1}, {"match_outer": 1}, {"axis": -1, "match_outer": 1}])
def test_gather_maker_scatters_other_axes_with_batch_gather_gradient(args):
    grad_ops, g_input = GetGradientForOp(make_op("Gather", ["X", "I"], ["Y"], args), ["Y_grad"])
    (op,) = grad_ops
    assert (op.type, list(op.input), g_input) == ("BatchGatherGradient", ["X", "I", "Y_grad"], ["X_grad", None])
    assert {a.name: a.i for a in op.arg} == {"axis": args.get("axis", 0),
                                             "match_outer": args.get("match_outer", 0)}


# -- BatchGather: Gather along axis 1 by default ------------------------------------------

def reference_batch_gather(data, indices, axis=1, match_outer=0):
    """Every gathered entry, one at a time (match_outer: per outer slice)."""
    axis %= data.ndim
    if not match_outer:
        return np.take(data, indices, axis=axis)
    out = np.empty(data.shape[:axis] + indices.shape[axis:] + data.shape[axis + 1:], data.dtype)
    for outer in np.ndindex(*data.shape[:axis]):
        for rest in np.ndindex(*indices.shape[axis:]):
            out[outer + rest] = data[outer + (indices[outer + rest],)]
    return out


BATCH_GATHERS = [
    (rand(3, 4, 2), i32(0, 3, 3), {}),
    (rand(2, 5), np.array([[4, 0], [1, -1]], np.int64), {}),
    (rand(3, 4), np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]], np.int32), {"match_outer": 1}),
    (rand(2, 3, 4), np.array([[[1, 0], [3, 3], [2, 2]], [[0, 0], [1, 2], [3, 1]]], np.int64),
     {"axis": 2, "match_outer": 1}),
    (rand(4, 3), i64(2, 0), {"axis": 0}),
    (rand(2, 0, 3), np.zeros(0, np.int32), {"axis": 2}),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("data, indices, args", BATCH_GATHERS)
def test_batch_gather(data, indices, args, device):
    check_reference("BatchGather", [data, indices], reference_batch_gather, args, device=device)


@pytest.mark.parametrize("data, indices, args", BATCH_GATHERS)
def test_batch_gather_gradient(data, indices, args):
    dy = rand(*reference_batch_gather(data, indices, **args).shape, seed=2)
    check_gradient_op("BatchGather", [data, indices], "BatchGatherGradient", [data, indices, dy],
                      {0: 0}, [dy], args)
    gather_args = {"axis": 1, **args}  # Gather's own maker reaches BatchGatherGradient too
    if gather_args["axis"] != 0 or gather_args.get("match_outer"):
        report = check_op_gradient(make_op("Gather", ["D", "I"], ["Y"], gather_args), [data, indices], 0,
                                   outputs_with_grads=(0,))
        assert report.ok, report


@pytest.mark.parametrize("inputs, args, message", [
    ([rand(3, 4), i32(4)], {}, "index 4 is out of range for DATA axis 1 of size 4"),
    ([rand(3), i32(0)], {}, "axis 1 is out of range for rank 1"),
    ([rand(3, 4), i32(0, 1)], {"match_outer": 1}, "with match_outer"),
])
def test_batch_gather_errors(inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op("BatchGather", inputs, args)
    with pytest.raises(FAILS, match=message):
        dy_shape = (3, 2) if "match_outer" in args else (3, 1)
        run_op("BatchGatherGradient", inputs + [rand(*dy_shape)], args)


def test_batch_gather_inference():
    data, indices = TensorInfo((3, 4, 2)), TensorInfo((5, 6), "int32")
    assert infer("BatchGather", [data, indices]) == [TensorInfo((3, 5, 6, 2))]
    dy = TensorInfo((3, 5, 6, 2), "float64")
    assert infer("BatchGatherGradient", [data, indices, dy]) == [TensorInfo((3, 4, 2), "float64")]
    assert infer("BatchGatherGradient", [data, None, dy]) == [TensorInfo((3, 4, 2), "float64")]
    with pytest.raises(ShapeError, match=r"dY \[3, 5, 2\] does not match the gathered shape \[3, 5, 6, 2\]"):
        infer("BatchGatherGradient", [data, indices, TensorInfo((3, 5, 2))])
    with pytest.raises(ShapeError, match="indices must be int32 or int64"):
        infer("BatchGatherGradient", [data, TensorInfo((5,), "float32"), dy])


# -- segments given by lengths: LengthsGather, LengthsToRanges, SplitByLengths -------------

def segments(items, lengths):
    ends = np.cumsum(lengths)
    return [items[end - length:end] for end, length in zip(ends, lengths)]


@pytest.mark.parametrize("items, lengths, indices", [
    (rand(6, 2), i32(2, 0, 3, 1), i64(2, 0, 2, 1)),
    (rand(5), i64(5), i32(0, 0)),
    (rand(3, 2, dtype=np.int32), i32(1, 2), np.zeros(0, np.int64)),
    (rand(4, 3), i32(1, 3), np.array([[1], [0]], np.int32)),
])
def test_lengths_gather(items, lengths, indices):
    def reference(items, lengths, indices):
        picked = [segments(items, lengths)[i] for i in indices.ravel()]
        return np.concatenate(picked) if picked else items[:0]
    (y,) = check_reference("LengthsGather", [items, lengths, indices], reference)
    assert y.dtype == items.dtype


@pytest.mark.parametrize("inputs, message", [
    ([rand(5, 2), i32(2, 2), i32(0)], "lengths add up to 4, but ITEMS' first dim has size 5"),
    ([rand(4), i32(2, 2), i32(2)], "index 2 is out of range for LENGTHS of size 2"),
    ([rand(4), i32(5, -1), i32(0)], "lengths must be >= 0"),
    ([rand(4), i32(4), np.array([0.0])], "indices must be int32 or int64"),
    ([rand(4), np.array([4.0]), i32(0)], "input lengths must be a 1-D int tensor"),
])
def test_lengths_gather_errors(inputs, message):
    with pytest.raises(FAILS, match=message):
        run_op("LengthsGather", inputs)


@pytest.mark.parametrize("lengths", [i32(2, 0, 3), i64(4), np.zeros(0, np.int32)])
def test_lengths_to_ranges(lengths):
    def reference(lengths):
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else lengths
        return np.stack([offsets, lengths], axis=1).astype(np.int32).reshape(-1, 2)
    (y,) = check_reference("LengthsToRanges", [lengths], reference)
    assert y.dtype == np.int32


SPLITS_BY_LENGTHS = [  # (data, lengths, axis, number of outputs)
    (rand(6, 2), i32(1, 2, 0, 3), 0, 2),
    (rand(2, 5), i64(2, 3), 1, 1),
    (rand(3, 4), i32(1, 1, 2), -1, 3),
    (rand(0, 3), np.zeros(0, np.int32), 0, 2),
    (rand(4, 2), i32(1, 0, 1, 2), 0, 4),
]


@pytest.mark.parametrize("data, lengths, axis, n", SPLITS_BY_LENGTHS)
def test_split_by_lengths(data, lengths, axis, n):
    def reference(data, lengths, axis):
        bounds = np.cumsum([0] + list(lengths))
        group = len(lengths) // n
        return tuple(np.take(data, np.arange(bounds[k * group], bounds[(k + 1) * group]), axis=axis)
                     for k in range(n))
    check_reference("SplitByLengths", [data, lengths], reference, {"axis": axis}, num_outputs=n)


@pytest.mark.parametrize("data, lengths, axis, n", SPLITS_BY_LENGTHS[:3])
def test_split_by_lengths_gradient(data, lengths, axis, n):
    op = make_op("SplitByLengths", ["X", "L"], [f"Y{k}" for k in range(n)], {"axis": axis})
    report = check_op_gradient(op, [data, lengths], 0, outputs_with_grads=tuple(range(n)))
    assert report.ok, report


def test_split_by_lengths_maker_concats_along_its_axis():
    op = make_op("SplitByLengths", ["X", "L"], ["A", "B"], {"axis": 1})
    grad_ops, g_input = GetGradientForOp(op, [None, "B_grad"])
    assert [o.type for o in grad_ops] == ["ConstantFill", "Concat"]  # zeros for A's missing gradient
    assert list(grad_ops[1].input) == ["_A_zero_grad", "B_grad"] and g_input == ["X_grad", None]
    assert [(a.name, a.i) for a in grad_ops[1].arg] == [("axis", 1)]


@pytest.mark.parametrize("inputs, args, n, message", [
    ([rand(5), i32(2, 2)], {}, 1, "lengths add up to 4, but axis 0 has size 5"),
    ([rand(4), i32(1, 1, 2)], {}, 2, "3 lengths do not make 2 equal groups"),
    ([rand(4), i32(4)], {"axis": 1}, 1, "axis 1 is out of range"),
    ([rand(4), i32(6, -2)], {}, 1, "lengths must be >= 0"),
])
def test_split_by_lengths_errors(inputs, args, n, message):
    with pytest.raises(FAILS, match=message):
        run_op("SplitByLengths", inputs, args, num_outputs=n)


def test_lengths_inference():
    lengths = TensorInfo((4,), "int32")
    assert infer("LengthsToRanges", [lengths]) == [TensorInfo((4, 2), "int32")]
    assert infer("LengthsGather", [(6, 2), lengths, TensorInfo((3,), "int64")]) == [None]
    assert infer("SplitByLengths", [(6, 2), lengths], n_out=2) == [None, None]
    with pytest.raises(ShapeError, match="4 lengths do not make 3 equal groups"):
        infer("SplitByLengths", [(6, 2), lengths], n_out=3)
    with pytest.raises(ShapeError, match="input lengths must be a 1-D int tensor"):
        infer("LengthsToRanges", [(4,)])
    with pytest.raises(ShapeError, match="input LENGTHS must be a 1-D int tensor"):
        infer("LengthsGather", [(6, 2), (4,), TensorInfo((3,), "int64")])
    with pytest.raises(ShapeError, match="ITEMS must have rank >= 1"):
        infer("LengthsGather", [(), lengths, TensorInfo((3,), "int64")])
