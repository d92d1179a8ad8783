"""Batched simulation of a layered feed-forward IR network — float or Loihi fixed point.

Sample timing follows the Lava pipeline neurocomp builds (see ``backends/lava_sim.py``): a population
at depth ``d`` runs sample ``k`` during its own window of ``timesteps`` steps, starting ``d`` steps
after the input did, with its state zeroed at the window start (``LIFReset`` with a staggered
offset). Because Lava's ``Dense`` delays by exactly one step, the population at depth ``d`` sees at
window step ``t`` what depth ``d-1`` emitted at its window step ``t``. So per sample the network is
simply evaluated step by step, layer by layer — and samples are independent, which is what lets this
simulator run a whole batch at once and still equal Lava spike for spike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from neurocomp import fixed_point as fxp
from neurocomp.errors import NeurocompError
from neurocomp.ir import LIF, Dense, LoihiDense, LoihiLIF, Network


@dataclass
class RunResult:
    """What a target returns for a batch of samples.

    ``counts[pop]``: spike counts per sample and neuron ``[samples, n]``;
    ``spikes[pop]``: full trains ``[samples, timesteps, n]`` when recorded;
    ``states[pop]``: ``{"u": [samples, timesteps, n], "v": ...}`` when probed.
    """

    target: str
    output: str
    counts: Dict[str, np.ndarray]
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    states: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    input_spikes: Optional[np.ndarray] = None

    @property
    def predictions(self) -> np.ndarray:
        """Class = output neuron with most spikes (lowest index wins ties, on every target)."""
        return np.argmax(self.counts[self.output], axis=1)

    def accuracy(self, labels: np.ndarray) -> float:
        return float(np.mean(self.predictions == np.asarray(labels)))


def layer_order(net: Network) -> list:
    """Populations in execution order; raises if the network is not strictly layered feed-forward."""
    depth = {net.input.name: 0}
    order = []
    remaining = list(net.populations)
    while remaining:
        ready = [p for p in remaining
                 if all(proj.source in depth for proj in net.incoming(p.name)) and net.incoming(p.name)]
        if not ready:
            names = ", ".join(p.name for p in remaining)
            raise NeurocompError(
                f"network {net.name!r}: populations {names} are recurrent or unreachable from the input; "
                "the batched simulator takes layered feed-forward networks")
        for p in ready:
            ds = {depth[proj.source] for proj in net.incoming(p.name)}
            if len(ds) != 1:
                raise NeurocompError(
                    f"population {p.name!r}: inputs from different depths {sorted(ds)} (skip connections) "
                    "are not supported: Lava's one-step Dense delay would misalign them")
            depth[p.name] = ds.pop() + 1
            order.append(p)
            remaining.remove(p)
    return order


def population_depths(net: Network) -> Dict[str, int]:
    depth = {net.input.name: 0}
    for p in layer_order(net):
        depth[p.name] = depth[net.incoming(p.name)[0].source] + 1
    return depth


def _activation(s: np.ndarray, syn, w_eff) -> np.ndarray:
    if isinstance(syn, Dense):
        return s @ w_eff.T
    # exact integer sum: |sum| <= n_pre * 256 < 2**53, so float64 BLAS is exact; spikes are 0/1
    a = np.rint(s @ w_eff.T).astype(np.int64)
    return fxp.shift_activation(a, syn.weight_exp)


def simulate(net: Network, spikes_in: np.ndarray, record: bool = False, probe: bool = False,
             target: str = "sim", batch_size: int = 1024) -> RunResult:
    """Run input spike trains ``[samples, timesteps, n_in]`` through ``net``.

    Float networks (:class:`LIF`/:class:`Dense`) use Lava's float LIF semantics in float64; fixed-point
    ones (:class:`LoihiLIF`/:class:`LoihiDense`) Lava's bit-accurate integer semantics.
    """
    spikes_in = np.asarray(spikes_in)
    n_samples, steps, n_in = spikes_in.shape
    if n_in != net.input.size:
        raise NeurocompError(f"input has {n_in} features, network {net.name!r} expects {net.input.size}")
    order = layer_order(net)
    weights = {}
    for proj in net.projections:
        syn = proj.synapse
        w = syn.weight if isinstance(syn, Dense) else fxp.effective_weights(syn)
        weights[proj.name] = w.astype(np.float64)
    names = [p.name for p in order]
    counts = {n: np.zeros((n_samples, net.population(n).size), dtype=np.int64) for n in names}
    trains = {n: np.zeros((n_samples, steps, net.population(n).size), dtype=bool) for n in names} if record else {}
    states = ({n: {k: np.zeros((n_samples, steps, net.population(n).size),
                              dtype=np.float64 if isinstance(net.population(n).neuron, LIF) else np.int64)
                   for k in ("u", "v")} for n in names} if probe else {})
    for lo in range(0, n_samples, batch_size):
        hi = min(lo + batch_size, n_samples)
        b = hi - lo
        u = {}
        v = {}
        for p in order:
            dt = np.float64 if isinstance(p.neuron, LIF) else np.int64
            u[p.name] = np.zeros((b, p.size), dtype=dt)
            v[p.name] = np.zeros((b, p.size), dtype=dt)
        for t in range(steps):
            out = {net.input.name: spikes_in[lo:hi, t].astype(np.float64)}
            for p in order:
                a = sum(_activation(out[proj.source], proj.synapse, weights[proj.name])
                        for proj in net.incoming(p.name))
                neuron = p.neuron
                if isinstance(neuron, LIF):
                    uu = u[p.name] * (1 - neuron.du) + a
                    vv = v[p.name] * (1 - neuron.dv) + uu + neuron.bias
                    s = vv > neuron.vth
                    vv = np.where(s, 0.0, vv)
                elif isinstance(neuron, LoihiLIF):
                    uu, vv, s = fxp.lif_step(u[p.name], v[p.name], a, neuron)
                else:
                    raise NeurocompError(f"population {p.name!r}: unsupported neuron {type(neuron).__name__}")
                if probe:
                    # after the reset, as Lava's u/v Vars hold them at the end of the step
                    states[p.name]["u"][lo:hi, t] = uu
                    states[p.name]["v"][lo:hi, t] = vv
                u[p.name], v[p.name] = uu, vv
                counts[p.name][lo:hi] += s
                if record:
                    trains[p.name][lo:hi, t] = s
                out[p.name] = s.astype(np.float64)
    return RunResult(target=target, output=net.output, counts=counts, spikes=trains, states=states,
                     input_spikes=spikes_in if record else None)
