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
    loss_after = lambda out: float(out.split("final_loss: ")[1].split()[0])
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


# ---------------------------------------------------------------- Ctrl-C, final checkpoints, resume

def iteration_of(checkpoint_folder) -> int:
    return int(db.load_blobs(str(checkpoint_folder / "checkpoint.minidb"))["pycaffe2/checkpoint_iteration"][0])


def sigint_at(monkeypatch, net_name: str, call: int):
    """Make the `call`-th run (from 1) of net `net_name` send this process a SIGINT, as Ctrl-C does."""
    from pycaffe2.executor import Workspace
    real_run, calls = Workspace.RunNet, []

    def run_net(self, name, *args, **kwargs):
        result = real_run(self, name, *args, **kwargs)
        if name == net_name:
            calls.append(name)
            if len(calls) == call:
                os.kill(os.getpid(), signal.SIGINT)
        return result
    monkeypatch.setattr(Workspace, "RunNet", run_net)


def test_ctrl_c_writes_a_checkpoint_prints_the_resume_command_and_exits_130(tmp_path, capsys, monkeypatch):
    model = regression_model(tmp_path / "model.yaml", num_iter=20)
    expected = final_weights(PlanRun(str(model), quiet=True))
    checkpoint = tmp_path / "ckpt"
    sigint_at(monkeypatch, "train", 7)
    assert main(["run", str(model), "--checkpoint", str(checkpoint), "--seed", "3"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: stopped after iteration 7 of 20 of step 'train'" in err
    assert iteration_of(checkpoint) == 6
    command = err.split("go on with: ")[1].strip()
    assert command == (f"pycaffe2 run {model} --checkpoint {checkpoint} --resume --seed 3")
    monkeypatch.undo()
    run = PlanRun(str(model), quiet=True, checkpoint=str(checkpoint), resume=True, seed=3)
    np.testing.assert_allclose(final_weights(run), expected, rtol=1e-6)
    assert run._first == 7
    assert main(command.split()[1:]) == 0  # the printed command itself goes on
    assert "resumed from" in capsys.readouterr().err


def test_ctrl_c_without_a_checkpoint_folder_says_none_was_kept(tmp_path, capsys, monkeypatch):
    model = regression_model(tmp_path / "model.yaml", num_iter=20)
    sigint_at(monkeypatch, "train", 2)
    assert main(["run", str(model)]) == 130
    err = capsys.readouterr().err
    assert "stopped after iteration 2 of 20" in err and "no checkpoint kept (run with --checkpoint DIR" in err


def test_a_keyboard_interrupt_mid_iteration_stops_at_once_and_keeps_the_last_checkpoint(
        tmp_path, capsys, monkeypatch):
    """A second Ctrl-C (or one the handler cannot catch) arrives as KeyboardInterrupt inside a net:
    the state is half-updated, so no checkpoint is written over the last whole one."""
    from pycaffe2.executor import Workspace
    model = regression_model(tmp_path / "model.yaml", num_iter=20)
    real_run, calls = Workspace.RunNet, []

    def run_net(self, name, *args, **kwargs):
        if name == "train":
            calls.append(name)
            if len(calls) == 9:
                raise KeyboardInterrupt
        return real_run(self, name, *args, **kwargs)
    monkeypatch.setattr(Workspace, "RunNet", run_net)
    checkpoint = tmp_path / "ckpt"
    assert main(["run", str(model), "--checkpoint", str(checkpoint), "--save-every", "5"]) == 130
    err = capsys.readouterr().err
    assert "interrupted during iteration 9: stopped at once" in err
    assert "checkpoint after iteration 5 is in" in err and "--save-every 5" in err
    assert iteration_of(checkpoint) == 4


def test_a_keyboard_interrupt_anywhere_else_exits_130_in_one_line(tmp_path, capsys, monkeypatch):
    from pycaffe2.run import ModelRunner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(ModelRunner, "run", interrupted)
    mlp = Path(__file__).resolve().parents[2] / "nets" / "mlp.yaml"
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 784), np.float32))
    assert main(["run", str(mlp), "--feed", f"data={x}"]) == 130
    assert capsys.readouterr().err == "pycaffe2 run: interrupted\n"


