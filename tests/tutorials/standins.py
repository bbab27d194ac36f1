"""Stand-ins for what Caffe2's tutorials import but a test machine lacks or must not reach.

- The network (`requests`, `urllib2`, `urllib.request.urlopen`): answered from a dict
  of address -> bytes the test gives; any other address raises ConnectionError naming it.
- Notebook and plotting modules (`IPython.display`, `matplotlib` when not installed):
  no-ops, so a tutorial's plots cost nothing and draw nothing.
- Python 2 names (`StringIO`, `urllib2`) the tutorials' older cells import.

`install` puts them in sys.modules and returns what it replaced; `uninstall` restores it.
"""
from __future__ import annotations

import importlib.util
import io
import sys
import types


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


def standin_modules(downloads: dict[str, bytes]) -> dict[str, types.ModuleType]:
    requests, urllib2 = _network(downloads)
    string_io = types.ModuleType("StringIO")
    string_io.StringIO = io.BytesIO  # Python 2's StringIO took bytes (r.content)
    display = _noop_module("IPython.display")
    modules = {"requests": requests, "urllib2": urllib2, "StringIO": string_io,
               "IPython": _noop_module("IPython", display=display), "IPython.display": display}
    if importlib.util.find_spec("matplotlib") is None:
        pyplot = _pyplot()
        modules.update({"matplotlib": _noop_module("matplotlib", pyplot=pyplot), "matplotlib.pyplot": pyplot})
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
