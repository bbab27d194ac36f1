"""Caffe2's `models` package: the model zoo's pretrained nets and model builders.

Pretrained pairs (`init_net.pb` + `predict_net.pb`) live in a folder per model
under the models folder: $PYCAFFE2_MODELS, or ~/.pycaffe2/models when unset.
`python -m pycaffe2.models.download -i squeezenet` puts them there (Caffe2
installed them beside its own package; a user folder needs no write access to
site-packages). `from pycaffe2.models import squeezenet` then gives
`squeezenet.init_net` and `squeezenet.predict_net` as NetDefs, read when first
asked for, and a clear error naming the download command when they are absent.

Builders: `resnet` (ResNet-50, ResNeXt, the 32x32 CIFAR ResNets) with brew.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from pycaffe2.errors import PyCaffe2Error
from pycaffe2.files import read_regular_file
from pycaffe2.proto import caffe2_pb2
from pycaffe2.proto.checks import message_from_bytes

NET_FILES = ("init_net", "predict_net")
# One folder name: no separator, no '..', so a model name never leads out of the models folder.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def models_dir() -> Path:
    """The folder that holds one subfolder per downloaded model."""
    configured = os.environ.get("PYCAFFE2_MODELS")
    return Path(configured).expanduser() if configured else Path.home() / ".pycaffe2" / "models"


def check_model_name(name: str) -> None:
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise PyCaffe2Error(f"{name!r} is not a model name (letters, digits, '_', '.', '-'; "
                            "not starting with '.' or '-')")


def model_folder(name: str) -> Path:
    check_model_name(name)
    return models_dir() / name


def load_net_file(name: str, which: str) -> caffe2_pb2.NetDef:
    """`which` (init_net or predict_net) of the downloaded model `name`, parsed."""
    path = model_folder(name) / f"{which}.pb"
    if not os.path.lexists(path):
        raise PyCaffe2Error(f"model {name}: {path} not found. Get the model with "
                            f"`python -m pycaffe2.models.download -i {name}`, or put its init_net.pb and "
                            f"predict_net.pb in {model_folder(name)} (set $PYCAFFE2_MODELS to use "
                            "another models folder)")
    data = read_regular_file(path, PyCaffe2Error)  # a FIFO, a folder or a huge file: refused, named
    net, problem = message_from_bytes(caffe2_pb2.NetDef, data)
    if problem:
        raise PyCaffe2Error(f"model {name}: {path} is not a NetDef pycaffe2 can read: {problem}")
    return net


def zoo_attribute(name: str, attribute: str) -> caffe2_pb2.NetDef:
    """A zoo model module's `init_net` / `predict_net`, read from the models folder."""
    if attribute not in NET_FILES:
        raise AttributeError(f"module pycaffe2.models.{name} has no attribute {attribute!r}")
    return load_net_file(name, attribute)
