"""Float vs bit-accurate ``cpu`` vs Lava, side by side, layer by layer: where do they part ways?

When accuracy drops after deployment the question is *where*: which layer first spikes differently,
at which step, in which neuron. :func:`spike_match_report` answers it for any set of runs of the
same samples (same population names, same sample timing — every target in
:mod:`neurocomp.backends` honours both); :func:`verify_build` runs a compiled build's held-out
samples on float, cpu and loihi-sim and reports.

Float vs fixed point differ somewhat by design (quantisation): the report shows where that starts.
``cpu`` vs ``loihi-sim`` must be identical spike for spike — anything else is a bug.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from neurocomp.backends import run_on_target
from neurocomp.backends.sim import RunResult, layer_order, simulate
from neurocomp.errors import NeurocompError
from neurocomp.ir import Network

DEFAULT_TARGETS = ("float", "cpu", "loihi-sim")


def first_divergence(a: np.ndarray, b: np.ndarray) -> Optional[dict]:
    """Earliest window step at which two spike trains ``[samples, steps, n]`` differ, and there the
    lowest sample and neuron; ``None`` if identical."""
    diff = a != b
    if not diff.any():
        return None
    per_step = diff.any(axis=(0, 2))
    step = int(np.argmax(per_step))
    sample = int(np.argmax(diff[:, step].any(axis=1)))
    neuron = int(np.argmax(diff[sample, step]))
    return {"step": step, "sample": sample, "neuron": neuron}


def compare_layer(a: np.ndarray, b: np.ndarray) -> dict:
    """How two runs' trains of one layer ``[samples, steps, n]`` differ."""
    if a.shape != b.shape:
        raise NeurocompError(f"cannot compare spike trains of shapes {a.shape} and {b.shape}")
    diff = a != b
    counts_a, counts_b = a.sum(axis=1), b.sum(axis=1)
    return {
        "identical": not diff.any(),
        "first_divergence": first_divergence(a, b),
        "differing_spikes": int(diff.sum()),
        "differing_fraction": float(diff.mean()) if diff.size else 0.0,
        "samples_identical": float(np.mean([not diff[k].any() for k in range(len(a))])) if len(a) else 1.0,
        "count_abs_diff_per_sample": float(np.abs(counts_a - counts_b).sum(axis=1).mean()) if len(a) else 0.0,
    }


def spike_match_report(results: Dict[str, RunResult], layers: Sequence[str], labels: Optional[np.ndarray] = None,
                       pairs: Optional[Sequence[tuple]] = None) -> dict:
    """Compare recorded runs (``{target: RunResult}``, each with ``spikes`` for every layer) pairwise.

    ``layers``: population names in execution order; ``pairs``: which targets to compare (default:
    each target with the next, in the order of ``results``). Returns a JSON-able dict with per-layer
    spike counts per target, per pair and layer the first diverging step/sample/neuron, the first
    layer where each pair parts, prediction agreement and (given ``labels``) accuracies.
    """
    targets = list(results)
    pairs = list(pairs) if pairs is not None else list(zip(targets, targets[1:]))
    for name, res in results.items():
        missing = [layer for layer in layers if layer not in res.spikes]
        if missing:
            raise NeurocompError(f"run on {name!r} did not record layers {missing}; run with record=True")
    n_samples = {len(res.predictions) for res in results.values()}
    if len(n_samples) != 1:
        raise NeurocompError(f"runs cover different numbers of samples: {sorted(n_samples)}")
    report: dict = {"targets": targets, "samples": n_samples.pop(), "layers": [], "pairs": {}}
    for layer in layers:
        first = results[targets[0]].spikes[layer]
        row = {"name": layer, "neurons": int(first.shape[2]), "steps": int(first.shape[1]),
               "spikes_per_sample": {t: float(results[t].spikes[layer].sum(axis=(1, 2)).mean()) for t in targets},
               "compare": {}}
        for a, b in pairs:
            row["compare"][f"{a} vs {b}"] = compare_layer(results[a].spikes[layer], results[b].spikes[layer])
        report["layers"].append(row)
    for a, b in pairs:
        key = f"{a} vs {b}"
        parted = next((row for row in report["layers"] if not row["compare"][key]["identical"]), None)
        report["pairs"][key] = {
            "identical": parted is None,
            "first_layer": None if parted is None else
            {"layer": parted["name"], **parted["compare"][key]["first_divergence"]},
            "predictions_agree": float(np.mean(results[a].predictions == results[b].predictions)),
        }
    if labels is not None:
        report["accuracy"] = {t: results[t].accuracy(labels) for t in targets}
    return report


