"""``neurocomp hil DIR --target {loihi-sim,loihi2} --samples N --out OUT`` — hardware in the loop."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from neurocomp.backends.lava_runtime import RUNTIME_TARGETS
from neurocomp.cli.main import cli

EXIT_INTERRUPTED = 130  # the shell's convention for "stopped by SIGINT"
EXIT_MISMATCH = 1


class _StopOnCtrlC:
    """First Ctrl-C: finish the sample in flight, then stop; a second one interrupts at once.

    Installed before Lava's runtime starts: Lava forks its processes, which inherit this handler,
    so Ctrl-C at the terminal no longer kills them mid-step and the runtime can shut down cleanly.
    """

    def __init__(self):
        self.requested = False
        self._previous = None
        self._pid = os.getpid()

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if os.getpid() != self._pid:  # a forked Lava process: the host decides when to stop
            return
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        click.echo("\ninterrupted: finishing the sample in flight, writing what is done "
                   "(Ctrl-C again to abort)", err=True)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)


@cli.command("hil")
@click.argument("build_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", "-t", type=click.Choice(list(RUNTIME_TARGETS)), default="loihi-sim",
              show_default=True,
              help="loihi-sim: Lava's bit-accurate CPU simulator stands in for the chip; "
                   "loihi2: the chip (needs Intel's lava-loihi).")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=100, show_default=True,
              help="Held-out samples to stream (capped at the build's held-out split).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for hil.json (default DIR/hil).")
@click.option("--record-all", is_flag=True,
              help="Bring every population's spikes back to the host and compare them all "
                   "(default: the output population).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary; errors only.")
def hil_cmd(build_dir, target, samples, out, record_all, quiet):
    """Stream held-out samples of a compiled network through TARGET with the host in the loop.

    The host encodes each sample, streams it into the running Lava network (io Injector),
    reads the spikes back (io Extractor), decodes the class and checks every sample spike for
    spike against the golden cpu-target run and, by prediction, against the float model.
    Writes OUT/hil.json with agreement, accuracy, latency (median, p95) and throughput.

    \b
    Exit codes: 0 all samples agree with the cpu run; 1 some differ (listed under
    "mismatches"); 2 bad input or target unavailable; 130 stopped by Ctrl-C (the samples
    done so far are written, with "complete": false).
    """
    from tqdm import tqdm

    from neurocomp.io import atomic_write_json
    from neurocomp.pipeline import hardware_in_the_loop, load_build
    from neurocomp.report.text import format_hil

    build = load_build(build_dir)
    out = out or build_dir / "hil"
    bar = {}

    def on_open(n):
        bar["bar"] = tqdm(total=n, desc=f"hil {target}", unit="sample", file=sys.stderr,
                          disable=True if quiet else None, leave=False)

    def on_sample(result, stats):
        b = bar["bar"]
        b.update(1)
        b.set_postfix(agree=f"{stats['identical']}/{stats['done']}",
                      acc=f"{100 * stats['correct'] / stats['done']:.1f}%",
                      lat=f"{1000 * result.latency_s:.0f}ms", refresh=False)

    with _StopOnCtrlC() as stop:
        try:
            report = hardware_in_the_loop(build, target=target, samples=samples, record_all=record_all,
                                          on_sample=on_sample, should_stop=lambda: stop.requested,
                                          on_open=on_open)
        finally:
            if "bar" in bar:
                bar["bar"].close()
    out_file = out / "hil.json"
    atomic_write_json(out_file, report)
    if not quiet:
        click.echo(format_hil(report, out_file))
    if not report["complete"]:
        sys.exit(EXIT_INTERRUPTED)
    if report["mismatches"]:
        click.echo(f"error: {len(report['mismatches'])} of {report['samples']} samples differ from the "
                   f"cpu golden run (first: sample {report['mismatches'][0]['sample']}); see {out_file}",
                   err=True)
        sys.exit(EXIT_MISMATCH)
