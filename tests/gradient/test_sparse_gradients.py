"""Sparse gradients (GradientSlice): Gather's DATA gradient is (INDICES, dY) with
no op; several are added up by concatenation, named as Caffe2's core.py names
them; EnsureDense makes one dense; a mix with dense gradients is made dense;
the gradient checkers scatter them before comparing."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.errors import GradientError
from pycaffe2.gradient import (
    PYTHON_GRADIENT_MAKERS,
    BlockGradients,
    GetBackwardPass,
    GradientRegistry,
    GradientSlice,
)
from pycaffe2.gradient_checker import check_net_gradient

rng = np.random.default_rng(0)


def signature(op):
    return (op.type, list(op.input), list(op.output))


def two_gathers_net(head=()):
    """x2 read by two Gathers (rows x1 and x3), then their dot product x6."""
    net = core.Net("sparse")
    for make in head:
        make(net)
    net.Gather(["x2", "x1"], "x4")
    net.Gather(["x2", "x3"], "x5")
    net.DotProduct(["x4", "x5"], "x6")
    return net


def test_two_gathers_concatenate_indices_then_values_in_backward_order():
    net = two_gathers_net()
    grad_map = net.AddGradientOperators(["x6"])
    indices_op, values_op = net.Proto().op[-2:]
    assert signature(indices_op) == ("Concat", ["x3", "x1"], ["x2_grad_indices_concat", "x2_grad_indices_concat_split"])
    assert signature(values_op) == ("Concat", ["x5_grad", "x4_grad"], ["x2_grad_values_concat", "x2_grad_values_concat_split"])
    assert [(a.name, a.i) for a in values_op.arg] == [("axis", 0)]
    slice_ = grad_map["x2"]
    assert isinstance(slice_, GradientSlice)
    assert (str(slice_.indices), str(slice_.values)) == ("x2_grad_indices_concat", "x2_grad_values_concat")
    assert "x1" not in {str(blob) for blob in grad_map}  # indices get no gradient


def test_one_gather_leaves_the_slice_as_it_is():
    _, grad_map = GetBackwardPass([core.CreateOperator("Gather", ["w", "i"], "y")], ["y"])
    assert grad_map["w"] == GradientSlice("i", "y_autogen_grad")


def test_ensure_dense_makes_the_summed_slice_dense_before_the_dense_op_above():
    net = two_gathers_net(head=[lambda n: n.FC(["x0", "w", "b"], "x2"), lambda n: n.EnsureDense(["x2"], "x2")])
    forward = core.Net("forward")
    forward.Proto().CopyFrom(net.Proto())
    net.AddGradientOperators(["x6"])
    ensure_dense, fc = net.Proto().op[-2:]
    assert signature(ensure_dense) == ("SparseToDense", ["x2_grad_indices_concat", "x2_grad_values_concat", "x2"],
                                       ["x2_grad"])
    assert fc.type == "FCGradient" and fc.input[2] == "x2_grad"
    values = {"x0": rng.standard_normal((5, 3)), "w": rng.standard_normal((6, 3)), "b": rng.standard_normal(6),
              "x1": np.array([0, 4, 4], np.int32), "x3": np.array([2, 4, 1], np.int32)}
    reports = check_net_gradient(forward.Proto(), ["x6"], values, ["x0", "w", "b"])
    assert all(report.ok for report in reports), reports


def test_a_dense_gradient_op_fed_a_slice_is_refused_naming_the_cure():
    net = two_gathers_net(head=[lambda n: n.FC(["x0", "w", "b"], "x2")])
    with pytest.raises(GradientError, match=r"op 0 \(FC\): the gradient of output 0 \('x2'\) is sparse.*EnsureDense"):
        net.AddGradientOperators(["x6"])


@pytest.fixture
def sparse_fun_hash():
    """A Python maker whose ops make both parts of a slice, as Caffe2's SparseFunHash."""
    saved = dict(PYTHON_GRADIENT_MAKERS)

    @GradientRegistry.RegisterGradient("FunHash")
    def fun_hash_gradient(op, g_output):
        indices, values = f"{op.input[3]}_grad_indices", f"{op.input[3]}_grad_values"
        grad_op = core.CreateOperator("FunHashGradient", [g_output[0]] + list(op.input), [indices, values])
        return [grad_op], [None, None, None, core.GradientSlice(indices=indices, values=values)]
    yield
    PYTHON_GRADIENT_MAKERS.clear()
    PYTHON_GRADIENT_MAKERS.update(saved)


