"""Float vs bit-accurate ``cpu`` vs Lava, side by side, layer by layer: where do they part ways?

When accuracy drops after deployment the question is *where*: which layer first spikes differently,
at which step, in which neuron. :func:`spike_match_report` answers it for any set of runs of the
same samples (every target returns its spikes in the same per-sample windows);
:func:`verify_build` runs a build's held-out samples on the requested targets and reports.

``float`` is the build's float reference: the source's own simulator where neurocomp has one
(Brian2 scripts, run with the target's learned weights, learning off), else the float IR. Float vs
fixed point differ by design (quantisation): the report shows where that starts. ``cpu`` vs
``loihi-sim`` must be identical spike for spike — anything else is a bug.

Batched builds compare sample windows; stream builds compare the whole stream (first divergence
as a stream step, and the sample and step within it) and per-neuron spike-count correlation.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from neurocomp.backends import get_backend, target_names
from neurocomp.backends.base import Result, Source
from neurocomp.errors import NeurocompError, TargetError

DEFAULT_TARGETS = ("float", "cpu", "loihi-sim")
FLOAT = "float"


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


def _count_correlation(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """Pearson correlation of per-neuron spike counts (``None`` when a side is constant and they differ)."""
    ca, cb = a.sum(axis=0).astype(float), b.sum(axis=0).astype(float)
    if ca.std() == 0 or cb.std() == 0:
        return 1.0 if np.array_equal(ca, cb) else None
    return float(np.corrcoef(ca, cb)[0, 1])


def compare_stream(a: np.ndarray, b: np.ndarray, window: int) -> dict:
    """How two runs' trains ``[steps, n]`` of one population on the same stream differ: the layer
    comparison of :func:`compare_layer` over samples of ``window`` steps, the first divergence as a
    stream step (and the sample and step within it), and the per-neuron count correlation."""
    if a.shape != b.shape:
        raise NeurocompError(f"cannot compare spike trains of shapes {a.shape} and {b.shape}")
    steps, n = a.shape
    n_samples = -(-steps // window)
    fold = lambda x: np.concatenate([x, np.zeros((n_samples * window - steps, n), dtype=x.dtype)]).reshape(  # noqa: E731
        n_samples, window, n)
    out = compare_layer(fold(a), fold(b))
    first = first_divergence(a[np.newaxis], b[np.newaxis])
    out["first_divergence"] = None if first is None else {
        "step": first["step"], "sample": first["step"] // window, "step_in_sample": first["step"] % window,
        "neuron": first["neuron"]}
    out["count_correlation"] = _count_correlation(a, b)
    return out


def spike_match_report(results: Dict[str, Result], layers: Sequence[str], labels: Optional[np.ndarray] = None,
                       pairs: Optional[Sequence[tuple]] = None, predictions: Optional[Dict[str, np.ndarray]] = None,
                       stream: bool = False) -> dict:
    """Compare recorded runs (``{target: Result}``, each with ``spikes`` for every layer) pairwise.

    ``layers``: population names in execution order; ``pairs``: which targets to compare (default:
    each target with the next, in the order of ``results``); ``predictions``: each run's classes
    (default: most spikes); ``stream``: compare whole streams (``Result.stream``) instead of windows.
    Returns a JSON-able dict with per-layer spike counts per target, per pair and layer the first
    diverging step/sample/neuron, the first layer where each pair parts, prediction agreement and
    (given ``labels``) accuracies.
    """
    targets = list(results)
    pairs = list(pairs) if pairs is not None else list(zip(targets, targets[1:]))
    trains = {t: (r.stream if stream else r.spikes) for t, r in results.items()}
    for name, tr in trains.items():
        missing = [layer for layer in layers if layer not in tr]
        if missing:
            raise NeurocompError(f"run on {name!r} did not record layers {missing}; run with record=True")
    n_samples = {r.samples for r in results.values()}
    if len(n_samples) != 1:
        raise NeurocompError(f"runs cover different numbers of samples: {sorted(n_samples)}")
    n = n_samples.pop()
    preds = predictions or {t: r.predictions for t, r in results.items()}
    window = next(iter(results.values())).schedule.window
    report: dict = {"targets": targets, "samples": n, "layers": [], "pairs": {}}
    for layer in layers:
        first = trains[targets[0]][layer]
        row = {"name": layer, "neurons": int(first.shape[-1]), "steps": int(first.shape[-2] if not stream else len(first)),
               "spikes_per_sample": {t: float(results[t].counts[layer].sum(axis=1).mean()) if not stream else
                                     float(trains[t][layer].sum()) / max(n, 1) for t in targets},
               "compare": {}}
        for a, b in pairs:
            row["compare"][f"{a} vs {b}"] = (compare_stream(trains[a][layer], trains[b][layer], window) if stream
                                             else compare_layer(trains[a][layer], trains[b][layer]))
        report["layers"].append(row)
    for a, b in pairs:
        key = f"{a} vs {b}"
        parted = [row for row in report["layers"] if not row["compare"][key]["identical"]]
        first = (min(parted, key=lambda row: row["compare"][key]["first_divergence"]["step"], default=None)
                 if stream else (parted[0] if parted else None))
        report["pairs"][key] = {
            "identical": first is None,
            "first_layer": None if first is None else {"layer": first["name"],
                                                       **first["compare"][key]["first_divergence"]},
            "predictions_agree": None if preds.get(a) is None else float(np.mean(preds[a] == preds[b])),
        }
    if labels is not None:
        report["accuracy"] = {t: float(np.mean(preds[t] == np.asarray(labels))) for t in targets}
    return report


def float_reference(build):
    """``(backend, network)`` that plays ``float`` for a build: the source's own simulator with the
    target's learned weights when one accepts the source, else the float IR (learned weights too)."""
    from neurocomp.pipeline.compile import reference_backend
    spec = _spec_of(build)
    ref = reference_backend(Source(spec)) if spec is not None else get_backend(FLOAT)
    net = build.float_with_learned_weights() if build.learned else build.float_net
    if net is None:
        raise NeurocompError(f"{build.path}: no network_float.npz, cannot verify against float")
    return ref, net.without_plasticity()


