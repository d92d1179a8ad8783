"""``neurocomp hil``: stream a build's held-out samples host-in-the-loop through a target (Lava's io
channels on ``loihi-sim``, the chip on ``loihi2``), checking every answer against the golden ``cpu``
run — for either schedule (the runtime plays each sample's window: its input steps, then its rest
steps on the stream schedule; the learned network frozen)."""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional

import numpy as np

from neurocomp.backends import get_backend
from neurocomp.backends.lava_runtime import NetworkRuntime, SampleOutput
from neurocomp.errors import NeurocompError


def _first_difference(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray], order: List[str]) -> Optional[dict]:
    """Where a streamed sample first departs from the golden run: population, step, neurons."""
    for name in order:
        diff = got[name] != want[name]
        if diff.any():
            step = int(np.flatnonzero(diff.any(axis=1))[0])
            return {"population": name, "step": step,
                    "neurons": np.flatnonzero(diff[step]).tolist()[:16]}
    return None


def _percentile_ms(latencies: List[float], q: float) -> Optional[float]:
    return round(float(np.percentile(latencies, q)) * 1000, 3) if latencies else None


def hardware_in_the_loop(build, target: str = "loihi-sim", samples: Optional[int] = None,
                         record_all: bool = False,
                         on_sample: Optional[Callable[[SampleOutput, dict], None]] = None,
                         should_stop: Optional[Callable[[], bool]] = None,
                         on_open: Optional[Callable[[int], None]] = None) -> dict:
    """Stream ``samples`` held-out samples of a build through ``target`` and check every answer.

    Each streamed sample is compared spike for spike with the golden run of the same encoded input on
    the ``cpu`` target (neurocomp's bit-accurate simulator) and, by prediction, with the float model.
    ``should_stop()`` is polled after every sample: when it turns true the stream is flushed and the
    report covers the samples done so far (``"complete": false``). ``on_sample(out, stats)`` sees
    every finished sample with the running statistics (for progress displays).

    Returns the ``hil.json`` document: target, samples, agreement (fraction of samples whose recorded
    spike trains equal the cpu run's exactly), accuracy, latency_ms {median, p95}, throughput_per_s,
    mismatches (where each differing sample first departs from the golden run), and context.
    """
    fixed = build.frozen
    graded = [p.name for p in fixed.projections if getattr(p.synapse, "num_message_bits", 0)]
    if graded:   # Lava's io Injector sends float64 frames; its graded Dense then shifts a float (TypeError)
        raise NeurocompError(f"{build.path}: graded (current) input ({', '.join(graded)}) cannot go through "
                             "Lava's io Injector, whose channel is float; run the build with "
                             "'neurocomp run --target loihi-sim' (a RingBuffer of int32 values) instead")
    record = [p.name for p in fixed.populations] if record_all else None
    schedule = build.schedule
    rt = NetworkRuntime(fixed, target=target, record=record, input_seed=build.info.get("input_seed", 0),
                        schedule=schedule)
    plan = build.plan(samples, warmup=False)
    spikes, labels = plan.evaluation.spikes, plan.evaluation.y
    n = len(spikes)
    if n == 0:
        raise NeurocompError(f"{build.path}: the build's held-out split is empty")
    if labels is None:
        labels = np.full(n, -1)
    golden = get_backend("cpu").run(fixed, spikes, schedule, record=True)
    readout = build.readout
    golden_pred = readout.predict(golden.counts[fixed.output])
    float_pred = None
    if not build.learned and build.float_net is not None:
        float_pred = readout.predict(get_backend("float").run(build.float_net, spikes, schedule).counts[fixed.output])

    results: List[SampleOutput] = []
    mismatches: List[dict] = []
    stats = {"done": 0, "identical": 0, "correct": 0}

    def check(outs: List[SampleOutput]) -> None:
        for out in outs:
            i = out.index
            want = {name: golden.spikes[name][i] for name in rt.record}
            diff = _first_difference(out.spikes, want, rt.record)
            results.append(out)
            stats["done"] += 1
            stats["identical"] += diff is None
            prediction = int(readout.predict(out.counts[None])[0])
            stats["correct"] += prediction == int(labels[i])
            if diff is not None:
                mismatches.append({"sample": i, "label": int(labels[i]), "prediction": prediction,
                                   "cpu_prediction": int(golden_pred[i]),
                                   "float_prediction": None if float_pred is None else int(float_pred[i]),
                                   "first_difference": diff})
            if on_sample:
                on_sample(out, stats)

    stopped = False
    with rt:
        if on_open:
            on_open(n)
        t0 = time.perf_counter()
        for i in range(n):
            check(rt.submit(spikes[i]))
            if should_stop and should_stop() and i + 1 < n:
                stopped = True
                break
        check(rt.flush())
        wall = time.perf_counter() - t0

    done = len(results)
    idx = np.array([r.index for r in results], dtype=np.int64)
    pred = np.array([int(readout.predict(r.counts[None])[0]) for r in results], dtype=np.int64)
    lat = [r.latency_s for r in results]
    return {
        "target": target,
        "model": fixed.name,
        "build": str(build.path),
        "samples": done,
        "requested": n,
        "complete": not stopped and done == n,
        "agreement": stats["identical"] / done if done else None,
        "agreement_predictions_cpu": float(np.mean(pred == golden_pred[idx])) if done else None,
        "agreement_predictions_float": (float(np.mean(pred == float_pred[idx]))
                                        if done and float_pred is not None else None),
        "accuracy": float(np.mean(pred == labels[idx])) if done else None,
        "accuracy_cpu": float(np.mean(golden_pred[idx] == labels[idx])) if done else None,
        "accuracy_float": (float(np.mean(float_pred[idx] == labels[idx]))
                           if done and float_pred is not None else None),
        "latency_ms": {"median": _percentile_ms(lat, 50), "p95": _percentile_ms(lat, 95),
                       "max": round(max(lat) * 1000, 3) if lat else None},
        "throughput_per_s": round(done / wall, 3) if done and wall > 0 else None,
        "startup_s": round(rt.startup_s, 3) if rt.startup_s is not None else None,
        "stream_s": round(wall, 3),
        "timesteps": int(schedule.window),
        "schedule": schedule.as_dict(),
        "recorded": rt.record,
        "compared_with": "cpu target (neurocomp's bit-accurate simulator), same encoded input, every recorded spike",
        "mismatches": mismatches,
    }
