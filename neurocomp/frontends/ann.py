"""ANN -> SNN conversion front end (source kind ``ann``): a trained ReLU ``nn.Module`` -> integrate-and-fire
populations, normalised on data.

What it maps (walked in registration order, as the module's ``forward`` must apply them — checked, see
below):

* ``nn.Linear``, ``nn.Conv2d`` and everything linear between two ``nn.ReLU``\\s — ``nn.AvgPool2d`` (and
  sum pooling), ``nn.BatchNorm2d`` and ``nn.BatchNorm1d`` (inference mode, folded), ``nn.Flatten`` — become
  one projection, composed exactly by :mod:`neurocomp.frontends.torch_layers` (the torch front end's
  own composition; its layer builders give the same one-line refusals);
* each ``nn.ReLU`` ends a layer: an integrate-and-fire population (Lava's LIF with ``du = 1``: the current
  is this step's input, ``dv = 0``: no leak) whose bias is the layer's bias (``nn.Linear``/``nn.Conv2d``
  bias and BatchNorm shifts: Loihi's bias enters v each step, which for ``du = 1`` is the same as a
  current); the layers after the last ReLU are the output population (read out by spike counts);
* ``nn.Dropout`` / ``nn.Identity``: nothing (inference). Refused, one line naming the module: max
  pooling (no synaptic form: Loihi synapses sum), other activations (only ReLU's rate code is IF), spiking
  layers (``kind: torch`` takes those), anything unknown.

Data-based normalisation (Diehl et al. 2015; Rueckauer et al. 2017). An IF neuron with threshold 1 fed
``a`` per step fires at a rate of about ``a`` (for ``0 <= a <= 1``), so the activations of layer ``l``
are scaled by ``lambda_l``, the ``convert.normalize`` statistic of its activations on ``convert.samples``
training samples (the spec's dataset, the first ones of its training split — deterministic): the
maximum (``max``) or the ``convert.percentile``-th percentile of the nonzero ones (``percentile``,
robust to rare outliers, at the price of saturating them). Spikes of layer ``l - 1`` stand for
``lambda_{l-1}``, so ``W_l <- W_l * lambda_{l-1} / lambda_l``, ``b_l <- b_l / lambda_l``, threshold
``convert.threshold_scale`` (1 by default). The input counts as ``lambda_0 = 1`` for graded
(``current``) input, whose values are the pixels, and ``1 / max_rate`` for a rate code (a pixel ``x``
spikes ``x * max_rate`` of the steps).

Lava's LIF resets v to zero after a spike, not by subtracting the threshold: the charge above threshold
is lost at every spike, which lowers high rates (a constant input ``a`` fires every ``floor(1/a) + 1``
steps, not every ``1/a``). The compile measures what that costs per ``convert.timesteps`` (report
``conversion``); a ``threshold_scale`` above 1 keeps the per-step input small against the threshold,
which shrinks the loss, at the price of lower rates (more steps).

The module's ``forward`` must be the layers in registration order: :func:`import_network` runs the
composed network (float64) and the module itself on the calibration samples and refuses the model when
their outputs differ (a skip connection, a functional call in ``forward``), so nothing is converted
that the module does not compute.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
from torch import nn

from neurocomp.errors import FrontendError
from neurocomp.ir import LIF, Dense, Input, Network, Population, Projection
from neurocomp.ir.synapses import Conv

_SKIP = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
_REFUSED = {
    "MaxPool1d": "max pooling has no synaptic form (Loihi synapses sum); use nn.AvgPool2d",
    "MaxPool2d": "max pooling has no synaptic form (Loihi synapses sum); use nn.AvgPool2d",
    "AdaptiveMaxPool2d": "max pooling has no synaptic form (Loihi synapses sum); use nn.AvgPool2d",
    "AdaptiveAvgPool2d": "adaptive pooling's windows depend on the input size; use nn.AvgPool2d with a fixed kernel",
    "LIF": "a spiking layer: this is already an SNN; use source.kind: torch",
    "RecurrentLIF": "a spiking layer: this is already an SNN; use source.kind: torch",
}
_ACTIVATIONS = ("Sigmoid", "Tanh", "LeakyReLU", "PReLU", "ReLU6", "ELU", "SELU", "GELU", "SiLU", "Softplus",
                "Hardtanh", "Hardswish", "Mish", "Softmax", "LogSoftmax")


@dataclass
class AnnLayer:
    """One layer of the ANN as the SNN will hold it: ``synapse`` (float Dense/Conv) plus ``bias`` (per
    output neuron) on a ``in_shape`` input giving ``out_shape``; ``relu``: whether a ReLU follows."""

    name: str
    projection: str
    synapse: object
    bias: Optional[np.ndarray]
    in_shape: tuple
    out_shape: tuple
    relu: bool
    modules: List[str]
    ops: list = None       # the module's own layers, uncomposed: (path, ConvOp | LinearOp, in_shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float64 ``[batch, n_in]`` -> ``[batch, n_out]`` (pre-activation)."""
        if isinstance(self.synapse, Conv):
            c = self.synapse
            img = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64).reshape((-1,) + self.in_shape))
            with torch.no_grad():
                y = torch.nn.functional.conv2d(img, torch.from_numpy(np.array(c.weight)), stride=c.stride,
                                               padding=c.padding, dilation=c.dilation, groups=c.groups)
            y = y.reshape(len(x), -1).numpy()
        else:
            y = x @ self.synapse.weight.T
        return y + self.bias if self.bias is not None else y


