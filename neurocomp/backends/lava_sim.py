"""The ``loihi-sim`` target: real Lava processes run by Lava's runtime with
``Loihi2SimCfg(select_tag="fixed_pt")`` — the bit-accurate ``PyLifModelBitAcc``/``PyDenseModelBitAcc``
process models.

The network is built once and all samples run back to back in a single Lava run:

* one ``io.source.RingBuffer`` plays the encoded input; sample ``k`` occupies steps
  ``[k*T, (k+1)*T)`` (``T`` = timesteps);
* each population is a ``LIFReset`` whose reset interval is ``T`` and whose reset offset is staggered
  by its depth ``d`` (``(1 + d) % T``): Lava's ``Dense`` delays spikes by one step, so depth ``d`` sees
  sample ``k`` during steps ``[k*T + d, (k+1)*T + d)`` and is reset exactly when that window opens.
  No state or buffered activation leaks between samples — each sample runs as if alone;
* ``io.sink.RingBuffer``s record the populations' spikes, read back after the run.

The process graph itself (:class:`LavaProcesses`) takes pluggable input and output taps, so the
host-in-the-loop runtime (:mod:`neurocomp.runtime`, io ``Injector``/``Extractor``) and the ``loihi2``
target (``Loihi2HwCfg``, when Intel's lava-loihi is installed) reuse it with the same sample timing.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from neurocomp.backends.sim import RunResult, layer_order, population_depths
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import LoihiDense, LoihiLIF, Network


LAVA_MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"


def ensure_lava_runtime() -> None:
    """Import Lava's message infrastructure safely, whatever ran before us in this process.

    That module calls ``multiprocessing.set_start_method('fork')`` on import, which raises once
    anything has fixed the start method (a tqdm progress bar's lock, a Brian2 run, numba). Clearing
    the choice first lets Lava make it; objects created under the old context keep working."""
    import multiprocessing
    import sys

    if LAVA_MP_MODULE in sys.modules:
        return
    if multiprocessing.get_start_method(allow_none=True) is not None:
        multiprocessing.set_start_method(None, force=True)
    import importlib
    importlib.import_module(LAVA_MP_MODULE)


def _lava():
    ensure_lava_runtime()
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIFReset
        from lava.utils.weightutils import SignMode
    except ImportError as e:  # pragma: no cover - lava-nc is a hard dependency
        raise TargetError(f"target loihi-sim needs lava-nc 0.10 (pip install lava-nc==0.10.0): {e}") from None
    return dict(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Dense=Dense, Sink=Sink, Source=Source,
                LIFReset=LIFReset, SignMode=SignMode)


def run_in_chunks(process, total_steps: int, run_cfg, chunk: int,
                  progress: Optional[Callable[[int, int], None]] = None) -> None:
    """``process.run`` for ``total_steps`` in pieces of ``chunk`` steps, reporting ``(done, total)``
    after each so long Lava runs can show progress. The caller stops the runtime."""
    from lava.magma.core.run_conditions import RunSteps
    done = 0
    while done < total_steps:
        n = min(chunk, total_steps - done)
        process.run(condition=RunSteps(num_steps=n), run_cfg=run_cfg)
        done += n
        if progress:
            progress(done, total_steps)


class LavaProcesses:
    """The network's Lava processes — ``LIFReset`` per population, ``Dense`` per projection — wired
    between a pluggable input and pluggable output taps.

    ``input_port`` is the OutPort that plays the input spikes (a ``RingBuffer`` source here, an io
    ``Injector`` in :mod:`neurocomp.runtime`); ``output_port(name, size)`` returns the InPort that
    receives population ``name``'s spikes (a ``RingBuffer`` sink or an ``Extractor``). The sample
    timing (reset interval ``steps``, offsets staggered by depth) lives only here.
    """

    def __init__(self, net: Network, steps: int, input_port, output_port: Callable[[str, int], object],
                 record: Optional[list] = None):
        if not net.is_fixed_point:
            raise NeurocompError(f"network {net.name!r} is float; quantise it before running on loihi-sim")
        L = _lava()
        self.depths = population_depths(net)
        self.lifs, self.denses = {}, {}
        for pop in layer_order(net):
            nrn = pop.neuron
            assert isinstance(nrn, LoihiLIF)
            self.lifs[pop.name] = L["LIFReset"](
                shape=(pop.size,), du=nrn.du, dv=nrn.dv, vth=nrn.vth,
                bias_mant=nrn.bias_mant.astype(np.int32), bias_exp=nrn.bias_exp,
                reset_interval=steps, reset_offset=(1 + self.depths[pop.name]) % steps, name=pop.name)
        for proj in net.projections:
            syn = proj.synapse
            assert isinstance(syn, LoihiDense)
            dense = L["Dense"](weights=syn.weight.astype(np.int32), num_weight_bits=syn.num_weight_bits,
                               weight_exp=syn.weight_exp, sign_mode=L["SignMode"](syn.sign_mode),
                               name=proj.name)
            src = input_port if proj.source == net.input.name else self.lifs[proj.source].s_out
            src.connect(dense.s_in)
            dense.a_out.connect(self.lifs[proj.target].a_in)
            self.denses[proj.name] = dense
        self.recorded = list(record if record is not None else [net.output])
        for name in self.recorded:
            self.lifs[name].s_out.connect(output_port(name, net.population(name).size))


class LavaNetwork:
    """Lava processes for a fixed-point network, laid out for ``n_samples`` back-to-back samples."""

    def __init__(self, net: Network, spikes_in: np.ndarray, record: Optional[list] = None,
                 probe_states: bool = False):
        if not net.is_fixed_point:
            raise NeurocompError(f"network {net.name!r} is float; quantise it before running on loihi-sim")
        L = _lava()
        self.net = net
        n_samples, steps, n_in = spikes_in.shape
        self.n_samples, self.steps = n_samples, steps
        self.depths = population_depths(net)
        self.total_steps = n_samples * steps + max(self.depths.values())
        data = np.zeros((n_in, self.total_steps), dtype=np.int32)
        data[:, : n_samples * steps] = spikes_in.reshape(n_samples * steps, n_in).T
        self.source = L["Source"](data=data)
        self.sinks = {}

        def ring_buffer_sink(name: str, size: int):
            self.sinks[name] = L["Sink"](shape=(size,), buffer=self.total_steps)
            return self.sinks[name].a_in

        procs = LavaProcesses(net, steps, self.source.s_out, ring_buffer_sink, record)
        self.lifs, self.denses = procs.lifs, procs.denses
        self.monitors = {}
        if probe_states:  # Lava Monitors read the u/v Vars after every step (slow: tests and verify only)
            from lava.proc.monitor.process import Monitor
            for name, lif in self.lifs.items():
                for var in ("u", "v"):
                    mon = Monitor()
                    mon.probe(getattr(lif, var), self.total_steps)
                    self.monitors[(name, var)] = mon
        self._L = L

    def _aligned(self, name: str, data: np.ndarray) -> np.ndarray:
        """[n, total_steps] -> [samples, T, n], each population's window shifted by its depth."""
        d = self.depths[name]
        return data[:, d : d + self.n_samples * self.steps].T.reshape(self.n_samples, self.steps, -1)

    def run(self, run_cfg=None, progress: Optional[Callable[[int, int], None]] = None, chunk: int = 0) -> RunResult:
        """Run all steps (in chunks, to report progress) and return per-sample spike counts/trains."""
        L = self._L
        cfg = run_cfg or L["Loihi2SimCfg"](select_tag="fixed_pt")
        chunk = chunk or max(self.steps * 10, 100)
        try:
            run_in_chunks(self.source, self.total_steps, cfg, chunk, progress)
            raw = {name: sink.data.get().astype(bool) for name, sink in self.sinks.items()}
            probed = {}
            for (name, var), mon in self.monitors.items():
                data = mon.get_data()[name][var]  # [total_steps, n]
                probed.setdefault(name, {})[var] = self._aligned(name, np.asarray(data).T).astype(np.int64)
        finally:
            from neurocomp.process import stop_lava
            stop_lava(self.source)  # after Ctrl-C: end the workers, not Lava's stop protocol
        trains = {name: self._aligned(name, data) for name, data in raw.items()}
        counts = {name: t.sum(axis=1).astype(np.int64) for name, t in trains.items()}
        return RunResult(target="loihi-sim", output=self.net.output, counts=counts, spikes=trains, states=probed)


def run_lava(net: Network, spikes_in: np.ndarray, record_all: bool = False,
             progress: Optional[Callable[[int, int], None]] = None, run_cfg=None,
             probe_states: bool = False) -> RunResult:
    record = [p.name for p in net.populations] if record_all else None
    lava_net = LavaNetwork(net, np.asarray(spikes_in), record=record, probe_states=probe_states)
    return lava_net.run(run_cfg=run_cfg, progress=progress)
