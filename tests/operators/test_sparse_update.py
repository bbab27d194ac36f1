"""sparse_update family: each sparse update against a NumPy reference that
applies the dense rule row by row (duplicate indices included, in order), the
empty update, the shape-inference rule and the errors."""
import math

import numpy as np
import pytest

from pycaffe2.executor import OpFailure
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import check_reference, run_op
from tests.schema import infer


def lr_of(lr):
    return float(np.ravel(lr)[0])


def sparse_adagrad_reference(param, moment, indices, grad, lr, *counter, epsilon=1e-5, row_wise=False,
                             weight_decay=0.0, counter_halflife=-1):
    param, moment = param.copy(), moment.copy()
    for g, k in zip(grad, indices):
        wd = weight_decay
        if counter and counter_halflife > 0 and counter[0][k] > 0:
            wd = weight_decay * counter_halflife / counter[0][k]
        g = g + wd * param[k]
        moment[k] += np.mean(g * g) if row_wise else g * g
        param[k] += lr_of(lr) * g / (np.sqrt(moment[k]) + epsilon)
    return param, moment


def sparse_momentum_reference(grad, moment, lr, param, indices, momentum=0.0, nesterov=0):
    moment, param, steps = moment.copy(), param.copy(), np.empty_like(grad)
    for i, k in enumerate(indices):
        new = lr_of(lr) * grad[i] + momentum * moment[k]
        steps[i] = (1 + momentum) * new - momentum * moment[k] if nesterov else new
        moment[k] = new
        param[k] -= steps[i]
    return steps, moment, param


def sparse_adam_reference(param, m1, m2, indices, grad, lr, iteration, beta1=0.9, beta2=0.999,
                          epsilon=1e-5, row_wise=False, enableRAdam=0):
    param, m1, m2, steps = param.copy(), m1.copy(), m2.copy(), np.empty_like(grad)
    t = int(iteration[0]) + 1
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)
    for i, k in enumerate(indices):
        g = grad[i]
        m1[k] = beta1 * m1[k] + (1 - beta1) * g
        m2[k] = beta2 * m2[k] + (1 - beta2) * (np.mean(g * g) if row_wise else g * g)
        steps[i] = math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m1[k] / (np.sqrt(m2[k]) + epsilon)
        if enableRAdam and rho_t >= 5:  # Liu et al.'s rectification term
            steps[i] *= math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        elif enableRAdam:
            steps[i] = m1[k] / (1 - beta1 ** t)
        param[k] += lr_of(lr) * steps[i]
    return param, m1, m2, steps


def inputs_for(op_type, indices, rows=5, row_shape=(3,), seed=0):
    rng = np.random.default_rng(seed)
    tensor = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    param = tensor(rows, *row_shape)
    grad = tensor(len(indices), *row_shape)
    indices = np.asarray(indices, dtype=np.int64)
    lr = np.array([0.1], np.float32)
    per_row = np.abs(tensor(rows)) + 0.1
    full = np.abs(tensor(rows, *row_shape)) + 0.1
    if op_type == "SparseMomentumSGDUpdate":
        return [grad, tensor(rows, *row_shape), lr, param, indices]
    if op_type.endswith("Adagrad"):
        return [param, per_row if op_type.startswith("RowWise") else full, indices, grad, -lr]
    moment_2 = per_row if op_type.startswith("RowWise") else full
    return [param, tensor(rows, *row_shape), moment_2, indices, grad, -lr, np.array([4], np.int64)]


CASES = [
    ("SparseAdagrad", {"epsilon": 0.01}, sparse_adagrad_reference, 2),
    ("RowWiseSparseAdagrad", {"epsilon": 0.01},
     lambda *a, **k: sparse_adagrad_reference(*a, **k, row_wise=True), 2),
    ("SparseAdagrad", {"weight_decay": 0.3}, sparse_adagrad_reference, 2),
    ("RowWiseSparseAdagrad", {"weight_decay": 0.3},
     lambda *a, **k: sparse_adagrad_reference(*a, **k, row_wise=True), 2),
    ("SparseMomentumSGDUpdate", {"momentum": 0.9}, sparse_momentum_reference, 3),
    ("SparseMomentumSGDUpdate", {"momentum": 0.9, "nesterov": 1}, sparse_momentum_reference, 3),
    ("SparseAdam", {"beta1": 0.8}, sparse_adam_reference, 4),
    ("SparseAdam", {"beta2": 0.5, "enableRAdam": 1}, sparse_adam_reference, 4),
    ("SparseAdam", {"beta2": 0.999, "enableRAdam": 1}, sparse_adam_reference, 4),
    ("SparseAdam", {}, lambda *a, **k: sparse_adam_reference(*a, **k)[:3], 3),
    ("RowWiseSparseAdam", {"epsilon": 0.01},
     lambda *a, **k: sparse_adam_reference(*a, **k, row_wise=True), 4),
]


