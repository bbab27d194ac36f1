"""The pack_segments family: PackSegments, UnpackSegments, AddPadding, RemovePadding,
GatherPadding, PadEmptySamples, PackRNNSequence and UnpackRNNSequence against loop references, the gradients (each
other's ops) against central differences, inference and errors."""
import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_gradient_op, check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(3)


def pack_reference(lengths, data, *, pad_minf=0, return_presence_mask=0, max_length=-1):
    width = max(lengths, default=0) if max_length == -1 else max_length
    pad = -np.inf if pad_minf else 0
    out = np.full((len(lengths), width, *data.shape[1:]), pad, data.dtype)
    presence = np.zeros((len(lengths), width), bool)
    start = 0
    for i, n in enumerate(lengths):
        kept = min(n, width)
        out[i, :kept] = data[start:start + kept]
        presence[i, :kept] = True
        start += n
    return [out, presence]


def unpack_reference(lengths, packed, *, max_length=-1, **_):
    rows = [packed[i, :n if max_length == -1 else min(n, max_length)] for i, n in enumerate(lengths)]
    return [np.concatenate(rows) if rows else packed.reshape(0, *packed.shape[2:])]


@pytest.mark.parametrize("args", [{}, {"pad_minf": 1}, {"max_length": 2}, {"max_length": 5}])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_pack_and_unpack(args, dtype):
    lengths = np.array([1, 0, 3, 2], np.int32)
    data = (RNG.standard_normal((6, 2)) * 10).astype(dtype)
    if dtype is np.int64 and args.get("pad_minf"):
        args = {}
    full = {**args, "return_presence_mask": 1}
    packed = check_reference("PackSegments", [lengths, data], pack_reference, full, num_outputs=2)[0]
    check_reference("PackSegments", [lengths, data], lambda *a, **k: pack_reference(*a, **k)[:1], args)
    unpack_args = {"max_length": args["max_length"]} if "max_length" in args else {}
    check_reference("UnpackSegments", [lengths, packed], unpack_reference, unpack_args)


def test_pack_strings_and_empty():
    lengths = np.array([1, 2], np.int64)
    strings = np.array([b"a", b"bb", b"c"], dtype=object)
    (packed,) = run_op("PackSegments", [lengths, strings])
    assert packed.tolist() == [[b"a", b""], [b"bb", b"c"]]
    (back,) = run_op("UnpackSegments", [lengths, packed])
    assert back.tolist() == strings.tolist()
    out, presence = run_op("PackSegments", [np.zeros(0, np.int32), np.zeros(0, np.float32)],
                           {"return_presence_mask": 1}, num_outputs=2)
    assert out.shape == (0, 0) and presence.shape == (0, 0)


def test_pack_and_unpack_gradients():
    lengths = np.array([2, 0, 3], np.int32)
    data, packed = RNG.standard_normal((5, 2)), RNG.standard_normal((3, 3, 2))
    (grad_op,), _ = GetGradientForOp(make_op("PackSegments", ["l", "d"], ["p"], {"pad_minf": 1}), ["p_grad"])
    assert (grad_op.type, list(grad_op.input), [a.name for a in grad_op.arg]) == (
        "UnpackSegments", ["l", "p_grad"], ["pad_minf"])
    check_gradient_op("PackSegments", [lengths, data], "UnpackSegments", [lengths, packed], {0: 1}, [packed])
    (grad_op,), _ = GetGradientForOp(make_op("UnpackSegments", ["l", "p"], ["d"]), ["d_grad"])
    assert (grad_op.type, list(grad_op.input)) == ("PackSegments", ["l", "d_grad"])
    check_gradient_op("UnpackSegments", [lengths, packed], "PackSegments", [lengths, data], {0: 1}, [data])


def add_padding_reference(data, lengths=None, start_pad=None, end_pad=None, *, padding_width=1,
                          end_padding_width=-1):
    end_width = padding_width if end_padding_width < 0 else end_padding_width
    lengths = [len(data)] if lengths is None else lengths
    start_pad = np.zeros(data.shape[1:], data.dtype) if start_pad is None else start_pad
    end_pad = start_pad if end_pad is None else end_pad
    rows, offset = [], 0
    for n in lengths:
        rows += [start_pad] * padding_width + list(data[offset:offset + n]) + [end_pad] * end_width
        offset += n
    out = np.array(rows, data.dtype).reshape(-1, *data.shape[1:])
    return [out, np.array(lengths, np.int32) + padding_width + end_width]


