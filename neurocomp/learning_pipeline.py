"""Compiling Brian2 models: plastic and recurrent networks that learn and run on the target.

:func:`neurocomp.pipeline.compile_model` hands every ``source.kind: brian2`` model here. Two modes:

**dataset** (a ``learning:`` section in model.yaml, or no fixed script input)
    digits become one continuous stream, each sample ``input.timesteps`` of encoded input then
    ``learning.rest_steps`` silent steps. The quantised network learns on the target over the
    ``learning.samples`` training digits (cpu: :mod:`neurocomp.backends.learning`; loihi-sim: Lava's
    ``LearningDense``); then, weights frozen, every neuron of the output population is labelled with
    the class it answers most over ``label_samples`` further training digits, and ``test_samples``
    held-out digits are classified by the labelled neurons' mean response (Diehl & Cook 2015). The
    very same streams go through the user's Brian2 network itself (float, ``SpikeGeneratorGroup``
    replay) for ``reference_accuracy``. A non-plastic model skips training and reads classes off
    output neuron indices.

**replay** (the script's ``SpikeGeneratorGroup`` carries its own spikes, no ``learning:`` section)
    those spikes are played once in Brian2 and on the target: per-neuron spike counts are compared
    (correlation) and every plastic weight's change is reported side by side (models/stdp_pair).

On ``loihi-sim`` the cpu simulator runs the same streams too and the report says whether the learned
weights and spikes are identical (they are: Lava's learning model is deterministic once seeded, and
the cpu engine reproduces its random streams).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from neurocomp.backends.learning import StreamResult, freeze, run_stream, with_weights
from neurocomp.data import load_split
from neurocomp.ir.encodings import encode
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.io import atomic_directory, atomic_write_json
from neurocomp.ir import Network, save_network
from neurocomp.quantize_learning import THIRD_FACTOR_LEVEL, quantize_stream_network, supervised_projections

LEARNING_TARGETS = ("cpu", "loihi-sim")


# ------------------------------------------------------------------------------------ streams
def to_stream(spikes: np.ndarray, rest: int) -> np.ndarray:
    """Samples ``[n, T, n_in]`` -> one stream ``[n * (T + rest), n_in]`` with silent rests."""
    n, T, n_in = spikes.shape
    out = np.zeros((n, T + rest, n_in), dtype=bool)
    out[:, :T] = spikes
    return out.reshape(n * (T + rest), n_in)


def training_spikes(split, start: int, stop: int, encoding, timesteps: int, seed: int) -> np.ndarray:
    """Training samples ``start..stop-1`` encoded as every compile encodes them (input seed, each
    sample seeded by its position in the training split, so a slice encodes as inside the whole)."""
    idx = np.arange(start, stop)
    return encode(split.x_train[start:stop], encoding, timesteps, seed=seed, indices=idx)


def held_out_spikes(split, n: int, encoding, timesteps: int, seed: int) -> np.ndarray:
    """The first ``n`` held-out samples, encoded with ``seed + 1`` (apart from the training draws)."""
    return encode(split.x_test[:n], encoding, timesteps, seed=seed + 1)


def input_delay(net: Network, population: str) -> int:
    """Steps from an input spike to the earliest spike it can cause in ``population`` (shortest path)."""
    dist, frontier = {net.input.name: 0}, [net.input.name]
    while frontier:
        nxt = []
        for name in frontier:
            for proj in net.projections:
                if proj.source == name and proj.target not in dist:
                    dist[proj.target] = dist[name] + 1
                    nxt.append(proj.target)
        frontier = nxt
    return dist.get(population, 1)


def window_counts(trains: np.ndarray, n_samples: int, window: int, delay: int) -> np.ndarray:
    """Spike counts per sample ``[n_samples, n]`` from a stream's trains ``[steps, n]``: sample ``k``
    owns steps ``[k*window + delay, (k+1)*window + delay)`` (clipped to the stream)."""
    steps, n = trains.shape
    padded = np.zeros((n_samples * window + delay, n), dtype=np.int64)
    padded[: min(steps, len(padded))] = trains[: len(padded)]
    return padded[delay:].reshape(n_samples, window, n).sum(axis=1)


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Each neuron's class: the one it answers most to on average (-1 if it never spiked)."""
    rates = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        sel = labels == c
        if sel.any():
            rates[c] = counts[sel].mean(axis=0)
    out = np.argmax(rates, axis=0)
    out[rates.max(axis=0) == 0] = -1
    return out


