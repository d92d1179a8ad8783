"""``neurocomp compile SPEC --target T --out DIR``."""
from __future__ import annotations

from pathlib import Path

import click

from neurocomp.cli.main import cli, progress_bar


def format_report(report: dict) -> str:
    """The short human summary: per-layer float -> integer mapping and the accuracies."""
    lines = [f"{report['model']} -> {report['target']}  ({report['timesteps']} steps/sample, "
             f"{report['encoding']} coding)", ""]
    hdr = (f"{'layer':<10} {'neurons':>7} {'synapses':>8} {'wbits':>5} {'wexp':>4} "
           f"{'vth':>14} {'du':>14} {'dv':>14} {'w err':>7} {'headroom':>8}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in report["layers"]:
        lines.append(
            f"{r['name']:<10} {r['neurons']:>7} {r['synapses']:>8} {r['num_weight_bits']:>5} {r['weight_exp']:>4} "
            f"{r['float_vth']:>5.3g}->{r['vth']:<7} {r['float_du']:>5.3g}->{r['du']:<7} "
            f"{r['float_dv']:>5.3g}->{r['dv']:<7} {100 * r['weight_rel_error']:>6.2f}% "
            f"{r['uv_headroom_bits']:>6.1f}b")
    a = report["accuracy"]
    ag = report["agreement"]["target_vs_cpu"]
    lines += [
        "",
        f"accuracy  float {100 * a['float']:.2f}%  bit-accurate cpu {100 * a['cpu']:.2f}%  "
        f"(held-out, {a['held_out']} samples)",
        f"          {report['target']} {100 * a['target']:.2f}% vs float {100 * a['float_on_target_samples']:.2f}% "
        f"on the same {a['samples']} samples",
        (f"agreement {report['target']} vs cpu: predictions {100 * ag['predictions_equal']:.1f}%"
         + (f", identical spike trains {100 * ag['identical_spike_trains']:.1f}%"
            if "identical_spike_trains" in ag else ""))
        if report["target"] != "cpu" else "agreement (the cpu target is the bit-accurate simulator itself)",
        f"time      {report['timing_s']['total']:.1f} s total, {report['timing_s']['target_run']:.1f} s on {report['target']}",
    ]
    return "\n".join(lines)


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

    Writes DIR/network.npz (fixed point), DIR/network_float.npz, DIR/build.json and
    DIR/report.json, and prints the per-layer float -> integer mapping and the accuracies.
    """
    from neurocomp.pipeline import compile_model

    log = (lambda s: None) if quiet else (lambda s: click.echo(f"· {s}", err=True))
    bars = {}

    def progress(name, done, total):
        bars.setdefault(name, progress_bar(name))(done, total)

    report = compile_model(spec, target=target, out=out, samples=samples,
                           progress=None if quiet else progress, log=log, energy=energy, force=force)
    if not quiet:
        if report.get("source") == "brian2":  # stream models: their own summary (learning, replay)
            from neurocomp.learning_pipeline import format_brian2_report
            click.echo(format_brian2_report(report))
        else:
            click.echo(format_report(report))
        if "energy" in report:
            from neurocomp.report_html import fmt_si
            en = report["energy"]
            for name, dev in en["devices"].items():
                click.echo(f"energy    {name} {fmt_si(dev['joules_per_inference'])}/inference, "
                           f"{fmt_si(dev['joules_per_spike'])}/spike; {en['baseline']['device']} time x power "
                           f"{en['ratios'][name]['time_power']:.3g}x more")
        click.echo(f"\nwrote {report['out']}/report.json")
