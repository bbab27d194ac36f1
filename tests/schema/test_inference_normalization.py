"""Inference rules of the normalization family: the shapes the kernels really
produce, and the shape and mode errors, each naming what is wrong."""
import numpy as np
import pytest

from pycaffe2.schema import all_schemas
from pycaffe2.schema.bind import ShapeError, TensorInfo
from pycaffe2.testing import run_op
from tests.schema import infer


def test_every_op_of_the_family_has_a_rule():
    family = {name: s for name, s in all_schemas().items() if s.family == "normalization"}
    assert sorted(family) == sorted(
        ["ChannelStats", "ChannelBackpropStats", "SpatialBN", "SpatialBNGradient", "InstanceNorm",
         "InstanceNormGradient", "LayerNorm", "LayerNormGradient", "GroupNorm", "GroupNormGradient"])
    assert all(s.inference != "none" for s in family.values())


def inputs_for(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random(shape).astype(np.float32) + 0.5 for shape in shapes]


# (op type, input shapes, args, output count): inference must give the kernel's shapes.
CASES = [
    ("ChannelStats", [(2, 3, 4, 5)], {}, 2),
    ("ChannelStats", [(2, 4, 5, 3)], {"order": "NHWC"}, 2),
    ("ChannelBackpropStats", [(2, 3, 4), (3,), (3,), (2, 3, 4)], {}, 2),
    ("SpatialBN", [(2, 3, 4, 5), (3,), (3,), (3,), (3,)], {"is_test": 1}, 1),
    ("SpatialBN", [(2, 4, 5, 3), (3,), (3,), (3,), (3,)], {"order": "NHWC"}, 5),
    ("SpatialBN", [(2, 3, 4), (3,), (3,), (3,), (3,), (3,), (3,)], {"num_batches": 2}, 5),
    ("SpatialBNGradient", [(2, 3, 4, 5), (3,), (2, 3, 4, 5), (3,), (3,)], {}, 3),
    ("InstanceNorm", [(2, 3, 4, 5), (3,), (3,)], {}, 3),
    ("InstanceNorm", [(2, 4, 3), (3,), (3,)], {"order": "NHWC"}, 2),
    ("InstanceNormGradient", [(2, 3, 4, 5), (3,), (3,), (2, 3, 4, 5), (2, 3), (2, 3)], {}, 3),
    ("LayerNorm", [(2, 3, 4)], {"axis": 2}, 3),
    ("LayerNorm", [(2, 3, 4), (3, 4), (3, 4)], {"axis": -2, "elementwise_affine": 1}, 3),
    ("LayerNormGradient", [(2, 3, 4), (2, 3, 4), (2, 1), (2, 1), (2, 3, 4), (3, 4)],
     {"elementwise_affine": 1}, 3),
    ("GroupNorm", [(2, 6, 4, 5), (6,), (6,)], {"group": 3, "is_test": 0}, 3),
    ("GroupNorm", [(2, 6), (6,), (6,)], {"group": 2}, 1),
    ("GroupNormGradient", [(2, 4, 5, 6), (2, 4, 5, 6), (6,), (6,), (2, 3), (2, 3)],
     {"group": 3, "order": "NHWC"}, 3),
]


@pytest.mark.parametrize("op_type, shapes, args, n_out", CASES, ids=[c[0] for c in CASES])
def test_inference_matches_the_kernel(op_type, shapes, args, n_out):
    inferred = infer(op_type, shapes, n_out, **args)
    names = [f"x{i}" for i in range(len(shapes))]
    outputs = [f"y{i}" for i in range(n_out)]
    if op_type == "SpatialBN" and n_out == 5:
        outputs[1:3] = names[3:5]
    got = run_op(op_type, inputs_for(shapes), args, input_names=names, output_names=outputs)
    assert inferred == [TensorInfo(v.shape, v.dtype.name) for v in got]


