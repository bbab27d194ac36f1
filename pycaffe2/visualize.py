"""Caffe2's `visualize`: tensors drawn as mosaics of patches with matplotlib.

`PatchVisualizer(gap=1)` lays patches out on a grid (`ShowMultiple`), shows
one (`ShowSingle`), images scaled to [0, 1] (`ShowImages`) or each channel
of one patch as a grey patch (`ShowChannels`); each returns the NumPy image
it drew. `NHWC.*` and `NCHW.*` call the default visualizer on channel-last
or channel-first batches and return nothing, as in Caffe2.

matplotlib is optional: without it the image is still built (and returned)
but nothing is drawn, and the first call prints one note to stderr.
"""
from __future__ import annotations

import sys

import numpy as np

from pycaffe2.errors import PyCaffe2Error

_noted = False


def _pyplot():
    """matplotlib.pyplot, or None (with a note, once) when matplotlib is missing."""
    global _noted
    try:
        from matplotlib import pyplot
    except ImportError:
        if not _noted:
            _noted = True
            print("visualize: matplotlib is not installed, so nothing is drawn", file=sys.stderr)
        return None
    return pyplot


def _draw(image: np.ndarray, cmap, axis_off: bool) -> None:
    pyplot = _pyplot()
    if pyplot is None:
        return
    if cmap is None and image.ndim == 2:
        cmap = "gray"
    pyplot.imshow(image, cmap=cmap, interpolation="nearest")
    if axis_off:
        pyplot.axis("off")


def ChannelFirst(arr):
    """HWC (the last three axes) to CHW."""
    arr = np.asarray(arr)
    return np.moveaxis(arr, -1, -3)


def ChannelLast(arr):
    """CHW (the last three axes) to HWC."""
    arr = np.asarray(arr)
    return np.moveaxis(arr, -3, -1)


class PatchVisualizer:
    """Draws patches (2-D grey, or H x W x 1 / H x W x 3) with `gap` pixels between them."""

    def __init__(self, gap: int = 1):
        self.gap = int(gap)

    def get_patch_shape(self, patch) -> tuple:
        """A flat patch's square shape: n x n, or n x n x 3 for colour."""
        size = np.asarray(patch).size
        for channels in (1, 3):
            side = round(np.sqrt(size / channels))
            if side * side * channels == size:
                return (side, side) if channels == 1 else (side, side, 3)
        raise PyCaffe2Error(f"visualize: cannot make a square patch (n*n or n*n*3) of {size} values")

    def ShowSingle(self, patch, cmap=None):
        patch = np.asarray(patch)
        if patch.ndim == 1:
            patch = patch.reshape(self.get_patch_shape(patch))
        elif patch.ndim > 2 and patch.shape[2] != 3:
            raise PyCaffe2Error(f"visualize: a patch must be 2-D or H x W x 3, got shape {patch.shape}")
        _draw(patch, cmap, axis_off=False)
        return patch

    def ShowMultiple(self, patches, ncols=None, cmap=None, bg_func=np.mean):
        """One image of every patch (the first axis), row by row, `ncols` a row
        (default: a square grid); the gaps take bg_func(patches)."""
        patches = np.asarray(patches)
        if patches.ndim < 2 or patches.shape[0] == 0:
            raise PyCaffe2Error(f"visualize: expected a batch of patches, got shape {patches.shape}")
        count = patches.shape[0]
        if patches.ndim == 2:
            patches = patches.reshape((count,) + self.get_patch_shape(patches[0]))
        if patches.ndim == 4 and patches.shape[3] == 1:
            patches = patches[..., 0]
        if patches.ndim not in (3, 4) or (patches.ndim == 4 and patches.shape[3] != 3):
            raise PyCaffe2Error(f"visualize: patches must be N x H x W, N x H x W x 1 or N x H x W x 3, "
                                f"got shape {patches.shape}")
        ncols = int(ncols) if ncols else int(np.ceil(np.sqrt(count)))
        nrows = -(-count // ncols)
        step_h, step_w = patches.shape[1] + self.gap, patches.shape[2] + self.gap
        shape = (nrows * step_h - self.gap, ncols * step_w - self.gap) + patches.shape[3:]
        image = np.full(shape, bg_func(patches), dtype=np.float64)
        for index in range(count):
            top, left = (index // ncols) * step_h, (index % ncols) * step_w
            image[top:top + patches.shape[1], left:left + patches.shape[2]] = patches[index]
        _draw(image, cmap, axis_off=True)
        return image

    def ShowImages(self, patches, *args, **kwargs):
        """ShowMultiple with values scaled to [0, 1]."""
        patches = np.asarray(patches, dtype=np.float64)
        patches = patches - patches.min()
        patches = patches / (patches.max() + np.finfo(np.float64).eps)
        return self.ShowMultiple(patches, *args, **kwargs)

    def ShowChannels(self, patch, cmap=None, bg_func=np.mean):
        """Each channel of an H x W x C patch as its own grey patch."""
        patch = np.asarray(patch)
        if patch.ndim != 3:
            raise PyCaffe2Error(f"visualize: ShowChannels needs an H x W x C patch, got shape {patch.shape}")
        return self.ShowMultiple(np.moveaxis(patch, 2, 0), cmap=cmap, bg_func=bg_func)


_default_visualizer = PatchVisualizer()


class NHWC:
    """The default visualizer on channel-last data; returns nothing."""

    @staticmethod
    def ShowSingle(*args, **kwargs):
        _default_visualizer.ShowSingle(*args, **kwargs)

    @staticmethod
    def ShowMultiple(*args, **kwargs):
        _default_visualizer.ShowMultiple(*args, **kwargs)

    @staticmethod
    def ShowImages(*args, **kwargs):
        _default_visualizer.ShowImages(*args, **kwargs)

    @staticmethod
    def ShowChannels(*args, **kwargs):
        _default_visualizer.ShowChannels(*args, **kwargs)


class NCHW:
    """The default visualizer on channel-first data (moved last first); returns nothing."""

    @staticmethod
    def ShowSingle(patch, *args, **kwargs):
        _default_visualizer.ShowSingle(ChannelLast(patch), *args, **kwargs)

    @staticmethod
    def ShowMultiple(patch, *args, **kwargs):
        _default_visualizer.ShowMultiple(ChannelLast(patch), *args, **kwargs)

    @staticmethod
    def ShowImages(patch, *args, **kwargs):
        _default_visualizer.ShowImages(ChannelLast(patch), *args, **kwargs)

    @staticmethod
    def ShowChannels(patch, *args, **kwargs):
        _default_visualizer.ShowChannels(ChannelLast(patch), *args, **kwargs)
