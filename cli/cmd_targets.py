"""``neurocomp targets [NAME] [--map DIR] [--json]`` — what each target supports and its limits."""
from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from neurocomp.cli.main import cli

def _raw(name: str) -> dict:
    from neurocomp.targets import descriptor_path
    try:
        doc = yaml.safe_load(descriptor_path(name).read_text()) or {}
    except yaml.YAMLError:
        doc = {}
    return doc if isinstance(doc, dict) else {}


def _runs_here(name: str) -> str:
    """Whether this machine can run the target now, and if not, why."""
    from neurocomp.backends import TARGETS, get_backend
    if name not in TARGETS:
        return "no (device: energy estimates only)"
    why = get_backend(name).unavailable()
    return "yes" if why is None else f"no: {why}"


def target_summary(name: str) -> dict:
    """Everything ``neurocomp targets`` shows about one descriptor (merged with what it inherits)."""
    from neurocomp.backends import TARGETS as RUNNABLE_TARGETS
    from neurocomp.backends import compile_targets
    from neurocomp.backends.lava_runtime import RUNTIME_TARGETS
    from neurocomp.targets import load_descriptor

    desc = load_descriptor(name)
    raw = _raw(name)
    supports = []
    if name in RUNNABLE_TARGETS:
        supports.append("run")
    if name in compile_targets():
        supports.append("compile")
    if name in RUNTIME_TARGETS:
        supports.append("hil")
    if isinstance(desc.get("limits"), dict):
        supports.append("mapping")
    if isinstance(desc.get("energy"), dict):
        supports.append("energy")
    out = {
        "name": name,
        "kind": raw.get("kind", "target" if name in RUNNABLE_TARGETS else "device"),
        "description": desc.get("description", ""),
        "inherits": raw.get("inherits"),
        "runs_here": _runs_here(name),
        "supports": supports,
        "descriptor": desc.get("_path"),
    }
    for section in ("fixed_point", "limits"):
        if isinstance(desc.get(section), dict):
            out[section] = desc[section]
    return out


def _value(node) -> str:
    if not isinstance(node, dict):
        return str(node)
    if "value" in node:
        return f"{node['value']}" + (f" {node['unit']}" if node.get("unit") else "")
    if "min" in node and "max" in node:
        return f"{node['min']}..{node['max']}"
    return "?"


def _limits_short(lim: dict) -> str:
    try:
        return (f"{lim['chips']['value']} chips x {lim['cores_per_chip']['value']} cores, "
                f"{lim['neurons_per_core']['value']} neurons/core, "
                f"{lim['synaptic_memory_per_core']['value'] // 1024} KB synapses/core")
    except (KeyError, TypeError):
        return "(incomplete limits section)"


def format_table(rows: list) -> str:
    hdr = f"{'target':<18} {'kind':<7} {'runs here':<44} {'supports':<36} limits"
    lines = [hdr, "-" * (len(hdr) + 40)]
    for r in rows:
        lim = _limits_short(r["limits"]) if "limits" in r else "-"
        lines.append(f"{r['name']:<18} {r['kind']:<7} {r['runs_here']:<44} {', '.join(r['supports']):<36} {lim}")
    lines.append("")
    lines.append("run/compile: neurocomp run|compile --target; hil: neurocomp hil; mapping: core placement and "
                 "design-rule checks; energy: neurocomp energy. 'neurocomp targets NAME' shows every number "
                 "with its source.")
    return "\n".join(lines)


def format_detail(r: dict) -> str:
    lines = [f"{r['name']} — {r['description']}",
             f"  descriptor  {r['descriptor']}" + (f" (inherits {r['inherits']})" if r["inherits"] else ""),
             f"  runs here   {r['runs_here']}",
             f"  supports    {', '.join(r['supports']) or '-'}"]
    for section in ("fixed_point", "limits"):
        if section not in r:
            continue
        lines.append(f"  {section}:")
        for key, node in r[section].items():
            src = node.get("source", "") if isinstance(node, dict) else ""
            lines.append(f"    {key:<26} {_value(node):<22} {src}")
    return "\n".join(lines)


@cli.command("targets")
@click.argument("name", required=False)
@click.option("--map", "map_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A build directory: place its network on NAME's cores (default target loihi2) and "
                   "print the core map with its design-rule checks.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def targets_cmd(name, map_dir, as_json):
    """List the targets (targets/*.yaml): what each runs and supports, and its limits.

    With NAME, show that target's fixed-point formats and resource limits, each number with its
    source. With --map DIR, map a compiled network onto NAME's cores.
    """
    from neurocomp.targets import available_descriptors

    if map_dir is not None:
        from neurocomp.passes.place import map_network
        from neurocomp.pipeline import load_build
        from neurocomp.targets import load_descriptor

        placement = map_network(load_build(map_dir).fixed, load_descriptor(name or "loihi2"))
        if as_json:
            click.echo(json.dumps(placement.as_dict(), indent=2))
        else:
            click.echo(f"{placement.network} on {placement.target}:")
            click.echo(placement.format_table())
        return
    if name is not None:
        r = target_summary(name)
        click.echo(json.dumps(r, indent=2, default=str) if as_json else format_detail(r))
        return
    rows = [target_summary(n) for n in available_descriptors()]
    click.echo(json.dumps(rows, indent=2, default=str) if as_json else format_table(rows))