def test_a_normal_end_writes_a_final_checkpoint(tmp_path, capsys):
    model = regression_model(tmp_path / "model.yaml", num_iter=12)
    checkpoint = tmp_path / "ckpt"
    assert main(["run", str(model), "--checkpoint", str(checkpoint), "--save-every", "5"]) == 0
    assert iteration_of(checkpoint) == 11
    assert main(["run", str(model), "--checkpoint", str(checkpoint), "--resume", "--iters", "15"]) == 0
    assert "resumed from" in capsys.readouterr().err and iteration_of(checkpoint) == 14


def test_resume_without_a_checkpoint_refuses(tmp_path, capsys):
    model = regression_model(tmp_path / "model.yaml")
    assert main(["run", str(model), "--checkpoint", str(tmp_path / "none"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume: no checkpoint at" in err and "start afresh" in err
    assert not (tmp_path / "none").exists()


def test_the_summary_tells_the_last_training_batch_from_the_results(tmp_path, capsys):
    model = regression_model(tmp_path / "model.yaml", num_iter=4)
    assert main(["run", str(model)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("last training batch (iteration 4 of step 'train'): loss ")
    assert out[1] == "results of net 'report' (pycaffe2 cannot tell whether its data were held out):"
    assert out[2].startswith("  final_loss: ")


def reading_net(name, reader):
    net = core.Net(name)
    net.TensorProtosDBInput([reader], ["data", "label"], batch_size=4)
    return net


@pytest.mark.parametrize("test_db, heading", [
    ("test.minidb", "held-out results (net 'test' reads test.minidb, which training does not)"),
    ("train.minidb", "results of net 'test' on training data (it reads train.minidb, as training does)"),
])
def test_results_are_called_held_out_only_when_their_data_are_not_the_trainings(test_db, heading):
    from pycaffe2.run.plan_job import results_heading
    init = core.Net("init")
    init.CreateDB([], "train_reader", db="train.minidb", db_type="minidb")
    init.CreateDB([], "test_reader", db=test_db, db_type="minidb")
    train, test = reading_net("train", "train_reader"), reading_net("test", "test_reader")
    plan = core.Plan("p")
    plan.AddStep(core.ExecutionStep("init", init))
    plan.AddStep(core.ExecutionStep("train", train, 10))
    plan.AddStep(core.ExecutionStep("test", test))
    assert results_heading(plan.Proto(), "test", ["train"]) == heading
    assert results_heading(plan.Proto(), "train", ["train"]).startswith("last training batch")
    assert "does not run it" in results_heading(plan.Proto(), "other", ["train"])


# ---------------------------------------------------------------- checkpoint temp files

def test_the_temp_files_db_writes_are_the_ones_cleanup_knows(tmp_path, monkeypatch):
    from pycaffe2.run.checkpoint import _temp_pattern
    seen, real_replace = [], os.replace

    def record(source, target):
        seen.append(os.path.basename(source))
        real_replace(source, target)
    monkeypatch.setattr(db.os, "replace", record)
    db.save_blobs(str(tmp_path / "checkpoint.minidb"), {"W": np.zeros(2, np.float32)})
    assert seen and _temp_pattern(tmp_path / "checkpoint.minidb").fullmatch(seen[0])


def dead_pid() -> int:
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_a_killed_run_left_are_removed_on_the_next_start(tmp_path, capsys):
    model = regression_model(tmp_path / "model.yaml", num_iter=3)
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    stale = checkpoint / f".checkpoint.minidb.{dead_pid()}.0badc0de.tmp"
    live = checkpoint / f".checkpoint.minidb.{os.getppid()}.1234abcd.tmp"  # a process still running
    other = checkpoint / "notes.tmp"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    assert main(["run", str(model), "--checkpoint", str(checkpoint)]) == 0
    assert "removed 1 unfinished checkpoint file(s)" in capsys.readouterr().err
    assert not stale.exists() and live.exists() and other.exists()
    assert iteration_of(checkpoint) == 2


def test_ctrl_c_to_a_running_process(tmp_path):
    """The real thing: SIGINT to `pycaffe2 run` in another process."""
    import subprocess
    import sys
    import time
    model = regression_model(tmp_path / "model.yaml", num_iter=10 ** 6)
    checkpoint = tmp_path / "ckpt"
    process = subprocess.Popen(
        [sys.executable, "-m", "pycaffe2", "run", str(model), "--checkpoint", str(checkpoint),
         "--save-every", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (checkpoint / "checkpoint.minidb").exists() and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    stopped_after = int(err.split("stopped after iteration ")[1].split()[0])
    assert iteration_of(checkpoint) == stopped_after - 1
    assert f"--checkpoint {checkpoint} --resume --save-every 1" in err and out == ""
