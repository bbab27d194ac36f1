"""The lengths_reducer family: Lengths{Sum,Mean,Max,WeightedSum} and
SparseLengths{Sum,Mean,WeightedSum,PositionalWeightedSum} against a per-segment
NumPy loop, their gradient ops against central differences (the sparse ones
scattered back to DATA's rows), the gradient makers, inference, errors and the
CUDA kernels."""
import numpy as np
import pytest

from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import (
    check_devices,
    check_gradient_op,
    check_reference,
    make_op,
    numeric_gradient,
    run_op,
)
from tests.operators import DEVICES
from tests.schema import infer

DEVICE_CHECKED = ["LengthsSum", "SparseLengthsSum", "SparseLengthsMean", "SparseLengthsWeightedSum",
                  "SparseLengthsIndicesInGradientSumGradient", "SparseLengthsIndicesInGradientMeanGradient",
                  "SparseLengthsIndicesInGradientWeightedSumGradient", "LengthsIndicesInGradientSumGradient"]


def reference(data, lengths, indices=None, weights=None, reducer="sum", positional=False):
    """Segment by segment, as Caffe2's segment_ops_test does."""
    out = np.zeros((len(lengths), *data.shape[1:]), np.float32)
    line = 0
    for k, length in enumerate(lengths):
        rows = []
        for j in range(length):
            row = data[indices[line] if indices is not None else line].astype(np.float64)
            if weights is not None:
                row = row * weights[j if positional else line]
            rows.append(row)
            line += 1
        if rows:
            stack = np.stack(rows)
            out[k] = {"sum": stack.sum(0), "mean": stack.mean(0), "max": stack.max(0)}[reducer]
    return out


def ints(values, dtype=np.int32):
    return np.array(values, dtype)


def table(rng, rows, tail=(3,), dtype=np.float32):
    return rng.standard_normal((rows, *tail)).astype(dtype)


LENGTHS = [ints([2, 0, 3, 1]), ints([0]), ints([], np.int64), ints([4], np.int64)]


@pytest.mark.parametrize("lengths", LENGTHS, ids=str)
@pytest.mark.parametrize("op_type", ["LengthsSum", "LengthsMean", "LengthsMax"])
def test_lengths_reducers(op_type, lengths):
    data = table(np.random.default_rng(0), int(lengths.sum()), (2, 3))
    reducer = op_type[len("Lengths"):].lower()
    check_reference(op_type, [data, lengths], lambda d, ln: reference(d, ln, reducer=reducer))


def test_lengths_weighted_sum():
    rng = np.random.default_rng(1)
    data, scalars, lengths = table(rng, 6), rng.random(6).astype(np.float32), ints([2, 0, 3, 1])
    for grad_on_weights in (0, 1):
        check_reference("LengthsWeightedSum", [data, scalars, lengths],
                        lambda d, w, ln, grad_on_weights: reference(d, ln, weights=w),
                        {"grad_on_weights": grad_on_weights})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("index_type", [np.int32, np.int64])
@pytest.mark.parametrize("op_type", ["SparseLengthsSum", "SparseLengthsMean", "SparseLengthsWeightedSum",
                                     "SparseLengthsPositionalWeightedSum"])
def test_sparse_lengths_reducers(op_type, index_type, device):
    if device == "cuda" and op_type == "SparseLengthsPositionalWeightedSum":
        pytest.skip("CPU only")
    rng = np.random.default_rng(2)
    data, lengths = table(rng, 5, (2, 2)), ints([3, 0, 2, 1])
    indices = rng.integers(0, 5, 6).astype(index_type)
    reducer = "mean" if "Mean" in op_type else "sum"
    if "Weighted" in op_type:
        weights = rng.random(6).astype(np.float32)
        positional = "Positional" in op_type
        check_reference(op_type, [data, weights, indices, lengths],
                        lambda d, w, i, ln, **a: reference(d, ln, i, w, positional=positional), device=device)
    else:
        check_reference(op_type, [data, indices, lengths], lambda d, i, ln: reference(d, ln, i, reducer=reducer),
                        device=device)


