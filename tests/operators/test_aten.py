"""The aten family: the ATen op's dispatch (forms picked by operator, input
count and attribute names; clear errors for an unknown operator or form), its
elementwise, reduction, indexing and shape functions against NumPy
references, inference and errors. The nn functions are in test_aten_nn.py."""
import math
import re

import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import NetError, OpFailure, Workspace
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.operators.aten import KERNELS
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema import get_schema
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.schema.checker import check_net
from pycaffe2.schema.inference.aten import FORMS, supported_operators
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4)).astype(np.float32)
POSITIVE = (np.abs(X) + 0.1).astype(np.float32)
INTS = np.array([[3, -1, 2], [0, 5, -4]], np.int32)


def check(operator, inputs, expected, n_out=1, **attrs):
    """Run ATen `operator` and compare with `expected` (a list of arrays): values, shapes and dtypes."""
    expected = [np.asarray(e) for e in expected]
    got = check_reference("ATen", inputs, lambda *_, **__: expected, {"operator": operator, **attrs},
                          num_outputs=n_out, check_inplace=False)
    assert [g.dtype for g in got] == [e.dtype for e in expected]
    return got


@pytest.mark.parametrize("operator, x, reference", [
    ("abs", X, np.abs), ("neg", X, np.negative), ("relu", X, lambda x: np.where(x > 0, x, 0)),
    ("floor", X, np.floor), ("ceil", X, np.ceil), ("sign", X, np.sign), ("contiguous", X, np.array),
    ("clone", INTS, np.array), ("detach", X, np.array), ("abs", INTS, np.abs),
    ("exp", X, np.exp), ("log", POSITIVE, np.log), ("sqrt", POSITIVE, np.sqrt),
    ("rsqrt", POSITIVE, lambda x: x ** -0.5), ("sigmoid", X, lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", X, np.tanh), ("sin", X, np.sin), ("cos", X, np.cos), ("reciprocal", POSITIVE, lambda x: 1 / x),
    ("log1p", POSITIVE, np.log1p), ("expm1", X, np.expm1),
    ("erf", np.array([-3, -1.2, -0.4, -1e-4, 0, 2e-3, 0.3, 0.49, 0.51, 1.7, 4], np.float32),
     np.vectorize(math.erf, otypes=[np.float32])),
    ("exp", INTS, lambda x: np.exp(x).astype(np.float32)),  # integers become float32
])
def test_unary(operator, x, reference):
    check(operator, [x], [reference(x).astype(np.float32 if operator in ("exp",) else x.dtype)])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    x = np.linspace(-4, 4, 17).astype(np.float32)
    if approximate == "none":
        expected = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x]
    else:
        expected = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))) for v in x]
    check("gelu", [x], [np.float32(expected)], approximate=approximate)


Y = RNG.standard_normal((1, 4)).astype(np.float32)


@pytest.mark.parametrize("operator, inputs, attrs, expected", [
    ("add", [X, Y], {}, X + Y), ("add", [X, Y], {"alpha": 2.5}, X + 2.5 * Y), ("sub", [X, Y], {"alpha": 2}, X - 2 * Y),
    ("mul", [X, Y], {}, X * Y), ("div", [X, POSITIVE], {}, X / POSITIVE),
    ("div", [INTS, np.int32([2])], {}, (INTS / 2).astype(np.float32)),
    ("pow", [POSITIVE, Y], {}, POSITIVE ** Y), ("max", [X, Y], {}, np.maximum(X, Y)),
    ("min", [X, Y], {}, np.minimum(X, Y)),
    ("eq", [INTS, np.int32([[3], [5]])], {}, INTS == np.int32([[3], [5]])), ("lt", [X, Y], {}, X < Y),
    ("ge", [X, Y], {}, X >= Y), ("ne", [X, Y], {}, np.not_equal(X, Y)), ("gt", [X, Y], {}, X > Y), ("le", [X, Y], {}, X <= Y),
    ("where", [X > 0, X, Y], {}, np.where(X > 0, X, Y)),
    ("add", [X], {"other": 2.0, "alpha": 3}, X + 6), ("sub", [INTS], {"other": 1}, INTS - 1),
    ("mul", [X], {"other": -2}, X * -2), ("div", [INTS], {"other": 4}, (INTS / 4).astype(np.float32)),
    ("pow", [X], {"exponent": 2.0}, X * X),  # Caffe2's aten_test.py
    ("add", [INTS], {"other": 0.5}, (INTS + 0.5).astype(np.float32)),
    ("clamp", [X], {"min": -0.5, "max": 0.5}, np.minimum(np.maximum(X, -0.5), 0.5)),
    ("clamp", [X], {"max": 0.1}, np.minimum(X, 0.1)), ("clamp_min", [X], {"min": 0}, np.maximum(X, 0)),
    ("clamp_max", [INTS], {"max": 1}, np.minimum(INTS, 1)),
    ("sub", [np.uint8([1, 2, 3])], {"other": 2}, np.uint8([255, 0, 1])),  # wraps, as ATen's C++ does
    ("sign", [X > 0], {}, X > 0),
])
def test_elementwise(operator, inputs, attrs, expected):
    check(operator, inputs, [expected], **attrs)


