"""Using a compiled Brian2 build again: ``neurocomp run``, ``verify`` and ``energy`` on *stream* builds.

A Brian2 model is plastic and/or recurrent, so :mod:`neurocomp.learning_pipeline` compiled it as one
continuous stream of steps and left a build whose ``build.json`` says ``"stream": true``: the learned
network (``network.npz``, rules kept), the network before learning (``network_initial.npz``), the float
IR and ``report.json`` (which holds everything needed to rebuild the compile's streams: steps per
sample, the sample counts, each population's scale and the readout's class assignments).

Here the learned network runs *frozen* (learning off, :func:`neurocomp.backends.learning.freeze`) on the
compile's evaluation stream, read out as the compile read it:

* **dataset** builds: the labelling samples (the unsupervised D&C readout labelled its neurons on
  them) then the held-out samples, one stream, ``input.timesteps`` steps of input and ``rest`` silent
  steps each. Nothing is reset between samples, so a sample's spikes depend on the ones before it:
  replaying the labelling samples first (``warmup=True``) puts every held-out sample in exactly the
  state the compile evaluated it in, and the accuracy is the compile's to the sample. Without the
  warm-up the network starts at rest (a few samples answer differently).
  Readout: the compile's per-neuron class assignments (``report.json["learning"]["assignments"]``,
  Diehl & Cook), or, when there are none (non-plastic or supervised readouts), output neuron ``j`` =
  class ``j``; counts per sample with :func:`~neurocomp.learning_pipeline.window_counts`.
* **replay** builds (``models/stdp_pair``): the script's own input spikes (read again from the Brian2
  script) and 20 silent steps; no classes, no accuracy.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

from neurocomp.backends.learning import StreamResult, freeze
from neurocomp.errors import NeurocompError
from neurocomp.ir import Network, load_network
from neurocomp.learning_pipeline import (LEARNING_TARGETS, assign_labels, classify, held_out_spikes, input_delay,
                                         run_on_stream_target, to_stream, training_spikes, window_counts)

REPLAY_TAIL = 20   # silent steps the compile appends to a replayed script stream


def is_stream_build(path) -> bool:
    """True for a build directory written by the Brian2 (stream) compile."""
    try:
        doc = json.loads((Path(path) / "build.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and bool(doc.get("stream"))  # anything else: load_build names the problem


@dataclass
class StreamBuild:
    """A stream build as stored on disk (see the module docstring)."""

    path: Path
    learned: Network       # learned weights, rules kept (it could go on learning)
    info: dict             # build.json
    report: dict           # report.json

    @property
    def mode(self) -> str:
        return self.report.get("mode", "dataset")

    @property
    def frozen(self) -> Network:
        """The learned network with learning switched off: what run, verify and energy deploy."""
        return freeze(self.learned, {p.name: p.synapse.weight for p in self.learned.projections
                                     if p.plasticity is not None})

    @property
    def scales(self) -> Dict[str, float]:
        """Per population, the quantisation scale S (integer = float x S)."""
        return {row["name"]: float(row["scale"]) for row in self.report.get("layers", [])}

    def learned_float_weights(self) -> Dict[str, np.ndarray]:
        """Each plastic projection's learned integer weights in float IR units (``w * 2**exp / S``),
        as the compile converts them (``learning_pipeline._fixed_to_float``)."""
        scales = self.scales
        return {p.name: p.synapse.weight * 2.0 ** p.synapse.weight_exp / scales[p.target]
                for p in self.learned.projections if p.plasticity is not None}


def load_stream_build(path) -> StreamBuild:
    from neurocomp.io import STREAM_INFO_FIELDS, check_fields, read_build_info, read_json, require_build_files
    path = require_build_files(path, ("network.npz", "build.json", "report.json"))
    info = read_build_info(path, STREAM_INFO_FIELDS)
    if not info.get("stream"):
        raise NeurocompError(f"{path}: not a stream (Brian2) build; build.json has no \"stream\": true")
    report = read_json(path / "report.json", dict, "compile report (report.json)")
    check_fields(report, {"timesteps": int, "learning": dict}, path / "report.json")
    if report.get("mode", "dataset") == "dataset":
        check_fields(report["learning"], {"steps_per_sample": int, "samples": int, "label_samples": int},
                     path / "report.json", prefix="learning.")
    return StreamBuild(path, load_network(path / "network.npz"), info, report)


@dataclass
class EvalStream:
    """One evaluation stream and how to cut it into samples."""

    stream: np.ndarray                 # [steps, n_in] bool
    window: int                        # steps per sample (input + rest)
    delay: int                         # input -> output population, steps (sample k owns k*window+delay...)
    warmup: int                        # leading samples that are replayed but not scored
    samples: int                       # scored samples after the warm-up
    labels: Optional[np.ndarray]       # classes of the scored samples (None: replay, no classes)
    warmup_labels: Optional[np.ndarray]
    n_classes: int = 0

    @property
    def scored_from(self) -> int:
        """First stream step of the scored samples."""
        return self.warmup * self.window


def _load_split(ds: dict):
    from neurocomp.data import load_split
    return load_split(ds["name"], ds["holdout"], ds["seed"], Path(ds["base_dir"]), classes=ds.get("classes"))


def _brian2_model(build: StreamBuild):
    """The user's Brian2 model, loaded again from the spec the build was compiled from."""
    from neurocomp.frontends.brian2 import load_brian2
    from neurocomp.spec import load_spec

    spec_path = Path(build.info["spec"])
    if not spec_path.is_file():
        raise NeurocompError(f"{build.path}/build.json: spec {spec_path} no longer exists (needed to load the "
                             "Brian2 script again)")
    model = load_brian2(load_spec(spec_path))
    sizes = {p.name: p.size for p in build.learned.populations}
    if {p.name: p.size for p in model.network.populations} != sizes:
        raise NeurocompError(f"{spec_path}: the Brian2 script no longer builds the compiled network "
                             f"(populations {sizes}); compile again")
    return model