@pytest.mark.parametrize("op_type, args, reference, num_outputs", CASES)
@pytest.mark.parametrize("indices, row_shape", [([3, 0], (3,)), ([1, 4, 1], (2, 2)), ([], (3,)),
                                                ([2], ())])
def test_sparse_updates(op_type, args, reference, num_outputs, indices, row_shape):
    inputs = inputs_for(op_type, indices, row_shape=row_shape)
    check_reference(op_type, inputs, reference, args, num_outputs=num_outputs, atol=1e-5)


@pytest.mark.parametrize("op_type, shapes, message", [
    ("SparseAdagrad", {"grad": [2, 4]}, "must hold one row of param"),
    ("SparseAdagrad", {"moment": [5, 2]}, "as many elements as param"),
    ("RowWiseSparseAdagrad", {"moment": [5, 3]}, "one element per row of param"),
    ("SparseAdam", {"param": []}, "at least 1-D"),
    ("RowWiseSparseAdam", {"moment_2": [4]}, "one element per row of param"),
    ("SparseMomentumSGDUpdate", {"lr": [2]}, "lr must hold one element"),
])
def test_inference_errors(op_type, shapes, message):
    names = {"SparseAdagrad": ["param", "moment", "indices", "grad", "lr"],
             "RowWiseSparseAdagrad": ["param", "moment", "indices", "grad", "lr"],
             "SparseMomentumSGDUpdate": ["grad", "moment", "lr", "param", "indices"],
             "SparseAdam": ["param", "moment_1", "moment_2", "indices", "grad", "lr", "iter"],
             "RowWiseSparseAdam": ["param", "moment_1", "moment_2", "indices", "grad", "lr", "iter"]}
    default = {"param": [5, 3], "moment": [5, 3], "moment_1": [5, 3], "moment_2": [5, 3],
               "indices": [2], "grad": [2, 3], "lr": [1], "iter": [1]}
    if op_type.startswith("RowWise"):
        default.update(moment=[5], moment_2=[5])
    dtypes = {"indices": "int64", "iter": "int64"}
    infos = [TensorInfo(tuple(shapes.get(n, default[n])), dtypes.get(n, "float32")) for n in names[op_type]]
    with pytest.raises(ShapeError, match=message):
        infer(op_type, infos)


def test_inference_gives_the_blobs_shapes():
    infos = [TensorInfo((5, 3), "float32"), TensorInfo((5, 3), "float32"), TensorInfo((5,), "float32"),
             TensorInfo((2,), "int32"), TensorInfo((2, 3), "float32"), TensorInfo((1,), "float32"),
             TensorInfo((1,), "int64")]
    out = infer("RowWiseSparseAdam", infos, n_out=4)
    assert [o.shape for o in out] == [(5, 3), (5, 3), (5,), (2, 3)]


@pytest.mark.parametrize("indices, message", [
    (np.array([5], np.int64), "index 5 is out of range for param's 5 rows"),
    (np.array([-1], np.int64), "index -1 is out of range"),
    (np.array([1.0], np.float32), "indices must be int32 or int64"),
])
def test_bad_indices_fail_at_run_time(indices, message):
    inputs = inputs_for("SparseAdagrad", [0])
    inputs[2] = indices
    with pytest.raises(OpFailure, match=message):
        run_op("SparseAdagrad", inputs, {})


# -- ScatterWeightedSum and ScatterAssign: row by row, in order ----------------------------

def scatter_weighted_sum_reference(x0, w0, indices, *pairs):
    out = x0.copy()
    for i, k in enumerate(np.ravel(indices)):
        out[k] = float(w0[0]) * out[k] + sum(float(w[0]) * x.reshape(-1, *x0.shape[1:])[i]
                                             for x, w in zip(pairs[0::2], pairs[1::2]))
    return [out]


