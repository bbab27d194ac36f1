"""Inference rules of the tensor family, checked against NumPy's shapes."""
import numpy as np
import pytest

from pycaffe2.schema.bind import ShapeError, TensorInfo
from tests.schema import infer


def shape_of(info):
    return None if info is None else info.shape


@pytest.mark.parametrize("dims, shape", [
    ((2, 3, 4), [4, -1]), ((2, 3, 4), [0, 12]), ((2, 3, 4), [0, -1, 2]),
    ((6,), [1, 2, 3]), ((2, 3, 4), [-1]),
])
def test_reshape_matches_numpy(dims, shape):
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
def test_reshape_errors(dims, shape, message):
    with pytest.raises(ShapeError, match=message):
        infer("Reshape", [dims], n_out=2, shape=shape)


def test_reshape_from_input_and_unknowns():
    assert infer("Reshape", [(2, 3), (2,)], n_out=2) == [None, TensorInfo((2,), "int64")]
    assert infer("Reshape", [None], n_out=2, shape=[6]) == [None, None]
    with pytest.raises(ShapeError, match="do not also give"):
        infer("Reshape", [(2, 3), (2,)], n_out=2, shape=[6])
    with pytest.raises(ShapeError, match="needs the `shape` arg"):
        infer("Reshape", [(2, 3)], n_out=2)


@pytest.mark.parametrize("dims, axis", [((2, 3, 4), 1), ((2, 3, 4), 0), ((2, 3, 4), 3),
                                        ((2, 3, 4), -1)])
def test_flatten(dims, axis):
    axis_ = axis % (len(dims) + 1)
    expected = np.zeros(dims).reshape(int(np.prod(dims[:axis_])), -1).shape
    assert shape_of(infer("Flatten", [dims], axis=axis)[0]) == expected
    assert shape_of(infer("FlattenToVec", [dims])[0]) == np.zeros(dims).ravel().shape


def test_flatten_errors_and_unknown():
    with pytest.raises(ShapeError, match="axis 4 is out of range"):
        infer("Flatten", [(2, 3, 4)], axis=4)
    assert infer("Flatten", [None]) == [None]
    assert infer("FlattenToVec", [None]) == [None]


def test_resize_like():
    out = infer("ResizeLike", [TensorInfo((6,), "int32"), TensorInfo((2, 3), "float32")])
    assert out == [TensorInfo((2, 3), "int32")]
    assert infer("ResizeLike", [None, (2, 3)]) == [None]
    with pytest.raises(ShapeError, match="different numbers of elements"):
        infer("ResizeLike", [(6,), (2, 4)])


@pytest.mark.parametrize("dims, axes", [((2, 3, 4), [1, 0, 2]), ((2, 3, 4), None),
                                        ((1, 1, 2, 2, 3, 3), [0, 1, 4, 2, 5, 3])])
def test_transpose_matches_numpy(dims, axes):
    args = {} if axes is None else {"axes": axes}
    assert shape_of(infer("Transpose", [dims], **args)[0]) == np.transpose(np.zeros(dims), axes).shape


def test_transpose_errors():
    with pytest.raises(ShapeError, match="not a permutation"):
        infer("Transpose", [(2, 3, 4)], axes=[0, 1])
    with pytest.raises(ShapeError, match="not a permutation"):
        infer("Transpose", [(2, 3)], axes=[0, 0])


@pytest.mark.parametrize("shapes, axis", [
    ([(2, 3, 4), (2, 5, 4)], 1), ([(2, 3), (4, 3), (1, 3)], 0), ([(2, 3, 4), (2, 3, 1)], -1),
])
def test_concat_matches_numpy(shapes, axis):
    result, split_info = infer("Concat", shapes, n_out=2, axis=axis)
    assert result.shape == np.concatenate([np.zeros(s) for s in shapes], axis=axis).shape
    assert split_info == TensorInfo((len(shapes),), "int32")


def test_concat_order_and_add_axis():
    shapes = [(2, 3, 4, 5), (2, 3, 4, 5)]
    assert infer("Concat", shapes, n_out=2)[0].shape == (2, 6, 4, 5)
    assert infer("Concat", shapes, n_out=2, order="NHWC")[0].shape == (2, 3, 4, 10)
    stacked = np.stack([np.zeros(s) for s in shapes], axis=1).shape
    assert infer("Concat", shapes, n_out=2, axis=1, add_axis=1)[0].shape == stacked
    assert infer("DepthConcat", shapes, n_out=2)[0].shape == (2, 6, 4, 5)


