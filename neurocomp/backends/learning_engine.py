"""Lava's learning epoch in numpy: the bit-exact twin of ``LearningDense``'s fixed-point learning
(``LearningConnectionModelBitApproximate``), used by the stream engine on every plastic projection.

:class:`LoihiLearningEngine` runs one projection's learning epoch per step (``t_epoch = 1``); the
stream engine (:mod:`neurocomp.backends.stream_engine`) calls it after every step's synaptic
delivery, with the pre and post spikes of that step. Plastic weights live outside the IR while a
network learns; :func:`with_weights` / :func:`freeze` put them back.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.errors import NeurocompError
from neurocomp.ir import LoihiATRLIF, LoihiDense, LoihiLearning, LoihiLIF, Network, Projection
from neurocomp.ir.plasticity import factor_parts

# Lava 0.10, lava/magma/core/learning/constants.py
W_TRACE = 7                      # traces are 7-bit unsigned
W_S_MANT = 4                     # bits of a product's scaling mantissa
W_ACCUMULATOR_U = 15             # the synaptic-update accumulator: 15 bits + sign
W_WEIGHTS_U = 8
ACC_SHIFT = (W_ACCUMULATOR_U + 1) - (W_WEIGHTS_U + 1)   # weights enter the accumulator << 7
ACC_MIN, ACC_MAX = -(2 ** W_ACCUMULATOR_U) - 1, 2 ** W_ACCUMULATOR_U - 1
TRACE_MAX = 2 ** W_TRACE - 1
FACTOR_BITS = {"x0": 1, "y0": 1, "x1": W_TRACE, "y1": W_TRACE, "y2": W_TRACE,   # constants.FACTOR_TO_WIDTH_DICT
               "w": W_WEIGHTS_U + 1}                                                  # the weight: 9-bit signed
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
                name, const = factor_parts(f)     # "w-256": the weight plus a constant (Lava's "(w - 256)")
                bits = FACTOR_BITS[name]
                value = weights.astype(np.int64) + const if name == "w" else factor_values[name]
                prod = prod * np.clip(value, -(2 ** bits), 2 ** bits - 1)
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


def check_stream_network(net: Network) -> None:
    """Refuse what neither this simulator nor the Lava learning backend can run, naming the part."""
    for pop in net.populations:
        if not isinstance(pop.neuron, (LoihiLIF, LoihiATRLIF)):
            raise NeurocompError(f"population {pop.name!r}: {type(pop.neuron).__name__} is not fixed point; "
                                 "quantise the network first")
    from neurocomp.ir.synapses import LoihiConv
    for proj in net.projections:
        if not isinstance(proj.synapse, (LoihiDense, LoihiConv)):
            raise NeurocompError(f"projection {proj.name!r}: {type(proj.synapse).__name__} is not fixed point")
        rule = proj.plasticity
        if rule is None:
            continue
        if isinstance(proj.synapse, LoihiConv):
            raise NeurocompError(f"projection {proj.name!r}: plastic convolutions are not supported")
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


def with_weights(net: Network, weights: Dict[str, np.ndarray], keep_rules: bool = True,
                 thresholds: Optional[Dict[str, np.ndarray]] = None) -> Network:
    """``net`` with the given (learned) weight mantissas in its projections (and learned ATRLIF
    ``thresholds``, :func:`neurocomp.backends.atrlif.with_thresholds`); ``keep_rules=False`` also switches
    learning off (fixed weights; a plastic network's ATRLIF adaptation frozen), for evaluation."""
    from neurocomp.backends.atrlif import with_thresholds
    if thresholds or (not keep_rules and net.is_plastic):
        net = with_thresholds(net, thresholds, freeze=not keep_rules and net.is_plastic)
    projs = []
    for proj in net.projections:
        if proj.name in weights:
            syn = proj.synapse
            proj = Projection(proj.name, proj.source, proj.target,
                              LoihiDense(weights[proj.name], syn.num_weight_bits, syn.weight_exp, syn.sign_mode),
                              proj.plasticity if keep_rules else None)
        projs.append(proj)
    return net.replace(projections=projs)


def freeze(net: Network, weights: Dict[str, np.ndarray], thresholds: Optional[Dict[str, np.ndarray]] = None) -> Network:
    """``net`` with learned weights written into its plastic projections and learning switched off
    (ATRLIF thresholds, learned ones if given, held fixed)."""
    return with_weights(net, weights, keep_rules=False, thresholds=thresholds)
