"""--random-init's shape rules named in the schemas (`param: {kind, shape, dtype}`):
ConvTranspose, the norms, FCTransposed and ElementwiseLinear make up their weights, and a
segmentation-style net (Conv down, ConvTranspose up) runs from the command line."""
import numpy as np
import pytest

from pycaffe2 import core
from pycaffe2.cli import main
from pycaffe2.errors import ShapeError
from pycaffe2.qtensor import Int8Tensor
from pycaffe2.run.random_init import PARAM_SHAPE_RULES, _draw, can_make_up, made_up_weights
from pycaffe2.schema.catalogue import primary_schemas
from pycaffe2.schema.opschema import PARAM_SHAPES

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 4, 5, 5)).astype(np.float32)
X_NHWC = X.transpose(0, 2, 3, 1).copy()


def test_every_shape_name_has_a_rule():
    assert set(PARAM_SHAPE_RULES) == set(PARAM_SHAPES)
    named = {spec.param_shape for schema in primary_schemas() for spec in schema.inputs if spec.param_shape}
    assert named <= set(PARAM_SHAPES)


@pytest.mark.parametrize("order, group, x, filter_shape, bias", [
    ("NCHW", 1, X, (4, 6, 3, 3), (6,)),
    ("NHWC", 1, X_NHWC, (4, 3, 3, 6), (6,)),
    ("NCHW", 2, X, (4, 3, 3, 3), (6,)),
    ("NCHW", 4, X, (4, 2, 3, 3), (8,)),  # 6 rounded up to a multiple of the group
])
def test_conv_transpose(order, group, x, filter_shape, bias):
    net = core.Net("up")
    net.ConvTranspose(["x", "w", "b"], "y", kernel=3, stride=2, pad=1, adj=1, order=order, group=group)
    made = made_up_weights(net.Proto(), {"x": x}, default=6)
    assert made["w"].shape == filter_shape and made["b"].shape == bias and not made["b"].any()


@pytest.mark.parametrize("build, feeds, shapes", [
    (lambda n: n.LayerNorm(["x", "g", "b"], ["y"], axis=2, elementwise_affine=1), {"x": X},
     {"g": (5, 5), "b": (5, 5)}),
    (lambda n: n.GroupNorm(["x", "g", "b"], ["y"], group=2), {"x": X}, {"g": (4,), "b": (4,)}),
    (lambda n: n.InstanceNorm(["x", "s", "b"], ["y"], order="NHWC"), {"x": X_NHWC}, {"s": (4,), "b": (4,)}),
    (lambda n: n.FCTransposed(["x", "w", "b"], ["y"]), {"x": X}, {"w": (100, 6), "b": (6,)}),
    (lambda n: n.ElementwiseLinear(["x", "a", "b"], ["y"], axis=2), {"x": X}, {"a": (25,), "b": (25,)}),
])
def test_ops_with_shapes_in_their_schema(build, feeds, shapes):
    net = core.Net("n")
    build(net)
    made = made_up_weights(net.Proto(), feeds, default=6)
    assert {name: value.shape for name, value in made.items()} == shapes
    op_type = net.Proto().op[0].type
    assert can_make_up(op_type, 1) and can_make_up(op_type, 2)


@pytest.mark.parametrize("kind, dtype", [("weight", "uint8"), ("small", "int32"), ("zero", "int32")])
def test_quantized_dtypes(kind, dtype):
    value = _draw((3, 4), kind, np.random.default_rng(1), dtype)
    assert isinstance(value, Int8Tensor) and value.data.dtype == np.dtype(dtype) and value.shape == (3, 4)
    if kind == "zero":
        assert not value.data.any()
    if dtype == "uint8":
        assert value.zero_point == 128 and value.scale > 0
        real = (value.data.astype(np.float32) - 128) * value.scale
        assert np.abs(real).max() <= 127 * value.scale + 1e-6


SEGMENTATION = """name: tiny_segmentation
external_input: [data]
external_output: [mask]
op:
  - {type: Conv, input: [data, conv1_w, conv1_b], output: [c1], arg: {kernel: 3, pad: 1, stride: 2}}
  - {type: SpatialBN, input: [c1, bn_s, bn_b, bn_m, bn_v], output: [n1], arg: {is_test: 1}}
  - {type: Relu, input: [n1], output: [r1]}
  - {type: ConvTranspose, input: [r1, up_w, up_b], output: [u1], arg: {kernel: 4, stride: 2, pad: 1}}
  - {type: Sigmoid, input: [u1], output: [mask]}
"""


def test_segmentation_net_runs_with_random_init(tmp_path):
    (tmp_path / "seg.yaml").write_text(SEGMENTATION)
    np.save(tmp_path / "x.npy", RNG.standard_normal((1, 3, 8, 8)).astype(np.float32))
    assert main(["run", str(tmp_path / "seg.yaml"), "--random-init", "--no-plugins", "--out-channels",
                 "up_w=2", "--feed", f"data={tmp_path / 'x.npy'}", "--out", str(tmp_path / "out.npz")]) == 0
    mask = np.load(tmp_path / "out.npz")["mask"]
    assert mask.shape == (1, 2, 8, 8) and np.isfinite(mask).all() and ((mask > 0) & (mask < 1)).all()


def test_a_shape_rule_on_a_bad_input_is_a_clear_error():
    net = core.Net("n")
    net.LayerNorm(["x", "g", "b"], ["y"], axis=3, elementwise_affine=1)
    with pytest.raises(ShapeError, match="axis 3 is out of range for X of rank 2"):
        made_up_weights(net.Proto(), {"x": np.ones((2, 3), np.float32)})
