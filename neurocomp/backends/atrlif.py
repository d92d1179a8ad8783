"""Lava 0.10's ATRLIF (adaptive threshold and refractoriness LIF) in numpy: the one home of its
fixed-point semantics here, read against ``lava/proc/atrlif/models.py`` (``PyATRLIFModelFixed``).

Per step, in Lava's order (every array int32 in Lava; the wrap-arounds are emulated where they happen):

1. ``a = a_in << 6`` (the InPort's int32 values times 64, int32);
2. ``i = int32(sign(p) * (|p| >> 12) + a)`` with ``p = i * (4096 - (di + 1))`` (Lava is given
   ``delta_i = di / 4096`` and adds Loihi's 1-bit offset), then the single 24-bit wrap of the LIF's
   current: ``i > 2**23 -> i - 2**24``, ``i <= -2**23 -> i + 2**24``;
3. ``v = clip(int32(sign(q) * (|q| >> 12) + i + bias), ±(2**23 - 1))``, ``q = v * (4096 - dv)``,
   ``bias = bias_mant << bias_exp``;
4. ``theta = int32(int32(sign(d) * (|d| >> 12)) + theta0 << 6)``, ``d = int32(theta - theta0 << 6) *
   (4096 - dtheta)``: the threshold relaxes to ``theta0 << 6`` (no clip);
5. ``r = int32(sign(e) * (|e| >> 12))``, ``e = r * (4096 - dr)`` (no clip);
6. spike where ``int32(v - r) >= theta``; there ``r = int32(r + int32(2 * theta))`` and
   ``theta = int32(theta + theta_step << 6)``. ``v`` is never reset.

Lava's model sets ``theta = theta0 << 6`` for every neuron at the first step of a run, whatever the
process was given (``scale_threshold``); a per-neuron threshold (``LoihiATRLIF.theta_init``, a learned
one) is written into the process's ``theta`` Var after that first step (:func:`neurocomp.backends.lava.
run_lava`) — so here too step 1 runs with ``theta0 << 6`` and ``theta_init`` replaces ``theta`` after it.

The float model is Lava's ``PyATRLIFModelFloat`` (same order, no rounding), its threshold starting at
``theta0`` (or ``theta_init``) from the first step.

ATRLIF has no reset-interval variant in Lava (``LIFReset`` has no ATRLIF twin), so samples cannot be
separated by resets: ATRLIF networks run on the stream schedule (samples separated by silent rest
steps, :func:`neurocomp.ir.schedule.schedule_problem`).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from neurocomp.backends.fixed_point import wrap_int32
from neurocomp.ir import ATRLIF, LoihiATRLIF
from neurocomp.ir.loihi import ACT_SHIFT, DECAY_SHIFT, DECAY_UNITY, DS_OFFSET, MAX_UV

THETA_SHIFT = 6             # theta0 and theta_step are used << 6 (Lava's theta_unity)
THETA_BITS = 12             # theta_0, theta_step: LavaPyType(int, np.uint16, precision=12)


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap of any integers (as int64)."""
    return wrap_int32(np.asarray(x, dtype=np.int64))


def _decay(x: np.ndarray, keep: int) -> np.ndarray:
    """Lava's ``sign(x * keep) * (|x * keep| >> 12)`` in int64 (exact: ``|x| < 2**32``, ``keep <= 4096``)."""
    p = x * keep
    return np.sign(p) * (np.abs(p) >> DECAY_SHIFT)


def keeps(neuron: LoihiATRLIF) -> tuple:
    """The four decay multipliers ``(keep_i, keep_v, keep_theta, keep_r)`` out of 4096."""
    return (DECAY_UNITY - (neuron.di + DS_OFFSET), DECAY_UNITY - neuron.dv, DECAY_UNITY - neuron.dtheta,
            DECAY_UNITY - neuron.dr)


def effective_bias(neuron: LoihiATRLIF) -> np.ndarray:
    """``bias_mant << bias_exp`` as Lava's int32 ``scale_bias`` computes it (int64)."""
    b = neuron.bias_mant.astype(np.int64)
    e = neuron.bias_exp
    return wrap32(b << e) if e >= 0 else b >> -e


def base_threshold(neuron: LoihiATRLIF) -> int:
    """``theta0 << 6``: where every run's threshold starts, and what it relaxes to."""
    return int(wrap32(np.int64(neuron.theta0) << THETA_SHIFT))


def atrlif_step(i, v, theta, r, a_in, neuron: LoihiATRLIF):
    """One step of Lava's ``PyATRLIFModelFixed`` on int64 arrays ``[..., n]`` (the state as Lava's int32
    Vars hold it, ``a_in`` what the InPort received); returns ``(i, v, theta, r, spikes)``."""
    ki, kv, kt, kr = keeps(neuron)
    th0 = base_threshold(neuron)
    i = np.asarray(i, dtype=np.int64)
    a = wrap32(wrap32(a_in) << ACT_SHIFT)
    i = wrap32(_decay(i, ki) + a)
    i = np.where(i > MAX_UV, i - 2 * MAX_UV, i)
    i = np.where(i <= -MAX_UV, i + 2 * MAX_UV, i)
    v = wrap32(_decay(np.asarray(v, dtype=np.int64), kv) + i + effective_bias(neuron))
    v = np.clip(v, 1 - MAX_UV, MAX_UV - 1)
    theta = wrap32(wrap32(_decay(wrap32(np.asarray(theta, dtype=np.int64) - th0), kt)) + th0)
    r = wrap32(_decay(np.asarray(r, dtype=np.int64), kr))
    s = wrap32(v - r) >= theta
    r = np.where(s, wrap32(r + wrap32(2 * theta)), r)
    theta = np.where(s, wrap32(theta + (int(neuron.theta_step) << THETA_SHIFT)), theta)
    return i, v, theta, r, s


