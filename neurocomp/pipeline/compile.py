"""The compile, one fixed sequence of passes for every network:

    import -> schedule -> samples -> calibrate -> quantize -> rules -> place -> (learn) -> evaluate
           -> (conversion: accuracy vs timesteps, for a converted ANN) -> (energy) -> write

``compile_model("models/mnist_mlp/model.yaml", target="loihi-sim", out="build/mnist_mlp")``. The
schedule comes from the network's properties (layered and not learning: batched; otherwise one
stream), never from where it came from. Evaluation runs the reference (the source's own simulator
where there is one, e.g. Brian2, else the float IR), the bit-accurate ``cpu`` target on every scored
sample and the requested target on a subset (``verify.samples``; ``auto`` = what fits in
``verify.lava_seconds``) — a plastic network learns and is scored on the target in full.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from neurocomp.backends import backends, get_backend, require_target
from neurocomp.backends.base import Result, Source, concat_results
from neurocomp.backends.atrlif import with_thresholds
from neurocomp.backends.learning_engine import freeze, with_weights
from neurocomp.data import check_labels, load_split, sample_shape
from neurocomp.errors import NeurocompError
from neurocomp.frontends import import_network
from neurocomp.ir import RateEncoding
from neurocomp.ir.plasticity import THIRD_FACTOR_LEVEL
from neurocomp.ir.schedule import choose_schedule
from neurocomp.passes import adopt_fixed, quantize
from neurocomp.passes.learn import Readout, accuracy, supervision_flags
from neurocomp.passes.place import mapping_report
from neurocomp.passes.quantize_rules import pre_trace_saturation, supervised_projections
from neurocomp.pipeline.build import save_build
from neurocomp.pipeline.retry import SilentRetry, retry_silent
from neurocomp.pipeline.samples import PlanSizes, plan_samples, replay_schedule, stream_sizes
from neurocomp.io import check_output_dir
from neurocomp.process import check_run_memory
from neurocomp.spec import dataset_where, load_spec, spec_files
from neurocomp.targets import FixedPointFormat, load_descriptor

Progress = Optional[Callable[[str, int, int], None]]
DEFAULT_REST = 10   # silent steps between samples of a stream, when the spec says nothing


def reference_backend(source: Source):
    """The float reference for a source: a target that runs the source's own model if one accepts it
    (Brian2 scripts), else the float IR."""
    for b in backends(reference=True, network="float"):
        if b.accepts(source) and b.unavailable() is None:
            return b
    return get_backend("float")


def _agreement(a: Result, b: Result, n: int) -> dict:
    """Spike-level agreement between two batched runs on their first ``n`` samples."""
    out = {"samples": n, "predictions_equal": float(np.mean(a.predictions[:n] == b.predictions[:n]))}
    if a.spikes and b.spikes:
        common = [k for k in a.spikes if k in b.spikes]
        out["identical_spike_trains"] = float(np.mean(
            [np.array_equal(a.spikes[k][i], b.spikes[k][i]) for i in range(n) for k in common]))
    return out


def _same_trains(a: Result, b: Result, name: str) -> bool:
    x = a.stream.get(name, a.spikes.get(name))
    y = b.stream.get(name, b.spikes.get(name))
    return bool(np.array_equal(x, y))


def _run_subset(backend, net, spikes, schedule, requested, seconds: float, log, bar) -> Result:
    """The target on the first samples: ``requested`` of them, or (``auto``) a probe batch and then
    as many as fit in about ``seconds`` (the probe includes Lava's start-up: a safe under-estimate)."""
    if requested != "auto":
        n = min(int(requested), len(spikes))
        log(f"running {n} samples on {backend.name}")
        return backend.run(net, spikes[:n], schedule, record=True, progress=bar)
    log(f"running on {backend.name}: probe batch to size a ~{seconds:.0f} s run")
    probe_n = min(8, len(spikes))
    t0 = time.perf_counter()
    first = backend.run(net, spikes[:probe_n], schedule, record=True)
    elapsed = time.perf_counter() - t0
    n = min(len(spikes), probe_n + int(max(0.0, seconds - elapsed) * probe_n / max(elapsed, 1e-6)))
    if n <= probe_n:
        return first
    log(f"running {n - probe_n} more samples on {backend.name}")
    return concat_results(first, backend.run(net, spikes[probe_n:n], schedule, record=True, progress=bar))


def _fixed_to_float(net, scales, weights: dict) -> dict:
    """Integer weights -> float units per projection (``int * 2**exp / S``)."""
    return {k: w * 2.0 ** net.projection(k).synapse.weight_exp / scales[net.projection(k).target]
            for k, w in weights.items()}


def _corr(a, b) -> Optional[float]:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.array_equal(a, b) else None
    return float(np.corrcoef(a, b)[0, 1])


def compile_model(spec_path, target: Optional[str] = None, out=None, samples=None, progress: Progress = None,
                  log: Callable[[str], None] = lambda s: None, energy: bool = False, force: bool = False,
                  overrides: Optional[dict] = None) -> dict:
    """Compile ``spec_path`` for ``target``; returns the report (also written to ``out/report.json``).
    ``force``: replace ``out`` even when it holds files that are not a neurocomp build (never the
    current directory, its parents or the model's own files). ``overrides``: model.yaml keys set
    on top of the file, validated like it (``{"quantize.weight_bits": 4}``, :func:`neurocomp.spec.load_spec`)."""
    t_start = time.perf_counter()
    spec = load_spec(spec_path, overrides=overrides)
    backend = require_target(target or spec.target, "--target", compile=True)
    desc = load_descriptor(backend.name)
    fmt = FixedPointFormat.from_descriptor(desc)
    if spec.quantize.netx:
        fmt = fmt.netx_compatible()
    out = Path(out) if out else Path("build") / spec.name
    check_output_dir(out, force=force, protect=spec_files(spec))   # fail now, not after the compile
    bar = (lambda what: (lambda d, t: progress(what, d, t))) if progress else (lambda what: None)
    timing = {}

    # -- import, schedule, samples --------------------------------------------------------------
    log(f"importing {spec.source.kind} model from {spec.path}")
    imported = import_network(spec, sample_shape(spec.dataset.name, spec.base_dir))
    net = imported.network
    T = spec.input.timesteps
    replay = imported.stimulus is not None and spec.learning is None
    split = None if replay else load_split(spec.dataset.name, spec.dataset.holdout, spec.dataset.seed,
                                           spec.base_dir, classes=spec.dataset.classes, where=spec.path)
    if replay:
        schedule, sizes = replay_schedule(imported.stimulus), PlanSizes(train=1, replay=True)
    else:
        schedule = choose_schedule(net, T, spec.learning.rest_steps if spec.learning else DEFAULT_REST)
        if schedule.is_batched:
            if spec.learning is not None:
                raise NeurocompError(f"{spec.path}: learning: applies to networks that learn or are recurrent "
                                     f"(they run as one stream); {net.name!r} is layered feed-forward without "
                                     "plasticity — remove the learning: section")
            sizes = PlanSizes(test=len(split.x_test), calibration=spec.quantize.calibration_samples)
        else:
            if spec.input.encoding == "current":
                raise NeurocompError(f"{spec.path}: input.encoding: current (graded input) runs on the batched "
                                     f"schedule only; {net.name!r} is recurrent or plastic (one stream)")
            sizes = stream_sizes(spec, net, split, test_override=samples if net.is_plastic else None)
            SilentRetry.from_spec(spec)     # refused here, before any work, for a code without a rate
        if net.input.size != split.x_train[0].size:
            raise NeurocompError(f"{spec.path}: input {net.input.name!r} has {net.input.size} channels, dataset "
                                 f"{spec.dataset.name!r} has {split.x_train[0].size} features")
    supervised = supervised_projections(net)
    n_classes = 0 if replay else split.n_classes
    _check_supervised(spec, net, supervised, n_classes)
    if not replay and not (net.is_plastic and not supervised):   # the readout is output neuron j = class j
        check_labels(np.concatenate([split.y_train, split.y_test]), net.population(net.output).size,
                     dataset_where(spec))
    if not replay:   # before encoding: samples x steps x channels must fit
        check_run_memory(net, sizes.train + sizes.label + sizes.test + sizes.calibration, where=spec.path,
                         lower="input.timesteps or dataset.holdout / learning.*")
    seed = spec.learning.seed if spec.learning else 0
    plan = plan_samples(sizes, schedule, net, split, spec.input.seed, stimulus=imported.stimulus,
                        calibration_samples=spec.quantize.calibration_samples)

    # -- calibrate, quantise, place --------------------------------------------------------------
    if net.is_fixed_point:   # a netx file or our own NIR export: already Loihi integers, kept as they are
        from neurocomp.frontends.netx import float_twin
        log(f"{spec.source.kind} source is already fixed point: its integers are deployed unchanged")
        qn, net = adopt_fixed(net, float_twin(net)), float_twin(net)
    else:
        log(f"quantising for {backend.name} (calibration on {len(plan.calibration)} "
            f"{'training ' if schedule.is_batched else ''}samples, {schedule.kind} schedule)")
        qn = quantize(net, fmt, plan.calibration.spikes, schedule, spec.quantize.headroom,
                      spec.quantize.weight_bits, seed)
    fixed = qn.fixed
    if isinstance(net.input.encoding, RateEncoding) and not replay:   # a white pixel fires at max_rate all sample long
        for row in qn.rules or []:
            proj = net.projection(row["projection"])
            why = pre_trace_saturation(row, net.input.encoding.max_rate) if proj.source == net.input.name else None
            if why:
                log(f"warning: {why}")
    for name in qn.silent_layers:
        log(f"warning: layer {name!r}: every incoming weight rounds to 0 at {spec.quantize.weight_bits} bits; "
            "it can never be driven (raise quantize.weight_bits or lower the threshold)")
    timing["import_quantize"] = time.perf_counter() - t_start
    mapping = mapping_report(fixed, desc, strict=backend.capabilities.hardware)
    if mapping and "error" in mapping:
        log(f"warning: would not fit the chip's cores: {mapping['error']}")
    cpu = get_backend("cpu")
    report = {"model": spec.name, "target": backend.name, "source": spec.source.kind, "timesteps": T,
              "encoding": spec.input.encoding, "schedule": schedule.as_dict(),
              "mode": "replay" if replay else ("batched" if schedule.is_batched else "dataset")}
    if imported.details:
        report[spec.source.kind] = imported.details

    # -- learn, evaluate --------------------------------------------------------------------------
    if schedule.is_batched:
        evaluation = _evaluate_batched(spec, backend, cpu, net, fixed, plan, samples, bar, log, timing)
        known = evaluation.pop("_results")
        report.update(evaluation)
        learned = None
        if spec.convert is not None:   # a converted ANN: accuracy against latency, ANN / float / fixed per T
            from neurocomp.pipeline.conversion import accuracy_latency
            report["conversion"] = accuracy_latency(spec, net, fixed, plan.test.x, plan.test.y,
                                                    sample_shape(spec.dataset.name, spec.base_dir),
                                                    known={T: known}, log=log, timing=timing)
    elif replay:
        learned, extra = _replay(spec, backend, cpu, net, qn, plan, schedule, bar, log, timing)
        report.update(extra)
    else:
        learned, extra = _learn_and_evaluate(spec, backend, cpu, net, qn, plan, schedule, supervised, bar, log,
                                             timing)
        report.update(extra)
    report["layers"] = [row.as_dict() for row in qn.layers]
    if qn.rules:
        report["rules"] = qn.rules
    report["mapping"] = mapping
    thresholds = report.pop("_thresholds", None)
    deployed = with_weights(fixed, learned, thresholds=thresholds) if learned else fixed
    if energy:
        from neurocomp.pipeline.energy import energy_of_network
        log("estimating energy (activity counted on the cpu target over the scored samples)")
        ann = None
        if spec.source.kind == "ann":   # a converted ANN: the conventional baseline is that ANN itself
            from neurocomp.pipeline.conversion import source_ann_workload
            ann = source_ann_workload(spec, sample_shape(spec.dataset.name, spec.base_dir))
        report["energy"] = energy_of_network(deployed, net, plan, schedule, learn_net=fixed if learned else None,
                                             teacher=plan_teacher(net, plan, schedule, supervised),
                                             ann=ann).summary()
    info = {"spec": str(Path(spec_path).resolve()), **({"overrides": dict(overrides)} if overrides else {}),
            "model": spec.name, "target": backend.name,
            "source": spec.source.kind, "input_seed": spec.input.seed, "schedule": schedule.as_dict(),
            "stream": not schedule.is_batched, "samples": plan.sizes.as_dict(),
            "readout": report.pop("_readout", Readout().as_dict()),
            **({"retry_silent": report["learning"]["retry_silent"]}
               if report.get("learning", {}).get("retry_silent") else {}),
            "dataset": {"name": spec.dataset.name, "holdout": spec.dataset.holdout, "seed": spec.dataset.seed,
                        "base_dir": str(spec.base_dir), "classes": spec.dataset.classes}}
    timing["total"] = time.perf_counter() - t_start
    report["timing_s"] = {k: round(v, 3) for k, v in timing.items()}
    from neurocomp.report.compile_page import render_compile_html
    html = render_compile_html(report, net, deployed)
    save_build(out, info, report, deployed, net, initial=fixed if learned is not None else None,
               stimulus=imported.stimulus if replay else None, html=html, force=force,
               protect=spec_files(spec), started=t_start)
    report["out"] = str(out)
    return report


def plan_teacher(net, plan, schedule, supervised):
    """The 0/1 teacher of supervised rules over the training stream (None without such rules)."""
    if not supervised:
        return None
    steps = len(plan.train) * schedule.window
    flags = supervision_flags(plan.train.y, net.population(net.output).size, schedule.window,
                              net.depths()[net.output], steps)
    return {p.name: flags for p in supervised}


def _evaluate_batched(spec, backend, cpu, net, fixed, plan, samples, bar, log, timing) -> dict:
    test, y = plan.test.spikes, plan.test.y
    # recorded: the page compares float with fixed per layer, the target is compared with cpu
    float_res = get_backend("float").run(net, test, plan.schedule, record=True)
    cpu_res = cpu.run(fixed, test, plan.schedule, record=True, progress=bar("cpu"))
    requested = samples if samples is not None else spec.verify.samples
    t0 = time.perf_counter()
    if backend.name == cpu.name:
        n = len(y) if requested == "auto" else min(int(requested), len(y))
        target_res = cpu_res.head(n)
    else:
        target_res = _run_subset(backend, fixed, test, plan.schedule, requested, spec.verify.lava_seconds, log,
                                 bar(backend.name))
    timing["target_run"] = time.perf_counter() - t0
    n = target_res.samples
    from neurocomp.report.compile_page import spike_comparison
    return {
        "spikes": spike_comparison(float_res, cpu_res, net),
        "accuracy": {"float": float_res.accuracy(y),
                     "float_on_target_samples": float(np.mean(float_res.predictions[:n] == y[:n])),
                     "cpu": cpu_res.accuracy(y), "target": target_res.accuracy(y[:n]), "samples": int(n),
                     "held_out": int(len(y)), "reference": "float",
                     "silent_samples": {"float": int(float_res.silent.sum()), "cpu": int(cpu_res.silent.sum())}},
        "agreement": {"target_vs_cpu": _agreement(target_res, cpu_res, n),
                      "float_vs_fixed_predictions": float(np.mean(float_res.predictions == cpu_res.predictions))},
        "_results": (float_res, cpu_res),
    }


def _replay(spec, backend, cpu, net, qn, plan, schedule, bar, log, timing):
    """A source's own stimulus, played once with learning on, in the reference and on the target."""
    stim = plan.train.spikes
    ref = reference_backend(Source(spec))
    t0 = time.perf_counter()
    ref_res = ref.run(net, stim, schedule, learn=True, record=True, source=Source(spec))
    timing[ref.name] = time.perf_counter() - t0
    steps = schedule.window
    log(f"replaying the script's {steps} steps on {backend.name}")
    t0 = time.perf_counter()
    res = backend.run(qn.fixed, stim, schedule, learn=True, record=True, progress=bar(backend.name))
    timing["target_run"] = time.perf_counter() - t0
    counts = {}
    for name, a in ref_res.stream.items():
        a, b = a.sum(axis=0), res.stream[name].sum(axis=0)
        counts[name] = {"brian2": a.tolist(), "target": b.tolist(), "correlation": _corr(a, b)}
    learned_t = _fixed_to_float(qn.fixed, qn.scales, res.weights)
    weights = {}
    for name, w1 in ref_res.weights.items():
        w0 = net.projection(name).synapse.weight
        initial_t = _fixed_to_float(qn.fixed, qn.scales, {name: qn.fixed.projection(name).synapse.weight})[name]
        weights[name] = {"initial_brian2": w0.ravel().tolist(), "brian2": w1.ravel().tolist(),
                         "initial_target": initial_t.ravel().tolist(), "target": learned_t[name].ravel().tolist(),
                         "brian2_dw": (w1 - w0).ravel().tolist(), "target_dw": (learned_t[name] - initial_t).ravel().tolist()}
    dw = lambda key: np.concatenate([np.abs(np.asarray(w[key])) for w in weights.values()]) if weights else np.zeros(1)  # noqa: E731
    extra = {"replay": {"steps": int(steps), "spike_counts": counts, "weights": weights},
             "learning": {"samples": 1, "weight_change": float(dw("target_dw").mean()),
                          "reference_weight_change": float(dw("brian2_dw").mean()), "accuracy": None,
                          "reference_accuracy": None}}
    if backend.name != cpu.name:
        c = cpu.run(qn.fixed, stim, schedule, learn=True, record=True)
        extra["agreement"] = {"target_vs_cpu": {
            "identical_spike_trains": all(_same_trains(c, res, k) for k in c.stream),
            "weights_equal": bool(all(np.array_equal(c.weights[k], res.weights[k]) for k in c.weights))}}
    return res.weights, extra


def _silent(counts: np.ndarray) -> int:
    """Samples the output did not answer at all (predicted -1, scored wrong)."""
    return int((np.asarray(counts).sum(axis=1) == 0).sum())


def _learn_and_evaluate(spec, backend, cpu, net, qn, plan, schedule, supervised, bar, log, timing):
    """A stream network: learn on the training samples (if it learns), label (Diehl & Cook) on the
    labelling samples, score the held-out ones — on the target, on cpu (agreement) and in the reference."""
    fixed, out_name = qn.fixed, net.output
    plastic = net.is_plastic
    n_train, n_label, n_test = len(plan.train), len(plan.label), len(plan.test)
    window, delay = schedule.window, net.depths()[out_name]
    teacher = plan_teacher(net, plan, schedule, supervised)
    ln = {"samples": n_train, "label_samples": n_label, "test_samples": n_test, "steps_per_sample": window}
    if supervised:
        ln["supervised"] = {"projections": [p.name for p in supervised], "readout": "neuron j = class j",
                            "classes": spec.dataset.classes or list(range(plan.n_classes)),
                            "teacher_level": THIRD_FACTOR_LEVEL, "teacher_delay_steps": delay}
    learned, cpu_learn, learn_res, thresholds = {}, None, None, {}
    if plastic:
        log(f"learning on {backend.name}: {n_train} samples, {n_train * window} steps")
        t0 = time.perf_counter()
        learn_res = backend.run(fixed, plan.train.spikes, schedule, learn=True, teacher=teacher, record=True,
                                progress=bar(f"learn ({backend.name})"))
        timing["target_learn"] = time.perf_counter() - t0
        learned = learn_res.weights
        thresholds = learn_res.thresholds      # ATRLIF: learned thresholds, carried with the weights
        ln["learning_updates"] = learn_res.learning_updates or None
        if backend.name != cpu.name:
            log("learning on cpu too (agreement check)")
            t0 = time.perf_counter()
            cpu_learn = cpu.run(fixed, plan.train.spikes, schedule, learn=True, teacher=teacher, record=True)
            timing["cpu_learn"] = time.perf_counter() - t0
            ln["learning_updates"] = cpu_learn.learning_updates
    frozen = freeze(fixed, learned, thresholds)
    ev = plan.evaluation
    log(f"evaluating on {backend.name}: {n_label} labelling + {n_test} test samples, weights frozen")
    t0 = time.perf_counter()
    ev_res = backend.run(frozen, ev.spikes, schedule, record=True, progress=bar(f"eval ({backend.name})"))
    timing["target_eval"] = time.perf_counter() - t0
    y_label, y_test = plan.label.y, plan.test.y

    def score(counts):
        if plastic and not supervised:
            readout = Readout.labelled(counts[:n_label], y_label, plan.n_classes)
        else:
            readout = Readout("argmax", plan.n_classes)
        return accuracy(readout.predict(counts[n_label:]), y_test), readout

    retry = SilentRetry.from_spec(spec)

    def retried(counts, run_on, what):
        """The evaluation's counts with its silent samples shown again (``learning.retry_silent``)."""
        if retry is None:
            return counts
        counts, rounds = retry_silent(counts, ev.x, net.input.encoding, schedule.timesteps, spec.input.seed,
                                      retry, run_on)
        ln.setdefault("retried", {})[what] = rounds
        return counts

    if retry is not None:
        ln["retry_silent"] = retry.as_dict()
        log(f"showing silent samples again on {backend.name} (fewer than {retry.below_spikes} output spikes)")
    ev_counts = retried(ev_res.counts[out_name], lambda enc, spikes, rows: backend.run(
        frozen, spikes, schedule).counts[out_name], "target")
    acc, readout = score(ev_counts)
    ln["accuracy"] = acc
    ln["silent_test_samples"] = _silent(ev_counts[n_label:])
    ln["assignments"] = None if readout.assignments is None else list(readout.assignments)
    if plastic:
        w_float = _fixed_to_float(fixed, qn.scales, learned)
        w0_float = _fixed_to_float(fixed, qn.scales, {k: fixed.projection(k).synapse.weight for k in learned})
        ln["weight_change"] = float(np.mean([np.abs(w_float[k] - w0_float[k]).mean() for k in learned]))
        ln["weight_change_lsb"] = float(np.mean([np.abs(learned[k] - fixed.projection(k).synapse.weight).mean()
                                                 for k in learned]))
        if readout.assignments is not None:
            ln["neurons_per_class"] = readout.neurons_per_class()
        if thresholds:   # ATRLIF: learned thresholds in float units
            ln["thresholds_mean"] = {k: float(np.mean(v) / (qn.scales[k] * 64)) for k, v in thresholds.items()}
    # the reference: the source's own model (float) on the very same samples
    ref = reference_backend(Source(spec))
    try:
        t0 = time.perf_counter()
        log(f"reference: the same samples through {ref.name} (float)")
        ref_net = net
        if plastic and not ref.capabilities.learning:
            # a float reference that cannot learn runs the target's learned weights (float units)
            ref_net = net.with_weights({k: type(net.projection(k).synapse)(w)
                                        for k, w in _fixed_to_float(fixed, qn.scales, learned).items()})
            ref_net = with_thresholds(ref_net, {k: th / (qn.scales[k] * 64) for k, th in thresholds.items()},
                                      freeze=True)
        elif plastic:
            ref_learn = ref.run(net, plan.train.spikes, schedule, learn=True, teacher=teacher,
                                source=Source(spec, plan.train.x, spec.input.seed))
            ref_net = net.with_weights({k: type(net.projection(k).synapse)(w) for k, w in ref_learn.weights.items()})
            ref_net = with_thresholds(ref_net, ref_learn.thresholds, freeze=True)
            if ref_learn.thresholds:
                ln["reference_thresholds_mean"] = {k: float(np.mean(v)) for k, v in ref_learn.thresholds.items()}
            ln["reference_weight_change"] = float(np.mean([np.abs(w - net.projection(k).synapse.weight).mean()
                                                           for k, w in ref_learn.weights.items()]))
        ref_frozen = ref_net.without_plasticity()
        ref_ev = ref.run(ref_frozen, ev.spikes, schedule, source=Source(spec, ev.x, spec.input.seed + 1))
        ref_counts = retried(ref_ev.counts[out_name], lambda enc, spikes, rows: ref.run(
            ref_frozen.with_encoding(enc), spikes, schedule,
            source=Source(spec, ev.x[rows], spec.input.seed + 1)).counts[out_name], ref.name)
        timing[ref.name] = time.perf_counter() - t0
        ln["reference_accuracy"], _ = score(ref_counts)
        ln["reference_silent_test_samples"] = _silent(ref_counts[n_label:])
        ln["reference_input"] = ref_ev.details.get("reference_input", ref.name)
        if ref_ev.details.get("codegen"):
            ln["reference_codegen"] = ref_ev.details["codegen"]
    except NeurocompError as e:
        ln["reference_accuracy"] = None
        ln["reference_error"] = str(e)
    extra = {"learning": ln, "_readout": readout.as_dict(),
             "accuracy": {"float": ln["reference_accuracy"], "target": acc, "samples": n_test,
                          "held_out": n_test, "reference": ref.name}}
    if backend.name != cpu.name:
        cpu_ev = cpu.run(frozen, ev.spikes, schedule, record=True)
        cpu_counts = retried(cpu_ev.counts[out_name], lambda enc, spikes, rows: cpu.run(
            frozen, spikes, schedule).counts[out_name], cpu.name)
        extra["accuracy"]["cpu"], _ = score(cpu_counts)
        agree = {"eval_identical_spike_trains": _same_trains(cpu_ev, ev_res, out_name)}
        if retry is not None:
            agree["eval_counts_equal_after_retries"] = bool(np.array_equal(cpu_counts, ev_counts))
        if cpu_learn is not None:
            agree["weights_equal"] = bool(all(np.array_equal(cpu_learn.weights[k], learned[k]) for k in learned))
            agree["learn_identical_spike_trains"] = _same_trains(cpu_learn, learn_res, out_name)
            if thresholds:
                agree["thresholds_equal"] = bool(all(np.array_equal(cpu_learn.thresholds[k], thresholds[k])
                                                     for k in thresholds))
        extra["agreement"] = {"target_vs_cpu": agree}
    else:
        extra["accuracy"]["cpu"] = acc
    extra["_thresholds"] = thresholds
    return learned, extra


def _check_supervised(spec, net, supervised: list, n_classes: int) -> None:
    """A supervised readout reads class ``j`` off output neuron ``j``: its rule must act on the output
    population, and that population must have one neuron per class."""
    if not supervised:
        return
    out = net.population(net.output)
    for p in supervised:
        if p.target != net.output:
            raise NeurocompError(f"{spec.path}: supervised-depression Synapses {p.name!r} acts on {p.target!r}, "
                                 f"not the output population {net.output!r} (set source.output)")
    if out.size != n_classes:
        which = f"dataset.classes {list(spec.dataset.classes)}" if spec.dataset.classes is not None \
            else f"dataset {spec.dataset.name!r}"
        raise NeurocompError(f"{spec.path}: supervised readout {out.name!r} has {out.size} neurons but "
                             f"{which} has {n_classes} classes; neuron j answers class j, so they must match")