def evaluation_stream(build: StreamBuild, samples: Optional[int] = None, warmup: bool = True) -> EvalStream:
    """The compile's evaluation stream for ``build``: ``samples`` held-out samples (default: as many as
    the compile scored), after the labelling samples when ``warmup`` (dataset builds)."""
    net = build.learned
    delay = input_delay(net, net.output)
    if build.mode == "replay":
        script = _brian2_model(build).script_stream
        stream = np.concatenate([script, np.zeros((REPLAY_TAIL, net.input.size), dtype=bool)])
        return EvalStream(stream, len(stream), delay, 0, 1, None, None)

    ln = build.report["learning"]
    T = int(build.report["timesteps"])
    window = int(ln["steps_per_sample"])
    n_train, n_label = int(ln["samples"]), int(ln["label_samples"])
    split = _load_split(build.info["dataset"])
    n_classes = split.n_classes
    n_test = min(samples or ln.get("test_samples") or len(split.x_test), len(split.x_test))
    enc, seed = net.input.encoding, int(build.info["input_seed"])
    parts, warm = [], (n_label if warmup else 0)
    if warm:
        parts.append(training_spikes(split, n_train, n_train + warm, enc, T, seed))
    parts.append(held_out_spikes(split, n_test, enc, T, seed))
    stream = to_stream(np.concatenate(parts), window - T)
    return EvalStream(stream, window, delay, warm, n_test, split.y_test[:n_test],
                      split.y_train[n_train:n_train + warm], n_classes)


