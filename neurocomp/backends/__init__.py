"""Targets that run networks, behind one interface (:class:`~neurocomp.backends.base.Backend`) and one
registry, so the pipeline and the CLI never branch on target names: they ask a target what it can do
(:class:`~neurocomp.backends.base.Capabilities`) and whether it runs here.

* ``float``     — the float IR (Lava float-LIF semantics, float64), the reference for our IR;
* ``cpu``       — neurocomp's simulator of Lava's bit-accurate fixed point (both schedules, learning);
* ``loihi-sim`` — real Lava processes on Lava's CPU runtime, ``Loihi2SimCfg(select_tag="fixed_pt")``;
* ``loihi2``    — the same processes on a Loihi 2 chip (needs Intel's lava-loihi);
* ``brian2``    — the user's own Brian2 objects (float), the reference for Brian2 sources;
* ``netx``      — a netx file on lava-dl's own ``netx.hdf5.Network``, the reference for netx sources.

Backends import their heavy packages (Lava, Brian2, numba) only when they run.
"""
from __future__ import annotations

import importlib
from typing import Dict, List, Optional

from neurocomp.backends.base import Backend, Capabilities, Result, concat_results
from neurocomp.errors import TargetError

_REGISTRY: Dict[str, str] = {
    "float": "neurocomp.backends.simulators:FloatBackend",
    "cpu": "neurocomp.backends.simulators:CpuBackend",
    "loihi-sim": "neurocomp.backends.lava:LoihiSimBackend",
    "loihi2": "neurocomp.backends.loihi2:Loihi2Backend",
    "brian2": "neurocomp.backends.brian2_reference:Brian2Reference",
    "netx": "neurocomp.backends.netx_reference:NetxReference",
}
_INSTANCES: Dict[str, Backend] = {}

TARGETS = tuple(_REGISTRY)


def get_backend(name: str) -> Backend:
    if name not in _REGISTRY:
        raise TargetError(f"unknown target {name!r}; allowed: {', '.join(TARGETS)}")
    if name not in _INSTANCES:
        module, cls = _REGISTRY[name].split(":")
        _INSTANCES[name] = getattr(importlib.import_module(module), cls)()
    return _INSTANCES[name]


def backends(**wanted) -> List[Backend]:
    """Registered backends whose capabilities match ``wanted`` (e.g. ``network="fixed"``)."""
    out = []
    for name in TARGETS:
        b = get_backend(name)
        if all(getattr(b.capabilities, k) == v for k, v in wanted.items()):
            out.append(b)
    return out


def target_names(**wanted) -> List[str]:
    return [b.name for b in backends(**wanted)]


def compile_targets() -> List[str]:
    """The targets a compile may name (the one list, :data:`neurocomp.spec.COMPILE_TARGETS`: a spec's
    ``target:`` is checked against it when the spec is read)."""
    from neurocomp.spec import COMPILE_TARGETS
    return [t for t in TARGETS if t in COMPILE_TARGETS]


def require_target(name: str, what: str = "--target", compile: bool = False, **wanted) -> Backend:
    """The backend called ``name``, refusing (one line naming ``what``) one that lacks ``wanted``
    capabilities (or, ``compile``, that a compile may not name) or cannot run on this machine."""
    allowed = [t for t in target_names(**wanted) if not compile or t in compile_targets()]
    if name not in allowed:
        raise TargetError(f"{what} {name!r}: allowed: {', '.join(allowed)}")
    b = get_backend(name)
    why = b.unavailable()
    if why:
        raise TargetError(why)
    return b


__all__ = ["Backend", "Capabilities", "Result", "concat_results", "TARGETS", "get_backend", "backends",
           "target_names", "require_target"]
