"""The schema loader: the shipped schemas, and malformed schema files refused clearly."""
import shutil

import pytest

from pycaffe2.errors import SchemaError
from pycaffe2.schema import all_schemas, closest_types, get_schema
from pycaffe2.schema.inference import RULES
from pycaffe2.schema.loader import OPS_DIR, load_schemas

# The core op set the executor, the gradient builder and the front end build on: each needs a schema.
CONTRACT_OPS = ["StopGradient", "HardSigmoid", "HardSigmoidGradient", "ChannelStats", "ChannelBackpropStats", "SpatialBN", "SpatialBNGradient", "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Softplus", "Softsign", "Swish", "Exp", "Log", "Sqrt", "Abs", "Neg", "Sqr", "Pow", "Clip", "Scale", "Not", "And", "Or", "EQ", "LT", "GT", "LE", "GE", "Where", "Add", "Sub", "Mul", "Div", "SumReduceLike", "Sum", "Mean", "Max", "Min", "FC", "FCTransposed", "MatMul", "BatchMatMul", "Reshape", "Flatten", "FlattenToVec", "Transpose", "Concat", "Split", "ChannelShuffle", "Slice", "Squeeze", "ExpandDims", "Copy", "Cast", "Gather", "Shape", "Tile", "ReduceSum", "ReduceMean", "ReduceMax", "ArgMax", "Alias", "EnsureCPUOutput", "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LRN", "Dropout", "Softmax", "LogSoftmax", "InstanceNorm", "LayerNorm", "GroupNorm", "SoftmaxWithLoss", "LabelCrossEntropy", "CrossEntropy", "AveragedLoss", "SquaredL2Distance", "SigmoidCrossEntropyWithLogits", "Accuracy", "ConstantFill", "GaussianFill", "UniformFill", "XavierFill", "MSRAFill", "GivenTensorFill", "GivenTensorIntFill", "GivenTensorInt64Fill", "GivenTensorBoolFill", "GivenTensorStringFill", "RangeFill", "Iter", "AtomicIter", "LearningRate", "WeightedSum", "MomentumSGDUpdate", "Adagrad", "Adam"]


def test_every_contract_op_has_a_schema():
    assert [op for op in CONTRACT_OPS if get_schema(op) is None] == []


def test_seed_op_facts():
    hard_sigmoid = get_schema("HardSigmoid")
    assert (hard_sigmoid.args["alpha"].default, hard_sigmoid.args["beta"].default) == (0.2, 0.5)
    assert hard_sigmoid.inplace_allowed == {(0, 0)} and hard_sigmoid.gradient == ("HardSigmoidGradient",)
    gradient = get_schema("HardSigmoidGradient")
    assert [t.name for t in gradient.inputs] == ["Y", "dY"] and gradient.inplace_allowed == {(1, 0)}
    assert "alpha" in gradient.args  # gradient ops take their forward op's args
    assert get_schema("StopGradient").gradient == "none"
    assert get_schema("ChannelStats").gradient == "should_not"
    bn = get_schema("SpatialBN")
    assert bn.inplace_enforced == {(3, 1), (4, 2)}
    assert bn.num_inputs.allows(5) and bn.num_inputs.allows(7) and not bn.num_inputs.allows(6)
    assert (bn.args["epsilon"].default, bn.args["momentum"].default) == (1e-5, 0.9)


def test_every_op_takes_engine_args():
    assert all("use_cudnn" in schema.args for schema in all_schemas().values())


def test_gradient_ops_point_back_to_a_forward_op():
    for schema in all_schemas().values():
        if isinstance(schema.gradient, tuple):
            for emitted in schema.gradient:
                assert get_schema(emitted) is not None, (schema.type, emitted)


def test_every_inference_rule_is_used():
    used = {schema.inference for schema in all_schemas().values()}
    assert set(RULES) - used == set()


def test_closest_types():
    assert closest_types("relu") == ["Relu"]
    assert "HardSigmoid" in closest_types("HardSigmod")


def family_dir(tmp_path, text, name="bad.yaml"):
    folder = tmp_path / "ops"
    folder.mkdir()
    shutil.copy(OPS_DIR / "_common.yaml", folder)
    shutil.copy(OPS_DIR / "activation.yaml", folder)
    (folder / name).write_text(text)
    return folder


GOOD_OP = "ops:\n  Foo:\n    doc: Does foo.\n    inputs: [X]\n    outputs: [Y]\n    gradient: none\n"

