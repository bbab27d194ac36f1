"""Caffe2's workspace root folder: ResetWorkspace(root_folder) sets it (making the
folder), ResetWorkspace() keeps it, a new workspace starts at "."; Save, Load,
Checkpoint and DBExists with absolute_path=0 and Print's and Summarize's logs take
their relative file names under it, CreateDB and absolute_path=1 from the working folder."""
import numpy as np
import pytest

from pycaffe2 import core, workspace
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.executor import Workspace


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A root folder (not yet made) beside a working folder made the current one."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    saved = workspace.RootFolder()
    folder = tmp_path / "runs" / "first"
    yield folder
    workspace.ResetWorkspace(saved)


def test_reset_workspace_sets_and_keeps_the_root_folder(root):
    assert Workspace().root_folder == "."
    assert workspace.ResetWorkspace(str(root)) is True
    assert root.is_dir() and workspace.RootFolder() == str(root) == workspace.C.root_folder()
    workspace.FeedBlob("x", np.ones(2, np.float32))
    assert workspace.ResetWorkspace() is True
    assert workspace.RootFolder() == str(root) and not workspace.HasBlob("x")
    previous = workspace.CurrentWorkspace()
    try:
        workspace.SwitchWorkspace("_root_folder_other", True)
        assert workspace.RootFolder() == "."
    finally:
        workspace.SwitchWorkspace(previous)
    assert workspace.RootFolder() == str(root)


def test_a_root_folder_that_is_no_path_is_refused(root):
    with pytest.raises(PyCaffe2Error, match="root_folder must be a folder path"):
        workspace.ResetWorkspace("")
    (root.parent).mkdir(parents=True)
    (root.parent / "file").write_text("x")
    with pytest.raises(PyCaffe2Error, match="cannot make root folder"):
        workspace.ResetWorkspace(str(root.parent / "file" / "sub"))


def test_db_ops_take_relative_paths_under_the_root_folder(root):
    work = root.parents[1] / "work"
    workspace.ResetWorkspace(str(root))
    workspace.FeedBlob("W", np.arange(3, dtype=np.float32))
    workspace.FeedBlob("iter", np.array([4], np.int64))
    net = core.Net("save")
    net.Save(["W"], [], db="w.minidb", db_type="minidb")
    net.Save(["W"], [], db="given.minidb", db_type="minidb", absolute_path=1)
    net.Checkpoint(["iter", "W"], [], db="sub_%03d.minidb", db_type="minidb", every=2)
    net.DBExists([], "rooted", db_name="w.minidb", db_type="minidb")
    net.DBExists([], "at_work", db_name="given.minidb", db_type="minidb")
    workspace.RunNetOnce(net)
    assert sorted(p.name for p in root.iterdir()) == ["sub_004.minidb", "w.minidb"]
    assert sorted(p.name for p in work.iterdir()) == ["given.minidb"]
    assert workspace.FetchBlob("rooted") and not workspace.FetchBlob("at_work")
    load = core.Net("load")
    load.Load([], ["W"], db="w.minidb", db_type="minidb")
    load.CreateDB([], "reader", db="given.minidb", db_type="minidb")  # as given: the working folder
    load.Load(["reader"], ["W2"], source_blob_names=["W"])
    workspace.ResetWorkspace()
    workspace.RunNetOnce(load)
    np.testing.assert_array_equal(workspace.FetchBlob("W"), np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(workspace.FetchBlob("W2"), np.arange(3, dtype=np.float32))


def test_logs_are_written_under_the_root_folder(root):
    workspace.ResetWorkspace(str(root))
    workspace.FeedBlob("scope/x", np.array([1.0, 3.0], np.float32))
    net = core.Net("taps")
    net.Print("scope/x", [], to_file=1)  # Print keeps the '/': a log in a subfolder, as Caffe2's
    net.Summarize("scope/x", [], to_file=1)  # Summarize spells it '#'
    (root / "scope").mkdir()
    workspace.RunNetOnce(net)
    assert (root / "scope" / "x.log").read_text().startswith("Tensor scope/x of type float32.")
    assert (root / "scope#x.summary").read_text() == "1 3 2 1.41421\n"


def test_control_op_subnets_use_the_outer_root_folder(root):
    workspace.ResetWorkspace(str(root))
    workspace.FeedBlob("W", np.ones(2, np.float32))
    workspace.FeedBlob("cond", np.array(True))
    then = core.Net("then")
    then.Save(["W"], [], db="inner.minidb", db_type="minidb")
    net = core.Net("outer")
    net.If(["cond", "W"], [], then_net=then.Proto())
    workspace.RunNetOnce(net)
    assert (root / "inner.minidb").is_file()