def predict(build: StreamBuild, ev: EvalStream, output_trains: np.ndarray) -> tuple:
    """``(classes of the scored samples, readout name)`` from the output population's trains
    ``[steps, n]`` read out as the compile did; ``(None, None)`` for replay builds."""
    if ev.labels is None:
        return None, None
    counts = window_counts(output_trains, ev.warmup + ev.samples, ev.window, ev.delay)
    ln = build.report["learning"]
    if "assignments" in ln:
        assignments = ln["assignments"]
    elif build.learned_float_weights() and not ln.get("supervised"):
        # builds from before the assignments were saved: label again on the warm-up (what compile did)
        if not ev.warmup:
            raise NeurocompError(f"{build.path}/report.json: no learning.assignments (compiled by an older "
                                 "neurocomp); run with the warm-up or compile again")
        assignments = assign_labels(counts[:ev.warmup], ev.warmup_labels, ev.n_classes)
    else:
        assignments = None
    scored = counts[ev.warmup:]
    if assignments is None:
        return np.argmax(scored, axis=1), "output neuron j = class j (most spikes)"
    return (classify(scored, np.asarray(assignments), ev.n_classes),
            "per-neuron class assignments (Diehl & Cook)")


def run_targets(build: StreamBuild, ev: EvalStream, target: str,
                progress: Optional[Callable[[int, int], None]] = None) -> StreamResult:
    """The frozen network on ``ev`` on ``cpu`` or ``loihi-sim``, every population recorded."""
    return run_on_stream_target(target, build.frozen, ev.stream, learn=False, record=None, progress=progress)


def spikes_per_population(net: Network, trains: Dict[str, np.ndarray], ev: EvalStream) -> dict:
    """Spike totals per population over the scored part of the stream."""
    out = {}
    steps = len(ev.stream) - ev.scored_from
    for p in net.populations:
        total = int(trains[p.name][ev.scored_from:].sum())
        out[p.name] = {"neurons": p.size, "total": total, "per_sample": total / max(ev.samples, 1),
                       "rate_per_neuron_step": total / max(steps * p.size, 1)}
    return out


def run_stream_build(build_dir, target: str, samples: Optional[int] = None, record: bool = False,
                     warmup: bool = True, progress: Optional[Callable[[int, int], None]] = None) -> tuple:
    """``neurocomp run`` on a stream build: ``(run.json document, trains for spikes.npz)``."""
    from neurocomp.errors import TargetError

    if target not in LEARNING_TARGETS:
        raise TargetError(f"--target {target!r}: a Brian2 (stream) build runs on {', '.join(LEARNING_TARGETS)}")
    build = load_stream_build(build_dir)
    ev = evaluation_stream(build, samples, warmup=warmup)
    t0 = time.perf_counter()
    res = run_targets(build, ev, target, progress)
    seconds = time.perf_counter() - t0
    net = build.learned
    pred, readout = predict(build, ev, res.spikes[net.output])
    compile_acc = build.report.get("learning", {}).get("accuracy")
    summary = {
        "build": str(build_dir),
        "target": target,
        "stream": True,
        "mode": build.mode,
        "learning": "off (learned weights frozen)",
        "samples": int(ev.samples),
        "timesteps": int(ev.window),
        "input_timesteps": int(build.report["timesteps"]),
        "warmup_samples": int(ev.warmup),
        "stream_steps": int(len(ev.stream)),
        "readout": readout,
        "accuracy": None if pred is None else float(np.mean(pred == ev.labels)),
        "compile_accuracy": compile_acc if build.mode == "dataset" else None,
        "compile_test_samples": build.report.get("learning", {}).get("test_samples"),
        "predictions": None if pred is None else pred.tolist(),
        "labels": None if ev.labels is None else np.asarray(ev.labels).tolist(),
        "spikes_per_layer": spikes_per_population(net, res.spikes, ev),
        "seconds": round(seconds, 3),
        "steps_per_second": round(len(ev.stream) / max(seconds, 1e-9), 1),
    }
    trains = {}
    if record:
        trains = {name: np.asarray(s, dtype=bool) for name, s in res.spikes.items()}
        trains["input"] = ev.stream
        trains["window"] = np.array(ev.window)
        trains["warmup_samples"] = np.array(ev.warmup)
        if ev.labels is not None:
            trains["labels"] = np.asarray(ev.labels)
    return summary, trains


