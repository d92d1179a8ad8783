"""Every human-readable summary neurocomp prints, in one place (the CLI only echoes these).

Each takes the JSON-able document a library call returns (a compile report, a verify report, a run
summary, an energy report, a hil report) and returns text.
"""
from __future__ import annotations

from pathlib import Path


def format_compile(report: dict) -> str:
    """The compile summary: the float -> integer mapping per layer, then accuracies (batched) or the
    learning/replay results (stream builds), then the energy summary when present."""
    text = _format_batched_compile(report) if report.get("mode", "batched") == "batched" else _format_stream_compile(report)
    if "energy" in report:
        from neurocomp.report.common import fmt_si
        en = report["energy"]
        for name, dev in en["devices"].items():
            text += (f"\nenergy    {name} {fmt_si(dev['joules_per_inference'])}/inference, "
                     f"{fmt_si(dev['joules_per_spike'])}/spike; {en['baseline']['device']} time x power "
                     f"{en['ratios'][name]['time_power']:.3g}x more")
    return text


def format_run(summary: dict) -> str:
    """``neurocomp run``'s summary: accuracy and speed, then spikes per layer."""
    if summary.get("stream"):
        lines = [_stream_run_headline(summary)]
    else:
        lines = [f"{summary['target']}: accuracy {100 * summary['accuracy']:.2f}% on {summary['samples']} "
                 f"held-out samples x {summary['timesteps']} steps "
                 f"({summary['seconds']:.2f} s, {summary['sample_steps_per_second']:.0f} sample-steps/s)"]
    for name, row in summary["spikes_per_layer"].items():
        lines.append(f"  {name:<10} {row['neurons']:>6} neurons  {row['per_sample']:>10.1f} spikes/sample")
    return "\n".join(lines)


def format_verify_report(report: dict) -> str:
    return format_stream_verify(report) if report.get("stream") else format_verify(report)


def _quantisation_table(report: dict) -> list:
    """Lines of the per-layer float -> integer table."""
    lines = []
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
    return lines


def _format_batched_compile(report: dict) -> str:
    """The short human summary: per-layer float -> integer mapping and the accuracies."""
    lines = [f"{report['model']} -> {report['target']}  ({report['timesteps']} steps/sample, "
             f"{report['encoding']} coding)", ""] + _quantisation_table(report)
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


def _brian2_table(report: dict) -> list:
    """Lines of the Brian2 -> float -> integer table per population."""
    b2, lines = report["brian2"], []
    layers = {r["name"]: r for r in report["layers"]}
    hdr = (f"{'population':<12} {'model':<18} {'tau_m':>8} {'dv':>16} {'tau_syn':>8} {'du':>16} "
           f"{'v_th-v_reset':>18} {'headroom':>8}")
    lines += [hdr, "-" * len(hdr)]
    for n in b2["neurons"]:
        q = layers[n["population"]]
        tau_s = f"{n['tau_syn_ms']:g}ms" if n["tau_syn_ms"] is not None else "-"
        lines.append(f"{n['population']:<12} {n['model']:<18} {n['tau_m_ms']:>6g}ms "
                     f"{q['float_dv']:>7.4f}->{q['dv']:<7} {tau_s:>8} {q['float_du']:>7.4f}->{q['du']:<7} "
                     f"{q['float_vth']:>7.3g}{n['unit']}->{q['vth']:<7} {q['uv_headroom_bits']:>6.1f}b")
    return lines