def _leaves(model: nn.Module):
    def walk(mod, prefix):
        children = list(mod.named_children())
        if not children:
            yield prefix or type(mod).__name__, mod
            return
        for name, child in children:
            yield from walk(child, f"{prefix}.{name}" if prefix else name)
    yield from walk(model, "")


def _bn1d(path: str, mod: nn.BatchNorm1d) -> tuple:
    """Inference-mode BatchNorm1d as ``x * scale + shift`` per feature."""
    if mod.running_mean is None or mod.running_var is None:
        raise FrontendError(f"module {path!r}: BatchNorm1d(track_running_stats=False) normalises by each batch's "
                            "own statistics, which has no fixed-weight form; use track_running_stats=True")
    mean = mod.running_mean.detach().double().numpy()
    var = mod.running_var.detach().double().numpy()
    gamma = mod.weight.detach().double().numpy() if mod.weight is not None else np.ones_like(mean)
    beta = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + mod.eps)
    return scale, beta - mean * scale


def ann_layers(model: nn.Module, input_shape: tuple) -> List[AnnLayer]:
    """The ANN as a list of layers, each everything linear up to (and including) a ReLU; raises
    :class:`FrontendError` naming the module for anything that does not convert."""
    from neurocomp.frontends.torch import _conv_op, _finite, _norm_op, _pool_op
    from neurocomp.frontends.torch_layers import CompositionError, LinearOp, compose

    shape = prev_shape = tuple(int(d) for d in input_shape)
    layers: List[AnnLayer] = []
    chain, paths, pending = [], [], None      # ops since the last ReLU; a BatchNorm1d waiting for its Linear
    own = []                                  # the same ops with their input shapes (a conventional baseline)
    weighted = None

    def close(relu_path: Optional[str]):
        nonlocal chain, paths, prev_shape, shape, weighted, pending, own
        if pending is not None:
            raise FrontendError(f"module {pending[0]!r}: BatchNorm1d not followed by an nn.Linear it can fold into")
        if weighted is None:
            if relu_path:
                raise FrontendError(f"module {relu_path!r}: nn.ReLU without an nn.Linear or nn.Conv2d before it")
            raise FrontendError(f"module {paths[0]!r}: trailing layers without an nn.Linear or nn.Conv2d")
        try:
            synapse, bias, out_shape, kind = compose(chain, prev_shape)
        except CompositionError as e:
            raise FrontendError(f"module {weighted!r}: the layers before it cannot be one synapse: {e}") from None
        # named after the modules, as the torch front end names them ('relu1', 'conv0', 'fc7' in a Sequential)
        name = (f"relu{relu_path}" if relu_path.isdigit() else relu_path.replace(".", "_")) if relu_path else "output"
        proj = f"{'conv' if isinstance(synapse, Conv) else 'fc'}{weighted}" if weighted.isdigit() else \
            weighted.replace(".", "_")
        layers.append(AnnLayer(name, proj, synapse, bias, prev_shape, out_shape, relu_path is not None, list(paths),
                               own))
        prev_shape = shape = out_shape
        chain, paths, weighted, own = [], [], None, []

    for path, mod in _leaves(model):
        kind = type(mod).__name__
        if isinstance(mod, _SKIP):
            continue
        if isinstance(mod, nn.ReLU):
            close(path)
            continue
        if kind in _REFUSED:
            raise FrontendError(f"module {path!r}: nn.{kind} cannot be converted: {_REFUSED[kind]}")
        if kind in _ACTIVATIONS:
            raise FrontendError(f"module {path!r}: nn.{kind} cannot be converted: only nn.ReLU maps onto the rate of "
                                "an integrate-and-fire neuron")
        paths.append(path)
        if isinstance(mod, nn.Flatten):
            if (mod.start_dim, mod.end_dim) != (1, -1):
                raise FrontendError(f"module {path!r}: Flatten(start_dim={mod.start_dim}, end_dim={mod.end_dim}) is "
                                    "not supported; use nn.Flatten()")
            if len(shape) == 3:
                chain.append("flatten")
                shape = (int(np.prod(shape)),)
            continue
        if isinstance(mod, nn.BatchNorm1d):
            if len(shape) != 1 or mod.num_features != shape[0]:
                raise FrontendError(f"module {path!r}: BatchNorm1d({mod.num_features}) on a {shape} input (it "
                                    "converts on flat features, after nn.Flatten or nn.Linear)")
            scale, shift = _bn1d(path, mod)
            if chain and isinstance(chain[-1], LinearOp):          # after its Linear: scale the rows
                lin = chain[-1]
                b = lin.bias if lin.bias is not None else np.zeros(len(scale))
                chain[-1] = LinearOp(lin.path, lin.weight * scale[:, None], b * scale + shift)
                own[-1] = (own[-1][0], chain[-1], own[-1][2])
            elif pending is None:                                   # before the next Linear: its columns
                pending = (path, scale, shift)
            else:
                raise FrontendError(f"module {path!r}: two BatchNorm1d in a row")
            continue
        if isinstance(mod, nn.Linear):
            if weighted is not None:
                raise FrontendError(f"module {path!r}: nn.Linear after {weighted!r} without a ReLU between them")
            if len(shape) != 1 and not chain and not layers:
                shape = prev_shape = (int(np.prod(shape)),)        # a first Linear reads the sample flat
            if len(shape) != 1:
                raise FrontendError(f"module {path!r}: nn.Linear on a {shape} map; put nn.Flatten() before it")
            if mod.in_features != shape[0]:
                raise FrontendError(f"module {path!r}: in_features={mod.in_features}, previous layer has {shape[0]}")
            w = _finite(path, mod.weight.detach().double().numpy())
            b = _finite(path, mod.bias.detach().double().numpy()) if mod.bias is not None else None
            if pending is not None:
                _, scale, shift = pending
                b = (b if b is not None else 0.0) + w @ shift
                w, pending = w * scale[None, :], None
            chain.append(LinearOp(path, w, b))
            own.append((path, chain[-1], shape))
            weighted, shape = path, (mod.out_features,)
            continue
        if isinstance(mod, (nn.Conv2d, nn.AvgPool2d, nn.LPPool2d, nn.BatchNorm2d)):
            if len(shape) != 3:
                raise FrontendError(f"module {path!r}: nn.{kind} needs a (C, H, W) input; the previous layer is "
                                    f"flat {shape}")
            if any(isinstance(op, LinearOp) for op in chain):
                raise FrontendError(f"module {path!r}: nn.{kind} after nn.Linear {weighted!r} without a ReLU between")
            if isinstance(mod, nn.Conv2d):
                if weighted is not None:
                    raise FrontendError(f"module {path!r}: nn.Conv2d after {weighted!r} without a ReLU between them")
                op, weighted = _conv_op(path, mod, shape), path
            elif isinstance(mod, nn.BatchNorm2d):
                op = _norm_op(path, mod, shape)
            else:
                op = _pool_op(path, mod, shape)
            try:
                in_shape, shape = shape, op.out_shape(shape)
            except ValueError as e:
                raise FrontendError(f"module {path!r}: {e}") from None
            chain.append(op)
            own.append((path, op, in_shape))
            continue
        raise FrontendError(f"module {path!r}: layer type {kind} cannot be converted; supported: nn.Linear, "
                            "nn.Conv2d, nn.ReLU, nn.AvgPool2d, nn.BatchNorm1d/2d, nn.Flatten, nn.Dropout")
    if chain or pending is not None:
        close(None)
    if not layers:
        raise FrontendError("the model has no nn.Linear or nn.Conv2d layers")
    if layers[-1].relu:
        layers[-1].name = "output"     # a ReLU at the end changes nothing the spike counts read
    return layers


