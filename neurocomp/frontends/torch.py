"""PyTorch front end: a real ``nn.Module`` with its real state_dict -> float IR.

Recognised layers, walked in registration order (``nn.Sequential`` order):

* ``nn.Linear`` followed by :class:`neurocomp.nn.LIF` -> a Dense projection into a LIF population
  (the LIF's own ``bias`` enters v, as Loihi's does; a nonzero Linear bias enters the current u and is
  only accepted when ``du == 1``, where the two coincide); a :class:`neurocomp.nn.RecurrentLIF` adds
  its ``recurrent`` Linear as a projection from the population to itself (then the network runs on
  the stream schedule);
* ``nn.Conv2d`` (zero padding, any stride/dilation/groups, ``padding="same"`` when symmetric)
  followed by a LIF -> a Conv projection into a ``(C, H, W)`` population (a conv bias, like a Linear
  bias, only with ``du == 1``);
* ``nn.AvgPool2d`` / sum pooling (``nn.LPPool2d(1, k)``, ``AvgPool2d(divisor_override=1)``) and
  inference-mode ``nn.BatchNorm2d`` fold into the Conv2d/Linear beside them (exactly, see
  :mod:`neurocomp.frontends.torch_layers`), or, alone between two LIF layers, become a pooling
  projection (a depthwise Conv with fixed weights);
* ``nn.Flatten`` -> nothing: a Linear after a ``(C, H, W)`` population reads it C-major, as torch does;
  ``nn.Identity`` / ``nn.Dropout`` -> nothing (no-ops at inference);
* lava-dl ``slayer.block.cuba`` Dense / Conv / Pool / Flatten -> see :mod:`neurocomp.frontends.slayer`.

Max pooling, padding modes other than zeros, asymmetric padding, ``ceil_mode`` windows, batch
statistics and adaptive pooling have no Lava form and are refused naming the module.

Anything else is an error naming the module path, so nothing is silently dropped.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurocomp import nn as ncnn
from neurocomp.errors import FrontendError
from neurocomp.frontends.user_code import call_user, describe_exception, import_user_file
from neurocomp.ir import LIF, Dense, Input, Network, Population, Projection

_NOOPS = (nn.Flatten, nn.Identity, nn.Dropout)


def load_factory(factory: str, base_dir: Path):
    """``path/to/file.py:fn`` (relative to ``base_dir``) or ``package.module:fn`` -> the callable."""
    target, fn_name = factory.split(":", 1)
    if target.endswith(".py"):
        module = import_user_file(Path(target) if Path(target).is_absolute() else base_dir / target)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise FrontendError(f"source.factory: cannot import module {target!r}: {e}") from None
        except (Exception, SystemExit) as e:  # the module's own code failed while importing
            raise FrontendError(f"source.factory: importing {target!r} failed: {describe_exception(e)}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn) or isinstance(fn, type) and not issubclass(fn, nn.Module):
        raise FrontendError(f"source.factory: {target} has no callable {fn_name!r} (a function returning an "
                            "nn.Module, or an nn.Module class)")
    return fn


def load_state_dict(path: Path) -> dict:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise FrontendError(f"{path}: cannot read the weights ({e.strerror})") from None
    if size == 0:
        raise FrontendError(f"{path}: empty file (0 bytes); expected a torch state_dict (torch.save(model.state_dict()))")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise FrontendError(f"{path}: not a torch state_dict ({describe_exception(e)[:160]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FrontendError(f"{path}: expected a state_dict (mapping of tensor names), got {type(state).__name__}")
    for key, value in state.items():
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
            bad = "NaN" if torch.isnan(value).any() else "Inf"
            raise FrontendError(f"{path}: {key}: contains {bad} values; weights must be finite")
    return state


def _check_lif_constants(model: nn.Module, weights: Path | None) -> None:
    """du, dv in [0, 1] and vth > 0 (finite) for every neurocomp.nn.LIF, naming the state_dict entry
    that set an out-of-range one (the LIF constructor checks them, a state_dict bypasses it)."""
    for path, mod in model.named_modules():
        if not isinstance(mod, ncnn.LIF):
            continue
        for field, what, ok, allowed in (("du", "current decay", lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
                                         ("dv", "voltage decay", lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
                                         ("vth", "threshold", lambda v: v > 0 and np.isfinite(v), "> 0")):
            value = getattr(mod, field, None)
            if not torch.is_tensor(value) or value.numel() != 1:
                continue
            v = float(value)
            if not ok(v):
                key = f"{path}.{field}" if path else field
                origin = f"{weights}: {key}" if weights is not None else f"module {path!r}: {field}"
                raise FrontendError(f"{origin} = {v:g}, the LIF {what} must be {allowed}")


def build_module(factory: str, weights: Path | None, base_dir: Path, kwargs: dict | None = None) -> nn.Module:
    fn = load_factory(factory, base_dir)
    model = call_user(fn, kwargs, f"source.factory: {factory}")
    if not isinstance(model, nn.Module):
        raise FrontendError(f"source.factory: {factory} returned {type(model).__name__}, not a torch nn.Module "
                            "(is it the function that builds the model?)")
    if weights is not None:
        state = load_state_dict(weights)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, ValueError, AttributeError, KeyError) as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            first = lines[1] if len(lines) > 1 else (lines[0] if lines else type(e).__name__)
            raise FrontendError(f"{weights}: does not match the module from {factory}: {first[:200]}") from None
    _check_lif_constants(model, weights)
    model.eval()
    return model


def _leaf_layers(model: nn.Module):
    """(path, module) in registration order, stopping at modules we map whole."""
    from neurocomp.frontends import slayer as slayer_fe

    def walk(mod, prefix):
        children = list(mod.named_children())
        if not children or isinstance(mod, ncnn.LIF) or slayer_fe.is_slayer_block(mod):
            yield prefix or type(mod).__name__, mod
            return
        for name, child in children:
            yield from walk(child, f"{prefix}.{name}" if prefix else name)

    yield from walk(model, "")


def _layer_name(path: str, kind: str) -> str:
    """The module path names the layer; nn.Sequential's bare indices get a kind prefix ('lif1')."""
    return f"{kind}{path}" if path.isdigit() else path