def test_concat_errors_and_unknown():
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
def test_split_matches_numpy(dims, axis, split):
    n_out = len(split) if split else 3
    args = {"axis": axis} if split is None else {"axis": axis, "split": split}
    sections = n_out if split is None else np.cumsum(split)[:-1]
    expected = [part.shape for part in np.split(np.zeros(dims), sections, axis=axis)]
    assert [info.shape for info in infer("Split", [dims], n_out=n_out, **args)] == expected


def test_split_add_axis_order_and_unknown():
    parts = infer("Split", [(2, 3, 4)], n_out=3, axis=1, add_axis=1)
    assert [p.shape for p in parts] == [(2, 4)] * 3
    assert [p.shape for p in infer("Split", [(2, 4, 5, 6)], n_out=2)] == [(2, 2, 5, 6)] * 2
    assert infer("Split", [(2, 4), (2,)], n_out=2, axis=1) == [None, None]


@pytest.mark.parametrize("args, n_out, message", [
    ({"axis": 1, "split": [2, 2]}, 2, "adds up to 4"),
    ({"axis": 1, "split": [5]}, 2, "1 sizes for 2 outputs"),
    ({"axis": 1}, 2, "does not split into 2 equal parts"),
    ({"axis": 1, "add_axis": 1}, 1, "needs parts of size 1"),
])
def test_split_errors(args, n_out, message):
    with pytest.raises(ShapeError, match=message):
        infer("Split", [(2, 5)], n_out=n_out, **args)


def test_split_input_and_arg():
    with pytest.raises(ShapeError, match="do not also give"):
        infer("Split", [(2, 4), (2,)], n_out=2, split=[2, 2])


def test_channel_shuffle():
    assert infer("ChannelShuffle", [(2, 6, 3, 3)], group=3) == [TensorInfo((2, 6, 3, 3))]
    assert infer("ChannelShuffle", [(2, 3, 3, 6)], group=3, order="NHWC")[0].shape == (2, 3, 3, 6)
    assert infer("ChannelShuffleGradient", [(2, 6, 3, 3)], group=2)[0].shape == (2, 6, 3, 3)
    with pytest.raises(ShapeError, match="group 4 does not divide the 6 channels"):
        infer("ChannelShuffle", [(2, 6, 3, 3)], group=4)
    with pytest.raises(ShapeError, match="group 4 does not divide the 6 channels"):
        infer("ChannelShuffle", [(2, 3, 3, 6)], group=4, order="NHWC")


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
def test_slice_matches_numpy(dims, starts, ends):
    expected = np.zeros(dims)[caffe2_slice(dims, starts, ends)].shape
    assert infer("Slice", [dims], starts=starts, ends=ends)[0].shape == expected


@pytest.mark.parametrize("starts, ends, message", [
    ([1, 1], [2, 2], "only one dim may be sliced"),
    ([3], [1], "is not a slice"),
    ([0], [1, 2], "differ in length"),
    ([0, 0, 0], [1, 1, 1], "3 starts for input"),
])
def test_slice_errors(starts, ends, message):
    with pytest.raises(ShapeError, match=message):
        infer("Slice", [(4, 4)], starts=starts, ends=ends)


def test_slice_from_inputs_and_gradient():
    assert infer("Slice", [(4, 4), (2,), (2,)]) == [None]
    assert infer("SliceGradient", [(4, 4), (2, 4)]) == [TensorInfo((4, 4))]
    assert infer("SliceGradient", [(4, 4), (2,), (2,), (2, 4)]) == [TensorInfo((4, 4))]


@pytest.mark.parametrize("dims, squeeze", [((1, 3, 1, 2), [0, 2]), ((3, 1), [1])])
def test_squeeze_and_expand_dims_match_numpy(dims, squeeze):
    squeezed = np.squeeze(np.zeros(dims), axis=tuple(squeeze)).shape
    assert infer("Squeeze", [dims], dims=squeeze)[0].shape == squeezed
    assert infer("ExpandDims", [squeezed], dims=squeeze)[0].shape == dims
    assert infer("ExpandDims", [(3, 4, 5)], dims=[0, 4])[0].shape == \
        np.expand_dims(np.zeros((3, 4, 5)), (0, 4)).shape