def test_sparse_lengths_sum_of_float16_is_float32():
    data = np.arange(8, dtype=np.float16).reshape(4, 2)
    out = check_reference("SparseLengthsSum", [data, ints([3, 3, 0]), ints([1, 2])],
                          lambda d, i, ln: reference(d, ln, i))[0]
    assert out.dtype == np.float32


@pytest.mark.parametrize("device", DEVICES)
def test_lengths_sum_devices(device):
    rng = np.random.default_rng(3)
    data, lengths = table(rng, 5, (4,)), ints([2, 0, 3])
    check_reference("LengthsSum", [data, lengths], lambda d, ln: reference(d, ln), device=device)


# -- gradients ---------------------------------------------------------------------------------------

# The 2-input gradient ops (dOUTPUT, LENGTHS) that older nets name, beside the makers' ones.
LEGACY = {"LengthsIndicesInGradientSumGradient": "LengthsSumGradient",
          "LengthsIndicesInGradientMeanGradient": "LengthsMeanGradient",
          "SparseLengthsIndicesInGradientSumGradient": "SparseLengthsSumGradient",
          "SparseLengthsIndicesInGradientMeanGradient": "SparseLengthsMeanGradient"}


def gradient_ops(op_type, inputs, **args):
    op = make_op(op_type, inputs, ["out"], args)
    return GetGradientForOp(op, ["out_grad"])


@pytest.mark.parametrize("op_type, gradient_type, reducer", [
    ("LengthsSum", "LengthsIndicesInGradientSumGradient", "sum"),
    ("LengthsMean", "LengthsIndicesInGradientMeanGradient", "mean"),
])
def test_lengths_gradients(op_type, gradient_type, reducer):
    rng = np.random.default_rng(4)
    data, lengths = rng.standard_normal((6, 2)), ints([2, 0, 3, 1])
    d_out = rng.standard_normal((4, 2))
    (grad_op,), _g_input = gradient_ops(op_type, ["d", "l"])
    assert (grad_op.type, list(grad_op.input), list(grad_op.output)) == (gradient_type, ["out_grad", "l", "d"],
                                                                         ["d_grad"])
    check_gradient_op(op_type, [data, lengths], gradient_type, [d_out, lengths, data], {0: 0}, [d_out])
    legacy = LEGACY[gradient_type]
    np.testing.assert_allclose(run_op(legacy, [d_out, lengths])[0], run_op(gradient_type, [d_out, lengths, data])[0])


def test_lengths_max_gradient():
    rng = np.random.default_rng(5)
    data, lengths = rng.standard_normal((6, 2)), ints([2, 0, 3, 1])
    d_out = rng.standard_normal((4, 2))
    (grad_op,), _ = gradient_ops("LengthsMax", ["d", "l"])
    assert grad_op.type == "LengthsMaxWithMainInputAndForwardOutputGradient"
    assert list(grad_op.input) == ["out", "out_grad", "l", "d"]
    out = run_op("LengthsMax", [data, lengths])[0]
    check_gradient_op("LengthsMax", [data, lengths], grad_op.type, [out, d_out, lengths, data], {0: 0}, [d_out])


@pytest.mark.parametrize("grad_on_weights", [0, 1])
def test_lengths_weighted_sum_gradient(grad_on_weights):
    rng = np.random.default_rng(6)
    data, scalars, lengths = rng.standard_normal((6, 2)), rng.random(6), ints([2, 0, 3, 1])
    d_out = rng.standard_normal((4, 2))
    (grad_op,), g_input = gradient_ops("LengthsWeightedSum", ["d", "w", "l"], grad_on_weights=grad_on_weights)
    args = {"grad_on_weights": grad_on_weights}
    if grad_on_weights:
        assert grad_op.type == "LengthsWeightedSumWithMainInputGradient" and g_input[1] == "w_grad"
        check_gradient_op("LengthsWeightedSum", [data, scalars, lengths], grad_op.type,
                          [scalars, d_out, lengths, data], {0: 0, 1: 1}, [d_out], args)
    else:
        assert grad_op.type == "LengthsWeightedSumGradient" and g_input[1] is None
        check_gradient_op("LengthsWeightedSum", [data, scalars, lengths], grad_op.type,
                          [scalars, d_out, lengths], {0: 0}, [d_out], args)