BAD_SCHEMAS = [
    ("ops:\n  Foo: [\n", None, "bad YAML"),
    ("opz: {}\n", 1, "unknown top-level key(s): opz"),
    ("ops:\n  Foo:\n    dco: x\n    gradient: none\n", 3, "Foo: unknown key(s) dco"),
    ("ops:\n  Foo:\n    inputs: [X]\n    gradient: none\n", 3, "'doc' is required"),
    (GOOD_OP + "    args:\n      k: {type: integer}\n", 8, "arg 'k': type must be one of"),
    (GOOD_OP + "    args:\n      k: {type: int, default: 0.5}\n", 8, "default 0.5 is not a int"),
    (GOOD_OP + "    args:\n      k: {type: string, default: c, allowed: [a, b]}\n", 8, "default value 'c' is not allowed"),
    (GOOD_OP + "    args:\n      k: {type: float, default: 2.0, max: 1}\n", 8, "out of range"),
    (GOOD_OP + "    args:\n      k: {type: int, required: true, default: 1}\n", 8, "required arg cannot have a default"),
    ("ops:\n  Foo:\n    doc: d\n    inputs: [{name: A, optional: true}, B]\n    gradient: none\n", 4,
     "a required entry cannot follow an optional one"),
    (GOOD_OP + "    inplace: {allow: [[1, 0]]}\n", 3, "pair [1, 0] is out of range"),
    (GOOD_OP + "    inplace: {allow: all}\n", 3, "inplace allow must be a list of [input, output] pairs or 'any'"),
    (GOOD_OP + "    inference: magic\n", 3, "unknown inference rule 'magic'"),
    (GOOD_OP + "    arg_groups: [nope]\n", 3, "unknown arg group 'nope'"),
    (GOOD_OP + "    devices: [tpu]\n", 3, "'devices' must be a list"),
    (GOOD_OP + "    num_inputs: {min: x}\n", 3, "'num_inputs' must be a count"),
    (GOOD_OP + "    repeated_args: {prefix: p_, count: 2, args: []}\n", 3, "'repeated_args' must be"),
    (GOOD_OP + "    repeated_args: {prefix: 'p_{i}_', count: 2, args: [k]}\n", 3,
     "repeated_args: k not among the op's args"),
    ("ops:\n  Foo:\n    doc: d\n    gradient: maybe\n", 3, "'gradient' must be one of"),
    ("ops:\n  Foo:\n    doc: d\n    gradient: [NoSuchGradient]\n", None, "gradient emits NoSuchGradient"),
    ("ops:\n  Foo:\n    doc: d\n    forward: Nothing\n", None, "'forward' names unknown op Nothing"),
    ("ops:\n  Relu:\n    doc: d\n    gradient: none\n", 3, "defined twice"),
]


@pytest.mark.parametrize("text, line, message", BAD_SCHEMAS)
def test_malformed_schema_files_are_refused_clearly(tmp_path, text, line, message):
    folder = family_dir(tmp_path, text)
    with pytest.raises(SchemaError) as info:
        load_schemas(folder, inference_rules=RULES)
    assert message in str(info.value)
    assert str(folder / "bad.yaml") in str(info.value)
    if line is not None:
        assert info.value.line == line


def test_a_good_family_file_loads(tmp_path):
    schemas = load_schemas(family_dir(tmp_path, GOOD_OP), inference_rules=RULES)
    foo = schemas["Foo"]
    assert foo.family == "bad" and foo.num_inputs.describe() == "1" and foo.gradient == "none"


def test_inplace_allow_any(tmp_path):
    text = GOOD_OP.replace("[X]", "[X, Z]") + "    inplace: {allow: any, enforce: [[0, 0]]}\n"
    foo = load_schemas(family_dir(tmp_path, text), inference_rules=RULES)["Foo"]
    assert foo.inplace_any and foo.inplace_ok(1, 0) and foo.inplace_enforced == {(0, 0)}
    assert get_schema("PythonGradient").inplace_ok(2, 0) and not get_schema("Relu").inplace_any


def test_repeated_args_copy_own_args_as_optional(tmp_path):
    text = (GOOD_OP + "    args:\n      k: {type: int, required: true, min: 1}\n"
            "    repeated_args: {prefix: 'p_{i}_', count: 2, args: [k]}\n")
    foo = load_schemas(family_dir(tmp_path, text), inference_rules=RULES)["Foo"]
    assert {"k", "p_0_k", "p_1_k"} <= set(foo.args) and "p_2_k" not in foo.args
    copy = foo.args["p_1_k"]
    assert not copy.required and copy.min == 1 and copy.types == ("int",)