def float_step(i, v, theta, r, a_in, neuron: ATRLIF):
    """One step of Lava's ``PyATRLIFModelFloat`` (float64)."""
    i = (1 - neuron.di) * i + a_in
    v = (1 - neuron.dv) * v + i + neuron.bias
    theta = (1 - neuron.dtheta) * (theta - neuron.theta0) + neuron.theta0
    r = (1 - neuron.dr) * r
    s = (v - r) >= theta
    r = np.where(s, r + 2 * theta, r)
    theta = np.where(s, theta + neuron.theta_step, theta)
    return i, v, theta, r, s


class AtrlifState:
    """One ATRLIF population's state across a stream, fixed point or float: ``step(a_in)`` advances it
    one step and returns ``(i, v, spikes)`` (``i`` in the LIF's ``u`` place); ``theta``/``r`` are
    readable at any time. Step 1 runs from ``theta0`` (Lava's first-step overwrite); ``theta_init``, if
    the neuron has one, replaces the threshold after it."""

    def __init__(self, neuron):
        self.neuron = neuron
        self.fixed = isinstance(neuron, LoihiATRLIF)
        n, dtype = neuron.size, (np.int64 if self.fixed else np.float64)
        self.i = np.zeros(n, dtype=dtype)
        self.v = np.zeros(n, dtype=dtype)
        self.r = np.zeros(n, dtype=dtype)
        if self.fixed:
            self.theta = np.full(n, base_threshold(neuron), dtype=np.int64)
        else:
            self.theta = (np.array(neuron.theta_init, dtype=np.float64) if neuron.theta_init is not None
                          else np.full(n, neuron.theta0))
        self.steps = 0

    def step(self, a_in: np.ndarray):
        step = atrlif_step if self.fixed else float_step
        self.i, self.v, self.theta, self.r, s = step(self.i, self.v, self.theta, self.r, a_in, self.neuron)
        self.steps += 1
        if self.fixed and self.steps == 1 and self.neuron.theta_init is not None:
            self.theta = self.neuron.theta_init.astype(np.int64).copy()
        return self.i, self.v, s


def stream_states(populations) -> Dict[str, AtrlifState]:
    """``{name: AtrlifState}`` for the ATRLIF populations among ``populations``."""
    return {p.name: AtrlifState(p.neuron) for p in populations if isinstance(p.neuron, (ATRLIF, LoihiATRLIF))}


def is_adaptive(neuron) -> bool:
    return isinstance(neuron, (ATRLIF, LoihiATRLIF))


def lava_kwargs(neuron: LoihiATRLIF, name: Optional[str] = None) -> dict:
    """The keyword arguments of Lava's ``ATRLIF`` process for a :class:`LoihiATRLIF` population (decays
    as the fractions ``d / 4096`` its fixed model multiplies back by 4096, exactly)."""
    th0 = base_threshold(neuron)
    return dict(shape=(neuron.size,), i=0, v=0, r=0, s=0, theta=th0,
                delta_i=neuron.di / DECAY_UNITY, delta_v=neuron.dv / DECAY_UNITY,
                delta_theta=neuron.dtheta / DECAY_UNITY, delta_r=neuron.dr / DECAY_UNITY,
                theta_0=neuron.theta0, theta_step=neuron.theta_step,
                bias_mant=neuron.bias_mant.astype(np.int32), bias_exp=neuron.bias_exp, name=name)


def run_population(neuron, a_in: np.ndarray) -> Dict[str, np.ndarray]:
    """Step one population through activations ``a_in`` ``[steps, n]`` (what its InPort receives each
    step); returns every state variable after every step, ``{"i", "v", "theta", "r", "s"}`` ``[steps, n]``."""
    state = AtrlifState(neuron)
    out = {k: [] for k in ("i", "v", "theta", "r", "s")}
    for a in np.asarray(a_in):
        _, _, s = state.step(a)
        for k, x in (("i", state.i), ("v", state.v), ("theta", state.theta), ("r", state.r), ("s", s)):
            out[k].append(np.array(x))
    return {k: np.array(x) for k, x in out.items()}


def with_thresholds(net, thresholds: Optional[Dict[str, np.ndarray]] = None, freeze: bool = False):
    """``net`` with learned thresholds as its ATRLIF populations' ``theta_init`` (``thresholds[pop]``, in
    the populations' own units: ints ``<< 6`` for :class:`LoihiATRLIF`, floats for :class:`ATRLIF`);
    ``freeze``: every ATRLIF's adaptation off too (``theta_step = dtheta = 0``: the threshold stays where
    learning left it, as Diehl & Cook test their network)."""
    from dataclasses import replace

    from neurocomp.ir import Population
    thresholds = thresholds or {}
    pops = []
    for p in net.populations:
        n = p.neuron
        if is_adaptive(n) and (p.name in thresholds or freeze):
            kw = {"theta_init": np.asarray(thresholds[p.name])} if p.name in thresholds else {}
            if freeze:
                kw.update(theta_step=0, dtheta=0)
            p = Population(p.name, replace(n, **kw), shape=p.shape)
        pops.append(p)
    return net.replace(populations=pops)
