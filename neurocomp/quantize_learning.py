"""Float IR -> Loihi fixed point for networks the batched quantiser cannot take: plastic projections
(STDP, supervised depression) and recurrent connections (lateral inhibition).

Neurons and fixed weights follow :mod:`neurocomp.quantize` (same per-population scale ``S``, same
limits, its helpers), with two differences:

* a population fed by a plastic projection gets its scale snapped so that the rule's ``wmax`` lands
  exactly on the top 8-bit mantissa: weights learn over the whole 0..255 range, one integer step
  ("LSB") being ``2**weight_exp / S`` float units;
* the 24-bit headroom is calibrated on the *fixed-point* network itself (the batched float simulator
  cannot run recurrent nets): quantise, run a calibration stream on the ``cpu`` stream simulator,
  and shrink ``S`` while the measured peak ``|u|``, ``|v|`` times ``headroom`` exceeds 24 bits.

Learning rules become :class:`neurocomp.ir.LoihiLearning` in LSB units: a trace ``x1`` of impulse
``i`` stands for ``a = x1 * A / i`` float units, so the potentiation ``Apre`` per pairing is
``i * m * 2**k`` LSB with Lava's scaling mantissa ``m`` (-8..7) and exponent ``k`` (-7..8). The
impulse is as large as the 7-bit trace allows at the expected spike rate (precision), ``m``/``k``
the closest fit; each float -> integer choice is reported with its error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.errors import QuantizationError
from neurocomp.ir import (STDP, LIF, Dense, LoihiDense, LoihiLearning, LoihiLIF, Network, Population, Projection,
                          RateEncoding, SupervisedDepression)
from neurocomp.quantize import (LayerQuantization, _decay_to_int, _max_scale, _snap_scale, dense_float_equivalent,
                                quantize_dense)
from neurocomp.targets import FixedPointFormat

TRACE_MAX = 127
# third-factor rules multiply two 7-bit factors: Lava shifts the product right by 3 bits
# (7 + 7 + 4 - 15), so a teacher value of 8 makes "x1 * y2" exactly "x1"
THIRD_FACTOR_LEVEL = 8
DEFAULT_RATE = 0.1   # spikes per step assumed for a population whose rate we cannot know


def fit_scale(value: float, impulse_cap: int = 0) -> tuple[int, int, int, float]:
    """``value ~ impulse * m * 2**k`` with Lava's ``m`` in -8..7, ``k`` in -7..8, ``1 <= impulse <=
    impulse_cap`` (``impulse_cap=0``: no trace, ``impulse = 1``). Returns ``(impulse, m, k, achieved)``;
    the smallest error wins, then the largest impulse (finest trace)."""
    if value == 0:
        return 0, 0, 0, 0.0
    best = None
    mants = range(1, 8) if value > 0 else range(-8, 0)
    for m in mants:
        for k in range(-7, 9):
            unit = m * 2.0 ** k
            imp = int(round(value / unit)) if impulse_cap else 1
            if not 1 <= imp <= (impulse_cap or 1):
                continue
            achieved = imp * unit
            err = abs(achieved - value) / abs(value)
            key = (round(err, 12), -imp, abs(m))
            if best is None or key < best[0]:
                best = (key, imp, m, k, achieved)
    if best is None:
        raise ValueError(f"{value:.3g} is outside Lava's learning-rate range")
    return best[1], best[2], best[3], best[4]


def impulse_cap(rate: float, tau: float) -> int:
    """Largest trace impulse that keeps a trace fed at ``rate`` spikes/step with time constant ``tau``
    clear of the 7-bit ceiling (mean trace ~ impulse * rate * tau, peaks about 1.5x that)."""
    return int(max(1, min(TRACE_MAX, math.floor(TRACE_MAX / max(1.0, 1.5 * rate * tau)))))


def quantize_rule(rule, lsb: float, name: str, pre_rate: float, post_rate: float, seed: int) -> tuple:
    """A float rule (weights in float units, ``lsb`` float units per integer weight step) -> Lava form."""
    row = {"projection": name, "rule": type(rule).__name__, "weight_lsb": lsb}
    try:
        if isinstance(rule, STDP):
            x_tau = int(np.clip(round(rule.taupre), 1, 255))
            y_tau = int(np.clip(round(rule.taupost), 1, 255))
            xi, xm, xk, xa = fit_scale(rule.Apre / lsb, impulse_cap(pre_rate, x_tau))
            yi, ym, yk, ya = fit_scale(rule.Apost / lsb, impulse_cap(post_rate, y_tau))
            _, cm, ck, ca = fit_scale(-rule.xtar / lsb) if rule.xtar else (0, 0, 0, 0.0)
            _, pm, pk, pa = fit_scale(rule.pre_const / lsb) if rule.pre_const else (0, 0, 0, 0.0)
            terms = []
            if xi:
                terms.append(("y0", ("x1",), xm, xk))
            coincidence = "0"
            if yi:
                terms.append(("x0", ("y1",), ym, yk))
                # Loihi updates the traces before the rule, so a pre spike in a step where the post
                # neuron fires sees y1 with that step's impulse; Brian2 runs on_pre before on_post and
                # does not. Take the impulse back for coincident spikes: + x0 * y0 * |Apost|.
                try:
                    _, om, ok, oa = fit_scale(-ya)
                    terms.append(("x0", ("y0",), om, ok))
                    coincidence = f"({om}) * 2^{ok}"
                except ValueError:
                    oa = 0.0   # below the smallest learning rate: the ordering effect is smaller still
            if cm:
                terms.append(("y0", (), cm, ck))
            if pm:
                terms.append(("x0", (), pm, pk))
            fixed = LoihiLearning(terms, x1_impulse=xi, x1_tau=x_tau, y1_impulse=yi, y1_tau=y_tau, rng_seed=seed)
            row.update({
                "taupre_steps": rule.taupre, "x1_tau": x_tau, "taupost_steps": rule.taupost, "y1_tau": y_tau,
                "Apre_lsb": rule.Apre / lsb, "x1_impulse": xi, "potentiation": f"{xi} * {xm} * 2^{xk}" if xi else "0",
                "Apre_lsb_fixed": xa, "Apost_lsb": rule.Apost / lsb, "y1_impulse": yi,
                "depression": f"{yi} * ({ym}) * 2^{yk}" if yi else "0", "Apost_lsb_fixed": ya,
                "coincidence_term": coincidence, "coincidence_lsb_fixed": oa if yi else 0.0,
                "xtar_lsb": rule.xtar / lsb, "xtar_term": f"({cm}) * 2^{ck}" if cm else "0",
                "xtar_lsb_fixed": -ca + 0.0, "pre_const_lsb": rule.pre_const / lsb,
                "pre_const_term": f"({pm}) * 2^{pk}" if pm else "0", "pre_const_lsb_fixed": pa})
        elif isinstance(rule, SupervisedDepression):
            x_tau = int(np.clip(round(rule.taupre), 1, 255))
            xi, xm, xk, xa = fit_scale(-rule.Apre / lsb, impulse_cap(pre_rate, x_tau))
            fixed = LoihiLearning([("y0", ("x1", "y2"), xm, xk)], x1_impulse=xi, x1_tau=x_tau,
                                  third_factor=True, rng_seed=seed)
            row.update({"taupre_steps": rule.taupre, "x1_tau": x_tau, "Apre_lsb": rule.Apre / lsb,
                        "x1_impulse": xi, "depression": f"{xi} * ({xm}) * 2^{xk} * y2/{THIRD_FACTOR_LEVEL}",
                        "Apre_lsb_fixed": -xa, "teacher_level": THIRD_FACTOR_LEVEL})
        else:
            raise QuantizationError(f"projection {name!r}: cannot quantise plasticity {type(rule).__name__}")
    except ValueError as e:
        raise QuantizationError(f"projection {name!r}: learning rate {e} (weight step {lsb:.3g}); "
                                "raise wmax resolution or the learning rate") from None
    return fixed, row


def _bound(proj: Projection) -> float:
    """The weight bound a plastic projection can reach: ``wmax > 0`` (excitatory) or ``wmin < 0``
    (inhibitory); Lava's learning keeps one sign (its sign mode)."""
    rule = proj.plasticity
    w = proj.synapse.weight
    if rule.wmin == 0 and rule.wmax > 0 and w.min() >= 0:
        return rule.wmax
    if rule.wmax == 0 and rule.wmin < 0 and w.max() <= 0:
        return rule.wmin
    raise QuantizationError(f"projection {proj.name!r}: plastic weights must keep one sign, [0, wmax] or "
                            f"[wmin, 0]; got [{rule.wmin:g}, {rule.wmax:g}]")


