"""Caffe2's Loading_Pretrained_Models tutorial: a model-zoo SqueezeNet read from
~/caffe2/caffe2/python/models/squeezenet, images preprocessed with skimage, one image
and then a batch classified by workspace.Predictor, the classes named from the
ImageNet codes it downloads.

Stand-ins: the real SqueezeNet predict net from the shared caffe2_models folder with
made-up weights as its init net (the zoo's 5 MB init net is not available); images
made here, written as PNGs under the tutorial's .jpg names (read by skimage, or the
shared stand-in where it is not installed); the codes from the shared inference_codes.txt.
"""
from __future__ import annotations

import io
import types

import numpy as np
import pytest

from pycaffe2.executor import Workspace
from pycaffe2.predictor import mobile_exporter
from pycaffe2.proto import caffe2_pb2
from pycaffe2.run.random_init import made_up_weights
from tests.conftest import SHARED
from tests.tutorials.harness import TUTORIALS, run_tutorial
from tests.tutorials.standins import skimage_module, write_png

SQUEEZENET = SHARED / "caffe2_models" / "squeezenet_predict_only" / "squeeze_predict_net.pb"
CODES_URL = ("https://gist.githubusercontent.com/aaronmarkham/cd3a6b6ac071eca6f7b4a6e40e6038aa/raw/"
             "9edb4038a37da6b5a44c3b5bc52e448ff09bfe5b/alexnet_codes")
IMAGES = {"flower": (90, 120), "cowboy-hat": (120, 90), "cell-tower": (100, 100), "Ducreux": (80, 110),
          "pretzel": (110, 80), "orangutan": (95, 95), "aircraft-carrier": (70, 130), "cat": (120, 120)}


def py2_urllib2(downloads: dict) -> dict:
    """Python 2's urllib2 gave str lines (the tutorial partitions them with ":")."""
    module = types.ModuleType("urllib2")

    def urlopen(url):
        if url not in downloads:
            raise ConnectionError(f"the tutorial tried to download {url}; the test gives no stand-in for it")
        return io.StringIO(downloads[url].decode("utf-8"))
    module.urlopen = urlopen
    return {"urllib2": module}


# ---- the model and the images ---------------------------------------------------------------

def squeezenet_pair() -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    """(init_net, predict_net): the real predict net, and an init net of made-up weights."""
    if not SQUEEZENET.is_file():
        pytest.skip(f"needs the SqueezeNet predict net {SQUEEZENET} (the shared caffe2_models folder)")
    predict = caffe2_pb2.NetDef.FromString(SQUEEZENET.read_bytes())
    data = np.zeros((1, 3, 227, 227), np.float32)
    weights = made_up_weights(predict, {"data": data}, out_channels={"conv10_w": 1000}, seed=7)
    init = caffe2_pb2.NetDef(name="squeezenet_init")
    for name, value in weights.items():
        mobile_exporter.add_tensor(init, name, value)
    return init, predict


def install_model(folder, init, predict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "init_net.pb").write_bytes(init.SerializeToString())
    (folder / "predict_net.pb").write_bytes(predict.SerializeToString())


def write_images(home) -> None:
    rng = np.random.default_rng(1)
    (home / "images").mkdir()
    for name, shape in IMAGES.items():
        write_png(home / "images" / f"{name}.jpg", rng.integers(0, 256, shape + (3,), dtype=np.uint8))


def direct_run(init, predict, batch) -> np.ndarray:
    ws = Workspace("direct")
    ws.RunNetOnce(init)
    ws.FeedBlob("data", batch)
    ws.RunNetOnce(predict)
    return ws.FetchBlob(predict.external_output[0])


def _binary_reads(source: str) -> str:
    """Python 2's open() read the .pb files as bytes; Python 3 needs 'rb' for that."""
    for name in ("INIT_NET", "PREDICT_NET"):
        source = source.replace(f"with open({name}) as f:", f"with open({name}, 'rb') as f:")
    return source


def test_loading_pretrained_models(tmp_path):
    init, predict = squeezenet_pair()
    install_model(tmp_path / "caffe2" / "caffe2" / "python" / "models" / "squeezenet", init, predict)
    write_images(tmp_path)
    downloads = {CODES_URL: (TUTORIALS / "inference_codes.txt").read_bytes()}
    ns = run_tutorial("Loading_Pretrained_Models", tmp_path, downloads=downloads,
                      modules=py2_urllib2(downloads), before=_binary_reads)
    # the single image (fed by dict): the tutorial's top class and confidence are the direct run's
    skimage = skimage_module()
    flower = skimage.img_as_float(skimage.io.imread(tmp_path / "images" / "flower.jpg"))
    flower = ns["crop_center"](ns["rescale"](flower, 227, 227), 227, 227)
    flower = (flower.transpose(2, 0, 1)[::-1] * 255 - 128)[np.newaxis].astype(np.float32)
    single = np.delete(direct_run(init, predict, flower), 1)  # as the tutorial reads its results
    assert ns["index"] == int(np.argmax(single)) + 1
    np.testing.assert_allclose(ns["highest"], single.max(), rtol=1e-5)
    assert ns["topN_inds"][0] == ns["index"] and len(ns["topN_inds"]) == 5
    assert len(ns["class_LUT"]) == 1000 and ns["class_LUT"][1] == "goldfish"
    # the batch of seven, fed as a list
    batch = ns["NCHW_batch"].astype(np.float32)
    assert batch.shape == (7, 3, 227, 227)
    expected = direct_run(init, predict, batch)
    np.testing.assert_allclose(ns["preds"], np.squeeze(expected), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ns["preds"].sum(axis=1), 1.0, rtol=1e-4)
    assert not np.allclose(ns["preds"][0], ns["preds"][1], rtol=0, atol=1e-9)  # different images, answers