def remove_padding_reference(data, lengths=None, *, padding_width=1, end_padding_width=-1):
    end_width = padding_width if end_padding_width < 0 else end_padding_width
    lengths = [len(data)] if lengths is None else lengths
    rows, offset = [], 0
    for n in lengths:
        rows += list(data[offset + padding_width:offset + n - end_width])
        offset += n
    out = np.array(rows, data.dtype).reshape(-1, *data.shape[1:])
    return [out, np.array(lengths, np.int32) - padding_width - end_width]


def gather_padding_reference(data, lengths=None, *, padding_width=1, end_padding_width=-1):
    end_width = padding_width if end_padding_width < 0 else end_padding_width
    lengths = [len(data)] if lengths is None else lengths
    start_sum, end_sum = np.zeros(data.shape[1:], data.dtype), np.zeros(data.shape[1:], data.dtype)
    offset = 0
    for n in lengths:
        start_sum += data[offset:offset + padding_width].sum(axis=0)
        end_sum += data[offset + n - end_width:offset + n].sum(axis=0)
        offset += n
    return [start_sum, end_sum]


@pytest.mark.parametrize("widths", [{"padding_width": 1}, {"padding_width": 2, "end_padding_width": 0},
                                    {"padding_width": 0, "end_padding_width": 1}, {"padding_width": 0}])
@pytest.mark.parametrize("n_pads", [0, 1, 2])
def test_add_remove_and_gather_padding(widths, n_pads):
    lengths = np.array([2, 0, 3], np.int32)
    data = RNG.standard_normal((5, 2)).astype(np.float32)
    pads = [RNG.standard_normal(2).astype(np.float32) for _ in range(n_pads)]
    inputs = [data, lengths, *pads]
    padded, padded_lengths = check_reference("AddPadding", inputs, add_padding_reference, widths, num_outputs=2)
    check_reference("AddPadding", [data], add_padding_reference, widths, num_outputs=2)
    check_reference("RemovePadding", [padded, padded_lengths], remove_padding_reference, widths, num_outputs=2)
    check_reference("GatherPadding", [padded, padded_lengths], gather_padding_reference, widths, num_outputs=2)
    both = lambda *a, **k: [sum(gather_padding_reference(*a, **k))]
    check_reference("GatherPadding", [padded, padded_lengths], both, widths)


def test_padding_gradients():
    lengths = np.array([2, 1], np.int32)
    data, start, end = RNG.standard_normal((3, 2)), RNG.standard_normal(2), RNG.standard_normal(2)
    args = {"padding_width": 2, "end_padding_width": 1}
    d_out = RNG.standard_normal((9, 2))
    ops, grads = GetGradientForOp(make_op("AddPadding", ["x", "l", "s", "e"], ["y", "yl"], args), ["y_grad", None])
    assert [(o.type, list(o.input), list(o.output)) for o in ops] == [
        ("RemovePadding", ["y_grad", "yl"], ["x_grad"]), ("GatherPadding", ["y_grad", "yl"], ["s_grad", "e_grad"])]
    assert grads == ["x_grad", None, "s_grad", "e_grad"]
    padded_lengths = lengths + 3
    forward = [data, lengths, start, end]
    check_gradient_op("AddPadding", forward, "RemovePadding", [d_out, padded_lengths], {0: 0}, [d_out, None],
                      args, num_outputs=2)
    check_gradient_op("AddPadding", forward, "GatherPadding", [d_out, padded_lengths], {0: 2, 1: 3},
                      [d_out, None], args, num_outputs=2)
    check_gradient_op("AddPadding", forward[:3], "GatherPadding", [d_out, padded_lengths], {0: 2}, [d_out, None],
                      args, num_outputs=2)  # one padding for both ends
    (grad_op,), _ = GetGradientForOp(make_op("RemovePadding", ["y", "yl"], ["x", "xl"], args), ["x_grad", None])
    assert (grad_op.type, list(grad_op.input)) == ("AddPadding", ["x_grad", "xl"])
    check_gradient_op("RemovePadding", [d_out, padded_lengths], "AddPadding", [data, lengths], {0: 0},
                      [data, None], args, num_outputs=2)
    with pytest.raises(GradientError, match="needs its lengths_out output"):
        GetGradientForOp(make_op("AddPadding", ["x", "l"], ["y"]), ["y_grad"])