def ann_forward(layers: List[AnnLayer], x: np.ndarray, upto: Optional[int] = None) -> List[np.ndarray]:
    """Each layer's activation (ReLU applied where the ANN applies it) for flat inputs ``x``, float64."""
    a, out = np.asarray(x, dtype=np.float64).reshape(len(x), -1), []
    for layer in layers[:upto]:
        a = layer.forward(a)
        if layer.relu:
            a = np.maximum(a, 0.0)
        out.append(a)
    return out


def _statistic(acts: np.ndarray, how: str, percentile: float) -> float:
    pos = acts[acts > 0]
    if pos.size == 0:
        return 1.0
    return float(pos.max() if how == "max" else np.percentile(pos, percentile))


def calibration_samples(spec) -> np.ndarray:
    """The first ``convert.samples`` training samples of the spec's dataset (features in [0, 1], flat)."""
    from neurocomp.data import load_split
    split = load_split(spec.dataset.name, spec.dataset.holdout, spec.dataset.seed, spec.base_dir,
                       classes=spec.dataset.classes, where=spec.path)
    return np.asarray(split.x_train[:spec.convert.samples], dtype=np.float64)


def build_ann(spec) -> nn.Module:
    from neurocomp.frontends.torch import build_module
    src = spec.source
    return build_module(src.factory, spec.resolve(src.weights) if src.weights else None, spec.base_dir, src.kwargs)