def scatter_assign_reference(data, indices, slices):
    out = data.copy()
    for i, k in enumerate(np.ravel(indices)):
        out[k] = slices.reshape(-1, *data.shape[1:])[i]
    return [out]


rng = np.random.default_rng(0)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("w0", [1.0, 0.5])
@pytest.mark.parametrize("indices", [[3, 0, 3], [[1, 4], [1, 1]], []], ids=["repeat", "2-D", "empty"])
def test_scatter_weighted_sum(indices, w0):
    indices = np.array(indices, np.int32).reshape(np.shape(indices))
    inputs = [f32(5, 2, 3), np.array([w0], np.float32), indices, f32(*indices.shape, 2, 3),
              np.array([0.3], np.float32), f32(*indices.shape, 2, 3), np.array([-2.0], np.float32)]
    check_reference("ScatterWeightedSum", inputs, scatter_weighted_sum_reference)


@pytest.mark.parametrize("data", [f32(6, 2), np.arange(12, dtype=np.int64).reshape(6, 2)], ids=["float", "int"])
def test_scatter_assign_last_of_repeated_indices_wins(data):
    indices = np.array([[5, 0], [5, 2]], np.int64)
    slices = (np.arange(8) * 10).astype(data.dtype).reshape(2, 2, 2)
    (out,) = check_reference("ScatterAssign", [data, indices, slices], scatter_assign_reference)
    np.testing.assert_array_equal(out[5], slices[1, 0])


@pytest.mark.parametrize("op_type, inputs, message", [
    ("ScatterWeightedSum", [f32(4, 3), f32(1), np.array([0, 1]), f32(3, 3), f32(1)], r"grad \[3, 3\] must hold one row"),
    ("ScatterWeightedSum", [f32(4, 3), f32(2), np.array([0]), f32(1, 3), f32(1)], "one element"),
    ("ScatterWeightedSum", [f32(4, 3), f32(1), np.array([0]), np.ones((1, 3)), f32(1)], "X_1 .* is float64, X_0 is float32"),
    ("ScatterWeightedSum", [f32(4, 3), f32(1), np.array([4]), f32(1, 3), f32(1)], "index 4 is out of range"),
    ("ScatterWeightedSum", [f32(4, 3), f32(1), np.array([0.5]), f32(1, 3), f32(1)], "indices must be int32 or int64"),
    ("ScatterAssign", [f32(4, 3), np.array([0]), np.ones((1, 3))], "SLICES is float64, DATA is float32"),
    ("ScatterAssign", [f32(4, 3), np.array([-1]), f32(1, 3)], "index -1 is out of range"),
])
def test_scatter_errors(op_type, inputs, message):
    with pytest.raises((OpFailure, ShapeError), match=message):
        run_op(op_type, inputs)


def test_scatter_inference():
    x0, w, idx = TensorInfo((5, 3)), TensorInfo((1,)), TensorInfo((2,), "int32")
    assert infer("ScatterWeightedSum", [x0, w, idx, TensorInfo((2, 3)), w]) == [x0]
    assert infer("ScatterAssign", [x0, idx, TensorInfo((2, 3))]) == [x0]
    with pytest.raises(ShapeError, match="must hold one row"):
        infer("ScatterAssign", [x0, idx, TensorInfo((3, 3))])


# -- SparseFtrl, SparseAdadelta, SparseWngrad: row by row, in order ------------------------

def ftrl_element(w, n, z, g, alpha, beta, lambda1, lambda2):
    n_new = n + g * g
    z_new = z + g - (math.sqrt(n_new) - math.sqrt(n)) / alpha * w
    w_new = 0.0 if abs(z_new) <= lambda1 else \
        (lambda1 * np.sign(z_new) - z_new) / ((beta + math.sqrt(n_new)) / alpha + lambda2)
    return w_new, n_new, z_new


def sparse_ftrl_reference(var, n_z, indices, grad, *alpha_input, alpha=0.005, beta=1.0, lambda1=0.001,
                          lambda2=0.001):
    alpha = float(alpha_input[0][0]) if alpha_input else alpha
    w, nz = var.reshape(var.shape[0], -1).copy(), n_z.reshape(var.shape[0], -1, 2).copy()
    g = grad.reshape(len(indices), w.shape[1])
    for i, k in enumerate(indices):
        for j in range(w.shape[1]):
            w[k, j], nz[k, j, 0], nz[k, j, 1] = ftrl_element(w[k, j], nz[k, j, 0], nz[k, j, 1], g[i, j],
                                                             alpha, beta, lambda1, lambda2)
    return w.reshape(var.shape), nz.reshape(n_z.shape)