def test_pad_empty_samples():
    lengths = np.array([1, 0, 2, 0], np.int32)
    f1 = np.array([[1, 1], [2, 2], [2, 2]], np.int64)
    f2 = np.array([1.5, 2.5, 3.5], np.float32)

    def reference(l, *features):
        outs = [np.maximum(l, 1).astype(np.int32)]
        for f in features:
            rows, offset = [], 0
            for n in l:
                rows += list(f[offset:offset + n]) if n else [np.zeros(f.shape[1:], f.dtype)]
                offset += n
            outs.append(np.array(rows, f.dtype).reshape(-1, *f.shape[1:]))
        return outs

    check_reference("PadEmptySamples", [lengths, f1, f2], reference, num_outputs=3)
    check_reference("PadEmptySamples", [np.array([0], np.int32), np.zeros(0, np.int64)], reference, num_outputs=2)


def i32(*shape):
    return TensorInfo(shape, "int32")


def test_inference():
    assert infer("PackSegments", [i32(3), (6, 2)], 2, max_length=4, return_presence_mask=1) == [
        TensorInfo((3, 4, 2), "float32"), TensorInfo((3, 4), "bool")]
    assert infer("PackSegments", [i32(3), (6, 2)]) == [None]
    assert infer("UnpackSegments", [i32(3), (3, 4, 2)]) == [None]
    assert infer("AddPadding", [(6, 2), i32(3)], 2, padding_width=2, end_padding_width=1) == [
        TensorInfo((15, 2), "float32"), i32(3)]
    assert infer("AddPadding", [(6,)], 2) == [TensorInfo((8,), "float32"), i32(1)]
    assert infer("RemovePadding", [(15, 2), i32(3)], 2, padding_width=2, end_padding_width=1) == [
        TensorInfo((6, 2), "float32"), i32(3)]
    assert infer("GatherPadding", [(15, 2, 3), i32(3)], 2) == [TensorInfo((2, 3), "float32")] * 2
    assert infer("PadEmptySamples", [i32(4), (5, 2)], 2) == [i32(4), None]


@pytest.mark.parametrize("op_type, shapes, n_out, args, message", [
    ("PackSegments", [i32(3), ()], 1, {}, "tensor must have rank >= 1"),
    ("PackSegments", [i32(3), (3,)], 1, {"max_length": -2}, "max_length must be -1"),
    ("PackSegments", [i32(3), (3,)], 2, {}, "needs return_presence_mask=1"),
    ("UnpackSegments", [i32(3), (3,)], 1, {}, r"tensor must have rank >= 2, got \[3\]"),
    ("UnpackSegments", [i32(3), (2, 4)], 1, {}, r"one row per length \(3\)"),
    ("AddPadding", [(6, 2), TensorInfo((3,), "int64")], 1, {}, "lengths must be a 1-D int32 tensor"),
    ("AddPadding", [(6, 2), i32(3), (3,)], 1, {}, r"start_padding \[3\] must hold one row of data_in"),
    ("AddPadding", [(6, 2)], 1, {"padding_width": -1}, "padding_width must be >= 0, got -1"),
    ("RemovePadding", [(3, 2), i32(3)], 1, {}, "too short to hold 3 paddings"),
    ("GatherPadding", [TensorInfo((3,), "bool")], 1, {}, "must not be bool"),
    ("PadEmptySamples", [i32(3), (3,)], 1, {}, "1 outputs for 2 inputs"),
])
def test_inference_errors(op_type, shapes, n_out, args, message):
    with pytest.raises(ShapeError, match=message):
        infer(op_type, shapes, n_out, **args)


@pytest.mark.parametrize("op_type, inputs, args, n_out, message", [
    ("PackSegments", [np.array([1, 2, 4], np.int32), np.ones((6, 2))], {}, 1,
     "lengths add up to 7, but tensor's first dim has 6"),
    ("PackSegments", [np.array([1, -1], np.int32), np.ones(0)], {}, 1, "lengths must be >= 0, got -1"),
    ("PackSegments", [np.array([1, 0], np.int32), np.ones(1)], {"max_length": 1 << 60}, 1, "over the .*-byte cap"),
    ("UnpackSegments", [np.array([1, 4], np.int32), np.ones((2, 3))], {}, 1,
     r"length 4 is longer than the packed segments \(3\)"),
    ("AddPadding", [np.ones((3, 2)), np.array([1, 1], np.int32)], {}, 1, "lengths add up to 2"),
    ("AddPadding", [np.ones((3, 2)), np.array([3], np.int32), np.ones(2, np.float32)], {}, 1,
     r"start_padding \(float32\) must have data_in's type \(float64\)"),
    ("RemovePadding", [np.ones((3, 2)), np.array([1, 2], np.int32)], {}, 1,
     r"segment of length 1 is shorter than its padding \(2 rows\)"),
    ("PadEmptySamples", [np.array([1, 0], np.int32), np.ones(2)], {}, 2, "input 1 has 2 rows, but the lengths add"),
])
def test_run_errors(op_type, inputs, args, n_out, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, inputs, args, num_outputs=n_out)


