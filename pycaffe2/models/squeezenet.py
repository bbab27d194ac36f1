"""SqueezeNet from Caffe2's model zoo: `init_net` and `predict_net` (NetDefs) read from
<models folder>/squeezenet when first asked for (see pycaffe2.models)."""
from __future__ import annotations

from pycaffe2.models import zoo_attribute


def __getattr__(attribute: str):
    return zoo_attribute("squeezenet", attribute)
