"""Targets that run networks. One entry point, :func:`run_on_target`, so the CLI and the library
never branch on target names themselves.

* ``float``     — the float IR (Lava float-LIF semantics, float64), the reference;
* ``cpu``       — neurocomp's batched simulator of Lava's bit-accurate fixed point;
* ``loihi-sim`` — real Lava processes on Lava's CPU runtime, ``Loihi2SimCfg(select_tag="fixed_pt")``;
* ``loihi2``    — the same processes on a Loihi 2 chip (needs Intel's lava-loihi).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from neurocomp.backends.sim import RunResult, simulate
from neurocomp.errors import TargetError
from neurocomp.ir import Network

TARGETS = ("float", "cpu", "loihi-sim", "loihi2")


def run_on_target(target: str, fixed: Network, float_net: Optional[Network], spikes_in: np.ndarray,
                  record: bool = False, progress: Optional[Callable[[int, int], None]] = None) -> RunResult:
    if target == "float":
        if float_net is None:
            raise TargetError("target float needs the float network (network_float.npz)")
        return simulate(float_net, spikes_in, record=record, target="float")
    if target == "cpu":
        return simulate(fixed, spikes_in, record=record, target="cpu")
    if target == "loihi-sim":
        from neurocomp.backends.lava_sim import run_lava
        return run_lava(fixed, spikes_in, record_all=record, progress=progress)
    if target == "loihi2":
        from neurocomp.backends.loihi2 import run_loihi2
        return run_loihi2(fixed, spikes_in, record_all=record, progress=progress)
    raise TargetError(f"unknown target {target!r}; allowed: {', '.join(TARGETS)}")