def sparse_adadelta_reference(param, moment, delta, indices, grad, lr, epsilon=1e-5, decay=0.95):
    param, moment, delta = param.copy(), moment.copy(), delta.copy()
    for i, k in enumerate(indices):
        moment[k] = decay * moment[k] + (1 - decay) * grad[i] ** 2
        step = np.sqrt(delta[k] + epsilon) / np.sqrt(moment[k] + epsilon) * grad[i]
        param[k] = param[k] + lr_of(lr) * step
        delta[k] = decay * delta[k] + (1 - decay) * step ** 2
    return param, moment, delta


def sparse_wngrad_reference(param, seq_b, indices, grad, lr, epsilon=1e-5):
    param, b = param.copy(), float(seq_b[0])
    if len(indices) == 0:
        return param, seq_b.copy()
    for i, k in enumerate(indices):
        param[k] = param[k] + lr_of(lr) * grad[i] / (b + epsilon)
    return param, np.array([b + float((grad ** 2).sum()) / b])


def more_inputs_for(op_type, indices, rows=5, row_shape=(3,), seed=0, alpha_input=False):
    rng = np.random.default_rng(seed)
    tensor = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    param, grad = tensor(rows, *row_shape), tensor(len(indices), *row_shape)
    indices = np.asarray(indices, dtype=np.int32)
    lr = np.array([0.1], np.float32)
    positive = lambda: np.abs(tensor(rows, *row_shape)) + 0.1
    if op_type == "SparseFtrl":
        n_z = np.stack([positive() - 0.1, tensor(rows, *row_shape)], axis=-1)
        return [param, n_z, indices, grad] + ([np.array([0.3], np.float32)] if alpha_input else [])
    if op_type == "SparseAdadelta":
        return [param, positive(), positive(), indices, grad, -lr]
    return [param, np.array([0.8], np.float32), indices, grad, -lr]


MORE_CASES = [
    ("SparseFtrl", {}, sparse_ftrl_reference, False),
    ("SparseFtrl", {"alpha": 0.1, "beta": 0.5, "lambda1": 0.3, "lambda2": 0.1}, sparse_ftrl_reference, False),
    ("SparseFtrl", {"lambda1": 0.05}, sparse_ftrl_reference, True),
    ("SparseAdadelta", {}, sparse_adadelta_reference, False),
    ("SparseAdadelta", {"epsilon": 0.01, "decay": 0.5}, sparse_adadelta_reference, False),
    ("SparseWngrad", {}, sparse_wngrad_reference, False),
    ("SparseWngrad", {"epsilon": 0.1}, sparse_wngrad_reference, False),
]


@pytest.mark.parametrize("op_type, args, reference, alpha_input", MORE_CASES)
@pytest.mark.parametrize("indices, row_shape", [([3, 0], (3,)), ([1, 4, 1, 1], (2, 2)), ([], (3,)),
                                                ([2, 2], ())])