def scattered(values, indices, rows):
    dense = np.zeros((rows, *values.shape[1:]))
    np.add.at(dense, indices, values)
    return dense


@pytest.mark.parametrize("op_type, gradient_type", [
    ("SparseLengthsSum", "SparseLengthsIndicesInGradientSumGradient"),
    ("SparseLengthsMean", "SparseLengthsIndicesInGradientMeanGradient"),
])
def test_sparse_lengths_gradients(op_type, gradient_type):
    rng = np.random.default_rng(7)
    data, indices, lengths = rng.standard_normal((5, 2)), ints([4, 4, 0, 1, 2, 4]), ints([3, 0, 2, 1])
    d_out = rng.standard_normal((4, 2))
    (grad_op,), g_input = gradient_ops(op_type, ["d", "i", "l"])
    assert (grad_op.type, list(grad_op.input)) == (gradient_type, ["out_grad", "l", "i"])
    assert (g_input[0].indices, g_input[0].values) == ("i", "d_grad_values")
    values = run_op(gradient_type, [d_out, lengths, indices])[0]
    np.testing.assert_allclose(scattered(values, indices, 5),
                               numeric_gradient(op_type, [data, indices, lengths], 0, [d_out]), atol=1e-3)
    np.testing.assert_allclose(run_op(LEGACY[gradient_type], [d_out, lengths])[0], values)


@pytest.mark.parametrize("grad_on_weights", [0, 1])
def test_sparse_lengths_weighted_sum_gradient(grad_on_weights):
    rng = np.random.default_rng(8)
    data, weights = rng.standard_normal((5, 2)), rng.random(6)
    indices, lengths = ints([4, 4, 0, 1, 2, 4]), ints([3, 0, 2, 1])
    d_out = rng.standard_normal((4, 2))
    inputs = [data, weights, indices, lengths]
    (grad_op,), g_input = gradient_ops("SparseLengthsWeightedSum", ["d", "w", "i", "l"],
                                       grad_on_weights=grad_on_weights)
    assert g_input[0].values == "d_grad_values"
    args = {"grad_on_weights": grad_on_weights}
    if grad_on_weights:
        assert grad_op.type == "SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient"
        assert list(grad_op.input) == ["w", "out_grad", "l", "d", "i"] and g_input[1] == "w_grad"
        values, d_weights = run_op(grad_op.type, [weights, d_out, lengths, data, indices], args, num_outputs=2)
        np.testing.assert_allclose(
            d_weights, numeric_gradient("SparseLengthsWeightedSum", inputs, 1, [d_out], args), atol=1e-3)
        legacy = run_op("SparseLengthsWeightedSumWithMainInputGradient", [weights, d_out, lengths, data, indices],
                        args, num_outputs=2)
        np.testing.assert_allclose(legacy[1], d_weights)
    else:
        assert grad_op.type == "SparseLengthsIndicesInGradientWeightedSumGradient" and g_input[1] is None
        values = run_op(grad_op.type, [weights, d_out, lengths, indices], args)[0]
        np.testing.assert_allclose(run_op("SparseLengthsWeightedSumGradient", [weights, d_out, lengths])[0], values)
    np.testing.assert_allclose(scattered(values, indices, 5),
                               numeric_gradient("SparseLengthsWeightedSum", inputs, 0, [d_out], args), atol=1e-3)


def test_weights_gradient_of_no_indices():
    values, d_weights = run_op("SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient",
                               [np.zeros(0, np.float32), np.zeros((0, 4, 3), np.float32), ints([]),
                                np.ones((1, 4, 3), np.float32), ints([], np.int64)], num_outputs=2)
    assert values.shape == (0, 4, 3) and d_weights.shape == (0,)


