"""The ``cpu`` target for plastic and recurrent networks: a sequential, bit-exact twin of Lava's
``LearningDense`` + ``LIF`` fixed-point process models.

Why a second simulator: :mod:`neurocomp.backends.sim` runs many samples at once, which is only
possible when samples are independent. Learning makes every sample depend on the weights left by the
previous one, and recurrent connections (lateral inhibition) need Lava's real one-step ``Dense``
delay inside a population loop. So this simulator walks one continuous stream of steps — the same
stream :mod:`neurocomp.backends.lava_learning` plays into Lava — vectorised over neurons and synapses.

Per step ``t`` (1-based, Lava's ``time_step``), exactly as Lava's runtime orders it:

1. every population takes the activation its incoming ``Dense`` buffered at ``t-1`` and makes one
   LIF step (:func:`neurocomp.backends.fixed_point.lif_step`, the single home of that arithmetic);
2. every projection buffers ``W @ s_source(t)`` (shifted by ``weight_exp``) for step ``t+1``, with
   the weights as they are *before* this step's learning;
3. every plastic projection runs one learning epoch (``t_epoch = 1``) on the pre spikes ``s_source(t)``
   and post spikes ``s_target(t)`` (Lava's ``s_in_bap``), see :class:`LoihiLearningEngine`.

No state is reset between samples: a stream is ``timesteps`` of input then ``rest`` silent steps per
sample, as one continuous run (Brian2 runs the same stream).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.errors import NeurocompError
from neurocomp.ir import LoihiDense, LoihiLearning, LoihiLIF, Network, Projection

# Lava 0.10, lava/magma/core/learning/constants.py
W_TRACE = 7                      # traces are 7-bit unsigned
W_S_MANT = 4                     # bits of a product's scaling mantissa
W_ACCUMULATOR_U = 15             # the synaptic-update accumulator: 15 bits + sign
W_WEIGHTS_U = 8
ACC_SHIFT = (W_ACCUMULATOR_U + 1) - (W_WEIGHTS_U + 1)   # weights enter the accumulator << 7
ACC_MIN, ACC_MAX = -(2 ** W_ACCUMULATOR_U) - 1, 2 ** W_ACCUMULATOR_U - 1
TRACE_MAX = 2 ** W_TRACE - 1
FACTOR_BITS = {"x0": 1, "y0": 1, "x1": W_TRACE, "y1": W_TRACE, "y2": W_TRACE}   # constants.FACTOR_TO_WIDTH_DICT
THIRD_FACTOR_TAU = np.iinfo(np.uint16).max   # Loihi3FLearningRule: y traces "decay" with tau 65535
CONN_VAR_SEED = 2                # lava ConnVarRandom() default seed (not taken from the rule)


class _LavaRandomStream:
    """One of Lava's learning random streams (``lava/magma/core/learning/random.py``): a seeded numpy
    ``Generator`` drawing one float at construction and one per ``advance()``. Drawing them in blocks
    gives the same sequence (PCG64 doubles), which keeps the per-step cost near zero."""

    def __init__(self, seed: int, advances_per_step: int, block: int = 4096):
        self._rng = np.random.default_rng(seed)
        self._per_step = advances_per_step
        self._block = block
        self._values = self._rng.random(block)
        self._base = 0  # index in the stream of self._values[0]

    def at_step(self, t: int) -> float:
        """The stream's current value during the learning phase of step ``t`` (1-based)."""
        i = self._per_step * t - self._base
        while i >= len(self._values):
            self._base += len(self._values)
            i -= len(self._values)
            self._values = self._rng.random(self._block)
        return float(self._values[i])


def _decay_trace(trace: np.ndarray, tau: float, random: float) -> np.ndarray:
    """Lava's ``_decay_trace`` for one step: ``exp(-1/tau) * x``, floored, +1 where ``random < frac``."""
    if tau == 0:
        return np.zeros_like(trace)
    scaled = np.exp(-1 / np.float64(tau)) * trace
    frac = scaled % 1
    return (np.floor(scaled) + (random < frac)).astype(np.int64)


