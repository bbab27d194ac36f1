"""Outputs Caffe2 requires but Glow's and ONNX's writers leave out: Reshape's old_shape and
LayerNorm's mean and std. pycaffe2 takes the op with only its first output, the kernel writes
only what is asked, and a gradient that needs the missing outputs says so."""
import numpy as np
import pytest

from pycaffe2.errors import GradientError
from pycaffe2.executor import Workspace
from pycaffe2.gradient.backward import GetBackwardPass
from pycaffe2.proto import caffe2_pb2
from pycaffe2.schema.checker import check_net
from pycaffe2.testing import check_reference, make_op

X = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 10


def layer_norm(x, axis=1, epsilon=1e-5):
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    y = (rows - rows.mean(1, keepdims=True)) / np.sqrt(rows.var(1, keepdims=True) + epsilon)
    return y.reshape(x.shape)


def test_reshape_with_one_output():
    check_reference("Reshape", [X], lambda x, shape: (x.reshape(shape),), {"shape": [6, 4]}, num_outputs=1)


def test_layer_norm_with_one_output():
    check_reference("LayerNorm", [X], lambda x, axis: (layer_norm(x, axis),), {"axis": 2}, num_outputs=1,
                    rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("op", [
    make_op("Reshape", ["X"], ["Y"], {"shape": [6, 4]}),
    make_op("LayerNorm", ["X"], ["Y"]),
])
def test_one_output_validates(op):
    net = caffe2_pb2.NetDef(name="n", op=[op], external_input=["X"], external_output=["Y"])
    assert check_net(net) == []


def test_reshape_gradient_without_old_shape_reads_the_input_shape():
    forward = make_op("Reshape", ["X"], ["Y"], {"shape": [6, 4]})
    grad_ops, _ = GetBackwardPass([forward], {"Y": "Y_grad"})
    assert [op.type for op in grad_ops] == ["Shape", "Reshape"]
    workspace = Workspace("g")
    workspace.FeedBlob("X", X)
    workspace.FeedBlob("Y_grad", np.ones((6, 4), np.float32))
    for op in [forward, *grad_ops]:
        workspace.RunOperatorOnce(op)
    assert workspace.FetchBlob("X_grad").shape == X.shape


def test_in_place_reshape_without_old_shape_has_no_gradient():
    with pytest.raises(GradientError, match="in-place Reshape without its old_shape"):
        GetBackwardPass([make_op("Reshape", ["X"], ["X"], {"shape": [6, 4]})], {"X": "X_grad"})


def test_layer_norm_gradient_needs_mean_and_std():
    with pytest.raises(GradientError, match="reads the mean and std outputs"):
        GetBackwardPass([make_op("LayerNorm", ["X"], ["Y"])], {"Y": "Y_grad"})
