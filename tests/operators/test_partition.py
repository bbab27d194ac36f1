"""The partition family: Partition, LengthsPartition and GatherByKey against a
loop reference (Caffe2's test's sharding), inference and errors."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(5)


def shard_reference(parts, pack, inputs):
    """For each partition, each input's items whose key mod parts is the partition."""
    keys = inputs[0].reshape(-1)
    out = []
    for j in range(parts):
        for index, value in enumerate(inputs):
            rows = value.reshape(-1, *value.shape[inputs[0].ndim:])
            picked = [rows[i] for i in range(len(keys)) if keys[i] % parts == j]
            if index == 0 and pack:
                picked = [(k - j) // parts for k in picked]
            out.append(np.array(picked, value.dtype).reshape(-1, *value.shape[inputs[0].ndim:]))
    return out


@pytest.mark.parametrize("key_shape, parts", [((10,), 3), ((4,), 5), ((3, 4), 2), ((1,), 1)])
@pytest.mark.parametrize("pack", [0, 1])
@pytest.mark.parametrize("key_type", [np.int32, np.int64])
def test_partition_and_gather_by_key(key_shape, parts, pack, key_type):
    keys = RNG.integers(-100, 100, key_shape).astype(key_type)
    extras = [RNG.standard_normal((*key_shape, 2)).astype(np.float32), RNG.integers(0, 9, key_shape)]
    inputs = [keys, *extras]
    outputs = check_reference("Partition", inputs, lambda *x, **a: shard_reference(parts, pack, x),
                              {"pack_first_input": pack}, num_outputs=parts * len(inputs))
    if len(key_shape) == 1:
        for i, extra in enumerate(extras, 1):
            shards = [outputs[j * len(inputs) + i] for j in range(parts)]
            check_reference("GatherByKey", [keys, *shards], lambda *a, extra=extra: [extra])


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_lengths_partition(parts):
    keys = RNG.integers(-50, 50, 9).astype(np.int64)
    lengths = np.array([3, 0, 4, 2], np.int32)
    extra = RNG.standard_normal((9, 3)).astype(np.float32)

    def reference(l, *x, pack_first_input):
        sharded = shard_reference(parts, pack_first_input, x)
        segment = np.repeat(np.arange(len(l)), l)
        out = []
        for j in range(parts):
            counts = [int(np.sum((segment == s) & (np.mod(x[0], parts) == j))) for s in range(len(l))]
            out += [np.array(counts, np.int32)] + sharded[j * len(x):(j + 1) * len(x)]
        return out

    check_reference("LengthsPartition", [lengths, keys, extra], reference, {"pack_first_input": 1},
                    num_outputs=3 * parts)


def test_inference():
    assert infer("Partition", [TensorInfo((4,), "int64"), (4, 2)], 4) == [None] * 4
    out = infer("LengthsPartition", [TensorInfo((3,), "int32"), TensorInfo((6,), "int64")], 4)
    assert out == [TensorInfo((3,), "int32"), None, TensorInfo((3,), "int32"), None]
    keys = TensorInfo((6,), "int32")
    assert infer("GatherByKey", [keys, (2, 3), (4, 3)]) == [TensorInfo((6, 3), "float32")]
    ops, grads = GetGradientForOp(make_op("Partition", ["k"], ["a", "b"]), ["a_grad", "b_grad"])
    assert ops == [] and grads == [None]


@pytest.mark.parametrize("op_type, shapes, n_out, message", [
    ("Partition", [TensorInfo((4,), "int64"), (4, 2)], 3, "3 outputs are not a multiple of the 2 inputs"),
    ("Partition", [(4,)], 2, "the keys must be an int32 or int64 tensor"),
    ("Partition", [TensorInfo((4,), "int32"), (3, 2)], 2, r"input 1 \[3, 2\] must start with the keys' shape \[4\]"),
    ("LengthsPartition", [TensorInfo((3,), "int32"), TensorInfo((2, 2), "int32")], 2, "must be a 1-D int32"),
    ("LengthsPartition", [TensorInfo((3,), "int64"), TensorInfo((4,), "int32")], 2, "lengths must be a 1-D int32"),
    ("GatherByKey", [TensorInfo((6,), "int32"), (2, 3), (4, 2)], 1, r"input 2 \[4, 2\] float32 must match input 1"),
])
def test_inference_errors(op_type, shapes, n_out, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out)


@pytest.mark.parametrize("op_type, inputs, n_out, message", [
    ("LengthsPartition", [np.array([2, 2], np.int32), np.arange(3)], 2, "lengths add up to 4, but the key tensor has 3"),
    ("GatherByKey", [np.array([0, 1, 2]), np.ones(1), np.ones(1)], 1, "shard 0 holds 1 rows, but 2 keys go to it"),
])
def test_run_errors(op_type, inputs, n_out, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, num_outputs=n_out)
