"""``neurocomp compile SPEC --target T --out DIR``."""
from __future__ import annotations

from pathlib import Path

import click

from neurocomp.cli.main import cli, progress_bar


class _Samples(click.ParamType):
    """``--samples``: a count >= 1 or ``auto``."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r}: give a number of samples >= 1 or 'auto'", param, ctx)


SAMPLES = _Samples()


@cli.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "-t", default=None,
              help="loihi-sim (Lava bit-accurate CPU sim, default from the spec), cpu (our batched "
                   "bit-accurate sim) or loihi2 (chip, needs lava-loihi).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build directory to write (default build/<model name>). Replaced atomically.")
@click.option("--samples", "-n", type=SAMPLES, default=None,
              help="Held-out samples to run on the target, N >= 1 or 'auto' (default: spec verify.samples; "
                   "'auto' = what fits in ~20 s on Lava). Float and cpu always run the whole split.")
@click.option("--force", is_flag=True,
              help="Replace --out even when it is a non-empty directory that is not a neurocomp build "
                   "(its contents are deleted). Never the current directory or the model's own folder.")
@click.option("--energy", is_flag=True,
              help="Add an energy summary (Loihi / Loihi 2 vs GPU baseline) to report.json; "
                   "'neurocomp energy DIR' writes the full report.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def compile_cmd(spec, target, out, samples, quiet, energy, force):
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
                           progress=None if quiet else progress, log=log, energy=energy, force=force)
    if not quiet:
        from neurocomp.report.text import format_compile
        click.echo(format_compile(report))
        click.echo(f"\nwrote {report['out']}/report.json and {report['out']}/report.html")
