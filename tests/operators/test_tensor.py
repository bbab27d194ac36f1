"""Tensor family: each op against an independent NumPy reference, gradient ops
against numeric differentiation of their forward ops, and the errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op

FAILS = (OpFailure, NetError)
shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


def rand(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def reference_reshape(x, shape):
    """0 copies the input dim at its position; NumPy infers the -1."""
    return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


def caffe2_range(dim, start, end):
    """Caffe2's slice bounds: negative counts from one past the end, clipped to dim."""
    start, end = (dim + 1 + v if v < 0 else v for v in (start, end))
    return range(min(start, dim), min(end, dim))


def reference_slice(x, starts, ends):
    out = x
    for axis, (start, end) in enumerate(zip(starts, ends)):
        out = np.take(out, list(caffe2_range(x.shape[axis], start, end)), axis=axis)
    return out


# -- reshapes -----------------------------------------------------------------------

@pytest.mark.parametrize("dims, shape", [
    ((2, 3, 4), [4, -1]), ((2, 3, 4), [0, 12]), ((2, 3, 4), [0, -1, 2]), ((6,), [1, 2, 3]),
    ((2, 3, 4), [-1]), ((1,), []), ((2, 3), [0, 0]),
])
def test_reshape_arg_and_input(dims, shape):
    x = rand(*dims)
    expected = (reference_reshape(x, shape), np.array(dims, dtype=np.int64))
    _, old = check_reference("Reshape", [x], lambda x, shape: expected, {"shape": shape})
    assert old.dtype == np.int64
    for index_type in (np.int64, np.int32):
        check_reference("Reshape", [x, np.array(shape, dtype=index_type)], lambda *_: expected)


