"""A sweep (``sweep.json``) as one self-contained HTML page: the accuracy-vs-energy Pareto front per
device, one plot per swept key, and every point in a table.

Same house style as the energy page: matplotlib (Agg) figures inlined as base64 PNG, inline styles,
nothing loaded from the network, every number also in a ``data-value`` attribute so tests and scripts
can read the rendered DOM back. Accuracy is the bit-accurate ``cpu`` target's on the held-out split
(what the chip answers); the float model's is shown beside it.
"""
from __future__ import annotations

import html
from typing import Any, List, Mapping

import numpy as np

from neurocomp.report.common import CSS, fmt_si, img, plt as _plt, png as _png, td as _td

#: figure colours (tests look for them in the screenshot)
COLOURS = {"point": "#1f77b4", "front": "#d62728", "float": "#2ca02c", "energy": "#9467bd"}


def _ok(doc) -> List[dict]:
    return [r for r in doc["records"] if r.get("status") == "ok"]


def _acc(r, which: str = "cpu"):
    v = r["metrics"]["accuracy"].get(which)
    return None if v is None else 100.0 * v


def _energy(r, device: str):
    return (r["metrics"]["energy"]["devices"].get(device) or {}).get("joules_per_inference")


def _value_text(v) -> str:
    return "null" if v is None else str(v)


