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
    """
    from neurocomp.backends import TARGETS
    from neurocomp.errors import TargetError
    from neurocomp.io import atomic_write_json
    from neurocomp.pipeline import load_build
    from neurocomp.verify import format_verify, verify_build

    names = [t.strip() for t in targets.split(",") if t.strip()]
    bad = [t for t in names if t not in TARGETS]
    if bad or len(names) < 2 or len(set(names)) != len(names):
        raise TargetError(f"--targets {targets!r}: give two or more distinct targets from {', '.join(TARGETS)}")
    build = load_build(build_dir)
    bars = {}

    def progress(name, done, total):
        bars.setdefault(name, progress_bar(name))(done, total)

    report = verify_build(build, samples, names, progress=None if quiet else progress)
    if out is not None:
        atomic_write_json(Path(out) / "verify.json", report)
    if not quiet:
        click.echo(format_verify(report))
        if out is not None:
            click.echo(f"\nwrote {Path(out) / 'verify.json'}")
    if report.get("cpu_matches_loihi_sim") is False:
        raise SystemExit(1)
