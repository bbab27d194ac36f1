"""The schema's `param` flags: the one list of parameter inputs, and the three
readers of it (random_init, graph, runner) agreeing with it."""
import shutil

import numpy as np
import pytest

from pycaffe2 import core, graph
from pycaffe2.errors import SchemaError
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.model import RunError, _is_data, run_model
from pycaffe2.run.random_init import SHAPE_RULES, can_make_up, made_up_weights
from pycaffe2.schema import get_schema
from pycaffe2.schema.catalogue import primary_schemas
from pycaffe2.schema.inference import RULES
from pycaffe2.schema.loader import OPS_DIR, load_schemas
from pycaffe2.schema.opschema import PARAM_KINDS, PARAMETER_KINDS

# Every flagged input, written out: what the three old lists (random_init's
# PARAM_RULES, graph's WEIGHT_INPUTS names, runner's _is_data) knew, less
# ChannelBackpropStats' mean, a batch statistic that only shared a name.
FLAGS = {
    "PRelu": {"Slope": "small"},
    "Add": {"B": "constant"}, "Sub": {"B": "constant"},
    "Mul": {"B": "constant"}, "Div": {"B": "constant"},
    "Conv": {"filter": "weight", "bias": "zero"},
    "ConvTranspose": {"filter": "weight", "bias": "zero"},
    "LC": {"filter": "weight", "bias": "zero"},
    "TT": {"b": "zero", "cores": "weight"},
    "FC": {"W": "weight", "b": "zero"},
    "FCTransposed": {"W": "weight", "b": "zero"},
    "SpatialBN": {"scale": "positive", "bias": "small", "mean": "small", "var": "positive"},
    "InstanceNorm": {"scale": "positive", "bias": "small"},
    "LayerNorm": {"gamma": "positive", "beta": "small"},
    "RMSNorm": {"gamma": "positive", "beta": "small"},
    "AffineChannel": {"scale": "positive", "bias": "small"},
    "GroupNorm": {"gamma": "positive", "beta": "small"},
    "MomentumSGDUpdate": {"param": "weight"},
    "Adagrad": {"param": "weight"},
    "Adam": {"param": "weight"},
    "Adadelta": {"param": "weight"},
    "YellowFin": {"param": "weight"},
    "ElementwiseLinear": {"a": "positive", "b": "zero"},
    "Ftrl": {"var": "weight"},
    "SparseAdagrad": {"param": "weight"},
    "RowWiseSparseAdagrad": {"param": "weight"},
    "SparseMomentumSGDUpdate": {"param": "weight"},
    "SparseAdam": {"param": "weight"},
    "RowWiseSparseAdam": {"param": "weight"},
    "GFtrl": {"var": "weight"},
    "Wngrad": {"param": "weight"},
    "SparseFtrl": {"var": "weight"},
    "SparseAdadelta": {"param": "weight"},
    "SparseWngrad": {"param": "weight"},
    "DecayAdagrad": {"param": "weight"},
    "Storm": {"param": "weight"},
    "SparseStorm": {"param": "weight"},
    "SmartDecaySparseAdam": {"param": "weight"},
    "SparseAdagradFusedWithSparseLengthsSumGradient": {"param": "weight"},
    "SparseAdagradFusedWithSparseLengthsSumGradientApprox": {"param": "weight"},
    "SparseAdagradFusedWithSparseLengthsWeightedSumGradient": {"param": "weight"},
    "SparseAdagradFusedWithSparseLengthsWeightedSumGradientApprox": {"param": "weight"},
    "RowWiseSparseAdagradFusedWithSparseLengthsSumGradient": {"param": "weight"},
    "RowWiseSparseAdagradFusedWithSparseLengthsSumGradientApprox": {"param": "weight"},
    "RowWiseSparseAdagradFusedWithSparseLengthsWeightedSumGradient": {"param": "weight"},
    "RowWiseSparseAdagradFusedWithSparseLengthsWeightedSumGradientApprox": {"param": "weight"},
    "RowWiseSparseAdagradFusedWithSparseLengthsMeanGradient": {"param": "weight"},
    "RowWiseSparseAdagradFusedWithSparseLengthsMeanGradientApprox": {"param": "weight"},
    "ConvRelu": {"filter": "weight", "bias": "zero"},
    "FbFCPacked": {"W": "weight", "b": "zero"},
    "Int8Conv": {"filter": "weight", "bias": "zero"},
    "Int8ConvRelu": {"filter": "weight", "bias": "zero"},
    "Int8ConvTranspose": {"filter": "weight", "bias": "zero"},
    "Int8FC": {"W": "weight", "b": "zero"},
}
PARAM_STYLE = 'style="bold,filled"'


def test_the_flagged_inputs_are_exactly_these():
    found = {schema.type: {spec.name: spec.param for spec in schema.inputs if spec.param}
             for schema in primary_schemas()}
    assert {op: flags for op, flags in found.items() if flags} == FLAGS
    assert all(spec.param is None for schema in primary_schemas() for spec in schema.outputs)


@pytest.mark.parametrize("entry, message", [
    ("{name: W, param: heavy}", ("inputs 'W': 'param' must be one of weight, zero, positive, "
                                 "small, constant; got 'heavy'")),
    ("{name: W, param: true}", "inputs 'W': 'param' must be one of"),
])
def test_a_bad_param_value_is_a_schema_error(tmp_path, entry, message):
    folder = tmp_path / "ops"
    folder.mkdir()
    shutil.copy(OPS_DIR / "_common.yaml", folder)
    (folder / "bad.yaml").write_text(
        f"ops:\n  Foo:\n    doc: Does foo.\n    inputs:\n      - X\n      - {entry}\n"
        "    outputs: [Y]\n    gradient: none\n")
    with pytest.raises(SchemaError) as info:
        load_schemas(folder, inference_rules=RULES)
    text = str(info.value)
    assert message in text and str(folder / "bad.yaml") in text and "Foo" in text
    assert info.value.line == 6


