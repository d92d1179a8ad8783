"""The ``loihi2`` target: the loihi-sim process graph run on a Loihi 2 chip with ``Loihi2HwCfg``.

It needs Intel's lava-loihi extension (INRC members; it brings the neurocore compiler and the
host <-> chip adapters). Without it every entry point raises :class:`TargetError` with one line that
names lava-loihi and points to ``--target loihi-sim`` — the CLI turns that into exit code 2.

With lava-loihi, a run goes through :class:`neurocomp.backends.lava_runtime.NetworkRuntime`: the host streams input
spikes through an io ``Injector`` and a ``PyToNxAdapter`` onto the chip, and reads spikes back
through ``NxToPyAdapter`` + ``Extractor`` — the adapter pattern lava-dl's Loihi 2 tutorials use.
Select the board before running (lava-loihi's own setup): ``lava.utils.loihi.use_slurm_host()`` on
the INRC cloud, or ``use_ethernet_host(address)`` for a Kapoho Point on the local network.
"""
from __future__ import annotations

from importlib.util import find_spec
from typing import Optional

from neurocomp.backends.base import Backend, Capabilities
from neurocomp.errors import TargetError

MISSING = ("target loihi2 needs Intel's lava-loihi package (Loihi 2 hardware access, INRC); "
           "it is not installed — use --target loihi-sim for Lava's bit-accurate CPU simulation")

# The modules lava-loihi adds to the ``lava`` namespace: lava.utils.loihi.is_installed() probes the
# first, the older lava.utils.system.Loihi2 probe the second (its neurocore compiler).
_LAVA_LOIHI_MODULES = ("lava.utils.loihi2_profiler", "lava.magma.compiler.subcompilers.nc.ncproc_compiler")


def loihi2_available() -> bool:
    """True when Intel's lava-loihi extension is importable."""
    for name in _LAVA_LOIHI_MODULES:
        try:
            if find_spec(name) is not None:
                return True
        except ModuleNotFoundError:  # a parent package is missing
            continue
    return False


def require_loihi2() -> None:
    """Raise the one-line :class:`TargetError` unless lava-loihi is installed."""
    if not loihi2_available():
        raise TargetError(MISSING)


def hw_run_config(exception_proc_model_map: Optional[dict] = None):
    """The Lava run configuration for the chip: ``Loihi2HwCfg(select_tag="fixed_pt")``.

    ``fixed_pt`` picks the fixed-point process models wherever a process has several (the same tag
    the loihi-sim target selects); ``exception_proc_model_map`` pins the host-side processes that
    have no tagged model (the io Injector/Extractor) to their ``LoihiProtocol`` Python models.
    """
    require_loihi2()
    from lava.magma.core.run_configs import Loihi2HwCfg
    return Loihi2HwCfg(select_tag="fixed_pt", exception_proc_model_map=dict(exception_proc_model_map or {}))


def chip_adapters():
    """``(PyToNxAdapter, NxToPyAdapter)``: the processes that carry spikes host -> chip -> host."""
    require_loihi2()
    try:
        from lava.proc.embedded_io.spike import NxToPyAdapter, PyToNxAdapter
    except ImportError as e:
        raise TargetError(f"target loihi2: lava-loihi is installed but lacks its spike adapters "
                          f"(lava.proc.embedded_io.spike): {e}") from None
    return PyToNxAdapter, NxToPyAdapter


class Loihi2Backend(Backend):
    """``loihi2``: the loihi-sim process graph on a Loihi 2 chip, fed host-in-the-loop through
    :class:`neurocomp.backends.lava_runtime.NetworkRuntime` (both schedules; learning is not run on
    the chip here)."""

    name = "loihi2"
    description = "the same Lava process graph with Loihi2HwCfg on a Loihi 2 chip (needs Intel's lava-loihi)"
    capabilities = Capabilities(network="fixed", learning=False, bit_exact=True, hardware=True)

    def unavailable(self) -> Optional[str]:
        return None if loihi2_available() else MISSING

    def run(self, net, spikes, schedule, *, record=False, probe=False, learn=False, teacher=None,
            progress=None, source=None):
        self.check(net, schedule)
        if learn and net.is_plastic:
            raise TargetError("target loihi2: learning on the chip is not supported; compile for loihi-sim "
                              "(Lava's model of the chip's learning engine)")
        from neurocomp.backends.lava_runtime import NetworkRuntime
        names = [p.name for p in net.populations] if record else None
        with NetworkRuntime(net, target="loihi2", record=names, schedule=schedule) as rt:
            return rt.run_batch(spikes, progress=progress)
