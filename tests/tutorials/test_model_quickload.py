"""Caffe2's Model_Quickload tutorial: `from caffe2.python.models import squeezenet`,
a Predictor from its init_net and predict_net, one image classified through the
tutorials' helpers module, the answer named from inference_codes.txt.

Stand-ins: the same SqueezeNet pair and images as test_loading_pretrained_models,
the pair installed where pycaffe2.models looks by default (~/.pycaffe2/models/squeezenet,
under the tutorial's home); helpers.py and inference_codes.txt are the shared
tutorials' own files.
"""
import shutil
import sys

import numpy as np

from tests.tutorials.harness import TUTORIALS, run_tutorial
from tests.tutorials.standins import skimage_module
from tests.tutorials.test_loading_pretrained_models import (
    direct_run,
    install_model,
    squeezenet_pair,
    write_images,
)


def test_model_quickload(tmp_path, monkeypatch, capsys):
    init, predict = squeezenet_pair()
    monkeypatch.delenv("PYCAFFE2_MODELS", raising=False)
    install_model(tmp_path / ".pycaffe2" / "models" / "squeezenet", init, predict)
    write_images(tmp_path)
    shutil.copy(TUTORIALS / "inference_codes.txt", tmp_path / "inference_codes.txt")
    monkeypatch.syspath_prepend(str(TUTORIALS))  # `import helpers`, beside the tutorial
    try:
        ns = run_tutorial("Model_Quickload", tmp_path)
    finally:
        sys.modules.pop("helpers", None)  # it holds the skimage it imported
    assert ns["predict_net"] == predict and ns["init_net"] == init
    # helpers.loadToNCHW, by hand: centre crop of the rescaled image, CHW, BGR, less the mean
    skimage = skimage_module()
    image = skimage.img_as_float(skimage.io.imread(tmp_path / "images" / "flower.jpg"))
    aspect = image.shape[1] / image.shape[0]
    image = skimage.transform.resize(image, (227, int(aspect * 227)))
    start = image.shape[1] // 2 - 227 // 2
    image = image[:, start:start + 227].transpose(2, 0, 1)[::-1] * 255 - 128
    np.testing.assert_allclose(ns["img"], image[np.newaxis], rtol=1e-5, atol=1e-3)
    expected = np.squeeze(direct_run(init, predict, ns["img"]))
    np.testing.assert_allclose(ns["preds"], expected, rtol=1e-5, atol=1e-8)
    assert ns["curr_pred"] == int(np.argmax(expected))
    index = int(np.argmax(np.delete(expected, 1))) + 1  # helpers.parseResults' reading
    code = (TUTORIALS / "inference_codes.txt").read_text().splitlines()[index + 1]
    assert ns["response"].startswith(f"The image contains a {code.split(':', 1)[1].strip()[1:-2]} with a")
    assert "Top-1 Prediction" in capsys.readouterr().out