def test_outputs_take_no_param(tmp_path):
    folder = tmp_path / "ops"
    folder.mkdir()
    (folder / "bad.yaml").write_text("ops:\n  Foo:\n    doc: d\n    inputs: [X]\n"
                                     "    outputs: [{name: Y, param: weight}]\n    gradient: none\n")
    with pytest.raises(SchemaError, match="outputs 'Y': unknown key"):
        load_schemas(folder, inference_rules=RULES)


def test_the_kinds_are_documented():
    doc = (OPS_DIR.parent.parent.parent / "docs" / "schema_format.md").read_text()
    assert all(f"| `{kind}` |" in doc for kind in PARAM_KINDS)


# ---------------------------------------------------------------- random_init

def _every_rule_net():
    """A net using each op random_init has a shape rule for, its flagged inputs left unfed."""
    net = core.Net("rules")
    net.Conv(["x", "conv_w", "conv_b"], "c", kernel=3, pad=1)
    net.SpatialBN(["c", "bn_s", "bn_b", "bn_m", "bn_v"], "n", is_test=1)
    net.PRelu(["n", "slope"], "p")
    net.Mul(["p", "k"], "m", broadcast=1, axis=1)
    net.Add(["m", "noise"], "a")
    net.Sub(["a", "shift"], "s", broadcast=1, axis=1)
    net.Div(["s", "div"], "d", broadcast=1, axis=1)
    net.AffineChannel(["d", "ac_s", "ac_b"], "e")
    net.FC(["e", "fc_w", "fc_b"], "y")
    net.ConvRelu(["x", "cr_w", "cr_b"], "cr", kernel=3, pad=1)
    net.FbFCPacked(["e", "fp_w", "fp_b"], "y2")
    net.TT(["x", "tt_b", "tt_cores"], "tt", inp_sizes=[3, 25], out_sizes=[2, 2], tt_ranks=[1, 2, 1])
    return net.Proto()


def test_random_init_has_a_rule_only_for_ops_with_flags():
    for op_type in SHAPE_RULES:
        schema = get_schema(op_type)
        assert schema.type == op_type and not schema.is_gradient_op
        assert any(spec.param for spec in schema.inputs), op_type
    net = _every_rule_net()
    assert {op.type for op in net.op} == set(SHAPE_RULES)


def test_random_init_makes_up_exactly_the_flagged_inputs_of_their_kind():
    net = _every_rule_net()
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    made = made_up_weights(net, {"x": x}, default=4)
    flagged = {op.input[i]: get_schema(op.type).input_param(i)
               for op in net.op for i in range(len(op.input)) if get_schema(op.type).input_param(i)}
    assert set(made) == set(flagged)
    assert made["conv_w"].shape == (4, 3, 3, 3) and made["noise"].shape == (2, 4, 5, 5)
    assert not made["conv_b"].any() and not made["fc_b"].any()
    for name in ("bn_s", "bn_v", "k", "shift", "div"):  # positive, and constants under broadcast
        assert made[name].min() >= 0.5 and made[name].max() <= 1.5, name
    assert made["noise"].min() < 0  # a constant without broadcast is small noise


def test_flagged_inputs_without_a_shape_rule_are_refused_as_data():
    net = core.Net("sgd")
    net.MomentumSGDUpdate(["g", "m", "lr", "p"], ["g2", "m", "p"])
    assert not can_make_up("MomentumSGDUpdate", 3) and can_make_up("Conv2D", 1)  # by alias too
    feeds = {name: np.ones(3, np.float32) for name in ("g", "m")} | {"lr": np.ones(1, np.float32)}
    with pytest.raises(RunError, match="input.s. 'p' of net 'sgd' are data"):
        run_model(net.Proto(), feeds=feeds, random_init=True)


# ---------------------------------------------------------------- graph and runner

def _every_op_net() -> caffe2_pb2.NetDef:
    """One op of every forward type, each reading only its own external blobs."""
    net = caffe2_pb2.NetDef(name="all")
    for schema in primary_schemas():
        if not schema.is_gradient_op:
            net.op.add(type=schema.type, input=[f"{schema.type}.{spec.name}" for spec in schema.inputs],
                       output=[f"{schema.type}.out"])
    return net


def test_graph_draws_bold_exactly_the_parameter_inputs():
    bold = {line.split('label="')[1].rstrip('"];') for line in graph.net_to_dot(_every_op_net()).splitlines()
            if PARAM_STYLE in line}
    expected = {f"{op}.{name}" for op, flags in FLAGS.items() for name, kind in flags.items()
                if kind in PARAMETER_KINDS}
    assert bold == expected


def test_runner_makes_up_what_random_init_can():
    net = _every_op_net()
    weights = {f"{op.type}.{i}" for k, op in enumerate(net.op) for i in range(len(op.input))
               if not _is_data(net, k, i)}
    expected = {f"{schema.type}.{i}" for schema in primary_schemas() for i, spec in enumerate(schema.inputs)
                if spec.param and (schema.type in SHAPE_RULES or spec.param_shape)}
    assert weights == expected
