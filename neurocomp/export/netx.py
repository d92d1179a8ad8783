"""A fixed-point network -> a lava-dl netx HDF5 file (``.net``) that netx turns back into the same integers.

netx (lava-dl 0.6, ``netx/hdf5.py``) builds each ``dense`` layer as Lava's ``Dense`` + ``LIF`` with
``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_mant = bias``, ``bias_exp = 6``, and
chooses the synapse format itself: ``optimize_weight_bits`` takes the file's integer weights ``W``,
picks the sign mode, shifts ``W`` left by ``scale_bits`` and sets ``weight_exponent = -scale_bits``
and ``num_weight_bits`` so that no bit of ``W`` is lost: Lava then delivers exactly ``sum(W * s)``
per step. So the file must hold, per layer, the integers Lava's Dense effectively adds for one spike,
``W = effective_weights * 2**weight_exp``, and that is only possible when

* ``W`` is an integer (a negative ``weight_exp`` floors each step's sum in Lava, which no file weight
  can express unless the effective weights are multiples of ``2**-weight_exp``), and
* ``W`` fits netx's 8-bit synapse (``[-256, 254]`` mixed, ``0..255`` / ``-256..0`` single-sign);

and the bias ``bias_mant << bias_exp`` is a multiple of 64 whose ``>> 6`` fits 13 bits. Every layer
is checked by running lava-dl's own ``optimize_weight_bits`` on the file's weights and comparing the
synapse it yields with ours; anything that would not come back exactly is refused naming the layer.
A network quantised with ``weight_exp`` fixed to 0 and no bias (or a bias on the 64 grid) always
exports.

Layout (what slayer's ``export_hdf5`` writes and netx reads): ``layer/0`` ``input`` with the input
shape, ``layer/1..n`` ``dense`` (``shape``, ``inFeatures``, ``outFeatures``, ``weight`` float32
``[out, in]``, optional ``bias``, ``neuron/{type=CUBA, iDecay, vDecay, vThMant, refDelay=1,
gradedSpike=False}``), ``simulation/{Ts=1, tSample=timesteps}``. Only layer chains exist in netx:
recurrent projections, skips, several inputs per population and conv layers are refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocomp.errors import NeurocompError
from neurocomp.ir import LoihiDense, Network

NETX_BIAS_EXP = 6
BIAS_MANT_MAX = 2 ** 12 - 1


def _chain(net: Network) -> list:
    problem = net.layering_problem()
    if problem:
        raise NeurocompError(f"network {net.name!r}: netx files are layer chains: {problem}")
    order = net.execution_order()
    prev = net.input.name
    chain = []
    for pop in order:
        inc = net.incoming(pop.name)
        if len(inc) != 1 or inc[0].source != prev:
            raise NeurocompError(f"network {net.name!r}: population {pop.name!r} must have exactly one input, from "
                                 f"{prev!r}: netx files are layer chains")
        if not isinstance(inc[0].synapse, LoihiDense):
            raise NeurocompError(f"projection {inc[0].name!r}: {type(inc[0].synapse).__name__} layers are not "
                                 "exported to netx yet (dense layers only)")
        chain.append((pop, inc[0]))
        prev = pop.name
    return chain


def file_weights(proj) -> np.ndarray:
    """The integers a netx file must hold for ``proj`` (see module docstring), or a one-line refusal."""
    from neurocomp.ir import loihi as fxp
    d = proj.synapse
    w = fxp.effective_weights(d)
    if d.weight_exp >= 0:
        W = w << d.weight_exp
    else:
        k = -d.weight_exp
        if np.any(w % (1 << k)):
            raise NeurocompError(
                f"projection {proj.name!r}: weight_exp={d.weight_exp} floors every step's sum in Lava, which a netx "
                "file cannot express (netx derives the exponent from integer weights); quantise with weight_exp 0")
        W = w >> k
    return W


def netx_synapse(W: np.ndarray) -> LoihiDense:
    """What netx makes of file weights ``W``: lava-dl's own ``optimize_weight_bits``."""
    import contextlib
    import io

    # lava-dl prints a dataset-toolbox notice on import and clipping warnings when optimising
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lava.lib.dl.netx.utils import optimize_weight_bits
        w, nwb, wexp, sign = optimize_weight_bits(np.asarray(W))
    return LoihiDense(np.asarray(w), int(nwb), int(wexp), int(sign))


def _check_same_activation(proj, W: np.ndarray) -> None:
    from neurocomp.ir import loihi as fxp
    d = netx_synapse(W)
    w = fxp.effective_weights(d)
    if d.weight_exp >= 0:
        ok = np.array_equal(w << d.weight_exp, W)
    else:
        k = -d.weight_exp
        ok = not np.any(w % (1 << k)) and np.array_equal(w >> k, W)
    if not ok:
        raise NeurocompError(
            f"projection {proj.name!r}: its per-spike weights span {int(W.min())}..{int(W.max())}; netx stores 8-bit "
            "synapse weights ([-256, 254] mixed sign) and would clip or round them; quantise with weight_exp 0")


def write_netx(fixed: Network, out) -> dict:
    """Write ``fixed`` as a netx ``.net`` file at ``out`` (atomically); returns a summary."""
    import h5py

    from neurocomp.ir import loihi as fxp
    from neurocomp.io import atomic_write_bytes

    chain = _chain(fixed)
    layers = []
    for pop, proj in chain:
        W = file_weights(proj)
        _check_same_activation(proj, W)
        n = pop.neuron
        bias = fxp.effective_bias(n)
        if np.any(bias % (1 << NETX_BIAS_EXP)) or np.any(np.abs(bias >> NETX_BIAS_EXP) > BIAS_MANT_MAX):
            raise NeurocompError(f"population {pop.name!r}: bias {int(bias.min())}..{int(bias.max())} is not a 13-bit "
                                 "mantissa times 2**6, the only bias exponent netx writes")
        layers.append((pop, W, bias >> NETX_BIAS_EXP))
    import io as _io
    buf = _io.BytesIO()
    with h5py.File(buf, "w") as f:
        def kind(group, name):
            group.create_dataset("type", (1,), "S10", [name.encode("ascii")])
        g = f.create_group("layer/0")
        kind(g, "input")
        g.create_dataset("shape", data=np.array(fixed.input.shape))
        for i, (pop, W, bias) in enumerate(layers, start=1):
            g = f.create_group(f"layer/{i}")
            kind(g, "dense")
            g.create_dataset("shape", data=np.array(pop.shape))
            g.create_dataset("inFeatures", data=W.shape[1])
            g.create_dataset("outFeatures", data=W.shape[0])
            g.create_dataset("weight", data=W.astype(np.float32))
            if np.any(bias):
                g.create_dataset("bias", data=bias.astype(np.float32))
            nrn = pop.neuron
            for key, value in (("type", "CUBA"), ("iDecay", nrn.du + fxp.DS_OFFSET), ("vDecay", nrn.dv),
                               ("vThMant", nrn.vth), ("refDelay", 1), ("gradedSpike", False)):
                g.create_dataset(f"neuron/{key}", data=value)
        f.create_dataset("simulation/Ts", data=1)
        f.create_dataset("simulation/tSample", data=fixed.timesteps)
    atomic_write_bytes(Path(out), buf.getvalue())
    return {"format": "netx", "path": str(out), "layers": [
        {"layer": f"layer/{i}", "population": pop.name, "neurons": pop.size, "weight_range": [int(W.min()), int(W.max())]}
        for i, (pop, W, _) in enumerate(layers, start=1)]}
