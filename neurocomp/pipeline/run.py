"""``neurocomp run``: a build's held-out samples on one target, read out as the compile did.

One path for every build: the build regenerates its evaluation samples (:meth:`Build.plan`), the
target runs the deployed network (learned weights frozen), the build's readout turns the output
counts into classes. A stream build plays its labelling samples first (the state the compile scored
from) unless ``warmup=False``.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import numpy as np

from neurocomp.backends import get_backend
from neurocomp.errors import TargetError
from neurocomp.pipeline.build import load_build
from neurocomp.pipeline.retry import retry_silent
from neurocomp.pipeline.samples import Samples
from neurocomp.pipeline.verify import FLOAT, allowed_targets, run_target, user_targets


def run_build(build_dir, target: str, samples: Optional[int] = None, record: bool = False, warmup: bool = True,
              progress: Optional[Callable[[int, int], None]] = None, runner: Optional[Callable] = None) -> tuple:
    """``(run.json document, trains for spikes.npz)`` of ``target`` on the build in ``build_dir``.
    ``runner(build, target, plan, progress) -> Result`` runs the samples (default: here, in one
    process; :mod:`neurocomp.pipeline.shard` splits them over Ray workers)."""
    if target not in user_targets():
        raise TargetError(f"--target {target!r}: allowed: {', '.join(user_targets())}")
    build = load_build(build_dir)
    allowed = allowed_targets(build)
    if build.learned and FLOAT in allowed:
        allowed.remove(FLOAT)
    if target not in allowed:
        why = "this build learned its weights on the target; " if build.learned and target == FLOAT else ""
        raise TargetError(f"--target {target!r}: {why}allowed: {', '.join(allowed)}")
    if target != FLOAT:
        why = get_backend(target).unavailable()
        if why:
            raise TargetError(why)
    stream = not build.schedule.is_batched
    plan = build.plan(samples, warmup=warmup and stream)
    t0 = time.perf_counter()
    res = (runner or run_target)(build, target, plan, progress)
    seconds = time.perf_counter() - t0
    net = build.fixed
    warm = len(plan.label)
    W = build.schedule.window
    readout = build.readout
    labels = plan.test.y
    counts, retried = res.counts[net.output], None
    if stream and build.retry_silent is not None:    # as the compile scored: silent samples shown again
        ev = plan.evaluation
        counts, retried = retry_silent(counts, ev.x, net.input.encoding, build.schedule.timesteps,
                                       int(build.info["input_seed"]), build.retry_silent,
                                       lambda enc, spikes, rows: _run_again(build, target, plan, runner, enc,
                                                                            Samples(spikes, ev.x[rows], ev.y[rows])))
    pred = None if labels is None else readout.predict(counts[warm:])
    per_layer = {}
    n = len(plan.test)
    for p in net.execution_order():
        # stream: over the scored part of the whole stream (the windows shift each population by its depth)
        total = int(res.stream[p.name][warm * W:].sum() if stream else res.counts[p.name].sum())
        per_layer[p.name] = {"neurons": p.size, "total": total, "per_sample": total / max(n, 1),
                             "rate_per_neuron_step": total / max(n * W * p.size, 1)}
    summary = {"build": str(build_dir), "target": target, "samples": int(n), "timesteps": int(W),
               "schedule": build.schedule.as_dict(),
               "accuracy": None if pred is None else float(np.mean(pred == labels)),
               "predictions": None if pred is None else pred.tolist(),
               "labels": None if labels is None else np.asarray(labels).tolist(),
               "readout": readout.describe(), "spikes_per_layer": per_layer, "seconds": round(seconds, 3)}
    if retried is not None:
        summary["retried"] = retried
    if stream:
        ln = build.report.get("learning", {})
        steps = len(plan.evaluation) * W
        summary.update(stream=True, mode="replay" if build.sizes.replay else "dataset",
                       learning="off (learned weights frozen)", input_timesteps=int(build.schedule.timesteps),
                       warmup_samples=int(warm), stream_steps=int(steps),
                       compile_accuracy=ln.get("accuracy") if not build.sizes.replay else None,
                       compile_test_samples=ln.get("test_samples"),
                       steps_per_second=round(steps / max(seconds, 1e-9), 1))
    else:
        summary["sample_steps_per_second"] = round(n * W / max(seconds, 1e-9), 1)
    trains = {}
    if record:
        if stream:
            trains = {name: np.asarray(s, dtype=bool) for name, s in res.stream.items()}
            from neurocomp.ir.schedule import to_stream
            trains["input"] = to_stream(plan.evaluation.spikes, build.schedule.rest)
            trains["window"] = np.array(W)
            trains["warmup_samples"] = np.array(warm)
        else:
            trains = {p.name: res.spikes[p.name] for p in net.execution_order() if p.name in res.spikes}
            trains["input"] = np.asarray(plan.test.spikes, dtype=bool)
        if labels is not None:
            trains["labels"] = np.asarray(labels)
    return summary, trains


def _run_again(build, target, plan, runner, encoding, samples):
    """Output counts of ``samples`` (silent ones encoded anew) played on their own, from rest."""
    again = plan.only(samples)
    if runner is None:
        res = run_target(build, target, again, None, encoding=encoding)
    else:
        res = runner(build, target, again, None)
    return res.counts[build.fixed.output]
