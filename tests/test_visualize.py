"""pycaffe2.visualize: the mosaics it builds, drawn with matplotlib (a recording
stand-in here) or, without matplotlib, built and returned with one note."""
import sys
import types

import numpy as np
import pytest

from pycaffe2 import visualize
from pycaffe2.errors import PyCaffe2Error


@pytest.fixture
def pyplot(monkeypatch):
    """A matplotlib stand-in that records imshow calls."""
    calls = []
    plt = types.ModuleType("matplotlib.pyplot")
    plt.imshow = lambda image, **kw: calls.append(("imshow", np.array(image), kw))
    plt.axis = lambda what: calls.append(("axis", what))
    mpl = types.ModuleType("matplotlib")
    mpl.pyplot = plt
    monkeypatch.setitem(sys.modules, "matplotlib", mpl)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", plt)
    return calls


@pytest.fixture
def no_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    monkeypatch.setattr(visualize, "_noted", False)


def test_channel_moves():
    chw = np.arange(24).reshape(2, 3, 4)
    hwc = visualize.ChannelLast(chw)
    assert hwc.shape == (3, 4, 2) and hwc[1, 2, 1] == chw[1, 1, 2]
    assert np.array_equal(visualize.ChannelFirst(hwc), chw)
    batch = np.zeros((5, 3, 7, 8))
    assert visualize.ChannelLast(batch).shape == (5, 7, 8, 3)


def test_show_multiple_mosaic(pyplot):
    patches = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    image = visualize.PatchVisualizer(gap=1).ShowMultiple(patches, bg_func=lambda p: -1.0)
    assert image.shape == (2 * 3 - 1, 3 * 4 - 1)  # 3 columns, so 2 rows for 5 patches
    assert np.array_equal(image[0:2, 0:3], patches[0])
    assert np.array_equal(image[0:2, 4:7], patches[1])
    assert np.array_equal(image[3:5, 0:3], patches[3])
    assert image[2, 0] == -1.0 and np.all(image[3:5, 8:] == -1.0)  # a gap and the empty cell
    kind, drawn, kw = pyplot[0]
    assert kind == "imshow" and np.array_equal(drawn, image) and kw["cmap"] == "gray"
    assert pyplot[1] == ("axis", "off")


def test_flat_and_colour_patches(pyplot):
    vis = visualize.PatchVisualizer(gap=0)
    flat = np.arange(2 * 16, dtype=float).reshape(2, 16)
    image = vis.ShowMultiple(flat, ncols=2)
    assert image.shape == (4, 8) and np.array_equal(image[:, 4:], flat[1].reshape(4, 4))
    colour = np.random.rand(4, 3, 3, 3)
    assert vis.ShowMultiple(colour).shape == (6, 6, 3)
    assert vis.get_patch_shape(np.zeros(27)) == (3, 3, 3)
    with pytest.raises(PyCaffe2Error, match="square patch"):
        vis.get_patch_shape(np.zeros(7))
    with pytest.raises(PyCaffe2Error, match="N x H x W"):
        vis.ShowMultiple(np.zeros((2, 3, 3, 2)))


def test_single_images_channels(pyplot):
    vis = visualize.PatchVisualizer()
    assert vis.ShowSingle(np.arange(9.0)).shape == (3, 3)
    with pytest.raises(PyCaffe2Error, match="H x W x 3"):
        vis.ShowSingle(np.zeros((3, 3, 2)))
    scaled = vis.ShowImages(np.array([[[2.0, 4.0]], [[6.0, 10.0]]]), bg_func=np.min)
    assert scaled.min() == 0.0 and abs(scaled.max() - 1.0) < 1e-9
    channels = vis.ShowChannels(np.stack([np.zeros((2, 2)), np.ones((2, 2))], axis=2), bg_func=lambda p: 5)
    assert np.array_equal(channels[:, :2], np.zeros((2, 2))) and np.array_equal(channels[:, 3:], np.ones((2, 2)))


def test_nchw_front_calls_with_channels_last(pyplot):
    batch = np.random.rand(4, 1, 5, 5)
    assert visualize.NCHW.ShowMultiple(batch) is None
    drawn = pyplot[0][1]
    assert drawn.shape == (11, 11) and np.allclose(drawn[:5, :5], batch[0, 0])
    visualize.NHWC.ShowMultiple(np.random.rand(2, 3, 3, 3))
    assert pyplot[-2][1].shape == (3, 7, 3)


def test_without_matplotlib_builds_and_notes_once(no_matplotlib, capsys):
    batch = np.random.rand(3, 1, 4, 4)
    image = visualize.PatchVisualizer().ShowMultiple(visualize.ChannelLast(batch))
    assert image.shape == (9, 9)
    visualize.NCHW.ShowMultiple(batch)
    visualize.NHWC.ShowSingle(np.zeros((2, 2)))
    assert capsys.readouterr().err.count("matplotlib is not installed") == 1
