"""PyTorch front end: a real ``nn.Module`` with its real state_dict -> float IR.

Recognised layers, walked in registration order (``nn.Sequential`` order):

* ``nn.Linear`` followed by :class:`neurocomp.nn.LIF` -> a Dense projection into a LIF population
  (the LIF's own ``bias`` enters v, as Loihi's does; a nonzero Linear bias enters the current u and is
  only accepted when ``du == 1``, where the two coincide);
* ``nn.Flatten`` / ``nn.Identity`` / ``nn.Dropout`` -> nothing (no-ops at inference);
* lava-dl ``slayer.block.cuba.Dense`` -> see :mod:`neurocomp.frontends.slayer`.

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


def module_to_ir(model: nn.Module, input_size: int, name: str, timesteps: int, encoding) -> Network:
    """Map a trained module to the float IR (see module docstring for what is recognised)."""
    from neurocomp.frontends import slayer as slayer_fe

    pops, projs = [], []
    prev, prev_size = "input", input_size
    pending = None  # (path, Linear) waiting for its neuron layer
    for path, mod in _leaf_layers(model):
        if isinstance(mod, _NOOPS):
            continue
        if isinstance(mod, nn.Linear):
            if pending is not None:
                raise FrontendError(f"module {path!r}: Linear after Linear {pending[0]!r} without a LIF between them")
            if mod.in_features != prev_size:
                raise FrontendError(f"module {path!r}: in_features={mod.in_features}, previous layer has {prev_size}")
            pending = (path, mod)
        elif isinstance(mod, ncnn.LIF):
            if pending is None:
                raise FrontendError(f"module {path!r}: LIF without a preceding nn.Linear")
            lin_path, lin = pending
            if lin.out_features != mod.size:
                raise FrontendError(f"module {path!r}: size {mod.size} != {lin_path}.out_features {lin.out_features}")
            w = _finite(lin_path, lin.weight.detach().cpu().double().numpy())
            bias = np.zeros(mod.size)
            if lin.bias is not None and torch.any(lin.bias != 0):
                # a Linear bias is input *current* (into u); Loihi's bias enters v. They coincide only
                # when u has no memory (du = 1); otherwise it has no exact Loihi form
                if float(mod.du) != 1.0:
                    raise FrontendError(
                        f"module {lin_path!r}: nn.Linear bias feeds the LIF current u, which Loihi cannot "
                        f"represent when du != 1 (here du={float(mod.du):g}); use nn.Linear(bias=False) "
                        "and LIF(bias=True), whose bias enters v as on Loihi")
                bias = bias + _finite(lin_path, lin.bias.detach().cpu().double().numpy())
            if mod.bias is not None:
                bias = bias + _finite(path, mod.bias.detach().cpu().double().numpy())
            pop_name = _layer_name(path, "lif")
            pops.append(Population(pop_name, LIF(mod.size, float(mod.du), float(mod.dv), float(mod.vth), bias)))
            projs.append(Projection(_layer_name(lin_path, "fc"), prev, pop_name, Dense(w)))
            prev, prev_size, pending = pop_name, mod.size, None
        elif slayer_fe.is_slayer_block(mod):
            if pending is not None:
                raise FrontendError(f"module {path!r}: slayer block after a dangling nn.Linear {pending[0]!r}")
            pop, proj = slayer_fe.block_to_ir(path, mod, prev, prev_size)
            pops.append(pop)
            projs.append(proj)
            prev, prev_size = pop.name, pop.size
        else:
            raise FrontendError(
                f"module {path!r}: layer type {type(mod).__name__} cannot be mapped to Loihi; supported: "
                "nn.Linear + neurocomp.nn.LIF, lava-dl slayer.block.cuba.Dense, Flatten/Identity/Dropout")
    if pending is not None:
        raise FrontendError(f"module {pending[0]!r}: trailing nn.Linear without a neuron layer")
    if not pops:
        raise FrontendError("the model has no spiking layers (nn.Linear + LIF or slayer blocks)")
    return Network(name=name, input=Input("input", input_size, encoding), populations=pops,
                   projections=projs, output=pops[-1].name, timesteps=timesteps)


def import_network(spec, input_shape: tuple):
    """Front-end entry point (:mod:`neurocomp.frontends`): the spec's factory and weights -> float IR."""
    from neurocomp.frontends import Imported
    from neurocomp.spec import input_encoding

    src = spec.source
    module = build_module(src.factory, spec.resolve(src.weights) if src.weights else None, spec.base_dir, src.kwargs)
    size = int(np.prod(input_shape))
    return Imported(module_to_ir(module, size, spec.name, spec.input.timesteps, input_encoding(spec)))
