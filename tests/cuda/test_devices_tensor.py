"""CUDA tensor kernels against their CPU twins (marked gpu: run on a GPU, else on the
emulator). Every output is compared, dtype included; shapes past the emulator's grid
(64 blocks of 256 threads) exercise the grid-stride loops; bad inputs give the CPU's
error on both devices."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.operators import load_kernels
from pycaffe2.proto import caffe2_pb2
from pycaffe2.testing import check_devices, run_op

# Slow on a machine without a GPU (the kernels run on the CPU emulation): left out by -m "not slow".
pytestmark = pytest.mark.slow

load_kernels()
CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA)
BIG = (130, 257)  # 33,410 elements: more than one emulated grid's 16,384 threads


def rand(*shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-100 if np.dtype(dtype).kind == "i" else 0, 100, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def check(op_type, inputs, args=None, num_outputs=None):
    gpu = check_devices(op_type, inputs, args, num_outputs)  # sums: double on the GPU
    cpu = run_op(op_type, inputs, args, num_outputs)
    assert [g.dtype for g in gpu] == [c.dtype for c in cpu]


def check_same_error(op_type, inputs, args, match, num_outputs=None):
    for option in (None, CUDA):
        with pytest.raises((OpFailure, NetError), match=match):
            run_op(op_type, inputs, args, num_outputs, device_option=option)


def i64(*values):
    return np.array(values, np.int64)


def i32(*values):
    return np.array(values, np.int32)


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
    "Slice": [
        ([rand(4, 5, 6)], {"starts": [1, 0], "ends": [3, -1]}, None),
        ([rand(4, 5, 6)], {"starts": [0, 0, 2], "ends": [-1, -1, -2]}, None),
        ([rand(4, 5), i64(0, 1), i64(-1, 4)], {}, None),
        ([rand(4, 5, dtype=np.int32), i32(2), i32(2)], {}, None),
        ([rand(*BIG)], {"starts": [5], "ends": [120]}, None),
        ([rand(0, 5)], {"starts": [0, 1], "ends": [-1, 3]}, None),
    ],
    "SliceGradient": [
        ([rand(4, 5, 6), rand(2, 5, 6)], {"starts": [1], "ends": [3]}, None),
        ([rand(4, 5), i64(0, 1), i64(-1, 4), rand(4, 3)], {}, None),
        ([rand(4, 5), rand(4, 0)], {"starts": [0, 2], "ends": [-1, 2]}, None),
        ([rand(*BIG), rand(130, 200)], {"starts": [0, 7], "ends": [-1, 207]}, None),
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
    "Gather": [
        ([rand(5, 3), i64(4, 0, 4, -1)], {}, None),
        ([rand(5, 3, 2), np.array([[0, 2], [1, -3]], np.int32)], {"axis": 1}, None),
        ([rand(3, 4, 2), np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]], np.int64)],
         {"axis": 1, "match_outer": 1}, None),
        ([rand(4, 3, dtype=np.bool_), i32(3, 1)], {"axis": 0}, None),
        ([rand(4, 3, dtype=np.int64), np.zeros(0, np.int64)], {}, None),
        ([rand(4, 3), i64(2)], {"axis": -1}, None),
        ([rand(*BIG), np.arange(256, -1, -1, dtype=np.int64)], {"axis": 1}, None),
    ],
    "SparseToDense": [
        ([i64(0, 3, 0, 1), rand(4, 3)], {}, None),
        ([i32(2, 2, 2), rand(3, dtype=np.int32)], {"output_first_dim": 5}, None),
        ([i64(1, 0), rand(2, 2, 2, dtype=np.int64), rand(4, 1)], {}, None),
        ([np.zeros(0, np.int64), rand(0, 3)], {"output_first_dim": 2}, None),
        ([np.arange(300, dtype=np.int64) % 7, rand(300, 60)], {}, None),
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


@pytest.mark.gpu
@pytest.mark.parametrize("op_type, inputs, args, num_outputs",
                         [(op, *case) for op, cases in CASES.items() for case in cases],
                         ids=[f"{op}-{i}" for op, cases in CASES.items() for i in range(len(cases))])
def test_cuda_tensor_op_matches_cpu(op_type, inputs, args, num_outputs):
    check(op_type, inputs, args, num_outputs)


@pytest.mark.gpu
def test_cuda_depth_aliases():
    check("DepthConcat", [rand(2, 3, 2), rand(2, 1, 2)], {}, 2)
    check("DepthSplit", [rand(2, 4, 2)], {}, 2)


@pytest.mark.gpu
@pytest.mark.parametrize("op_type, inputs, args, match, num_outputs", [
    ("Reshape", [rand(2, 3)], {"shape": [4, -1]}, "cannot infer the -1", 2),
    ("Transpose", [rand(2, 3)], {"axes": [0, 0]}, "not a permutation", None),
    ("Concat", [rand(2, 3), rand(3, 3)], {"axis": 1}, "must agree on every dim but 1", 2),
    ("Concat", [rand(2, 3), rand(2, 3, dtype=np.int32)], {}, "input 1 is int32", 2),
    ("Split", [rand(2, 5)], {"axis": 1}, "does not split into 2 equal parts", 2),
    ("Split", [rand(2, 4)], {"axis": 1, "add_axis": 1}, "needs parts of size 1", 2),
    ("Slice", [rand(4, 5)], {"starts": [1, 1], "ends": [3, 3]}, "only one dim may be sliced", None),
    ("SliceGradient", [rand(4, 5), rand(3, 5)], {"starts": [1], "ends": [3]}, "does not match", None),
    ("Tile", [rand(2, 3), i64(0)], {}, "tiles must be >= 1", None),
    ("TileGradient", [rand(2, 5)], {"tiles": 2, "axis": 1}, "is not 2 copies", None),
    ("Gather", [rand(4, 3), i64(1, 4)], {}, "index 4 is out of range", None),
    ("Gather", [rand(4, 3), i32(-5)], {}, "index -5 is out of range", None),
    ("Gather", [rand(4, 3), rand(2)], {}, "indices must be int32 or int64", None),
    ("SparseToDense", [i64(0, -1), rand(2, 3)], {}, "index -1 is out of range", None),
    ("SparseToDense", [i64(0, 3), rand(2, 3)], {"output_first_dim": 3}, "index 3 is out of range", None),
    ("ChannelShuffle", [rand(2, 5, 3)], {"group": 2}, "does not divide", None),
])
def test_cuda_tensor_errors_match_cpu(op_type, inputs, args, match, num_outputs):
    check_same_error(op_type, inputs, args, match, num_outputs)


@pytest.mark.gpu
@pytest.mark.parametrize("to", ["DOUBLE", "FLOAT16"])
def test_cuda_cast_refuses_float_types_other_than_float32(to):
    with pytest.raises((OpFailure, NetError), match="the CUDA kernels cast between .*, not float"):
        run_op("Cast", [rand(3)], {"to": to}, device_option=CUDA)


@pytest.mark.gpu
def test_cuda_shape_bookkeeping_outputs_stay_on_the_host():
    """Reshape's old_shape and Concat's split_info are host tensors, as in Caffe2."""
    from pycaffe2.executor import Workspace
    from pycaffe2.testing import make_op
    workspace = Workspace()
    workspace.FeedBlob("X", rand(2, 6), device_option=CUDA)
    ops = [make_op("Reshape", ["X"], ["Y", "old"], {"shape": [3, 4]}),
           make_op("Concat", ["X", "X"], ["Z", "info"]),
           make_op("Reshape", ["Y", "old"], ["X2", "_"]),  # as the gradients use them
           make_op("Split", ["Z", "info"], ["A", "B"])]
    for op in ops:
        op.device_option.CopyFrom(CUDA)
    workspace.RunOperatorsOnce(ops)
    assert isinstance(workspace.blobs["old"], np.ndarray)
    assert isinstance(workspace.blobs["info"], np.ndarray)
    x = workspace.FetchBlob("X")
    np.testing.assert_array_equal(workspace.FetchBlob("old"), [2, 6])
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), x.reshape(3, 4))
    for name in ("X2", "A", "B"):
        np.testing.assert_array_equal(workspace.FetchBlob(name), x)