def test_sparse_gradient_in_a_net():
    """AddGradientOperators: DATA's gradient is the slice (INDICES, values)."""
    from pycaffe2 import core
    net = core.Net("sls")
    net.SparseLengthsSum(["emb", "idx", "len"], "pooled")
    net.AveragedLoss("pooled", "loss")
    grads = net.AddGradientOperators(["loss"])
    assert (grads["emb"].indices, grads["emb"].values) == ("idx", "emb_grad_values")
    ws = Workspace("sls")
    ws.FeedBlob("emb", np.ones((4, 2), np.float32))
    ws.FeedBlob("idx", ints([3, 3, 1]))
    ws.FeedBlob("len", ints([2, 1]))
    ws.RunNetOnce(net.Proto())
    np.testing.assert_allclose(ws.FetchBlob("emb_grad_values"), np.full((3, 2), 0.25))


@pytest.mark.parametrize("device", DEVICES)
def test_lengths_sum_gradient_devices(device):
    rng = np.random.default_rng(11)
    d_out, lengths, data = table(rng, 3, (2, 2)), ints([3, 0, 2]), table(rng, 5, (2, 2))
    inputs = [d_out, lengths, data]
    if device == "cuda":
        check_devices("LengthsIndicesInGradientSumGradient", inputs)
    else:
        np.testing.assert_allclose(run_op("LengthsIndicesInGradientSumGradient", inputs)[0], d_out[[0, 0, 0, 2, 2]])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("gradient_type", ["SparseLengthsIndicesInGradientSumGradient",
                                           "SparseLengthsIndicesInGradientMeanGradient",
                                           "SparseLengthsIndicesInGradientWeightedSumGradient"])
def test_sparse_gradient_devices(gradient_type, device):
    rng = np.random.default_rng(9)
    d_out, lengths, indices = table(rng, 3, (2, 2)), ints([3, 0, 2]), ints([1, 1, 0, 2, 7], np.int64)
    inputs = [d_out, lengths, indices]
    if "Weighted" in gradient_type:
        inputs = [rng.random(5).astype(np.float32)] + inputs
    if device == "cuda":
        check_devices(gradient_type, inputs)
    else:
        out = run_op(gradient_type, inputs)[0]
        assert out.shape == (5, 2, 2)


# -- inference and errors ----------------------------------------------------------------------------

def i32(*shape):
    return TensorInfo(shape, "int32")


def test_inference():
    assert infer("LengthsSum", [(6, 3), i32(4)])[0] == TensorInfo((4, 3), "float32")
    assert infer("LengthsWeightedSum", [(6, 3), (6,), i32(4)])[0].shape == (4, 3)
    assert infer("SparseLengthsMean", [TensorInfo((9, 3), "float16"), i32(5), i32(2)])[0] == \
        TensorInfo((2, 3), "float32")
    assert infer("SparseLengthsWeightedSum", [(9, 3), (5,), i32(5), i32(2)])[0].shape == (2, 3)
    assert infer("SparseLengthsIndicesInGradientSumGradient", [(2, 3), i32(2), i32(5)])[0].shape == (5, 3)
    assert infer("SparseLengthsSumGradient", [(2, 3), i32(2)])[0] is None  # rows: sum(LENGTHS)
    assert infer("LengthsWeightedSumWithMainInputGradient", [(6,), (2, 3), i32(2), (6, 3)], 2) == \
        [TensorInfo((6, 3)), TensorInfo((6,))]


@pytest.mark.parametrize("op_type, shapes, message", [
    ("LengthsSum", [(6, 3), i32(4, 1)], "LENGTHS must be a 1-D int32 or int64 tensor"),
    ("LengthsSum", [TensorInfo((6,), "int32"), i32(4)], "DATA must be a float32 or float64 tensor"),
    ("LengthsWeightedSum", [(6, 3), (5,), i32(4)], r"SCALARS \[5\] must hold one weight per entry"),
    ("SparseLengthsSum", [(6, 3), TensorInfo((5,), "float32"), i32(2)], "INDICES must be a 1-D int32"),
    ("SparseLengthsWeightedSum", [(6, 3), (4,), i32(5), i32(2)], r"WEIGHTS \[4\] must hold one weight"),
    ("SparseLengthsIndicesInGradientSumGradient", [(3, 2), i32(2), i32(5)], "one row per entry of LENGTHS"),
])
def test_inference_errors(op_type, shapes, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes)