def supervised_projections(net: Network) -> list:
    """Projections whose rule needs a teacher (supervised depression, a third-factor rule on Loihi)."""
    return [p for p in net.projections if isinstance(p.plasticity, SupervisedDepression)]


@dataclass(frozen=True)
class StreamQuantization:
    fixed: Network
    layers: list          # LayerQuantization per population
    rules: list           # dict per plastic projection
    scales: dict          # population -> S


def _quantize_once(net: Network, fmt: FixedPointFormat, peaks: dict, headroom: float, seed: int,
                   rates: dict) -> StreamQuantization:
    pops, projs, layers, rules, scales = [], [], [], [], {}
    order = {p.name: i for i, p in enumerate(net.projections)}
    for pop in net.populations:
        neuron = pop.neuron
        if not isinstance(neuron, LIF):
            raise QuantizationError(f"population {pop.name!r}: cannot quantise {type(neuron).__name__}")
        incoming = net.incoming(pop.name)
        for proj in incoming:
            if not isinstance(proj.synapse, Dense):
                raise QuantizationError(f"projection {proj.name!r}: cannot quantise {type(proj.synapse).__name__}")
        plastic = [p for p in incoming if p.plasticity is not None]
        # a plastic projection may grow anywhere in [wmin, wmax]: size the exponent for that
        ranges = [np.full(p.synapse.shape, _bound(p)) if p.plasticity is not None else p.synapse.weight
                  for p in incoming]
        peak_u, peak_v = peaks.get(pop.name, (0.0, 0.0))
        scale = _max_scale(pop.name, neuron, ranges, peak_u, peak_v, headroom, fmt, 8)
        if plastic:
            scale = _snap_scale(scale, ranges[incoming.index(plastic[0])], 8)
        scales[pop.name] = scale
        vth = int(round(neuron.vth * scale))
        if vth < 1:
            raise QuantizationError(f"layer {pop.name!r}: threshold {neuron.vth} rounds to 0 at scale {scale:.4g}")
        du = _decay_to_int(neuron.du, fxp.DS_OFFSET, fmt, "du", pop.name)
        dv = _decay_to_int(neuron.dv, fxp.DM_OFFSET, fmt, "dv", pop.name)
        bias_int = neuron.bias * scale * 2 ** fmt.act_shift
        bias_exp, bmant_max = 0, 2 ** (fmt.bias_mant_bits - 1) - 1
        while np.abs(np.rint(bias_int / 2 ** bias_exp)).max(initial=0) > bmant_max and bias_exp < fmt.bias_exp_max:
            bias_exp += 1
        bias_mant = np.rint(bias_int / 2 ** bias_exp).astype(np.int64)
        pops.append(Population(pop.name, LoihiLIF(pop.size, du, dv, vth, bias_mant, bias_exp)))
        errs, first = [], None
        for proj in incoming:
            rule = proj.plasticity
            if rule is not None:
                bound = _bound(proj)
                exp = math.floor(math.log2(abs(bound) * scale / 255.0) + 1e-9)
                if not fmt.weight_exp_min <= exp <= fmt.weight_exp_max:
                    raise QuantizationError(f"projection {proj.name!r}: weight bound {bound:g} needs weight_exp "
                                            f"{exp}, outside {fmt.weight_exp_min}..{fmt.weight_exp_max}")
                lo, hi, mode = (0, 255, fxp.EXCITATORY) if bound > 0 else (-255, 0, fxp.INHIBITORY)
                q = np.clip(np.rint(proj.synapse.weight * scale / 2.0 ** exp), lo, hi).astype(np.int64)
                dense = LoihiDense(q, 8, exp, mode)
                src_rate = rates.get(proj.source, DEFAULT_RATE)
                fixed_rule, row = quantize_rule(rule, 2.0 ** exp / scale, proj.name, src_rate,
                                                rates.get(pop.name, DEFAULT_RATE), seed + order[proj.name])
                rules.append(row)
            else:
                dense = quantize_dense(proj.synapse.weight, scale, fmt, 8, name=proj.name)
                fixed_rule = None
            first = first or dense
            projs.append(Projection(proj.name, proj.source, proj.target, dense, fixed_rule))
            w = proj.synapse.weight
            errs.append(np.linalg.norm(dense_float_equivalent(dense, scale) - w) / max(np.linalg.norm(w), 1e-300))
        uv_peak_int = max(peak_u, peak_v, neuron.vth) * scale * 2 ** fmt.act_shift
        layers.append(LayerQuantization(
            name=pop.name, neurons=pop.size,
            synapses=int(sum(np.count_nonzero(p.synapse.weight) for p in incoming)), scale=scale,
            num_weight_bits=8, weight_exp=first.weight_exp if first else 0,
            sign_mode=first.sign_mode if first else 0, vth=vth, du=du, dv=dv, bias_exp=bias_exp,
            float_vth=neuron.vth, float_du=neuron.du, float_dv=neuron.dv,
            weight_rel_error=float(max(errs)) if errs else 0.0,
            vth_rel_error=abs(vth / scale - neuron.vth) / neuron.vth, peak_u=peak_u, peak_v=peak_v,
            uv_headroom_bits=float((fmt.uv_bits - 1) - math.log2(max(uv_peak_int, 1.0)))))
    projs.sort(key=lambda p: order[p.name])
    return StreamQuantization(net.replace(populations=pops, projections=projs), layers, rules, scales)