def test_op_made_slice_parts_are_all_renamed_autosplit_as_in_caffe2(sparse_fun_hash):
    net = core.Net("fun_hash")  # FunHash has no schema: appended as made
    net.Proto().op.extend([core.CreateOperator("FunHash", ["x1", "x2", "x3", "x4"], "x8"),
                           core.CreateOperator("FunHash", ["x5", "x6", "x7", "x4"], "x9")])
    net.DotProduct(["x8", "x9"], "x10")
    grad_map = net.AddGradientOperators(["x10"])
    ops = net.Proto().op
    assert signature(ops[-2])[1:] == (["_x4_grad_indices_autosplit_0", "_x4_grad_indices_autosplit_1"],
                                      ["x4_grad_indices_concat", "x4_grad_indices_concat_split"])
    assert signature(ops[-1])[1:] == (["_x4_grad_values_autosplit_0", "_x4_grad_values_autosplit_1"],
                                      ["x4_grad_values_concat", "x4_grad_values_concat_split"])
    made = [list(op.output) for op in ops if op.type == "FunHashGradient"]
    assert made == [["_x4_grad_indices_autosplit_0", "_x4_grad_values_autosplit_0"],
                    ["_x4_grad_indices_autosplit_1", "_x4_grad_values_autosplit_1"]]
    assert str(grad_map["x4"].values) == "x4_grad_values_concat"


def embedding_values(rows=6, width=3):
    return {"w": rng.standard_normal((rows, width)), "i1": np.array([[0, 2], [2, 5]], np.int32),
            "i2": np.array([[1, 2], [0, 0], [5, 3], [4, 4]], np.int32)}


def test_summed_slices_equal_the_numeric_gradient():
    """Rows repeat within and across the slices; indices of one rank concatenate."""
    net = core.Net("embed")
    net.Gather(["w", "i1"], "a")  # [2, 2, 3]
    net.Gather(["w", "i2"], "b")  # [4, 2, 3]
    net.ReduceSum(["a"], "a_rows", axes=[1], keepdims=0)
    net.ReduceSum(["b"], "b_rows", axes=[1], keepdims=0)
    net.Concat(["a_rows", "a_rows"], ["a4", "a4_split"], axis=0)  # [4, 3]
    net.DotProduct(["a4", "b_rows"], "y")
    (report,) = check_net_gradient(net.Proto(), ["y"], embedding_values(), ["w"])
    assert report.ok, report


def test_a_mix_of_dense_and_sparse_gradients_is_made_dense_then_summed():
    net = core.Net("mixed")
    net.Gather(["w", "i1"], "a")
    net.Mul(["w", "w"], "w2")
    net.ReduceSum(["w2"], "reg", keepdims=0)
    net.ReduceSum(["a"], "picked", keepdims=0)
    net.Add(["reg", "picked"], "y")
    (report,) = check_net_gradient(net.Proto(), ["y"], embedding_values(), ["w"])
    assert report.ok, report
    ops, grad_map = GetBackwardPass(net.Proto().op, ["y"])
    densify = [op for op in ops if op.type == "SparseToDense"]
    assert [list(op.input)[1:] for op in densify] == [["a_grad", "w"]]
    assert grad_map["w"] == ops[-1].output[0] and ops[-1].type == "Sum"


def test_a_mix_for_a_blob_the_forward_pass_overwrites_is_refused():
    ops = [core.CreateOperator("Gather", ["w", "i"], "a"), core.CreateOperator("Scale", ["w"], "w", scale=2.0),
           core.CreateOperator("Mul", ["w", "a"], "y")]
    with pytest.raises(GradientError, match="'w' gets both dense and sparse.*dense_gradient=1"):
        GetBackwardPass(ops, ["y"])


def test_parameter_groups_concatenate_their_slices_too():
    net = core.Net("groups")
    net.Gather(["w", "i1"], "a")
    net.Gather(["w", "i1"], "b")
    net.ReduceSum(["a"], "loss_a", keepdims=0)
    net.ReduceSum(["b"], "loss_b", keepdims=0)
    rules = [BlockGradients("v*", losses=["loss_b"])]  # the passes differ, and both reach w
    values = embedding_values()
    reports = check_net_gradient(net.Proto(), ["loss_a", "loss_b"], values, ["w"], block=rules)
    assert all(report.ok for report in reports), reports
    _, grad_map = GetBackwardPass(net.Proto().op, ["loss_a", "loss_b"], block=rules)
    assert grad_map["w"] == GradientSlice("w_grad_indices_concat", "w_grad_values_concat")