def _axis_values(values: list) -> list:
    """A key's values in plotting order: numbers ascending, anything else as given."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return sorted(values) if numeric else list(values)


def _si_axis(axis) -> None:
    """Log-scale energy ticks as ``1.2 µJ`` rather than powers of ten (minor ticks: 2 and 5 x a decade)."""
    from matplotlib.ticker import FuncFormatter

    def minor(x, _):
        lead = f"{x:.0e}"[0]
        return fmt_si(x, digits=3) if lead in "25" else ""
    axis.set_major_formatter(FuncFormatter(lambda x, _: fmt_si(x, digits=3)))
    axis.set_minor_formatter(FuncFormatter(minor))


def short_label(overrides: Mapping[str, Any]) -> str:
    """A point's values joined by ``/`` in grid-key order (the figures' point labels)."""
    return "/".join(_value_text(v) for v in overrides.values())


# ------------------------------------------------------------------------------------- figures
def figure_pareto(doc: Mapping[str, Any]) -> str:
    """Per device: every point's energy per inference (log) vs bit-accurate accuracy, the front drawn
    as a staircase and its points labelled with their overrides."""
    plt = _plt()
    devices = doc["devices"]
    ok = _ok(doc)
    fig, axes = plt.subplots(1, len(devices), figsize=(6.2 * len(devices), 5.0), squeeze=False)
    for ax, dev in zip(axes[0], devices):
        pts = [(r, _energy(r, dev), _acc(r)) for r in ok if _energy(r, dev) is not None and _acc(r) is not None]
        front_ids = doc["pareto"].get(dev, [])
        xs = [e for _, e, _ in pts]
        ys = [a for _, _, a in pts]
        ax.scatter(xs, ys, s=36, color=COLOURS["point"], alpha=0.75, label="grid point", zorder=2)
        front = [next(p for p in pts if p[0]["id"] == pid) for pid in front_ids if any(p[0]["id"] == pid for p in pts)]
        if front:
            fx = [e for _, e, _ in front]
            fy = [a for _, _, a in front]
            ax.step(fx, fy, where="post", color=COLOURS["front"], lw=2.2, zorder=3)
            ax.scatter(fx, fy, s=90, color=COLOURS["front"], edgecolor="black", zorder=4,
                       label=f"Pareto front ({len(front)} points)")
            for n, (r, e, a) in enumerate(front):
                ax.annotate(short_label(r["overrides"]), (e, a), textcoords="offset points",
                            xytext=(7, -3) if n % 2 == 0 else (-7, 3), ha="left" if n % 2 == 0 else "right",
                            fontsize=8, va="top" if n % 2 == 0 else "bottom")
        ax.set_xscale("log")
        _si_axis(ax.xaxis)
        ax.tick_params(axis="x", which="both", labelsize=7, labelrotation=30)
        ax.set_xlabel(f"{dev}: energy per inference (log scale)")
        ax.set_ylabel("held-out accuracy, bit-accurate cpu (%)")
        ax.set_title(f"Accuracy vs energy on {dev}\n(front labelled {' / '.join(doc['grid'])})", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def figure_parameter(doc: Mapping[str, Any], key: str) -> str:
    """One swept key: accuracy (cpu and float) and energy on each device against its values, every
    point shown (the other keys vary along each column) with the mean over them as a line."""
    plt = _plt()
    values = _axis_values(doc["grid"][key])
    ok = _ok(doc)
    pos = {json_key(v): i for i, v in enumerate(values)}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 3.8))
    rng = np.random.default_rng(0)
    for which, colour, name in (("cpu", COLOURS["point"], "bit-accurate cpu"), ("float", COLOURS["float"], "float")):
        cols = {i: [] for i in range(len(values))}
        for r in ok:
            a = _acc(r, which)
            if a is not None:
                cols[pos[json_key(r["overrides"][key])]].append(a)
        for i, ys in cols.items():
            ax1.scatter(i + rng.uniform(-0.08, 0.08, len(ys)), ys, s=14, color=colour, alpha=0.6)
        means = [(i, float(np.mean(ys))) for i, ys in cols.items() if ys]
        if means:
            ax1.plot([i for i, _ in means], [m for _, m in means], marker="o", color=colour, lw=2,
                     label=f"{name} (mean)")
    ax1.set_ylabel("held-out accuracy (%)")
    ax1.set_title(f"accuracy vs {key}")
    ax1.legend(fontsize=8)
    markers = ["o", "s", "^", "D"]
    for d, dev in enumerate(doc["devices"]):
        cols = {i: [] for i in range(len(values))}
        for r in ok:
            e = _energy(r, dev)
            if e is not None:
                cols[pos[json_key(r["overrides"][key])]].append(e)
        for i, ys in cols.items():
            ax2.scatter(i + rng.uniform(-0.08, 0.08, len(ys)), ys, s=14, color=COLOURS["energy"], alpha=0.5,
                        marker=markers[d % len(markers)])
        means = [(i, float(np.mean(ys))) for i, ys in cols.items() if ys]
        if means:
            ax2.plot([i for i, _ in means], [m for _, m in means], marker=markers[d % len(markers)],
                     color=COLOURS["energy"], lw=2, alpha=1.0 - 0.35 * d, label=f"{dev} (mean)")
    ax2.set_yscale("log")
    _si_axis(ax2.yaxis)
    ax2.tick_params(axis="y", which="both", labelsize=7)
    ax2.set_ylabel("energy per inference (log)")
    ax2.set_title(f"energy vs {key}")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels([_value_text(v) for v in values])
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
        ax.set_xlim(-0.5, len(values) - 0.5)
    return _png(fig)


def json_key(v) -> str:
    import json
    return json.dumps(v)


# ---------------------------------------------------------------------------------------- page
def render_sweep_html(doc: Mapping[str, Any]) -> str:
    """The whole page for a ``sweep.json`` document."""
    e = html.escape
    keys = list(doc["grid"])
    devices = doc["devices"]
    ok = _ok(doc)
    name = doc["spec"]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>neurocomp sweep — {e(name)}"
             f"</title><style>{CSS}</style></head><body>"]
    parts.append(f"<h1>Sweep: {e(name)}</h1>")
    grid_text = " x ".join(f"{k} ∈ {{{', '.join(_value_text(v) for v in vals)}}}" for k, vals in doc["grid"].items())
    parts.append(f"<p class='note' id='summary' data-points='{doc['points']}' data-ok='{doc['ok']}' "
                 f"data-failed='{doc['failed']}' data-pending='{doc['pending']}'>{doc['points']} points "
                 f"({e(grid_text)}), each compiled on the bit-accurate <b>{e(doc['target'])}</b> target and scored "
                 f"on the held-out split: {doc['ok']} ok, {doc['failed']} failed, {doc['pending']} pending. "
                 f"{e(doc.get('ray') or '')}. Wall time of the last run {doc['wall_seconds']:.0f} s "
                 f"({doc.get('ran', 0)} run, {doc.get('skipped', 0)} done before).</p>")
    if ok and devices:
        parts.append("<h2>Accuracy vs energy: the Pareto front</h2>")
        parts.append("<p class='note'>A point is on the front when no other point is at least as accurate "
                     "and uses less energy per inference. Energy: the energy package's per-operation model of "
                     "each device on activity counted on the cpu target.</p>")
        parts.append(img(figure_pareto(doc), "accuracy against energy per inference, Pareto front per device",
                         "fig-pareto"))
        for dev in devices:
            by_id = {r["id"]: r for r in ok}
            parts.append(f"<h3>front on {e(dev)}</h3><table class='front' data-device='{e(dev)}'><tr>"
                         + "".join(f"<th>{e(k)}</th>" for k in keys)
                         + "<th>accuracy (cpu)</th><th>J / inference</th><th>latency (steps)</th></tr>")
            for pid in doc["pareto"].get(dev, []):
                r = by_id[pid]
                m = r["metrics"]
                parts.append(f"<tr data-id='{e(pid)}'>" + "".join(_td(None, _value_text(r["overrides"][k]), "")
                                                               for k in keys)
                             + _td(m["accuracy"]["cpu"], f"{100 * m['accuracy']['cpu']:.2f}%")
                             + _td(_energy(r, dev), fmt_si(_energy(r, dev)))
                             + _td(m["latency_steps"], str(m["latency_steps"])) + "</tr>")
            parts.append("</table>")
        parts.append("<h2>Each swept key</h2>")
        for i, k in enumerate(keys):
            parts.append(f"<h3>{e(k)}</h3>")
            parts.append(img(figure_parameter(doc, k), f"accuracy and energy against {k}", f"fig-param-{i}"))
    else:
        parts.append("<p class='note'>No point has finished yet.</p>")

    parts.append("<h2>Every point</h2><table id='points'><tr><th>#</th>" + "".join(f"<th>{e(k)}</th>" for k in keys)
                 + "<th>status</th><th>accuracy float</th><th>accuracy cpu</th>"
                 + "".join(f"<th>{e(d)} J / inference</th>" for d in devices)
                 + "<th>baseline (time x power)</th><th>latency (steps)</th><th>compile (s)</th><th>error</th></tr>")
    for n, r in enumerate(doc["records"], 1):
        status = r.get("status", "pending")
        row = [f"<tr data-id='{e(r['id'])}' data-status='{e(status)}'><td class='num'>{n}</td>"]
        row += [_td(None, _value_text(r["overrides"][k]), "") for k in keys]
        row.append(f"<td>{e(status)}</td>")
        if status == "ok":
            m = r["metrics"]
            row.append(_td(m["accuracy"]["float"], "–" if m["accuracy"]["float"] is None
                           else f"{100 * m['accuracy']['float']:.2f}%"))
            row.append(_td(m["accuracy"]["cpu"], f"{100 * m['accuracy']['cpu']:.2f}%"))
            row += [_td(_energy(r, d), fmt_si(_energy(r, d))) for d in devices]
            base = m["energy"]["baseline"]
            row.append(_td(base.get("time_power_joules_per_inference"),
                           f"{fmt_si(base.get('time_power_joules_per_inference'))} ({base.get('device') or '–'})", "num"))
            row.append(_td(m["latency_steps"], str(m["latency_steps"])))
            row.append(_td(r.get("seconds"), "–" if r.get("seconds") is None else f"{r['seconds']:.1f}"))
            row.append("<td></td>")
        else:
            row += ["<td></td>"] * (5 + len(devices))
            row.append(f"<td class='src'>{e(r.get('error', ''))}</td>")
        parts.append("".join(row) + "</tr>")
    parts.append("</table><p class='note'>Generated by neurocomp sweep (sweep.json holds every number). Figures "
                 "are inline PNG; the page loads nothing from the network.</p></body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------- text
def format_sweep(doc: Mapping[str, Any]) -> str:
    """What ``neurocomp sweep`` prints at the end: the counts, and each device's front."""
    lines = [f"sweep {doc['spec']} on {doc['target']}: {doc['points']} points, {doc['ok']} ok, {doc['failed']} failed, "
             f"{doc['pending']} pending ({doc.get('ran', 0)} run now, {doc.get('skipped', 0)} done before; "
             f"{doc['wall_seconds']:.0f} s)"]
    by_id = {r["id"]: r for r in doc["records"]}
    for dev in doc["devices"]:
        lines.append(f"Pareto front on {dev} (accuracy cpu / float, energy per inference, latency):")
        for pid in doc["pareto"][dev]:
            r = by_id[pid]
            m = r["metrics"]
            fl = m["accuracy"]["float"]
            lines.append(f"  {100 * m['accuracy']['cpu']:6.2f}% / {'  –  ' if fl is None else f'{100 * fl:6.2f}%'}  "
                         f"{fmt_si(_energy(r, dev)):>10}  {m['latency_steps']:>4} steps  {r['label']}")
    for r in doc["records"]:
        if r.get("status") == "failed":
            lines.append(f"failed: {r['label']}: {r.get('error', '')}")
    return "\n".join(lines)