def test_max_and_min():
    check("max", [X], [X.max()])
    check("min", [INTS], [np.int32(INTS.min())])
    for keepdim in (0, 1):
        rows = [int(np.argmax(r)) for r in X]
        values = np.float32([X[i, j] for i, j in enumerate(rows)])
        shape = (3, 1) if keepdim else (3,)
        check("max", [X], [values.reshape(shape), np.int64(rows).reshape(shape)], 2, dim=1, keepdim=keepdim)
    cols = [int(np.argmin(X[:, j])) for j in range(4)]
    check("min", [X], [np.float32([X[i, j] for j, i in enumerate(cols)]), np.int64(cols)], 2, dim=-2)
    check("max", [X], [X.max(axis=0)], 1, dim=0)  # a net may use only the values


def test_arg_reductions():
    check("argmax", [X], [np.int64(np.argmax(X))])
    check("argmin", [X], [np.argmin(X, axis=1).astype(np.int64)], dim=1)
    check("argmax", [X], [np.argmax(X, axis=0).astype(np.int64).reshape(1, 4)], dim=0, keepdim=1)


def test_sum_mean_cumsum():
    check("sum", [X], [X.sum()])
    check("sum", [INTS], [np.int64(INTS.sum())])  # integer sums are int64 (ATen's test: sum of S)
    check("sum", [X], [X.sum(axis=1, keepdims=True)], dim=1, keepdim=1)
    check("sum", [X.reshape(3, 2, 2)], [X.reshape(3, 2, 2).sum(axis=(0, 2))], dim=[0, -1])
    check("mean", [X], [X.mean()])
    check("mean", [X], [X.mean(axis=0)], dim=[0])
    check("cumsum", [X], [np.cumsum(X, axis=1)], dim=-1)
    check("cumsum", [INTS], [np.cumsum(INTS, axis=0).astype(np.int64)], dim=0)


def test_shapes():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    check("unsqueeze", [x], [x[:, None]], dim=1)
    check("unsqueeze", [x], [x[..., None]], dim=-1)
    check("squeeze", [x[:, None, :, None]], [x])
    check("squeeze", [x[:, None]], [x], dim=1)
    check("squeeze", [x], [x], dim=1)  # size 3: unchanged
    check("flatten", [x], [x.reshape(2, 12)], start_dim=1)
    check("flatten", [x], [x.reshape(24)])
    check("reshape", [x], [x.reshape(4, 6)], shape=[4, -1])
    check("view", [x], [x.reshape(6, 4)], size=[-1, 4])
    check("permute", [x], [x.transpose(2, 0, 1)], dims=[2, 0, 1])
    check("transpose", [x], [x.swapaxes(0, 2)], dim0=0, dim1=-1)
    check("expand", [x[:, :1]], [np.repeat(x[:, :1], 3, axis=1)[None].repeat(2, 0)], size=[2, -1, 3, 4])
    check("expand_as", [x[:1], x], [np.concatenate([x[:1], x[:1]])])
    check("repeat", [x[0]], [np.tile(x[0], (2, 1, 2))], repeats=[2, 1, 2])
    check("narrow", [x], [x[:, :, 1:3]], dim=2, start=-3, length=2)
    check("slice", [x], [x[:, ::2]], dim=1, step=2)
    check("slice", [x], [x[:, :, 1:]], dim=2, start=1, end=2**63 - 1)
    check("select", [x], [x[:, -1]], dim=1, index=-1)
    check("flip", [x], [x[::-1, :, ::-1]], dims=[0, 2])


