"""adagrad_fused family: the (RowWise)SparseAdagrad updates fused with the
gradients of SparseLengthsSum / Mean / WeightedSum, against a NumPy reference
that loops over segments and their indices as Caffe2's kernels do; inference
and errors."""
import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import OpFailure
from pycaffe2.gradient import GetGradientForOp
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, make_op, run_op
from tests.schema import infer

SUM, ROW = "SparseAdagradFusedWithSparseLengths", "RowWiseSparseAdagradFusedWithSparseLengths"
LENGTHS_OPS = ["SparseAdagradFusedWithSparseLengthsSumGradient", "SparseAdagradFusedWithSparseLengthsSumGradientApprox",
               "RowWiseSparseAdagradFusedWithSparseLengthsSumGradient",
               "RowWiseSparseAdagradFusedWithSparseLengthsSumGradientApprox",
               "RowWiseSparseAdagradFusedWithSparseLengthsMeanGradient",
               "RowWiseSparseAdagradFusedWithSparseLengthsMeanGradientApprox"]
WEIGHTED_OPS = ["SparseAdagradFusedWithSparseLengthsWeightedSumGradient",
                "SparseAdagradFusedWithSparseLengthsWeightedSumGradientApprox",
                "RowWiseSparseAdagradFusedWithSparseLengthsWeightedSumGradient",
                "RowWiseSparseAdagradFusedWithSparseLengthsWeightedSumGradientApprox"]


def reference(op_type, param, moment, indices, grad, lr, lengths, aux_param=None, epsilon=1e-5,
              weight_decay=0.0, round_option=0):
    row_wise, mean, approx = op_type.startswith("RowWise"), "Mean" in op_type, op_type.endswith("Approx")
    param, moment = param.astype(np.float64), moment.astype(np.float64)
    original = param.copy()
    aux_grad = np.zeros(len(indices))
    i = 0
    for s, length in enumerate(lengths):
        for j in range(length):
            k = indices[i]
            g = grad[s].astype(np.float64).reshape(-1) / (length if mean else 1)
            if aux_param is not None:
                aux_grad[i] = np.dot(g, (param if approx else original)[k].reshape(-1))
                g = g * aux_param[j]
            g = g + weight_decay * param[k].reshape(-1)
            if row_wise:
                moment[k] += np.mean(g * g)
                step = lr[0] * g / (np.sqrt(moment[k]) + epsilon)
            else:
                moment[k] = moment[k] + (g * g).reshape(moment[k].shape)
                step = lr[0] * g / (np.sqrt(moment[k].reshape(-1)) + epsilon)
            param[k] = param[k] + step.reshape(param[k].shape)
            i += 1
    outputs = [param, moment]
    return outputs + [aux_grad] if aux_param is not None else outputs


def inputs_for(op_type, indices, lengths, row_shape=(3,), seed=0):
    rng = np.random.default_rng(seed)
    tensor = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    param = tensor(5, *row_shape)
    moment = np.abs(tensor(5) if op_type.startswith("RowWise") else tensor(5, *row_shape)) + 0.1
    rest = [np.array(indices, np.int64), tensor(len(lengths), *row_shape), np.array([-0.1], np.float32),
            np.array(lengths, np.int32)]
    if "Weighted" in op_type:
        return [param, moment, np.abs(tensor(max(lengths, default=0) + 1)), *rest]
    return [param, moment, *rest]


CASES = [([0, 3, 3, 1], [1, 3], (3,)), ([4, 4, 2], [2, 0, 1], (2, 2)), ([], [0, 0], (3,)), ([2, 2], [2], ())]


