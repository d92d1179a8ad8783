"""Float IR -> Loihi fixed-point IR: one quantiser for every population, whatever the schedule.

Per target population one scale ``S`` maps float units to Lava's activation units: an incoming
weight ``w`` becomes ``w*S`` (8-bit mantissa times ``2**weight_exp``), the threshold ``vth*S``
(compared as ``vth << 6`` against ``v``, which holds ``64*S`` times the float voltage because Lava
shifts ``a_in`` left by 6), the bias ``b*S*64`` (``bias_mant << bias_exp``). Decays map to 12 bits:
``dv -> round(dv*4096)``, ``du -> round(du*4096) - 1`` (Lava adds Loihi's 1-bit current-decay offset).

``S`` is taken as large as the formats allow — threshold <= 17 bits, weight exponent <= its max,
bias within 13+3 bits, and the calibrated peak ``|u|``/``|v|`` (:mod:`neurocomp.passes.calibrate`)
times ``headroom`` below 2**23 — then snapped:

* a population fed by a plastic projection: so that the rule's bound (``wmax``, or ``wmin`` for
  inhibitory weights) lands exactly on the top 8-bit mantissa — weights learn over the whole 0..255
  range, one integer step being ``2**weight_exp / S`` float units (the rule itself is quantised in
  those units by :mod:`neurocomp.passes.quantize_rules`);
* else, when every incoming weight is already an integer (lava-dl/netx units): to a power of two,
  which keeps them exact;
* else, with one incoming projection: so that its largest weight uses the full mantissa.

Graded input (a :class:`~neurocomp.ir.encodings.CurrentEncoding`): the input's integers stand for
``level * unit`` float units, so a projection leaving the input is quantised as the weights ``w * unit``
per level (the input scale folded into the first layer's weights; its threshold and bias keep their
float units) and carries ``num_message_bits = bits``: float and fixed then compute the same sums. A
graded conv's scale is also capped so that ``sum |w| * (2**bits - 1)`` stays below 2**31 (Lava casts its
float64 convolution to int32).

Anything that cannot be represented is refused with the layer's name.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Dict, List, Optional, Tuple

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.errors import QuantizationError
from neurocomp.backends.conv import conv_float_equivalent, max_conv_scale, quantize_conv
from neurocomp.ir import LIF, Dense, LoihiDense, LoihiLIF, Network, Population, Projection, is_graded
from neurocomp.ir import ATRLIF, LoihiATRLIF
from neurocomp.ir.synapses import Conv
from neurocomp.targets import FixedPointFormat

PLASTIC_WEIGHT_BITS = 8   # Lava's LearningDense truncates once, before learning: plastic weights stay 8-bit


@dataclass(frozen=True)
class LayerQuantization:
    """How one population and its incoming weights were mapped (one row of the compile report)."""

    name: str
    neurons: int
    synapses: int
    scale: float
    num_weight_bits: int
    weight_exp: int
    sign_mode: int
    vth: int
    du: int
    dv: int
    bias_exp: int
    float_vth: float
    float_du: float
    float_dv: float
    weight_rel_error: float
    vth_rel_error: float
    peak_u: float
    peak_v: float
    uv_headroom_bits: float
    silent_weights: bool = False    # every incoming weight rounded to 0: the layer cannot be driven
    adaptive: Optional[dict] = None  # ATRLIF: threshold increment, threshold and refractory decays

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Quantized:
    """The fixed-point network, one row per population, each population's scale ``S``, and the float
    rules of plastic projections (their Loihi form comes from :mod:`neurocomp.passes.quantize_rules`;
    until then the fixed network's projections carry none)."""

    fixed: Network
    layers: List[LayerQuantization]
    scales: Dict[str, float]
    float_rules: Dict[str, object]


def _sign_mode(w: np.ndarray) -> int:
    if w.min() >= 0:
        return fxp.EXCITATORY
    if w.max() <= 0:
        return fxp.INHIBITORY
    return fxp.MIXED


def quantize_dense(weight: np.ndarray, scale: float, fmt: FixedPointFormat, weight_bits: int,
                   name: str = "") -> LoihiDense:
    """Weights ``w`` -> Lava Dense integers approximating ``w*scale`` (exponent chosen here)."""
    w = np.asarray(weight, dtype=np.float64)
    mode = _sign_mode(w)
    mixed = int(mode == fxp.MIXED)
    drop = 8 - weight_bits + mixed  # low mantissa bits Lava zeroes
    qmax = 2 ** (weight_bits - mixed) - 1
    wmax = float(np.abs(w).max())
    if wmax == 0.0:
        return LoihiDense(np.zeros(w.shape, dtype=np.int64), weight_bits, 0, fxp.EXCITATORY)
    # smallest exponent whose mantissa range holds the largest scaled weight
    exp = math.ceil(math.log2(wmax * scale / (qmax + 0.5))) - drop
    exp = max(exp, fmt.weight_exp_min)
    if exp > fmt.weight_exp_max:
        raise QuantizationError(
            f"layer {name!r}: weights need weight_exp {exp} > {fmt.weight_exp_max} at scale {scale:.4g}")
    unit = 2.0 ** (exp + drop)
    q = np.rint(w * scale / unit).astype(np.int64)
    q = np.clip(q, -qmax - mixed if mode != fxp.EXCITATORY else 0, qmax if mode != fxp.INHIBITORY else 0)
    return LoihiDense(q << drop, weight_bits, exp, mode)


def quantize_plastic_dense(proj: Projection, scale: float, fmt: FixedPointFormat) -> LoihiDense:
    """A plastic projection's weights on the grid its rule's bound fills: 8-bit, one sign."""
    bound = plastic_bound(proj)
    exp = math.floor(math.log2(abs(bound) * scale / 255.0) + 1e-9)
    if not fmt.weight_exp_min <= exp <= fmt.weight_exp_max:
        raise QuantizationError(f"projection {proj.name!r}: weight bound {bound:g} needs weight_exp "
                                f"{exp}, outside {fmt.weight_exp_min}..{fmt.weight_exp_max}")
    lo, hi, mode = (0, 255, fxp.EXCITATORY) if bound > 0 else (-255, 0, fxp.INHIBITORY)
    q = np.clip(np.rint(proj.synapse.weight * scale / 2.0 ** exp), lo, hi).astype(np.int64)
    return LoihiDense(q, PLASTIC_WEIGHT_BITS, exp, mode)


def plastic_bound(proj: Projection) -> float:
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


def dense_float_equivalent(dense: LoihiDense, scale: float) -> np.ndarray:
    """The float weights a fixed-point Dense stands for (ignoring the per-step floor of negative exponents)."""
    return fxp.effective_weights(dense) * (2.0 ** dense.weight_exp) / scale


def _max_scale(neuron: LIF, weights: list, peak_u: float, peak_v: float, headroom: float,
               fmt: FixedPointFormat, weight_bits: int) -> float:
    limits = {"threshold": (2 ** fmt.vth_bits - 1) / neuron.vth}
    uv_max = 2 ** (fmt.uv_bits - 1) - 1
    peak = max(peak_u, peak_v, neuron.vth)
    limits["24-bit u/v headroom"] = uv_max / (2 ** fmt.act_shift * headroom * peak)
    bmax = float(np.abs(neuron.bias).max())
    if bmax > 0:
        limits["bias"] = (2 ** (fmt.bias_mant_bits - 1) - 1) * 2 ** fmt.bias_exp_max / (bmax * 2 ** fmt.act_shift)
    for w in weights:
        wmax = float(np.abs(w).max())
        if wmax > 0:
            mixed = int(_sign_mode(w) == fxp.MIXED)
            qmax = 2 ** (weight_bits - mixed) - 1
            limits["weight exponent"] = min(limits.get("weight exponent", np.inf),
                                            qmax * 2.0 ** (fmt.weight_exp_max + 8 - weight_bits + mixed) / wmax)
    return min(limits.values())


def _snap_scale(scale: float, weight: np.ndarray, weight_bits: int) -> float:
    """Lower ``scale`` so the largest |weight| lands exactly on the top mantissa at some exponent."""
    wmax = float(np.abs(weight).max())
    if wmax == 0:
        return scale
    mixed = int(_sign_mode(weight) == fxp.MIXED)
    qmax = 2 ** (weight_bits - mixed) - 1
    exp = math.floor(math.log2(scale * wmax / qmax))
    return qmax * 2.0 ** exp / wmax


def _decay_to_int(x: float, offset: int, fmt: FixedPointFormat, what: str, name: str) -> int:
    unity = 2 ** fmt.decay_bits
    if not 0.0 <= x <= 1.0:
        raise QuantizationError(f"layer {name!r}: {what}={x} outside [0, 1]")
    return int(np.clip(round(x * unity) - offset, 0, unity - 1))


def _bias(neuron: LIF, scale: float, fmt: FixedPointFormat, name: str) -> Tuple[np.ndarray, int]:
    bias_int = neuron.bias * scale * 2 ** fmt.act_shift
    bias_exp, bmant_max = fmt.bias_exp_min, 2 ** (fmt.bias_mant_bits - 1) - 1
    while np.abs(np.rint(bias_int / 2 ** bias_exp)).max(initial=0) > bmant_max and bias_exp < fmt.bias_exp_max:
        bias_exp += 1
    bias_mant = np.rint(bias_int / 2 ** bias_exp).astype(np.int64)
    if np.abs(bias_mant).max(initial=0) > bmant_max:
        raise QuantizationError(f"layer {name!r}: bias too large for {fmt.bias_mant_bits}-bit mantissa")
    return bias_mant, bias_exp


def quantize_network(net: Network, fmt: FixedPointFormat, peaks: Dict[str, Tuple[float, float]],
                     headroom: float = 2.0, weight_bits: int = 8) -> Quantized:
    """Quantise a float network with calibrated float peaks ``{population: (max |u|, max |v|)}``
    (missing: 0). Plastic projections keep their float rules; :func:`neurocomp.passes.quantize_rules.
    quantize_rules` turns those into Loihi rules on the returned network."""
    if net.is_fixed_point:
        raise QuantizationError(f"network {net.name!r} is already fixed point")
    weight_bits = min(weight_bits, fmt.weight_bits)
    enc = net.input.encoding
    graded = is_graded(enc)

    def weight_of(proj) -> np.ndarray:
        """Float weights per unit of what the source sends (an input level for graded input)."""
        w = proj.synapse.weight
        return w * enc.unit if graded and proj.source == net.input.name else w

    pops, projs, rows, scales = [], [], [], {}
    order = {p.name: i for i, p in enumerate(net.projections)}
    for pop in net.populations:
        neuron = adaptive = pop.neuron
        if isinstance(adaptive, ATRLIF):
            neuron = atrlif_as_lif(adaptive)   # its threshold, current, voltage and bias as a LIF's
        else:
            adaptive = None
        if not isinstance(neuron, LIF):
            raise QuantizationError(f"population {pop.name!r}: cannot quantise {type(neuron).__name__}")
        if not neuron.vth > 0:
            raise QuantizationError(f"layer {pop.name!r}: threshold vth={neuron.vth} must be > 0")
        incoming = net.incoming(pop.name)
        for proj in incoming:
            if not isinstance(proj.synapse, (Dense, Conv)):
                raise QuantizationError(f"projection {proj.name!r}: cannot quantise {type(proj.synapse).__name__}")
            if isinstance(proj.synapse, Conv) and proj.plasticity is not None:
                raise QuantizationError(f"projection {proj.name!r}: plastic convolutions are not supported")
        plastic = [p for p in incoming if p.plasticity is not None]
        convs = [p for p in incoming if isinstance(p.synapse, Conv)]
        bits = PLASTIC_WEIGHT_BITS if plastic else weight_bits
        # a plastic projection may grow anywhere in its range: size the exponent for that
        ranges = [np.full(p.synapse.shape, plastic_bound(p)) if p.plasticity is not None else weight_of(p)
                  for p in incoming if not isinstance(p.synapse, Conv)]
        peak_u, peak_v = peaks.get(pop.name, (0.0, 0.0))
        scale = _max_scale(neuron, ranges, peak_u, peak_v, headroom, fmt, bits)
        scale = min(scale, atrlif_max_scale(adaptive))
        # Lava's Conv ignores weight_exp (lava issue 803): its integers must hold the whole scale
        scale = min([scale] + [max_conv_scale(weight_of(p), bits) for p in convs])
        for p in convs:   # a graded conv: Lava's float64 -> int32 cast of sum |w| * max level
            if graded and p.source == net.input.name:
                l1 = float(np.abs(weight_of(p)).reshape(p.synapse.out_channels, -1).sum(axis=1).max())
                scale = min(scale, 0.99 * (2 ** 31 - 1) / (enc.levels * max(l1, 1e-300)))
        if plastic:
            scale = _snap_scale(scale, ranges[incoming.index(plastic[0])], bits)
        elif incoming and all(np.array_equal(weight_of(p), np.rint(weight_of(p))) for p in incoming):
            scale = 2.0 ** math.floor(math.log2(scale))   # integers (lava-dl/netx units) stay exact
        elif len(incoming) == 1 and not convs:
            scale = _snap_scale(scale, weight_of(incoming[0]), bits)
        scales[pop.name] = scale
        vth = int(round(neuron.vth * scale))
        if vth < 1:
            raise QuantizationError(
                f"layer {pop.name!r}: threshold {neuron.vth} rounds to 0 at scale {scale:.4g}; "
                "weights are too large relative to the threshold for 8-bit mantissas")
        du = _decay_to_int(neuron.du, fxp.DS_OFFSET, fmt, "du", pop.name)
        dv = _decay_to_int(neuron.dv, fxp.DM_OFFSET, fmt, "dv", pop.name)
        bias_mant, bias_exp = _bias(neuron, scale, fmt, pop.name)
        pops.append(Population(pop.name, LoihiLIF(pop.size, du, dv, vth, bias_mant, bias_exp) if adaptive is None
                               else quantize_atrlif(adaptive, scale, du, dv, vth, bias_mant, bias_exp, fmt, pop.name),
                               shape=pop.shape))
        errs, first, silent = [], None, bool(incoming)
        for proj in incoming:
            w = weight_of(proj)
            if isinstance(proj.synapse, Conv):
                dense = quantize_conv(Conv(w, **proj.synapse.geometry()), scale, bits)
                equivalent, used = conv_float_equivalent(dense, scale), dense.weight
            else:
                dense = (quantize_plastic_dense(proj, scale, fmt) if proj.plasticity is not None
                         else quantize_dense(w, scale, fmt, bits, name=proj.name))
                equivalent, used = dense_float_equivalent(dense, scale), fxp.effective_weights(dense)
            if graded and proj.source == net.input.name:
                dense = replace(dense, num_message_bits=enc.bits)
            first = first or dense
            silent &= not np.any(used)
            projs.append(Projection(proj.name, proj.source, proj.target, dense, proj.plasticity))
            errs.append(np.linalg.norm(equivalent - w) / max(np.linalg.norm(w), 1e-300))
        uv_peak_int = max(peak_u, peak_v, neuron.vth) * scale * 2 ** fmt.act_shift
        rows.append(LayerQuantization(
            name=pop.name, neurons=pop.size,
            synapses=int(sum(np.count_nonzero(p.synapse.weight) for p in incoming)), scale=scale,
            num_weight_bits=bits, weight_exp=getattr(first, "weight_exp", 0) if first else 0,
            sign_mode=(getattr(first, "sign_mode", None) or _sign_mode(first.weight)) if first else 0, vth=vth, du=du, dv=dv, bias_exp=bias_exp,
            float_vth=neuron.vth, float_du=neuron.du, float_dv=neuron.dv,
            weight_rel_error=float(max(errs)) if errs else 0.0,
            vth_rel_error=abs(vth / scale - neuron.vth) / neuron.vth, peak_u=peak_u, peak_v=peak_v,
            uv_headroom_bits=float((fmt.uv_bits - 1) - math.log2(max(uv_peak_int, 1.0))),
            silent_weights=silent and bool(np.any([np.any(p.synapse.weight) for p in incoming]))))
        if adaptive is not None:
            rows[-1] = atrlif_row(rows[-1], adaptive, pops[-1].neuron, scale)
    projs.sort(key=lambda p: order[p.name])
    rules = {p.name: p.plasticity for p in projs if p.plasticity is not None}
    bare = [Projection(p.name, p.source, p.target, p.synapse) for p in projs]
    return Quantized(net.replace(populations=pops, projections=bare), rows, scales, rules)


# -------------------------------------------------------------------------------------- ATRLIF
ATRLIF_THETA_BITS = 12   # lava/proc/atrlif/models.py: theta_0, theta_step LavaPyType(int, np.uint16, precision=12)


def atrlif_as_lif(neuron: ATRLIF) -> LIF:
    """An ATRLIF's current, voltage, base threshold and bias are quantised by the LIF's rules (the same
    ``<< 6`` units: ``theta0 * S`` is compared as ``theta0 << 6`` against ``v - r``)."""
    return LIF(neuron.size, du=neuron.di, dv=neuron.dv, vth=neuron.theta0, bias=neuron.bias)


def atrlif_max_scale(neuron: Optional[ATRLIF]) -> float:
    """The largest scale an ATRLIF's 12-bit ``theta0`` and ``theta_step`` allow (inf for a LIF)."""
    if neuron is None:
        return math.inf
    top = 2 ** ATRLIF_THETA_BITS - 1
    return min([top / neuron.theta0] + ([top / neuron.theta_step] if neuron.theta_step > 0 else []))


def quantize_atrlif(neuron: ATRLIF, scale: float, di: int, dv: int, theta0: int, bias_mant, bias_exp: int,
                    fmt: FixedPointFormat, name: str) -> LoihiATRLIF:
    """An ATRLIF at scale ``S``: ``di``/``dv``/``theta0``/bias as its LIF twin got them, the threshold
    increment ``theta_step * S`` (12 bits), the threshold and refractory decays to 12 bits (no offset),
    a per-neuron ``theta_init`` to ``round(theta_init * S * 64)`` (the ``<< 6`` units of Lava's state)."""
    step = int(round(neuron.theta_step * scale))
    if not 0 <= step <= 2 ** ATRLIF_THETA_BITS - 1:
        raise QuantizationError(f"layer {name!r}: theta_step {neuron.theta_step} -> {step} at scale {scale:.4g}, "
                                f"outside Lava's 12 bits")
    init = None if neuron.theta_init is None else np.rint(neuron.theta_init * scale * 2 ** fmt.act_shift)
    return LoihiATRLIF(neuron.size, di, dv, _decay_to_int(neuron.dtheta, 0, fmt, "dtheta", name),
                       _decay_to_int(neuron.dr, 0, fmt, "dr", name), theta0, step, bias_mant, bias_exp,
                       theta_init=init)


def atrlif_row(row: LayerQuantization, neuron: ATRLIF, fixed: LoihiATRLIF, scale: float) -> LayerQuantization:
    """The compile report's row of an ATRLIF population: its adaptive part, float -> integer."""
    from dataclasses import replace as _replace
    step_err = abs(fixed.theta_step / scale - neuron.theta_step) / neuron.theta_step if neuron.theta_step else 0.0
    return _replace(row, adaptive={
        "neuron": "ATRLIF", "theta_step": fixed.theta_step, "float_theta_step": neuron.theta_step,
        "theta_step_rel_error": step_err, "dtheta": fixed.dtheta, "float_dtheta": neuron.dtheta,
        "dr": fixed.dr, "float_dr": neuron.dr, "learned_thresholds": neuron.theta_init is not None})


def silent_layers(rows: List[LayerQuantization]) -> List[str]:
    """Layers every incoming weight of which rounded to zero (they can never spike from input)."""
    return [r.name for r in rows if r.silent_weights]
