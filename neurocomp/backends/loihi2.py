"""The ``loihi2`` target: the loihi-sim process graph run with ``Loihi2HwCfg`` on a Loihi 2 chip.

Needs Intel's lava-loihi package (INRC members); without it the target says so and exits 2.
"""
from __future__ import annotations

from neurocomp.errors import TargetError

MISSING = ("target loihi2 needs Intel's lava-loihi package (Loihi 2 hardware access, INRC); "
           "it is not installed — use --target loihi-sim for Lava's bit-accurate CPU simulation")


def loihi2_available() -> bool:
    """True when Intel's lava-loihi extension (its Loihi 2 compiler) is importable."""
    from importlib.util import find_spec
    try:
        return find_spec("lava.magma.compiler.subcompilers.nc.ncproc_compiler") is not None
    except ModuleNotFoundError:
        return False


def hw_run_config():
    """The Lava run configuration for the chip (raises TargetError without lava-loihi)."""
    try:
        from lava.magma.core.run_configs import Loihi2HwCfg
    except ImportError:
        raise TargetError(MISSING) from None
    if not loihi2_available():
        raise TargetError(MISSING)
    return Loihi2HwCfg()


def run_loihi2(fixed, spikes_in, record_all=False, progress=None):
    from neurocomp.backends.lava_sim import run_lava
    result = run_lava(fixed, spikes_in, record_all=record_all, progress=progress, run_cfg=hw_run_config())
    result.target = "loihi2"
    return result
