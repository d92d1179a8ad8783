"""The energy report as one self-contained HTML page for people (``energy.json`` is for machines).

Figures are drawn with matplotlib's Agg backend and inlined as base64 PNG, styles are inline: the page
needs no network, no CDN and no other file. Every number in the tables also carries its exact value in a
``data-value`` attribute, so tests (and scripts) can read the rendered DOM back.
"""
from __future__ import annotations

import html
from typing import Any, Mapping

import numpy as np

from neurocomp.report.common import COMPONENT_LABELS, CSS, fmt_num, fmt_si, img, plt as _plt, png as _png, td as _td

#: one colour per energy component / baseline kind, shared by every figure (tests look for them)
COLOURS = {
    "synops": "#1f77b4",
    "neuron_updates_active": "#ff7f0e",
    "neuron_updates_inactive": "#ffbb78",
    "spike_messages": "#2ca02c",
    "learning": "#d62728",
    "static": "#7f7f7f",
    "op_model": "#9467bd",
    "time_power": "#8c564b",
}


# ------------------------------------------------------------------------------------- figures
def figure_per_layer(data: Mapping[str, Any]) -> str:
    """Per-layer dynamic energy, stacked by component, one panel per neuromorphic device."""
    plt = _plt()
    devices = data["devices"]
    fig, axes = plt.subplots(1, len(devices), figsize=(5.6 * len(devices), 0.7 + 0.55 * max(
        len(next(iter(devices.values()))["per_layer"]), 1) + 1.2), squeeze=False, sharey=True)
    for ax, (name, dev) in zip(axes[0], devices.items()):
        layers = dev["per_layer"]
        names = [lay["population"] for lay in layers]
        left = np.zeros(len(layers))
        for comp in ("synops", "neuron_updates_active", "neuron_updates_inactive", "spike_messages", "learning"):
            vals = np.array([lay["energy_j"][comp] for lay in layers]) * 1e6
            if not np.any(vals):
                continue
            ax.barh(names, vals, left=left, color=COLOURS[comp], label=COMPONENT_LABELS[comp])
            left += vals
        ax.set_title(f"{name}: dynamic energy per inference by layer")
        ax.set_xlabel("µJ per inference")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # shared y axis: invert once, first layer on top
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=len(labels), fontsize=9,
               frameon=False)
    return _png(fig)


def figure_devices(data: Mapping[str, Any]) -> str:
    """J per inference of every device and baseline, log scale; baselines show their power range."""
    plt = _plt()
    rows = []  # (label, value, colour, (lo, hi) or None)
    for name, dev in data["devices"].items():
        rows.append((f"{name} total (dynamic + static)", dev["joules_per_inference"], COLOURS["static"], None))
        rows.append((f"{name} dynamic only", dev["dynamic_joules_per_inference"], COLOURS["synops"], None))
    for key, base in data["baselines"].items():
        rows.append((f"{base['device']} op model", base["op_model_joules_per_inference"], COLOURS["op_model"], None))
        tag = "measured" if base.get("measured") else "modelled"
        rows.append((f"{base['device']} time x power ({tag})", base["time_power_joules_per_inference"],
                     COLOURS["time_power"], tuple(base.get("time_power_range_joules") or ()) or None))
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    vals = np.array([max(r[1], 1e-18) for r in rows])
    ax.barh(y, vals, color=[r[2] for r in rows])
    for i, r in enumerate(rows):
        if r[3]:
            ax.plot([r[3][0], r[3][1]], [i, i], color="black", lw=1.2)
            ax.plot([r[3][0]] * 2, [i - 0.2, i + 0.2], color="black", lw=1.2)
            ax.plot([r[3][1]] * 2, [i - 0.2, i + 0.2], color="black", lw=1.2)
        ax.text(vals[i] * 1.15, i, fmt_si(r[1]), va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(vals.min() / 3, vals.max() * 30)
    ax.set_xlabel("joules per inference (log scale); black bars: idle..active power range")
    ax.set_title("Device comparison")
    ax.grid(axis="x", alpha=0.3, which="both")
    return _png(fig)


def figure_raster(raster: Mapping[str, np.ndarray], timesteps: int) -> str:
    """Spike raster of one sample: one panel per layer, the output on top and the input at the bottom,
    panel heights growing with the square root of the layer size so small layers stay readable."""
    plt = _plt()
    names = list(raster)[::-1]
    sizes = [max(raster[n].shape[1], 1) for n in names]
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 4.6), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [max(np.sqrt(s), 2.0) for s in sizes]})
    cmap = plt.get_cmap("tab10")
    for i, (ax, name) in enumerate(zip(axes[:, 0], names)):
        t, n = np.nonzero(raster[name])
        ax.scatter(t, n, s=3 if sizes[i] > 200 else 8, marker="s" if sizes[i] > 200 else "|",
                   color=cmap((len(names) - 1 - i) % 10), linewidths=1)
        ax.set_ylim(-0.5, sizes[i] - 0.5)
        ax.set_ylabel(f"{name}\n{int(raster[name].sum())} spikes", rotation=0, ha="right", va="center", fontsize=9)
        ax.set_yticks([])
    axes[-1, 0].set_xlim(-0.5, timesteps - 0.5)
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title("Spike raster, held-out sample 0 (neurons on the vertical axis of each panel)")
    return _png(fig)