def test_float64_and_unknown_inputs():
    assert infer("SpatialBN", [(2, 3, 4)] + [(3,)] * 4, dtype="float64", is_test=1) == \
        [TensorInfo((2, 3, 4), "float64")]
    assert infer("SpatialBN", [None] * 5, n_out=5) == [None] * 5
    assert infer("LayerNorm", [None], n_out=3) == [None] * 3
    assert infer("GroupNorm", [None, (6,), (6,)]) == [None]


def test_spatial_bn_mode_errors():
    five = [(2, 3, 4)] + [(3,)] * 4
    with pytest.raises(ShapeError, match=r"is_test=1 takes 1 output \(Y\), got 5"):
        infer("SpatialBN", five, n_out=5, is_test=1)
    with pytest.raises(ShapeError, match="training .is_test=0. takes 5 outputs, got 1"):
        infer("SpatialBN", five, n_out=1)
    with pytest.raises(ShapeError, match=r"num_batches > 1 needs the sums and sumsq inputs \(7 inputs\)"):
        infer("SpatialBN", five, n_out=5, num_batches=4)


def test_per_channel_errors_name_the_input():
    with pytest.raises(ShapeError, match=r"bias must have 3 elements \(X's channels, order NCHW\), got"):
        infer("SpatialBN", [(2, 3, 4), (3,), (4,), (3,), (3,)], is_test=1)
    with pytest.raises(ShapeError, match=r"scale must have 4 elements .* order NHWC\), got \[3\]"):
        infer("SpatialBN", [(2, 3, 4), (3,), (4,), (4,), (4,)], n_out=5, order="NHWC")
    with pytest.raises(ShapeError, match=r"X must have rank >= 3, got \[2, 3\]"):
        infer("ChannelStats", [(2, 3)], n_out=2)
    with pytest.raises(ShapeError, match="X must be float, got int32"):
        infer("InstanceNorm", [(2, 3, 4), (3,), (3,)], dtype="int32")
    with pytest.raises(ShapeError, match=r"X is \[2, 3, 4\] but dY is \[2, 3, 5\]"):
        infer("SpatialBNGradient", [(2, 3, 4), (3,), (2, 3, 5), (3,), (3,)], n_out=3)
    with pytest.raises(ShapeError, match=r"saved_mean must have 6 elements \(\[N, 3\]"):
        infer("InstanceNormGradient", [(2, 3, 4), (3,), (3,), (2, 3, 4), (3,), (2, 3)], n_out=3)


def test_empty_running_stats_are_allowed_in_training_only():
    shapes = [(2, 3, 4), (3,), (3,), (0,), (0,)]
    assert infer("SpatialBN", shapes, n_out=5)[1] == TensorInfo((3,))
    with pytest.raises(ShapeError, match="mean must have 3 elements"):
        infer("SpatialBN", shapes, is_test=1)


def test_layer_and_group_norm_errors():
    with pytest.raises(ShapeError, match=r"elementwise_affine=1 takes 3 input\(s\), got 1"):
        infer("LayerNorm", [(2, 3)], n_out=3, elementwise_affine=1)
    with pytest.raises(ShapeError, match=r"elementwise_affine=0 takes 1 input\(s\), got 3"):
        infer("LayerNorm", [(2, 3), (3,), (3,)], n_out=3)
    with pytest.raises(ShapeError, match="axis 2 is out of range for X of rank 2"):
        infer("LayerNorm", [(2, 3)], n_out=3, axis=2)
    with pytest.raises(ShapeError, match=r"gamma must have 12 elements \(X's dims from axis 1"):
        infer("LayerNorm", [(2, 3, 4), (3,), (3,)], n_out=3, elementwise_affine=1)
    with pytest.raises(ShapeError, match="dgamma and dbeta need the gamma input"):
        infer("LayerNormGradient", [(2, 3)] * 2 + [(2, 1)] * 2 + [(2, 3)], n_out=3)
    with pytest.raises(ShapeError, match="group 4 does not divide X's 6 channels"):
        infer("GroupNorm", [(2, 6, 3), (6,), (6,)], group=4)
    with pytest.raises(ShapeError, match=r"training \(is_test=0\) takes 3 outputs"):
        infer("GroupNorm", [(2, 6, 3), (6,), (6,)], group=2, is_test=0)