class LoihiLearningEngine:
    """The learning half of Lava's ``LearningConnectionModelBitApproximate`` for one projection,
    ``t_epoch = 1`` (``lava/magma/core/model/py/connection.py``, ``learning_rule_applier.py``):

    * traces: ``x1`` per pre neuron, ``y1`` per post neuron, each epoch decayed with stochastic
      rounding (one random number per epoch shared by all neurons, from generators seeded with
      ``rng_seed`` / ``rng_seed + 2``), plus their integer impulse where a spike came, clipped to 7 bits;
      with ``third_factor`` the y row 2 is the teacher value received this step, "decayed" with tau 65535;
    * each product of the rule: ``dependency * prod(clip(factor, 7 bits)) * mantissa``, shifted right
      back to 15 bits, left by ``exponent + 7``, saturated; summed into ``w << 7``;
    * the sum is clipped to the sign mode, stochastically rounded to whole weights (one random number
      per epoch, Lava's ``ConnVarRandom`` seed 2), shifted back and clipped to 8 bits.

    Lava's model is itself *bit-approximate* to the chip; this engine matches Lava's model exactly.
    """

    def __init__(self, rule: LoihiLearning, n_post: int, n_pre: int, sign_mode: int):
        self.rule = rule
        self.sign_mode = sign_mode
        self.x1 = np.zeros(n_pre, dtype=np.int64)
        self.y = np.zeros(n_post, dtype=np.int64)     # y1 (2-factor) or y2 (third factor) as last set
        seed = rule.rng_seed
        self._x_decay = _LavaRandomStream(seed, advances_per_step=2)
        self._y_decay = _LavaRandomStream(seed + 2, advances_per_step=2)
        self._conn = _LavaRandomStream(CONN_VAR_SEED, advances_per_step=1)
        self.updates = 0  # learning epochs that changed at least one synapse candidate (energy counts)

    def step(self, t: int, weights: np.ndarray, pre: np.ndarray, post: np.ndarray,
             teacher: Optional[np.ndarray] = None) -> np.ndarray:
        """One learning epoch at step ``t``; returns the new weight mantissas (int64)."""
        rule = self.rule
        x_new = _decay_trace(self.x1, rule.x1_tau, self._x_decay.at_step(t))
        x_new[pre] = np.minimum(x_new[pre] + rule.x1_impulse, TRACE_MAX)
        self.x1 = x_new
        if rule.third_factor:
            received = np.zeros_like(self.y) if teacher is None else np.asarray(teacher, dtype=np.int64)
            # y traces are overwritten by the ports each step; the epoch "decays" them (tau 65535)
            y_new = _decay_trace(received, THIRD_FACTOR_TAU, self._y_decay.at_step(t))
            y_new = np.clip(y_new, 0, TRACE_MAX)
            self.y = received
        else:
            y_new = _decay_trace(self.y, rule.y1_tau, self._y_decay.at_step(t))
            y_new[post] = np.minimum(y_new[post] + rule.y1_impulse, TRACE_MAX)
            self.y = y_new
        r_round = self._conn.at_step(t)
        if not (pre.any() or post.any()):
            return weights  # every product is gated by a spike: nothing changes, rounding is exact
        self.updates += 1
        zeros = np.zeros_like(y_new)[:, np.newaxis]
        dependency = {"x0": pre[np.newaxis, :].astype(np.int64), "y0": post[:, np.newaxis].astype(np.int64)}
        if rule.third_factor:  # y1, y3 ports are unconnected (zeros); y2 is the teacher
            factor_values = {"x1": x_new[np.newaxis, :], "y1": zeros, "y2": y_new[:, np.newaxis]}
        else:                  # y2 has no impulse and tau 0: always zero
            factor_values = {"x1": x_new[np.newaxis, :], "y1": y_new[:, np.newaxis], "y2": zeros}
        factor_values.update(dependency)   # a spike as a factor: "x0 * y0" = both sides spiked this step
        acc = weights.astype(np.int64) << ACC_SHIFT
        for dep, factors, mant, exp in rule.terms:
            prod = np.broadcast_to(dependency[dep], weights.shape).astype(np.int64)
            width = W_S_MANT
            for f in factors:
                bits = FACTOR_BITS[f]
                prod = prod * np.clip(factor_values[f], -(2 ** bits), 2 ** bits - 1)
                width += bits
            prod = prod * mant
            prod = np.right_shift(prod, max(0, width - W_ACCUMULATOR_U))
            prod = np.left_shift(prod, exp + 7)
            acc = np.clip(acc + np.clip(prod, ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
        if self.sign_mode == fxp.EXCITATORY:
            acc = np.maximum(acc, 0)
        elif self.sign_mode == fxp.INHIBITORY:
            acc = np.minimum(acc, 0)
        unit = 2 ** (W_ACCUMULATOR_U - W_WEIGHTS_U)
        whole = acc / unit
        rounded = (np.floor(whole) + (r_round < whole % 1)).astype(np.int64) * unit
        w = rounded >> ACC_SHIFT
        if self.sign_mode == fxp.INHIBITORY:
            return -np.clip(-w, 0, 2 ** W_WEIGHTS_U - 1)
        low = -(2 ** W_WEIGHTS_U) if self.sign_mode == fxp.MIXED else 0
        return np.clip(w, low, 2 ** W_WEIGHTS_U - 1)


@dataclass
class StreamResult:
    """What a continuous run returns: spike trains ``[steps, n]`` per recorded population, the final
    weight mantissas of plastic projections, and the number of learning epochs that did work."""

    target: str
    spikes: Dict[str, np.ndarray]
    weights: Dict[str, np.ndarray] = field(default_factory=dict)
    learning_updates: Dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    peaks: Dict[str, tuple] = field(default_factory=dict)   # population -> (max |u|, max |v|), integers


def check_stream_network(net: Network) -> None:
    """Refuse what neither this simulator nor the Lava learning backend can run, naming the part."""
    for pop in net.populations:
        if not isinstance(pop.neuron, LoihiLIF):
            raise NeurocompError(f"population {pop.name!r}: {type(pop.neuron).__name__} is not fixed point; "
                                 "quantise the network first")
    for proj in net.projections:
        if not isinstance(proj.synapse, LoihiDense):
            raise NeurocompError(f"projection {proj.name!r}: {type(proj.synapse).__name__} is not fixed point")
        rule = proj.plasticity
        if rule is None:
            continue
        if not isinstance(rule, LoihiLearning):
            raise NeurocompError(f"projection {proj.name!r}: plasticity {type(rule).__name__} is not in Loihi form")
        syn = proj.synapse
        if syn.num_weight_bits != 8 or syn.sign_mode not in (fxp.EXCITATORY, fxp.INHIBITORY):
            raise NeurocompError(
                f"projection {proj.name!r}: plastic weights must be 8-bit, excitatory or inhibitory (Lava "
                f"truncates them only once, before learning); got num_weight_bits={syn.num_weight_bits}, "
                f"sign_mode={syn.sign_mode}")


def initial_weights(proj: Projection) -> np.ndarray:
    """The integer weights a projection starts with, as Lava's (Learning)Dense holds them."""
    syn = proj.synapse
    if proj.plasticity is not None:
        # LearningDense only truncates (a no-op at 8 bits) and clips after the first epoch
        return syn.weight.astype(np.int64).copy()
    return fxp.effective_weights(syn)


def run_stream(net: Network, spikes_in: np.ndarray, teacher: Optional[Dict[str, np.ndarray]] = None,
               learn: bool = True, record: Optional[list] = None,
               progress: Optional[Callable[[int, int], None]] = None, probe_peaks: bool = False) -> StreamResult:
    """Run one continuous input stream ``[steps, n_in]`` through a fixed-point network.

    ``teacher[projection]``: ``[steps, n_post]`` third-factor values (0..127) for rules with
    ``third_factor``. ``learn=False`` keeps every weight fixed. ``record``: populations whose spike
    trains to return (default all). ``probe_peaks``: also track each population's peak ``|u|``, ``|v|``.
    """
    import time

    t0 = time.perf_counter()
    check_stream_network(net)
    spikes_in = np.asarray(spikes_in).astype(bool)
    steps, n_in = spikes_in.shape
    if n_in != net.input.size:
        raise NeurocompError(f"input stream has {n_in} channels, network {net.name!r} expects {net.input.size}")
    teacher = teacher or {}
    pops = list(net.populations)
    weights = {p.name: initial_weights(p) for p in net.projections}
    engines = {p.name: LoihiLearningEngine(p.plasticity, *p.synapse.shape, p.synapse.sign_mode)
               for p in net.projections if p.plasticity is not None and learn}
    for name, eng in engines.items():
        if eng.rule.third_factor and name not in teacher:
            raise NeurocompError(f"projection {name!r}: third-factor rule needs a teacher signal")
    u = {p.name: np.zeros(p.size, dtype=np.int64) for p in pops}
    v = {p.name: np.zeros(p.size, dtype=np.int64) for p in pops}
    buffered = {p.name: np.zeros(p.size, dtype=np.int64) for p in pops}
    record = [p.name for p in pops] if record is None else list(record)
    trains = {name: np.zeros((steps, net.population(name).size), dtype=bool) for name in record}
    incoming = {p.name: net.incoming(p.name) for p in pops}
    plastic = {p.name: p for p in net.projections if p.name in engines}
    emitted = {net.input.name: np.zeros(n_in, dtype=bool)}
    peaks = {p.name: [0, 0] for p in pops}
    for t in range(1, steps + 1):
        emitted[net.input.name] = spikes_in[t - 1]
        for p in pops:
            u[p.name], v[p.name], s = fxp.lif_step(u[p.name], v[p.name], buffered[p.name], p.neuron)
            emitted[p.name] = s
            if probe_peaks:
                pk = peaks[p.name]
                pk[0] = max(pk[0], int(np.abs(u[p.name]).max()))
                # v is read before the reset clears it: the largest value it held this step
                pk[1] = max(pk[1], int(np.abs(v[p.name]).max()), int(p.neuron.vth << fxp.VTH_SHIFT) if s.any() else 0)
        for p in pops:
            a = np.zeros(p.size, dtype=np.int64)
            for proj in incoming[p.name]:
                s = emitted[proj.source]
                if s.any():
                    a = a + fxp.shift_activation(weights[proj.name][:, s].sum(axis=1), proj.synapse.weight_exp)
            buffered[p.name] = a
        for name, eng in engines.items():
            proj = plastic[name]
            y2 = teacher[name][t - 1] if eng.rule.third_factor else None
            weights[name] = eng.step(t, weights[name], emitted[proj.source], emitted[proj.target], y2)
        for name in record:
            trains[name][t - 1] = emitted[name]
        if progress and (t % 1000 == 0 or t == steps):
            progress(t, steps)
    return StreamResult(target="cpu", spikes=trains,
                        weights={n: weights[n] for n in engines} if learn else {},
                        learning_updates={n: e.updates for n, e in engines.items()},
                        seconds=time.perf_counter() - t0,
                        peaks={n: tuple(pk) for n, pk in peaks.items()} if probe_peaks else {})


def with_weights(net: Network, weights: Dict[str, np.ndarray], keep_rules: bool = True) -> Network:
    """``net`` with the given (learned) weight mantissas in its projections; ``keep_rules=False``
    also switches learning off (fixed weights), for evaluation."""
    projs = []
    for proj in net.projections:
        if proj.name in weights:
            syn = proj.synapse
            proj = Projection(proj.name, proj.source, proj.target,
                              LoihiDense(weights[proj.name], syn.num_weight_bits, syn.weight_exp, syn.sign_mode),
                              proj.plasticity if keep_rules else None)
        projs.append(proj)
    return net.replace(projections=projs)


def freeze(net: Network, weights: Dict[str, np.ndarray]) -> Network:
    """``net`` with learned weights written into its plastic projections and learning switched off."""
    return with_weights(net, weights, keep_rules=False)