def module_outputs(model: nn.Module, x: np.ndarray, input_shape: tuple, batch: int = 500) -> np.ndarray:
    """The module's own forward (float32, eval mode) on flat samples ``x`` viewed as ``input_shape``."""
    outs = []
    with torch.no_grad():
        for lo in range(0, len(x), batch):
            xb = torch.tensor(np.asarray(x[lo:lo + batch], dtype=np.float32).reshape((-1,) + tuple(input_shape)))
            outs.append(model(xb).reshape(len(xb), -1).double().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0))


def check_forward(layers: List[AnnLayer], model: nn.Module, x: np.ndarray, input_shape: tuple) -> float:
    """The largest difference between the composed layers' output and the module's own, relative to the
    output's scale; raises :class:`FrontendError` when they disagree (the forward is not the layers)."""
    ours = ann_forward(layers, x)[-1]
    last = layers[-1]
    theirs = module_outputs(model, x, input_shape)
    if last.relu:
        theirs = np.maximum(theirs, 0.0)
    if ours.shape != theirs.shape:
        raise FrontendError(f"the module's forward returns {theirs.shape[1:]} values per sample, its layers in "
                            f"registration order make {ours.shape[1:]}: forward must apply the layers in order")
    err = float(np.abs(ours - theirs).max(initial=0.0) / max(float(np.abs(theirs).max(initial=0.0)), 1e-12))
    if err > 1e-3:
        raise FrontendError(f"the module's forward differs from its layers applied in registration order (relative "
                            f"difference {err:.2g} on the calibration samples): skip connections or functional "
                            "calls in forward() are not converted")
    return err


