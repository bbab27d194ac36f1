"""The trust boundary of `pycaffe2 run`: a model file's nets stay inside its folder, and
from the command line its ops read and write only inside the data roots, checked
before anything runs. The Python API stays unconfined, as Caffe2's."""
import os

import numpy as np
import pytest

from pycaffe2 import core, db, netfile, workspace
from pycaffe2.cli import main
from pycaffe2.errors import NetFileError
from pycaffe2.paths import outside_reason, within
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run import ModelRunner, RunError, run_model
from pycaffe2.run.confine import check_data_paths, default_roots, op_paths


def relu_net(path):
    net = caffe2_pb2.NetDef(name="predict", external_input=["X"], external_output=["Y"])
    net.op.add(type="Relu", input=["X"], output=["Y"])
    netfile.save_net(net, path)
    return path


def init_net(path):
    net = caffe2_pb2.NetDef(name="init")
    op = net.op.add(type="GivenTensorFill", output=["X"])
    op.arg.add(name="shape", ints=[2])
    op.arg.add(name="values", floats=[-1.0, 2.0])
    netfile.save_net(net, path)
    return path


def model_file(folder, init_path, predict_path="predict.pb"):
    folder.mkdir(parents=True, exist_ok=True)
    relu_net(folder / "predict.pb")
    path = folder / "model.yaml"
    path.write_text(f"init_net: {init_path}\npredict_net: {predict_path}\n")
    return path


# ---------------------------------------------------------------- net paths of a model file

def test_paths_leading_out_of_the_folder(tmp_path):
    (tmp_path / "m" / "sub").mkdir(parents=True)
    folder = tmp_path / "m"
    assert outside_reason(folder, "init.pb") is None
    assert outside_reason(folder, "sub/../init.pb") is None
    assert "'..'" in outside_reason(folder, "../init.pb")
    assert "'..'" in outside_reason(folder, "sub/../../init.pb")
    assert "absolute" in outside_reason(folder, str(folder / "init.pb"))
    (folder / "link").symlink_to(tmp_path)
    assert "symlink" in outside_reason(folder, "link/init.pb")
    assert "not a usable path" in outside_reason(folder, "a\0b")
    assert within(folder / "sub", [folder]) and not within(tmp_path, [folder])


@pytest.mark.parametrize("spelling", ["../outside/init.pb", "ABSOLUTE", "link.pb"])
def test_a_model_file_naming_a_net_outside_its_folder_is_refused(tmp_path, spelling):
    outside = init_net((tmp_path / "outside").mkdir() or tmp_path / "outside" / "init.pb")
    folder = tmp_path / "model"
    folder.mkdir()
    if spelling == "link.pb":
        (folder / "link.pb").symlink_to(outside)
    name = str(outside) if spelling == "ABSOLUTE" else spelling
    path = model_file(folder, name)
    with pytest.raises(NetFileError) as caught:
        netfile.load_model(path)
    message = str(caught.value)
    assert str(path) in message and f"'{name}'" in message and "--allow-outside-paths" in message
    model = netfile.load_model(path, allow_outside_paths=True)  # the explicit Python argument
    assert model.init_net.name == "init"


def test_a_net_beside_the_model_or_below_it_is_read(tmp_path):
    folder = tmp_path / "model"
    (folder / "nets").mkdir(parents=True)
    init_net(folder / "nets" / "init.pb")
    (folder / "alias.pb").symlink_to(folder / "nets" / "init.pb")  # a symlink staying inside
    for name in ("nets/init.pb", "alias.pb", "nets/../nets/init.pb"):
        assert netfile.load_model(model_file(folder, name)).init_net.name == "init"


def test_a_model_folder_whose_net_is_a_symlink_out_is_refused(tmp_path):
    outside = init_net(tmp_path / "elsewhere.pb")
    folder = tmp_path / "pair"
    folder.mkdir()
    relu_net(folder / "predict_net.pb")
    (folder / "init_net.pb").symlink_to(outside)
    with pytest.raises(NetFileError, match="init_net.pb.*symlink"):
        netfile.load_model(folder)
    assert netfile.load_model(folder, allow_outside_paths=True).init_net.name == "init"


def test_the_command_line_refuses_outside_nets_unless_allowed(tmp_path, capsys):
    init_net((tmp_path / "outside").mkdir() or tmp_path / "outside" / "init.pb")
    path = model_file(tmp_path / "model", "../outside/init.pb")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'../outside/init.pb'" in err and str(path) in err
    assert main(["run", str(path), "--allow-outside-paths"]) == 0
    assert "Y: float32 [2]" in capsys.readouterr().out


# ---------------------------------------------------------------- data roots (the command line)