def brian2_frozen_run(build: StreamBuild, ev: EvalStream) -> Dict[str, np.ndarray]:
    """The user's Brian2 network itself (float dynamics) on ``ev``, its plastic synapses set to the
    weights the target learned (in float units, exactly representable: 8-bit integers x 2**exp / S)
    and learning off: ``{group: [steps, n] bool}``. What differs from the target is then only the
    fixed-point neuron and static-synapse arithmetic, not what was learned.

    Raises :class:`NeurocompError` when Brian2 cannot replay the stream (a PoissonGroup input)."""
    model = _brian2_model(build)
    learned = build.learned_float_weights()
    for name, w in learned.items():
        m, syn = model.synapses[name], model.synapse_objects[name]
        i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
        syn.variables[m.weight_var].set_value(w[j, i] / m.gain)   # IR weight = Brian2 weight x gain
    got = model.weights()
    for name, w in learned.items():   # the round trip must be exact up to float rounding
        if not np.allclose(got[name], w, rtol=1e-9, atol=1e-12 * max(np.abs(w).max(), 1.0)):
            raise NeurocompError(f"Synapses {name!r}: could not set the learned weights in Brian2")
    return model.run_stream(ev.stream, learn=False)


def training_stream(build: StreamBuild, samples: Optional[int] = None) -> Optional[np.ndarray]:
    """The compile's training stream (its first ``samples`` digits), or ``None`` when the build did not
    learn from a dataset (replay builds, non-plastic networks)."""
    ln = build.report.get("learning") or {}
    n_train = int(ln.get("samples") or 0)
    if build.mode != "dataset" or n_train < 1:
        return None
    n = min(samples or n_train, n_train)
    T = int(build.report["timesteps"])
    split = _load_split(build.info["dataset"])
    spikes = training_spikes(split, 0, n, build.learned.input.encoding, T, int(build.info["input_seed"]))
    return to_stream(spikes, int(ln["steps_per_sample"]) - T)


def estimate_build_energy(build: StreamBuild, samples: Optional[int] = None, devices=None, baseline: str = "gpu",
                          placement=None, measure: bool = True, learning: bool = True,
                          log: Callable[[str], None] = lambda s: None):
    """:func:`neurocomp.energy.estimate_stream_energy` for a stream build: inference on the held-out
    stream (from rest, learned weights frozen) and, when the build learned from a dataset and
    ``learning``, learning on the chip over its training stream (the network before learning, rules on)."""
    from neurocomp.energy import DEFAULT_DEVICES, estimate_stream_energy

    ev = evaluation_stream(build, samples, warmup=False)
    float_path = build.path / "network_float.npz"
    train, initial, note = None, None, None
    if learning:
        train = training_stream(build, samples)
        initial_path = build.path / "network_initial.npz"
        if train is not None and initial_path.is_file():
            initial = load_network(initial_path)
            if any(getattr(p.plasticity, "third_factor", False) for p in initial.projections):
                train, note = None, "learning energy not counted: a third-factor (teacher) rule needs its teacher stream"
        else:
            train = None
    log(f"counting activity on {ev.samples} held-out samples as one stream of {len(ev.stream)} steps (cpu)"
        + (f", and learning over {len(train) // ev.window} training samples" if train is not None else ""))
    report = estimate_stream_energy(build.frozen, ev.stream, ev.window, devices=devices or DEFAULT_DEVICES,
                                    baseline=baseline,
                                    float_net=load_network(float_path) if float_path.is_file() else None,
                                    placement=placement, measure=measure, learning_stream=train,
                                    learning_net=initial)
    if note:
        report.data["learning"] = {"notes": [note]}
    return report
