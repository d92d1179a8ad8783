"""Neuron models: the float LIF and its Loihi fixed-point form.

Both are Lava's current-based LIF, one step = one ``dt``::

    u = u * (1 - du) + a_in
    v = v * (1 - dv) + u + bias
    s = v > vth;  v = 0 where s

The float node holds fractions (``du``, ``dv`` in [0, 1]) and float units; the fixed-point node the
integers Lava's ``PyLifModelBitAcc`` takes (12-bit decays, 17-bit threshold used as ``vth << 6``,
13-bit bias mantissa with a 3-bit exponent; u and v 24-bit, u wraps, v saturates).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from neurocomp.ir._common import frozen_array


@dataclass(frozen=True)
class LIF:
    """Float current-based LIF, one step = one ``dt``.

    ``du``/``dv`` are the fractions of current/voltage lost per step (0 = no decay, 1 = no memory);
    ``vth`` the threshold, ``bias`` a constant input per neuron (float, same units as v).
    """

    size: int
    du: float
    dv: float
    vth: float
    bias: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self):
        b = np.zeros(self.size) if self.bias is None else self.bias
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), (self.size,))
        object.__setattr__(self, "bias", frozen_array(b, np.float64))


@dataclass(frozen=True)
class LoihiLIF:
    """Loihi fixed-point LIF as Lava's ``PyLifModelBitAcc`` runs it.

    ``du``/``dv``: 12-bit decays (0..4095); ``vth``: 17-bit threshold mantissa compared as
    ``v > vth << 6``; ``bias_mant`` 13-bit signed mantissa per neuron, ``bias_exp`` 3-bit exponent.
    """

    size: int
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray = None  # type: ignore[assignment]
    bias_exp: int = 0

    def __post_init__(self):
        b = np.zeros(self.size, dtype=np.int64) if self.bias_mant is None else self.bias_mant
        b = np.broadcast_to(np.asarray(b, dtype=np.int64), (self.size,))
        object.__setattr__(self, "bias_mant", frozen_array(b, np.int64))
        for name in ("du", "dv", "vth", "bias_exp"):
            object.__setattr__(self, name, int(getattr(self, name)))


Neuron = Union[LIF, LoihiLIF]
FLOAT_NEURONS = (LIF,)
FIXED_NEURONS = (LoihiLIF,)
