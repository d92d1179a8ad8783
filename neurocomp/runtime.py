"""Host-in-the-loop runtime: open a compiled network on a target once, stream samples through it from
the host, read its outputs back, close.

::

    with NetworkRuntime(build.fixed, target="loihi-sim") as rt:     # or "loihi2" with lava-loihi
        for out in rt.stream(spikes):                               # [T, n_in] trains or [n_in] features
            print(out.index, out.prediction, out.latency_s)

The process graph is :class:`neurocomp.backends.lava_sim.LavaProcesses` — the one the verified
``loihi-sim`` batch target builds — between Lava's host channels: an io ``Injector`` the host
``send``s one input frame per step into, and one io ``Extractor`` per recorded population the host
``receive``s one spike frame per step from. On ``loihi2`` the chip adapters (``PyToNxAdapter`` /
``NxToPyAdapter``) sit between those channels and the neurocores. The network is compiled and its
processes started once, in :meth:`NetworkRuntime.open`; every sample is one ``RunSteps(T)`` of the
running network.

Sample timing is the batch target's, so every sample's spikes equal the golden ``cpu`` run's:
sample ``k`` of the stream occupies input steps ``[k*T, (k+1)*T)``; the population at depth ``d``
answers during ``[k*T + d, (k+1)*T + d)`` and is reset (``LIFReset``) as that window opens. So
sample ``k``'s output completes ``D`` (the depth) steps into sample ``k+1`` — :meth:`submit` returns
the samples that completed, :meth:`flush` runs the ``D`` trailing steps that finish the last one,
and a later :meth:`submit` first idles to the next window boundary to stay in phase.

Latency of a sample is measured on the host: from just before its run is issued to the receipt of
its last output frame — what a caller streaming back to back experiences.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional

import numpy as np

from neurocomp.backends.sim import RunResult, population_depths
from neurocomp.ir.encodings import encode
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import Network

RUNTIME_TARGETS = ("loihi-sim", "loihi2")


def host_io_models() -> dict:
    """Pin Lava's io Injector/Extractor to their ``LoihiProtocol`` Python models.

    Each has two models (Loihi-synchronous and async) and neither carries the ``fixed_pt`` tag the run
    configs select with, so without this map Lava's model selection refuses them.
    """
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.injector import Injector, PyLoihiInjectorModel
    return {Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel}


def run_config(target: str):
    """The Lava run configuration a runtime target runs with (``TargetError`` if it cannot run here)."""
    from neurocomp.backends.lava_sim import ensure_lava_runtime
    ensure_lava_runtime()
    if target == "loihi-sim":
        from lava.magma.core.run_configs import Loihi2SimCfg
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=host_io_models())
    if target == "loihi2":
        from neurocomp.backends.loihi2 import hw_run_config
        return hw_run_config(host_io_models())
    raise TargetError(f"--target {target!r}: the host-in-the-loop runtime runs on {', '.join(RUNTIME_TARGETS)}")


@dataclass
class SampleOutput:
    """One streamed sample's answer, decoded on the host.

    ``spikes[pop]``: the population's spike train for this sample, ``[T, n]`` bool (aligned to the
    sample's own window, as ``RunResult.spikes``); ``counts`` / ``prediction`` decode the output
    population (most spikes wins, lowest index on ties — as ``RunResult.predictions``).
    """

    index: int
    output: str
    spikes: Dict[str, np.ndarray]
    latency_s: float

    @property
    def counts(self) -> np.ndarray:
        return self.spikes[self.output].sum(axis=0).astype(np.int64)

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.counts))


@dataclass
class _Pending:
    index: int
    started: float
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    latency_s: float = float("nan")


class NetworkRuntime:
    """A fixed-point network opened on ``loihi-sim`` or ``loihi2``, fed sample by sample from the host.

    ``record``: populations whose spikes come back to the host (default: the output population).
    ``input_seed``: seeds host-side encoding when :meth:`stream` is given feature vectors (sample
    ``i`` is encoded exactly as ``encode(x, ..., seed, indices=[i])`` would batch-encode it).
    """

    def __init__(self, net: Network, target: str = "loihi-sim", record: Optional[List[str]] = None,
                 input_seed: int = 0):
        if not net.is_fixed_point:
            raise NeurocompError(f"network {net.name!r} is float; the {target} runtime runs fixed-point builds")
        self.run_cfg = run_config(target)  # first: an unavailable target fails before any Lava work
        self.net, self.target, self.input_seed = net, target, input_seed
        self.steps = net.timesteps
        self.record = list(record) if record is not None else [net.output]
        known = [p.name for p in net.populations]
        for name in self.record:
            if name not in known:
                raise NeurocompError(f"record: no population {name!r} in {net.name!r}; it has {', '.join(known)}")
        depths = population_depths(net)
        self.depths = {name: depths[name] for name in self.record}
        self.depth = max(self.depths.values())
        self._built = False
        self._started = False
        self._step = 0          # network steps run so far
        self._pending: Dict[int, _Pending] = {}  # window number -> sample in flight
        self._streamed = 0
        self.startup_s: Optional[float] = None

    # -- lifecycle ------------------------------------------------------------------------------
    def _build(self) -> None:
        from lava.magma.core.run_conditions import RunSteps
        from lava.proc.io.extractor import Extractor
        from lava.proc.io.injector import Injector

        from neurocomp.backends.lava_sim import LavaProcesses

        buffer = self.steps  # one run never sends/receives more than a window of frames
        self._RunSteps = RunSteps
        self.injector = Injector(shape=(self.net.input.size,), buffer_size=buffer)
        self.extractors: Dict[str, object] = {}
        input_port = self.injector.out_port
        to_chip = from_chip = None
        if self.target == "loihi2":
            from neurocomp.backends.loihi2 import chip_adapters
            to_chip, from_chip = chip_adapters()
            adapter = to_chip(shape=(self.net.input.size,))
            self.injector.out_port.connect(adapter.inp)
            input_port = adapter.out

        def extractor_port(name: str, size: int):
            ext = self.extractors[name] = Extractor(shape=(size,), buffer_size=buffer)
            if from_chip is None:
                return ext.in_port
            adapter = from_chip(shape=(size,))
            adapter.out.connect(ext.in_port)
            return adapter.inp

        self.processes = LavaProcesses(self.net, self.steps, input_port, extractor_port, self.record)
        self._built = True

    def open(self) -> "NetworkRuntime":
        """Compile the process graph and start Lava's runtime (its processes stay up until :meth:`close`)."""
        if self._started:
            return self
        t0 = time.perf_counter()
        if not self._built:
            self._build()
        self.injector.create_runtime(run_cfg=self.run_cfg)
        self._started = True
        self.startup_s = time.perf_counter() - t0
        return self

    def close(self) -> None:
        """Stop Lava's runtime. Samples still in flight are dropped: :meth:`flush` first to keep them."""
        if self._started:
            self._started = False
            from neurocomp.process import stop_lava
            stop_lava(self.injector)  # after Ctrl-C: end the workers, not Lava's stop protocol

    def __enter__(self) -> "NetworkRuntime":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- streaming -----------------------------------------------------------------------------
    def _advance(self, frames: np.ndarray) -> None:
        """Run ``len(frames)`` steps, sending one input frame and receiving one spike frame per
        recorded population per step; file received frames under the samples they belong to."""
        if not self._started:
            raise NeurocompError("runtime is not open (use 'with NetworkRuntime(...)' or call open())")
        n = len(frames)
        self.injector.run(condition=self._RunSteps(num_steps=n, blocking=False), run_cfg=self.run_cfg)
        for frame in frames:
            self.injector.send(frame)
        for i in range(n):
            step = self._step + i
            for name, ext in self.extractors.items():
                s = np.asarray(ext.receive()) != 0
                k, t = divmod(step - self.depths[name], self.steps)
                pending = self._pending.get(k) if step >= self.depths[name] else None
                if pending is not None:
                    pending.spikes[name][t] = s
            done = self._pending.get((step - self.depth) // self.steps) if step >= self.depth else None
            if done is not None and (step - self.depth) % self.steps == self.steps - 1:
                done.latency_s = time.perf_counter() - done.started  # last output frame is in
        self.injector.wait()
        self._step += n

    def _completed(self) -> List[SampleOutput]:
        out = []
        for k in sorted(self._pending):
            if (k + 1) * self.steps + self.depth > self._step:
                break
            p = self._pending.pop(k)
            out.append(SampleOutput(p.index, self.net.output, p.spikes, p.latency_s))
        return out

    def _as_spikes(self, sample: np.ndarray) -> np.ndarray:
        sample = np.asarray(sample)
        n_in = self.net.input.size
        if sample.shape == (n_in,):  # features: encode on the host, exactly as batch encoding would
            sample = encode(sample[None], self.net.input.encoding, self.steps, seed=self.input_seed,
                            indices=np.array([self._streamed]))[0]
        if sample.shape != (self.steps, n_in):
            raise NeurocompError(f"sample {self._streamed}: shape {sample.shape}; network {self.net.name!r} "
                                 f"takes spike trains ({self.steps}, {n_in}) or feature vectors ({n_in},)")
        return sample.astype(np.float64)

    def submit(self, sample: np.ndarray) -> List[SampleOutput]:
        """Stream one sample (spike train ``[T, n_in]`` or feature vector ``[n_in]``); returns the
        samples whose outputs completed meanwhile (usually the previous one)."""
        frames = self._as_spikes(sample)
        if self._step % self.steps:  # after a flush: idle to the next window boundary
            self._advance(np.zeros((self.steps - self._step % self.steps, self.net.input.size)))
        k = self._step // self.steps
        self._pending[k] = _Pending(self._streamed, time.perf_counter(),
                                    {name: np.zeros((self.steps, self.net.population(name).size), dtype=bool)
                                     for name in self.record})
        self._streamed += 1
        self._advance(frames)
        return self._completed()

    def flush(self) -> List[SampleOutput]:
        """Run the trailing steps that complete every sample in flight; returns those samples."""
        if self._pending:
            last = max(self._pending)
            remaining = (last + 1) * self.steps + self.depth - self._step
            zeros = np.zeros((self.steps, self.net.input.size))
            while remaining > 0:
                n = min(remaining, self.steps)
                self._advance(zeros[:n])
                remaining -= n
        return self._completed()

    def stream(self, samples: Iterable[np.ndarray]) -> Iterator[SampleOutput]:
        """Yield each sample's output, in order, as it completes; flushes after the last one."""
        for sample in samples:
            yield from self.submit(sample)
        yield from self.flush()

    def run_batch(self, spikes_in: np.ndarray, progress: Optional[Callable[[int, int], None]] = None) -> RunResult:
        """Stream ``spikes_in`` ``[samples, T, n_in]`` and gather a ``RunResult`` (as the batch targets return)."""
        spikes_in = np.asarray(spikes_in)
        n = len(spikes_in)
        trains = {name: np.zeros((n, self.steps, self.net.population(name).size), dtype=bool)
                  for name in self.record}
        first = self._streamed
        done = 0
        for out in self.stream(spikes_in):
            for name in self.record:
                trains[name][out.index - first] = out.spikes[name]
            done += 1
            if progress:
                progress(done, n)
        counts = {name: t.sum(axis=1).astype(np.int64) for name, t in trains.items()}
        return RunResult(target=self.target, output=self.net.output, counts=counts, spikes=trains)


# ------------------------------------------------------------------------- hardware in the loop
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
    from neurocomp.backends.sim import simulate

    fixed = build.fixed
    record = [p.name for p in fixed.populations] if record_all else None
    rt = NetworkRuntime(fixed, target=target, record=record, input_seed=build.info.get("input_seed", 0))
    spikes, labels = build.held_out(samples)
    n = len(labels)
    if n == 0:
        raise NeurocompError(f"{build.path}: the build's held-out split is empty")
    golden = simulate(fixed, spikes, record=True, target="cpu")
    float_pred = (simulate(build.float_net, spikes, target="float").predictions
                  if build.float_net is not None else None)

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
            stats["correct"] += out.prediction == int(labels[i])
            if diff is not None:
                mismatches.append({"sample": i, "label": int(labels[i]), "prediction": out.prediction,
                                   "cpu_prediction": int(golden.predictions[i]),
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
    pred = np.array([r.prediction for r in results], dtype=np.int64)
    lat = [r.latency_s for r in results]
    return {
        "target": target,
        "model": fixed.name,
        "build": str(build.path),
        "samples": done,
        "requested": n,
        "complete": not stopped and done == n,
        "agreement": stats["identical"] / done if done else None,
        "agreement_predictions_cpu": float(np.mean(pred == golden.predictions[idx])) if done else None,
        "agreement_predictions_float": (float(np.mean(pred == float_pred[idx]))
                                        if done and float_pred is not None else None),
        "accuracy": float(np.mean(pred == labels[idx])) if done else None,
        "accuracy_cpu": float(np.mean(golden.predictions[idx] == labels[idx])) if done else None,
        "accuracy_float": (float(np.mean(float_pred[idx] == labels[idx]))
                           if done and float_pred is not None else None),
        "latency_ms": {"median": _percentile_ms(lat, 50), "p95": _percentile_ms(lat, 95),
                       "max": round(max(lat) * 1000, 3) if lat else None},
        "throughput_per_s": round(done / wall, 3) if done and wall > 0 else None,
        "startup_s": round(rt.startup_s, 3) if rt.startup_s is not None else None,
        "stream_s": round(wall, 3),
        "timesteps": fixed.timesteps,
        "recorded": rt.record,
        "compared_with": "cpu target (neurocomp.backends.sim.simulate), same encoded input, every recorded spike",
        "mismatches": mismatches,
    }
