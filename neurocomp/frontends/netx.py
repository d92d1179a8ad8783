"""lava-dl netx front end: a netx HDF5 network (``.net``) -> the Loihi fixed-point IR netx builds from it.

A netx file already holds Loihi integers, so this front end does what ``lava.lib.dl.netx.hdf5.Network``
does with them (lava-dl 0.6, ``netx/hdf5.py`` + ``netx/utils.py``) and returns the **fixed-point**
network (``Imported.network.is_fixed_point``): re-quantising it would change Lava's truncations and
break the spike-for-spike equality with netx's own Lava run. :func:`float_twin` gives the float
network those integers stand for (for the ``float`` target and reports).

Per layer of ``layer/0 .. layer/n-1`` (input to output):

* ``input`` without a neuron: the input shape (``shape``); spikes go straight to the first dense layer;
* ``dense``: weights ``[out, in]`` (float32 holding integers, read with ``astype(int)`` as netx
  does) -> ``optimize_weight_bits`` (lava-dl's own function: sign mode, ``num_weight_bits``,
  ``weight_exponent``, weights shifted left by the scale bits) -> :class:`LoihiDense`;
  neuron ``CUBA``/``LOIHI`` -> :class:`LoihiLIF` with ``du = iDecay - 1``, ``dv = vDecay``,
  ``vth = vThMant``, ``bias_mant = bias`` (0 without one), ``bias_exp = 6``;
* ``flatten``: nothing (dense layers read the flat C-major order netx's transpose produces).

Refused, naming the layer: ``conv`` (not yet mapped), ``pool``/``convT``/``unpool``/``average``/
``concat`` (netx itself raises NotImplementedError), ``dense_rec``/``dense_comp``, an ``input`` layer
with a neuron (netx's graded Input block), axonal ``delay``, ``gradedSpike``, SDNN/RF neurons, a dense
layer without a neuron (netx's non-spiking default), ``iDecay = 0`` (``du = -1``: no 12-bit decay).
``refDelay`` is read and ignored, as netx ignores it (Lava's LIF has no refractory period).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocomp.errors import FrontendError
from neurocomp.ir import LIF, Dense, Input, LoihiDense, LoihiLIF, Network, Population, Projection

NETX_BIAS_EXP = 6


def _str(ds) -> str:
    v = ds[()]
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)[0]
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


def _ints(path, where: str, arr) -> np.ndarray:
    a = np.asarray(arr)
    if a.size and not np.all(np.isfinite(a)):
        raise FrontendError(f"{path}: {where}: contains NaN/Inf")
    return a.astype(int)       # netx's NetDict reads weights and biases with astype(int)


def read_layers(path) -> list:
    """The file's layers as dicts ``{"type", "shape", "weight", "bias", "neuron": {...}, ...}``."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise FrontendError(f"{path}: not an HDF5 file ({str(e).splitlines()[0]})") from None
    with f:
        if "layer" not in f:
            raise FrontendError(f"{path}: no 'layer' group: not a lava-dl netx network")
        keys = sorted(f["layer"].keys(), key=lambda k: int(k) if k.isdigit() else 1 << 30)
        layers = []
        for k in keys:
            g = f["layer"][k]
            if "type" not in g:
                raise FrontendError(f"{path}: layer/{k}: no 'type'")
            d = {"index": k, "type": _str(g["type"])}
            for key in g.keys():
                if key in ("type",):
                    continue
                if isinstance(g[key], h5py.Group):
                    d[key] = {kk: (_str(g[key][kk]) if kk == "type" else g[key][kk][()]) for kk in g[key].keys()}
                else:
                    d[key] = g[key][()]
            layers.append(d)
    if not layers:
        raise FrontendError(f"{path}: 'layer' group is empty")
    return layers


def _neuron(path, where, layer, size) -> LoihiLIF:
    nrn = layer.get("neuron")
    if nrn is None:
        raise FrontendError(f"{path}: {where}: dense layer without a neuron (netx's non-spiking default) "
                            "cannot be read out; supported: CUBA/LOIHI neurons")
    kind = nrn.get("type", "?")
    if kind not in ("CUBA", "LOIHI"):
        raise FrontendError(f"{path}: {where}: neuron type {kind}; supported: CUBA/LOIHI (Loihi's LIF)")
    if bool(np.asarray(nrn.get("gradedSpike", False)).reshape(-1)[0]):
        raise FrontendError(f"{path}: {where}: gradedSpike=True (graded spikes) is not supported")
    for key in ("iDecay", "vDecay", "vThMant"):
        if key not in nrn:
            raise FrontendError(f"{path}: {where}: neuron has no {key}")
    i_decay = int(np.asarray(nrn["iDecay"]).reshape(-1)[0])
    if i_decay == 0:
        raise FrontendError(f"{path}: {where}: iDecay=0 (no current decay) is du = -1 in Lava, outside Loihi's "
                            "12-bit decay; use iDecay >= 1")
    bias = layer.get("bias")
    bias_mant = np.zeros(size, dtype=np.int64) if bias is None else np.broadcast_to(
        _ints(path, f"{where}: bias", bias).reshape(-1), (size,))
    return LoihiLIF(size, du=i_decay - 1, dv=int(np.asarray(nrn["vDecay"]).reshape(-1)[0]),
                    vth=int(np.asarray(nrn["vThMant"]).reshape(-1)[0]), bias_mant=bias_mant, bias_exp=NETX_BIAS_EXP)


