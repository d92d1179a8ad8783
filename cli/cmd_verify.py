"""``neurocomp verify DIR [--samples N] [--out OUT]`` — float vs cpu vs loihi-sim, layer by layer."""
from __future__ import annotations

from pathlib import Path

import click

from neurocomp.cli.main import cli, progress_bar


@cli.command("verify")
@click.argument("build_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--samples", "-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="Held-out samples to run on every target (Lava runs a few hundred steps/s).")
@click.option("--targets", default="float,cpu,loihi-sim", show_default=True,
              help="Comma-separated targets to compare, each with the next.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the full report to OUT/verify.json.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def verify_cmd(build_dir, samples, targets, out, quiet):
    """Run the same held-out samples on float, cpu and loihi-sim and show, per layer, spike counts
    and the first step and neuron where the targets diverge.

    Float vs fixed point differ by quantisation; the table shows where that starts. cpu vs
    loihi-sim must be bit-identical: if not, the command exits with status 1.

    float is the build's float reference: the source's own simulator where neurocomp has one (a
    Brian2 script, with the target's learned weights) else the float network. A stream build runs
    its learned network frozen on one stream of held-out samples.
    """
    from neurocomp.io import atomic_write_json
    from neurocomp.pipeline import verify_build
    from neurocomp.report.text import format_verify_report

    names = [t.strip() for t in targets.split(",") if t.strip()]
    bars = {}

    def progress(name, done, total):
        bars.setdefault(name, progress_bar(name))(done, total)

    report = verify_build(build_dir, samples, names, progress=None if quiet else progress)
    if out is not None:
        atomic_write_json(Path(out) / "verify.json", report)
    if not quiet:
        click.echo(format_verify_report(report))
        if out is not None:
            click.echo(f"\nwrote {Path(out) / 'verify.json'}")
    if report.get("cpu_matches_loihi_sim") is False:
        raise SystemExit(1)
