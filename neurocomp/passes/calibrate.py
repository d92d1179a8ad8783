"""Calibration: how large u and v grow, and how often populations fire, on training samples.

The quantiser sizes each population's scale so its peak ``|u|``, ``|v|`` times ``headroom`` stays
below 24 bits; the learning-rule pass sizes trace impulses from spike rates. Two ways to measure:

* **float** (networks that do not learn): run the float network on the calibration samples on the
  ``float`` target, in the network's schedule, with u/v probed — the peaks are in float units
  directly (for a population without voltage leak, the positive side of v: :func:`_v_peak`);
* **fixed point, iterated** (plastic networks: weights move while they learn, so the float network
  at its initial weights says little about the peaks): quantise, run the calibration stream with
  learning on (a teacher, if any, silent) on the ``cpu`` target, read the integer peaks and the
  spike rates back into float units, quantise again — until the peaks fit ``headroom`` (at most six
  rounds).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np

from neurocomp.backends import get_backend
from neurocomp.backends.stream_engine import run_stream
from neurocomp.ir import Network, RateEncoding
from neurocomp.ir.schedule import Schedule, to_stream
from neurocomp.passes.quantize import quantize_network
from neurocomp.passes.quantize_rules import quantize_rules, supervised_projections
from neurocomp.targets import FixedPointFormat

MAX_ROUNDS = 6


@dataclass(frozen=True)
class Calibration:
    peaks: Dict[str, Tuple[float, float]]          # population -> (max |u|, max |v|), float units
    rates: Dict[str, float] = field(default_factory=dict)   # population/input -> busiest neuron's spikes/step
    method: str = "float"
    samples: int = 0


def input_rate(net: Network, stream=None) -> float:
    """The busiest input channel's spikes per step: measured on ``stream``, else the encoding's."""
    if stream is not None:
        return float(np.asarray(stream, dtype=float).mean(axis=0).max())
    if isinstance(net.input.encoding, RateEncoding):
        return net.input.encoding.max_rate
    return 1.0 / max(1, net.timesteps)


def _v_peak(pop, v: np.ndarray) -> float:
    """The |v| the scale must hold. A neuron without voltage leak (``dv = 0``: integrate-and-fire, as a
    converted ANN's) integrates a negative drive without bound — its most negative v grows with the
    number of steps, not with anything the scale should resolve — and Lava clips v at ``-(2**23 - 1)``,
    where it is far below threshold and silent: for such a population only the positive side counts
    (below the clip the fixed-point v reads as the clip, so it needs less input to come back than the
    float one)."""
    if pop.neuron.dv == 0:
        return float(max(np.max(v, initial=0.0), 0.0))
    return float(np.abs(v).max(initial=0.0))


def calibrate(net: Network, fmt: FixedPointFormat, spikes: np.ndarray, schedule: Schedule,
              headroom: float = 2.0, weight_bits: int = 8, seed: int = 0) -> Calibration:
    """Peaks and rates of ``net`` (float) on calibration samples ``spikes`` ``[n, T, n_in]``."""
    if not net.is_plastic:
        res = get_backend("float").run(net, spikes, schedule, probe=True)
        peaks = {p.name: (float(np.abs(res.states[p.name]["u"]).max(initial=0.0)),
                          _v_peak(p, res.states[p.name]["v"])) for p in net.populations}
        return Calibration(peaks, {}, "float", len(spikes))
    stream = to_stream(np.asarray(spikes, dtype=bool), schedule.rest)
    rates = {net.input.name: input_rate(net, stream)}
    peaks: Dict[str, Tuple[float, float]] = {}
    uv_max = 2 ** (fmt.uv_bits - 1) - 1
    # third-factor rules calibrate with their teacher off (no supervised depression yet)
    silent = {p.name: np.zeros((len(stream), p.synapse.shape[0]), dtype=np.int64)
              for p in supervised_projections(net)} or None
    for attempt in range(MAX_ROUNDS):
        q = quantize_network(net, fmt, peaks, headroom, weight_bits)
        fixed, _ = quantize_rules(q, rates, seed)
        res = run_stream(fixed, stream, teacher=silent, probe_peaks=True)
        ok = attempt > 0
        for name, trains in res.stream.items():
            rates[name] = max(float(trains.mean(axis=0).max()), 1e-3)
        for pop in net.populations:
            pu, pv = res.peaks[pop.name]                     # integer units
            s = q.scales[pop.name] * 2 ** fmt.act_shift
            peaks[pop.name] = (pu / s, pv / s)               # back to float units
            if max(pu, pv) * headroom > uv_max:
                ok = False
        if ok:
            break
    return Calibration(peaks, rates, "fixed point, iterated on the cpu stream engine", len(spikes))
