"""The compile report as one self-contained HTML page for people (``report.json`` is for machines).

:func:`render_compile_html` turns a compile report and the two networks (the float IR and the fixed
point network the build deploys) into ``report.html``: the float -> integer table per layer, the
learning rules, weight histograms before/after quantisation, u/v headroom, accuracy (for a converted
ANN also against timesteps: ANN / SNN float / SNN fixed) and agreement,
float vs fixed spike counts and where they first diverge, the core mapping and the timing.

Figures are matplotlib ``Figure`` objects rendered by the Agg canvas (no GUI backend) and inlined as
base64 PNG; styles are inline (the base sheet and the cell/number helpers are
:mod:`neurocomp.report.common`'s): the page needs no network, no CDN and no other file. Numbers in
tables carry their exact value in a ``data-value`` attribute so tests and scripts can read the rendered DOM back.

Every section reads only its own keys and says so in a short note when they are absent or ``None``
(reports of older builds, targets without a core model, a compile that recorded no spikes). A section
that fails to render for any other reason shows the error in a ``section-error`` box instead of
taking the compile down with it; tests assert that no such box appears.

Why one module of ~590 lines: it is one page; each section (tables, histograms, headroom, spikes,
mapping) is a small function, and splitting them across files would leave nothing shared to name.
"""
from __future__ import annotations

import html
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from neurocomp.report.common import CSS, fmt_num, img, png as _png, td

#: figure colours (tests look for them in the screenshot)
COLOURS = {
    "float": "#1f77b4",        # float weights / float spike counts
    "fixed": "#d62728",        # what the integers stand for
    "headroom_ok": "#2ca02c",
    "headroom_low": "#ff7f0e",  # below 1 bit
    "headroom_none": "#d62728",  # at or past the 24-bit limit
    "ann": "#000000",           # a converted ANN's own accuracy
    "what_if": "#7f7f7f",       # the reset-by-subtraction what-if
}
SIGN_MODES = {0: "–", 1: "mixed", 2: "excitatory", 3: "inhibitory"}
UV_BITS = 24          # Lava's fixed-point LIF: u and v are signed 24-bit registers
ACT_SHIFT = 6         # Lava shifts the synaptic input left by 6 before it enters u
LOG_HISTOGRAM_FROM = 2000   # weight histograms of projections with this many weights count on a log scale

_e = html.escape


# ------------------------------------------------------------------------------------ formatting
def _num(value: Optional[float], digits: int = 4) -> str:
    """Integers with thousands separators, booleans as yes/no, else :func:`~neurocomp.report.common.fmt_num`."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    v = float(value)
    if math.isfinite(v) and v.is_integer() and abs(v) < 1e9:
        return f"{int(v):,}"
    return fmt_num(v, digits) if math.isfinite(v) else str(v)


def _pct(value: Optional[float], digits: int = 2) -> str:
    return "–" if value is None else f"{100 * float(value):.{digits}f}%"


def _td(value: Any, text: Optional[str] = None, cls: str = "num") -> str:
    """A cell; numbers (not booleans) carry ``data-value``, the shown text defaults to :func:`_num`."""
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if text is None:
        text = _num(value) if numeric or value is None or isinstance(value, bool) else str(value)
    return td(float(value) if numeric else None, text, cls)


def _note(text: str, cls: str = "note") -> str:
    return f"<p class='{cls}'>{_e(text)}</p>"


def _img(b64: str, alt: str, fig_id: str, caption: str = "") -> str:
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return img(b64, alt, fig_id).replace("</figure>", cap + "</figure>")


def _figure(width: float, height: float):
    """A figure on matplotlib's Agg canvas, outside pyplot's global state."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=100)


def _grid(n: int, max_cols: int = 3):
    cols = max(1, min(max_cols, n))
    return cols, int(math.ceil(n / cols))


