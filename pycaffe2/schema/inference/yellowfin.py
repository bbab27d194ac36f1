"""Inference rule of the yellowfin family: each output keeps the shape of the blob it
replaces; param, moment, g_avg, g2_avg and grad share a shape, lr_avg and mu_avg hold
one element, curv_win curv_win_width and scalars_memory five. The checks take plain
shapes: the kernel calls them too."""
from __future__ import annotations

import math

from pycaffe2.schema.inference import OpView, ShapeError, rule
from pycaffe2.schema.inference.training import _one_element

SCALARS = 5  # the averages kept in scalars_memory


def yellowfin_shapes(shapes: dict, curv_win_width: int) -> None:
    """Raise unless the shapes of YellowFin's inputs (by name) fit together."""
    param = shapes.get("param")
    for name in ("moment", "g_avg", "g2_avg", "grad"):
        shape = shapes.get(name)
        if param is not None and shape is not None and tuple(shape) != tuple(param):
            raise ShapeError(f"{name} {list(shape)} must have param's shape {list(param)}")
    if curv_win_width < 1:
        raise ShapeError(f"curv_win_width must be at least 1, got {curv_win_width}")
    for name, size in (("curv_win", curv_win_width), ("scalars_memory", SCALARS)):
        shape = shapes.get(name)
        if shape is not None and math.prod(shape) != size:
            raise ShapeError(f"{name} must hold {size} elements, got {list(shape)}")


@rule("yellowfin_yellowfin")
def yellowfin(op: OpView, inputs: list) -> list:
    names = ("param", "moment", "lr_avg", "mu_avg", "curv_win", "g_avg", "g2_avg", "scalars_memory", "grad", "iter")
    shapes = {name: None if info is None else info.shape for name, info in zip(names, inputs)}
    for name in ("lr_avg", "mu_avg", "iter"):
        _one_element(inputs[names.index(name)], name)
    yellowfin_shapes(shapes, op.arg("curv_win_width", 20))
    return list(inputs[:8])