def test_more_sparse_updates(op_type, args, reference, alpha_input, indices, row_shape):
    inputs = more_inputs_for(op_type, indices, row_shape=row_shape, alpha_input=alpha_input)
    expected = reference(*[x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs], **args)
    check_reference(op_type, inputs, lambda *_, **__: expected, args, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("op_type, shapes, message", [
    ("SparseFtrl", {"n_z": [5, 3]}, r"n_z \[5, 3\] must hold two elements \(n, z\) per element"),
    ("SparseFtrl", {"grad": [2, 4]}, "must hold one row of param"),
    ("SparseFtrl", {"alpha": [2]}, "alpha must hold one element"),
    ("SparseAdadelta", {"moment_delta": [5, 2]}, "moment_delta .* as many elements as param"),
    ("SparseAdadelta", {"lr": [2]}, "lr must hold one element"),
    ("SparseWngrad", {"seq_b": [2]}, r"seq_b must hold one element, got \[2\]"),
    ("SparseWngrad", {"indices": [3]}, "must hold one row of param"),
])
def test_more_inference_errors(op_type, shapes, message):
    names = {"SparseFtrl": ["param", "n_z", "indices", "grad", "alpha"],
             "SparseAdadelta": ["param", "moment", "moment_delta", "indices", "grad", "lr"],
             "SparseWngrad": ["param", "seq_b", "indices", "grad", "lr"]}[op_type]
    default = {"param": [5, 3], "n_z": [5, 3, 2], "moment": [5, 3], "moment_delta": [5, 3], "seq_b": [1],
               "indices": [2], "grad": [2, 3], "lr": [1], "alpha": [1]}
    infos = [TensorInfo(tuple(shapes.get(n, default[n])), "int64" if n == "indices" else "float32")
             for n in names]
    with pytest.raises(ShapeError, match=message):
        infer(op_type, infos, n_out=3 if op_type == "SparseAdadelta" else 2)


def test_sparse_adadelta_refuses_decay_one():
    with pytest.raises(ShapeError, match="decay must be < 1"):
        infer("SparseAdadelta", [(5, 3), (5, 3), (5, 3), (2,), (2, 3), (1,)], n_out=3, decay=1.0)


def test_more_inference_gives_the_blobs_shapes():
    param, idx, grad, one = TensorInfo((5, 3)), TensorInfo((2,), "int32"), TensorInfo((2, 3)), TensorInfo((1,))
    n_z = TensorInfo((5, 3, 2))
    assert infer("SparseFtrl", [param, n_z, idx, grad], n_out=2) == [param, n_z]
    assert infer("SparseAdadelta", [param, param, param, idx, grad, one], n_out=3) == [param] * 3
    assert infer("SparseWngrad", [param, one, idx, grad, one], n_out=2) == [param, one]


@pytest.mark.parametrize("op_type", ["SparseFtrl", "SparseAdadelta", "SparseWngrad"])
def test_more_bad_indices_fail_at_run_time(op_type):
    inputs = more_inputs_for(op_type, [0])
    inputs[2 if op_type != "SparseAdadelta" else 3] = np.array([5], np.int64)
    with pytest.raises(OpFailure, match="index 5 is out of range for param's 5 rows"):
        run_op(op_type, inputs)


@pytest.mark.parametrize("op_type", ["SparseFtrl", "SparseAdadelta", "SparseWngrad"])
def test_more_updates_must_be_in_place(op_type):
    from pycaffe2.schema import get_schema
    assert get_schema(op_type).inplace_enforced


@pytest.mark.parametrize("halflife", [-1, 4])
@pytest.mark.parametrize("indices", [[3, 0, 3], []])
def test_row_wise_sparse_adagrad_scales_weight_decay_by_the_counter(halflife, indices):
    inputs = inputs_for("RowWiseSparseAdagrad", indices) + [np.array([0, 2, 0.5, 8, 1], np.float64)]
    args = {"weight_decay": 0.2, "counter_halflife": halflife, "epsilon": 0.01}
    check_reference("RowWiseSparseAdagrad", inputs,
                    lambda *a, **k: sparse_adagrad_reference(*a, **k, row_wise=True), args, atol=1e-5)


def test_row_wise_sparse_adagrad_counter_holds_one_element_per_row():
    infos = [TensorInfo((5, 3)), TensorInfo((5,)), TensorInfo((2,), "int64"), TensorInfo((2, 3)),
             TensorInfo((1,)), TensorInfo((4,))]
    with pytest.raises(ShapeError, match=r"counter \[4\] must hold one element per row of param"):
        infer("RowWiseSparseAdagrad", infos, n_out=2)


def sparse_storm_reference(param, moment, grad_sq_sum, grad, indices, lr, momentum=10.0, beta=0.1):
    param, moment = param.copy(), moment.copy()
    if len(indices) == 0:
        return param, moment, grad_sq_sum.copy()
    total = float(grad_sq_sum[0]) + float((grad ** 2).sum())
    rate = lr_of(lr) * (beta + total) ** (-1 / 3)
    alpha = momentum * rate * rate
    for i, k in enumerate(indices):
        moment[k] = grad[i] + (1 - alpha) * (moment[k] - grad[i])
        param[k] = param[k] + rate * moment[k]
    return param, moment, np.array([total])


@pytest.mark.parametrize("args", [{}, {"momentum": 3.0, "beta": 2.0}])
@pytest.mark.parametrize("indices, row_shape", [([3, 0], (3,)), ([1, 4, 1], (2, 2)), ([], (3,))])
def test_sparse_storm(args, indices, row_shape):
    rng = np.random.default_rng(5)
    tensor = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    inputs = [tensor(5, *row_shape), tensor(5, *row_shape), np.array([1.5], np.float32),
              tensor(len(indices), *row_shape), np.array(indices, np.int64), np.array([-0.3], np.float32)]
    expected = sparse_storm_reference(*[x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs],
                                      **args)
    check_reference("SparseStorm", inputs, lambda *_, **__: expected, args, atol=1e-5)


def test_sparse_storm_inference_and_errors():
    param, one, idx = TensorInfo((5, 3)), TensorInfo((1,)), TensorInfo((2,), "int64")
    assert infer("SparseStorm", [param, param, one, TensorInfo((2, 3)), idx, one], n_out=3) == [param, param, one]
    with pytest.raises(ShapeError, match="grad_sq_sum must hold one element"):
        infer("SparseStorm", [param, param, TensorInfo((2,)), TensorInfo((2, 3)), idx, one], n_out=3)
    with pytest.raises(ShapeError, match="must hold one row of param"):
        infer("SparseStorm", [param, param, one, TensorInfo((3, 3)), idx, one], n_out=3)


@pytest.mark.parametrize("iteration", [2, 20])
def test_sparse_adam_rectified_steps(iteration):
    inputs = inputs_for("SparseAdam", [3, 0, 3])
    inputs[6] = np.array([iteration], np.int64)
    args = {"beta2": 0.9, "enableRAdam": 1}
    check_reference("SparseAdam", inputs, sparse_adam_reference, args, num_outputs=4, atol=1e-5)


def smart_decay_reference(param, m1, m2, last_seen, indices, grad, lr, iteration, beta1=0.9, beta2=0.999,
                          epsilon=1e-5):
    param, m1, m2, last_seen = param.copy(), m1.copy(), m2.copy(), last_seen.copy()
    t = int(iteration[0]) + 1
    for i, k in enumerate(indices):
        n = t - int(last_seen[k])
        # the n - 1 missed steps' momentum, summed: beta1 + beta1^2 + ... + beta1^(n-1) times m1
        catchup = sum(beta1 ** j for j in range(1, n)) * m1[k]
        m1[k] = beta1 ** n * m1[k] + (1 - beta1) * grad[i]
        m2[k] = beta2 ** n * m2[k] + (1 - beta2) * grad[i] ** 2
        param[k] = param[k] + lr_of(lr) * (m1[k] + catchup) / (np.sqrt(m2[k]) + epsilon)
        last_seen[k] = t
    return param, m1, m2, last_seen


@pytest.mark.parametrize("args", [{}, {"beta1": 0.5, "beta2": 0.8, "epsilon": 0.01}])
@pytest.mark.parametrize("indices, row_shape", [([3, 0], (3,)), ([1, 4, 1], (2, 2)), ([], (3,))])
def test_smart_decay_sparse_adam(args, indices, row_shape):
    rng = np.random.default_rng(7)
    tensor = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    inputs = [tensor(5, *row_shape), tensor(5, *row_shape), np.abs(tensor(5, *row_shape)),
              np.array([0, 9, 3, 10, 6], np.int64), np.array(indices, np.int64), tensor(len(indices), *row_shape),
              np.array([-0.1], np.float32), np.array([9], np.int64)]
    expected = smart_decay_reference(*[x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs], **args)
    check_reference("SmartDecaySparseAdam", inputs, lambda *_, **__: expected, args, atol=1e-5)


def test_smart_decay_sparse_adam_inference_and_errors():
    param, idx, one, it = TensorInfo((5, 3)), TensorInfo((2,), "int64"), TensorInfo((1,)), TensorInfo((1,), "int64")
    seen = TensorInfo((5,), "int64")
    assert infer("SmartDecaySparseAdam", [param, param, param, seen, idx, TensorInfo((2, 3)), one, it],
                 n_out=4) == [param, param, param, seen]
    with pytest.raises(ShapeError, match="last_seen must be int64"):
        infer("SmartDecaySparseAdam", [param, param, param, TensorInfo((5,)), idx, TensorInfo((2, 3)), one, it],
              n_out=4)
    with pytest.raises(ShapeError, match="last_seen .* one element per row"):
        infer("SmartDecaySparseAdam", [param, param, param, TensorInfo((4,), "int64"), idx, TensorInfo((2, 3)),
                                       one, it], n_out=4)
