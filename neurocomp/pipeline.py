"""The compile pipeline as a library call, and the build directory it writes.

``compile_model("models/mnist_mlp/model.yaml", target="loihi-sim", out="build/mnist_mlp")``:

1. read the spec, import the trained network into the float IR (front end by ``source.kind``);
2. encode the dataset's held-out split (deterministic per sample);
3. quantise to Loihi fixed point, calibrated on training samples;
4. evaluate float and bit-accurate ``cpu`` on the whole held-out split, and the requested target on
   a subset (``verify.samples``; ``auto`` = what fits in ``verify.lava_seconds`` on Lava);
5. write ``network.npz`` (fixed point), ``network_float.npz``, ``build.json`` and ``report.json``
   into ``out`` — all at once (a temporary directory renamed into place).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from neurocomp.backends import TARGETS, run_on_target
from neurocomp.backends.sim import RunResult, simulate
from neurocomp.data import Split, load_split
from neurocomp.ir.encodings import encode
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.io import (atomic_directory, atomic_write_json, check_output_dir, read_build_info,
                          require_build_files)
from neurocomp.data import check_labels
from neurocomp.process import check_run_memory
from neurocomp.ir import LatencyEncoding, Network, RateEncoding, load_network, save_network
from neurocomp.quantize import quantize_network
from neurocomp.spec import ModelSpec, TorchSource, dataset_where, load_spec, spec_files
from neurocomp.targets import FixedPointFormat, load_descriptor

Progress = Optional[Callable[[str, int, int], None]]


from neurocomp.spec import input_encoding as spec_encoding


def import_model(spec: ModelSpec) -> Network:
    """Front-end dispatch: the spec's source -> float IR."""
    from neurocomp.data import load_arrays
    from neurocomp.frontends import import_network
    x, _ = load_arrays(spec.dataset.name, spec.base_dir)
    return import_network(spec, x.shape[1:]).network


@dataclass
class Build:
    """A compiled network as stored on disk."""

    path: Path
    fixed: Network
    float_net: Optional[Network]
    info: dict

    def held_out(self, samples: Optional[int] = None):
        """(spikes, labels) for the first ``samples`` held-out samples, encoded as at compile."""
        ds = self.info["dataset"]
        split = load_split(ds["name"], ds["holdout"], ds["seed"], Path(ds["base_dir"]))
        n = len(split.y_test) if samples is None else min(samples, len(split.y_test))
        check_run_memory(self.fixed, n, where=self.path, lower="--samples")
        spikes = encode(split.x_test[:n], self.fixed.input.encoding, self.fixed.timesteps,
                        seed=self.info["input_seed"])
        return spikes, split.y_test[:n]


def load_build(path) -> Build:
    path = require_build_files(path)
    info = read_build_info(path)
    float_path = path / "network_float.npz"
    return Build(path, load_network(path / "network.npz"),
                 load_network(float_path) if float_path.is_file() else None, info)


def _agreement(a: RunResult, b: RunResult, n: int) -> dict:
    """Spike-level agreement between two runs on their first ``n`` samples."""
    out = {"samples": n, "predictions_equal": float(np.mean(a.predictions[:n] == b.predictions[:n]))}
    if a.spikes and b.spikes:
        common = [k for k in a.spikes if k in b.spikes]
        out["identical_spike_trains"] = float(np.mean(
            [np.array_equal(a.spikes[k][i], b.spikes[k][i]) for i in range(n) for k in common]))
    return out


def auto_samples(fixed: Network, spikes: np.ndarray, seconds: float, target: str,
                 progress: Progress = None) -> tuple[int, RunResult, float]:
    """Run a small probe batch on ``target``, then size the rest to fill about ``seconds``."""
    probe_n = min(8, len(spikes))
    t0 = time.perf_counter()
    first = run_on_target(target, fixed, None, spikes[:probe_n], record=True)
    elapsed = time.perf_counter() - t0
    rate = probe_n / max(elapsed, 1e-6)
    # the probe includes Lava's start-up, so this under-estimates the rate: a safe choice
    extra = int(max(0.0, seconds - elapsed) * rate)
    return min(len(spikes), probe_n + extra), first, elapsed


def _concat(a: RunResult, b: RunResult) -> RunResult:
    return RunResult(
        target=a.target, output=a.output,
        counts={k: np.concatenate([a.counts[k], b.counts[k]]) for k in a.counts},
        spikes={k: np.concatenate([a.spikes[k], b.spikes[k]]) for k in a.spikes if k in b.spikes})