# -- PackRNNSequence / UnpackRNNSequence -------------------------------------------------------

def pack_rnn_reference(values, lengths):
    out = np.zeros((max(lengths, default=0), len(lengths), *values.shape[1:]), values.dtype)
    offset = 0
    for c, n in enumerate(lengths):
        for r in range(n):
            out[r, c] = values[offset + r]
        offset += n
    return [out]


def unpack_rnn_reference(values, lengths):
    rows = [values[r, c] for c, n in enumerate(lengths) for r in range(n)]
    return [np.array(rows, values.dtype).reshape(sum(lengths), *values.shape[2:])]


@pytest.mark.parametrize("lengths, dtype", [([2, 3, 1, 2], np.float32), ([0, 2, 0], np.int64),
                                            ([], np.float64), ([1], np.int32)])
def test_pack_and_unpack_rnn_sequence(lengths, dtype):
    lengths = np.array(lengths, np.int32)
    values = (RNG.standard_normal((int(lengths.sum()), 3, 2)) * 10).astype(dtype)
    (packed,) = check_reference("PackRNNSequence", [values, lengths], pack_rnn_reference)
    check_reference("UnpackRNNSequence", [packed, lengths], unpack_rnn_reference)
    np.testing.assert_array_equal(run_op("UnpackRNNSequence", [packed, lengths])[0], values)


def test_rnn_sequence_gradients_are_each_other():
    lengths = np.array([2, 3, 1], np.int64)
    values = RNG.standard_normal((6, 2))
    packed = pack_rnn_reference(values, lengths)[0]
    check_gradient_op("PackRNNSequence", [values, lengths], "UnpackRNNSequence", [packed, lengths], {0: 0},
                      [packed])
    check_gradient_op("UnpackRNNSequence", [packed, lengths], "PackRNNSequence", [values, lengths], {0: 0},
                      [values])
    for forward, backward in [("PackRNNSequence", "UnpackRNNSequence"), ("UnpackRNNSequence", "PackRNNSequence")]:
        op = make_op(forward, ["v", "l"], ["y"])
        (grad,), g_input = GetGradientForOp(op, ["y_grad"])
        assert (grad.type, list(grad.input), list(grad.output)) == (backward, ["y_grad", "l"], ["v_grad"])
        assert g_input == ["v_grad", None]


def test_rnn_sequence_inference():
    assert infer("PackRNNSequence", [(6, 2), TensorInfo((3,), "int64")]) == [None]
    assert infer("UnpackRNNSequence", [(3, 3, 2), TensorInfo((3,), "int32")]) == [None]


@pytest.mark.parametrize("op_type, values, lengths, message", [
    ("PackRNNSequence", np.zeros(3, np.float32), [1, 2], r"values must have rank >= 2, got \[3\]"),
    ("UnpackRNNSequence", np.zeros((3, 2), np.float32), [1, 2], r"values must have rank >= 3"),
    ("UnpackRNNSequence", np.zeros((3, 3, 1), np.float32), [1, 2], "must have one column per length"),
    ("PackRNNSequence", np.zeros((3, 2), bool), [1, 2], "values must be one of"),
    ("PackRNNSequence", np.zeros((3, 2), np.float32), np.zeros((2, 1), np.int32), "lengths must be a 1-D"),
])
def test_rnn_sequence_shape_errors(op_type, values, lengths, message):
    lengths = np.asarray(lengths, np.int32)
    with pytest.raises(ShapeError, match=message):
        infer(op_type, [TensorInfo(values.shape, values.dtype.name), TensorInfo(lengths.shape, "int32")])
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, [values, lengths])


@pytest.mark.parametrize("op_type, values, lengths, message", [
    ("PackRNNSequence", np.zeros((3, 2), np.float32), [2, 2], "lengths add up to 4, but values has 3 rows"),
    ("PackRNNSequence", np.zeros((3, 2), np.float32), [-1, 2], "lengths must be >= 0"),
    ("UnpackRNNSequence", np.zeros((2, 2, 1), np.float32), [3, 1], "lengths go up to 3, but values has 2"),
])
def test_rnn_sequence_value_errors(op_type, values, lengths, message):
    with pytest.raises((OpFailure, NetError), match=message):
        run_op(op_type, [values, np.asarray(lengths, np.int32)])
