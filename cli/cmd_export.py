"""``neurocomp export DIR --format nir|netx --out FILE [--dt SECONDS]`` — a compiled build out to other tools.

* ``nir``: a NIR graph (``nir.read`` reads it; snnTorch's ``import_from_nir`` runs it): float
  parameters reproducing the fixed-point dynamics at ``--dt`` (default 1e-4 s, recorded in the
  graph's metadata) plus the integers, so ``source: {kind: nir}`` gives back the same build;
* ``netx``: a lava-dl ``.net`` file that ``lava.lib.dl.netx.hdf5.Network`` turns into exactly the
  build's integers (spike for spike with the cpu target on Lava); layers whose weights netx cannot
  hold are refused naming the layer.
"""
from __future__ import annotations

import click

from neurocomp.cli.main import cli


@cli.command("export")
@click.argument("build_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["nir", "netx"]), required=True, help="output format")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="file to write")
@click.option("--dt", type=float, default=None, help="nir only: seconds per time step (default 1e-4)")
def export_cmd(build_dir, fmt, out, dt):
    """Write the compiled network in BUILD_DIR as a NIR graph or a lava-dl netx file."""
    from neurocomp.export import export_build
    summary = export_build(build_dir, fmt, out, dt=dt)
    extra = f", dt {summary['dt']:g} s" if fmt == "nir" else f", {len(summary['layers'])} dense layers"
    click.echo(f"wrote {summary['path']} ({fmt}{extra})")
