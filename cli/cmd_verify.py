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

    A Brian2 (stream) build runs its learned network frozen on one stream of held-out samples;
    float is then the Brian2 script itself with the target's learned weights.
    """
    from neurocomp.backends import TARGETS
    from neurocomp.errors import TargetError
    from neurocomp.io import atomic_write_json
    from neurocomp.pipeline import load_build
    from neurocomp.verify import format_verify, verify_build

    from neurocomp.stream_build import is_stream_build, load_stream_build
    from neurocomp.verify import STREAM_TARGETS, format_stream_verify, verify_stream_build

    stream = is_stream_build(build_dir)
    allowed = STREAM_TARGETS if stream else TARGETS
    names = [t.strip() for t in targets.split(",") if t.strip()]
    bad = [t for t in names if t not in allowed]
    if bad or len(names) < 2 or len(set(names)) != len(names):
        kind = "a Brian2 (stream) build" if stream else "this build"
        raise TargetError(f"--targets {targets!r}: give two or more distinct targets from {', '.join(allowed)} "
                          f"for {kind}")
    bars = {}

    def progress(name, done, total):
        bars.setdefault(name, progress_bar(name))(done, total)

    if stream:  # plastic/recurrent: one continuous stream, learned weights frozen
        report = verify_stream_build(load_stream_build(build_dir), samples, names,
                                     progress=None if quiet else progress)
    else:
        report = verify_build(load_build(build_dir), samples, names, progress=None if quiet else progress)
    if out is not None:
        atomic_write_json(Path(out) / "verify.json", report)
    if not quiet:
        click.echo(format_stream_verify(report) if stream else format_verify(report))
        if out is not None:
            click.echo(f"\nwrote {Path(out) / 'verify.json'}")
    if report.get("cpu_matches_loihi_sim") is False:
        raise SystemExit(1)
