"""``neurocomp run DIR --target {cpu,loihi-sim,float,loihi2} [--samples N] --out OUT [--record] [--workers N] [--address A]``."""
from __future__ import annotations

import io
from pathlib import Path

import click
import numpy as np

from neurocomp.cli.main import cli, progress_bar


@cli.command("run")
@click.argument("build_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", "-t", default="cpu", show_default=True,
              help="cpu (batched bit-accurate sim), loihi-sim (Lava's fixed-point processes), "
                   "float (the float model) or loihi2 (chip, needs lava-loihi).")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None,
              help="Run the first N held-out samples (default: all of them).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for run.json (and spikes.npz with --record); default DIR/run.")
@click.option("--record", is_flag=True,
              help="Also save every layer's spike trains [samples, timesteps, neurons] to OUT/spikes.npz.")
@click.option("--no-warmup", is_flag=True,
              help="Brian2 (stream) builds: start the held-out stream at rest instead of after the "
                   "labelling samples the compile ran first (faster; a few samples may answer differently).")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=None,
              help="Split the samples over N Ray workers (a local Ray instance; batched builds). Results are "
                   "identical to a single-process run.")
@click.option("--address", default=None, metavar="ADDRESS",
              help="Shard over an existing Ray cluster instead: ray://HEAD:10001, or HEAD:6379 / auto from a node.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def run_cmd(build_dir, target, samples, out, record, no_warmup, workers, address, quiet):
    """Run a compiled build (from 'neurocomp compile') on its held-out samples.

    Writes OUT/run.json: target, samples, timesteps, accuracy, predictions, spikes per layer.
    A Brian2 build runs its learned network frozen on one continuous stream (cpu or loihi-sim),
    read out as the compile did; with --record, spikes.npz holds each population's [steps, neurons].
    """
    from neurocomp.io import atomic_write_bytes, atomic_write_json
    from neurocomp.pipeline import run_build
    from neurocomp.report.text import format_run

    out = Path(out) if out is not None else Path(build_dir) / "run"
    bar = None if quiet else progress_bar(target)
    if workers or address:
        from neurocomp.pipeline.shard import run_build_sharded
        log = (lambda s: None) if quiet else (lambda s: click.echo(f"· {s}", err=True))
        summary, trains = run_build_sharded(build_dir, target, workers, address, samples, record, progress=bar, log=log)
    else:
        summary, trains = run_build(build_dir, target, samples, record, warmup=not no_warmup, progress=bar)
    # everything is computed before anything is written; each file is replaced atomically
    if record:
        buf = io.BytesIO()
        np.savez_compressed(buf, **trains)
        atomic_write_bytes(Path(out) / "spikes.npz", buf.getvalue())
    atomic_write_json(Path(out) / "run.json", summary)
    if not quiet:
        click.echo(format_run(summary))
        click.echo(f"wrote {Path(out) / 'run.json'}" + (f" and {Path(out) / 'spikes.npz'}" if record else ""))
