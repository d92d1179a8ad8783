"""Passes over the IR, run in a fixed order by the compile (DESIGN.md's ``Pass(network) -> network``):

1. :mod:`~neurocomp.passes.calibrate` — peaks of u/v and spike rates on training samples;
2. :mod:`~neurocomp.passes.quantize` — one quantiser for every population (float -> Loihi integers);
3. :mod:`~neurocomp.passes.quantize_rules` — learning rules -> Lava's fixed-point learning;
4. :mod:`~neurocomp.passes.place` — populations onto neurocores, with design-rule checks;
5. :mod:`~neurocomp.passes.learn` — the teacher of supervised rules, readouts (learning itself runs on
   a target).

:func:`quantize` runs 1-3, the part every compile shares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from neurocomp.ir import Network
from neurocomp.ir.schedule import Schedule, choose_schedule
from neurocomp.passes.calibrate import Calibration, calibrate
from neurocomp.passes.quantize import LayerQuantization, quantize_network, silent_layers
from neurocomp.passes.quantize_rules import quantize_rules
from neurocomp.targets import FixedPointFormat


@dataclass(frozen=True)
class QuantizedNetwork:
    fixed: Network                  # Loihi integers, learning rules in Lava's form
    layers: List[LayerQuantization]  # one row per population
    rules: List[dict]               # one row per plastic projection
    scales: Dict[str, float]        # population -> S (integer = float x S)
    calibration: Calibration

    @property
    def silent_layers(self) -> List[str]:
        return silent_layers(self.layers)


def adopt_fixed(fixed: Network, float_twin: Network) -> QuantizedNetwork:
    """A source that already is Loihi integers (a netx file, neurocomp's own NIR export): nothing to
    quantise — its integers are kept as they are (re-quantising would change Lava's truncations); the
    rows report them beside ``float_twin``, the float network they stand for (scale 1: Lava's units)."""
    rows = []
    for p in fixed.populations:
        n, f = p.neuron, float_twin.population(p.name).neuron
        inc = fixed.incoming(p.name)
        first = inc[0].synapse if inc else None
        rows.append(LayerQuantization(
            name=p.name, neurons=p.size, synapses=int(sum(np.count_nonzero(q.synapse.weight) for q in inc)),
            scale=1.0, num_weight_bits=getattr(first, "num_weight_bits", 8), weight_exp=getattr(first, "weight_exp", 0),
            sign_mode=getattr(first, "sign_mode", 0) or 0, vth=n.vth, du=n.du, dv=n.dv, bias_exp=n.bias_exp,
            float_vth=f.vth, float_du=f.du, float_dv=f.dv, weight_rel_error=0.0, vth_rel_error=0.0,
            peak_u=0.0, peak_v=0.0, uv_headroom_bits=float("nan")))
    return QuantizedNetwork(fixed, rows, [], {p.name: 1.0 for p in fixed.populations},
                            Calibration({}, {}, "none: the source is already fixed point", 0))


def quantize(net: Network, fmt: FixedPointFormat, calibration_spikes: np.ndarray,
             schedule: Optional[Schedule] = None, headroom: float = 2.0, weight_bits: int = 8,
             seed: int = 0) -> QuantizedNetwork:
    """Calibrate on ``calibration_spikes`` ``[n, T, n_in]`` (laid out by ``schedule``, default: the
    network's own, no rest), quantise every population, then every learning rule (seeded ``seed``)."""
    spikes = np.asarray(calibration_spikes)
    schedule = schedule or choose_schedule(net, spikes.shape[1])
    cal = calibrate(net, fmt, spikes, schedule, headroom, weight_bits, seed)
    q = quantize_network(net, fmt, cal.peaks, headroom, weight_bits)
    fixed, rules = quantize_rules(q, cal.rates, seed)
    return QuantizedNetwork(fixed, q.layers, rules, q.scales, cal)
