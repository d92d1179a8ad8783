"""``neurocomp compile SPEC --target T --out DIR``."""
from __future__ import annotations

from pathlib import Path

import click

from neurocomp.cli.main import cli, progress_bar


@cli.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "-t", default=None,
              help="loihi-sim (Lava bit-accurate CPU sim, default from the spec), cpu (our batched "
                   "bit-accurate sim) or loihi2 (chip, needs lava-loihi).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build directory to write (default build/<model name>). Replaced atomically.")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None,
              help="Held-out samples to run on the target (default: spec verify.samples; "
                   "'auto' = what fits in ~20 s on Lava). Float and cpu always run the whole split.")
@click.option("--energy", is_flag=True,
              help="Add an energy summary (Loihi / Loihi 2 vs GPU baseline) to report.json; "
                   "'neurocomp energy DIR' writes the full report.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def compile_cmd(spec, target, out, samples, quiet, energy):
    """Import, quantise and verify the network described by SPEC (a model.yaml).

    Writes DIR/network.npz (fixed point), DIR/network_float.npz, DIR/build.json,
    DIR/report.json and DIR/report.html (the compile page), and prints the per-layer float ->
    integer mapping and the accuracies. A network that learns (plastic) or is recurrent runs as
    one stream of samples; it learns on the target, then is scored with its weights frozen.
    """
    from neurocomp.pipeline import compile_model

    log = (lambda s: None) if quiet else (lambda s: click.echo(f"· {s}", err=True))
    bars = {}

    def progress(name, done, total):
        bars.setdefault(name, progress_bar(name))(done, total)

    report = compile_model(spec, target=target, out=out, samples=samples,
                           progress=None if quiet else progress, log=log, energy=energy)
    if not quiet:
        from neurocomp.report.text import format_compile
        click.echo(format_compile(report))
        click.echo(f"\nwrote {report['out']}/report.json and {report['out']}/report.html")