def _finite(path: str, arr: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        raise FrontendError(f"module {path!r}: parameters contain NaN/Inf")
    return arr


def module_to_ir(model: nn.Module, input_size: int, name: str, timesteps: int, encoding,
                 input_shape: tuple | None = None) -> Network:
    """Map a trained module to the float IR (see module docstring for what is recognised).

    ``input_shape``: one sample's shape, e.g. ``(1, 28, 28)`` for a model that starts with a conv
    (default: flat ``(input_size,)``)."""
    return convert_module(model, input_size, name, timesteps, encoding, input_shape)[0]


def _pair(v) -> tuple:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(x) for x in v)


def _conv_op(path: str, mod: nn.Conv2d, shape: tuple):
    from neurocomp.frontends.torch_layers import ConvOp
    if mod.padding_mode != "zeros":
        raise FrontendError(f"module {path!r}: Conv2d padding_mode={mod.padding_mode!r} cannot be mapped: Lava's "
                            "Conv pads with zeros only (use padding_mode='zeros')")
    if mod.in_channels != shape[0]:
        raise FrontendError(f"module {path!r}: in_channels={mod.in_channels}, previous layer has {shape[0]} "
                            f"channels {shape}")
    padding = mod.padding
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        else:  # "same": torch pads (d*(k-1))//2 before and the rest after; Lava pads both sides alike
            span = [d * (k - 1) for d, k in zip(mod.dilation, mod.kernel_size)]
            if any(s % 2 for s in span):
                raise FrontendError(f"module {path!r}: Conv2d padding='same' with an even kernel span {span} pads "
                                    "unequally on the two sides, which Lava's Conv cannot (it pads symmetrically)")
            padding = tuple(s // 2 for s in span)
    weight = _finite(path, mod.weight.detach().cpu().double().numpy())
    bias = _finite(path, mod.bias.detach().cpu().double().numpy()) if mod.bias is not None else None
    return ConvOp(path, weight, _pair(mod.stride), _pair(padding), _pair(mod.dilation), int(mod.groups), bias, "conv")


def _pool_op(path: str, mod, shape: tuple):
    """nn.AvgPool2d (any divisor_override) or nn.LPPool2d(norm_type=1) (sum pooling) as a depthwise conv."""
    from neurocomp.frontends.torch_layers import ConvOp
    k = _pair(mod.kernel_size)
    stride = _pair(mod.stride if mod.stride is not None else mod.kernel_size)
    if isinstance(mod, nn.LPPool2d):
        if float(mod.norm_type) != 1.0:
            raise FrontendError(f"module {path!r}: LPPool2d(norm_type={mod.norm_type}) cannot be mapped (a synapse "
                                "sums; only norm_type=1, sum pooling, is linear)")
        padding, value, ceil = (0, 0), 1.0, mod.ceil_mode
    else:
        padding = _pair(mod.padding)
        if any(padding) and not mod.count_include_pad:
            raise FrontendError(f"module {path!r}: AvgPool2d(count_include_pad=False) divides border windows by "
                                "fewer pixels, which a fixed conv kernel cannot; use count_include_pad=True")
        value = 1.0 / mod.divisor_override if mod.divisor_override else 1.0 / (k[0] * k[1])
        ceil = mod.ceil_mode
    c = shape[0]
    op = ConvOp(path, np.full((c, 1, *k), value), stride, padding, (1, 1), c, None, "pool")
    if ceil:
        floor_shape = op.out_shape(shape)
        with torch.no_grad():
            ceil_shape = tuple(mod(torch.zeros((1,) + tuple(shape))).shape[1:])
        if ceil_shape != floor_shape:
            raise FrontendError(f"module {path!r}: ceil_mode=True adds partial windows ({ceil_shape} instead of "
                                f"{floor_shape}), which Lava's Conv cannot; use ceil_mode=False")
    return op


def _norm_op(path: str, mod: nn.BatchNorm2d, shape: tuple):
    """Inference-mode BatchNorm2d: a per-channel ``x * scale + shift``, a depthwise 1x1 conv with a bias."""
    from neurocomp.frontends.torch_layers import ConvOp
    if mod.num_features != shape[0]:
        raise FrontendError(f"module {path!r}: num_features={mod.num_features}, previous layer has {shape[0]} channels")
    if mod.running_mean is None or mod.running_var is None:
        raise FrontendError(f"module {path!r}: BatchNorm2d(track_running_stats=False) normalises by each batch's "
                            "own statistics, which has no fixed-weight form; use track_running_stats=True")
    mean = mod.running_mean.detach().cpu().double().numpy()
    var = mod.running_var.detach().cpu().double().numpy()
    gamma = mod.weight.detach().cpu().double().numpy() if mod.weight is not None else np.ones_like(mean)
    beta = mod.bias.detach().cpu().double().numpy() if mod.bias is not None else np.zeros_like(mean)
    scale = _finite(path, gamma / np.sqrt(var + mod.eps))
    shift = _finite(path, beta - mean * scale)
    c = shape[0]
    return ConvOp(path, scale.reshape(c, 1, 1, 1), (1, 1), (0, 0), (1, 1), c, shift, "norm")


_UNMAPPABLE = {
    "MaxPool2d": "max pooling has no synaptic form (Loihi synapses sum); use nn.AvgPool2d or sum pooling",
    "AdaptiveMaxPool2d": "max pooling has no synaptic form (Loihi synapses sum); use nn.AvgPool2d",
    "AdaptiveAvgPool2d": "adaptive pooling's windows depend on the input size; use nn.AvgPool2d with a fixed kernel",
    "ConvTranspose2d": "transposed convolution has no Lava process",
    "Conv1d": "only 2-D convolution maps onto Lava's Conv",
    "Conv3d": "only 2-D convolution maps onto Lava's Conv",
    "Upsample": "upsampling has no Lava process",
}


def convert_module(model: nn.Module, input_size: int, name: str, timesteps: int, encoding,
                   input_shape: tuple | None = None) -> tuple:
    """:func:`module_to_ir` and what it decided: ``(network, details)``, ``details["folded"]`` listing
    the pooling / batch-norm layers folded into a neighbouring projection."""
    from neurocomp.frontends import slayer as slayer_fe
    from neurocomp.frontends.torch_layers import CompositionError, LinearOp, compose

    shape = tuple(int(d) for d in input_shape) if input_shape is not None else (int(input_size),)
    if int(np.prod(shape)) != int(input_size):
        raise FrontendError(f"input shape {shape} holds {int(np.prod(shape))} values, the input has {input_size}")
    pops, projs, folded = [], [], []
    prev, prev_shape = "input", shape
    chain = []        # (path, op) since the last spiking layer: ConvOp / LinearOp / "flatten"
    weighted = None   # (path, kind name) of the chain's Conv2d or Linear

    for path, mod in _leaf_layers(model):
        if isinstance(mod, (nn.Identity, nn.Dropout, nn.Dropout2d)):
            continue
        if isinstance(mod, nn.Flatten):
            if (mod.start_dim, mod.end_dim) != (1, -1):
                raise FrontendError(f"module {path!r}: Flatten(start_dim={mod.start_dim}, end_dim={mod.end_dim}) "
                                    "is not supported; use nn.Flatten() (C-major over C, H, W)")
            if len(shape) == 3:
                chain.append((path, "flatten"))
                shape = (int(np.prod(shape)),)
            continue
        if isinstance(mod, nn.Linear):
            if weighted is not None:
                raise FrontendError(f"module {path!r}: Linear after {weighted[1]} {weighted[0]!r} without a LIF "
                                    "between them")
            if len(shape) != 1 and prev == "input" and not chain:
                shape = prev_shape = (int(np.prod(shape)),)   # a first Linear reads the sample flat, C-major
            if len(shape) != 1:
                raise FrontendError(f"module {path!r}: nn.Linear on a {shape} map would act on its last axis only; "
                                    "put nn.Flatten() before it")
            if mod.in_features != shape[0]:
                raise FrontendError(f"module {path!r}: in_features={mod.in_features}, previous layer has {shape[0]}")
            bias = _finite(path, mod.bias.detach().cpu().double().numpy()) if mod.bias is not None else None
            chain.append((path, LinearOp(path, _finite(path, mod.weight.detach().cpu().double().numpy()), bias)))
            weighted, shape = (path, "Linear"), (mod.out_features,)
            continue
        if isinstance(mod, (nn.Conv2d, nn.AvgPool2d, nn.LPPool2d, nn.BatchNorm2d)):
            if len(shape) != 3:
                raise FrontendError(f"module {path!r}: layer type {type(mod).__name__} needs a (C, H, W) input; the "
                                    f"previous layer is flat {shape} (give the model an input shape such as "
                                    "(1, 28, 28), or no Flatten before it)")
            if any(isinstance(op, LinearOp) for _, op in chain):
                raise FrontendError(f"module {path!r}: {type(mod).__name__} after nn.Linear {weighted[0]!r} without a "
                                    "LIF between them")
            if isinstance(mod, nn.Conv2d):
                if weighted is not None:
                    raise FrontendError(f"module {path!r}: Conv2d after {weighted[1]} {weighted[0]!r} without a LIF "
                                        "between them")
                op = _conv_op(path, mod, shape)
                weighted = (path, "Conv2d")
            elif isinstance(mod, nn.BatchNorm2d):
                op = _norm_op(path, mod, shape)
            else:
                op = _pool_op(path, mod, shape)
            try:
                shape = op.out_shape(shape)
            except ValueError as e:
                raise FrontendError(f"module {path!r}: {e}") from None
            chain.append((path, op))
            continue
        if isinstance(mod, ncnn.LIF):
            ops = [op for _, op in chain if op != "flatten"]
            if not ops:
                raise FrontendError(f"module {path!r}: LIF without a preceding nn.Linear or nn.Conv2d")
            try:
                synapse, current, out_shape, kind = compose([op for _, op in chain], prev_shape)
            except CompositionError as e:
                raise FrontendError(f"module {path!r}: the layers before it cannot be one synapse: {e}") from None
            except ValueError as e:
                raise FrontendError(f"module {chain[-1][0]!r}: {e}") from None
            n_out = int(np.prod(out_shape))
            lead = weighted[0] if weighted is not None else [p for p, op in chain if op != "flatten"][0]
            if mod.size != n_out:
                what = (f"{lead}.out_features {n_out}" if weighted is not None and weighted[1] == "Linear"
                        else f"the {out_shape} output of {lead!r} ({n_out} values)")
                raise FrontendError(f"module {path!r}: size {mod.size} != {what}")
            bias = np.zeros(mod.size)
            if current is not None:
                # a synapse bias is input *current* (into u); Loihi's bias enters v. They coincide only
                # when u has no memory (du = 1); otherwise it has no exact Loihi form
                if float(mod.du) != 1.0:
                    src = [p for p, op in chain if op != "flatten" and getattr(op, "bias", None) is not None
                           and np.any(op.bias)]
                    src_mod = src[0] if src else lead
                    kind_name = next((type(m).__name__ for p, m in _leaf_layers(model) if p == src_mod), "layer")
                    raise FrontendError(
                        f"module {src_mod!r}: nn.{kind_name} bias feeds the LIF current u, which Loihi cannot "
                        f"represent when du != 1 (here du={float(mod.du):g}); use bias=False (and no BatchNorm "
                        "shift) with LIF(bias=True), whose bias enters v as on Loihi")
                bias = bias + current
            if mod.bias is not None:
                bias = bias + _finite(path, mod.bias.detach().cpu().double().numpy())
            pop_name = _layer_name(path, "lif")
            proj_name = _layer_name(lead, {"dense": "fc", "conv": "conv", "pool": "pool", "norm": "norm"}[kind])
            folded += [{"layer": p, "into": proj_name} for p, op in chain if op != "flatten" and p != lead]
            pops.append(Population(pop_name, LIF(mod.size, float(mod.du), float(mod.dv), float(mod.vth), bias),
                                   shape=out_shape))
            projs.append(Projection(proj_name, prev, pop_name, synapse))
            if isinstance(mod, ncnn.RecurrentLIF):   # its spikes back into itself, one step later
                w = _finite(f"{path}.recurrent", mod.recurrent.weight.detach().cpu().double().numpy())
                projs.append(Projection(f"{pop_name}_recurrent", pop_name, pop_name, Dense(w)))
            prev, prev_shape, shape, chain, weighted = pop_name, out_shape, out_shape, [], None
            continue
        if slayer_fe.is_slayer_block(mod):
            if chain:
                raise FrontendError(f"module {path!r}: slayer block after a dangling {chain[0][0]!r} (no LIF "
                                    "between them)")
            if prev == "input" and len(prev_shape) != 1 and type(mod).__name__ == "Dense":
                prev_shape = shape = (int(np.prod(prev_shape)),)   # a first Dense block reads the sample flat
            pop, proj = slayer_fe.block_to_ir(path, mod, prev, int(np.prod(prev_shape)), prev_shape)
            if pop is None:          # a Flatten block: nothing to map, the shape becomes flat
                prev_shape = shape = (int(np.prod(prev_shape)),)
                continue
            pops.append(pop)
            projs.append(proj)
            prev, prev_shape, shape = pop.name, pop.shape, pop.shape
            continue
        why = _UNMAPPABLE.get(type(mod).__name__)
        raise FrontendError(
            f"module {path!r}: layer type {type(mod).__name__} cannot be mapped to Loihi"
            + (f": {why}" if why else "; supported: nn.Conv2d, nn.AvgPool2d, nn.LPPool2d(1, k) (sum pooling), "
               "nn.BatchNorm2d, nn.Flatten, nn.Linear + neurocomp.nn.LIF, lava-dl slayer.block.cuba "
               "Dense/Conv/Pool/Flatten, Identity/Dropout"))
    if chain and any(op != "flatten" for _, op in chain):
        first = [(p, op) for p, op in chain if op != "flatten"][0]
        kind = weighted[1] if weighted is not None else type(dict(_leaf_layers(model))[first[0]]).__name__
        raise FrontendError(f"module {(weighted or first)[0]!r}: trailing nn.{kind} without a neuron layer")
    if not pops:
        raise FrontendError("the model has no spiking layers (nn.Linear/nn.Conv2d + LIF or slayer blocks)")
    input_shape = tuple(int(d) for d in input_shape) if input_shape is not None else (int(input_size),)
    net = Network(name=name, input=Input("input", input_size, encoding, shape=input_shape),
                  populations=pops, projections=projs, output=pops[-1].name, timesteps=timesteps)
    return net, ({"folded": folded} if folded else {})


def import_network(spec, input_shape: tuple):
    """Front-end entry point (:mod:`neurocomp.frontends`): the spec's factory and weights -> float IR."""
    from neurocomp.frontends import Imported
    from neurocomp.spec import input_encoding

    src = spec.source
    module = build_module(src.factory, spec.resolve(src.weights) if src.weights else None, spec.base_dir, src.kwargs)
    size = int(np.prod(input_shape))
    net, details = convert_module(module, size, spec.name, spec.input.timesteps, input_encoding(spec),
                                  input_shape=input_shape)
    return Imported(net, details)
