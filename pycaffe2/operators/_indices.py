"""Index values from a file checked before a kernel uses them: the first one out of
range stops the op with a message naming it (a NumPy IndexError, or a silent wrap of a
negative index, would not)."""
from __future__ import annotations

import numpy as np


def check_in_range(values: np.ndarray, size: int, what: str = "index", span: str | None = None) -> None:
    """Every value in [0, size), else ValueError "<what> <value> is out of range <span>",
    span "[0, size)" unless given."""
    bad = values[(values < 0) | (values >= size)]
    if bad.size:
        raise ValueError(f"{what} {int(bad.reshape(-1)[0])} is out of range {span or f'[0, {size})'}")