def test_cat_stack_and_indexing():
    a, b, c = X, X * 2, X[:, :1]
    check("cat", [a, b, c], [np.concatenate([a, b, c], axis=1)], dim=1)
    check("cat", [a, b], [np.concatenate([a, b])])
    check("stack", [a, b], [np.stack([a, b], axis=2)], dim=2)
    index = np.array([3, 0, 0], np.int64)
    check("index_select", [X, index], [X[:, [3, 0, 0]]], dim=1)
    check("index_select", [X, np.int32([2, 0])], [X[[2, 0]]], dim=0)
    check("index", [X, np.array([2, 0], np.int64)], [X[[2, 0]]])
    mask = np.array([[True, True, True, False], [True, False, False, False], [True, True, False, False]])
    check("index", [X, mask], [X[mask]])
    values = np.arange(6, dtype=np.float32)
    expected = X.copy()
    expected[mask] = values
    check("index_put", [X, mask, values], [expected])  # Caffe2's aten_test.py
    expected = X.copy()
    expected[[1, 1]] += 1  # accumulate adds once per index
    expected[1] += 1
    check("index_put", [X, np.array([1, 1], np.int64), np.float32(1)], [expected], accumulate=1)


def test_sort_and_topk():
    x = np.array([[3, 1, 3, 2, 1], [0, 0, 5, -1, 5]], np.float32)

    def ranked(row, descending):
        return sorted(range(len(row)), key=lambda i: (-row[i] if descending else row[i], i))

    for descending in (0, 1):
        order = np.int64([ranked(r, descending) for r in x])
        check("sort", [x], [np.take_along_axis(x, order, 1), order], 2, descending=descending)
    permutation = RNG.permutation(6).astype(np.float32)
    check("sort", [permutation], [np.sort(permutation), np.argsort(permutation)], 2)  # Caffe2's aten_test.py
    order = np.int64([ranked(r, True)[:2] for r in x])
    check("topk", [x], [np.take_along_axis(x, order, 1), order], 2, k=2)
    order = np.int64([ranked(c, False)[:1] for c in x.T]).T
    check("topk", [x], [np.take_along_axis(x, order, 0), order], 2, k=1, dim=0, largest=0)


def test_matmul():
    a, b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((4, 5))
    check("matmul", [a, b], [np.einsum("bij,jk->bik", a, b)])
    check("matmul", [a[0, 0], b], [a[0, 0] @ b])
    check("mm", [a[0], b], [a[0] @ b])


def test_ones_zeros_and_casts():
    check("ones", [], [np.ones((2, 4), np.float32)], type="float", size=[2, 4])  # Caffe2's aten_test.py
    check("zeros", [], [np.zeros((3,), np.int64)], type="int64", size=[3])
    check("_cast_Long", [X], [X.astype(np.int64)])
    check("_cast_Float", [INTS], [INTS.astype(np.float32)], non_blocking=0)
    check("to", [X], [X.astype(np.float16)], dtype=5)
    check("type_as", [X, INTS], [X.astype(np.int32)])


def test_forms_ignore_overload_name_and_type():
    check("unsqueeze", [X], [X[None]], dim=0, overload_name="", type="float")


def test_the_table_the_schema_and_the_kernels_agree():
    schema = get_schema("ATen")
    attrs = {name for forms in FORMS.values() for form in forms for name in form.attrs}
    assert attrs - set(schema.args) == set()
    assert set(KERNELS) == {form.key for forms in FORMS.values() for form in forms}
    listed = re.search(r"Supported: (.*?)\.\s", schema.doc.replace("\n", " "), re.DOTALL).group(1)
    assert [name.strip() for name in listed.split(",")] == supported_operators()


def aten_net(operator, inputs=("x",), outputs=("y",), **attrs):
    return caffe2_pb2.NetDef(name="n", op=[make_op("ATen", list(inputs), list(outputs),
                                                   {"operator": operator, **attrs})],
                             external_input=list(inputs))


@pytest.mark.parametrize("net, message", [
    (aten_net("frobnicate"), r"ATen operator 'frobnicate' is not supported; supported: _cast_Byte, .*, zeros"),
    (aten_net("max", dim=1, k=2), (r"ATen operator 'max' with 1 input\(s\) and args \[dim, k\] matches none "
                                   r"of its forms: max\(t0\); max\(t0; dim, keepdim=False\); max\(t0, t1\)")),
    (aten_net("unsqueeze"), r"'unsqueeze' with 1 input\(s\) and args \[none\] matches none"),
    (aten_net("max", outputs=("a", "b")), r"'max' \(max\(t0\)\) gives 1 output, got 2"),
    (aten_net("unsqueeze", dim=[0, 1]), r"arg 'dim' must be an int, got \[0, 1\]"),
    (aten_net("abs", bogus=1), r"unknown arg 'bogus'"),
])
def test_validate_and_create_net_errors(net, message):
    problems = check_net(net)
    assert any(re.search(message, str(p)) for p in problems), problems
    workspace = Workspace("aten_errors")
    workspace.FeedBlob("x", X)
    with pytest.raises(NetError, match=message):
        workspace.CreateNet(net)