def supervision_flags(labels: np.ndarray, n_out: int, window: int, delay: int, steps: int) -> np.ndarray:
    """The teacher of a supervised readout, ``[steps, n_out]`` 0/1: output neuron ``j`` stands for
    class ``j`` and is flagged "wrong" (1) while a sample of another class owns the stream.

    Sample ``k`` owns steps ``[k*window + delay, (k+1)*window + delay)`` — the steps whose output
    spikes :func:`window_counts` credits to it. The shift by ``delay`` (Dense delivers a spike one
    step later per layer) makes the first post spike a sample can cause meet that sample's flags,
    and the sample's rest steps stay flagged: a spike there still comes from that sample's input
    (its decaying current, and the pre traces still hold its pixels). The first ``delay`` steps,
    before any sample can reach the output, are unflagged.
    """
    flags = np.zeros((steps, n_out), dtype=np.int64)
    for k, label in enumerate(labels):
        lo, hi = k * window + delay, min((k + 1) * window + delay, steps)
        if lo < steps:
            flags[lo:hi] = np.arange(n_out) != label
    return flags


def classify(counts: np.ndarray, assignments: np.ndarray, n_classes: int) -> np.ndarray:
    """Per sample, the class whose assigned neurons fire most on average (Diehl & Cook's readout)."""
    scores = np.full((len(counts), n_classes), -1.0)
    for c in range(n_classes):
        sel = assignments == c
        if sel.any():
            scores[:, c] = counts[:, sel].mean(axis=1)
    return np.argmax(scores, axis=1)


def run_on_stream_target(target: str, net: Network, stream: np.ndarray, learn: bool = True,
                         teacher: Optional[dict] = None, record: Optional[list] = None,
                         progress: Optional[Callable[[int, int], None]] = None) -> StreamResult:
    """One continuous stream on ``cpu`` (our sequential simulator) or ``loihi-sim`` (Lava)."""
    if target == "cpu":
        return run_stream(net, stream, teacher=teacher, learn=learn, record=record, progress=progress)
    if target == "loihi-sim":
        from neurocomp.backends.lava_learning import run_stream_lava
        return run_stream_lava(net, stream, teacher=teacher, learn=learn, record=record, progress=progress)
    raise TargetError(f"--target {target!r}: plastic/recurrent Brian2 models run on {', '.join(LEARNING_TARGETS)}")


