"""The checker: a corpus of broken nets, each with its message and place."""
import json
from pathlib import Path

import pytest

from pycaffe2.cli import main
from pycaffe2.validate import check_file, net_files

BROKEN = Path(__file__).resolve().parent.parent / "data" / "broken"
NETS = Path(__file__).resolve().parents[2] / "nets"

# file -> [(kind, line, op index, op type, text in the message)]: exactly these problems.
EXPECTED = {
    "unknown_op.yaml": [("unknown-op", 7, 1, "HardSigmoidd",
                         "unknown op type 'HardSigmoidd' (did you mean HardSigmoid")],
    "input_count.yaml": [("input-count", 4, 0, "Relu", "takes 1 input (X), got 2")],
    "output_count.yaml": [("output-count", 4, 0, "SpatialBN", "takes 1 or 5 outputs")],
    "missing_arg.yaml": [("missing-arg", 4, 0, "LearningRate", "required arg 'policy' is missing")],
    "unknown_arg.yaml": [("unknown-arg", 4, 0, "Conv", "unknown arg 'kernal' (did you mean 'kernel'?)")],
    "arg_type.yaml": [("arg-type", 4, 0, "HardSigmoid", "arg 'alpha' must be float, got 'big' (field s)")],
    "arg_value.yaml": [("arg-value", 4, 0, "Conv", "arg 'order': value 'NWHC' is not allowed")],
    "undefined_blob.yaml": [
        ("undefined-blob", 4, 0, "Relu", "input 'Z' is not an external_input and no earlier op produces it"),
        ("undefined-blob", 5, 1, "Relu", "input 'Later' is read before op 2 writes it")],
    "inplace.yaml": [
        ("inplace", 4, 0, "FC", "input 0 (X) and output 0 (Y) are both 'X', but FC cannot run in place"),
        ("inplace", 5, 1, "SpatialBN", ("output 1 (running_mean) must be the same blob as input 3 (mean) "
                                        "'mean', got 'new_mean'"))],
    "dag_write.yaml": [("dag-write", 6, 1, "Sigmoid", "blob 'Y' is written by op 0 too")],
    "shape.yaml": [("shape", 18, 1, "FC", "K must match")],
    "external_output.yaml": [("external-output", None, None, None, "external_output 'Missing' is never produced")],
    "net_type.yaml": [("net-type", None, None, None, "unknown net type 'fancy'")],
    "plan.yaml": [("plan", None, None, None, "plan step 'loop' runs unknown net 'trian' (known: init, train)")],
    "many.yaml": [("unknown-arg", 5, 0, "Relu", "unknown arg 'alpha'"),
                  ("unknown-op", 6, 1, "Tanhh", "did you mean Tanh"),
                  ("undefined-blob", 7, 2, "HardSigmoid", "input 'Q'")],
}


def test_corpus_covers_every_file():
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_net_reports_its_problem_and_place(name):
    problems = check_file(BROKEN / name)
    got = [(p.kind, p.line, p.op_index, p.op_type) for p in problems]
    assert got == [expected[:4] for expected in EXPECTED[name]], [str(p) for p in problems]
    for problem, expected in zip(problems, EXPECTED[name]):
        assert expected[4] in problem.message
        assert problem.file == str(BROKEN / name)
        assert str(problem).startswith(str(BROKEN / name))


def test_shape_problem_names_the_shapes():
    (problem,) = check_file(BROKEN / "shape.yaml")
    assert problem.net == "predict_net"
    assert "[2, 12]" in problem.message and "[5, 10]" in problem.message


@pytest.mark.parametrize("path", sorted(NETS.rglob("*.yaml")), ids=lambda p: p.name)
def test_example_nets_are_valid(path):
    assert [str(p) for p in check_file(path)] == []


def test_real_caffe2_models_validate_clean(caffe2_models):
    files = net_files([caffe2_models])
    assert len(files) == 6  # two init+predict folders, four predict-only files
    for path in files:
        assert [str(p) for p in check_file(path)] == []


def test_real_model_shapes_are_inferred_through_the_net(caffe2_models, tmp_path):
    """The LeNet pair with a declared input shape: inference runs to the logits."""
    from pycaffe2 import netfile
    from pycaffe2.schema.checker import _NetChecker  # private: the shapes it reached
    model = netfile.load_model(caffe2_models / "hungmingwu_pytorch_export")
    init = _NetChecker(model.init_net, None, None, None, set(), {})
    assert init.run() == []
    from pycaffe2.schema.bind import TensorInfo
    predict = _NetChecker(model.predict_net, None, None, None, init.available,
                          {**init.shapes, "1": TensorInfo((4, 1, 28, 28))})
    assert predict.run() == []
    assert predict.shapes["26"] == TensorInfo((4, 10), "float32")


def test_cli_exit_codes_and_json(tmp_path, capsys):
    assert main(["validate", str(NETS)]) == 0
    assert main(["validate", str(BROKEN / "unknown_op.yaml"), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["files_checked"] == 1
    assert report["problems"][0]["kind"] == "unknown-op" and report["problems"][0]["line"] == 7
    (tmp_path / "bad.yaml").write_text("op: [\n")
    assert main(["validate", str(tmp_path / "bad.yaml"), str(NETS / "mlp.yaml")]) == 2
    assert main(["validate", str(tmp_path / "empty_dir_does_not_exist")]) == 2


def test_folder_reports_every_problem_at_once(capsys):
    assert main(["validate", str(BROKEN)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == sum(len(v) for v in EXPECTED.values())
