"""Host-in-the-loop runtime: open a compiled network on a target once, stream samples through it from
the host, read its outputs back, close.

::

    with NetworkRuntime(build.fixed, target="loihi-sim") as rt:     # or "loihi2" with lava-loihi
        for out in rt.stream(spikes):                               # [T, n_in] trains or [n_in] features
            print(out.index, out.prediction, out.latency_s)

The process graph is :class:`neurocomp.backends.lava.LavaProcesses` — the one the verified
``loihi-sim`` target builds — between Lava's host channels: an io ``Injector`` the host
``send``s one input frame per step into, and one io ``Extractor`` per recorded population the host
``receive``s one spike frame per step from. On ``loihi2`` the chip adapters (``PyToNxAdapter`` /
``NxToPyAdapter``) sit between those channels and the neurocores. The network is compiled and its
processes started once, in :meth:`NetworkRuntime.open`; every sample is one ``RunSteps(T)`` of the
running network.

Sample timing is the build's schedule, so every sample's spikes equal the golden ``cpu`` run's:
sample ``k`` occupies input steps ``[k*W, (k+1)*W)`` (``W`` = the schedule's window: ``T`` input
steps, then its rest steps in the stream schedule); the population at depth ``d`` answers during
``[k*W + d, (k+1)*W + d)`` (and, batched, is reset by ``LIFReset`` as that window opens). So
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

from neurocomp.backends.base import Result
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import Network
from neurocomp.ir.encodings import encode
from neurocomp.ir.schedule import BATCHED, Schedule

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
    from neurocomp.backends.lava import ensure_lava_runtime
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

    ``spikes[pop]``: the population's spike train for this sample, ``[W, n]`` bool (aligned to the
    sample's own window, as ``Result.spikes``); ``counts`` / ``prediction`` decode the output
    population (most spikes wins, lowest index on ties — as ``Result.predictions``).
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
                 input_seed: int = 0, schedule: Optional[Schedule] = None):
        if not net.is_fixed_point:
            raise NeurocompError(f"network {net.name!r} is float; the {target} runtime runs fixed-point builds")
        self.run_cfg = run_config(target)  # first: an unavailable target fails before any Lava work
        self.net, self.target, self.input_seed = net, target, input_seed
        self.schedule = schedule or Schedule(BATCHED, net.timesteps)
        self.steps = self.schedule.window          # steps per sample
        self.timesteps = self.schedule.timesteps   # of which input
        self.record = list(record) if record is not None else [net.output]
        known = [p.name for p in net.populations]
        for name in self.record:
            if name not in known:
                raise NeurocompError(f"record: no population {name!r} in {net.name!r}; it has {', '.join(known)}")
        depths = net.depths()
        self.depths = {name: depths.get(name, 0) for name in self.record}
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

        from neurocomp.backends.lava import LavaProcesses

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

        self.processes = LavaProcesses(self.net, self.schedule, input_port, extractor_port, self.record)
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
            sample = encode(sample[None], self.net.input.encoding, self.timesteps, seed=self.input_seed,
                            indices=np.array([self._streamed]))[0]
        if sample.shape != (self.timesteps, n_in):
            raise NeurocompError(f"sample {self._streamed}: shape {sample.shape}; network {self.net.name!r} "
                                 f"takes spike trains ({self.timesteps}, {n_in}) or feature vectors ({n_in},)")
        frames = np.zeros((self.steps, n_in))
        frames[: self.timesteps] = sample
        return frames

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

    def run_batch(self, spikes_in: np.ndarray, progress: Optional[Callable[[int, int], None]] = None) -> Result:
        """Stream ``spikes_in`` ``[samples, T, n_in]`` and gather a ``Result`` (as the other targets return)."""
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
        return Result(target=self.target, output=self.net.output, schedule=self.schedule, counts=counts,
                      spikes=trains)