def _format_stream_compile(report: dict) -> str:
    """The human summary of a stream compile: source -> float -> integer per population and rule,
    then the learning (or replay) results."""
    sched = report.get("schedule", {})
    if "brian2" in report:
        lines = [f"{report['model']} -> {report['target']}  (Brian2, dt = {report['brian2']['dt_ms']:g} ms = "
                 f"1 step, {report['mode']} mode)", ""] + _brian2_table(report)
    else:
        lines = [f"{report['model']} -> {report['target']}  (one stream: {sched.get('timesteps')} input + "
                 f"{sched.get('rest')} rest steps per sample, {report['encoding']} coding)", ""] + \
            _quantisation_table(report)
    ref_name = "Brian2" if "brian2" in report else "float"
    for r in report.get("rules", []):
        lines.append(f"rule {r['projection']}: {r['rule']}, weight step {r['weight_lsb']:.4g}; "
                     + ", ".join(f"{k} {r[k]}" for k in ("x1_tau", "x1_impulse", "potentiation", "y1_tau",
                                                         "y1_impulse", "depression", "coincidence_term",
                                                         "xtar_term", "pre_const_term")
                                 if k in r and r[k] not in (0, "0")))
    lines.append("")
    ln = report.get("learning", {})
    if report["mode"] == "replay":
        for name, c in report["replay"]["spike_counts"].items():
            corr = "n/a" if c["correlation"] is None else f"{c['correlation']:.4f}"
            lines.append(f"spikes    {name}: Brian2 {sum(c['brian2'])}, {report['target']} {sum(c['target'])}, "
                         f"per-neuron correlation {corr}")
        for name, w in report["replay"]["weights"].items():
            fmt = lambda xs: "[" + ", ".join(f"{x:+.3f}" for x in xs[:8]) + (" ...]" if len(xs) > 8 else "]")
            lines.append(f"dw        {name}: Brian2 {fmt(w['brian2_dw'])}")
            lines.append(f"          {' ' * len(name)}  {report['target']:<6} {fmt(w['target_dw'])}")
    else:
        acc = ln.get("accuracy")
        ref = ln.get("reference_accuracy")
        if ln.get("samples"):
            lines.append(f"learning  {ln.get('samples', 0)} samples on {report['target']}; mean |dw| "
                         f"{ln.get('weight_change', 0):.4g} ({ref_name} "
                         f"{ln.get('reference_weight_change', float('nan')):.4g})")
        lines.append(f"accuracy  {report['target']} {100 * acc:.1f}%  {ref_name} (float) "
                     + (f"{100 * ref:.1f}%" if ref is not None else "n/a")
                     + (f"  (supervised readout: output neuron j = class j, {ln.get('test_samples')} held-out "
                        "samples)" if "supervised" in ln else
                        f"  ({ln.get('label_samples')} labelling, {ln.get('test_samples')} held-out samples)"))
        if ln.get("retried"):
            lines.append(f"          shown again (under {ln['retry_silent']['below_spikes']} output spikes), per round: "
                         + "; ".join(f"{k} {' + '.join(map(str, v)) or 'none'}" for k, v in ln["retried"].items()))
        if ln.get("silent_test_samples"):
            lines.append(f"          {ln['silent_test_samples']} held-out samples silent on {report['target']}"
                         + (f", {ln['reference_silent_test_samples']} in {ref_name}"
                            if ln.get("reference_silent_test_samples") is not None else ""))
        if ln.get("reference_input"):
            lines.append(f"          {ref_name} input: {ln['reference_input']}"
                         + (f" (codegen {ln['reference_codegen']})" if ln.get("reference_codegen") else ""))
        elif ln.get("reference_error"):
            lines.append(f"          no {ref_name} reference: {ln['reference_error']}")
    ag = report.get("agreement", {}).get("target_vs_cpu")
    if ag:
        lines.append("agreement " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ag.items()))
    lines.append(f"time      {report['timing_s']['total']:.1f} s total: "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in report["timing_s"].items() if k != "total"))
    return "\n".join(lines)


def _divergence_cell(c: dict, samples: int) -> str:
    if c["identical"]:
        return "identical"
    d = c["first_divergence"]
    differ = round((1 - c["samples_identical"]) * samples)
    return f"step {d['step']}, neuron {d['neuron']} (sample {d['sample']}); {differ}/{samples} samples differ"


