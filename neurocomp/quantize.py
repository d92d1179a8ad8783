"""Float IR -> Loihi fixed-point IR.

Per target population one scale ``S`` maps float units to Lava's activation units: an incoming
weight ``w`` becomes ``w*S`` (8-bit mantissa times ``2**weight_exp``), the threshold ``vth*S``
(compared as ``vth << 6`` against ``v``, which holds ``64*S`` times the float voltage because Lava
shifts ``a_in`` left by 6), the bias ``b*S*64`` (``bias_mant << bias_exp``). Decays map to 12 bits:
``dv -> round(dv*4096)``, ``du -> round(du*4096) - 1`` (Lava adds Loihi's 1-bit current-decay offset).

``S`` is taken as large as the formats allow — threshold <= 17 bits, weight exponent <= its max,
bias within 13+3 bits, and the float model's calibrated peak ``|u|``/``|v|`` times ``headroom``
below 2**23 — then snapped so the largest weight uses the full mantissa (or, for weights that are
already integers, as from lava-dl, to a power of two, which keeps them exact). Anything that cannot be
represented is refused with the layer's name.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends.sim import simulate
from neurocomp.errors import QuantizationError
from neurocomp.ir import LIF, Dense, LoihiDense, LoihiLIF, Network, Population, Projection
from neurocomp.targets import FixedPointFormat


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

    def as_dict(self) -> dict:
        return asdict(self)


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


def dense_float_equivalent(dense: LoihiDense, scale: float) -> np.ndarray:
    """The float weights a fixed-point Dense stands for (ignoring the per-step floor of negative exponents)."""
    return fxp.effective_weights(dense) * (2.0 ** dense.weight_exp) / scale


def _max_scale(name, neuron: LIF, weights: list, peak_u: float, peak_v: float, headroom: float,
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


def quantize_network(net: Network, fmt: FixedPointFormat, calibration_spikes: np.ndarray,
                     headroom: float = 2.0, weight_bits: int = 8) -> tuple[Network, list]:
    """Quantise a float network; returns the fixed-point network and one LayerQuantization per population."""
    if net.is_fixed_point:
        raise QuantizationError(f"network {net.name!r} is already fixed point")
    weight_bits = min(weight_bits, fmt.weight_bits)
    probe = simulate(net, calibration_spikes, probe=True, target="float")
    pops, projs, rows = [], [], []
    for pop in net.populations:
        neuron = pop.neuron
        if not isinstance(neuron, LIF):
            raise QuantizationError(f"population {pop.name!r}: cannot quantise {type(neuron).__name__}")
        if not neuron.vth > 0:
            raise QuantizationError(f"layer {pop.name!r}: threshold vth={neuron.vth} must be > 0")
        incoming = net.incoming(pop.name)
        for proj in incoming:
            if not isinstance(proj.synapse, Dense):
                raise QuantizationError(f"projection {proj.name!r}: cannot quantise {type(proj.synapse).__name__}")
        weights = [proj.synapse.weight for proj in incoming]
        peak_u = float(np.abs(probe.states[pop.name]["u"]).max())
        peak_v = float(np.abs(probe.states[pop.name]["v"]).max())
        scale = _max_scale(pop.name, neuron, weights, peak_u, peak_v, headroom, fmt, weight_bits)
        if weights and all(np.array_equal(w, np.rint(w)) for w in weights):
            # already integers (lava-dl/netx units): a power-of-two scale keeps them exact
            scale = 2.0 ** math.floor(math.log2(scale))
        elif len(weights) == 1:
            scale = _snap_scale(scale, weights[0], weight_bits)
        vth = int(round(neuron.vth * scale))
        if vth < 1:
            raise QuantizationError(
                f"layer {pop.name!r}: threshold {neuron.vth} rounds to 0 at scale {scale:.4g}; "
                "weights are too large relative to the threshold for 8-bit mantissas")
        du = _decay_to_int(neuron.du, fxp.DS_OFFSET, fmt, "du", pop.name)
        dv = _decay_to_int(neuron.dv, fxp.DM_OFFSET, fmt, "dv", pop.name)
        bias_int = neuron.bias * scale * 2 ** fmt.act_shift
        bias_exp = 0
        bmant_max = 2 ** (fmt.bias_mant_bits - 1) - 1
        while np.abs(np.rint(bias_int / 2 ** bias_exp)).max(initial=0) > bmant_max and bias_exp < fmt.bias_exp_max:
            bias_exp += 1
        bias_mant = np.rint(bias_int / 2 ** bias_exp).astype(np.int64)
        if np.abs(bias_mant).max(initial=0) > bmant_max:
            raise QuantizationError(f"layer {pop.name!r}: bias too large for {fmt.bias_mant_bits}-bit mantissa")
        pops.append(Population(pop.name, LoihiLIF(pop.size, du, dv, vth, bias_mant, bias_exp)))
        errs, fixed = [], []
        for proj in incoming:
            d = quantize_dense(proj.synapse.weight, scale, fmt, weight_bits, name=proj.name)
            fixed.append(d)
            projs.append(Projection(proj.name, proj.source, proj.target, d))
            w = proj.synapse.weight
            errs.append(np.linalg.norm(dense_float_equivalent(d, scale) - w) / max(np.linalg.norm(w), 1e-300))
        uv_peak_int = max(peak_u, peak_v) * scale * 2 ** fmt.act_shift
        rows.append(LayerQuantization(
            name=pop.name, neurons=pop.size, synapses=int(sum(np.count_nonzero(w) for w in weights)),
            scale=scale, num_weight_bits=weight_bits,
            weight_exp=fixed[0].weight_exp if fixed else 0, sign_mode=fixed[0].sign_mode if fixed else 0,
            vth=vth, du=du, dv=dv, bias_exp=bias_exp,
            float_vth=neuron.vth, float_du=neuron.du, float_dv=neuron.dv,
            weight_rel_error=float(max(errs)) if errs else 0.0,
            vth_rel_error=abs(vth / scale - neuron.vth) / neuron.vth,
            peak_u=peak_u, peak_v=peak_v,
            uv_headroom_bits=float((fmt.uv_bits - 1) - math.log2(max(uv_peak_int, 1.0)))))
    # projections keep the network's order
    order = {p.name: i for i, p in enumerate(net.projections)}
    projs.sort(key=lambda p: order[p.name])
    return net.replace(populations=pops, projections=projs), rows
