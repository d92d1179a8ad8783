"""Learning rules -> Lava's fixed-point learning: the pass after :mod:`neurocomp.passes.quantize`.

A plastic projection's weights sit on the grid its rule's bound fills (8-bit, one integer step
"LSB" = ``2**weight_exp / S`` float units, chosen by the quantiser). Its float rule becomes a
:class:`neurocomp.ir.LoihiLearning` in LSB units: a trace ``x1`` of impulse ``i`` stands for
``a = x1 * A / i`` float units, so the potentiation ``Apre`` per pairing is ``i * m * 2**k`` LSB
with Lava's scaling mantissa ``m`` (-8..7) and exponent ``k`` (-7..8). The impulse is as large as
the 7-bit trace allows at the expected spike rate (precision), ``m``/``k`` the closest fit; each
float -> integer choice is reported with its error.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

from neurocomp.errors import QuantizationError
from neurocomp.ir import STDP, LoihiLearning, Network, Projection, SupervisedDepression
from neurocomp.ir.plasticity import THIRD_FACTOR_LEVEL

TRACE_MAX = 127
DEFAULT_RATE = 0.1   # spikes per step assumed for a population whose rate we cannot know


def fit_scale(value: float, impulse_cap: int = 0, impulse: int = 0) -> tuple[int, int, int, float]:
    """``value ~ impulse * m * 2**k`` with Lava's ``m`` in -8..7, ``k`` in -7..8, ``1 <= impulse <=
    impulse_cap`` (``impulse_cap=0``: no trace, ``impulse = 1``; ``impulse`` > 0: exactly that one).
    Returns ``(impulse, m, k, achieved)``; the smallest error wins, then the largest impulse (finest trace)."""
    if value == 0:
        return 0, 0, 0, 0.0
    best = None
    mants = range(1, 8) if value > 0 else range(-8, 0)
    for m in mants:
        for k in range(-7, 9):
            unit = m * 2.0 ** k
            imp = impulse or (int(round(value / unit)) if impulse_cap else 1)
            if not 1 <= imp <= (impulse or impulse_cap or 1):
                continue
            achieved = imp * unit
            err = abs(achieved - value) / abs(value)
            key = (round(err, 12), -imp, abs(m))
            if best is None or key < best[0]:
                best = (key, imp, m, k, achieved)
    if best is None:
        raise ValueError(f"{value:.3g} is outside Lava's learning-rate range")
    return best[1], best[2], best[3], best[4]


# soft bounds on the 8-bit grid (wmax = 255 LSB): (wmax - w) / wmax as (w - 254) * (-1/254) — Loihi's weight
# factor is w + 2C, an even constant, and 254 keeps the stochastically rounded weights off the 255 clip
# as the float rule keeps them off wmax (256 would let them climb onto it) — w / wmax as w * (1/255)
WEIGHT_FACTORS = {"hard": ((), 1.0), "soft_max": (("w-254",), -1.0 / 254), "soft_zero": (("w",), 1.0 / 255)}


def weight_factor(bound: str) -> tuple:
    """``(factors, c)``: a pathway's weight dependence as extra factors of its terms and the coefficient
    that turns the factor's value into the float rule's ``(wmax - w) / wmax`` or ``w / wmax``."""
    return WEIGHT_FACTORS[bound]


def shift_of(factors: tuple) -> int:
    """Bits Lava shifts a product of ``factors`` (and the 4-bit mantissa) right by, back to 15 bits:
    its scale is then ``m * 2**(k - shift)`` weight LSB per unit of the factors."""
    from neurocomp.backends.learning_engine import FACTOR_BITS, W_ACCUMULATOR_U, W_S_MANT
    from neurocomp.ir.plasticity import factor_parts
    return max(0, W_S_MANT + sum(FACTOR_BITS[factor_parts(f)[0]] for f in factors) - W_ACCUMULATOR_U)


def impulse_cap(rate: float, tau: float) -> int:
    """Largest trace impulse that keeps a trace fed at ``rate`` spikes/step with time constant ``tau``
    clear of the 7-bit ceiling (mean trace ~ impulse * rate * tau, peaks about 1.5x that)."""
    return int(max(1, min(TRACE_MAX, math.floor(TRACE_MAX / max(1.0, 1.5 * rate * tau)))))


def pre_trace_saturation(row: dict, peak_rate: float) -> Optional[str]:
    """Why a rule's unbounded pre trace saturates on Loihi where the source's does not (its mean at
    ``peak_rate`` spikes/step reaches the 7-bit ceiling), or None. The impulse is sized on the calibration
    stream's average rate; a channel at its peak rate for a whole sample (a white pixel) runs past it.
    The row also records that mean (``pre_trace_mean_at_peak_rate``, in report.json)."""
    xi, tau = row.get("x1_impulse") or 0, row.get("x1_tau") or 0
    if not xi or not tau or "pre_trace_ceiling" in row:
        return None
    mean = xi * peak_rate / (1.0 - math.exp(-1.0 / tau))
    if mean <= TRACE_MAX:
        return None
    row["pre_trace_mean_at_peak_rate"] = mean
    return (f"projection {row['projection']!r}: its pre trace (impulse {xi}, tau {tau}) averages {mean:.0f} at "
            f"{peak_rate:g} spikes/step, past Loihi's ceiling of {TRACE_MAX}: it saturates on the chip and not "
            "in the source; bound it in the source (Brian2: apre = clip(apre + Apre, 0, cap*Apre)) to learn the same")


def saturating_impulse(cap: float) -> int:
    """The trace impulse whose 7-bit ceiling holds ``cap`` increments, as a saturating Brian2 trace does
    (0: an unbounded trace, sized by its rate instead)."""
    return int(min(TRACE_MAX, max(1, round(TRACE_MAX / cap)))) if cap else 0


def quantize_rule(rule, lsb: float, name: str, pre_rate: float, post_rate: float, seed: int) -> tuple:
    """A float rule (weights in float units, ``lsb`` float units per integer weight step) -> Lava form."""
    row = {"projection": name, "rule": type(rule).__name__, "weight_lsb": lsb}
    try:
        if isinstance(rule, STDP):
            x_tau = int(np.clip(round(rule.taupre), 1, 255))
            y_tau = int(np.clip(round(rule.taupost), 1, 255))
            # weight dependence: a term takes the weight as a factor ("w-254": (w - 254), "w"), its scale
            # fitted for the extra 9 bits Lava shifts out of the product (shift_of)
            (xf, xc), (yf, yc) = weight_factor(rule.Apre_bound), weight_factor(rule.Apost_bound)
            (cf, cc), (pf, pc) = weight_factor(rule.xtar_bound), weight_factor(rule.pre_const_bound)
            sx, sy = xc * 2 ** shift_of(("x1",) + xf), yc * 2 ** shift_of(("y1",) + yf)
            sc, sp = cc * 2 ** shift_of(cf), pc * 2 ** shift_of(pf)
            xs, ys = saturating_impulse(rule.pre_trace_cap), saturating_impulse(rule.post_trace_cap)
            xi, xm, xk, xa = fit_scale(rule.Apre / lsb * sx, impulse_cap(pre_rate, x_tau), impulse=xs)
            yi, ym, yk, ya = fit_scale(rule.Apost / lsb * sy, impulse_cap(post_rate, y_tau), impulse=ys)
            xa, ya = xa / sx, ya / sy
            _, cm, ck, ca = fit_scale(-rule.xtar / lsb * sc) if rule.xtar else (0, 0, 0, 0.0)
            _, pm, pk, pa = fit_scale(rule.pre_const / lsb * sp) if rule.pre_const else (0, 0, 0, 0.0)
            ca, pa = ca / sc, pa / sp
            terms = []
            if xi:
                terms.append(("y0", ("x1",) + xf, xm, xk))
            coincidence = "0"
            if yi:
                terms.append(("x0", ("y1",) + yf, ym, yk))
                # Loihi updates the traces before the rule, so a pre spike in a step where the post
                # neuron fires sees y1 with that step's impulse; Brian2 runs on_pre before on_post and
                # does not. Take the impulse back for coincident spikes: + x0 * y0 * |Apost|.
                so = yc * 2 ** shift_of(("y0",) + yf)
                try:
                    _, om, ok, oa = fit_scale(-ya * so)
                    oa /= so
                    terms.append(("x0", ("y0",) + yf, om, ok))
                    coincidence = f"({om}) * 2^{ok}"
                except ValueError:
                    oa = 0.0   # below the smallest learning rate: the ordering effect is smaller still
            if cm:
                terms.append(("y0", cf, cm, ck))
            if pm:
                terms.append(("x0", pf, pm, pk))
            fixed = LoihiLearning(terms, x1_impulse=xi, x1_tau=x_tau, y1_impulse=yi, y1_tau=y_tau, rng_seed=seed)
            row.update({
                "taupre_steps": rule.taupre, "x1_tau": x_tau, "taupost_steps": rule.taupost, "y1_tau": y_tau,
                "Apre_lsb": rule.Apre / lsb, "x1_impulse": xi, "potentiation": f"{xi} * {xm} * 2^{xk}" if xi else "0",
                "Apre_lsb_fixed": xa, "Apost_lsb": rule.Apost / lsb, "y1_impulse": yi,
                "depression": f"{yi} * ({ym}) * 2^{yk}" if yi else "0", "Apost_lsb_fixed": ya,
                "coincidence_term": coincidence, "coincidence_lsb_fixed": oa if yi else 0.0,
                "xtar_lsb": rule.xtar / lsb, "xtar_term": f"({cm}) * 2^{ck}" if cm else "0",
                "xtar_lsb_fixed": -ca + 0.0, "pre_const_lsb": rule.pre_const / lsb,
                "pre_const_term": f"({pm}) * 2^{pk}" if pm else "0", "pre_const_lsb_fixed": pa,
                **({"pre_trace_ceiling": TRACE_MAX / xi} if xs and xi else {}),
                **({"post_trace_ceiling": TRACE_MAX / yi} if ys and yi else {}),
                **({"weight_factors": {"Apre": "*".join(xf) or "1", "xtar": "*".join(cf) or "1",
                                       "Apost": "*".join(yf) or "1", "pre_const": "*".join(pf) or "1"}}
                   if rule.weight_dependent else {})})
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


def supervised_projections(net: Network) -> list:
    """Projections whose rule needs a teacher (supervised depression, a third-factor rule on Loihi)."""
    return [p for p in net.projections if isinstance(p.plasticity, SupervisedDepression)
            or getattr(p.plasticity, "third_factor", False)]


def quantize_rules(q, rates: Dict[str, float], seed: int = 0) -> tuple:
    """The quantised network ``q`` (:class:`~neurocomp.passes.quantize.Quantized`) with every float
    rule in Loihi form; ``rates``: spikes per step of populations (and the input) that size the trace
    impulses (:data:`DEFAULT_RATE` when unknown). Returns ``(fixed network, one row per rule)``."""
    if not q.float_rules:
        return q.fixed, []
    order = {p.name: i for i, p in enumerate(q.fixed.projections)}
    projs, rows = [], []
    for proj in q.fixed.projections:
        rule = q.float_rules.get(proj.name)
        if rule is not None:
            lsb = 2.0 ** proj.synapse.weight_exp / q.scales[proj.target]
            rule, row = quantize_rule(rule, lsb, proj.name, rates.get(proj.source, DEFAULT_RATE),
                                      rates.get(proj.target, DEFAULT_RATE), seed + order[proj.name])
            rows.append(row)
        projs.append(Projection(proj.name, proj.source, proj.target, proj.synapse, rule))
    return q.fixed.replace(projections=projs), rows