def _spec_of(build):
    from pathlib import Path

    from neurocomp.spec import load_spec
    path = Path(build.info.get("spec", ""))
    if build.info.get("source") == "brian2" and path.is_file():
        return load_spec(path, overrides=build.info.get("overrides"))   # as compiled (e.g. a sweep point)
    if build.info.get("source") == "brian2":
        raise NeurocompError(f"{build.path}/build.json: spec {path} no longer exists (needed to load the Brian2 "
                             "script again)")
    return None


def run_target(build, target: str, plan, progress=None, encoding=None) -> Result:
    """One target on a build's evaluation samples, every population recorded, learning off;
    ``encoding``: what the samples were encoded with, if not the network's (a reference that draws its
    own input spikes draws them with it)."""
    if target == FLOAT:
        ref, net = float_reference(build)
        if encoding is not None:
            net = net.with_encoding(encoding)
        spec = _spec_of(build)
        x = plan.evaluation.x
        return ref.run(net, plan.evaluation.spikes, plan.schedule, record=True, progress=progress,
                       source=Source(spec, x, int(build.info["input_seed"]) + 1) if spec is not None else None)
    return get_backend(target).run(build.frozen, plan.evaluation.spikes, plan.schedule, record=True,
                                   progress=progress)


def user_targets() -> list:
    """What ``run``/``verify`` may name: ``float`` (the build's float reference) and every target that
    runs fixed-point networks."""
    return [FLOAT] + target_names(network="fixed", reference=False)


def allowed_targets(build) -> list:
    """:func:`user_targets` that run the build's schedule."""
    return [t for t in user_targets() if t == FLOAT or get_backend(t).capabilities.supports(build.schedule)]


def verify_build(build, samples: Optional[int] = 20, targets: Sequence[str] = DEFAULT_TARGETS,
                 progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Run ``samples`` held-out samples of a build (a :class:`Build` or its directory; from rest,
    learning off) on ``targets`` and compare them. Batched builds also report float and cpu accuracy
    on the whole held-out split."""
    from neurocomp.pipeline.build import Build, load_build

    def check(allowed, kind):
        bad = [t for t in targets if t not in allowed]
        if bad or len(targets) < 2 or len(set(targets)) != len(targets):
            raise TargetError(f"--targets {','.join(targets)!r}: give two or more distinct targets from "
                              f"{', '.join(allowed)} for {kind}")

    check(user_targets(), "a build")     # names first: a typo fails before anything is read
    build = build if isinstance(build, Build) else load_build(build)
    check(allowed_targets(build), "this build")
    plan = build.plan(samples, warmup=False)
    stream = not build.schedule.is_batched
    results, seconds, notes = {}, {}, []
    # Lava first (cheapest to fail early); ensure_lava_runtime makes any order safe
    for target in sorted(targets, key=lambda t: {"loihi-sim": 0, "cpu": 1}.get(t, 2)):
        t0 = time.perf_counter()
        cb = (lambda d, t, _name=target: progress(_name, d, t)) if progress else None
        try:
            results[target] = run_target(build, target, plan, cb)
        except NeurocompError as e:
            if target != FLOAT or not stream:
                raise
            notes.append(f"float skipped: {e}; the compile's reference_accuracy is the float comparison for "
                         "this build")
            continue
        seconds[target] = round(time.perf_counter() - t0, 3)
    ran = [t for t in targets if t in results]
    net = build.fixed
    layers = [p.name for p in net.execution_order()]
    readout = build.readout
    labels = plan.test.y if plan.test.y is not None and len(plan.test) else None
    preds = {t: (readout.predict(r.counts[net.output]) if labels is not None else None) for t, r in results.items()}
    report = spike_match_report({t: results[t] for t in ran}, layers, labels, predictions=preds, stream=stream)
    report.update(model=build.info.get("model", net.name), timesteps=int(build.schedule.window), seconds=seconds)
    if stream:
        report.update(stream=True, mode="replay" if build.sizes.replay else "dataset",
                      stream_steps=int(len(plan.evaluation) * build.schedule.window),
                      learning="off (learned weights frozen)", notes=notes)
        ln = build.report.get("learning", {})
        report["compile"] = {"accuracy": ln.get("accuracy"), "reference_accuracy": ln.get("reference_accuracy"),
                             "test_samples": ln.get("test_samples"), "label_samples": ln.get("label_samples"),
                             "note": "compile: the target learned, then labelling + held-out samples; "
                                     "reference_accuracy: the reference learned by itself on the same samples"}
    else:
        full = build.plan(None, warmup=False)
        held_out = {"samples": int(len(full.test))}
        if build.float_net is not None:
            held_out["float"] = get_backend(FLOAT).run(build.float_net, full.test.spikes, build.schedule).accuracy(full.test.y)
        held_out["cpu"] = get_backend("cpu").run(build.frozen, full.test.spikes, build.schedule).accuracy(full.test.y)
        report["accuracy_held_out"] = held_out
    if "cpu" in results and "loihi-sim" in results:
        a, b = results["cpu"], results["loihi-sim"]
        trains = (lambda r: r.stream) if stream else (lambda r: r.spikes)
        report["cpu_matches_loihi_sim"] = all(np.array_equal(trains(a)[k], trains(b)[k]) for k in layers)
    return report
