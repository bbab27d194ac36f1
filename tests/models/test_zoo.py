"""The model-zoo side of pycaffe2.models: the models folder, `models.squeezenet`'s
lazily read nets, and the downloader (against a stand-in opener: tests never download)."""
import importlib
import io

import pytest

from pycaffe2 import core
from pycaffe2.errors import PyCaffe2Error
from pycaffe2.models import download, models_dir
from pycaffe2.proto import caffe2_pb2


def pair():
    init = caffe2_pb2.NetDef(name="init", op=[core.CreateOperator("ConstantFill", [], ["w"], shape=[2], value=1.0)])
    predict = caffe2_pb2.NetDef(name="predict", op=[core.CreateOperator("Add", ["data", "w"], ["out"])],
                                external_input=["data", "w"], external_output=["out"])
    return init, predict


def test_models_folder_from_environment_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv("PYCAFFE2_MODELS", str(tmp_path / "zoo"))
    assert models_dir() == tmp_path / "zoo"
    monkeypatch.delenv("PYCAFFE2_MODELS")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert models_dir() == tmp_path / ".pycaffe2" / "models"


def test_squeezenet_nets_are_read_from_the_models_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("PYCAFFE2_MODELS", str(tmp_path))
    squeezenet = importlib.import_module("pycaffe2.models.squeezenet")
    with pytest.raises(PyCaffe2Error, match=r"python -m pycaffe2.models.download -i squeezenet"):
        squeezenet.init_net  # noqa: B018 (the attribute read is what is tested)
    init, predict = pair()
    (tmp_path / "squeezenet").mkdir()
    (tmp_path / "squeezenet" / "init_net.pb").write_bytes(init.SerializeToString())
    (tmp_path / "squeezenet" / "predict_net.pb").write_bytes(predict.SerializeToString())
    assert squeezenet.init_net == init and squeezenet.predict_net == predict
    with pytest.raises(AttributeError):
        squeezenet.value_info  # noqa: B018
    (tmp_path / "squeezenet" / "init_net.pb").write_bytes(b"\xff\xff")
    with pytest.raises(PyCaffe2Error, match="not a NetDef"):
        squeezenet.init_net  # noqa: B018


class Opener:
    """urlopen's stand-in: answers from a dict, records what was asked."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def __call__(self, url):
        self.asked.append(url)
        return io.BytesIO(self.answers[url])


def test_download_installs_only_whole_netdefs(tmp_path):
    init, predict = pair()
    base = "https://zoo.example/models/"
    opener = Opener({base + "tiny/init_net.pb": init.SerializeToString(),
                     base + "tiny/predict_net.pb": predict.SerializeToString()})
    folder = download.download("tiny", tmp_path, base_url=base, opener=opener)
    assert folder == tmp_path / "tiny" and sorted(p.name for p in folder.iterdir()) == ["init_net.pb",
                                                                                       "predict_net.pb"]
    assert caffe2_pb2.NetDef.FromString((folder / "predict_net.pb").read_bytes()) == predict
    with pytest.raises(PyCaffe2Error, match="already exists"):
        download.download("tiny", tmp_path, base_url=base, opener=opener)
    bad = Opener({base + "bad/init_net.pb": b"\xff\xff\xff"})
    with pytest.raises(PyCaffe2Error, match="not a NetDef"):
        download.download("bad", tmp_path, base_url=base, opener=bad)
    assert list((tmp_path / "bad").iterdir()) == []
    with pytest.raises(PyCaffe2Error, match="not a model name"):
        download.download("../escape", tmp_path, opener=opener)


def test_download_command_line_installs_into_the_models_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PYCAFFE2_MODELS", str(tmp_path / "zoo"))
    init, predict = pair()
    answers = {download.BASE_URL + "tiny/init_net.pb": init.SerializeToString(),
               download.BASE_URL + "tiny/predict_net.pb": predict.SerializeToString()}
    assert download.main(["-i", "tiny"], opener=Opener(answers)) == 0
    assert (tmp_path / "zoo" / "tiny" / "init_net.pb").is_file()
    assert download.main(["-i", "tiny"], opener=Opener(answers)) == 1
    assert "already exists" in capsys.readouterr().err