def test_inference():
    float4 = TensorInfo((3, 4), "float32")
    assert infer("ATen", [(3, 4)], 2, operator="max", dim=1) == [TensorInfo((3,), "float32"),
                                                                 TensorInfo((3,), "int64")]
    assert infer("ATen", [(3, 4)], operator="unsqueeze", dim=-1)[0].shape == (3, 4, 1)
    assert infer("ATen", [(3, 4), TensorInfo((5,), "int32")], operator="index_select", dim=1)[0].shape == (3, 5)
    assert infer("ATen", [(3, 4)], operator="sum", dim=[0], keepdim=1)[0] == TensorInfo((1, 4), "float32")
    assert infer("ATen", [None], operator="abs") == [None]
    assert infer("ATen", [(3, 4), (1, 4)], operator="add") == [float4]
    assert infer("ATen", [(3, 4), TensorInfo((3, 4), "bool")], operator="index") == [None]


@pytest.mark.parametrize("inputs, attrs, message", [
    ([(3, 4)], {"operator": "unsqueeze", "dim": 3}, r"dim 3 is out of range for rank 2 \(expected -3 .. 2\)"),
    ([(3, 4), (2, 4)], {"operator": "add"}, r"shapes \[3, 4\], \[2, 4\] do not broadcast"),
    ([(3, 4)], {"operator": "reshape", "shape": [5, -1]}, r"cannot view \[3, 4\] \(12 elements\) as \[5, -1\]"),
    ([(3, 4), (3, 5)], {"operator": "cat"}, r"tensor 1 \[3, 5\] must match tensor 0 \[3, 4\] off dim 0"),
    ([(3, 4), (2,)], {"operator": "index_select", "dim": 0}, "index must be a rank-0 or 1 int32 or int64 tensor"),
    ([(3, 4)], {"operator": "narrow", "dim": 1, "start": 3, "length": 2}, "do not fit dim 1 of size 4"),
    ([(3, 4)], {"operator": "topk", "k": 5}, "k 5 is out of range for dim -1 of size 4"),
    ([(3, 4)], {"operator": "permute", "dims": [0, 0]}, r"dims \[0, 0\] must order the 2 dimensions"),
    ([(3, 4)], {"operator": "expand", "size": [2, 4]}, r"cannot expand \[3, 4\] to \[2, 4\]"),
    ([(3, 4)], {"operator": "clamp"}, "clamp needs at least one of min and max"),
    ([TensorInfo((3,), "int32")], {"operator": "mean"}, "self must be a float tensor, got int32"),
    ([(0, 2)], {"operator": "max"}, r"cannot take the max or min of an empty tensor \[0, 2\]"),
    ([], {"operator": "ones", "size": [2], "type": "complex"}, "type 'complex' is not one of"),
    ([TensorInfo((2,), "bool")], {"operator": "neg"}, "neg of a bool tensor is not supported"),
])
def test_inference_errors(inputs, attrs, message):
    with pytest.raises(ShapeError, match=message):
        infer("ATen", inputs, **attrs)


def test_run_errors():
    with pytest.raises((OpFailure, NetError), match="index 7 is out of range for a dimension of size 3"):
        run_op("ATen", [X, np.array([7], np.int64)], {"operator": "index_select", "dim": 0})
    with pytest.raises((OpFailure, NetError), match=r"shapes \[3, 4\], \[3\] do not broadcast"):
        run_op("ATen", [X, X[:, 0].copy()], {"operator": "add"})


def test_outputs_over_the_blob_cap_are_refused_at_run_time():
    with pytest.raises((OpFailure, NetError), match="over the .*-byte cap"):
        run_op("ATen", [np.ones(1, np.float32)], {"operator": "repeat", "repeats": [2**40]})


def test_no_gradient():
    with pytest.raises(GradientError, match="ATen"):
        GetGradientForOp(make_op("ATen", ["x"], ["y"], {"operator": "abs"}), ["y_grad"])
