"""``neurocomp energy DIR --baseline {gpu,cpu} --out OUT`` — per-inference and per-spike energy of a build."""
from __future__ import annotations

import json
from pathlib import Path

import click

from neurocomp.cli.main import cli


def format_energy(data: dict) -> str:
    """The short human summary: each device's J/inference, J/spike, what dominates, and the ratios."""
    from neurocomp.energy import dominant
    from neurocomp.report_html import COMPONENT_LABELS, fmt_si

    base = data["baseline"]
    stream = ", one continuous stream, learned weights frozen" if "workload" in base else ""
    lines = [f"{data['model']}: energy per inference on {data['samples']} held-out samples "
             f"x {data['timesteps']} steps{stream}", ""]
    hdr = (f"{'device':<10} {'J/inference':>12} {'dynamic':>10} {'static':>10} {'J/spike':>10} {'J/synop':>10}"
           f"  {'x less than ' + base['device'] + ' (time x power / op model)'}")
    lines += [hdr, "-" * len(hdr)]
    for name, dev in data["devices"].items():
        r = data["ratios"][name]
        lines.append(f"{name:<10} {fmt_si(dev['joules_per_inference']):>12} {fmt_si(dev['dynamic_joules_per_inference']):>10} "
                     f"{fmt_si(dev['static_joules_per_inference']):>10} {fmt_si(dev['joules_per_spike']):>10} "
                     f"{fmt_si(dev['joules_per_synop']):>10}  {r['time_power']:.3g}x / {r['op_model']:.3g}x")
    lines.append("")
    for name, dev in data["devices"].items():
        comp, share = dominant(dev["breakdown"])
        lines.append(f"{name}: {COMPONENT_LABELS.get(comp, comp)} dominates ({100 * share:.0f}%); "
                     f"placement: {dev['placement']['source']}")
    lines.append("")
    for key, b in data["baselines"].items():
        lines.append(f"baseline {b['device']}: op model {fmt_si(b['op_model_joules_per_inference'])}, "
                     f"time x power {fmt_si(b['time_power_joules_per_inference'])} "
                     f"({'measured' if b['measured'] else 'modelled'}: {b['time_power_how']})")
    if "workload" in base:  # a stream build: say what the dense baseline is
        w = base["workload"]
        lines.append(f"baseline workload: the same network stepped densely, {w['steps_per_inference']} steps x "
                     f"({w['macs_per_step']:,} MACs + {w['neuron_updates_per_step']} neuron updates) per sample")
    learn = data.get("learning")
    if learn and "devices" in learn:
        lines.append(f"learning on chip: {learn['learning_updates_per_sample']:.4g} synapse updates per training "
                     f"sample ({learn['samples']} samples); "
                     + ", ".join(f"{name} {fmt_si(d['joules_per_inference'])}/training sample "
                                 f"({fmt_si(d['breakdown']['learning'])} of it learning)"
                                 for name, d in learn["devices"].items()))
    elif learn:
        lines += learn["notes"]
    return "\n".join(lines)


def _read_placement(path: Path):
    from neurocomp.errors import NeurocompError
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise NeurocompError(f"{path}: cannot read placement: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise NeurocompError(f"{path}: not valid JSON: {e}") from None
    cores = doc.get("cores", doc) if isinstance(doc, dict) else None
    if not isinstance(cores, dict):
        raise NeurocompError(f"{path}: placement must map population -> list of cores ([chip, core] or index)")
    return cores


@cli.command("energy")
@click.argument("build_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--baseline", "-b", default="gpu", show_default=True,
              help="Conventional baseline: gpu (GTX Titan Black), cpu (i7-4960X; latency measured here), "
                   "or a device descriptor name / .yaml path with device_class: conventional.")
@click.option("--devices", "-d", default="loihi,loihi2", show_default=True,
              help="Comma-separated neuromorphic devices (descriptor names in targets/ or .yaml paths).")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=None,
              help="Held-out samples to count activity on (default: the whole held-out split).")
@click.option("--placement", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON {population: [[chip, core], ...]} core placement (default: neurocomp.mapping when "
                   "available, else sequential).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for energy.json and energy.html (default DIR/energy).")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def energy_cmd(build_dir, baseline, devices, samples, placement, out, quiet):
    """Estimate per-inference, per-spike and per-synop energy of the build in DIR on Loihi devices
    against a GPU or CPU baseline.

    Activity is counted on the bit-accurate cpu target over the held-out split; every figure comes
    from a targets/*.yaml descriptor with its source. Writes OUT/energy.json and a self-contained
    OUT/energy.html (figures inline, no network).
    """
    from neurocomp.energy import estimate_energy, resolve_devices
    from neurocomp.io import atomic_write_bytes, atomic_write_json
    from neurocomp.pipeline import load_build
    from neurocomp.report_html import render_energy_html

    names = [d.strip() for d in devices.split(",") if d.strip()]
    resolve_devices(names, baseline)  # a bad descriptor fails here, before the run
    pl = _read_placement(placement) if placement is not None else None
    from neurocomp.stream_build import estimate_build_energy, is_stream_build, load_stream_build

    if is_stream_build(build_dir):  # Brian2: recurrent/plastic, counted on one continuous stream
        report = estimate_build_energy(load_stream_build(build_dir), samples, devices=names, baseline=baseline,
                                       placement=pl, log=(lambda s: None) if quiet else
                                       (lambda s: click.echo(f"· {s}", err=True)))
    else:
        build = load_build(build_dir)
        spikes, _ = build.held_out(samples)
        if not quiet:
            click.echo(f"· counting activity on {len(spikes)} held-out samples (cpu target)", err=True)
        report = estimate_energy(build.fixed, spikes, devices=names, baseline=baseline,
                                 float_net=build.float_net, placement=pl)
    page = render_energy_html(report.data, report.activity.raster)
    out = Path(out) if out is not None else Path(build_dir) / "energy"
    # both documents are complete in memory before either is written; each write is atomic
    atomic_write_json(out / "energy.json", report.data)
    atomic_write_bytes(out / "energy.html", page.encode("utf-8"))
    if not quiet:
        click.echo(format_energy(report.data))
        click.echo(f"\nwrote {out}/energy.json and {out}/energy.html")
