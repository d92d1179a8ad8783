"""The ``loihi-sim`` target: real Lava processes run by Lava's runtime with
``Loihi2SimCfg(select_tag="fixed_pt")`` — the bit-accurate ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc``
/ ``PyLearningDenseModelBitApproximate`` process models — built by one builder for both schedules.

:class:`LavaProcesses` is the network's process graph between a pluggable input and pluggable output
taps (a ``RingBuffer`` source and sinks here, io ``Injector``/``Extractor`` in
:mod:`neurocomp.backends.lava_runtime`, the chip adapters on ``loihi2``):

* a population is a ``LIFReset`` in the **batched** schedule — reset interval ``T``, offset staggered
  by its depth ``d`` (``(1 + d) % T``): Lava's ``Dense`` delays spikes by one step, so depth ``d``
  sees sample ``k`` during steps ``[k*T + d, (k+1)*T + d)`` and is reset exactly when that window
  opens, so each sample runs as if alone — and a plain ``LIF`` in the **stream** schedule (nothing is
  reset; samples are separated by silent rest steps);
* a fixed projection is a ``Dense`` (or ``Conv``; ``num_message_bits`` from the synapse: graded values
  from a ``current`` input, which the ``RingBuffer`` source plays as int32 data); a plastic one that
  learns a ``LearningDense`` with a ``Loihi2FLearningRule`` built from the rule's dw string, trace
  impulses/taus, ``t_epoch=1`` and its ``rng_seed``, the target population's ``s_out`` feeding its
  ``s_in_bap``; a third-factor rule is a ``Loihi3FLearningRule`` whose ``y2`` comes from a second
  source playing the teacher into ``s_in_y2``.

:func:`run_lava` plays all samples in one Lava run, reads the sinks (and Monitors on u/v when probed,
and learned weights from the ``weights`` Vars) and cuts them into the schedule's windows.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional

import numpy as np

from neurocomp.backends.atrlif import is_adaptive, lava_kwargs as atrlif_kwargs
from neurocomp.backends.base import Backend, Capabilities, Progress, Result, teacher_values
from neurocomp.backends.learning_engine import check_stream_network, initial_weights
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import LoihiLearning, Network, is_graded
from neurocomp.ir.synapses import LoihiConv
from neurocomp.ir.schedule import BATCHED, STREAM, Schedule, fold_stream, to_stream

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


def lava_modules() -> dict:
    """Lava's process classes and run configuration, imported once Lava's runtime is safe to load."""
    ensure_lava_runtime()
    try:
        from lava.magma.core.learning.learning_rule import Loihi2FLearningRule, Loihi3FLearningRule
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense, LearningDense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.atrlif.process import ATRLIF
        from lava.proc.lif.process import LIF, LIFReset
        from lava.utils.weightutils import SignMode
    except ImportError as e:  # pragma: no cover - lava-nc is a hard dependency
        raise TargetError(f"target loihi-sim needs lava-nc 0.10 (pip install lava-nc==0.10.0): {e}") from None
    return dict(Loihi2FLearningRule=Loihi2FLearningRule, Loihi3FLearningRule=Loihi3FLearningRule,
                RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Dense=Dense, LearningDense=LearningDense,
                Sink=Sink, Source=Source, LIF=LIF, LIFReset=LIFReset, SignMode=SignMode, ATRLIF=ATRLIF)


def run_in_chunks(process, total_steps: int, run_cfg, chunk: int, progress: Progress = None) -> None:
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


def lava_learning_rule(rule: LoihiLearning, L=None):
    """The Lava learning-rule object for a :class:`LoihiLearning` (one epoch per step)."""
    L = L or lava_modules()
    if rule.third_factor:
        return L["Loihi3FLearningRule"](dw=rule.dw_string(), x1_impulse=rule.x1_impulse, x1_tau=rule.x1_tau,
                                        t_epoch=1, rng_seed=rule.rng_seed)
    return L["Loihi2FLearningRule"](dw=rule.dw_string(), x1_impulse=rule.x1_impulse, x1_tau=rule.x1_tau,
                                    y1_impulse=rule.y1_impulse, y1_tau=rule.y1_tau, t_epoch=1,
                                    rng_seed=rule.rng_seed)


class LavaProcesses:
    """The network's Lava processes wired between a pluggable input and pluggable output taps.

    ``input_port`` is the OutPort that plays the input spikes; ``output_port(name, size)`` returns the
    InPort that receives population ``name``'s spikes; ``teacher_port(projection, size)`` the OutPort
    that plays a third-factor rule's teacher (stream schedule, learning). The sample timing (reset
    interval and offsets in the batched schedule) lives only here.
    """

    def __init__(self, net: Network, schedule: Schedule, input_port, output_port: Callable[[str, int], object],
                 record: Optional[list] = None, learn: bool = False,
                 teacher_port: Optional[Callable[[str, int], object]] = None):
        if not net.is_fixed_point:
            raise NeurocompError(f"network {net.name!r} is float; quantise it before running on loihi-sim")
        check_stream_network(net)
        L = lava_modules()
        self.depths = net.depths()
        self.lifs, self.denses, self.plastic = {}, {}, {}
        T = schedule.timesteps
        for pop in net.execution_order():
            n = pop.neuron
            if is_adaptive(n):   # Lava's ATRLIF (fixed_pt: PyATRLIFModelFixed); it has no reset-interval twin
                if schedule.is_batched:
                    raise NeurocompError(f"population {pop.name!r}: ATRLIF has no reset-interval variant in Lava, "
                                         "so samples cannot be separated by resets; ATRLIF networks run on the "
                                         "stream schedule")
                self.lifs[pop.name] = L["ATRLIF"](**atrlif_kwargs(n, pop.name))
                continue
            kw = dict(shape=(pop.size,), du=n.du, dv=n.dv, vth=n.vth, bias_mant=n.bias_mant.astype(np.int32),
                      bias_exp=n.bias_exp, name=pop.name)
            if schedule.is_batched:
                self.lifs[pop.name] = L["LIFReset"](reset_interval=T, reset_offset=(1 + self.depths[pop.name]) % T,
                                                    **kw)
            else:
                self.lifs[pop.name] = L["LIF"](**kw)
        for proj in net.projections:
            syn = proj.synapse
            src = input_port if proj.source == net.input.name else self.lifs[proj.source].s_out
            if isinstance(syn, LoihiConv):   # populations stay flat C-major: virtual ports reorder
                from lava.proc.conv.process import Conv as LavaConv

                from neurocomp.backends import conv as cv
                conv_kw = {**cv.lava_conv_kwargs(syn, net.shape_of(proj.source)),
                           "num_message_bits": syn.num_message_bits}       # > 0: graded input values
                conn = LavaConv(**conv_kw, name=proj.name)
                cv.connect_into_conv(src, conn, net.shape_of(proj.source))
                cv.connect_out_of_conv(conn, self.lifs[proj.target].a_in, net.shape_of(proj.target))
                self.denses[proj.name] = conn
                continue
            kw = dict(num_weight_bits=syn.num_weight_bits, weight_exp=syn.weight_exp,
                      sign_mode=L["SignMode"](syn.sign_mode), name=proj.name,
                      **({"num_message_bits": syn.num_message_bits} if syn.num_message_bits else {}))
            if proj.plasticity is not None and learn:
                rule = proj.plasticity
                conn = L["LearningDense"](weights=initial_weights(proj).astype(np.int32),
                                          learning_rule=lava_learning_rule(rule, L), **kw)
                self.lifs[proj.target].s_out.connect(conn.s_in_bap)
                if rule.third_factor:
                    if teacher_port is None:
                        raise NeurocompError(f"projection {proj.name!r}: third-factor rule needs a teacher signal")
                    teacher_port(proj.name, syn.shape[0]).connect(conn.s_in_y2)
                self.plastic[proj.name] = conn
            else:
                conn = L["Dense"](weights=syn.weight.astype(np.int32), **kw)
            src.connect(conn.s_in)
            conn.a_out.connect(self.lifs[proj.target].a_in)
            self.denses[proj.name] = conn
        self.recorded = list(record if record is not None else [net.output])
        for name in self.recorded:
            self.lifs[name].s_out.connect(output_port(name, net.population(name).size))


def run_lava(net: Network, spikes: np.ndarray, schedule: Optional[Schedule] = None, record: bool = False,
             probe: bool = False, learn: bool = False, teacher: Optional[Dict[str, np.ndarray]] = None,
             progress: Progress = None, run_cfg=None, target: str = "loihi-sim") -> Result:
    """Play samples ``spikes`` ``[samples, T, n_in]`` through ``net``'s Lava processes in one run.

    Batched: the samples back to back, then ``max depth`` silent steps so the last window completes.
    Stream: the samples with ``schedule.rest`` silent steps each, as one stream (nothing appended).
    Every population is recorded (sinks) so every count is known; ``probe`` adds Monitors on u/v.
    """
    t0 = time.perf_counter()
    L = lava_modules()
    spikes = np.asarray(spikes)
    n_samples, T, n_in = spikes.shape
    schedule = schedule or Schedule(BATCHED, T)
    if n_in != net.input.size:
        raise NeurocompError(f"input has {n_in} channels, network {net.name!r} expects {net.input.size}")
    depths = net.depths()
    W = schedule.window
    if schedule.is_batched:
        steps = n_samples * T + max(depths.values())
        data = np.zeros((n_in, steps), dtype=np.int32)
        data[:, : n_samples * T] = spikes.reshape(n_samples * T, n_in).T
    else:
        if is_graded(net.input.encoding):
            raise NeurocompError(f"network {net.name!r}: graded ({net.input.encoding.kind}) input runs on the "
                                 "batched schedule only (a layered network without plasticity)")
        stream = to_stream(spikes.astype(bool), schedule.rest)
        steps = len(stream)
        data = stream.T.astype(np.int32)
    source = L["Source"](data=data)
    sinks, teachers = {}, {}

    def sink(name: str, size: int):
        sinks[name] = L["Sink"](shape=(size,), buffer=steps)
        return sinks[name].a_in

    def teacher_source(name: str, size: int):
        if not teacher or name not in teacher:
            raise NeurocompError(f"projection {name!r}: third-factor rule needs a teacher signal")
        t = np.zeros((steps, size), dtype=np.int32)
        given = np.asarray(teacher[name])[:steps]
        t[: len(given)] = given
        teachers[name] = L["Source"](data=t.T)
        return teachers[name].s_out

    procs = LavaProcesses(net, schedule, source.s_out, sink, record=[p.name for p in net.populations],
                          learn=learn, teacher_port=teacher_source)
    monitors = {}
    if probe:  # Lava Monitors read the u/v Vars after every step (slow: tests and verify only)
        from lava.proc.monitor.process import Monitor
        for name, lif in procs.lifs.items():
            for var in ("u", "v"):   # an ATRLIF's current is its "i"
                mon = Monitor()
                mon.probe(getattr(lif, "i" if var == "u" and is_adaptive(net.population(name).neuron) else var),
                          steps)
                monitors[(name, var)] = mon
    cfg = run_cfg or L["Loihi2SimCfg"](select_tag="fixed_pt")
    chunk = max(T * 10, 100) if schedule.is_batched else 2000
    adaptive = [p.name for p in net.populations if is_adaptive(p.neuron)]
    # Lava's ATRLIF starts every run at theta0 << 6: a learned threshold goes in after the first step
    learned = {name: net.population(name).neuron.theta_init for name in adaptive
               if net.population(name).neuron.theta_init is not None}
    try:
        if learned and steps > 1:
            run_in_chunks(source, 1, cfg, 1)
            for name, theta in learned.items():
                procs.lifs[name].theta.set(theta.astype(np.int32))
            run_in_chunks(source, steps - 1, cfg, chunk, progress and (lambda d, t: progress(d + 1, t + 1)))
        else:
            run_in_chunks(source, steps, cfg, chunk, progress)
        raw = {name: s.data.get().T.astype(bool) for name, s in sinks.items()}          # [steps, n]
        thresholds = {name: np.rint(procs.lifs[name].theta.get()).astype(np.int64) for name in adaptive}
        probed = {}
        for (name, var), mon in monitors.items():
            data = mon.get_data()[name]   # an ATRLIF's current was probed as its "i"
            probed.setdefault(name, {})[var] = np.asarray(data[var] if var in data else data["i"]).astype(np.int64)
        weights = {name: np.rint(conn.weights.get()).astype(np.int64) for name, conn in procs.plastic.items()}
    finally:
        from neurocomp.process import stop_lava
        stop_lava(source)  # after Ctrl-C: end the workers, not Lava's stop protocol

    def windows(name, x):
        if schedule.is_batched:
            d = depths[name]
            return x[d: d + n_samples * T].reshape((n_samples, T) + x.shape[1:])
        return fold_stream(x, n_samples, W, depths.get(name, 0))

    trains = {name: windows(name, x) for name, x in raw.items()}
    return Result(
        target=target, output=net.output, schedule=schedule,
        counts={name: t.sum(axis=1).astype(np.int64) for name, t in trains.items()},
        spikes=trains if record else {name: trains[name] for name in [net.output]},
        states={name: {var: windows(name, x) for var, x in d.items()} for name, d in probed.items()},
        stream={} if schedule.is_batched or not record else raw,
        weights=weights, input_spikes=spikes if schedule.is_batched else stream,
        seconds=time.perf_counter() - t0, thresholds=thresholds)


def run_stream_lava(net: Network, stream: np.ndarray, teacher: Optional[Dict[str, np.ndarray]] = None,
                    learn: bool = True, record: bool = True, progress: Progress = None) -> Result:
    """One raw input stream ``[steps, n_in]`` through Lava — the counterpart of
    :func:`neurocomp.backends.stream_engine.run_stream` (same arguments, ``teacher`` as y2 values)."""
    stream = np.asarray(stream)
    return run_lava(net, stream[None], Schedule(STREAM, len(stream)), record=record, learn=learn, teacher=teacher,
                    progress=progress)


class LoihiSimBackend(Backend):
    """``loihi-sim``: Lava's own fixed-point process models on its CPU runtime."""

    name = "loihi-sim"
    description = "real Lava processes on Lava's CPU runtime, Loihi2SimCfg(select_tag='fixed_pt')"
    capabilities = Capabilities(network="fixed", learning=True, state_probes=True, bit_exact=True)

    def run(self, net, spikes, schedule, *, record=False, probe=False, learn=False, teacher=None,
            progress=None, source=None) -> Result:
        self.check(net, schedule)
        return run_lava(net, spikes, schedule, record=record, probe=probe, learn=learn,
                        teacher=teacher_values(teacher), progress=progress)