def saving_model(folder, db_path, absolute=False, before=None):
    """A model whose init net saves X to `db_path` (after saving to `before`, if given)."""
    init = core.Net("init")
    init.GivenTensorFill([], "X", shape=[2], values=[-1.0, 2.0])
    if before is not None:
        init.Save(["X"], [], db=before, db_type="minidb")
    init.Save(["X"], [], db=db_path, db_type="minidb", absolute_path=int(absolute))
    predict = core.Net("predict")
    predict.Relu("X", "Y")
    predict.AddExternalOutput("Y")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.yaml"
    netfile.save_model(netfile.Model(predict.Proto(), init.Proto()), path)
    return path


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working folder beside the model's folder, made the current one."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_a_save_outside_the_data_roots_is_refused_before_anything_runs(tmp_path, work, capsys):
    path = saving_model(tmp_path / "model", "../escaped.minidb", before="first.minidb")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "op 2 (Save)" in err and "'../escaped.minidb'" in err and "--data-root" in err
    assert str(path) in err and err.count("\n") == 1
    assert not (tmp_path / "escaped.minidb").exists()
    assert not (work / "first.minidb").exists()  # the Save before it did not run either


def test_data_roots_given_replace_the_default(tmp_path, work, capsys):
    path = saving_model(tmp_path / "model", "../escaped.minidb")
    assert main(["run", str(path), "--data-root", str(tmp_path)]) == 0
    assert db.load_blobs(str(tmp_path / "escaped.minidb"))["X"].tolist() == [-1.0, 2.0]
    inside_work = saving_model(tmp_path / "model2", "kept.minidb")
    assert main(["run", str(inside_work), "--data-root", str(tmp_path / "model2")]) == 2
    assert "outside the data root" in capsys.readouterr().err


def test_the_models_folder_and_the_working_folder_are_the_default_roots(tmp_path, work):
    model_dir = tmp_path / "model"
    path = saving_model(model_dir, str(model_dir / "weights.minidb"), absolute=True,
                        before="here.minidb")
    assert main(["run", str(path)]) == 0
    assert (model_dir / "weights.minidb").is_file() and (work / "here.minidb").is_file()
    assert default_roots(path) == [str(model_dir), os.getcwd()]
    assert default_roots(model_dir) == [str(model_dir), os.getcwd()]


def test_a_symlink_in_the_working_folder_does_not_lead_out(tmp_path, work, capsys):
    (tmp_path / "secret").mkdir()
    (work / "data").symlink_to(tmp_path / "secret")
    path = saving_model(tmp_path / "model", "data/stolen.minidb")
    assert main(["run", str(path)]) == 2
    assert "leads to " + str(tmp_path / "secret" / "stolen.minidb") in capsys.readouterr().err
    assert not (tmp_path / "secret" / "stolen.minidb").exists()


def test_the_python_api_is_not_confined(tmp_path, work):
    path = saving_model(tmp_path / "model", "../escaped.minidb")
    assert run_model(str(path))["Y"].tolist() == [0.0, 2.0]
    assert (tmp_path / "escaped.minidb").is_file()
    with pytest.raises(RunError, match="outside the data root"):
        ModelRunner(str(path), data_roots=[str(work)])


def test_every_op_that_names_a_file_is_checked(tmp_path, work):
    outside = str(tmp_path / "x.minidb")
    net = core.Net("n")
    net.CreateDB([], "reader", db=outside, db_type="minidb")
    net.Load([], ["W"], db=outside, db_type="minidb", absolute_path=1)
    net.Load([], ["V"], dbs=["ok.minidb", "../y.minidb"], db_type="minidb")
    net.DBExists([], "e", db_name="../z.minidb", db_type="minidb")
    net.Checkpoint(["it", "W"], [], db="../ckpt_%05d.minidb", db_type="minidb")
    net.Print("../../log_me", [], to_file=1)
    net.Print("fine", [])
    net.Summarize("../stats", [], to_file=1)  # Caffe2 spells '/' as '#': ..#stats.summary stays inside
    found = [op_paths(op) for op in net.Proto().op]
    # absolute_path=0 paths and the logs lie under the root folder ("."), CreateDB's as given
    assert found == [[("db", outside)], [("db", outside)], [("dbs", "ok.minidb"), ("dbs", "../y.minidb")],
                     [("db_name", "../z.minidb")], [("db", "../ckpt_00000.minidb")],
                     [("to_file", "../../log_me.log")], [], [("to_file", "..#stats.summary")]]
    for index, op in enumerate(net.Proto().op[:-2]):
        one = caffe2_pb2.NetDef(name="n", op=[op])
        with pytest.raises(RunError, match=f"op 0 \\({op.type}\\)"):
            check_data_paths([("m.yaml", one)], [str(work)])
    check_data_paths([("m.yaml", caffe2_pb2.NetDef(op=net.Proto().op[-2:]))], [str(work)])