def test_squeeze_and_expand_dims_errors():
    with pytest.raises(ShapeError, match=r"dim 1 of input \[1, 3\] is not of size 1"):
        infer("Squeeze", [(1, 3)], dims=[1])
    with pytest.raises(ShapeError, match="dim 2 of input"):
        infer("Squeeze", [(1, 1)], dims=[2])
    with pytest.raises(ShapeError, match="cannot insert dim 5"):
        infer("ExpandDims", [(3, 4)], dims=[0, 5])
    assert infer("Squeeze", [None], dims=[0]) == [None]


@pytest.mark.parametrize("op_type", ["Copy", "Alias", "EnsureCPUOutput", "CopyCPUToGPU",
                                     "CopyGPUToCPU", "StopGradient"])
def test_identity_ops(op_type):
    info = TensorInfo((2, 3), "int32")
    assert infer(op_type, [info]) == [info]
    assert infer("CopyOnDeviceLike", [info, (4,)]) == [info]


@pytest.mark.parametrize("to, dtype", [(1, "float32"), (10, "int64"), ("INT32", "int32"),
                                       ("bool", "bool"), (13, "float64")])
def test_cast(to, dtype):
    assert infer("Cast", [TensorInfo((2, 3), "float32")], to=to) == [TensorInfo((2, 3), dtype)]
    assert infer("Cast", [None], to=to) == [None]


def test_cast_errors():
    with pytest.raises(ShapeError, match="UNDEFINED is not a data type"):
        infer("Cast", [(2,)], to=0)


@pytest.mark.parametrize("data, indices, axis", [((5, 3), (2, 4), 0), ((5, 3, 2), (4,), 1),
                                                 ((5, 3, 2), (), -1)])
def test_gather_matches_numpy(data, indices, axis):
    expected = np.take(np.zeros(data), np.zeros(indices, dtype=np.int64), axis=axis).shape
    out = infer("Gather", [TensorInfo(data), TensorInfo(indices, "int64")], axis=axis)
    assert out[0].shape == expected


def test_gather_match_outer_errors_and_unknown():
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


def test_sparse_to_dense():
    indices, values = TensorInfo((4,), "int32"), TensorInfo((4, 3, 2))
    assert infer("SparseToDense", [indices, values, (7, 9)]) == [TensorInfo((7, 3, 2))]
    assert infer("SparseToDense", [indices, values]) == [None]
    assert infer("SparseToDense", [indices, values], output_first_dim=5)[0].shape == (5, 3, 2)
    with pytest.raises(ShapeError, match="one row per index"):
        infer("SparseToDense", [indices, TensorInfo((3, 2)), (7,)])
    with pytest.raises(ShapeError, match="indices must be 1-D"):
        infer("SparseToDense", [TensorInfo((2, 2), "int64"), values, (7,)])
    with pytest.raises(ShapeError, match="do not also give output_first_dim"):
        infer("SparseToDense", [indices, values, (7, 9)], output_first_dim=5)


def test_shape():
    assert infer("Shape", [(2, 3, 4)]) == [TensorInfo((3,), "int64")]
    assert infer("Shape", [(2, 3, 4)], axes=[0, -1]) == [TensorInfo((2,), "int64")]
    assert infer("Shape", [None]) == [None]
    with pytest.raises(ShapeError, match="axes entry 3 is out of range"):
        infer("Shape", [(2, 3, 4)], axes=[3])


@pytest.mark.parametrize("dims, tiles, axis", [((2, 3), 3, 0), ((2, 3, 4), 2, -1), ((5,), 1, 0)])
def test_tile_matches_numpy(dims, tiles, axis):
    reps = [1] * len(dims)
    reps[axis] = tiles
    expected = np.tile(np.zeros(dims), reps).shape
    assert infer("Tile", [dims], tiles=tiles, axis=axis)[0].shape == expected
    assert infer("TileGradient", [expected], tiles=tiles, axis=axis)[0].shape == dims


def test_tile_errors_and_unknown():
    assert infer("Tile", [(2, 3), (1,), (1,)]) == [None]
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        infer("Tile", [(2, 3)], tiles=2, axis=2)
    with pytest.raises(ShapeError, match="is not 2 copies"):
        infer("TileGradient", [(3, 3)], tiles=2, axis=0)
    with pytest.raises(ShapeError, match="cannot tile a scalar"):
        infer("Tile", [()], tiles=2)
