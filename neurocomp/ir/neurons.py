"""Neuron models: the float LIF and its Loihi fixed-point form; the adaptive-threshold ATRLIF and its
fixed-point form.

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
from typing import Optional, Union

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


def _per_neuron(values, size: int, dtype, what: str) -> Optional[np.ndarray]:
    if values is None:
        return None
    a = np.asarray(values, dtype=dtype)
    if a.ndim > 1 or (a.ndim == 1 and a.shape != (size,)):
        raise ValueError(f"{what}: shape {a.shape}, expected one value per neuron ({size},)")
    return frozen_array(np.broadcast_to(a, (size,)), dtype)


@dataclass(frozen=True)
class ATRLIF:
    """Float adaptive-threshold-and-refractoriness LIF, Lava's ``ATRLIF`` (``PyATRLIFModelFloat``)::

        i = (1 - di) * i + a_in
        v = (1 - dv) * v + i + bias
        theta = (1 - dtheta) * (theta - theta0) + theta0
        r = (1 - dr) * r
        s = v - r >= theta;   where s: r += 2 * theta, theta += theta_step

    ``v`` is never reset: the refractory state ``r`` (a jump of twice the threshold, decaying by ``dr``)
    takes its place. ``theta_init``: each neuron's threshold at the start of a run (a learned threshold
    carried into evaluation; ``None`` = ``theta0``).
    """

    size: int
    di: float
    dv: float
    dtheta: float
    dr: float
    theta0: float
    theta_step: float
    bias: np.ndarray = None  # type: ignore[assignment]
    theta_init: Optional[np.ndarray] = None

    def __post_init__(self):
        b = np.zeros(self.size) if self.bias is None else self.bias
        object.__setattr__(self, "bias", frozen_array(np.broadcast_to(np.asarray(b, dtype=np.float64),
                                                                      (self.size,)), np.float64))
        object.__setattr__(self, "theta_init", _per_neuron(self.theta_init, self.size, np.float64,
                                                           "ATRLIF.theta_init"))
        for name in ("di", "dv", "dtheta", "dr", "theta0", "theta_step"):
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class LoihiATRLIF:
    """ATRLIF in the integers Lava's ``PyATRLIFModelFixed`` takes (:mod:`neurocomp.backends.atrlif`).

    ``di``, ``dv``, ``dtheta``, ``dr``: 12-bit decays (0..4095; Lava is given ``d / 4096`` and adds
    Loihi's 1-bit offset to the current's decay, as for the LIF); ``theta0``/``theta_step``: 12-bit
    threshold and per-spike increment, used as ``<< 6``; ``bias_mant``/``bias_exp`` as the LIF's.
    ``theta_init``: per-neuron threshold (already ``<< 6``, int) written into the process after a run's
    first step (Lava's model starts every run at ``theta0 << 6``); ``None`` = ``theta0 << 6``.
    """

    size: int
    di: int
    dv: int
    dtheta: int
    dr: int
    theta0: int
    theta_step: int
    bias_mant: np.ndarray = None  # type: ignore[assignment]
    bias_exp: int = 0
    theta_init: Optional[np.ndarray] = None

    def __post_init__(self):
        b = np.zeros(self.size, dtype=np.int64) if self.bias_mant is None else self.bias_mant
        object.__setattr__(self, "bias_mant", frozen_array(np.broadcast_to(np.asarray(b, dtype=np.int64),
                                                                           (self.size,)), np.int64))
        object.__setattr__(self, "theta_init", _per_neuron(self.theta_init, self.size, np.int64,
                                                           "LoihiATRLIF.theta_init"))
        for name in ("di", "dv", "dtheta", "dr", "theta0", "theta_step", "bias_exp"):
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("di", "dv", "dtheta", "dr"):
            if not 0 <= getattr(self, name) <= 4095:
                raise ValueError(f"LoihiATRLIF.{name}={getattr(self, name)}: a 12-bit decay (0..4095)")
        for name in ("theta0", "theta_step"):
            if not 0 <= getattr(self, name) <= 4095:
                raise ValueError(f"LoihiATRLIF.{name}={getattr(self, name)}: Lava's ATRLIF takes 12 bits (0..4095)")


Neuron = Union[LIF, LoihiLIF, ATRLIF, LoihiATRLIF]
FLOAT_NEURONS = (LIF, ATRLIF)
FIXED_NEURONS = (LoihiLIF, LoihiATRLIF)