def figure_activity(data: Mapping[str, Any]) -> str:
    """Activation sparsity per layer, and synaptic operations per step."""
    plt = _plt()
    dev = next(iter(data["devices"].values()))
    layers = dev["per_layer"]
    act = data["activity"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    names = ["input"] + [lay["population"] for lay in layers]
    sparsity = [act["input_sparsity"]] + [lay["activation_sparsity"] for lay in layers]
    ax1.bar(names, [100 * s for s in sparsity], color=COLOURS["spike_messages"])
    for i, s in enumerate(sparsity):
        ax1.text(i, 100 * s + 1, f"{100 * s:.1f}%", ha="center", fontsize=8)
    ax1.set_ylim(0, 110)
    ax1.set_ylabel("activation sparsity (%)")
    ax1.set_title("Zero outputs / all outputs (NeuroBench)")
    for lay in layers:
        ax2.plot(lay["per_step"]["synops"], marker="o", ms=3, label=f"into {lay['population']}")
    ax2.set_xlabel("time step")
    ax2.set_ylabel("effective synops per inference")
    ax2.set_title("Synaptic operations per step")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return _png(fig)


def render_energy_html(data: Mapping[str, Any], raster: Mapping[str, np.ndarray]) -> str:
    """The whole page for an energy report (``EnergyReport.data``) and one sample's spike raster."""
    e = html.escape
    devices = data["devices"]
    base = data["baseline"]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>neurocomp energy report — {e(str(data['model']))}</title><style>{CSS}</style></head><body>"]
    parts.append(f"<h1>Energy report: {e(str(data['model']))}</h1>")
    parts.append(f"<p class='note'>{data['samples']} held-out samples x {data['timesteps']} steps, activity "
                 f"{e(data['activity']['counted_on'])}. Baseline: {e(base['device'])} "
                 f"({e(base['description'])}).</p>")

    # summary
    parts.append("<h2>Summary</h2><table id='summary'><tr><th>device</th><th>J / inference</th>"
                 "<th>dynamic</th><th>static</th><th>J / spike</th><th>J / synop</th><th>time / inference</th>"
                 f"<th>x less than {e(base['device'])} time x power</th><th>x less than op model</th></tr>")
    for name, dev in devices.items():
        r = data["ratios"][name]
        parts.append(
            f"<tr data-device='{e(name)}'><td>{e(name)}</td>"
            + _td(dev["joules_per_inference"], fmt_si(dev["joules_per_inference"]))
            + _td(dev["dynamic_joules_per_inference"], fmt_si(dev["dynamic_joules_per_inference"]))
            + _td(dev["static_joules_per_inference"], fmt_si(dev["static_joules_per_inference"]))
            + _td(dev["joules_per_spike"], fmt_si(dev["joules_per_spike"]))
            + _td(dev["joules_per_synop"], fmt_si(dev["joules_per_synop"]))
            + _td(dev["seconds_per_inference"], fmt_si(dev["seconds_per_inference"], "s") + " (modelled)")
            + _td(r["time_power"], f"{r['time_power']:.3g}x")
            + _td(r["op_model"], f"{r['op_model']:.3g}x") + "</tr>")
    parts.append("</table>")
    for name, dev in devices.items():
        b = dev["breakdown"]
        total = sum(b.values())
        top = max(b, key=lambda k: b[k])
        parts.append(f"<p class='note'>{e(name)}: {e(COMPONENT_LABELS.get(top, top))} dominates "
                     f"({100 * b[top] / total:.0f}% of {fmt_si(total)}).</p>")

    parts.append("<h2>Device comparison</h2>")
    parts.append(img(figure_devices(data), "joules per inference for each device and baseline", "fig-devices"))
    parts.append("<table id='baselines'><tr><th>baseline</th><th>dense MACs</th><th>op model</th>"
                 "<th>arithmetic floor</th><th>latency (batch 1)</th><th>time x power</th><th>range</th>"
                 "<th>how</th></tr>")
    for key, bl in data["baselines"].items():
        tag = "measured" if bl.get("measured") else "modelled"
        rng = bl.get("time_power_range_joules") or [None, None]
        parts.append(
            f"<tr data-baseline='{e(key)}'><td>{e(bl['device'])} <span class='tag {tag}'>{tag}</span></td>"
            + _td(bl["macs"], f"{bl['macs']:,}")
            + _td(bl["op_model_joules_per_inference"], fmt_si(bl["op_model_joules_per_inference"]))
            + _td(bl["arithmetic_floor_joules_per_inference"], fmt_si(bl["arithmetic_floor_joules_per_inference"]))
            + _td(bl["latency_s"], fmt_si(bl["latency_s"], "s") + (" measured" if bl.get("latency_measured") else " modelled"))
            + _td(bl["time_power_joules_per_inference"], fmt_si(bl["time_power_joules_per_inference"]))
            + _td(None, f"{fmt_si(rng[0])} – {fmt_si(rng[1])}")
            + f"<td class='src'>{e(bl['time_power_how'])}</td></tr>")
    parts.append("</table>")

    parts.append("<h2>Per-layer energy</h2>")
    parts.append(img(figure_per_layer(data), "dynamic energy per layer, stacked by component", "fig-per-layer"))
    for name, dev in devices.items():
        parts.append(f"<h3>{e(name)}</h3><p class='note'>placement: {e(dev['placement']['source'])}; "
                     f"{dev['placement']['cores_used']} cores, {dev['placement']['tiles_used']} tiles</p>")
        parts.append(f"<table class='per-layer' data-device='{e(name)}'><tr><th>layer</th><th>neurons</th>"
                     "<th>cores</th><th>synops</th><th>dense synops</th><th>active updates</th>"
                     "<th>inactive updates</th><th>spikes</th><th>messages</th><th>hops E-W / N-S</th>"
                     "<th>learning updates</th><th>energy</th></tr>")
        for lay in dev["per_layer"]:
            parts.append(
                f"<tr><td>{e(lay['population'])}</td>" + _td(lay["neurons"], str(lay["neurons"]))
                + _td(len(lay["cores"]), str(len(lay["cores"])))
                + _td(lay["synops_per_inference"], fmt_num(lay["synops_per_inference"]))
                + _td(lay["dense_synops_per_inference"], fmt_num(lay["dense_synops_per_inference"]))
                + _td(lay["neuron_updates_active_per_inference"], fmt_num(lay["neuron_updates_active_per_inference"]))
                + _td(lay["neuron_updates_inactive_per_inference"], fmt_num(lay["neuron_updates_inactive_per_inference"]))
                + _td(lay["spikes_per_inference"], fmt_num(lay["spikes_per_inference"]))
                + _td(lay["spike_messages_per_inference"], fmt_num(lay["spike_messages_per_inference"]))
                + _td(None, f"{fmt_num(lay['hops_ew_per_inference'])} / {fmt_num(lay['hops_ns_per_inference'])}")
                + _td(lay["learning_updates_per_inference"],
                      fmt_num(lay["learning_updates_per_inference"]) if lay["plastic"] else "– (static)")
                + _td(lay["energy_j"]["total"], fmt_si(lay["energy_j"]["total"])) + "</tr>")
        parts.append("</table>")

    act = data["activity"]
    so = act["synaptic_operations"]
    parts.append("<h2>Activity</h2>")
    parts.append(img(figure_raster(raster, data["timesteps"]), "spike raster of held-out sample 0", "fig-raster"))
    parts.append(img(figure_activity(data), "activation sparsity per layer and synaptic operations per step",
                      "fig-activity"))
    sparsity_text = f"{100 * act['activation_sparsity']:.2f}%"
    parts.append("<table id='activity'>"
                 f"<tr><th>input spikes / inference</th>{_td(act['input_spikes_per_inference'], fmt_num(act['input_spikes_per_inference']))}</tr>"
                 f"<tr><th>network spikes / inference</th>{_td(act['spikes_per_inference'], fmt_num(act['spikes_per_inference']))}</tr>"
                 f"<tr><th>activation sparsity</th>{_td(act['activation_sparsity'], sparsity_text)}</tr>"
                 f"<tr><th>effective synaptic ops (ACs) / inference</th>{_td(so['Effective_ACs'], fmt_num(so['Effective_ACs']))}</tr>"
                 f"<tr><th>dense synaptic ops / inference</th>{_td(so['Dense'], fmt_num(so['Dense']))}</tr>"
                 f"</table><p class='note'>{e(so['definition'])}</p>")

    parts.append("<h2>Assumptions and sources</h2><ul class='note'>")
    notes = []
    for dev in list(devices.values()) + list(data["baselines"].values()):
        for n in dev.get("notes", []):
            if n not in notes:
                notes.append(n)
    parts.extend(f"<li>{e(n)}</li>" for n in notes)
    parts.append("</ul><table id='sources'><tr><th>figure</th><th>value</th><th>source</th></tr>")
    figures = data.get("figures", {})
    for key, src in data["sources"].items():
        fig = figures.get(key)
        val = "" if fig is None else f"{fig['value']:g} {fig['unit']}"
        parts.append(f"<tr><td>{e(key)}</td><td class='num'>{e(val)}</td><td class='src'>{e(src)}</td></tr>")
    parts.append("</table><p class='note'>Generated by neurocomp energy. Figures are inline PNG; "
                 "the page loads nothing from the network.</p></body></html>")
    return "\n".join(parts)