def layers_to_ir(layers: list, name: str, timesteps: int, encoding, path="netx") -> tuple:
    """netx layers -> ``(fixed-point Network, details)``."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from lava.lib.dl.netx.utils import optimize_weight_bits   # lava-dl prints a notice on import

    in_shape = None
    pops, projs, rows = [], [], []
    prev, prev_size = "input", None
    for layer in layers:
        kind, where = layer["type"], f"layer/{layer['index']}"
        if kind == "input":
            if "neuron" in layer:
                raise FrontendError(f"{path}: {where}: an input layer with a neuron (netx's graded Input block) is not "
                                    "supported; neurocomp feeds spikes straight into the first dense layer")
            if pops or in_shape is not None:
                raise FrontendError(f"{path}: {where}: an input layer after the first layer")
            if "shape" in layer:
                in_shape = tuple(int(d) for d in np.atleast_1d(layer["shape"]))
            continue
        if kind == "flatten":
            continue
        if kind != "dense":
            why = {"conv": "convolution layers are not mapped from netx files yet (dense layers only)",
                   "dense_rec": "recurrent dense layers are not supported",
                   "dense_comp": "complex dense layers are not supported"}.get(
                kind, "netx itself does not implement it (NotImplementedError in netx 0.6)")
            raise FrontendError(f"{path}: {where}: layer type {kind!r}: {why}; supported: input, dense, flatten")
        if "delay" in layer:
            raise FrontendError(f"{path}: {where}: axonal delays ('delay') are not supported")
        if "weight" not in layer:
            raise FrontendError(f"{path}: {where}: dense layer has no 'weight' (complex weights are not supported)")
        size = int(np.prod(layer.get("shape", [np.asarray(layer["weight"]).shape[0]])))
        w = _ints(path, f"{where}: weight", layer["weight"])
        if w.ndim == 1:
            w = w.reshape(size, -1)
        if w.shape[0] != size:
            raise FrontendError(f"{path}: {where}: weight has {w.shape[0]} rows for {size} neurons")
        if prev_size is None:
            prev_size = int(np.prod(in_shape)) if in_shape is not None else w.shape[1]
            in_shape = in_shape if in_shape is not None and int(np.prod(in_shape)) == prev_size else (prev_size,)
        if w.shape[1] != prev_size:
            raise FrontendError(f"{path}: {where}: weight takes {w.shape[1]} inputs, the previous layer has {prev_size}")
        with contextlib.redirect_stdout(io.StringIO()):       # its clipping warnings: netx's own behaviour
            mw, nwb, wexp, sign = optimize_weight_bits(w)
        neuron = _neuron(path, where, layer, size)
        pop = f"layer{layer['index']}"
        pops.append(Population(pop, neuron))
        projs.append(Projection(f"{pop}.synapse", prev, pop,
                                LoihiDense(np.asarray(mw), int(nwb), int(wexp), int(sign))))
        rows.append({"layer": pop, "neurons": size, "num_weight_bits": int(nwb), "weight_exp": int(wexp),
                     "sign_mode": int(sign), "du": neuron.du, "dv": neuron.dv, "vth": neuron.vth,
                     "refDelay": int(np.asarray(layer["neuron"].get("refDelay", 1)).reshape(-1)[0])})
        prev, prev_size = pop, size
    if not pops:
        raise FrontendError(f"{path}: no dense layer")
    net = Network(name=name, input=Input("input", int(np.prod(in_shape)), encoding, shape=in_shape),
                  populations=pops, projections=projs, output=pops[-1].name, timesteps=timesteps)
    return net, {"fixed_point": True, "layers": rows}


def float_twin(fixed: Network) -> Network:
    """The float network a netx fixed-point network stands for, in Lava's units (``v`` / 64): weights
    ``w_eff * 2**weight_exp``, ``vth``, bias ``bias_mant * 2**bias_exp / 64``, decays ``(du + 1) / 4096``,
    ``dv / 4096``."""
    from neurocomp.ir import loihi as fxp

    pops = [Population(p.name, LIF(p.size, du=(p.neuron.du + fxp.DS_OFFSET) / fxp.DECAY_UNITY,
                                   dv=p.neuron.dv / fxp.DECAY_UNITY, vth=float(p.neuron.vth),
                                   bias=fxp.effective_bias(p.neuron) / 2.0 ** fxp.ACT_SHIFT), shape=p.shape)
            for p in fixed.populations]
    projs = [Projection(p.name, p.source, p.target,
                        Dense(fxp.effective_weights(p.synapse) * 2.0 ** p.synapse.weight_exp))
             for p in fixed.projections]
    return fixed.replace(populations=pops, projections=projs)


def import_network(spec, input_shape: tuple):
    """Front-end entry point (:mod:`neurocomp.frontends`): the spec's netx file -> fixed-point IR."""
    from neurocomp.frontends import Imported
    from neurocomp.spec import input_encoding

    path = spec.resolve(spec.source.file)
    net, details = layers_to_ir(read_layers(path), spec.name, spec.input.timesteps, input_encoding(spec), path)
    if net.input.size != int(np.prod(input_shape)):
        raise FrontendError(f"{path}: the network takes {net.input.size} inputs, the dataset's samples have "
                            f"{int(np.prod(input_shape))}")
    return Imported(net, details)