def convert(layers: List[AnnLayer], x: np.ndarray, name: str, timesteps: int, encoding, input_shape: tuple,
            normalize: str = "percentile", percentile: float = 99.9, threshold_scale: float = 1.0):
    """The normalised IF network and the per-layer ``lambda`` (module docstring) -> ``(network, details)``."""
    from neurocomp.ir.encodings import LatencyEncoding, RateEncoding, SinusoidEncoding
    if isinstance(encoding, LatencyEncoding):
        raise FrontendError("input.encoding: latency codes one spike per pixel, which carries no rate for a "
                            "converted ANN; use current (graded input) or rate")
    acts = ann_forward(layers, x)
    # the input layer's activation scale: spikes per step of a white pixel (1 for graded input)
    lam_in = (1.0 / encoding.max_rate if isinstance(encoding, RateEncoding)
              else 1.0 / (encoding.max_freq * encoding.dt) if isinstance(encoding, SinusoidEncoding) else 1.0)
    pops, projs, rows, prev, prev_lam = [], [], [], "input", lam_in
    for layer, a in zip(layers, acts):
        lam = _statistic(a, normalize, percentile)
        syn = layer.synapse
        w = syn.weight * prev_lam / lam
        synapse = Conv(w, **syn.geometry()) if isinstance(syn, Conv) else Dense(w)
        bias = layer.bias / lam if layer.bias is not None else None
        n = int(np.prod(layer.out_shape))
        pops.append(Population(layer.name, LIF(n, du=1.0, dv=0.0, vth=float(threshold_scale), bias=bias),
                               shape=layer.out_shape))
        projs.append(Projection(layer.projection, prev, layer.name, synapse))
        pos = a[a > 0]
        rows.append({"population": layer.name, "projection": layer.projection, "modules": layer.modules,
                     "lambda": lam, "max_activation": float(pos.max()) if pos.size else 0.0,
                     "saturated_fraction": float(np.mean(pos > lam)) if pos.size else 0.0,
                     "active_fraction": float(np.mean(a > 0))})
        prev, prev_lam = layer.name, lam
    net = Network(name=name, input=Input("input", int(np.prod(input_shape)), encoding, shape=tuple(input_shape)),
                  populations=pops, projections=projs, output=pops[-1].name, timesteps=timesteps)
    details = {"normalize": normalize, "percentile": percentile if normalize == "percentile" else None,
               "threshold_scale": threshold_scale, "input_lambda": lam_in, "samples": int(len(x)),
               "neuron": "integrate-and-fire (Lava LIF, du=1, dv=0), reset to zero", "layers": rows}
    return net, details


def import_network(spec, input_shape: tuple):
    """Front-end entry point (:mod:`neurocomp.frontends`): the ANN, normalised on the spec's data."""
    from neurocomp.frontends import Imported
    from neurocomp.spec import input_encoding

    model = build_ann(spec)
    layers = ann_layers(model, input_shape)
    x = calibration_samples(spec)
    if x.shape[1] != int(np.prod(input_shape)):
        raise FrontendError(f"{spec.path}: dataset {spec.dataset.name!r} has {x.shape[1]} features, the input shape "
                            f"is {tuple(input_shape)}")
    err = check_forward(layers, model, x, input_shape)
    c = spec.convert
    net, details = convert(layers, x, spec.name, spec.input.timesteps, input_encoding(spec), input_shape,
                           c.normalize, c.percentile, c.threshold_scale)
    details["forward_check_relative_error"] = err
    return Imported(net, details)
