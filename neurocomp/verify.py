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


def format_verify(report: dict) -> str:
    """A readable side-by-side table of a :func:`spike_match_report` / :func:`verify_build` report."""
    targets, pair_keys, n = report["targets"], list(report["pairs"]), report["samples"]
    header = ["layer", "neurons"] + [f"{t} spikes/sample" for t in targets] + \
             [f"{k}: first divergence" for k in pair_keys]
    rows = [[row["name"], str(row["neurons"])] + [f"{row['spikes_per_sample'][t]:.1f}" for t in targets] +
            [_divergence_cell(row["compare"][k], n) for k in pair_keys] for row in report["layers"]]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    numeric = 2 + len(targets)

    def fmt(cells):
        return "  ".join(c.rjust(w) if 0 < i < numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = []
    if "model" in report:
        lines += [f"{report['model']}: {n} held-out samples x {report['timesteps']} steps", ""]
    lines += [fmt(header), "-" * len(fmt(header))] + [fmt(r) for r in rows] + [""]
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