def _corr(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.std() == 0 or b.std() == 0:
        return 1.0 if np.array_equal(a, b) else None
    return float(np.corrcoef(a, b)[0, 1])


def _fixed_to_float(net: Network, q, weights: dict) -> dict:
    """Learned integer weights -> float units, per plastic projection (``int * 2**exp / S``)."""
    out = {}
    for name, w in weights.items():
        proj = next(p for p in net.projections if p.name == name)
        out[name] = w * 2.0 ** proj.synapse.weight_exp / q.scales[proj.target]
    return out


# --------------------------------------------------------------------------------- the compile
def compile_brian2(spec, target: str, out, fmt, samples: Optional[int] = None, progress=None,
                   log: Callable[[str], None] = lambda s: None, force: bool = False) -> dict:
    """Compile a Brian2 model (see the module docstring); writes ``out`` atomically, returns the report."""
    from neurocomp.frontends.brian2 import load_brian2
    from neurocomp.spec import LearningSpec

    t_start = time.perf_counter()
    if target not in LEARNING_TARGETS:
        raise TargetError(f"--target {target!r}: Brian2 models compile for {', '.join(LEARNING_TARGETS)} "
                          "(learning on the chip needs lava-loihi's learning engine)")
    out = Path(out)
    log(f"importing brian2 model from {spec.path}")
    model = load_brian2(spec)
    net = model.network
    bar = (lambda what: (lambda d, t: progress(what, d, t))) if progress else (lambda what: None)
    report = {"model": spec.name, "target": target, "source": "brian2", "timesteps": spec.input.timesteps,
              "encoding": spec.input.encoding, "brian2": model.report()}
    timing = {}
    if spec.learning is None and model.script_stream is not None:
        report["mode"] = "replay"
        stream = np.concatenate([model.script_stream, np.zeros((20, net.input.size), dtype=bool)])
        q = quantize_stream_network(net, fmt, stream, headroom=spec.quantize.headroom, seed=0)
        t0 = time.perf_counter()
        initial_b2 = model.weights()
        ref = model.run_stream(stream, learn=True)
        timing["brian2"] = time.perf_counter() - t0
        learned_b2 = model.weights()
        log(f"replaying the script's {len(stream)} steps on {target}")
        t0 = time.perf_counter()
        res = run_on_stream_target(target, q.fixed, stream, progress=bar(target))
        timing["target_run"] = time.perf_counter() - t0
        counts = {}
        for name in ref:
            a, b = ref[name].sum(axis=0), res.spikes[name].sum(axis=0)
            counts[name] = {"brian2": a.tolist(), "target": b.tolist(), "correlation": _corr(a, b)}
        weights = {}
        learned_t = _fixed_to_float(q.fixed, q, res.weights)
        for name, w0 in initial_b2.items():
            initial_t = _fixed_to_float(q.fixed, q, {name: next(
                p for p in q.fixed.projections if p.name == name).synapse.weight})[name]
            weights[name] = {"initial_brian2": w0.ravel().tolist(), "brian2": learned_b2[name].ravel().tolist(),
                             "initial_target": initial_t.ravel().tolist(), "target": learned_t[name].ravel().tolist(),
                             "brian2_dw": (learned_b2[name] - w0).ravel().tolist(),
                             "target_dw": (learned_t[name] - initial_t).ravel().tolist()}
        dw_t = np.concatenate([np.abs(np.asarray(w["target_dw"])) for w in weights.values()]) if weights else np.zeros(1)
        dw_b = np.concatenate([np.abs(np.asarray(w["brian2_dw"])) for w in weights.values()]) if weights else np.zeros(1)
        report["replay"] = {"steps": int(len(stream)), "spike_counts": counts, "weights": weights}
        report["learning"] = {"samples": 1, "weight_change": float(dw_t.mean()),
                              "reference_weight_change": float(dw_b.mean()), "accuracy": None,
                              "reference_accuracy": None}
        agree = None
        if target != "cpu":
            cpu = run_stream(q.fixed, stream)
            agree = _agreement(cpu, res)
        learned = res.weights
    else:
        report["mode"] = "dataset"
        ls = spec.learning or LearningSpec()
        q, learned, agree = _dataset_mode(spec, ls, model, net, fmt, target, report, timing, bar, log, samples)
    report["layers"] = [row.as_dict() for row in q.layers]
    report["rules"] = q.rules
    if agree is not None:
        report["agreement"] = {"target_vs_cpu": agree}
    timing["total"] = time.perf_counter() - t_start
    report["timing_s"] = {k: round(v, 3) for k, v in timing.items()}
    learned_net = with_weights(q.fixed, learned)   # keeps the rules: it can go on learning
    info = {"spec": str(Path(spec.path).resolve()), "model": spec.name, "target": target, "source": "brian2",
            "input_seed": spec.input.seed, "stream": True,
            "dataset": {"name": spec.dataset.name, "holdout": spec.dataset.holdout, "seed": spec.dataset.seed,
                        "base_dir": str(spec.base_dir), "classes": spec.dataset.classes}}
    from neurocomp.spec import spec_files
    with atomic_directory(out, force=force, protect=spec_files(spec)) as tmp:
        save_network(learned_net, tmp / "network.npz")
        save_network(q.fixed, tmp / "network_initial.npz")
        save_network(net, tmp / "network_float.npz")
        atomic_write_json(tmp / "build.json", info)
        report["timing_s"]["total"] = round(time.perf_counter() - t_start, 3)  # saving included
        atomic_write_json(tmp / "report.json", report)
    report["out"] = str(out)
    return report


def _agreement(cpu: StreamResult, other: StreamResult) -> dict:
    names = [k for k in cpu.spikes if k in other.spikes]
    return {"identical_spike_trains": bool(all(np.array_equal(cpu.spikes[k], other.spikes[k]) for k in names)),
            "weights_equal": bool(all(np.array_equal(cpu.weights[k], other.weights[k]) for k in cpu.weights
                                      if k in other.weights)) if cpu.weights else None}


def _dataset_mode(spec, ls, model, net, fmt, target, report, timing, bar, log, samples):
    from neurocomp.spec import input_encoding as spec_encoding

    split = load_split(spec.dataset.name, spec.dataset.holdout, spec.dataset.seed, spec.base_dir,
                       classes=spec.dataset.classes, where=spec.path)
    n_classes = split.n_classes
    T, R, enc = spec.input.timesteps, ls.rest_steps, spec_encoding(spec)
    plastic = model.is_plastic
    supervised = supervised_projections(net)
    _check_supervised(spec, net, supervised, n_classes)
    n_train = min(ls.samples, len(split.x_train)) if plastic else 0
    # a supervised readout needs no labelling: output neuron j is class j
    n_label = min(ls.label_samples, len(split.x_train) - n_train) if plastic and not supervised else 0
    n_test = min(samples or ls.test_samples, len(split.x_test))
    if plastic and not supervised and n_label < 1:
        raise NeurocompError(f"{spec.path}: learning.samples + learning.label_samples exceed the "
                             f"{len(split.x_train)} training samples")
    if net.input.size != split.x_train.shape[1]:
        raise NeurocompError(f"{spec.path}: input group {net.input.name!r} has {net.input.size} channels, "
                             f"dataset {spec.dataset.name!r} has {split.x_train.shape[1]} features")
    from neurocomp.process import check_run_memory
    check_run_memory(net, n_train + n_label + n_test, where=spec.path, copies=1,
                     lower="input.timesteps or learning.samples / label_samples / test_samples")
    train_spikes = training_spikes(split, 0, n_train + n_label, enc, T, spec.input.seed)
    test_spikes = held_out_spikes(split, n_test, enc, T, spec.input.seed)
    train_stream = to_stream(train_spikes[:n_train], R)
    eval_stream = to_stream(np.concatenate([train_spikes[n_train:], test_spikes]), R)
    window = T + R
    out_name = net.output
    delay = input_delay(net, out_name)
    cal = train_stream[: 20 * window] if plastic else eval_stream[: 20 * window]
    log(f"quantising for {target} (calibrated on {len(cal) // window} samples, cpu stream simulator)")
    q = quantize_stream_network(net, fmt, cal, headroom=spec.quantize.headroom, seed=ls.seed)
    fixed = q.fixed
    learned = {}
    learn_report = {"samples": n_train, "label_samples": n_label, "test_samples": n_test,
                    "steps_per_sample": window}
    # supervised depression: flags from the training labels, THIRD_FACTOR_LEVEL on the target's y2
    flags = supervision_flags(split.y_train[:n_train], net.population(out_name).size, window, delay,
                              len(train_stream)) if supervised else None
    teacher = {p.name: flags * THIRD_FACTOR_LEVEL for p in supervised} or None
    if supervised:
        learn_report["supervised"] = {"projections": [p.name for p in supervised], "readout": "neuron j = class j",
                                      "classes": spec.dataset.classes or list(range(n_classes)),
                                      "teacher_level": THIRD_FACTOR_LEVEL, "teacher_delay_steps": delay}
    cpu_learn = None
    if plastic:
        log(f"learning on {target}: {n_train} samples, {len(train_stream)} steps")
        t0 = time.perf_counter()
        res = run_on_stream_target(target, fixed, train_stream, teacher=teacher, record=[out_name],
                                   progress=bar(f"learn ({target})"))
        timing["target_learn"] = time.perf_counter() - t0
        learned = res.weights
        learn_report["learning_updates"] = res.learning_updates or None
        if target != "cpu":
            log("learning on cpu too (agreement check)")
            t0 = time.perf_counter()
            cpu_learn = run_stream(fixed, train_stream, teacher=teacher, record=[out_name])
            timing["cpu_learn"] = time.perf_counter() - t0
            learn_report["learning_updates"] = cpu_learn.learning_updates
    else:
        res = StreamResult(target=target, spikes={})
    frozen = freeze(fixed, learned)
    log(f"evaluating on {target}: {n_label} labelling + {n_test} test samples, weights frozen")
    t0 = time.perf_counter()
    ev = run_on_stream_target(target, frozen, eval_stream, learn=False, record=[out_name], progress=bar(f"eval ({target})"))
    timing["target_eval"] = time.perf_counter() - t0
    counts = window_counts(ev.spikes[out_name], n_label + n_test, window, delay)
    y_label, y_test = split.y_train[n_train:n_train + n_label], split.y_test[:n_test]

    def score(c):
        if plastic and not supervised:
            assignments = assign_labels(c[:n_label], y_label, n_classes)
            return float(np.mean(classify(c[n_label:], assignments, n_classes) == y_test)), assignments
        return float(np.mean(np.argmax(c[n_label:], axis=1) == y_test)), None

    acc, assignments = score(counts)
    learn_report["accuracy"] = acc
    # the readout `neurocomp run` reuses: each output neuron's class (None: neuron j is class j / argmax)
    learn_report["assignments"] = None if assignments is None else assignments.tolist()
    if plastic:
        lsb_float = _fixed_to_float(fixed, q, learned)
        init_float = _fixed_to_float(fixed, q, {k: next(p for p in fixed.projections if p.name == k).synapse.weight
                                                for k in learned})
        learn_report["weight_change"] = float(np.mean([np.abs(lsb_float[k] - init_float[k]).mean() for k in learned]))
        learn_report["weight_change_lsb"] = float(np.mean([np.abs(learned[k] - next(
            p for p in fixed.projections if p.name == k).synapse.weight).mean() for k in learned]))
        if assignments is not None:
            learn_report["neurons_per_class"] = np.bincount(assignments[assignments >= 0],
                                                            minlength=n_classes).tolist()
    # the reference: the user's Brian2 network itself, float, on the very same streams
    try:
        t0 = time.perf_counter()
        log("reference: the same streams through Brian2 (float)")
        w0 = model.weights()
        # a PoissonGroup input runs at the rates these streams were encoded from (its own draws)
        from neurocomp.frontends.brian2 import SampleRates
        eval_x = np.concatenate([split.x_train[n_train:n_train + n_label], split.x_test[:n_test]])
        if plastic:
            model.run_stream(train_stream, learn=True,
                             teacher={p.name: flags for p in supervised} or None,
                             rates=SampleRates(split.x_train[:n_train], enc, T, R, seed=spec.input.seed))
        w1 = model.weights()
        ref = model.run_stream(eval_stream, learn=False, rates=SampleRates(eval_x, enc, T, R, seed=spec.input.seed + 1))
        timing["brian2"] = time.perf_counter() - t0
        ref_acc, _ = score(window_counts(ref[out_name], n_label + n_test, window, delay))
        learn_report["reference_accuracy"] = ref_acc
        learn_report["reference_input"] = model.reference_input
        if plastic:
            learn_report["reference_weight_change"] = float(np.mean([np.abs(w1[k] - w0[k]).mean() for k in w1]))
    except NeurocompError as e:
        learn_report["reference_accuracy"] = None
        learn_report["reference_error"] = str(e)
    agree = None
    if target != "cpu":
        cpu_ev = run_stream(frozen, eval_stream, learn=False, record=[out_name])
        agree = {"eval_identical_spike_trains": bool(np.array_equal(cpu_ev.spikes[out_name], ev.spikes[out_name]))}
        if cpu_learn is not None:
            agree["weights_equal"] = bool(all(np.array_equal(cpu_learn.weights[k], learned[k]) for k in learned))
            agree["learn_identical_spike_trains"] = bool(np.array_equal(cpu_learn.spikes[out_name],
                                                                        res.spikes[out_name]))
    report["learning"] = learn_report
    return q, learned, agree


def _check_supervised(spec, net: Network, supervised: list, n_classes: int) -> None:
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


def format_brian2_report(report: dict) -> str:
    """The human summary of a Brian2 compile: Brian2 -> float -> integer per population and rule,
    then the learning (or replay) results."""
    b2 = report["brian2"]
    lines = [f"{report['model']} -> {report['target']}  (Brian2, dt = {b2['dt_ms']:g} ms = 1 step, "
             f"{report['mode']} mode)", ""]
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
        lines.append(f"learning  {ln.get('samples', 0)} samples on {report['target']}; mean |dw| "
                     f"{ln.get('weight_change', 0):.4g} (Brian2 {ln.get('reference_weight_change', float('nan')):.4g})")
        lines.append(f"accuracy  {report['target']} {100 * acc:.1f}%  Brian2 (float) "
                     + (f"{100 * ref:.1f}%" if ref is not None else "n/a")
                     + (f"  (supervised readout: output neuron j = class j, {ln.get('test_samples')} held-out "
                        "samples)" if "supervised" in ln else
                        f"  ({ln.get('label_samples')} labelling, {ln.get('test_samples')} held-out samples)"))
        if ln.get("reference_input"):
            lines.append(f"          Brian2 input: {ln['reference_input']}")
        elif ln.get("reference_error"):
            lines.append(f"          no Brian2 reference: {ln['reference_error']}")
    ag = report.get("agreement", {}).get("target_vs_cpu")
    if ag:
        lines.append("agreement " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ag.items()))
    lines.append(f"time      {report['timing_s']['total']:.1f} s total: "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in report["timing_s"].items() if k != "total"))
    return "\n".join(lines)
