"""The bundled example nets/examples/lenet_digits/: its files load, and a short
run of its plan trains (the full run to >= 97% is the README's job)."""
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import db, netfile
from pycaffe2.executor import Workspace
from pycaffe2.proto import caffe2_pb2
from pycaffe2.tensor_proto import tensor_to_array

REPO = Path(__file__).resolve().parent.parent
FOLDER = REPO / "nets" / "examples" / "lenet_digits"


def records(path):
    """(data, label) arrays of every record of a data minidb."""
    reader = db.create_db("minidb", str(path), db.Mode.read)
    try:
        examples = []
        for _, value in reader.new_cursor():
            protos = caffe2_pb2.TensorProtos.FromString(value)
            examples.append(tuple(tensor_to_array(t) for t in protos.protos))
    finally:
        reader.close()
    return examples


@pytest.fixture(scope="module")
def model():
    return netfile.load_model(FOLDER / "model.yaml")


def test_the_data_files_hold_the_digits_split_four_to_one():
    train, test = records(FOLDER / "train.minidb"), records(FOLDER / "test.minidb")
    assert (len(train), len(test)) == (1437, 360)  # 1,797 images, a held-out fifth
    for data, label in train[:50] + test[:50]:
        assert data.shape == (1, 8, 8) and data.dtype == np.float32
        assert 0.0 <= data.min() and data.max() <= 1.0
        assert label.shape == () and label.dtype == np.int32 and 0 <= label <= 9
    # stratified: every digit has about a tenth of the test set
    counts = np.bincount([int(label) for _, label in test], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_the_model_file_holds_init_train_and_test(model):
    plan = model.plan
    assert [s.name for s in plan.execution_step] == ["init", "train", "test"]
    nets = {net.name: net for net in plan.network}
    assert [list(s.network) for s in plan.execution_step] == [[n] for n in nets]
    init, train, test = plan.network
    assert init == model.init_net and test == model.predict_net
    assert init.device_option.random_seed  # seeded: a fresh build gives the same weights
    assert list(train.external_output) == ["loss", "accuracy"]
    assert "accuracy" in test.external_output
    assert {op.arg[0].s for op in init.op if op.type == "CreateDB"} == {
        b"nets/examples/lenet_digits/train.minidb", b"nets/examples/lenet_digits/test.minidb"}
    assert [op.type for op in test.op if op.type == "SpatialBN"] == ["SpatialBN"] * 2
    assert all(len(op.output) == 1 for op in test.op if op.type == "SpatialBN")  # is_test


def steps(plan, *names, train_iters=None):
    """The plan with only the named steps (nets kept), the train step's num_iter changed."""
    part = caffe2_pb2.PlanDef()
    part.CopyFrom(plan)
    del part.execution_step[:]
    for step in plan.execution_step:
        if step.name in names:
            part.execution_step.add().CopyFrom(step)
            if step.name == "train" and train_iters is not None:
                part.execution_step[-1].num_iter = train_iters
    return part


@pytest.mark.slow
def test_a_short_run_of_the_plan_lowers_the_loss(model, monkeypatch):
    monkeypatch.chdir(REPO)  # the DB paths are relative to the repository root
    workspace = Workspace()
    workspace.RunPlan(steps(model.plan, "init", "train", train_iters=1))
    first = float(workspace.FetchBlob("loss"))
    workspace.RunPlan(steps(model.plan, "train", train_iters=29))
    last = float(workspace.FetchBlob("loss"))
    assert workspace.FetchBlob("optimizer_iteration").tolist() == [30]
    assert first > 1.5  # about ln 10 = 2.3 before training
    assert last < 0.6 * first

    workspace.RunPlan(steps(model.plan, "test"))
    accuracy = float(workspace.FetchBlob("accuracy"))
    softmax, label = workspace.FetchBlob("softmax"), workspace.FetchBlob("label")
    assert softmax.shape == (360, 10) and label.shape == (360,)
    assert 0.0 <= accuracy <= 1.0
    assert accuracy == pytest.approx(np.mean(softmax.argmax(axis=1) == label))
    loss = -np.mean(np.log(softmax[np.arange(360), label]))
    assert float(workspace.FetchBlob("loss")) == pytest.approx(loss, rel=1e-4)