def _layer_table(report: dict, first_column: str, divergence_cell) -> list:
    """Lines of the per-layer table both verify reports print: spikes per sample on each target, then
    each pair's first divergence (``divergence_cell(compare_entry) -> str``)."""
    targets, pair_keys = report["targets"], list(report["pairs"])
    header = [first_column, "neurons"] + [f"{t} spikes/sample" for t in targets] + \
             [f"{k}: first divergence" for k in pair_keys]
    rows = [[row["name"], str(row["neurons"])] + [f"{row['spikes_per_sample'][t]:.1f}" for t in targets] +
            [divergence_cell(row["compare"][k]) for k in pair_keys] for row in report["layers"]]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    numeric = 2 + len(targets)

    def fmt(cells):
        return "  ".join(c.rjust(w) if 0 < i < numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [fmt(header), "-" * len(fmt(header))] + [fmt(r) for r in rows] + [""]

def format_verify(report: dict) -> str:
    """A readable side-by-side table of a :func:`spike_match_report` / :func:`verify_build` report."""
    n = report["samples"]
    lines = []
    if "model" in report:
        lines += [f"{report['model']}: {n} held-out samples x {report['timesteps']} steps", ""]
    lines += _layer_table(report, "layer", lambda c: _divergence_cell(c, n))
    if "accuracy" in report:
        lines.append("accuracy  " + "  ".join(f"{t} {100 * a:.1f}%" for t, a in report["accuracy"].items())
                     + f"   (these {n} samples)")
    if "accuracy_held_out" in report:
        h = report["accuracy_held_out"]
        lines.append("          " + "  ".join(f"{t} {100 * h[t]:.1f}%" for t in ("float", "cpu") if t in h)
                     + f"   (all {h['samples']} held-out samples)")
    for k, p in report["pairs"].items():
        if p["identical"]:
            lines.append(f"{k}: identical in every layer; predictions agree {100 * p['predictions_agree']:.0f}%")
        else:
            f = p["first_layer"]
            lines.append(f"{k}: first differ in layer {f['layer']!r} at step {f['step']}, neuron {f['neuron']} "
                         f"(sample {f['sample']}); predictions agree {100 * p['predictions_agree']:.0f}%")
    if report.get("cpu_matches_loihi_sim") is False:
        lines.append("cpu vs loihi-sim must be bit-identical: this is a bug in neurocomp's cpu target, please report it")
    return "\n".join(lines)


def _stream_divergence_cell(c: dict) -> str:
    corr = "" if c["count_correlation"] is None else f"; count r {c['count_correlation']:.3f}"
    if c["identical"]:
        return "identical"
    d = c["first_divergence"]
    return f"step {d['step']} (sample {d['sample']} +{d['step_in_sample']}), neuron {d['neuron']}{corr}"

def format_stream_verify(report: dict) -> str:
    """The side-by-side table of :func:`neurocomp.pipeline.verify.verify_build` on a stream build."""
    n = report["samples"]
    what = f"{n} held-out samples" if report["mode"] == "dataset" else "the script's input spikes"
    lines = [f"{report['model']}: {what} as one stream of {report['stream_steps']} steps "
             f"({report['timesteps']} per sample), learned weights frozen; float = Brian2 with the "
             "target's learned weights", ""]
    lines += _layer_table(report, "population", _stream_divergence_cell)
    if "accuracy" in report:
        lines.append("accuracy  " + "  ".join(f"{t} {100 * a:.1f}%" for t, a in report["accuracy"].items())
                     + f"   (these {n} samples, from rest)")
    c = report.get("compile", {})
    if c.get("accuracy") is not None:
        ref = c.get("reference_accuracy")
        lines.append(f"          compile: target {100 * c['accuracy']:.1f}%, Brian2 learning by itself "
                     + (f"{100 * ref:.1f}%" if ref is not None else "n/a") + f"   ({c['test_samples']} held-out samples)")
    for k, p in report["pairs"].items():
        agree = "" if p["predictions_agree"] is None else f"; predictions agree {100 * p['predictions_agree']:.0f}%"
        if p["identical"]:
            lines.append(f"{k}: identical in every population{agree}")
        else:
            f = p["first_layer"]
            lines.append(f"{k}: first differ in population {f['layer']!r} at step {f['step']} (sample {f['sample']}, "
                         f"step {f['step_in_sample']} of it), neuron {f['neuron']}{agree}")
    lines += report.get("notes", [])
    if report.get("cpu_matches_loihi_sim") is False:
        lines.append("cpu vs loihi-sim must be bit-identical: this is a bug in neurocomp's cpu target, please report it")
    return "\n".join(lines)


def _stream_run_headline(summary: dict) -> str:
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


def format_energy(data: dict) -> str:
    """The short human summary: each device's J/inference, J/spike, what dominates, and the ratios."""
    from neurocomp.energy import dominant
    from neurocomp.report.common import COMPONENT_LABELS, fmt_si

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


def format_hil(r: dict, out_file) -> str:
    lat = r["latency_ms"]
    lines = [
        f"{r['model']} on {r['target']}: {r['samples']}/{r['requested']} samples streamed"
        + ("" if r["complete"] else " (stopped early)"),
        f"agreement with cpu  {100 * r['agreement']:.1f}% of samples spike-identical"
        f" ({len(r['mismatches'])} mismatches)" if r["agreement"] is not None else "agreement with cpu  -",
        f"accuracy            {r['target']} {100 * r['accuracy']:.2f}%   cpu {100 * r['accuracy_cpu']:.2f}%"
        + (f"   float {100 * r['accuracy_float']:.2f}%" if r.get("accuracy_float") is not None else "")
        if r["accuracy"] is not None else "accuracy            -",
        f"latency             median {lat['median']} ms, p95 {lat['p95']} ms (host: first input frame "
        f"sent -> last output frame received)",
        f"throughput          {r['throughput_per_s']} samples/s  (runtime start-up {r['startup_s']} s, "
        f"not included)",
        f"wrote {out_file}",
    ]
    return "\n".join(lines)
