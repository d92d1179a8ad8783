"""Exporters: a compiled (fixed-point) network out to other tools' formats.

* :mod:`neurocomp.export.nir` — a NIR graph (``nir.write``): float parameters that reproduce the
  fixed-point network's dynamics under forward Euler at ``dt`` (recorded in the graph's metadata),
  plus neurocomp's integers in node metadata, so a re-import gives the same fixed-point network;
* :mod:`neurocomp.export.netx` — a lava-dl netx HDF5 file that ``lava.lib.dl.netx.hdf5.Network``
  loads and, run on Lava, reproduces neurocomp's cpu target spike for spike.

:func:`export_build` is what ``neurocomp export`` calls.
"""
from __future__ import annotations

from pathlib import Path

from neurocomp.errors import NeurocompError

FORMATS = ("nir", "netx")


def export_network(fixed, fmt: str, out, dt: float = None) -> dict:
    """Write the fixed-point ``fixed`` network to ``out`` in format ``fmt``; returns a summary dict."""
    if fmt not in FORMATS:
        raise NeurocompError(f"--format: got {fmt!r}, allowed: {', '.join(FORMATS)}")
    if not fixed.is_fixed_point:
        raise NeurocompError(f"network {fixed.name!r} is not fixed point: export a compiled build")
    if fmt == "nir":
        from neurocomp.export.nir import DEFAULT_DT, write_nir
        return write_nir(fixed, out, dt=DEFAULT_DT if dt is None else dt)
    if dt is not None:
        raise NeurocompError("--dt: only the nir format has a time step (netx files are in steps)")
    from neurocomp.export.netx import write_netx
    return write_netx(fixed, out)


def export_build(build_dir, fmt: str, out, dt: float = None) -> dict:
    """A ``neurocomp compile`` build directory's fixed-point network -> ``out``."""
    from neurocomp.ir import load_network
    build_dir = Path(build_dir)
    path = build_dir / "network.npz"
    if not path.is_file():
        raise NeurocompError(f"{build_dir}: not a neurocomp build directory (no network.npz; run "
                             "'neurocomp compile' first)")
    return export_network(load_network(path), fmt, out, dt=dt)