@pytest.mark.parametrize("inputs, args, message", [
    ([rand(2, 3, 4)], {"shape": [5, -1]}, "cannot infer the -1"),
    ([rand(2, 3, 4)], {"shape": [4, 5]}, "24 elements"),
    ([rand(2, 3), np.array([6])], {"shape": [6]}, "do not also give"),
    ([rand(2, 3)], {}, "needs the `shape` arg"),
    ([rand(2, 3), np.array([[6]])], {}, "must be a 1-D int tensor"),
    ([rand(2, 3), np.array([7])], {}, "6 elements"),
])
def test_reshape_errors(inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op("Reshape", inputs, args, num_outputs=2)


@settings(max_examples=10, deadline=None)
@given(dims=shapes, data=st.data())
def test_flatten(dims, data):
    axis = data.draw(st.integers(0, len(dims)))
    x = rand(*dims)
    (y,) = check_reference("Flatten", [x], lambda x, axis: x.reshape(
        int(np.prod(dims[:axis])), int(np.prod(dims[axis:]))), {"axis": axis})
    assert y.dtype == np.float32
    check_reference("FlattenToVec", [x], np.ravel)


def test_flatten_default_axis_and_error():
    x = np.arange(24).reshape(2, 3, 4)
    check_reference("Flatten", [x], lambda x: x.reshape(2, 12))
    with pytest.raises(FAILS, match="axis 4 is out of range"):
        run_op("Flatten", [x], {"axis": 4})


def test_resize_like():
    x, like = np.arange(6, dtype=np.int32), rand(3, 2)
    (y,) = check_reference("ResizeLike", [x, like], lambda x, like: x.reshape(3, 2))
    assert y.dtype == np.int32
    with pytest.raises(FAILS, match="different numbers of elements"):
        run_op("ResizeLike", [x, rand(4, 2)])


@pytest.mark.parametrize("dims, squeeze", [((1, 3, 1, 2), [0, 2]), ((3, 1), [1]), ((1,), [0]),
                                           ((1, 1, 4), [1, 0, 1])])
def test_squeeze_and_expand_dims(dims, squeeze):
    x = rand(*dims)
    (y,) = check_reference("Squeeze", [x], lambda x, dims: np.squeeze(x, tuple(set(dims))),
                           {"dims": squeeze})
    check_reference("ExpandDims", [y], lambda y, dims: x, {"dims": squeeze})


def test_squeeze_and_expand_dims_errors():
    with pytest.raises(FAILS, match=r"dim 1 of input \[1, 3\] is not of size 1"):
        run_op("Squeeze", [rand(1, 3)], {"dims": [1]})
    with pytest.raises(FAILS, match="cannot insert dim 5"):
        run_op("ExpandDims", [rand(3, 4)], {"dims": [0, 5]})


@settings(max_examples=15, deadline=None)
@given(dims=shapes, data=st.data())
def test_transpose(dims, data):
    axes = data.draw(st.permutations(range(len(dims))))
    x = rand(*dims)
    check_reference("Transpose", [x], lambda x, axes: np.transpose(x, axes), {"axes": axes})
    (y,) = check_reference("Transpose", [x], np.transpose)
    assert y.flags.c_contiguous


def test_transpose_keeps_dtype_and_rejects_bad_axes():
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert run_op("Transpose", [x])[0].dtype == np.int64
    with pytest.raises(FAILS, match=r"axes \[0, 0\] is not a permutation"):
        run_op("Transpose", [x], {"axes": [0, 0]})


# -- joins and splits -----------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(dims=shapes, data=st.data())
def test_concat_and_split_round_trip(dims, data):
    axis = data.draw(st.integers(-len(dims), len(dims) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    inputs = []
    for seed, size in enumerate(sizes):
        shape = list(dims)
        shape[axis] = size
        inputs.append(rand(*shape, seed=seed))
    expected = (np.concatenate(inputs, axis=axis), np.array(sizes, dtype=np.int32))
    joined, split_info = check_reference("Concat", inputs, lambda *_, **__: expected,
                                         {"axis": axis})
    assert split_info.dtype == np.int32
    # Concat's gradient is Split(dY, split_info): it must hand each input its part back.
    check_reference("Split", [joined, split_info], lambda *_, **__: inputs, {"axis": axis},
                    num_outputs=len(inputs))
    check_reference("Split", [joined], lambda *_, **__: inputs, {"axis": axis, "split": sizes},
                    num_outputs=len(inputs))


def test_concat_order_and_add_axis():
    a, b = rand(2, 3, 4, 5), rand(2, 3, 4, 5, seed=1)
    check_reference("Concat", [a, b], lambda a, b: (np.concatenate([a, b], 1), [3, 3]))
    check_reference("Concat", [a, b], lambda a, b, order: (np.concatenate([a, b], 3), [5, 5]),
                    {"order": "NHWC"})
    check_reference("DepthConcat", [a, b], lambda a, b: (np.concatenate([a, b], 1), [3, 3]))
    for axis in (0, 2, 4, -1):
        check_reference("Concat", [a, b, a], lambda *x, axis, add_axis: (
            np.stack(x, axis), [1, 1, 1]), {"axis": axis, "add_axis": 1})
    ints = [np.arange(4, dtype=np.int32).reshape(2, 2)] * 2
    assert run_op("Concat", ints, {"axis": 0}, num_outputs=2)[0].dtype == np.int32


@pytest.mark.parametrize("inputs, args, message", [
    ([rand(2, 3, 4), rand(2, 5, 5)], {"axis": 1}, r"input 1 is \[2, 5, 5\] but input 0 is"),
    ([rand(2, 3), rand(2, 4)], {"axis": 0, "add_axis": 1}, "must agree on every dim"),
    ([rand(2, 3), rand(2, 3)], {"axis": 0, "order": "NCHW"}, "not both"),
    ([rand(2, 3), rand(2, 3)], {"axis": 2}, "axis 2 is out of range"),
    ([rand(2, 3), np.zeros((2, 3), np.int32)], {"axis": 0}, "input 1 is int32"),
])
def test_concat_errors(inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op("Concat", inputs, args, num_outputs=2)


def test_split_equal_parts_order_and_add_axis():
    x = rand(2, 6, 3, 4)
    check_reference("Split", [x], lambda x: np.split(x, 3, axis=1), num_outputs=3)
    check_reference("DepthSplit", [x], lambda x, order: np.split(x, 2, axis=3),
                    {"order": "NHWC"}, num_outputs=2)
    check_reference("Split", [x], lambda x, axis, add_axis: list(np.moveaxis(x, -1, 0)),
                    {"axis": -1, "add_axis": 1}, num_outputs=4)
    ints = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert all(part.dtype == np.int64 for part in run_op("Split", [ints], num_outputs=2))


@pytest.mark.parametrize("inputs, args, n_out, message", [
    ([rand(2, 5)], {"axis": 1, "split": [2, 2]}, 2, "adds up to 4"),
    ([rand(2, 5)], {"axis": 1, "split": [5]}, 2, "1 sizes for 2 outputs"),
    ([rand(2, 5)], {"axis": 1}, 2, "does not split into 2 equal parts"),
    ([rand(2, 5)], {"axis": 1, "add_axis": 1}, 1, "needs parts of size 1"),
    ([rand(2, 5), np.array([2, 2], np.int32)], {"axis": 1}, 2, "adds up to 4"),
    ([rand(2, 4), np.array([2, 2], np.int32)], {"axis": 1, "split": [2, 2]}, 2, "not also give"),
])
def test_split_errors(inputs, args, n_out, message):
    with pytest.raises(FAILS, match=message):
        run_op("Split", inputs, args, num_outputs=n_out)


# -- channel shuffle ---------------------------------------------------------------------

def reference_shuffle(x, group, order="NCHW"):
    """Y[:, k * G + g] = X[:, g * K + k] along the channel axis (K = C / G)."""
    axis = 1 if order == "NCHW" else x.ndim - 1
    channels = x.shape[axis]
    k_per_group = channels // group
    source = [(c % group) * k_per_group + c // group for c in range(channels)]
    return np.take(x, source, axis=axis)


@pytest.mark.parametrize("dims, group, order", [
    ((2, 6, 3, 3), 3, "NCHW"), ((2, 6, 3, 3), 2, "NCHW"), ((2, 3, 3, 6), 3, "NHWC"),
    ((3, 4), 2, "NCHW"), ((2, 4, 5), 4, "NCHW"), ((2, 6, 2, 2), 1, "NCHW"),
])
def test_channel_shuffle_and_gradient(dims, group, order):
    x = rand(*dims)
    args = {"group": group, "order": order}
    check_reference("ChannelShuffle", [x], lambda x, group, order: reference_shuffle(x, group, order),
                    args)
    dy = rand(*dims, seed=1)
    (dx,) = check_gradient_op("ChannelShuffle", [x], "ChannelShuffleGradient", [dy], {0: 0},
                              [dy], args)
    np.testing.assert_array_equal(reference_shuffle(dx, group, order), dy)


def test_channel_shuffle_error():
    with pytest.raises(FAILS, match="group 4 does not divide the 6 channels"):
        run_op("ChannelShuffle", [rand(2, 6, 3, 3)], {"group": 4})


# -- slices -------------------------------------------------------------------------------

SLICES = [((2, 4), [0, 1], [-1, 3]), ((5, 3, 2), [1], [4]), ((5, 3), [0, -3], [-1, -1]),
          ((5, 3), [0, 0], [-1, 10]), ((4, 5), [2, 0], [2, -1]), ((3, 4), [0, 0], [3, 4]),
          ((3, 4, 2), [0, 0, 1], [-1, -1, 2])]


@pytest.mark.parametrize("dims, starts, ends", SLICES)
def test_slice_arg_and_input_forms(dims, starts, ends):
    x = rand(*dims)
    expected = reference_slice(x, starts, ends)
    check_reference("Slice", [x], lambda x, **_: expected, {"starts": starts, "ends": ends})
    for index_type in (np.int32, np.int64):
        bounds = [np.array(starts, index_type), np.array(ends, index_type)]
        check_reference("Slice", [x] + bounds, lambda *_: expected)


@pytest.mark.parametrize("dims, starts, ends", SLICES)
def test_slice_gradient(dims, starts, ends):
    x = rand(*dims)
    dy = rand(*reference_slice(x, starts, ends).shape, seed=1)
    args = {"starts": starts, "ends": ends}
    check_gradient_op("Slice", [x], "SliceGradient", [x, dy], {0: 0}, [dy], args)
    bounds = [np.array(starts, np.int64), np.array(ends, np.int64)]
    check_gradient_op("Slice", [x] + bounds, "SliceGradient", [x] + bounds + [dy], {0: 0}, [dy])


@pytest.mark.parametrize("inputs, args, message", [
    ([rand(4, 4)], {"starts": [1, 1], "ends": [2, 2]}, "only one dim may be sliced"),
    ([rand(4, 4)], {"starts": [3], "ends": [1]}, "is not a slice"),
    ([rand(4, 4)], {"starts": [0], "ends": [1, 2]}, "differ in length"),
    ([rand(4, 4)], {"starts": [0, 0, 0], "ends": [1, 1, 1]}, "3 starts for input"),
    ([rand(4, 4)], {}, "needs the `starts` and `ends`"),
    ([rand(4, 4), np.array([0.5]), np.array([1])], {}, "must be a 1-D int tensor"),
])
def test_slice_errors(inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op("Slice", inputs, args)


def test_slice_gradient_checks_dy():
    with pytest.raises(FAILS, match=r"dY \[2, 4\] does not match the slice \[1, 4\]"):
        run_op("SliceGradient", [rand(4, 4), rand(2, 4)], {"starts": [1], "ends": [2]})


# -- copies, identities, casts, shapes ---------------------------------------------------

@pytest.mark.parametrize("op_type", ["Copy", "Alias", "EnsureCPUOutput", "StopGradient"])
def test_identity_ops(op_type):
    for x in (rand(2, 3), np.arange(5, dtype=np.int64), np.array(True)):
        (y,) = check_reference(op_type, [x], lambda x: x)
        assert y.dtype == x.dtype
    check_reference("CopyOnDeviceLike", [rand(2, 3), rand(4)], lambda x, dst: x)


@pytest.mark.parametrize("to, dtype", [
    (1, np.float32), ("FLOAT", np.float32), (2, np.int32), ("INT64", np.int64), (10, np.int64),
    ("bool", np.bool_), (13, np.float64), (12, np.float16), (6, np.uint8), (7, np.int8),
    (9, np.int16), (8, np.uint16), (3, np.uint8),
])
def test_cast(to, dtype):
    x = np.array([[-2.7, -0.5, 0.0], [0.4, 1.9, 3.0]], dtype=np.float32)
    if np.dtype(dtype).kind == "u":
        x = np.abs(x)
    (y,) = check_reference("Cast", [x], lambda x, to: x.astype(dtype), {"to": to})
    assert y.dtype == dtype


def test_cast_truncates_and_round_trips_ints():
    x = np.array([-2.7, 2.7], dtype=np.float64)
    np.testing.assert_array_equal(run_op("Cast", [x], {"to": "INT32"})[0], [-2, 2])
    ints = np.array([0, 3, -1], dtype=np.int32)
    np.testing.assert_array_equal(run_op("Cast", [ints], {"to": "BOOL"})[0], [False, True, True])
    assert run_op("Cast", [ints], {"to": "FLOAT"})[0].dtype == np.float32


@pytest.mark.parametrize("to, message", [(0, "UNDEFINED"), ("STRING", "STRING")])
def test_cast_errors(to, message):
    with pytest.raises(FAILS, match=message):
        run_op("Cast", [rand(2)], {"to": to})


@settings(max_examples=10, deadline=None)
@given(dims=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4), data=st.data())
def test_shape(dims, data):
    x = np.zeros(dims, dtype=np.int8)
    (y,) = check_reference("Shape", [x], lambda x: np.array(dims, dtype=np.int64))
    assert y.dtype == np.int64
    if dims:
        axes = data.draw(st.lists(st.integers(-len(dims), len(dims) - 1), min_size=1, max_size=3))
        check_reference("Shape", [x], lambda x, axes: np.array([dims[a] for a in axes]),
                        {"axes": axes})


def test_shape_axes_error():
    with pytest.raises(FAILS, match="axis 3 is out of range"):
        run_op("Shape", [rand(2, 3, 4)], {"axes": [3]})


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


def test_gather_match_outer():
    x = rand(4, 5, 3)
    indices = np.random.default_rng(1).integers(0, 5, size=(4, 2, 2)).astype(np.int32)
    expected = np.empty((4, 2, 2, 3), np.float32)
    for o, i, j in np.ndindex(4, 2, 2):
        expected[o, i, j] = x[o, indices[o, i, j]]
    check_reference("Gather", [x, indices], lambda *_, **__: expected,
                    {"axis": 1, "match_outer": 1})


@pytest.mark.parametrize("inputs, args, message", [
    ([rand(5, 3), np.array([5])], {}, "index 5 is out of range for DATA axis 0 of size 5"),
    ([rand(5, 3), np.array([-6])], {}, "index -6 is out of range"),
    ([rand(5, 3), np.array([1.0])], {}, "indices must be int32 or int64"),
    ([rand(5, 3), np.array([1])], {"axis": 2}, "axis 2 is out of range"),
    ([rand(4, 5), np.zeros((3, 2), np.int32)], {"axis": 1, "match_outer": 1}, "with match_outer"),
])
def test_gather_errors(inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op("Gather", inputs, args)


def reference_sparse_to_dense(indices, values, first):
    out = np.zeros((first,) + values.shape[1:], values.dtype)
    for index, row in zip(indices, values):
        out[index] += row
    return out


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


@pytest.mark.parametrize("inputs, args, message", [
    ([np.array([0, 6]), rand(2, 3), rand(5)], {}, "index 6 is out of range"),
    ([np.array([0, -1]), rand(2, 3)], {}, "index -1 is out of range"),
    ([np.array([0, 1]), rand(3, 3)], {}, "one row of values"),
    ([np.array([0, 1]), rand(2), rand(4)], {"output_first_dim": 4}, "do not also give"),
])
def test_sparse_to_dense_errors(inputs, args, message):
    with pytest.raises(FAILS, match=message):
        run_op("SparseToDense", inputs, args)


# -- tiles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dims, tiles, axis", [((2, 3), 3, 0), ((2, 3, 4), 2, -1), ((5,), 1, 0),
                                               ((2, 3, 2), 2, 1)])
def test_tile_and_gradient(dims, tiles, axis):
    x = rand(*dims)
    reps = [1] * len(dims)
    reps[axis] = tiles
    args = {"tiles": tiles, "axis": axis}
    (y,) = check_reference("Tile", [x], lambda x, **_: np.tile(x, reps), args)
    scalars = [np.array([tiles], np.int32), np.array([axis], np.int64)]
    check_reference("Tile", [x] + scalars, lambda *_: np.tile(x, reps))
    check_reference("Tile", [x, scalars[0]], lambda *_, **__: np.tile(x, reps), {"axis": axis})
    dy = rand(*y.shape, seed=1)
    check_gradient_op("Tile", [x], "TileGradient", [dy], {0: 0}, [dy], args)
    check_gradient_op("Tile", [x] + scalars, "TileGradient", [dy] + scalars, {0: 0}, [dy])


def test_tile_dtypes_and_errors():
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert run_op("Tile", [ints], {"tiles": 2, "axis": 1})[0].dtype == np.int32
    assert run_op("TileGradient", [ints], {"tiles": 3, "axis": 1})[0].dtype == np.int32
    with pytest.raises(FAILS, match="is not 2 copies along axis 0"):
        run_op("TileGradient", [rand(3, 3)], {"tiles": 2, "axis": 0})
    with pytest.raises(FAILS, match="input tiles must hold one value"):
        run_op("Tile", [rand(3), np.array([1, 2])])
    with pytest.raises(FAILS, match="cannot tile a scalar"):
        run_op("Tile", [np.float32(1.0)], {"tiles": 2})


def test_inputs_are_never_modified():
    x = rand(2, 6, 3)
    before = x.copy()
    run_op("ChannelShuffle", [x], {"group": 2})
    run_op("Reshape", [x], {"shape": [-1]}, num_outputs=2)
    run_op("SliceGradient", [x, x[:1]], {"starts": [0], "ends": [1]})
    np.testing.assert_array_equal(x, before)


# -- gradient makers: the registered gradient of each op against central differences ----

def ints(*values, dtype=np.int64):
    return np.array(values, dtype=dtype)


# (op type, inputs, args, number of outputs, inputs to check, outputs with gradients)
MAKERS = [
    ("Reshape", [rand(2, 3, 4)], {"shape": [4, -1]}, 2, [0], (0,)),
    ("Reshape", [rand(2, 3), ints(1, 0, -1)], {}, 2, [0], (0,)),
    ("Flatten", [rand(2, 3, 2)], {"axis": 2}, 1, [0], (0,)),
    ("FlattenToVec", [rand(2, 3)], {}, 1, [0], (0,)),
    ("Transpose", [rand(2, 3, 4)], {}, 1, [0], (0,)),
    ("Transpose", [rand(2, 3, 4)], {"axes": [1, 2, 0]}, 1, [0], (0,)),
    ("Transpose", [rand(2, 1, 3, 2)], {"axes": [0, 2, 3, 1]}, 1, [0], (0,)),
    ("Concat", [rand(2, 3), rand(2, 1, seed=1), rand(2, 2, seed=2)], {"axis": 1}, 2, [0, 1, 2], (0,)),
    ("Concat", [rand(1, 2, 2, 3), rand(1, 2, 2, 1, seed=1)], {"order": "NHWC"}, 2, [0, 1], (0,)),
    ("DepthConcat", [rand(2, 3), rand(2, 3, seed=1)], {"axis": 0, "add_axis": 1}, 2, [0, 1], (0,)),
    ("Split", [rand(2, 6)], {"axis": 1, "split": [1, 2, 3]}, 3, [0], (0, 1, 2)),
    ("Split", [rand(2, 4, 3), ints(1, 3, dtype=np.int32)], {"axis": -2}, 2, [0], (0, 1)),
    ("Split", [rand(3, 2)], {"axis": 0, "add_axis": 1}, 3, [0], (0, 1, 2)),
    ("Split", [rand(1, 4, 2)], {}, 2, [0], (0, 1)),
    ("ChannelShuffle", [rand(1, 4, 2, 2)], {"group": 2}, 1, [0], (0,)),
    ("ChannelShuffle", [rand(2, 1, 2, 6)], {"group": 3, "order": "NHWC"}, 1, [0], (0,)),
    ("Slice", [rand(3, 4)], {"starts": [1, 0], "ends": [3, -1]}, 1, [0], (0,)),
    ("Slice", [rand(2, 5), ints(0, 1), ints(-1, -2)], {}, 1, [0], (0,)),
    ("Squeeze", [rand(1, 3, 1, 2)], {"dims": [0, 2]}, 1, [0], (0,)),
    ("ExpandDims", [rand(3, 2)], {"dims": [0, 3]}, 1, [0], (0,)),
    ("Copy", [rand(2, 3)], {}, 1, [0], (0,)),
    ("Cast", [rand(2, 3)], {"to": "FLOAT", "from_type": "DOUBLE"}, 1, [0], (0,)),
    ("Cast", [rand(2, 3)], {"to": 13, "from_type": 13}, 1, [0], (0,)),
    ("Gather", [rand(5, 3), ints(0, 2, 2, 4)], {"dense_gradient": 1}, 1, [0], (0,)),
    ("Gather", [rand(4), ints(3, 1, 1, dtype=np.int32)], {}, 1, [0], (0,)),
    ("SparseToDense", [ints(0, 2, 2), rand(3, 2)], {"output_first_dim": 4}, 1, [1], (0,)),
    ("SparseToDense", [ints(3, 1, dtype=np.int32), rand(2), rand(5)], {}, 1, [1], (0,)),
    ("Tile", [rand(2, 3)], {"tiles": 3, "axis": 1}, 1, [0], (0,)),
    ("Tile", [rand(2, 1, 2), ints(2), ints(-1)], {}, 1, [0], (0,)),
]


@pytest.mark.parametrize("op_type, inputs, args, n_out, to_check, with_grads", MAKERS,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MAKERS)])
def test_registered_gradient_matches_numeric(op_type, inputs, args, n_out, to_check, with_grads):
    op = make_op(op_type, [f"X{i}" for i in range(len(inputs))], [f"Y{i}" for i in range(n_out)], args)
    for index in to_check:
        report = check_op_gradient(op, inputs, index, outputs_with_grads=with_grads)
        assert report.ok, report


def test_split_gradient_fills_zeros_for_outputs_without_one():
    # The zeros come from ConstantFill, FLOAT as in Caffe2, so the check runs in float32.
    op = make_op("Split", ["X"], ["A", "B", "C"], {"axis": 1, "split": [2, 1, 1]})
    report = check_op_gradient(op, [rand(2, 4)], 0, outputs_with_grads=(0, 2), float64=False)
    assert report.ok, report
    grad_ops, g_input = GetGradientForOp(op, ["A_grad", None, "C_grad"])
    assert [o.type for o in grad_ops] == ["ConstantFill", "Concat"]
    assert list(grad_ops[1].input) == ["A_grad", "_B_zero_grad", "C_grad"]
    assert g_input == ["X_grad"]


def test_maker_op_lists():
    """Inputs, outputs and args of the emitted ops, as in Caffe2's makers."""
    grad_ops, g_input = GetGradientForOp(make_op("Reshape", ["X"], ["Y", "old"], {"shape": [6]}), ["Y_grad", None])
    assert [(list(o.input), list(o.output), list(o.arg)) for o in grad_ops] == [
        (["Y_grad", "old"], ["X_grad", "_X_dims"], [])]
    grad_ops, g_input = GetGradientForOp(make_op("Concat", ["A", "B"], ["Y", "info"], {"axis": 0}), ["Y_grad", None])
    assert (grad_ops[0].type, list(grad_ops[0].input), list(grad_ops[0].output)) == (
        "Split", ["Y_grad", "info"], ["A_grad", "B_grad"])
    assert [a.name for a in grad_ops[0].arg] == ["axis"]
    for forward, backward in (("CopyCPUToGPU", "CopyGPUToCPU"), ("CopyGPUToCPU", "CopyCPUToGPU")):
        grad_ops, g_input = GetGradientForOp(make_op(forward, ["X"], ["Y"]), ["Y_grad"])
        assert [(o.type, list(o.input), list(o.output)) for o in grad_ops] == [(backward, ["Y_grad"], ["X_grad"])]
    grad_ops, g_input = GetGradientForOp(make_op("Alias", ["X"], ["Y"]), ["Y_grad"])
    assert (grad_ops, g_input) == ([], ["Y_grad"])
    grad_ops, g_input = GetGradientForOp(make_op("Gather", ["D", "I"], ["Y"]), ["Y_grad"])
    assert (list(grad_ops[0].input), g_input) == (["I", "Y_grad", "D"], ["D_grad", None])
    grad_ops, g_input = GetGradientForOp(make_op("Cast", ["X"], ["Y"], {"to": "FLOAT", "from_type": "INT32"}), ["Y_grad"])
    args = {a.name: a for a in grad_ops[0].arg}
    assert (args["to"].i if args["to"].HasField("i") else args["to"].s) in (2, b"INT32")


@pytest.mark.parametrize("op_type, args, message", [
    ("Cast", {"to": "FLOAT"}, "from_type"),
    ("Gather", {"axis": 1}, "axis=0"),
    ("Gather", {"match_outer": 1}, "match_outer"),
])
def test_maker_errors(op_type, args, message):
    inputs = ["X", "I"][:2 if op_type == "Gather" else 1]
    with pytest.raises(GradientError, match=message):
        GetGradientForOp(make_op(op_type, inputs, ["Y"], args), ["Y_grad"])


def test_pass_throughs_and_unused_split_parts_in_a_net():
    """Alias passes dY through with no op; a Split part nobody reads gets zeros."""
    from pycaffe2.gradient_checker import check_net_gradient
    from pycaffe2.proto import caffe2_pb2
    net = caffe2_pb2.NetDef(op=[
        make_op("Alias", ["X"], ["A"]),
        make_op("Split", ["A"], ["P", "Q"], {"axis": 1}),
        make_op("Reshape", ["P"], ["R", "R_shape"], {"shape": [-1]}),
        make_op("Concat", ["R", "W"], ["Y", "Y_info"], {"axis": 0}),
        make_op("Transpose", ["Y"], ["Z"]),
    ])
    values = {"X": rand(2, 4), "W": rand(3, seed=1)}
    for report in check_net_gradient(net, ["Z"], values, ["X", "W"], float64=False):
        assert report.ok, report
