"""``neurocomp sweep SPEC --grid KEY=V1,V2,... [--grid ...] --out DIR [--address ray://HEAD:10001] [--workers N]``."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from neurocomp.cli.main import cli


@cli.command("sweep")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--grid", "-g", "grids", multiple=True, required=True, metavar="KEY=V1,V2,...",
              help="A model.yaml key (dotted: quantize.weight_bits, quantize.headroom, input.timesteps, "
                   "input.max_rate, ...) and its values; repeat for more keys (every combination runs).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Sweep directory: points/ (a build and a record per point), sweep.json, sweep.html. "
                   "Run the same command again to resume: finished points are skipped.")
@click.option("--address", default=None, metavar="ADDRESS",
              help="Join a Ray cluster: ray://HEAD:10001 (Ray Client), or HEAD:6379 / auto from one of its "
                   "nodes. Default: a local Ray instance started in this process.")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=None,
              help="Points evaluated at once (locally also the CPUs Ray gets, at most this machine's; "
                   "default: all of them).")
@click.option("--retry-failed", is_flag=True, help="Run points recorded as failed again.")
@click.option("--no-ship", is_flag=True,
              help="With --address: do not send the model's folder to the cluster (its nodes read it at the "
                   "same path, e.g. a shared file system).")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def sweep_cmd(spec, grids, out, address, workers, retry_failed, no_ship, quiet):
    """Compile SPEC for every combination of --grid values and compare them.

    Each point is the model.yaml with the grid's keys set (every point is validated first), compiled
    on the bit-accurate cpu target as a Ray task and scored: held-out accuracy (float and cpu),
    energy per inference on each device, latency in steps. Writes OUT/sweep.json and OUT/sweep.html
    (accuracy vs energy Pareto front per device, one plot per swept key). Ctrl-C stops it (exit 130);
    running it again resumes where it stopped.
    """
    from neurocomp.pipeline.sweep import parse_grid, sweep
    from neurocomp.report.sweep_page import format_sweep

    grid = parse_grid(grids)
    log = (lambda s: None) if quiet else (lambda s: click.echo(f"· {s}", err=True))
    state = {}

    def progress(done, total, record):
        if quiet:
            return
        from tqdm import tqdm
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, initial=done, desc="sweep", unit="point", file=sys.stderr,
                                      disable=None, leave=False)
        if record is not None:
            bar.update(done - bar.n)
            m = record.get("metrics")
            bar.set_postfix_str(f"{record['label']}: " + (f"{100 * m['accuracy']['cpu']:.1f}%" if m else
                                                           record["status"]))
        if done >= total:
            bar.close()

    try:
        doc = sweep(spec, grid, out, address=address, workers=workers, retry_failed=retry_failed,
                    ship=False if no_ship else None, progress=progress, log=log)
    finally:
        if state.get("bar") is not None:
            state["bar"].close()
    if not quiet:
        click.echo(format_sweep(doc))
        click.echo(f"wrote {Path(out) / 'sweep.json'} and {Path(out) / 'sweep.html'}")
