"""``neurocomp energy DIR --baseline {gpu,cpu} --out OUT`` — per-inference and per-spike energy of a build."""
from __future__ import annotations

import json
from pathlib import Path

import click

from neurocomp.cli.main import cli


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
              help="JSON {population: [[chip, core], ...]} core placement (default: neurocomp.passes.place when "
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
    from neurocomp.energy import resolve_devices
    from neurocomp.io import atomic_write_bytes, atomic_write_json
    from neurocomp.pipeline import energy_of_build, load_build
    from neurocomp.report.energy_page import render_energy_html
    from neurocomp.report.text import format_energy

    names = [d.strip() for d in devices.split(",") if d.strip()]
    resolve_devices(names, baseline)  # a bad descriptor fails here, before the run
    pl = _read_placement(placement) if placement is not None else None
    report = energy_of_build(load_build(build_dir), samples, devices=names, baseline=baseline, placement=pl,
                             log=(lambda s: None) if quiet else (lambda s: click.echo(f"· {s}", err=True)))
    page = render_energy_html(report.data, report.activity.raster)
    out = Path(out) if out is not None else Path(build_dir) / "energy"
    # both documents are complete in memory before either is written; each write is atomic
    atomic_write_json(out / "energy.json", report.data)
    atomic_write_bytes(out / "energy.html", page.encode("utf-8"))
    if not quiet:
        click.echo(format_energy(report.data))
        click.echo(f"\nwrote {out}/energy.json and {out}/energy.html")
