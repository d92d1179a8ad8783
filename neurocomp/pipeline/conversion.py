"""Accuracy against latency of a converted ANN — the compile's step for ``source.kind: ann``.

For every ``convert.timesteps`` value ``T`` (and ``input.timesteps``) the held-out samples are encoded
with ``T`` steps and scored on the ``float`` target (the converted network, Lava's float LIF: reset to
zero) and the bit-accurate ``cpu`` target (the deployed integers: one quantisation, run for ``T``
steps), beside the ANN itself (the module's own forward). ``report["conversion"]["curve"]`` holds one
row per ``T``.

What Lava's reset to zero costs is measured on the same samples: the same float network with the
membrane reset by subtraction (``v -= vth`` after a spike, what conversion theory assumes and Lava's
LIF does not do) — a what-if simulation here (:func:`simulate_if`, numpy/torch float64, not a target),
whose ``reset="zero"`` form is tested equal to the ``float`` target. The gap between the two columns is
the price of the reset; ``convert.threshold_scale`` and ``convert.normalize`` are the knobs that move it
(``models/mnist_ann/README.md`` shows the measured trade-off).
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

from neurocomp.backends import get_backend
from neurocomp.ir import Network, encode
from neurocomp.ir.schedule import BATCHED, Schedule
from neurocomp.ir.synapses import Conv


def simulate_if(net: Network, x_in: np.ndarray, reset: str = "zero", batch: int = 50) -> np.ndarray:
    """Output spike counts ``[samples, n_out]`` of a float layered network of integrate-and-fire
    populations on input ``x_in [samples, T, n_in]`` (what the float target reads: graded levels are
    multiplied by the encoding's unit), every sample from rest, one population after the other (each
    sees its source's step ``t`` at its own step ``t``: the batched schedule's alignment), with the
    membrane reset to zero (``reset="zero"``, Lava) or by subtracting the threshold (``"subtract"``).

    Float LIF semantics as the ``float`` target (``u = u*(1-du) + a``, ``v = v*(1-dv) + u + bias``,
    spike on ``v > vth``); only the reset differs."""
    import torch
    from neurocomp.ir import is_graded
    if reset not in ("zero", "subtract"):
        raise ValueError(f"reset {reset!r}: 'zero' or 'subtract'")
    from neurocomp.backends.conv import pooled_factor
    unit = net.input.encoding.unit if is_graded(net.input.encoding) else 1.0
    x_in = np.asarray(x_in)
    steps = x_in.shape[1]
    constant = x_in.ndim == 3 and steps > 1 and x_in.strides[1] == 0     # direct current: one row per sample
    counts = []
    for lo in range(0, len(x_in), batch):
        rows = x_in[lo:lo + batch, :1] if constant else x_in[lo:lo + batch]
        emitted = {net.input.name: torch.from_numpy(np.asarray(rows, dtype=np.float64) * unit)}
        for pop in net.execution_order():
            a = None
            for proj in net.incoming(pop.name):
                s = emitted[proj.source]
                b, T = s.shape[:2]
                syn = proj.synapse
                if isinstance(syn, Conv):
                    shape = tuple(net.shape_of(proj.source))
                    img = s.reshape((b * T,) + shape)
                    block = pooled_factor(syn, shape)      # a pooling folded into the kernel: pool, then the
                    if block:                              # smaller kernel (4x fewer products for 2x2)
                        (bh, bw), (c, h, w_) = block, shape
                        img = img[:, :, :h // bh * bh, :w_ // bw * bw].reshape(
                            b * T, c, h // bh, bh, w_ // bw, bw).sum(dim=(3, 5))
                        weight = np.array(syn.weight[:, :, ::bh, ::bw], dtype=np.float64)
                        kw = dict(stride=(syn.stride[0] // bh, syn.stride[1] // bw),
                                  padding=(syn.padding[0] // bh, syn.padding[1] // bw), dilation=syn.dilation)
                    else:
                        weight = np.array(syn.weight, dtype=np.float64)
                        kw = dict(stride=syn.stride, padding=syn.padding, dilation=syn.dilation)
                    y = torch.nn.functional.conv2d(img, torch.from_numpy(weight), groups=syn.groups,
                                                   **kw).reshape(b, T, -1)
                else:
                    y = s @ torch.from_numpy(np.array(syn.weight, dtype=np.float64)).T
                a = y if a is None else a + y
            if a.shape[1] == 1 and steps > 1:
                a = a.expand(-1, steps, -1)
            n = pop.neuron
            bias = torch.from_numpy(np.array(n.bias, dtype=np.float64))
            u = torch.zeros(a.shape[0], a.shape[2], dtype=torch.float64)
            v = torch.zeros_like(u)
            out = torch.empty(a.shape, dtype=torch.float64)
            for t in range(a.shape[1]):
                u = u * (1 - n.du) + a[:, t]
                v = v * (1 - n.dv) + u + bias
                fired = v > n.vth
                out[:, t] = fired
                v = torch.where(fired, torch.zeros_like(v) if reset == "zero" else v - n.vth, v)
            emitted[pop.name] = out
        counts.append(emitted[net.output].sum(dim=1).numpy())
    return np.concatenate(counts).astype(np.int64) if counts else np.zeros((0, net.population(net.output).size))


def _accuracy(counts: np.ndarray, y: np.ndarray) -> float:
    pred = np.where(counts.sum(axis=1) == 0, -1, np.argmax(counts, axis=1))
    return float(np.mean(pred == y))


def accuracy_latency(spec, net: Network, fixed: Network, x_test: np.ndarray, y_test: np.ndarray,
                     input_shape: tuple, known: Optional[dict] = None, log=lambda s: None,
                     timing: Optional[dict] = None) -> dict:
    """``report["conversion"]``: the ANN's held-out accuracy and, per ``T``, the converted network's on the
    ``float`` and ``cpu`` targets and the float what-if with reset by subtraction (module docstring).
    ``known``: ``{T: (float Result, cpu Result)}`` already run on these samples (the compile's own T)."""
    from neurocomp.frontends.ann import build_ann, module_outputs
    t0 = time.perf_counter()
    logits = module_outputs(build_ann(spec), x_test, input_shape)
    ann = float(np.mean(np.argmax(logits, axis=1) == y_test))
    steps = sorted(set(spec.convert.timesteps) | {spec.input.timesteps})
    fl, cpu = get_backend("float"), get_backend("cpu")
    rows = []
    idx = np.arange(len(x_test))
    for T in steps:
        log(f"conversion: {len(x_test)} held-out samples at T={T} (float, cpu, reset-by-subtraction what-if)")
        spikes = encode(x_test, net.input.encoding, T, seed=spec.input.seed, indices=idx)
        schedule = Schedule(BATCHED, T)
        f_res, c_res = (known or {}).get(T) or (fl.run(net, spikes, schedule), cpu.run(fixed, spikes, schedule))
        subtract = simulate_if(net, spikes, reset="subtract")
        rows.append({"timesteps": int(T), "ann": ann, "snn_float": f_res.accuracy(y_test),
                     "snn_fixed": c_res.accuracy(y_test), "snn_float_reset_subtract": _accuracy(subtract, y_test),
                     "fixed_vs_float_predictions_equal": float(np.mean(f_res.predictions == c_res.predictions)),
                     "silent_samples_fixed": int(c_res.silent.sum()),
                     "output_spikes_per_sample_fixed": float(c_res.counts[net.output].sum(axis=1).mean())})
    if timing is not None:
        timing["conversion"] = time.perf_counter() - t0
    best = [r for r in rows if r["snn_fixed"] >= ann - 0.01]
    return {"ann_accuracy": ann, "held_out": int(len(y_test)), "curve": rows,
            "fastest_within_1pp": min((r["timesteps"] for r in best), default=None),
            "reference": "ann = the module's own forward (float32); snn_float = float target (Lava's float LIF, "
                         "reset to zero); snn_fixed = cpu target (bit-accurate Loihi integers); "
                         "snn_float_reset_subtract = float what-if with reset by subtraction (not a target)"}


def source_ann_workload(spec, input_shape: tuple) -> list:
    """The source ANN's own layers as the conventional baseline's job (:class:`~neurocomp.energy.cost.
    AnnLayer`): every ``nn.Conv2d``, ``nn.AvgPool2d`` (a depthwise conv) and ``nn.Linear`` of the module
    with its real weights, BatchNorm folded into the layer before it as a deployed ANN has it — not the
    SNN's composed layers, whose pooling is folded into the next layer's (bigger) kernel."""
    from neurocomp.energy.cost import AnnLayer
    from neurocomp.frontends.ann import ann_layers, build_ann
    from neurocomp.frontends.torch_layers import ConvOp
    out = []
    for layer in ann_layers(build_ann(spec), input_shape):
        for path, op, in_shape in layer.ops or []:
            if isinstance(op, ConvOp):
                if op.kind == "norm":
                    continue
                conv = Conv(op.weight, op.stride, op.padding, op.dilation, op.groups)
                c, h, w = conv.output_shape(in_shape)
                bias = np.repeat(op.bias, h * w) if op.bias is not None else np.zeros(c * h * w)
                out.append(AnnLayer(path, conv.dense_matrix(in_shape).astype(np.float32), bias.astype(np.float32),
                                    (conv, tuple(in_shape))))
            else:
                bias = op.bias if op.bias is not None else np.zeros(op.weight.shape[0])
                out.append(AnnLayer(path, op.weight.astype(np.float32), np.asarray(bias, dtype=np.float32)))
    return out


def build_source_ann(build, log=lambda s: None) -> Optional[list]:
    """:func:`source_ann_workload` for a build of a converted ANN, from the spec its build.json names
    (``None``, said in the log, when that spec or its files are gone: the equivalent ANN is used)."""
    from neurocomp.data import sample_shape
    from neurocomp.errors import NeurocompError
    from neurocomp.spec import load_spec
    try:
        spec = load_spec(build.info["spec"], overrides=build.info.get("overrides"))
        return source_ann_workload(spec, sample_shape(spec.dataset.name, spec.base_dir))
    except NeurocompError as e:
        log(f"the source ANN is not readable ({e}); the baseline is the SNN's equivalent ANN")
        return None
