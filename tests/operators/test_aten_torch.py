"""The ATen op against PyTorch's own ATen functions (torch.ops.aten), called with
the same tensors and attribute names; skipped where PyTorch is not installed.
The main tests (test_aten.py, test_aten_nn.py) do not need it."""

import numpy as np
import pytest

from pycaffe2.testing import run_op

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4)).astype(np.float32)
P = np.abs(X) + 0.1
I = np.array([[3, -1, 2, 2], [0, 5, -4, 1], [1, 1, 1, 1]], np.int32)
B = X > 0
CASES = [
    ("abs", [X], {}),
    ("neg", [I], {}),
    ("relu", [X], {}),
    ("sign", [X], {}),
    ("exp", [I], {}),
    ("sqrt", [P], {}),
    ("rsqrt", [P], {}),
    ("erf", [X], {}),
    ("sigmoid", [X], {}),
    ("gelu", [X], {"approximate": "tanh"}),
    ("log1p", [P], {}),
    ("add", [X, X[:1]], {"alpha": 2}),
    ("add", [I], {"other": 0.5}),
    ("sub", [I], {"other": 2, "alpha": 3}),
    ("mul", [I, X], {}),
    ("div", [I, I + 10], {}),
    ("div", [I], {"other": 4}),
    ("pow", [P], {"exponent": 1.5}),
    ("pow", [I], {"exponent": 2}),
    ("eq", [I, I.T[:1].T], {}),
    ("where", [B, X, I], {}),
    ("max", [X], {}),
    ("max", [I], {"dim": 0, "keepdim": True}),
    ("min", [X], {"dim": -1}),
    ("max", [X, P], {}),
    ("argmax", [X], {}),
    ("argmin", [X], {"dim": 1, "keepdim": True}),
    ("argmax", [X], {"keepdim": True}),
    ("sum", [I], {}),
    ("sum", [X], {"dim": [0, 1]}),
    ("sum", [I], {"dim": [1], "keepdim": True}),
    ("mean", [X], {"dim": [0]}),
    ("mean", [X], {}),
    ("cumsum", [I], {"dim": 1}),
    ("cumsum", [X], {"dim": 0}),
    ("clamp", [X], {"min": -0.2, "max": 0.3}),
    ("clamp", [I], {"max": 1}),
    ("clamp_min", [X], {"min": 0}),
    ("unsqueeze", [X], {"dim": -1}),
    ("squeeze", [X[None]], {}),
    ("squeeze", [X[None]], {"dim": 0}),
    ("flatten", [X[None]], {"start_dim": 1}),
    ("reshape", [X], {"shape": [2, -1]}),
    ("view", [X], {"size": [-1]}),
    ("permute", [X[None]], {"dims": [2, 0, 1]}),
    ("transpose", [X], {"dim0": 1, "dim1": 0}),
    ("expand", [X[:1]], {"size": [2, 3, -1]}),
    ("expand_as", [X[:1], X], {}),
    ("repeat", [X], {"repeats": [2, 1, 3]}),
    ("narrow", [X], {"dim": 1, "start": -2, "length": 2}),
    ("slice", [X], {"dim": 1, "start": 1, "end": 100, "step": 2}),
    ("select", [X], {"dim": 1, "index": -1}),
    ("cat", [X, P], {"dim": 1}),
    ("stack", [X, P], {"dim": -1}),
    ("index_select", [X, np.int64([2, 0, 2])], {"dim": 0}),
    ("flip", [X], {"dims": [0, 1]}),
    ("sort", [I], {"dim": 1, "descending": True}),
    ("sort", [X], {}),
    ("topk", [X], {"k": 2}),
    ("topk", [I.astype(np.float32)], {"k": 2, "dim": 0, "largest": False}),
    ("matmul", [X, X.T.copy()], {}),
    ("mm", [X, X.T.copy()], {}),
    ("softmax", [X], {"dim": 1}),
    ("log_softmax", [X], {"dim": 0}),
    ("layer_norm", [X], {"normalized_shape": [4]}),
    ("embedding", [X, np.int64([[0, 2], [1, 1]])], {}),
    ("constant_pad_nd", [X], {"pad": [1, -1, 2, 0], "value": 3}),
    ("type_as", [X, I], {}),
    ("_cast_Long", [X], {}),
    ("to", [X], {"dtype": 4}),
    ("ones", [], {"size": [2, 3]}),
    ("index", [X, np.int64([2, 0])], {}),
    ("index", [X, B], {}),
    ("index_put", [X, B, np.float32([7])], {}),
    ("adaptive_avg_pool2d", [X[None]], {"output_size": [2, 3]}),
]


def torch_call(op, ins, attrs):
    t = [torch.from_numpy(np.ascontiguousarray(v)) for v in ins]
    f = getattr(torch.ops.aten, op)
    if op in ("cat", "stack"):
        return f(t, **attrs)
    if op == "index":
        return f(t[0], [t[1]])
    if op == "index_put":
        return f(t[0], [t[1]], t[2])
    if op == "to":
        return t[0].to(dtype={4: torch.int64}[attrs["dtype"]])
    if op == "ones":
        return torch.ones(attrs["size"])
    if op == "layer_norm":
        return f(t[0], attrs["normalized_shape"])
    if op == "index_select":
        return f(t[0], attrs["dim"], t[1])
    if op == "where":
        return torch.where(t[0], t[1], t[2])
    return f(*t, **attrs)


@pytest.mark.parametrize("operator, inputs, attrs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_pytorch(operator, inputs, attrs):
    expected = torch_call(operator, inputs, attrs)
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    got = run_op("ATen", inputs, {"operator": operator, **attrs}, num_outputs=len(expected))
    for value, want in zip(got, expected):
        want = want.numpy()
        assert (value.shape, value.dtype) == (want.shape, want.dtype)
        np.testing.assert_allclose(value.astype(np.float64), want.astype(np.float64), atol=1e-5, rtol=1e-5)
