"""Tensor family (layout ops): each op against an independent NumPy reference (on both
devices where the case runs on both), gradient ops against numeric differentiation of
their forward ops, the CUDA kernels against their CPU twins for every element type,
shape inference against NumPy's shapes, and the errors (the same words at CreateNet,
on the CPU and on CUDA)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pycaffe2.core import Net
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetGradientForOp, GradientError
from pycaffe2.gradient_checker import check_op_gradient
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_devices, check_gradient_op, check_reference, device_option, make_op, run_op
from tests.operators import DEVICES
from tests.schema import infer

FAILS = (OpFailure, NetError)
shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)


BIG = (130, 257)  # 33,410 elements: more than one emulated grid's 16,384 threads


def rand(*shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-100 if np.dtype(dtype).kind == "i" else 0, 100, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def i64(*values):
    return np.array(values, np.int64)


def i32(*values):
    return np.array(values, np.int32)


def fails(op_type, inputs, args, message, device, num_outputs=None):
    with pytest.raises(FAILS, match=message):
        run_op(op_type, inputs, args, num_outputs, device_option=device_option(device))


def reference_reshape(x, shape):
    """0 copies the input dim at its position; NumPy infers the -1."""
    return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


# -- reshapes -----------------------------------------------------------------------

@pytest.mark.parametrize("dims, shape", [
    ((2, 3, 4), [4, -1]), ((2, 3, 4), [0, 12]), ((2, 3, 4), [0, -1, 2]), ((6,), [1, 2, 3]),
    ((2, 3, 4), [-1]), ((1,), []), ((2, 3), [0, 0]),
])
@pytest.mark.parametrize("device", DEVICES)
def test_reshape_arg_and_input(dims, shape, device):
    x = rand(*dims)
    expected = (reference_reshape(x, shape), np.array(dims, dtype=np.int64))
    _, old = check_reference("Reshape", [x], lambda x, shape: expected, {"shape": shape}, num_outputs=2,
                             device=device)
    assert old.dtype == np.int64
    for index_type in (np.int64, np.int32):
        check_reference("Reshape", [x, np.array(shape, dtype=index_type)], lambda *_: expected,
                        num_outputs=2, device=device)


@pytest.mark.parametrize("inputs, args, message", [
    ([rand(2, 3, 4)], {"shape": [5, -1]}, "cannot infer the -1"),
    ([rand(2, 3, 4)], {"shape": [4, 5]}, "24 elements"),
    ([rand(2, 3), np.array([6])], {"shape": [6]}, "do not also give"),
    ([rand(2, 3)], {}, "needs the `shape` arg"),
    ([rand(2, 3), np.array([[6]])], {}, "must be a 1-D int tensor"),
    ([rand(2, 3), np.array([7])], {}, "6 elements"),
])
@pytest.mark.parametrize("device", DEVICES)
def test_reshape_errors(inputs, args, message, device):
    fails("Reshape", inputs, args, message, device, num_outputs=2)


# Empty inputs (Caffe2's rules): a 0 stays a 0 dim, a -1 becomes 0.
EMPTY_RESHAPES = [((0,), [0, -1], (0, 0)), ((2, 0), [-1, 0], (0, 0)), ((0, 0), [0, 0, 0], (0, 0, 0)),
                  ((4, 0), [1, -1], (1, 0)), ((0,), [1, -1], (1, 0)), ((3, 0), [0], (0,))]


@pytest.mark.parametrize("dims, shape, expected", EMPTY_RESHAPES)
@pytest.mark.parametrize("device", DEVICES)
def test_reshape_empty(dims, shape, expected, device):
    x = rand(*dims)
    reference = (x.reshape(expected), np.array(dims, dtype=np.int64))
    check_reference("Reshape", [x], lambda x, shape: reference, {"shape": shape}, device=device)
    check_reference("Reshape", [x, i64(*shape)], lambda *_: reference, device=device)


@pytest.mark.parametrize("dims, shape, expected", EMPTY_RESHAPES)
def test_reshape_empty_gradient(dims, shape, expected):
    # The gradient reshapes dY by old_shape, whose literal 0 dims stay 0.
    workspace = Workspace("reshape_grad")
    workspace.FeedBlob("X", rand(*dims))
    net = Net("empty_reshape")
    y, _ = net.Reshape(["X"], ["Y", "old"], shape=shape)
    net.AddGradientOperators([y])
    workspace.RunNetOnce(net.Proto())
    assert workspace.FetchBlob("Y").shape == expected
    assert workspace.FetchBlob("X_grad").shape == dims


# ONNX's allowzero=1: a 0 in the shape is a 0 dim, never a copy of the input's.
@pytest.mark.parametrize("dims, shape, expected", [
    ((0, 3, 4), [3, 4, 0], (3, 4, 0)), ((2, 3), [3, -1], (3, 2)), ((0, 3), [0, -1, 3], None),
    ((2, 0), [0, 5], (0, 5)),
])
@pytest.mark.parametrize("device", DEVICES)
def test_reshape_allowzero(dims, shape, expected, device):
    x = rand(*dims)
    if expected is None:
        fails("Reshape", [x], {"shape": shape, "allowzero": 1}, "cannot infer the -1", device)
        return
    reference = (x.reshape(expected), np.array(dims, dtype=np.int64))
    check_reference("Reshape", [x], lambda *_, **__: reference, {"shape": shape, "allowzero": 1},
                    num_outputs=2, device=device)
    check_reference("Reshape", [x, i64(*shape)], lambda *_, **__: reference[:1], {"allowzero": 1},
                    num_outputs=1, device=device)
    assert infer("Reshape", [dims], n_out=2, shape=shape, allowzero=1)[0].shape == expected


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
    check_reference("Flatten", [x], lambda x, axis: x.reshape(6, 4), {"axis": -1})
    check_reference("Flatten", [x], lambda x, axis: x.reshape(1, 24), {"axis": -3})
    with pytest.raises(FAILS, match="axis -4 is out of range"):
        run_op("Flatten", [x], {"axis": -4})
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
@pytest.mark.parametrize("device", DEVICES)
def test_squeeze_and_expand_dims(dims, squeeze, device):
    x = rand(*dims)
    (y,) = check_reference("Squeeze", [x], lambda x, dims: np.squeeze(x, tuple(set(dims))),
                           {"dims": squeeze}, device=device)
    check_reference("ExpandDims", [y], lambda y, dims: x, {"dims": squeeze}, device=device)


@pytest.mark.parametrize("dim, count, expected", [(5, 3, [2, 2, 1]), (7, 4, [2, 2, 2, 1]), (6, 3, [2, 2, 2]),
                                                   (5, 4, None)])
@pytest.mark.parametrize("device", DEVICES)
def test_split_uneven(dim, count, expected, device):
    x = rand(2, dim)
    args = {"axis": 1, "uneven": 1}
    if expected is None:
        fails("Split", [x], args, "does not split into 4 parts of 2", device, num_outputs=count)
        return
    parts = np.split(x, np.cumsum(expected)[:-1], axis=1)
    check_reference("Split", [x], lambda *_, **__: parts, args, num_outputs=count, device=device)
    assert [info.shape for info in infer("Split", [(2, dim)], n_out=count, **args)] == [p.shape for p in parts]
    if dim % count:
        fails("Split", [x], {"axis": 1}, f"does not split into {count} equal parts", device, num_outputs=count)


@pytest.mark.parametrize("dims, squeeze, expected", [
    ((1, 3, 1, 2), [-2, 0], (3, 2)), ((3, 1), [-1], (3,)), ((1, 3, 1, 1), [], (3,)), ((2, 3), [], (2, 3)),
])
def test_squeeze_negative_and_all_dims(dims, squeeze, expected):
    x = rand(*dims)
    args = {"dims": squeeze} if squeeze else {}
    (y,) = check_reference("Squeeze", [x], lambda x, **_: x.reshape(expected), args)
    assert infer("Squeeze", [dims], **args)[0].shape == expected
    if squeeze:  # the negative dims count from the end of the output's rank
        check_reference("ExpandDims", [y], lambda y, dims: x, {"dims": squeeze})
        assert infer("ExpandDims", [expected], dims=squeeze)[0].shape == dims
    grads, _ = GetGradientForOp(make_op("Squeeze", ["X"], ["Y"], args), ["Y_grad"])
    assert grads[0].type == ("ExpandDims" if squeeze else "ResizeLike")
    assert check_op_gradient(make_op("Squeeze", ["X"], ["Y"], args), [x], 0).ok
    with pytest.raises(GradientError, match="in-place Squeeze without dims"):
        GetGradientForOp(make_op("Squeeze", ["X"], ["X"]), ["X_grad"])


@pytest.mark.parametrize("device", DEVICES)
def test_squeeze_and_expand_dims_take_dims_as_input(device):
    x = rand(1, 3, 1, 2)
    (y,) = check_reference("Squeeze", [x, i64(-2, 0)], lambda *_: x.reshape(3, 2), device=device)
    check_reference("ExpandDims", [y, i32(0, -2)], lambda *_: x, device=device)
    assert infer("Squeeze", [(1, 3), TensorInfo((1,), "int64")]) == [None]
    for op_type, data, dims in (("Squeeze", x, i64(0, 2)), ("ExpandDims", y, i64(0, 2))):
        op = make_op(op_type, ["X", "D"], ["Y"])
        grads, _ = GetGradientForOp(op, ["Y_grad"])
        assert [list(g.input) for g in grads] == [["Y_grad", "D"]]
        assert check_op_gradient(op, [data, dims], 0).ok
    fails("Squeeze", [x, i64(0)], {"dims": [0]}, "do not also give", device)
    fails("ExpandDims", [y], {}, "needs the `dims` arg or a dims input", device)
    fails("ExpandDims", [y, np.array([0.0], np.float32)], {}, "input dims must be a 1-D int tensor", device)


def test_expand_dims_negative():
    x = rand(3, 4)
    check_reference("ExpandDims", [x], lambda x, dims: x.reshape(3, 4, 1, 1), {"dims": [-1, -2]})
    check_reference("ExpandDims", [x], lambda x, dims: np.expand_dims(x, (0, -2)), {"dims": [0, -2]})
    with pytest.raises(FAILS, match="cannot insert dim"):
        run_op("ExpandDims", [x], {"dims": [-4]})
    with pytest.raises(FAILS, match=r"dim -3 of input \[1, 3\] is not of size 1"):
        run_op("Squeeze", [rand(1, 3)], {"dims": [-3]})


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
@pytest.mark.parametrize("device", DEVICES)
def test_concat_errors(inputs, args, message, device):
    fails("Concat", inputs, args, message, device, num_outputs=2)


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
@pytest.mark.parametrize("device", DEVICES)
def test_split_errors(inputs, args, n_out, message, device):
    fails("Split", inputs, args, message, device, num_outputs=n_out)


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


# -- copies, identities, casts, shapes ---------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type", ["Copy", "Alias", "EnsureCPUOutput", "StopGradient"])
def test_identity_ops(op_type, device):
    for x in (rand(2, 3), np.arange(5, dtype=np.int64), np.array(True)):
        (y,) = check_reference(op_type, [x], lambda x: x, device=device)
        assert y.dtype == x.dtype
    check_reference("CopyOnDeviceLike", [rand(2, 3), rand(4)], lambda x, dst: x, device=device)


@pytest.mark.parametrize("to, dtype", [
    (1, np.float32), ("FLOAT", np.float32), (2, np.int32), ("INT64", np.int64), (10, np.int64),
    ("bool", np.bool_), (13, np.float64), (12, np.float16), (6, np.uint8), (7, np.int8),
    (9, np.int16), (8, np.uint16), (3, np.uint8), ("UINT32", np.uint32), ("uint64", np.uint64),
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


@pytest.mark.parametrize("to, message", [(0, "UNDEFINED"), (17, "`to` 17 is not a data type")])
def test_cast_errors(to, message):
    with pytest.raises(FAILS, match=message):
        run_op("Cast", [rand(2)], {"to": to})


@pytest.mark.parametrize("x, expected", [
    (np.array([[3, -12], [0, 7]], np.int32), [[b"3", b"-12"], [b"0", b"7"]]),
    (np.array([1.5, -0.25], np.float32), [b"1.500000", b"-0.250000"]),
    (np.array([True, False]), [b"1", b"0"]),
    (np.zeros((0, 2), np.int64), np.zeros((0, 2), object)),
])
def test_cast_to_string(x, expected):
    """Caffe2 writes numbers as std::to_string does; string tensors hold bytes."""
    for to in ("STRING", 4):
        (y,) = check_reference("Cast", [x], lambda x, to: np.array(expected, dtype=object).reshape(x.shape),
                               {"to": to})
        assert y.dtype == object


@pytest.mark.gpu
@pytest.mark.slow
def test_cast_to_string_is_cpu_only():
    with pytest.raises(FAILS, match="the CUDA kernels cast between"):
        run_op("Cast", [rand(2)], {"to": "STRING"}, device_option=device_option("cuda"))


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
    with pytest.raises(FAILS, match=r"axes entry 3 is out of range for rank 3 \(input \[2, 3, 4\]\)"):
        run_op("Shape", [rand(2, 3, 4)], {"axes": [3]})


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
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op_type, inputs, args, message", [
    ("Transpose", [rand(2, 3)], {"axes": [0, 0]}, "not a permutation"),
    ("Concat", [rand(2, 3), rand(3, 3)], {"axis": 1}, "must agree on every dim but 1"),
    ("Tile", [rand(2, 3), i64(0)], {}, "tiles must be >= 1"),
    ("TileGradient", [rand(2, 5)], {"tiles": 2, "axis": 1}, "is not 2 copies"),
    ("ChannelShuffle", [rand(2, 5, 3)], {"group": 2}, "does not divide"),
])
def test_errors_on_both_devices(op_type, inputs, args, message, device):
    fails(op_type, inputs, args, message, device, num_outputs=2 if op_type == "Concat" else None)


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
    ("Squeeze", [rand(1, 3, 1, 2)], {"dims": [0, 2]}, 1, [0], (0,)),
    ("ExpandDims", [rand(3, 2)], {"dims": [0, 3]}, 1, [0], (0,)),
    ("Copy", [rand(2, 3)], {}, 1, [0], (0,)),
    ("Cast", [rand(2, 3)], {"to": "FLOAT", "from_type": "DOUBLE"}, 1, [0], (0,)),
    ("Cast", [rand(2, 3)], {"to": 13, "from_type": 13}, 1, [0], (0,)),
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
    grad_ops, g_input = GetGradientForOp(make_op("Cast", ["X"], ["Y"], {"to": "FLOAT", "from_type": "INT32"}), ["Y_grad"])
    args = {a.name: a for a in grad_ops[0].arg}
    assert (args["to"].i if args["to"].HasField("i") else args["to"].s) in (2, b"INT32")


@pytest.mark.parametrize("op_type, args, message", [
    ("Cast", {"to": "FLOAT"}, "Cast: needs the `from_type` arg"),
])
def test_maker_errors(op_type, args, message):
    with pytest.raises(GradientError, match=message):
        GetGradientForOp(make_op(op_type, ["X"], ["Y"], args), ["Y_grad"])


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


# -- shape inference ---------------------------------------------------------------------

def shape_of(info):
    return None if info is None else info.shape


@pytest.mark.parametrize("dims, shape", [
    ((2, 3, 4), [4, -1]), ((2, 3, 4), [0, 12]), ((2, 3, 4), [0, -1, 2]),
    ((6,), [1, 2, 3]), ((2, 3, 4), [-1]),
])
def test_inference_reshape_matches_numpy(dims, shape):
    reshaped, old = infer("Reshape", [dims], n_out=2, shape=shape)
    numpy_shape = [dims[i] if d == 0 else d for i, d in enumerate(shape)]
    assert reshaped == TensorInfo(np.zeros(dims).reshape(numpy_shape).shape, "float32")
    assert old == TensorInfo((len(dims),), "int64")


@pytest.mark.parametrize("dims, shape, message", [
    ((2, 3, 4), [5, -1], "cannot infer"),
    ((2, 3, 4), [-1, -1], "more than one -1"),
    ((2, 3, 4), [4, 5], "24 elements"),
    ((2,), [0, 0], "copies dim 1"),
])
def test_inference_reshape_errors(dims, shape, message):
    with pytest.raises(ShapeError, match=message):
        infer("Reshape", [dims], n_out=2, shape=shape)


def test_inference_reshape_from_input_and_unknowns():
    assert infer("Reshape", [(2, 3), TensorInfo((2,), "int64")], n_out=2) == [None, TensorInfo((2,), "int64")]
    assert infer("Reshape", [None], n_out=2, shape=[6]) == [None, None]
    with pytest.raises(ShapeError, match="do not also give"):
        infer("Reshape", [(2, 3), TensorInfo((2,), "int64")], n_out=2, shape=[6])
    with pytest.raises(ShapeError, match="needs the `shape` arg"):
        infer("Reshape", [(2, 3)], n_out=2)


@pytest.mark.parametrize("dims, axis", [((2, 3, 4), 1), ((2, 3, 4), 0), ((2, 3, 4), 3),
                                        ((2, 3, 4), -1)])
def test_inference_flatten(dims, axis):
    axis_ = axis % len(dims) if axis < 0 else axis  # ONNX's: -1 is the last dim
    expected = np.zeros(dims).reshape(int(np.prod(dims[:axis_])), -1).shape
    assert shape_of(infer("Flatten", [dims], axis=axis)[0]) == expected
    assert shape_of(infer("FlattenToVec", [dims])[0]) == np.zeros(dims).ravel().shape


def test_inference_flatten_errors_and_unknown():
    with pytest.raises(ShapeError, match="axis 4 is out of range"):
        infer("Flatten", [(2, 3, 4)], axis=4)
    assert infer("Flatten", [None]) == [None]
    assert infer("FlattenToVec", [None]) == [None]


def test_inference_resize_like():
    out = infer("ResizeLike", [TensorInfo((6,), "int32"), TensorInfo((2, 3), "float32")])
    assert out == [TensorInfo((2, 3), "int32")]
    assert infer("ResizeLike", [None, (2, 3)]) == [None]
    with pytest.raises(ShapeError, match="different numbers of elements"):
        infer("ResizeLike", [(6,), (2, 4)])


@pytest.mark.parametrize("dims, axes", [((2, 3, 4), [1, 0, 2]), ((2, 3, 4), None),
                                        ((1, 1, 2, 2, 3, 3), [0, 1, 4, 2, 5, 3])])
def test_inference_transpose_matches_numpy(dims, axes):
    args = {} if axes is None else {"axes": axes}
    assert shape_of(infer("Transpose", [dims], **args)[0]) == np.transpose(np.zeros(dims), axes).shape


def test_inference_transpose_errors():
    with pytest.raises(ShapeError, match="not a permutation"):
        infer("Transpose", [(2, 3, 4)], axes=[0, 1])
    with pytest.raises(ShapeError, match="not a permutation"):
        infer("Transpose", [(2, 3)], axes=[0, 0])


@pytest.mark.parametrize("shapes, axis", [
    ([(2, 3, 4), (2, 5, 4)], 1), ([(2, 3), (4, 3), (1, 3)], 0), ([(2, 3, 4), (2, 3, 1)], -1),
])
def test_inference_concat_matches_numpy(shapes, axis):
    result, split_info = infer("Concat", shapes, n_out=2, axis=axis)
    assert result.shape == np.concatenate([np.zeros(s) for s in shapes], axis=axis).shape
    assert split_info == TensorInfo((len(shapes),), "int32")


def test_inference_concat_order_and_add_axis():
    shapes = [(2, 3, 4, 5), (2, 3, 4, 5)]
    assert infer("Concat", shapes, n_out=2)[0].shape == (2, 6, 4, 5)
    assert infer("Concat", shapes, n_out=2, order="NHWC")[0].shape == (2, 3, 4, 10)
    stacked = np.stack([np.zeros(s) for s in shapes], axis=1).shape
    assert infer("Concat", shapes, n_out=2, axis=1, add_axis=1)[0].shape == stacked
    assert infer("DepthConcat", shapes, n_out=2)[0].shape == (2, 6, 4, 5)


def test_inference_concat_errors_and_unknown():
    with pytest.raises(ShapeError, match=r"input 1 is \[2, 5, 5\] but input 0 is \[2, 3, 4\]"):
        infer("Concat", [(2, 3, 4), (2, 5, 5)], n_out=2, axis=1)
    with pytest.raises(ShapeError, match="must agree on every dim"):
        infer("Concat", [(2, 3), (2, 4)], n_out=2, axis=0, add_axis=1)
    with pytest.raises(ShapeError, match="not both"):
        infer("Concat", [(2, 3), (2, 3)], n_out=2, axis=0, order="NCHW")
    with pytest.raises(ShapeError, match="out of range"):
        infer("Concat", [(2, 3), (2, 3)], n_out=2, axis=2)
    assert infer("Concat", [(2, 3), None], n_out=2) == [None, TensorInfo((2,), "int32")]


@pytest.mark.parametrize("dims, axis, split", [((2, 10, 3), 1, [3, 7]), ((6, 4), 0, None),
                                               ((2, 3, 6), -1, [1, 2, 3])])
def test_inference_split_matches_numpy(dims, axis, split):
    n_out = len(split) if split else 3
    args = {"axis": axis} if split is None else {"axis": axis, "split": split}
    sections = n_out if split is None else np.cumsum(split)[:-1]
    expected = [part.shape for part in np.split(np.zeros(dims), sections, axis=axis)]
    assert [info.shape for info in infer("Split", [dims], n_out=n_out, **args)] == expected


def test_inference_split_add_axis_order_and_unknown():
    parts = infer("Split", [(2, 3, 4)], n_out=3, axis=1, add_axis=1)
    assert [p.shape for p in parts] == [(2, 4)] * 3
    assert [p.shape for p in infer("Split", [(2, 4, 5, 6)], n_out=2)] == [(2, 2, 5, 6)] * 2
    assert infer("Split", [(2, 4), TensorInfo((2,), "int32")], n_out=2, axis=1) == [None, None]


@pytest.mark.parametrize("args, n_out, message", [
    ({"axis": 1, "split": [2, 2]}, 2, "adds up to 4"),
    ({"axis": 1, "split": [5]}, 2, "1 sizes for 2 outputs"),
    ({"axis": 1}, 2, "does not split into 2 equal parts"),
    ({"axis": 1, "add_axis": 1}, 1, "needs parts of size 1"),
])
def test_inference_split_errors(args, n_out, message):
    with pytest.raises(ShapeError, match=message):
        infer("Split", [(2, 5)], n_out=n_out, **args)


def test_inference_split_input_and_arg():
    with pytest.raises(ShapeError, match="do not also give"):
        infer("Split", [(2, 4), TensorInfo((2,), "int32")], n_out=2, split=[2, 2])


def test_inference_channel_shuffle():
    assert infer("ChannelShuffle", [(2, 6, 3, 3)], group=3) == [TensorInfo((2, 6, 3, 3))]
    assert infer("ChannelShuffle", [(2, 3, 3, 6)], group=3, order="NHWC")[0].shape == (2, 3, 3, 6)
    assert infer("ChannelShuffleGradient", [(2, 6, 3, 3)], group=2)[0].shape == (2, 6, 3, 3)
    with pytest.raises(ShapeError, match="group 4 does not divide the 6 channels"):
        infer("ChannelShuffle", [(2, 6, 3, 3)], group=4)
    with pytest.raises(ShapeError, match="group 4 does not divide the 6 channels"):
        infer("ChannelShuffle", [(2, 3, 3, 6)], group=4, order="NHWC")


@pytest.mark.parametrize("dims, squeeze", [((1, 3, 1, 2), [0, 2]), ((3, 1), [1])])
def test_inference_squeeze_and_expand_dims_match_numpy(dims, squeeze):
    squeezed = np.squeeze(np.zeros(dims), axis=tuple(squeeze)).shape
    assert infer("Squeeze", [dims], dims=squeeze)[0].shape == squeezed
    assert infer("ExpandDims", [squeezed], dims=squeeze)[0].shape == dims
    assert infer("ExpandDims", [(3, 4, 5)], dims=[0, 4])[0].shape == \
        np.expand_dims(np.zeros((3, 4, 5)), (0, 4)).shape


def test_inference_squeeze_and_expand_dims_errors():
    with pytest.raises(ShapeError, match=r"dim 1 of input \[1, 3\] is not of size 1"):
        infer("Squeeze", [(1, 3)], dims=[1])
    with pytest.raises(ShapeError, match="dim 2 of input"):
        infer("Squeeze", [(1, 1)], dims=[2])
    with pytest.raises(ShapeError, match="cannot insert dim 5"):
        infer("ExpandDims", [(3, 4)], dims=[0, 5])
    assert infer("Squeeze", [None], dims=[0]) == [None]


@pytest.mark.parametrize("op_type", ["Copy", "Alias", "EnsureCPUOutput", "CopyCPUToGPU",
                                     "CopyGPUToCPU", "StopGradient"])
def test_inference_identity_ops(op_type):
    info = TensorInfo((2, 3), "int32")
    assert infer(op_type, [info]) == [info]
    assert infer("CopyOnDeviceLike", [info, (4,)]) == [info]


@pytest.mark.parametrize("to, dtype", [(1, "float32"), (10, "int64"), ("INT32", "int32"),
                                       ("bool", "bool"), (13, "float64")])
def test_inference_cast(to, dtype):
    assert infer("Cast", [TensorInfo((2, 3), "float32")], to=to) == [TensorInfo((2, 3), dtype)]
    assert infer("Cast", [None], to=to) == [None]


def test_inference_cast_errors():
    with pytest.raises(ShapeError, match="UNDEFINED is not a data type"):
        infer("Cast", [(2,)], to=0)


@pytest.mark.parametrize("start, end", [(0, None), (1, None), (-1, None), (None, 1), (None, -1), (1, -1),
                                        (1, 2), (-10, None), (None, 10), (3, 1)])
def test_shape_start_end(start, end):
    x = rand(2, 3, 4)
    args = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    (y,) = check_reference("Shape", [x], lambda x, **_: np.array(x.shape[slice(start, end)], np.int64), args)
    assert y.dtype == np.int64
    with pytest.raises(FAILS, match="give `axes` or `start`/`end`"):
        run_op("Shape", [x], {"axes": [0], "start": 1})


def test_inference_shape():
    assert infer("Shape", [(2, 3, 4)]) == [TensorInfo((3,), "int64")]
    assert infer("Shape", [(2, 3, 4)], axes=[0, -1]) == [TensorInfo((2,), "int64")]
    assert infer("Shape", [None]) == [None]
    with pytest.raises(ShapeError, match="axes entry 3 is out of range"):
        infer("Shape", [(2, 3, 4)], axes=[3])


@pytest.mark.parametrize("dims, tiles, axis", [((2, 3), 3, 0), ((2, 3, 4), 2, -1), ((5,), 1, 0)])
def test_inference_tile_matches_numpy(dims, tiles, axis):
    reps = [1] * len(dims)
    reps[axis] = tiles
    expected = np.tile(np.zeros(dims), reps).shape
    assert infer("Tile", [dims], tiles=tiles, axis=axis)[0].shape == expected
    assert infer("TileGradient", [expected], tiles=tiles, axis=axis)[0].shape == dims


def test_inference_tile_errors_and_unknown():
    assert infer("Tile", [(2, 3), TensorInfo((1,), "int32"), TensorInfo((1,), "int64")]) == [None]
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        infer("Tile", [(2, 3)], tiles=2, axis=2)
    with pytest.raises(ShapeError, match="is not 2 copies"):
        infer("TileGradient", [(3, 3)], tiles=2, axis=0)
    with pytest.raises(ShapeError, match="cannot tile a scalar"):
        infer("Tile", [()], tiles=2)


# -- CUDA against the CPU twin: every element type, empty and large tensors ---------------

def check(op_type, inputs, args=None, num_outputs=None):
    gpu = check_devices(op_type, inputs, args, num_outputs)  # sums: double on the GPU
    cpu = run_op(op_type, inputs, args, num_outputs)
    assert [g.dtype for g in gpu] == [c.dtype for c in cpu]


# op type -> cases of (inputs, args, num_outputs)
CASES = {
    "Reshape": [
        ([rand(2, 3, 4)], {"shape": [4, -1]}, 2),
        ([rand(2, 3, 4)], {"shape": [0, -1, 2]}, 2),
        ([rand(2, 3, 4, dtype=np.int64), i64(6, 4)], {}, 2),
        ([rand(2, 3, 2, dtype=np.bool_), i32(0, 6)], {}, 2),
        ([rand(1)], {"shape": []}, 2),
        ([rand(0, 3)], {"shape": [3, -1]}, 2),
    ],
    "Flatten": [([rand(2, 3, 4, 5)], {"axis": a}, None) for a in (0, 1, 3, 4, -1)]
    + [([rand(0, 3, 2)], {"axis": 2}, None), ([rand(3, 2, dtype=np.int8)], {}, None)],
    "FlattenToVec": [([rand(2, 3, 4)], {}, None), ([rand(3, 0)], {}, None),
                     ([np.array(2.5, np.float32)], {}, None)],
    "ResizeLike": [([rand(2, 6), rand(3, 4)], {}, None), ([rand(4, dtype=np.int32), rand(2, 2)], {}, None),
                   ([rand(0, 3), rand(3, 0, 2)], {}, None)],
    "Squeeze": [([rand(1, 3, 1, 2)], {"dims": [0, 2]}, None), ([rand(1, 0)], {"dims": [0]}, None),
                ([rand(1, dtype=np.int64)], {"dims": [0]}, None)],
    "ExpandDims": [([rand(3, 2)], {"dims": [0, 3]}, None), ([np.array(1.5, np.float32)], {"dims": [0]}, None),
                   ([rand(0, 2)], {"dims": [1]}, None)],
    "Copy": [([rand(*BIG)], {}, None), ([rand(3, 4, dtype=np.int64)], {}, None),
             ([rand(5, dtype=np.bool_)], {}, None), ([np.array(3.0, np.float32)], {}, None),
             ([rand(0, 4)], {}, None)],
    "CopyOnDeviceLike": [([rand(3, 5), rand(2)], {}, None), ([rand(4, dtype=np.int16), rand(1)], {}, None)],
    "EnsureCPUOutput": [([rand(3, 5)], {}, None), ([rand(4, dtype=np.int32)], {}, None)],
    "Transpose": [
        ([rand(3, 5, 7)], {}, None),
        ([rand(3, 5, 7)], {"axes": [1, 0, 2]}, None),
        ([rand(2, 3, 5, 7)], {"axes": [2, 0, 3, 1]}, None),
        ([rand(2, 1, 3, 1, 5, 2)], {"axes": [0, 1, 4, 2, 5, 3]}, None),  # the pixel shuffle
        ([rand(*BIG)], {}, None),
        ([rand(3, 4, dtype=np.int32)], {}, None),
        ([rand(3, 4, 2, dtype=np.bool_)], {"axes": [2, 0, 1]}, None),
        ([rand(3, 4, dtype=np.int16)], {}, None),
        ([rand(3, 4, dtype=np.int64)], {}, None),
        ([np.array(2.0, np.float32)], {}, None),
        ([rand(0, 3)], {}, None),
    ],
    "Concat": [
        ([rand(2, 3, 4), rand(2, 5, 4), rand(2, 1, 4)], {}, 2),
        ([rand(2, 3), rand(4, 3)], {"axis": 0}, 2),
        ([rand(2, 3, 4), rand(2, 3, 1)], {"axis": -1}, 2),
        ([rand(2, 3, 2, 4), rand(2, 3, 2, 1)], {"order": "NHWC"}, 2),
        ([rand(2, 3), rand(2, 3), rand(2, 3)], {"axis": 1, "add_axis": 1}, 2),
        ([rand(2, 3), rand(2, 3)], {"axis": 2, "add_axis": 1}, 2),
        ([rand(2, 0, 3), rand(2, 2, 3)], {}, 2),
        ([rand(3, dtype=np.int64), rand(2, dtype=np.int64)], {"axis": 0}, 2),
        ([rand(*BIG), rand(130, 3)], {}, 2),
    ],
    "Split": [
        ([rand(2, 6, 3)], {}, 3),
        ([rand(2, 6, 3)], {"axis": 1, "split": [1, 0, 5]}, 3),
        ([rand(5, 3), i64(2, 3)], {"axis": 0}, 2),
        ([rand(4, 3, 2, 5), i32(1, 4)], {"order": "NHWC"}, 2),
        ([rand(2, 3, 4)], {"axis": 1, "add_axis": 1}, 3),
        ([rand(4, 2, dtype=np.int32)], {"axis": -1}, 2),
        ([rand(0, 4)], {"axis": 1}, 2),
        ([rand(*BIG)], {"axis": 0, "split": [100, 30]}, 2),
    ],
    "ChannelShuffle": [
        ([rand(2, 6, 3, 2)], {"group": 2}, None),
        ([rand(2, 3, 2, 6)], {"group": 3, "order": "NHWC"}, None),
        ([rand(3, 4)], {"group": 4}, None),
        ([rand(2, 6, 5, dtype=np.int64)], {"group": 1}, None),
    ],
    "ChannelShuffleGradient": [
        ([rand(2, 6, 3, 2)], {"group": 2}, None),
        ([rand(2, 3, 2, 6)], {"group": 3, "order": "NHWC"}, None),
    ],
    "Tile": [
        ([rand(2, 3, 4)], {"tiles": 3, "axis": 1}, None),
        ([rand(2, 3)], {"tiles": 2, "axis": -1}, None),
        ([rand(5, dtype=np.int64), i64(4), i32(0)], {}, None),
        ([rand(3, 2, dtype=np.bool_)], {"tiles": 2}, None),
        ([rand(0, 3)], {"tiles": 4, "axis": 1}, None),
        ([rand(130, 130)], {"tiles": 2, "axis": 0}, None),
    ],
    "TileGradient": [
        ([rand(2, 9, 4)], {"tiles": 3, "axis": 1}, None),
        ([rand(4, 6, dtype=np.int32), i64(2), i64(-1)], {}, None),
        ([rand(6, 2, dtype=np.int64)], {"tiles": 3}, None),
        ([rand(0, 4)], {"tiles": 2, "axis": 1}, None),
        ([rand(*BIG)], {"tiles": 2, "axis": 0}, None),
    ],
    "Cast": [([rand(3, 4) * 50], {"to": to}, None)
             for to in ("INT32", "INT64", "BOOL", "INT8", "INT16", "FLOAT")]
    + [([np.abs(rand(3, 4)) * 50], {"to": to}, None) for to in ("UINT8", "UINT16")]
    + [([rand(3, 4, dtype=np.int32)], {"to": "FLOAT"}, None),
       ([rand(3, 4, dtype=np.int8)], {"to": "INT32"}, None),
       ([rand(5, dtype=np.bool_)], {"to": caffe2_pb2.TensorProto.FLOAT}, None),
       ([rand(5, dtype=np.int64) * 10**8], {"to": "INT32"}, None),
       ([np.array([0.0, -0.0, np.nan, 0.5], np.float32)], {"to": "BOOL"}, None),
       ([rand(0, 2)], {"to": "INT64"}, None),
       ([rand(*BIG)], {"to": "INT32"}, None)],
}
# The op types whose CUDA kernels this module checks (tests/cuda/test_devices.py gathers them).
DEVICE_CHECKED: set[str] = set()
DEVICE_CHECKED.update(CASES)
DEVICE_CHECKED.update(["DepthConcat", "DepthSplit"])  # Concat's and Split's kernels, see below
DEVICE_CHECKED.update(["Copy", "Alias", "EnsureCPUOutput", "StopGradient"])  # test_identity_ops


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("op_type, inputs, args, num_outputs",
                         [(op, *case) for op, cases in CASES.items() for case in cases],
                         ids=[f"{op}-{i}" for op, cases in CASES.items() for i in range(len(cases))])
def test_cuda_tensor_op_matches_cpu(op_type, inputs, args, num_outputs):
    check(op_type, inputs, args, num_outputs)


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_depth_aliases():
    check("DepthConcat", [rand(2, 3, 2), rand(2, 1, 2)], {}, 2)
    check("DepthSplit", [rand(2, 4, 2)], {}, 2)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("to", ["DOUBLE", "FLOAT16"])
def test_cuda_cast_refuses_float_types_other_than_float32(to):
    with pytest.raises((OpFailure, NetError), match="the CUDA kernels cast between .*, not float"):
        run_op("Cast", [rand(3)], {"to": to}, device_option=device_option("cuda"))


@pytest.mark.gpu
@pytest.mark.slow
def test_cuda_shape_bookkeeping_outputs_stay_on_the_host():
    """Reshape's old_shape and Concat's split_info are host tensors, as in Caffe2."""
    from pycaffe2.executor import Workspace
    workspace = Workspace()
    workspace.FeedBlob("X", rand(2, 6), device_option=device_option("cuda"))
    ops = [make_op("Reshape", ["X"], ["Y", "old"], {"shape": [3, 4]}),
           make_op("Concat", ["X", "X"], ["Z", "info"]),
           make_op("Reshape", ["Y", "old"], ["X2", "_"]),  # as the gradients use them
           make_op("Split", ["Z", "info"], ["A", "B"])]
    for op in ops:
        op.device_option.CopyFrom(device_option("cuda"))
    workspace.RunOperatorsOnce(ops)
    assert isinstance(workspace.blobs["old"], np.ndarray)
    assert isinstance(workspace.blobs["info"], np.ndarray)
    x = workspace.FetchBlob("X")
    np.testing.assert_array_equal(workspace.FetchBlob("old"), [2, 6])
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), x.reshape(3, 4))
    for name in ("X2", "A", "B"):
        np.testing.assert_array_equal(workspace.FetchBlob(name), x)


@pytest.mark.parametrize("op_type, shapes, n_out, args, message", [
    ("Reshape", [(2, 3), (2,)], 2, {}, r"input new_shape must be a 1-D int tensor, got \[2\] float32"),
    ("Split", [(2, 4), TensorInfo((2, 1), "int32")], 2, {}, r"input split must be a 1-D int tensor"),
    ("Tile", [(2, 3), TensorInfo((2,), "int32")], 1, {}, "input tiles must hold one value, got 2"),
    ("Concat", [(2, 3), TensorInfo((2, 3), "int32")], 2, {"axis": 0}, "input 1 is int32 but input 0 is float32"),
    ("Cast", [(2,)], 1, {"to": 17}, "`to` 17 is not a data type"),
    ("Cast", [TensorInfo((2,), "object")], 1, {"to": "FLOAT"}, r"input \[2\] object is not numeric"),
])
def test_inference_makes_the_kernels_checks(op_type, shapes, n_out, args, message):
    """Checks the kernels make on shapes and dtypes, which validate now makes too."""
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out=n_out, **args)


def test_zero_gradient_does_nothing_forward_and_gives_zeros_backward():
    assert run_op("ZeroGradient", [np.ones((2, 3), np.float32)], num_outputs=0) == []
    op = make_op("ZeroGradient", ["c"], [])
    (fill,), g_input = GetGradientForOp(op, [])
    assert (fill.type, list(fill.input), list(fill.output), g_input) == ("ConstantFill", ["c"], ["c_grad"], ["c_grad"])
    workspace = Workspace()
    workspace.FeedBlob("c", np.ones((2, 3), np.float32))
    workspace.RunOperatorOnce(fill)
    np.testing.assert_array_equal(workspace.FetchBlob("c_grad"), np.zeros((2, 3), np.float32))
    assert infer("ZeroGradient", [(2, 3)], n_out=0) == []