def verify_build(build, samples: Optional[int] = 20, targets: Sequence[str] = DEFAULT_TARGETS,
                 progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Run ``samples`` held-out samples of a compiled build on ``targets`` and compare them.

    Also reports float and cpu accuracy on the whole held-out split (both are fast), so a
    difference on a small Lava subset can be judged against the full picture.
    """
    fixed: Network = build.fixed
    if "float" in targets and build.float_net is None:
        raise NeurocompError(f"{build.path}: no network_float.npz, cannot verify against float")
    spikes_all, labels_all = build.held_out(None)
    n = len(labels_all) if samples is None else min(samples, len(labels_all))
    spikes, labels = spikes_all[:n], labels_all[:n]
    results, seconds = {}, {}
    for target in targets:
        t0 = time.perf_counter()
        cb = (lambda d, t, _name=target: progress(_name, d, t)) if progress else None
        results[target] = run_on_target(target, fixed, build.float_net, spikes, record=True, progress=cb)
        seconds[target] = round(time.perf_counter() - t0, 3)
    layers = [p.name for p in layer_order(fixed)]
    report = spike_match_report(results, layers, labels)
    report.update(model=build.info.get("model", fixed.name), timesteps=fixed.timesteps, seconds=seconds)
    held_out = {"samples": int(len(labels_all))}
    if build.float_net is not None:
        held_out["float"] = simulate(build.float_net, spikes_all, target="float").accuracy(labels_all)
    held_out["cpu"] = simulate(fixed, spikes_all, target="cpu").accuracy(labels_all)
    report["accuracy_held_out"] = held_out
    if "cpu" in targets and "loihi-sim" in targets:
        report["cpu_matches_loihi_sim"] = compare_all(results["cpu"], results["loihi-sim"], layers)
    return report


def compare_all(a: RunResult, b: RunResult, layers: Sequence[str]) -> bool:
    """True when two runs recorded identical trains in every layer."""
    return all(np.array_equal(a.spikes[layer], b.spikes[layer]) for layer in layers)


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


# ------------------------------------------------------------------------- stream (Brian2) builds
STREAM_TARGETS = ("float", "cpu", "loihi-sim")


def _count_correlation(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """Pearson correlation of per-neuron spike counts (``None`` when a side is constant and they differ)."""
    ca, cb = a.sum(axis=0).astype(float), b.sum(axis=0).astype(float)
    if ca.std() == 0 or cb.std() == 0:
        return 1.0 if np.array_equal(ca, cb) else None
    return float(np.corrcoef(ca, cb)[0, 1])


def compare_stream(a: np.ndarray, b: np.ndarray, window: int) -> dict:
    """How two runs' trains ``[steps, n]`` of one population on the same stream differ: the layer
    comparison of :func:`compare_layer` over samples of ``window`` steps, with the first divergence
    given as a stream step (and the sample and step within it), plus the per-neuron count correlation."""
    if a.shape != b.shape:
        raise NeurocompError(f"cannot compare spike trains of shapes {a.shape} and {b.shape}")
    steps, n = a.shape
    n_samples = -(-steps // window)
    fold = lambda x: np.concatenate([x, np.zeros((n_samples * window - steps, n), dtype=x.dtype)]).reshape(
        n_samples, window, n)
    out = compare_layer(fold(a), fold(b))
    first = first_divergence(a[np.newaxis], b[np.newaxis])
    out["first_divergence"] = None if first is None else {
        "step": first["step"], "sample": first["step"] // window, "step_in_sample": first["step"] % window,
        "neuron": first["neuron"]}
    out["count_correlation"] = _count_correlation(a, b)
    return out


def verify_stream_build(build, samples: Optional[int] = 20, targets: Sequence[str] = STREAM_TARGETS,
                        progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Run ``samples`` held-out samples of a stream build (:mod:`neurocomp.stream_build`) as one stream,
    learned weights frozen, on ``targets`` and compare them population by population.

    ``cpu`` and ``loihi-sim`` run the integer network and must agree spike for spike. ``float`` is the
    user's Brian2 network itself with the target's learned weights (learning off): float dynamics, so
    it is compared by per-neuron spike-count correlation and readout agreement, not spike identity.
    The stream starts at rest (no labelling warm-up: the targets see the same stream either way).
    """
    from neurocomp.stream_build import brian2_frozen_run, evaluation_stream, predict, run_targets

    bad = [t for t in targets if t not in STREAM_TARGETS]
    if bad:
        raise NeurocompError(f"--targets: {', '.join(bad)} cannot run a Brian2 (stream) build; "
                             f"allowed: {', '.join(STREAM_TARGETS)}")
    ev = evaluation_stream(build, samples, warmup=False)
    net = build.learned
    trains, seconds, notes = {}, {}, []
    # Lava first (cheapest to fail early); ensure_lava_runtime makes any order safe
    for target in sorted(targets, key=lambda t: {"loihi-sim": 0, "cpu": 1}.get(t, 2)):
        t0 = time.perf_counter()
        if target == "float":
            try:
                trains[target] = brian2_frozen_run(build, ev)
            except NeurocompError as e:
                notes.append(f"float (Brian2) skipped: {e}; the compile's reference_accuracy is the float "
                             "comparison for this build")
                continue
        else:
            cb = (lambda d, t, _name=target: progress(_name, d, t)) if progress else None
            trains[target] = run_targets(build, ev, target, cb).spikes
        seconds[target] = round(time.perf_counter() - t0, 3)
    ran = [t for t in targets if t in trains]
    pairs = list(zip(ran, ran[1:]))
    lo = ev.scored_from
    report: dict = {"stream": True, "model": build.info.get("model", net.name), "mode": build.mode,
                    "targets": ran, "samples": int(ev.samples), "timesteps": int(ev.window),
                    "stream_steps": int(len(ev.stream)), "learning": "off (learned weights frozen)",
                    "layers": [], "pairs": {}, "seconds": seconds, "notes": notes}
    for p in net.populations:
        row = {"name": p.name, "neurons": p.size, "steps": int(len(ev.stream)),
               "spikes_per_sample": {t: float(trains[t][p.name][lo:].sum()) / max(ev.samples, 1) for t in ran},
               "compare": {f"{a} vs {b}": compare_stream(trains[a][p.name], trains[b][p.name], ev.window)
                           for a, b in pairs}}
        report["layers"].append(row)
    preds = {t: predict(build, ev, trains[t][net.output])[0] for t in ran}
    for a, b in pairs:
        key = f"{a} vs {b}"
        parted = [row for row in report["layers"] if not row["compare"][key]["identical"]]
        first = min(parted, key=lambda row: row["compare"][key]["first_divergence"]["step"], default=None)
        report["pairs"][key] = {
            "identical": first is None,
            "first_layer": None if first is None else {"layer": first["name"],
                                                       **first["compare"][key]["first_divergence"]},
            "predictions_agree": None if preds[a] is None else float(np.mean(preds[a] == preds[b])),
        }
    if ev.labels is not None:
        report["accuracy"] = {t: float(np.mean(preds[t] == ev.labels)) for t in ran}
    ln = build.report.get("learning", {})
    report["compile"] = {"accuracy": ln.get("accuracy"), "reference_accuracy": ln.get("reference_accuracy"),
                         "test_samples": ln.get("test_samples"), "label_samples": ln.get("label_samples"),
                         "note": "compile: the target learned, then labelling + held-out samples; "
                                 "reference_accuracy: Brian2 learned by itself (float) on the same streams"}
    if "cpu" in trains and "loihi-sim" in trains:
        report["cpu_matches_loihi_sim"] = all(np.array_equal(trains["cpu"][p.name], trains["loihi-sim"][p.name])
                                              for p in net.populations)
    return report


def _stream_divergence_cell(c: dict) -> str:
    corr = "" if c["count_correlation"] is None else f"; count r {c['count_correlation']:.3f}"
    if c["identical"]:
        return "identical"
    d = c["first_divergence"]
    return f"step {d['step']} (sample {d['sample']} +{d['step_in_sample']}), neuron {d['neuron']}{corr}"


def format_stream_verify(report: dict) -> str:
    """The side-by-side table of :func:`verify_stream_build`."""
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
