"""``neurocomp run DIR --target {cpu,loihi-sim,float,loihi2} [--samples N] --out OUT [--record]``."""
from __future__ import annotations

import io
import time
from pathlib import Path

import click
import numpy as np

from neurocomp.cli.main import cli, progress_bar


def run_build(build_dir: Path, target: str, samples, record: bool, progress=None) -> tuple[dict, dict]:
    """Run a build's first ``samples`` held-out samples on ``target``.

    Returns ``(summary, trains)``: the ``run.json`` document and, when ``record``, the per-layer spike
    trains ``{name: [samples, timesteps, n]}`` (plus ``input`` and ``labels``).
    """
    from neurocomp.backends import TARGETS, run_on_target
    from neurocomp.backends.sim import layer_order
    from neurocomp.errors import TargetError
    from neurocomp.pipeline import load_build

    if target not in TARGETS:
        raise TargetError(f"--target {target!r}: allowed: {', '.join(TARGETS)}")
    build = load_build(build_dir)
    spikes, labels = build.held_out(samples)
    t0 = time.perf_counter()
    # Lava records a layer only with a sink on it: add them all, so every layer's counts are reported
    record_layers = record or target in ("loihi-sim", "loihi2")
    res = run_on_target(target, build.fixed, build.float_net, spikes, record=record_layers, progress=progress)
    seconds = time.perf_counter() - t0
    layers = [p.name for p in layer_order(build.fixed)]
    n, steps = spikes.shape[:2]
    per_layer = {}
    for name in layers:
        total = int(res.counts[name].sum())
        size = int(res.counts[name].shape[1])
        per_layer[name] = {"neurons": size, "total": total, "per_sample": total / n,
                           "rate_per_neuron_step": total / (n * steps * size)}
    summary = {
        "build": str(build_dir),
        "target": target,
        "samples": int(n),
        "timesteps": int(steps),
        "accuracy": res.accuracy(labels),
        "predictions": res.predictions.tolist(),
        "labels": np.asarray(labels).tolist(),
        "spikes_per_layer": per_layer,
        "seconds": round(seconds, 3),
        "sample_steps_per_second": round(n * steps / max(seconds, 1e-9), 1),
    }
    trains = {}
    if record:
        trains = {name: res.spikes[name] for name in layers if name in res.spikes}
        trains["input"] = np.asarray(spikes, dtype=bool)
        trains["labels"] = np.asarray(labels)
    return summary, trains


def _stream_headline(summary: dict) -> str:
    """The first lines of ``neurocomp run`` on a stream build."""
    acc = summary["accuracy"]
    what = (f"accuracy {100 * acc:.2f}% on {summary['samples']} held-out samples" if acc is not None
            else "replay of the script's input spikes")
    warm = f", after {summary['warmup_samples']} labelling samples" if summary["warmup_samples"] else ""
    lines = [f"{summary['target']}: {what}; one stream of {summary['stream_steps']} steps "
             f"({summary['timesteps']} per sample{warm}), learning off "
             f"({summary['seconds']:.2f} s, {summary['steps_per_second']:.0f} steps/s)"]
    if acc is not None and summary.get("compile_accuracy") is not None:
        lines.append(f"  compile reported {100 * summary['compile_accuracy']:.2f}% on its "
                     f"{summary['compile_test_samples']} held-out samples; readout: {summary['readout']}")
    return "\n".join(lines)


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
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def run_cmd(build_dir, target, samples, out, record, no_warmup, quiet):
    """Run a compiled build (from 'neurocomp compile') on its held-out samples.

    Writes OUT/run.json: target, samples, timesteps, accuracy, predictions, spikes per layer.
    A Brian2 build runs its learned network frozen on one continuous stream (cpu or loihi-sim),
    read out as the compile did; with --record, spikes.npz holds each population's [steps, neurons].
    """
    from neurocomp.io import atomic_write_bytes, atomic_write_json
    from neurocomp.stream_build import is_stream_build, run_stream_build

    out = Path(out) if out is not None else Path(build_dir) / "run"
    bar = None if quiet else progress_bar(target)
    if is_stream_build(build_dir):
        summary, trains = run_stream_build(build_dir, target, samples, record, warmup=not no_warmup, progress=bar)
    else:
        summary, trains = run_build(build_dir, target, samples, record, progress=bar)
    # everything is computed before anything is written; each file is replaced atomically
    if record:
        buf = io.BytesIO()
        np.savez_compressed(buf, **trains)
        atomic_write_bytes(Path(out) / "spikes.npz", buf.getvalue())
    atomic_write_json(Path(out) / "run.json", summary)
    if not quiet:
        if summary.get("stream"):
            click.echo(_stream_headline(summary))
        else:
            click.echo(f"{summary['target']}: accuracy {100 * summary['accuracy']:.2f}% on {summary['samples']} "
                       f"held-out samples x {summary['timesteps']} steps "
                       f"({summary['seconds']:.2f} s, {summary['sample_steps_per_second']:.0f} sample-steps/s)")
        for name, row in summary["spikes_per_layer"].items():
            click.echo(f"  {name:<10} {row['neurons']:>6} neurons  {row['per_sample']:>10.1f} spikes/sample")
        click.echo(f"wrote {Path(out) / 'run.json'}" + (f" and {Path(out) / 'spikes.npz'}" if record else ""))