def test_relative_paths_are_checked_under_the_root_folder(tmp_path, work):
    """A workspace root folder moves where absolute_path=0 paths and logs land; the check follows
    it, and CreateDB (which takes its path as given) and absolute_path=1 stay at the working folder."""
    net = core.Net("n")
    net.Save(["W"], [], db="w.minidb", db_type="minidb")
    net.Print("W", [], to_file=1)
    save, print_op = net.Proto().op
    inside, outside = work / "sub", tmp_path / "elsewhere"
    assert op_paths(save, str(inside)) == [("db", f"{inside}/w.minidb")]
    assert op_paths(print_op, str(outside)) == [("to_file", f"{outside}/W.log")]
    check_data_paths([("m.yaml", net.Proto())], [str(work)], root_folder=str(inside))
    with pytest.raises(RunError, match="op 0 \\(Save\\): db '.*elsewhere/w.minidb' leads to"):
        check_data_paths([("m.yaml", net.Proto())], [str(work)], root_folder=str(outside))
    as_given = core.Net("g")
    as_given.CreateDB([], "r", db="r.minidb", db_type="minidb")
    as_given.Load([], ["V"], db="v.minidb", db_type="minidb", absolute_path=1)
    assert [op_paths(op, str(outside)) for op in as_given.Proto().op] == [[("db", "r.minidb")], [("db", "v.minidb")]]
    check_data_paths([("m.yaml", as_given.Proto())], [str(work)], root_folder=str(outside))


def test_a_checkpoint_pattern_that_could_spell_a_slash_is_refused(work):
    net = core.Net("n")
    net.Checkpoint(["it"], [], db="..%cpasswd", db_type="minidb")  # iteration 47 would give '../passwd'
    with pytest.raises(RunError, match="other than as an integer"):
        check_data_paths([("m.yaml", net.Proto())], [str(work)])
    fine = core.Net("n")
    fine.Checkpoint(["it"], [], db="ckpt_%05d.minidb", db_type="minidb")
    check_data_paths([("m.yaml", fine.Proto())], [str(work)])


def test_a_plan_is_checked_before_its_init_step_runs(tmp_path, work, capsys):
    init = core.Net("init")
    init.ConstantFill([], "W", shape=[1], value=1.0)
    init.Save(["W"], [], db="init_ran.minidb", db_type="minidb")
    train = core.Net("train")
    train.Save(["W"], [], db="../../escaped.minidb", db_type="minidb")
    plan = core.Plan("p")
    plan.AddStep(core.ExecutionStep("init", init))
    plan.AddStep(core.ExecutionStep("train", train, 3))
    path = tmp_path / "model.yaml"
    netfile.save_model(netfile.Model(predict_net=train.Proto(), init_net=init.Proto(), plan=plan.Proto()),
                       path)
    assert main(["run", str(path)]) == 2
    assert "net 'train': op 0 (Save)" in capsys.readouterr().err
    assert not (work / "init_ran.minidb").exists()
    np.testing.assert_array_equal(os.listdir(work), [])


def test_convert_follows_the_same_rule(tmp_path, capsys):
    init_net((tmp_path / "outside").mkdir() or tmp_path / "outside" / "init.pb")
    path = model_file(tmp_path / "model", "../outside/init.pb")
    out = tmp_path / "bundled.yaml"
    assert main(["convert", str(path), str(out)]) == 2
    assert "'../outside/init.pb'" in capsys.readouterr().err and not out.exists()
    assert main(["convert", str(path), str(out), "--allow-outside-paths"]) == 0
    assert netfile.load_model(out).init_net.name == "init"  # now bundled: nothing outside


def test_validate_and_graph_follow_the_same_rule(tmp_path, capsys, monkeypatch):
    init_net((tmp_path / "outside").mkdir() or tmp_path / "outside" / "init.pb")
    path = model_file(tmp_path / "model", "../outside/init.pb")
    assert main(["validate", str(path)]) == 2
    assert "'../outside/init.pb'" in "".join(capsys.readouterr())
    assert main(["validate", str(path), "--allow-outside-paths"]) == 0
    capsys.readouterr()
    dot = tmp_path / "model.dot"
    assert main(["graph", str(path), "-o", str(dot)]) == 2 and not dot.exists()
    assert "'../outside/init.pb'" in capsys.readouterr().err
    assert main(["graph", str(path), "-o", str(dot), "--allow-outside-paths"]) == 0 and dot.exists()


def test_a_python_root_folder_does_not_reach_the_command_line(tmp_path, work):
    """`pycaffe2 run` checks and runs in its own workspace at the working folder: a root folder
    a script set with ResetWorkspace (outside the data roots) changes neither."""
    saved = workspace.RootFolder()
    workspace.ResetWorkspace(str(tmp_path / "elsewhere"))
    try:
        path = saving_model(tmp_path / "model", "saved.minidb")
        runner = ModelRunner(str(path), data_roots=[str(work)])
        assert runner.workspace.root_folder == "."
        assert (work / "saved.minidb").is_file() and not (tmp_path / "elsewhere" / "saved.minidb").exists()
    finally:
        workspace.ResetWorkspace(saved)