@pytest.mark.parametrize("op_type, inputs, message", [
    ("SparseLengthsSum", [np.ones((3, 2), np.float32), ints([0, 5]), ints([2])],
     r"INDICES\[1\] = 5 is out of range for DATA with 3 rows"),
    ("SparseLengthsSum", [np.ones((3, 2), np.float32), ints([0, -1]), ints([2])], "out of range"),
    ("SparseLengthsMean", [np.ones((3, 2), np.float32), ints([0, 1]), ints([1, 2])],
     r"the sum of LENGTHS \(3\) must equal the number of INDICES \(2\)"),
    ("LengthsSum", [np.ones((3, 2), np.float32), ints([4, -1])], "LENGTHS must be non-negative"),
    ("LengthsMean", [np.ones((3, 2), np.float32), ints([1])], r"the sum of LENGTHS \(1\) must equal"),
    ("SparseLengthsPositionalWeightedSum", [np.ones((3, 2), np.float32), np.ones(1, np.float32), ints([0, 1]),
                                            ints([2])], "fewer than the longest segment"),
    ("SparseLengthsSumGradient", [np.ones((1, 2), np.float32), ints([2 ** 62], np.int64)], "over the .*-byte cap"),
])
def test_run_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs)


def test_legacy_gradient_output_over_the_cap(monkeypatch):
    monkeypatch.setenv("PYCAFFE2_MAX_BLOB_BYTES", str(1 << 20))
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op("LengthsMeanGradient", [np.ones((1, 1024), np.float32), ints([1024])])  # 4 MiB of output


def test_gathers_in_bounded_chunks(monkeypatch):
    """Many indices into wide rows are gathered a chunk at a time, with the same sums."""
    from pycaffe2.operators import lengths_reducer
    rng = np.random.default_rng(10)
    data, indices, lengths = table(rng, 7, (5,)), rng.integers(0, 7, 40).astype(np.int32), ints([13, 0, 27])
    weights = rng.random(40).astype(np.float32)
    whole = run_op("SparseLengthsWeightedSum", [data, weights, indices, lengths])[0]
    monkeypatch.setattr(lengths_reducer, "CHUNK_ELEMENTS", 12)  # two rows at a time
    np.testing.assert_allclose(run_op("SparseLengthsWeightedSum", [data, weights, indices, lengths])[0], whole,
                               rtol=1e-6)
    np.testing.assert_allclose(whole, reference(data, lengths, indices, weights), rtol=1e-5, atol=1e-5)


def test_positional_weighted_sum_has_no_gradient():
    from pycaffe2.errors import GradientError
    with pytest.raises(GradientError):
        gradient_ops("SparseLengthsPositionalWeightedSum", ["d", "w", "i", "l"])


def test_engine_is_ignored():
    op = make_op("SparseLengthsSum", ["d", "i", "l"], ["o"])
    op.engine = "fp16"
    ws = Workspace("engine")
    ws.FeedBlob("d", np.ones((2, 2), np.float32))
    ws.FeedBlob("i", ints([1]))
    ws.FeedBlob("l", ints([1]))
    ws.RunOperatorOnce(op)
    assert ws.FetchBlob("o").shape == (1, 2)


def test_glow_lengths_sum_net_runs():
    from pathlib import Path

    from pycaffe2 import netfile
    path = Path(__file__).resolve().parents[2].parent / "shared" / "glow_caffe2_nets" / "lengths_sum.pbtxt"
    if not path.is_file():
        pytest.skip("the shared glow_caffe2_nets folder is absent")
    net = netfile.load_net(path)
    data, lengths = np.arange(24, dtype=np.float32).reshape(6, 2, 2), ints([1, 0, 3, 2])
    ws = Workspace("glow")
    ws.FeedBlob("data", data)
    ws.FeedBlob("lengths", lengths)
    ws.RunNetOnce(net)
    np.testing.assert_allclose(ws.FetchBlob("result"), reference(data, lengths))