@pytest.mark.parametrize("op_type", LENGTHS_OPS + WEIGHTED_OPS)
@pytest.mark.parametrize("indices, lengths, row_shape", CASES)
def test_fused_updates(op_type, indices, lengths, row_shape):
    inputs = inputs_for(op_type, indices, lengths, row_shape)
    args = {"epsilon": 0.01} if op_type.startswith("RowWise") else {"epsilon": 0.01, "weight_decay": 0.2}

    def ref(*x, **a):
        if "Weighted" in op_type:
            param, moment, aux, idx, grad, lr, lens = x
            return reference(op_type, param, moment, idx, grad, lr, lens, aux_param=aux, **a)
        return reference(op_type, *x, **a)
    check_reference(op_type, inputs, ref, args, atol=1e-5)


def test_approx_reads_param_as_updated_for_repeated_rows():
    op_exact, op_approx = f"{SUM}WeightedSumGradient", f"{SUM}WeightedSumGradientApprox"
    inputs = inputs_for(op_exact, [1, 1], [2])
    exact, approx = run_op(op_exact, inputs)[2], run_op(op_approx, inputs)[2]
    assert exact[0] == approx[0] and exact[1] != approx[1]


def test_inference():
    param, moment, idx = TensorInfo((5, 3)), TensorInfo((5,)), TensorInfo((4,), "int64")
    grad, lr, lengths = TensorInfo((2, 3)), TensorInfo((1,)), TensorInfo((2,), "int32")
    assert infer(f"{ROW}SumGradient", [param, moment, idx, grad, lr, lengths], n_out=2) == [param, moment]
    out = infer(f"{SUM}WeightedSumGradient", [param, param, TensorInfo((3,)), idx, grad, lr, lengths], n_out=3)
    assert out == [param, param, TensorInfo((4,))]


@pytest.mark.parametrize("change, message", [
    ({"grad": TensorInfo((3, 3))}, r"grad \[3, 3\] must hold one row per segment \(2 lengths\)"),
    ({"grad": TensorInfo((2, 4))}, "must hold as many elements as param rows"),
    ({"indices": TensorInfo((2, 2), "int64")}, "indices must be a 1-D int32 or int64"),
    ({"lengths": TensorInfo((2,), "float32")}, "lengths must be a 1-D int32 or int64"),
    ({"moment": TensorInfo((5, 3))}, "one element per row of param"),
    ({"lr": TensorInfo((2,))}, "lr must hold one element"),
])
def test_inference_errors(change, message):
    infos = {"param": TensorInfo((5, 3)), "moment": TensorInfo((5,)), "indices": TensorInfo((4,), "int64"),
             "grad": TensorInfo((2, 3)), "lr": TensorInfo((1,)), "lengths": TensorInfo((2,), "int32")}
    infos.update(change)
    with pytest.raises(ShapeError, match=message):
        infer(f"{ROW}MeanGradient", list(infos.values()), n_out=2)


@pytest.mark.parametrize("op_type, change, message", [
    (f"{SUM}SumGradient", {5: np.array([1, 2], np.int32)}, "lengths sum to 3 but there are 4 indices"),
    (f"{SUM}SumGradient", {5: np.array([5, -1], np.int32)}, "lengths must not be negative"),
    (f"{SUM}SumGradient", {2: np.array([0, 5, 1, 1])}, "index 5 is out of range"),
    (f"{SUM}WeightedSumGradient", {2: np.ones(2, np.float32)}, "aux_param holds 2 positional weights"),
])
def test_run_errors(op_type, change, message):
    inputs = inputs_for(op_type, [0, 3, 3, 1], [1, 3])
    for position, value in change.items():
        inputs[position] = value
    with pytest.raises(OpFailure, match=message):
        run_op(op_type, inputs)


@pytest.mark.parametrize("op_type", LENGTHS_OPS + WEIGHTED_OPS)
def test_no_gradient(op_type):
    n_in, n_out = (7, 3) if "Weighted" in op_type else (6, 2)
    op = make_op(op_type, [f"x{i}" for i in range(n_in)], [f"y{i}" for i in range(n_out)])
    with pytest.raises(GradientError, match="should not call gradient"):
        GetGradientForOp(op, [f"y{i}_grad" for i in range(n_out)])