def compile_model(spec_path, target: Optional[str] = None, out=None, samples: Optional[int] = None,
                  progress: Progress = None, log: Callable[[str], None] = lambda s: None,
                  energy: bool = False, force: bool = False) -> dict:
    """Compile ``spec_path`` for ``target``; returns the report (also written to ``out/report.json``).
    ``energy``: add ``report["energy"]``, the summary of :func:`neurocomp.energy.estimate_energy`."""
    t_start = time.perf_counter()
    spec = load_spec(spec_path)
    target = target or spec.target
    if target not in TARGETS or target == "float":
        raise TargetError(f"--target {target!r}: allowed for compile: loihi-sim, cpu, loihi2")
    if target == "loihi2":  # fail in a second, not after importing and quantising
        from neurocomp.backends.loihi2 import require_loihi2
        require_loihi2()
    desc = load_descriptor(target)
    fmt = FixedPointFormat.from_descriptor(desc)
    out = Path(out) if out else Path("build") / spec.name
    check_output_dir(out, force=force, protect=spec_files(spec))  # fail now, not after the compile
    if spec.source.kind == "brian2":  # plastic/recurrent: learns and runs as one stream, its own path
        from neurocomp.learning_pipeline import compile_brian2
        report = compile_brian2(spec, target, out, fmt, samples=None if samples == "auto" else samples,
                                progress=progress, log=log, force=force)
        if energy:  # counted on the build just written (held-out stream, and learning), then folded in
            from neurocomp.stream_build import estimate_build_energy, load_stream_build
            report["energy"] = estimate_build_energy(load_stream_build(out), log=log).summary()
            atomic_write_json(out / "report.json", {k: v for k, v in report.items() if k != "out"})
        return report

    log(f"importing {spec.source.kind} model from {spec.path}")
    float_net = import_model(spec)
    split: Split = load_split(spec.dataset.name, spec.dataset.holdout, spec.dataset.seed, spec.base_dir,
                              where=spec.path)
    check_labels(np.concatenate([split.y_train, split.y_test]), float_net.population(float_net.output).size,
                 dataset_where(spec))
    check_run_memory(float_net, len(split.x_test) + min(spec.quantize.calibration_samples, len(split.x_train)),
                     where=spec.path, lower="input.timesteps or dataset.holdout")
    T, enc = spec.input.timesteps, spec_encoding(spec)
    test_spikes = encode(split.x_test, enc, T, seed=spec.input.seed)
    n_cal = min(spec.quantize.calibration_samples, len(split.x_train))
    cal_spikes = encode(split.x_train[:n_cal], enc, T, seed=spec.input.seed + 1)

    log(f"quantising for {target} (calibration on {n_cal} training samples)")
    fixed, layers = quantize_network(float_net, fmt, cal_spikes, headroom=spec.quantize.headroom,
                                     weight_bits=spec.quantize.weight_bits)
    t_quant = time.perf_counter() - t_start
    from neurocomp.mapping import mapping_report  # core map + design-rule checks; errors only for the chip
    mapping = mapping_report(fixed, desc, strict=(target == "loihi2"))
    if mapping and "error" in mapping:
        log(f"warning: would not fit the chip's cores: {mapping['error']}")

    float_res = simulate(float_net, test_spikes, target="float", record=False)
    # recorded: the target's spike trains are compared against it below
    cpu_res = simulate(fixed, test_spikes, target="cpu", record=True)
    y = split.y_test

    requested = samples if samples is not None else spec.verify.samples
    t0 = time.perf_counter()
    if target == "cpu":
        n = len(y) if requested == "auto" else min(int(requested), len(y))
        target_res = simulate(fixed, test_spikes[:n], target="cpu", record=True)
    elif requested == "auto":
        log(f"running on {target}: probe batch to size a ~{spec.verify.lava_seconds:.0f} s run")
        n, first, _ = auto_samples(fixed, test_spikes, spec.verify.lava_seconds, target)
        target_res = first
        if n > len(first.predictions):
            log(f"running {n - len(first.predictions)} more samples on {target}")
            rest = run_on_target(target, fixed, None, test_spikes[len(first.predictions):n], record=True,
                                 progress=(lambda d, t: progress(target, d, t)) if progress else None)
            target_res = _concat(first, rest)
    else:
        n = min(int(requested), len(y))
        log(f"running {n} samples on {target}")
        target_res = run_on_target(target, fixed, None, test_spikes[:n], record=True,
                                   progress=(lambda d, t: progress(target, d, t)) if progress else None)
    t_target = time.perf_counter() - t0

    report = {
        "model": spec.name,
        "target": target,
        "source": spec.source.kind,
        "timesteps": T,
        "encoding": spec.input.encoding,
        "layers": [dict(row.as_dict()) for row in layers],
        "accuracy": {
            "float": float_res.accuracy(y),
            "float_on_target_samples": float(np.mean(float_res.predictions[:n] == y[:n])),
            "cpu": cpu_res.accuracy(y),
            "target": target_res.accuracy(y[:n]),
            "samples": int(n),
            "held_out": int(len(y)),
        },
        "agreement": {
            "target_vs_cpu": _agreement(target_res, cpu_res, n),
            "float_vs_fixed_predictions": float(np.mean(float_res.predictions == cpu_res.predictions)),
        },
        "mapping": mapping,
        "timing_s": {"import_quantize": round(t_quant, 3), "target_run": round(t_target, 3),
                     "total": round(time.perf_counter() - t_start, 3)},
    }
    if energy:  # the summary only; `neurocomp energy DIR` writes the full energy.json / energy.html
        from neurocomp.energy import estimate_energy
        log("estimating energy (activity counted on the cpu target over the held-out split)")
        report["energy"] = estimate_energy(fixed, test_spikes, float_net=float_net).summary()
    info = {
        "spec": str(Path(spec_path).resolve()),
        "model": spec.name,
        "target": target,
        "input_seed": spec.input.seed,
        "dataset": {"name": spec.dataset.name, "holdout": spec.dataset.holdout, "seed": spec.dataset.seed,
                    "base_dir": str(spec.base_dir)},
    }
    with atomic_directory(out, force=force, protect=spec_files(spec)) as tmp:
        save_network(fixed, tmp / "network.npz")
        save_network(float_net, tmp / "network_float.npz")
        atomic_write_json(tmp / "build.json", info)
        report["timing_s"]["total"] = round(time.perf_counter() - t_start, 3)  # saving included
        atomic_write_json(tmp / "report.json", report)
    report["out"] = str(out)
    return report
