"""Downloading a model-zoo pair, as Caffe2's `python -m caffe2.python.models.download`.

    python -m pycaffe2.models.download [-i] [-f] MODEL...

Each model's `init_net.pb` and `predict_net.pb` come from the zoo's address
(`--url` to change it) into ./MODEL, or with -i into the models folder
($PYCAFFE2_MODELS or ~/.pycaffe2/models), where `pycaffe2.models.<MODEL>`
finds them. A file is kept only if it parses as a NetDef, and lands under its
name only once whole, so a failed download leaves nothing half-written; an
existing folder is kept unless -f.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.models import NET_FILES, check_model_name, models_dir
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import message_from_bytes

BASE_URL = "https://download.caffe2.ai/models/"
MAX_BYTES = 1 << 30  # no zoo file comes near this; a bigger answer is not a model


def _fetch(url: str, opener) -> bytes:
    with opener(url) as response:
        data = response.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise PyCaffe2Error(f"{url}: more than {MAX_BYTES} bytes; not a model file")
    return data


def download(model: str, folder, force: bool = False, base_url: str = BASE_URL,
             opener=urllib.request.urlopen) -> Path:
    """Download `model`'s two nets into `folder`/`model`; returns that folder."""
    check_model_name(model)
    target = Path(folder) / model
    if target.exists() and not force:
        raise PyCaffe2Error(f"{target} already exists; pass -f (force=True) to download again")
    target.mkdir(parents=True, exist_ok=True)
    for which in NET_FILES:
        url = f"{base_url.rstrip('/')}/{model}/{which}.pb"
        data = _fetch(url, opener)
        _, problem = message_from_bytes(caffe2_pb2.NetDef, data)
        if problem:
            raise PyCaffe2Error(f"{url}: {problem}; nothing written")
        handle, temp = tempfile.mkstemp(dir=target, prefix=f".{which}.")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, target / f"{which}.pb")
    return target


def main(argv=None, opener=urllib.request.urlopen) -> int:
    parser = argparse.ArgumentParser(prog="python -m pycaffe2.models.download", description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="+", help="model-zoo names, e.g. squeezenet")
    parser.add_argument("-i", "--install", action="store_true", help=f"into the models folder ({models_dir()})")
    parser.add_argument("-f", "--force", action="store_true", help="download again over an existing folder")
    parser.add_argument("--url", default=BASE_URL, help="the model zoo's address")
    args = parser.parse_args(argv)
    folder = models_dir() if args.install else Path.cwd()
    for model in args.model:
        try:
            print(f"{model}: downloaded to {download(model, folder, args.force, args.url, opener)}")
        except (PyCaffe2Error, OSError) as exc:
            print(f"{model}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