# ------------------------------------------------------------------------------------ sections
def _header(report: Mapping[str, Any]) -> str:
    sched = report.get("schedule")
    if sched:
        kind = sched.get("kind", "?")
        steps = sched.get("timesteps", report.get("timesteps"))
        rest = sched.get("rest") or 0
        what = (f"{kind}: {steps} steps per sample, every sample from rest" if kind == "batched"
                else f"{kind}: one continuous run, {steps} input steps + {rest} rest steps per sample")
    else:
        what = f"{report.get('timesteps', '?')} steps per sample (schedule not recorded)"
    rows = [("model", report.get("model")), ("target", report.get("target")), ("source", report.get("source")),
            ("schedule", what), ("encoding", report.get("encoding")), ("mode", report.get("mode"))]
    cells = "".join(f"<tr><th>{_e(k)}</th><td data-key='{_e(k)}'>{_e('–' if v is None else str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table id='meta'>{cells}</table>"


def _accuracy(report: Mapping[str, Any]) -> str:
    acc = report.get("accuracy")
    out = ["<h2 id='h-accuracy'>Accuracy</h2>"]
    if not acc:
        out.append(_note("No accuracy: the script's own stimulus was replayed once (no labelled samples); "
                         "report.json's replay section compares its spike counts and weights with the reference."
                         if report.get("mode") == "replay" else "No accuracy in this report."))
    else:
        ref = acc.get("reference") or "float"
        ref_label = "Brian2 (float)" if ref == "brian2" else ("float IR" if ref == "float" else f"{ref} (float)")
        target = report.get("target", "target")
        n, held = acc.get("samples"), acc.get("held_out")
        rows = [("float", f"float reference: {ref_label}", held),
                ("cpu", "cpu: neurocomp's bit-accurate fixed-point simulator", held),
                ("target", f"target: {target}", n)]
        out.append("<table id='accuracy'><tr><th>run</th><th>accuracy</th><th></th><th>samples</th></tr>")
        for key, label, samples in rows:
            v = acc.get(key)
            bar = ("" if v is None else
                   f"<div class='bar' style='width:{max(0.0, min(1.0, float(v))) * 240:.0f}px'></div>")
            out.append(f"<tr data-run='{key}'><td>{_e(label)}</td>{_td(v, _pct(v))}<td class='barcell'>{bar}</td>"
                       f"{_td(samples)}</tr>")
        out.append("</table>")
        notes = []
        if acc.get("float_on_target_samples") is not None and n is not None and held is not None and n != held:
            notes.append(f"float on the target's {n} samples: {_pct(acc['float_on_target_samples'])}.")
        if target == "cpu":
            notes.append("The target is the cpu simulator itself, so cpu and target are one run.")
        silent = acc.get("silent_samples")
        if isinstance(silent, Mapping) and silent:
            notes.append("Samples with no output spike at all (no answer): "
                         + ", ".join(f"{k} {v}" for k, v in silent.items()) + ".")
        if any(acc.get(k) is None for k in ("float", "cpu", "target")):
            notes.append("– : not measured in this compile.")
        out.extend(_note(t) for t in notes)
    ln = report.get("learning")
    if ln:
        out.append("<h3>Learning</h3><table id='learning'>")
        rows = [("accuracy on the target after learning", ln.get("accuracy"), _pct),
                ("reference accuracy", ln.get("reference_accuracy"), _pct),
                ("training samples", ln.get("samples"), _num),
                ("labelling samples", ln.get("label_samples"), _num),
                ("test samples", ln.get("test_samples"), _num),
                ("mean |weight change| (float units)", ln.get("weight_change"), _num),
                ("reference mean |weight change|", ln.get("reference_weight_change"), _num)]
        if "weight_change_lsb" in ln:
            rows.append(("mean |weight change| (integer steps)", ln.get("weight_change_lsb"), _num))
        for label, v, f in rows:
            out.append(f"<tr><th>{_e(label)}</th>{_td(v, f(v))}</tr>")
        out.append("</table>")
        n_eval = (ln.get("label_samples") or 0) + (ln.get("test_samples") or 0)
        if ln.get("retried"):
            rounds = "; ".join(f"{k}: {' + '.join(str(n) for n in v) or 'none'}" for k, v in ln["retried"].items())
            out.append(_note(f"Samples under {ln['retry_silent']['below_spikes']} output spikes shown again at a "
                             f"higher input rate (Diehl & Cook), per round: {rounds}. The energy figures count "
                             "one presentation per sample; the target's retries add "
                             f"{100 * sum(ln['retried'].get('target', [])) / max(1, n_eval):.0f} % presentations."))
        if ln.get("reference_input"):
            codegen = f" Code generation: {ln['reference_codegen']}." if ln.get("reference_codegen") else ""
            out.append(_note(f"Reference input: {ln['reference_input']}.{codegen}"))
        if ln.get("reference_error"):
            out.append(_note(f"Reference not run: {ln['reference_error']}", "warn"))
    return "\n".join(out)


def _figure_conversion(conv: Mapping[str, Any]) -> str:
    curve = conv["curve"]
    steps = [r["timesteps"] for r in curve]
    fig = _figure(6.8, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.axhline(100 * conv["ann_accuracy"], color=COLOURS["ann"], ls="--", lw=1.2, label="ANN (the module itself)")
    ax.axhline(100 * conv["ann_accuracy"] - 1, color=COLOURS["ann"], ls=":", lw=0.8, label="ANN − 1 pp")
    for key, colour, marker, label in (
            ("snn_float", COLOURS["float"], "o-", "SNN float (Lava's LIF: reset to zero)"),
            ("snn_fixed", COLOURS["fixed"], "s-", "SNN fixed point (cpu, bit-accurate)"),
            ("snn_float_reset_subtract", COLOURS["what_if"], "^:", "SNN float, reset by subtraction (what-if)")):
        ax.plot(steps, [100 * r[key] for r in curve], marker, color=colour, label=label, ms=5)
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps)
    ax.set_xticklabels([str(t) for t in steps])
    ax.set_xlabel("timesteps per sample (latency)", fontsize=9)
    ax.set_ylabel("held-out accuracy (%)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return _png(fig)


def _conversion(report: Mapping[str, Any]) -> str:
    conv = report.get("conversion")
    if not conv:
        return ""
    out = ["<h2 id='h-conversion'>Conversion: accuracy vs timesteps</h2>"]
    curve = conv.get("curve") or []
    if curve:
        out.append(_img(_figure_conversion(conv), "accuracy of the ANN and the converted SNN per timesteps",
                        "fig-conversion"))
    out.append("<table id='conversion'><tr><th>timesteps</th><th>ANN</th><th>SNN float</th><th>SNN fixed</th>"
               "<th>reset by subtraction (what-if)</th><th>float = fixed predictions</th>"
               "<th>silent samples (fixed)</th></tr>")
    for r in curve:
        out.append(f"<tr data-timesteps='{int(r['timesteps'])}'>{_td(r['timesteps'])}{_td(r['ann'], _pct(r['ann']))}"
                   f"{_td(r['snn_float'], _pct(r['snn_float']))}{_td(r['snn_fixed'], _pct(r['snn_fixed']))}"
                   f"{_td(r['snn_float_reset_subtract'], _pct(r['snn_float_reset_subtract']))}"
                   f"{_td(r['fixed_vs_float_predictions_equal'], _pct(r['fixed_vs_float_predictions_equal']))}"
                   f"{_td(r['silent_samples_fixed'])}</tr>")
    out.append("</table>")
    fastest = conv.get("fastest_within_1pp")
    out.append(_note(f"{conv.get('held_out', '?')} held-out samples. "
                     + (f"Fewest timesteps with the fixed-point SNN within 1 pp of the ANN: {fastest}. "
                        if fastest is not None else "No timesteps brought the fixed-point SNN within 1 pp of the ANN. ")
                     + "Lava's LIF resets v to zero after a spike; the grey what-if resets by subtracting the "
                       "threshold (conversion theory's neuron): the gap between them is what the reset costs."))
    return "\n".join(out)


def _agreement(report: Mapping[str, Any]) -> str:
    out = ["<h2 id='h-agreement'>Agreement: target vs cpu</h2>"]
    ag = report.get("agreement") or {}
    tc = ag.get("target_vs_cpu")
    if not tc:
        out.append(_note("The target is the cpu simulator itself: nothing to compare." if report.get("target") == "cpu"
                         else "No target-vs-cpu agreement in this report."))
    else:
        out.append("<table id='agreement'><tr><th>check</th><th>value</th></tr>")
        for key, v in tc.items():
            label = key.replace("_", " ")
            if isinstance(v, bool):
                cell = f"<td data-value='{float(v)!r}'><span class='tag {'ok' if v else 'bad'}'>" \
                       f"{'yes' if v else 'no'}</span></td>"
            elif isinstance(v, float) and key != "samples":
                tag = "ok" if v == 1.0 else "bad"
                cell = f"<td class='num' data-value='{v!r}'><span class='tag {tag}'>{_pct(v)}</span></td>"
            else:
                cell = _td(v)
            out.append(f"<tr data-check='{_e(key)}'><td>{_e(label)}</td>{cell}</tr>")
        out.append("</table>")
        if report.get("target") == "cpu":
            out.append(_note("The target is the cpu simulator: these compare it with itself."))
    if ag.get("float_vs_fixed_predictions") is not None:
        out.append(_note(f"Float and fixed point predict the same class on "
                         f"{_pct(ag['float_vs_fixed_predictions'])} of the held-out samples."))
    return "\n".join(out)


_LAYER_HEAD = ("<tr><th>layer</th><th>neurons</th><th>synapses</th><th>scale S</th><th>weight bits</th>"
               "<th>weight exp</th><th>sign mode</th><th>v<sub>th</sub> float → int</th><th>du float → int</th>"
               "<th>dv float → int</th><th>bias exp</th><th>weight rel. error</th><th>v<sub>th</sub> rel. error</th>"
               "<th>peak |u|</th><th>peak |v|</th><th>u/v headroom</th><th>silent weights</th></tr>")


def _layers(report: Mapping[str, Any]) -> str:
    out = ["<h2 id='h-layers'>Float → integer, per layer</h2>"]
    layers = report.get("layers")
    if not layers:
        out.append(_note("No per-layer quantisation in this report."))
        return "\n".join(out)
    out.append(f"<table id='layers'>{_LAYER_HEAD}")
    for r in layers:
        g = r.get
        pair = lambda f, i: _td(g(i), f"{_num(g(f))} → {_num(g(i))}", cls="num nw")  # noqa: E731
        silent = g("silent_weights")
        head = g("uv_headroom_bits")
        row_cls = " class='silent'" if silent else ""
        out.append(
            f"<tr data-layer='{_e(str(g('name')))}'{row_cls}>"
            f"<td>{_e(str(g('name')))}</td>" + _td(g("neurons")) + _td(g("synapses")) + _td(g("scale"))
            + _td(g("num_weight_bits")) + _td(g("weight_exp"))
            + _td(None, SIGN_MODES.get(g("sign_mode"), str(g("sign_mode"))), cls="txt")
            + pair("float_vth", "vth") + pair("float_du", "du") + pair("float_dv", "dv") + _td(g("bias_exp"))
            + _td(g("weight_rel_error"), _pct(g("weight_rel_error"))) + _td(g("vth_rel_error"), _pct(g("vth_rel_error"), 3))
            + _td(g("peak_u")) + _td(g("peak_v"))
            + _td(head, "–" if head is None else f"{head:.2f} bits")
            + _td(silent, "–" if silent is None else ("YES" if silent else "no"), cls="txt") + "</tr>")
    out.append("</table>")
    out.append(_note(
        "One scale S per population maps float units to Lava's integers: weight w → mantissa × 2^weight exp ≈ "
        "w·S, v_th → round(v_th·S); decays are 12-bit: du → round(du·4096) − 1 (Lava adds Loihi's 1-bit "
        "current-decay offset), dv → round(dv·4096). Weight rel. error is ‖w_int·2^exp/S − w‖ / ‖w‖ over "
        "the layer's incoming weights (the worst projection); peak |u| and |v| are the calibrated float "
        "peaks. Silent weights: every incoming weight rounds to 0, the layer can never be driven."))
    silent = [r.get("name") for r in layers if r.get("silent_weights")]
    if silent:
        out.append(_note(f"Silent layers: {', '.join(map(str, silent))} — raise quantize.weight_bits or lower "
                         "the threshold.", "warn"))
    return "\n".join(out)


def _rules(report: Mapping[str, Any]) -> str:
    """One column per plastic projection, one row per rule field (rules have many fields, nets few rules)."""
    rules = report.get("rules")
    if not rules:
        return ""
    keys: List[str] = []
    for r in rules:
        keys.extend(k for k in r if k != "projection" and k not in keys)
    out = ["<h3>Learning rules on the chip</h3><table id='rules'><tr><th>projection</th>"
           + "".join(f"<th data-projection='{_e(str(r.get('projection')))}'>{_e(str(r.get('projection')))}</th>"
                     for r in rules) + "</tr>"]
    for k in keys:
        cells = "".join(_td(r.get(k), cls="num" if isinstance(r.get(k), (int, float)) else "txt") for r in rules)
        out.append(f"<tr data-field='{_e(k)}'><th>{_e(k.replace('_', ' '))}</th>{cells}</tr>")
    out.append("</table>")
    out.append(_note("weight lsb: one integer weight step in float units (2^weight exp / S); *_lsb: a float "
                     "rule constant in weight steps, *_lsb_fixed: what the Loihi integers make of it; impulses "
                     "and terms are the integers the rule runs with."))
    return "\n".join(out)


def _float_equivalent(fixed_syn, scale: float) -> np.ndarray:
    """The float weights a fixed-point synapse stands for in its target's units."""
    from neurocomp.ir import LoihiDense
    from neurocomp.passes.quantize import dense_float_equivalent
    if isinstance(fixed_syn, LoihiDense):
        return dense_float_equivalent(fixed_syn, scale)
    # LoihiConv holds its effective integers directly (no exponent); float synapses (pooling) are as is
    w = np.asarray(fixed_syn.weight, dtype=np.float64)
    return w * 2.0 ** getattr(fixed_syn, "weight_exp", 0) / scale if np.issubdtype(
        np.asarray(fixed_syn.weight).dtype, np.integer) else w


def weight_pairs(report: Mapping[str, Any], float_net, fixed_net) -> List[dict]:
    """Per projection of ``float_net``: its float weights and the float value the fixed network's
    integers stand for (``int * 2**exp / S``, S = the target population's scale in the report)."""
    from neurocomp.ir import is_graded
    scales = {r.get("name"): r.get("scale") for r in report.get("layers") or []}
    # a graded input's integers are levels: its projections' integers stand for weight x unit
    unit = float_net.input.encoding.unit if is_graded(float_net.input.encoding) else 1.0
    pairs = []
    for p in float_net.projections:
        try:
            fp = fixed_net.projection(p.name)
        except (KeyError, ValueError):
            continue
        scale = scales.get(p.target)
        if scale is None:
            continue
        syn = fp.synapse
        plastic = p.plasticity is not None or fp.plasticity is not None
        per = unit if p.source == float_net.input.name else 1.0
        pairs.append({"projection": p.name, "source": p.source, "target": p.target, "scale": float(scale),
                      "float": np.asarray(p.synapse.weight, dtype=np.float64).ravel(),
                      "fixed": _float_equivalent(syn, float(scale)).ravel() / per, "plastic": plastic,
                      "lsb": (2.0 ** (getattr(syn, "weight_exp", 0) + 8 - getattr(syn, "num_weight_bits", 8)
                                      + int(getattr(syn, "sign_mode", 0) == 1)) / float(scale)) / per})
    return pairs


def _level_bins(lo: float, hi: float, lsb: float, target: int = 60) -> np.ndarray:
    """About ``target`` bins over [lo, hi], each holding the same number of integer levels (edges half
    a step between levels ``m * lsb``), so the quantised histogram shows no aliasing of its own."""
    if not (lsb > 0 and math.isfinite(lsb)):
        return np.linspace(lo, hi, target + 1)
    k = max(1, int(math.ceil((hi - lo) / (target * lsb))))
    first, last = math.floor(lo / lsb / k), math.ceil(hi / lsb / k)
    return (np.arange(first, last + 2) * k - 0.5) * lsb


def _figure_weights(pairs: Sequence[dict]) -> str:
    from matplotlib.ticker import MaxNLocator
    cols, rows = _grid(len(pairs))
    fig = _figure(max(6.0, 3.8 * cols), 2.9 * rows + 0.3)
    for i, pr in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, i + 1)
        wf, wq = pr["float"], pr["fixed"]
        lo, hi = float(min(wf.min(), wq.min())), float(max(wf.max(), wq.max()))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = _level_bins(lo, hi, pr["lsb"])
        ax.hist(wf, bins=bins, color=COLOURS["float"], alpha=0.45,
                label="float (initial)" if pr["plastic"] else "float")
        ax.hist(wq, bins=bins, histtype="step", color=COLOURS["fixed"], lw=1.4,
                label="integers, learned (as float)" if pr["plastic"] else "integers (as float)")
        if wf.size >= LOG_HISTOGRAM_FROM:
            from matplotlib.ticker import LogLocator, NullFormatter
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("weights" + (" (log)" if wf.size >= LOG_HISTOGRAM_FROM else ""), fontsize=8)
        ax.set_title(f"{pr['projection']}: {pr['source']} → {pr['target']}", fontsize=10)
        ax.set_xlabel(f"weight (float units); 1 step = {pr['lsb']:.3g}", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _png(fig)


def _weights(report: Mapping[str, Any], float_net, fixed_net) -> str:
    out = ["<h2 id='h-weights'>Weights before and after quantisation</h2>"]
    if float_net is None or fixed_net is None:
        out.append(_note("The float and fixed networks were not given: no weight histograms."))
        return "\n".join(out)
    pairs = weight_pairs(report, float_net, fixed_net)
    if not pairs:
        out.append(_note("No projection with a quantised counterpart and a layer scale in the report."))
        return "\n".join(out)
    plastic = [p["projection"] for p in pairs if p["plastic"]]
    caption = ("Blue: the float weights of each projection; red outline: the float value the integers stand "
               "for (mantissa × 2^weight exp / S, S the target layer's scale). Counts are on a log scale for "
               f"projections with {LOG_HISTOGRAM_FROM:,} weights or more.")
    if plastic:
        caption += (f" Plastic projections ({', '.join(plastic)}): the fixed network holds the weights learned on "
                    "the target, the float network the initial ones, so their histograms differ by learning, "
                    "not only by rounding.")
    out.append(_img(_figure_weights(pairs), "weight histograms before and after quantisation", "fig-weights",
                    caption))
    out.append("<table id='weights'><tr><th>projection</th><th>weights</th><th>1 integer step</th>"
               "<th>integer 0 where float ≠ 0</th><th>max |float − integer|</th></tr>")
    for p in pairs:
        wf, wq = p["float"], p["fixed"]
        zeroed = int(np.count_nonzero((wf != 0) & (wq == 0)))
        err = None if p["plastic"] or wf.shape != wq.shape else float(np.abs(wf - wq).max()) if wf.size else 0.0
        out.append(f"<tr data-projection='{_e(p['projection'])}'><td>{_e(p['projection'])}</td>" + _td(wf.size)
                   + _td(p["lsb"]) + _td(zeroed, f"{zeroed:,} ({100 * zeroed / max(wf.size, 1):.1f}%)")
                   + _td(err, "– (learned weights)" if p["plastic"] else None) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _figure_headroom(layers: Sequence[Mapping[str, Any]]) -> str:
    names = [str(r.get("name")) for r in layers]
    bits = np.array([float(r.get("uv_headroom_bits")) for r in layers])
    colours = [COLOURS["headroom_none"] if b <= 0 else COLOURS["headroom_low"] if b < 1 else COLOURS["headroom_ok"]
               for b in bits]
    fig = _figure(6.5, 0.38 * len(layers) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(layers))
    ax.barh(y, bits, height=0.6, color=colours)
    ax.axvline(0, color="black", lw=1.5, label="0 bits: the 24-bit limit\n(|u| or |v| reaches 2^23)")
    ax.axvline(1, color="#555555", lw=1, ls="--", label="1 bit: what quantize.headroom = 2\n(the default) keeps")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    for i, b in enumerate(bits):
        ax.text(max(b, 0) + 0.05, i, f"{b:.2f} bits", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_ylim(len(layers) - 0.5, -0.5)
    ax.set_xlim(min(0.0, bits.min()) - 0.2, max(bits.max(), 1.0) * 1.25 + 0.5)
    ax.set_xlabel("spare bits above the calibrated peak of |u|, |v| (or v_th)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _headroom(report: Mapping[str, Any]) -> str:
    out = ["<h2 id='h-headroom'>u/v headroom per layer</h2>"]
    layers = [r for r in report.get("layers") or [] if r.get("uv_headroom_bits") is not None]
    if not layers:
        out.append(_note("No headroom in this report."))
        return "\n".join(out)
    out.append(_img(_figure_headroom(layers), "u/v headroom bits per layer", "fig-headroom"))
    out.append(_note(
        f"Lava's fixed-point LIF keeps the current u and the voltage v in signed {UV_BITS}-bit registers "
        f"(|u|, |v| ≤ 2^{UV_BITS - 1} − 1); a larger value wraps around silently and the neuron misbehaves. "
        f"Headroom = {UV_BITS - 1} − log2(max(peak |u|, peak |v|, v_th) · S · 2^{ACT_SHIFT}) (S the layer's scale, "
        f"2^{ACT_SHIFT} Lava's shift of the synaptic input): how many doublings of the largest value seen in "
        "calibration still fit. The compile picks S so that it is at least log2(quantize.headroom) — 1 bit at "
        "the default 2. Green ≥ 1 bit, orange below 1 bit, red at or past the limit."))
    return "\n".join(out)


def _figure_spikes(layers: Sequence[Mapping[str, Any]]) -> str:
    cols, rows = _grid(len(layers))
    fig = _figure(max(6.0, 3.6 * cols), 3.3 * rows + 0.3)
    for i, lay in enumerate(layers):
        ax = fig.add_subplot(rows, cols, i + 1)
        f, c = np.asarray(lay["float"], float), np.asarray(lay["cpu"], float)
        hi = max(float(f.max(initial=0)), float(c.max(initial=0)), 1e-3) * 1.05
        ax.plot([0, hi], [0, hi], color="#999999", lw=1, zorder=1)
        ax.scatter(f, c, s=10 if len(f) > 200 else 18, color=COLOURS["float"], alpha=0.55, edgecolors="none",
                   zorder=2)
        ax.set_xlim(-0.02 * hi, hi)
        ax.set_ylim(-0.02 * hi, hi)
        ax.set_aspect("equal")
        off = int(np.count_nonzero(f != c))
        ax.set_title(f"{lay['name']}: {off} of {len(f)} neurons' counts differ", fontsize=10)
        ax.set_xlabel("float: spikes / neuron / sample", fontsize=8)
        ax.set_ylabel("fixed (cpu)", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return _png(fig)


def _spikes(report: Mapping[str, Any]) -> str:
    out = ["<h2 id='h-spikes'>Float vs fixed spikes</h2>"]
    sp = report.get("spikes")
    if not sp:
        out.append(_note("No spike comparison recorded in this report."))
        return "\n".join(out)
    layers = [lay for lay in sp.get("layers") or []
              if lay.get("float") is not None and lay.get("cpu") is not None and len(lay["float"]) == len(lay["cpu"])]
    if layers:
        out.append(_img(_figure_spikes(layers), "float vs fixed spike counts per neuron, per layer", "fig-spikes",
                        "One dot per neuron: mean spikes per sample in the float network (x) and in the "
                        "bit-accurate fixed-point simulator (y). On the grey diagonal they agree. Equal counts can "
                        "still hide spikes moved in time: the first divergence below is spike by spike."))
        out.append("<table id='spikes'><tr><th>layer</th><th>neurons</th><th>float spikes / sample</th>"
                   "<th>fixed spikes / sample</th><th>neurons whose counts differ</th></tr>")
        for lay in layers:
            f, c = np.asarray(lay["float"], float), np.asarray(lay["cpu"], float)
            out.append(f"<tr data-layer='{_e(str(lay['name']))}'><td>{_e(str(lay['name']))}</td>"
                       + _td(lay.get("neurons", len(f))) + _td(float(f.sum())) + _td(float(c.sum()))
                       + _td(int(np.count_nonzero(f != c))) + "</tr>")
        out.append("</table>")
    else:
        out.append(_note("No per-layer spike counts recorded."))
    if "first_divergence" not in sp:
        out.append(_note("Where float and fixed first diverge was not recorded."))
    elif sp["first_divergence"] is None:
        out.append("<p id='divergence' class='ok'>Float and fixed never diverge: their spike trains are identical "
                   "on every compared sample and step.</p>")
    else:
        d = sp["first_divergence"]
        out.append(f"<p id='divergence' class='warn' data-layer='{_e(str(d.get('layer')))}' "
                   f"data-step='{_e(str(d.get('step')))}' data-sample='{_e(str(d.get('sample')))}' "
                   f"data-neuron='{_e(str(d.get('neuron')))}'>Float and fixed first diverge in layer "
                   f"<b>{_e(str(d.get('layer')))}</b>, neuron {_e(str(d.get('neuron')))}, at step "
                   f"{_e(str(d.get('step')))} of sample {_e(str(d.get('sample')))}. Everything before that "
                   "(earlier samples, earlier steps, upstream layers at that step) spikes identically.</p>")
    return "\n".join(out)


def _mapping(report: Mapping[str, Any]) -> str:
    out = ["<h2 id='h-mapping'>Mapping onto cores</h2>"]
    m = report.get("mapping")
    if m is None:
        out.append(_note("No core mapping for this target."))
        return "\n".join(out)
    if "error" in m:
        out.append(f"<p id='mapping-error' class='warn'>Does not fit: {_e(str(m['error']))}</p>")
        return "\n".join(out)
    util = m.get("memory_utilisation")
    used, avail = m.get("cores_used"), m.get("cores_available")
    out.append("<table id='mapping'>"
               f"<tr><th>chips used</th>{_td(m.get('chips_used'))}</tr>"
               f"<tr><th>cores used / available</th>{_td(used, f'{_num(used)} / {_num(avail)}')}</tr>"
               f"<tr><th>synaptic memory utilisation</th>{_td(util, _pct(util, 1))}</tr></table>")
    layers = m.get("layers") or []
    if layers:
        keys: List[str] = []
        for lay in layers:
            keys.extend(k for k, v in lay.items() if k not in keys and not isinstance(v, Mapping))
        out.append("<table id='mapping-layers'><tr>" + "".join(f"<th>{_e(k.replace('_', ' '))}</th>" for k in keys)
                   + "</tr>")
        for lay in layers:
            cells = []
            for k in keys:
                v = lay.get(k)
                if isinstance(v, (list, tuple)):
                    cells.append(_td(None, ", ".join(map(str, v)), cls="txt"))
                elif k.startswith("memory_utilisation"):
                    cells.append(_td(v, _pct(v, 1)))
                else:
                    cells.append(_td(v, cls="num" if isinstance(v, (int, float)) or v is None else "txt"))
            out.append(f"<tr data-population='{_e(str(lay.get('population')))}'>{''.join(cells)}</tr>")
        out.append("</table>")
    if m.get("target") and m.get("target") != report.get("target"):
        out.append(_note(f"Mapped with the core limits of {m['target']}."))
    return "\n".join(out)


def _timing(report: Mapping[str, Any]) -> str:
    out = ["<h2 id='h-timing'>Timing</h2>"]
    t = report.get("timing_s")
    if not t:
        out.append(_note("No timing in this report."))
        return "\n".join(out)
    out.append("<table id='timing'><tr><th>phase</th><th>seconds</th></tr>")
    for k, v in t.items():
        out.append(f"<tr data-phase='{_e(k)}'><td>{_e(k.replace('_', ' '))}</td>{_td(v, '–' if v is None else f'{float(v):.2f} s')}</tr>")
    out.append("</table>")
    return "\n".join(out)


_CSS = CSS + """
h3{font-size:15px;margin-top:18px} .nw{white-space:nowrap} td.txt{text-align:left} #layers{font-size:12px} #layers th{font-size:11px}
tr.silent td{background:#f8d7da} figcaption{color:#555;font-size:13px;max-width:900px} .note{max-width:1000px}
.warn{color:#842029;background:#f8d7da;padding:6px 10px;font-size:13px}
.ok{color:#0f5132;background:#d1e7dd;padding:6px 10px;font-size:13px}
.tag.ok{padding:1px 6px} .tag.bad{background:#f8d7da;color:#842029;padding:1px 6px}
td.barcell{width:250px} .bar{height:12px;background:#1f77b4;border-radius:2px}
.section-error{color:#842029;background:#f8d7da;border:1px solid #842029;padding:6px 10px;font-size:13px}
"""


def _guard(name: str, build: Callable[[], str]) -> str:
    """A section, or (if it fails) a visible box naming the section and the error: the page is a report
    on the compile and must not take the compile down with it."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 — shown on the page, tests fail on it
        return (f"<div class='section-error' data-section='{_e(name)}'>Section {_e(name)} could not be rendered: "
                f"{_e(type(exc).__name__)}: {_e(str(exc))}</div>")


def render_compile_html(report: Mapping[str, Any], float_net=None, fixed_net=None) -> str:
    """The whole page for a compile ``report`` (the dict written to report.json), the float network
    ``float_net`` and the fixed-point network ``fixed_net`` the build deploys (with learned weights for
    plastic networks). Both networks are optional: without them the page has no weight histograms."""
    model = str(report.get("model", "?"))
    target = str(report.get("target", "?"))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>neurocomp compile report — {_e(model)} → {_e(target)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Compile report: {_e(model)} → {_e(target)}</h1>",
             _guard("header", lambda: _header(report)),
             _guard("accuracy", lambda: _accuracy(report)),
             _guard("conversion", lambda: _conversion(report)),
             _guard("agreement", lambda: _agreement(report)),
             _guard("layers", lambda: _layers(report) + _rules(report)),
             _guard("weights", lambda: _weights(report, float_net, fixed_net)),
             _guard("headroom", lambda: _headroom(report)),
             _guard("spikes", lambda: _spikes(report)),
             _guard("mapping", lambda: _mapping(report)),
             _guard("timing", lambda: _timing(report)),
             "<p class='note'>Generated by neurocomp compile beside report.json. Figures are inline PNG; "
             "the page loads nothing from the network.</p></body></html>"]
    return "\n".join(parts)


def spike_comparison(float_result, fixed_result, net) -> Dict[str, Any]:
    """``report["spikes"]`` from two recorded runs of the same samples (backend ``Result`` objects with
    ``spikes[p]`` ``[samples, window, n]``), e.g. the float and cpu targets: mean spikes per neuron per
    sample for each population, and the first place they differ — the earliest sample, then the
    earliest step of that sample in stream time (window step + the population's depth), then the
    earliest population in execution order, then the lowest neuron. ``None`` when they never differ."""
    depths = net.depths()
    order = [p.name for p in net.execution_order()
             if p.name in float_result.counts and p.name in fixed_result.counts]
    layers = [{"name": p, "neurons": int(net.size_of(p)),
               "float": np.asarray(float_result.counts[p], float).mean(axis=0).tolist(),
               "cpu": np.asarray(fixed_result.counts[p], float).mean(axis=0).tolist()} for p in order]
    best = None
    for rank, p in enumerate(order):
        a, b = float_result.spikes.get(p), fixed_result.spikes.get(p)
        if a is None or b is None:
            continue
        diff = np.asarray(a, bool) != np.asarray(b, bool)
        if not diff.any():
            continue
        s = int(np.argmax(diff.reshape(len(diff), -1).any(axis=1)))
        t = int(np.argmax(diff[s].any(axis=1)))
        key = (s, t + depths.get(p, 0), rank)
        if best is None or key < best[0]:
            best = (key, {"layer": p, "step": t, "sample": s, "neuron": int(np.argmax(diff[s, t]))})
    return {"layers": layers, "first_divergence": None if best is None else best[1]}
