"""Helpers shared by the node modules: frozen numpy arrays and shape checks."""
from __future__ import annotations

import math

import numpy as np


def frozen_array(a, dtype) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def as_shape(shape, what: str) -> tuple:
    """A population's or an input's shape as a tuple of positive ints, e.g. ``(784,)`` or ``(1, 28, 28)``."""
    try:
        out = tuple(int(d) for d in shape)
    except TypeError:
        out = (int(shape),)
    if not out or any(d < 1 for d in out):
        raise ValueError(f"{what}: shape {shape!r} must be one or more positive sizes")
    return out


def volume(shape: tuple) -> int:
    return int(math.prod(shape))
