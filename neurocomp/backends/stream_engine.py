"""The stream schedule's simulator: one continuous run, step by step, float or Loihi fixed point.

Why a second engine beside :mod:`neurocomp.backends.batch_engine`: that one runs many samples at once,
which is only possible when samples are independent. Learning makes every sample depend on the
weights left by the previous one, and recurrent connections (lateral inhibition) need Lava's real
one-step synaptic delay inside a population loop. So this engine walks one stream of steps — the
same stream :mod:`neurocomp.backends.lava` plays into Lava — vectorised over neurons and synapses.

Per step ``t`` (1-based, Lava's ``time_step``), exactly as Lava's runtime orders it:

1. every population takes the activation its incoming synapses buffered at ``t-1`` and makes one
   LIF step (fixed point: :func:`neurocomp.backends.fixed_point.lif_step`, the single home of that
   arithmetic; float: Lava's float LIF) — or one ATRLIF step (:mod:`neurocomp.backends.atrlif`);
2. every projection buffers ``W @ s_source(t)`` (fixed point: shifted by ``weight_exp``) for step
   ``t+1``, with the weights as they are *before* this step's learning;
3. every plastic projection that learns runs one learning epoch (``t_epoch = 1``) on the pre spikes
   ``s_source(t)`` and post spikes ``s_target(t)`` (Lava's ``s_in_bap``), see
   :class:`~neurocomp.backends.learning_engine.LoihiLearningEngine`.

Nothing is reset: a stream is ``timesteps`` of input then ``rest`` silent steps per sample.

Fixed-point networks run by default on the compiled form of this loop,
:mod:`neurocomp.backends.stream_jit` (``engine="jit"``, event-driven, ~100x faster); this module's
numpy stepper (``engine="numpy"``) is the reference it is tested against, identical in every spike,
weight, learning-epoch count and peak.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends.atrlif import stream_states
from neurocomp.backends.base import Progress, Result
from neurocomp.backends.learning_engine import LoihiLearningEngine, check_stream_network, initial_weights
from neurocomp.errors import NeurocompError
from neurocomp.ir import LIF, Dense, Network
from neurocomp.ir.schedule import STREAM, Schedule, fold_stream


def _float_step(u, v, a, neuron: LIF):
    u = u * (1 - neuron.du) + a
    v = v * (1 - neuron.dv) + u + neuron.bias
    s = v > neuron.vth
    v = np.where(s, 0.0, v)
    return u, v, s


def _check_float(net: Network, learn: bool) -> None:
    for proj in net.projections:
        if not isinstance(proj.synapse, Dense):
            raise NeurocompError(f"projection {proj.name!r}: the float stream engine runs Dense synapses, "
                                 f"not {type(proj.synapse).__name__}")
        if learn and proj.plasticity is not None:
            raise NeurocompError(f"projection {proj.name!r}: float networks do not learn here; the source's "
                                 "own simulator (e.g. the brian2 reference) runs float learning")


ENGINES = ("jit", "numpy")


def run_stream(net: Network, stream: np.ndarray, teacher: Optional[Dict[str, np.ndarray]] = None,
               learn: bool = True, record: Optional[list] = None, progress: Progress = None,
               probe_peaks: bool = False, probe: bool = False, schedule: Optional[Schedule] = None,
               target: str = "cpu", engine: str = "jit") -> Result:
    """Run one continuous input ``stream`` ``[steps, n_in]`` through ``net`` (float or fixed point).

    ``teacher[projection]``: ``[steps, n_post]`` third-factor values (0..127) for rules with
    ``third_factor``. ``learn=False`` keeps every weight fixed. ``record``: populations whose trains
    to keep (default all) — in ``Result.stream`` ``[steps, n]`` and, cut into the ``schedule``'s
    windows, in ``Result.spikes``. ``probe_peaks``: each population's peak ``|u|``, ``|v|`` (v read
    before the reset); ``probe``: u/v after every step, as windows. ``schedule``: how the stream is
    made of samples (default: one sample of all its steps). ``engine`` (fixed point): ``"jit"`` runs
    the compiled event-driven kernel (:mod:`neurocomp.backends.stream_jit`), ``"numpy"`` this module's
    stepper — the reference the kernel is tested against, identical in every spike, weight, update
    count and peak; float networks always run the stepper.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {list(ENGINES)}")
    t0 = time.perf_counter()
    fixed = net.is_fixed_point
    if fixed:
        check_stream_network(net)
    else:
        _check_float(net, learn)
    stream = np.asarray(stream).astype(bool)
    steps, n_in = stream.shape
    if n_in != net.input.size:
        raise NeurocompError(f"input stream has {n_in} channels, network {net.name!r} expects {net.input.size}")
    schedule = schedule or Schedule(STREAM, steps)
    teacher = teacher or {}
    pops = list(net.populations)
    dtype = np.int64 if fixed else np.float64
    for proj in net.projections if fixed and learn else ():
        if proj.plasticity is not None and proj.plasticity.third_factor and proj.name not in teacher:
            raise NeurocompError(f"projection {proj.name!r}: third-factor rule needs a teacher signal")
    record = [p.name for p in pops] if record is None else list(record)
    if fixed and engine == "jit":
        from neurocomp.backends import stream_jit
        if stream_jit.jit_problem(net) is None:
            trains, uv, weights, updates, peaks, thresholds = stream_jit.run_stream_jit(
                net, stream, teacher, learn, probe, probe_peaks, progress)
            return _result(net, schedule, stream, trains, uv, weights, updates, peaks, record, learn, target, t0,
                           thresholds=thresholds)
    weights = {p.name: (initial_weights(p) if fixed else np.asarray(p.synapse.weight)) for p in net.projections}
    engines = ({p.name: LoihiLearningEngine(p.plasticity, *p.synapse.shape, p.synapse.sign_mode)
                for p in net.projections if p.plasticity is not None and learn} if fixed else {})
    u = {p.name: np.zeros(p.size, dtype=dtype) for p in pops}
    v = {p.name: np.zeros(p.size, dtype=dtype) for p in pops}
    buffered = {p.name: np.zeros(p.size, dtype=dtype) for p in pops}
    trains = {p.name: np.zeros((steps, p.size), dtype=bool) for p in pops}   # all: counts need them
    uv = {p.name: (np.zeros((steps, p.size), dtype=dtype), np.zeros((steps, p.size), dtype=dtype))
          for p in pops} if probe else {}
    incoming = {p.name: net.incoming(p.name) for p in pops}
    plastic = {p.name: p for p in net.projections if p.name in engines}
    emitted = {net.input.name: np.zeros(n_in, dtype=bool)}
    peaks = {p.name: [0, 0] for p in pops}
    adaptive = stream_states(pops)   # ATRLIF populations (neurocomp.backends.atrlif): i in u's place
    for t in range(1, steps + 1):
        emitted[net.input.name] = stream[t - 1]
        for p in pops:
            if p.name in adaptive:
                u[p.name], v[p.name], s = adaptive[p.name].step(buffered[p.name])
            elif fixed:
                u[p.name], v[p.name], s = fxp.lif_step(u[p.name], v[p.name], buffered[p.name], p.neuron)
            else:
                u[p.name], v[p.name], s = _float_step(u[p.name], v[p.name], buffered[p.name], p.neuron)
            emitted[p.name] = s
            if probe_peaks:
                pk = peaks[p.name]
                pk[0] = max(pk[0], int(np.abs(u[p.name]).max()))
                # v is read before the reset clears it: the largest value it held this step
                pk[1] = max(pk[1], int(np.abs(v[p.name]).max()),
                            int(p.neuron.vth << fxp.VTH_SHIFT) if s.any() and p.name not in adaptive else 0)
            if probe:
                uv[p.name][0][t - 1] = u[p.name]
                uv[p.name][1][t - 1] = v[p.name]
        for p in pops:
            a = np.zeros(p.size, dtype=dtype)
            for proj in incoming[p.name]:
                s = emitted[proj.source]
                if s.any():
                    if fixed:
                        a = a + fxp.shift_activation(weights[proj.name][:, s].sum(axis=1), proj.synapse.weight_exp)
                    else:
                        a = a + weights[proj.name][:, s].sum(axis=1)
            buffered[p.name] = a
        for name, eng in engines.items():
            proj = plastic[name]
            y2 = teacher[name][t - 1] if eng.rule.third_factor else None
            weights[name] = eng.step(t, weights[name], emitted[proj.source], emitted[proj.target], y2)
        for p in pops:
            trains[p.name][t - 1] = emitted[p.name]
        if progress and (t % 1000 == 0 or t == steps):
            progress(t, steps)
    return _result(net, schedule, stream, trains, uv, {n: weights[n] for n in engines},
                   {n: e.updates for n, e in engines.items()}, {n: tuple(pk) for n, pk in peaks.items()},
                   record, learn, target, t0, probe_peaks, {n: a.theta.copy() for n, a in adaptive.items()})


def _result(net, schedule, stream, trains, uv, weights, updates, peaks, record, learn, target, t0,
            probe_peaks=True, thresholds=None) -> Result:
    """The run's :class:`Result`: every train cut into the schedule's windows (counts of all, spikes of
    the recorded populations), u/v windows when probed."""
    steps = len(stream)
    depths = net.depths()
    n_samples = max(1, -(-steps // schedule.window))
    window = schedule.window

    def fold(name, x):
        return fold_stream(x, n_samples, window, depths.get(name, 0))

    kept = {name: trains[name] for name in record}
    return Result(
        target=target, output=net.output, schedule=schedule,
        counts={name: fold(name, x).sum(axis=1).astype(np.int64) for name, x in trains.items()},
        spikes={name: fold(name, x) for name, x in kept.items()},
        states={name: {"u": fold(name, uu), "v": fold(name, vv)} for name, (uu, vv) in uv.items()},
        stream=kept,
        weights=weights if learn else {},
        learning_updates=updates,
        peaks=peaks if probe_peaks else {},
        input_spikes=stream, seconds=time.perf_counter() - t0, thresholds=thresholds or {})
