"""Stand-ins for what Caffe2's tutorials import but a test machine lacks or must not reach.

- The network (`requests`, `urllib2`, `urllib.request.urlopen`): answered from a dict
  of address -> bytes the test gives; any other address raises ConnectionError naming it.
- Notebook and plotting modules (`IPython.display`, `matplotlib` when not installed):
  no-ops, so a tutorial's plots cost nothing and draw nothing.
- Python 2 names (`StringIO`, `urllib2`) the tutorials' older cells import.
- `skimage` when not installed: io.imread of the PNGs `write_png` makes (any name),
  img_as_float and transform.resize (bilinear), NumPy only. `skimage_module()` is
  whichever one a tutorial gets, for a test to compute what it expects.

`install` puts them in sys.modules and returns what it replaced; `uninstall` restores it.
"""
from __future__ import annotations

import importlib
import importlib.util
import io
import struct
import sys
import types
import zlib

import numpy as np


class NoOp:
    """Any attribute, call, index or iteration of a plot gives another NoOp."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return NoOp()

    def __call__(self, *args, **kwargs):
        return NoOp()

    def __getitem__(self, key):
        return NoOp()

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


def _noop_module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__getattr__ = lambda attr: NoOp()
    module.__path__ = []
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def _pyplot() -> types.ModuleType:
    def subplots(nrows=1, ncols=1, **kwargs):
        """As matplotlib's: one Axes, a row of them, or (both counts over 1) rows of them."""
        if nrows > 1 and ncols > 1:
            return NoOp(), [[NoOp() for _ in range(ncols)] for _ in range(nrows)]
        count = nrows * ncols
        return NoOp(), (NoOp() if count == 1 else [NoOp() for _ in range(count)])
    return _noop_module("matplotlib.pyplot", subplots=subplots)


class _Response:
    def __init__(self, url: str, content: bytes):
        self.url, self.content, self.status_code = url, content, 200
        self.raw = io.BytesIO(content)
        self.text = content.decode("utf-8", "replace")

    def read(self, *size):
        return self.raw.read(*size)

    def readlines(self):
        return self.raw.readlines()

    def __iter__(self):
        return iter(self.raw.readlines())

    def iter_content(self, chunk_size=1 << 16):
        for start in range(0, len(self.content), chunk_size):
            yield self.content[start:start + chunk_size]

    def raise_for_status(self):
        return None

    def close(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _network(downloads: dict[str, bytes]):
    def fetch(url, *args, **kwargs):
        url = getattr(url, "full_url", url)
        if url not in downloads:
            raise ConnectionError(f"the tutorial tried to download {url}; the test gives no stand-in for it")
        return _Response(url, downloads[url])
    requests = types.ModuleType("requests")
    requests.get = fetch
    urllib2 = types.ModuleType("urllib2")
    urllib2.urlopen = fetch
    return requests, urllib2


_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> channels (grey, RGB, RGBA)


def write_png(path, image: np.ndarray) -> None:
    """uint8 [H, W] or [H, W, 3 | 4] as a PNG (no filtering) that any reader takes."""
    image = np.asarray(image, np.uint8)
    height, width = image.shape[:2]
    colour = {v: k for k, v in _PNG_CHANNELS.items()}[1 if image.ndim == 2 else image.shape[2]]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(_PNG + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes()))
                + chunk(b"IEND", b""))


def _imread(path) -> np.ndarray:
    """The PNGs write_png makes: 8-bit, not interlaced, unfiltered rows."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_PNG):
        raise ValueError(f"the skimage stand-in reads only write_png's PNGs; {path} is not a PNG")
    chunks, at = {}, len(_PNG)
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        chunks[kind] = chunks.get(kind, b"") + data[at + 8:at + 8 + length]
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    if depth != 8 or colour not in _PNG_CHANNELS or interlace:
        raise ValueError(f"the skimage stand-in reads 8-bit grey/RGB/RGBA PNGs; {path} is not one")
    channels = _PNG_CHANNELS[colour]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width * channels + 1)
    if rows[:, 0].any():
        raise ValueError(f"the skimage stand-in reads unfiltered PNGs (write_png's); {path} has filtered rows")
    image = rows[:, 1:].reshape(height, width, channels)
    return image[:, :, 0] if channels == 1 else image


def _img_as_float(image) -> np.ndarray:
    image = np.asarray(image)
    return image / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)


def _resize(image, output_shape, preserve_range=False, **kwargs) -> np.ndarray:
    """Bilinear, sampling at pixel centres as skimage does (order=1, edges clamped); the
    axes after the first two are kept."""
    image = np.asarray(image, np.float64) if preserve_range else _img_as_float(image)
    rows, cols = (int(n) for n in output_shape[:2])

    def grid(n_out, n_in):
        coords = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(coords).astype(int)
        return low, np.minimum(low + 1, n_in - 1), coords - low

    r0, r1, fr = grid(rows, image.shape[0])
    c0, c1, fc = grid(cols, image.shape[1])
    fr, fc = fr.reshape((-1,) + (1,) * (image.ndim - 1)), fc.reshape((1, -1) + (1,) * (image.ndim - 2))
    top = image[r0][:, c0] * (1 - fc) + image[r0][:, c1] * fc
    bottom = image[r1][:, c0] * (1 - fc) + image[r1][:, c1] * fc
    return top * (1 - fr) + bottom * fr


def _skimage() -> dict[str, types.ModuleType]:
    io_module = types.ModuleType("skimage.io")
    io_module.imread = _imread
    transform = types.ModuleType("skimage.transform")
    transform.resize = _resize
    skimage = types.ModuleType("skimage")
    skimage.io, skimage.transform, skimage.img_as_float = io_module, transform, _img_as_float
    return {"skimage": skimage, "skimage.io": io_module, "skimage.transform": transform}


def skimage_module() -> types.ModuleType:
    """The skimage a tutorial gets: the installed one, else the stand-in."""
    if importlib.util.find_spec("skimage") is None:
        return _skimage()["skimage"]
    for name in ("skimage", "skimage.io", "skimage.transform"):
        importlib.import_module(name)
    return sys.modules["skimage"]


def standin_modules(downloads: dict[str, bytes]) -> dict[str, types.ModuleType]:
    requests, urllib2 = _network(downloads)
    string_io = types.ModuleType("StringIO")
    string_io.StringIO = io.BytesIO  # Python 2's StringIO took bytes (r.content)
    display = _noop_module("IPython.display")
    modules = {"requests": requests, "urllib2": urllib2, "StringIO": string_io,
               "IPython": _noop_module("IPython", display=display), "IPython.display": display}
    if importlib.util.find_spec("matplotlib") is None:
        pyplot = _pyplot()
        image = _noop_module("matplotlib.image")
        modules.update({"matplotlib": _noop_module("matplotlib", pyplot=pyplot, image=image),
                        "matplotlib.pyplot": pyplot, "matplotlib.image": image})
    if importlib.util.find_spec("skimage") is None:
        modules.update(_skimage())
    return modules


def install(downloads: dict[str, bytes], extra: dict) -> dict:
    modules = standin_modules(downloads)
    modules.update(extra)
    replaced = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    import urllib.request
    replaced["urllib.request.urlopen"] = urllib.request.urlopen
    urllib.request.urlopen = modules["urllib2"].urlopen
    return replaced


def uninstall(replaced: dict) -> None:
    import urllib.request
    urllib.request.urlopen = replaced.pop("urllib.request.urlopen")
    for name, module in replaced.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module