def quantize_stream_network(net: Network, fmt: FixedPointFormat, calibration_stream: Optional[np.ndarray] = None,
                            headroom: float = 2.0, seed: int = 0,
                            run: Optional[Callable] = None) -> StreamQuantization:
    """Quantise a (plastic, possibly recurrent) float network; calibrate the 24-bit headroom on
    ``calibration_stream`` ``[steps, n_in]`` with the fixed-point stream simulator (``run``:
    defaults to :func:`neurocomp.backends.learning.run_stream`)."""
    if net.is_fixed_point:
        raise QuantizationError(f"network {net.name!r} is already fixed point")
    # spike rates size the trace impulses: the busiest channel of the calibration stream, else the
    # encoding's maximum; a population's own rate is measured on the first calibration run
    rates = {}
    if calibration_stream is not None:
        rates[net.input.name] = float(np.asarray(calibration_stream, dtype=float).mean(axis=0).max())
    elif isinstance(net.input.encoding, RateEncoding):
        rates[net.input.name] = net.input.encoding.max_rate
    else:
        rates[net.input.name] = 1.0 / max(1, net.timesteps)
    peaks: dict = {}
    q = _quantize_once(net, fmt, peaks, headroom, seed, rates)
    if calibration_stream is None:
        return q
    if run is None:
        from neurocomp.backends.learning import run_stream as run
    uv_max = 2 ** (fmt.uv_bits - 1) - 1
    # third-factor rules calibrate with their teacher off (no supervised depression yet)
    silent = {p.name: np.zeros((len(calibration_stream), p.synapse.shape[0]), dtype=np.int64)
              for p in supervised_projections(net)}
    for attempt in range(6):
        res = run(q.fixed, calibration_stream, teacher=silent, probe_peaks=True)
        ok = attempt > 0
        for name, trains in res.spikes.items():
            rates[name] = max(float(trains.mean(axis=0).max()), 1e-3)
        for pop in net.populations:
            pu, pv = res.peaks[pop.name]                     # integer units
            s = q.scales[pop.name] * 2 ** fmt.act_shift
            peaks[pop.name] = (pu / s, pv / s)               # back to float units
            if max(pu, pv) * headroom > uv_max:
                ok = False
        q = _quantize_once(net, fmt, peaks, headroom, seed, rates)
        if ok:
            break
    return q
