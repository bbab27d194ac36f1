"""`pycaffe2 run` on a model file with a plan: training, progress, checkpoints, resume, Ctrl-C."""
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from pycaffe2 import core, db, netfile
from pycaffe2.cli import main
from pycaffe2.run.plan_job import PlanRun, carried_state

rng = np.random.default_rng(0)
X = rng.standard_normal((32, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)


def regression_model(path, num_iter=20):
    """Linear regression by SGD on fixed data: deterministic, so runs can be compared."""
    init = core.Net("init")
    init.GivenTensorFill([], "X", shape=list(X.shape), values=X.ravel().tolist())
    init.GivenTensorFill([], "Y", shape=list(Y.shape), values=Y.ravel().tolist())
    init.ConstantFill([], "W", shape=[1, 3], value=0.0)
    init.ConstantFill([], "b", shape=[1], value=0.0)
    init.ConstantFill([], "ONE", shape=[1], value=1.0)
    init.ConstantFill([], "LR", shape=[1], value=-0.1)
    train = core.Net("train")
    train.FC(["X", "W", "b"], "pred")
    train.SquaredL2Distance(["pred", "Y"], "dist")
    train.AveragedLoss("dist", "loss")
    grads = train.AddGradientOperators(["loss"])
    for param in ("W", "b"):
        train.WeightedSum([param, "ONE", grads[param], "LR"], param)
    train.AddExternalOutput("loss")
    report = core.Net("report")
    report.FC(["X", "W", "b"], "final_pred")
    report.SquaredL2Distance(["final_pred", "Y"], "final_dist")
    report.AveragedLoss("final_dist", "final_loss")
    report.AddExternalOutput("final_loss")
    plan = core.Plan("regression")
    plan.AddStep(core.ExecutionStep("init", init))
    plan.AddStep(core.ExecutionStep("train", train, num_iter))
    plan.AddStep(core.ExecutionStep("report", report))
    netfile.save_model(netfile.Model(predict_net=report.Proto(), init_net=init.Proto(), plan=plan.Proto()),
                       path)
    return path


def test_the_plan_trains_and_prints_progress_and_the_result(tmp_path, capsys):
    model = regression_model(tmp_path / "model.yaml")
    assert main(["run", str(model), "--iters", "3"]) == 0
    first = capsys.readouterr()
    assert main(["run", str(model)]) == 0
    captured = capsys.readouterr()
    assert "train 20/20" in captured.err and "it/s" in captured.err and "loss " in captured.err
    loss_after = lambda out: float(out.split("final_loss: ")[1].split()[0])  # noqa: E731
    assert loss_after(captured.out) < 0.5 * loss_after(first.out)


def test_state_is_what_the_loop_reads_before_writing():
    train = core.Net("train")
    train.FC(["X", "W", "b"], "pred")
    train.WeightedSum(["W", "ONE", "pred", "LR"], "W")
    assert carried_state([train.Proto()]) == ["X", "W", "b", "ONE", "LR"]


def final_weights(run: PlanRun):
    run.run()
    return run.workspace.FetchBlob("W")


def test_a_run_killed_mid_checkpoint_resumes_from_the_last_complete_one(tmp_path, monkeypatch):
    model = regression_model(tmp_path / "model.yaml")
    expected = final_weights(PlanRun(str(model), quiet=True))
    checkpoint = tmp_path / "ckpt"
    real_replace, calls = os.replace, []

    def crash_on_second_checkpoint(source, target):
        calls.append(target)
        if len(calls) == 2:  # the process dies after writing the temp file, before the rename
            raise SystemExit("killed")
        real_replace(source, target)
    monkeypatch.setattr(db.os, "replace", crash_on_second_checkpoint)
    with pytest.raises(SystemExit):
        PlanRun(str(model), quiet=True, checkpoint=str(checkpoint), save_every=5).run()
    monkeypatch.setattr(db.os, "replace", real_replace)
    saved = db.load_blobs(str(checkpoint / "checkpoint.minidb"))
    assert int(saved["pycaffe2/checkpoint_iteration"][0]) == 4  # the first, complete checkpoint
    resumed = PlanRun(str(model), quiet=True, checkpoint=str(checkpoint), save_every=5, resume=True)
    np.testing.assert_allclose(final_weights(resumed), expected, rtol=1e-6)
    assert resumed._first == 5


def test_ctrl_c_stops_after_the_current_iteration_and_says_where(tmp_path, capsys):
    model = regression_model(tmp_path / "model.yaml", num_iter=1000)
    run = PlanRun(str(model), quiet=True, checkpoint=str(tmp_path / "ckpt"))
    original = run.iteration_done

    def interrupt_at_seven(step, iteration):
        if step.name == "train" and iteration == 6:
            os.kill(os.getpid(), signal.SIGINT)
        original(step, iteration)
    run.iteration_done = interrupt_at_seven
    run.run()
    assert run.stopped == "interrupted: stopped after iteration 7 of 1000 of step 'train'"
    saved = db.load_blobs(str(tmp_path / "ckpt" / "checkpoint.minidb"))
    assert int(saved["pycaffe2/checkpoint_iteration"][0]) == 6


def test_plan_flags_are_checked(tmp_path, capsys):
    model = regression_model(tmp_path / "model.yaml")
    assert main(["run", str(model), "--resume"]) == 2
    assert "need a checkpoint path" in capsys.readouterr().err
    assert main(["run", str(model), "--feed", "X=x.npy"]) == 2
    mlp = Path(__file__).resolve().parents[2] / "nets" / "mlp.yaml"
    assert main(["run", str(mlp), "--save-every", "3"]) == 2
