"""The ``loihi-sim`` target for plastic and recurrent networks: real Lava processes, run by Lava's
runtime with ``Loihi2SimCfg(select_tag="fixed_pt")``.

One continuous stream (the same one :func:`neurocomp.backends.learning.run_stream` walks):

* an ``io.source.RingBuffer`` plays the input stream, one column per step;
* each population is a plain ``LIF`` (``PyLifModelBitAcc``): no resets, samples are separated by
  silent rest steps in the stream, as in Brian2;
* a fixed projection is a ``Dense`` (``PyDenseModelBitAcc``); a plastic one a ``LearningDense``
  (``PyLearningDenseModelBitApproximate``) with a ``Loihi2FLearningRule`` built from the rule's dw
  string, trace impulses/taus, ``t_epoch=1`` and its ``rng_seed``; the target population's ``s_out``
  feeds the synapse's ``s_in_bap`` (post spikes). A third-factor rule is a ``Loihi3FLearningRule``
  whose ``y2`` comes from a second ``RingBuffer`` playing the teacher signal into ``s_in_y2``;
* ``io.sink.RingBuffer``s record spikes; the learned weights are read from the ``weights`` Var.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Optional

import numpy as np

from neurocomp.backends.lava_sim import ensure_lava_runtime, run_in_chunks
from neurocomp.backends.learning import StreamResult, check_stream_network, initial_weights
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import LoihiLearning, Network


def _lava():
    ensure_lava_runtime()
    try:
        from lava.magma.core.learning.learning_rule import Loihi2FLearningRule, Loihi3FLearningRule
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense, LearningDense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF
        from lava.utils.weightutils import SignMode
    except ImportError as e:  # pragma: no cover - lava-nc is a hard dependency
        raise TargetError(f"target loihi-sim needs lava-nc 0.10 (pip install lava-nc==0.10.0): {e}") from None
    return dict(Loihi2FLearningRule=Loihi2FLearningRule, Loihi3FLearningRule=Loihi3FLearningRule,
                RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Dense=Dense, LearningDense=LearningDense,
                Sink=Sink, Source=Source, LIF=LIF, SignMode=SignMode)


def lava_learning_rule(rule: LoihiLearning, L=None):
    """The Lava learning-rule object for a :class:`LoihiLearning` (one epoch per step)."""
    L = L or _lava()
    if rule.third_factor:
        return L["Loihi3FLearningRule"](dw=rule.dw_string(), x1_impulse=rule.x1_impulse, x1_tau=rule.x1_tau,
                                        t_epoch=1, rng_seed=rule.rng_seed)
    return L["Loihi2FLearningRule"](dw=rule.dw_string(), x1_impulse=rule.x1_impulse, x1_tau=rule.x1_tau,
                                    y1_impulse=rule.y1_impulse, y1_tau=rule.y1_tau, t_epoch=1,
                                    rng_seed=rule.rng_seed)


class LavaStreamNetwork:
    """Lava processes for one continuous stream through a fixed-point (possibly plastic) network."""

    def __init__(self, net: Network, spikes_in: np.ndarray, teacher: Optional[Dict[str, np.ndarray]] = None,
                 learn: bool = True, record: Optional[list] = None):
        check_stream_network(net)
        L = self._L = _lava()
        spikes_in = np.asarray(spikes_in)
        self.steps, n_in = spikes_in.shape
        if n_in != net.input.size:
            raise NeurocompError(f"input stream has {n_in} channels, network {net.name!r} expects {net.input.size}")
        teacher = teacher or {}
        self.net = net
        self.source = L["Source"](data=spikes_in.T.astype(np.int32))
        self.lifs = {}
        for pop in net.populations:
            n = pop.neuron
            self.lifs[pop.name] = L["LIF"](shape=(pop.size,), du=n.du, dv=n.dv, vth=n.vth,
                                           bias_mant=n.bias_mant.astype(np.int32), bias_exp=n.bias_exp,
                                           name=pop.name)
        self.plastic, self.teachers = {}, {}
        for proj in net.projections:
            syn = proj.synapse
            src = self.source if proj.source == net.input.name else self.lifs[proj.source]
            kwargs = dict(num_weight_bits=syn.num_weight_bits, weight_exp=syn.weight_exp,
                          sign_mode=L["SignMode"](syn.sign_mode), name=proj.name)
            if proj.plasticity is not None and learn:
                rule = proj.plasticity
                conn = L["LearningDense"](weights=initial_weights(proj).astype(np.int32),
                                          learning_rule=lava_learning_rule(rule, L), **kwargs)
                self.lifs[proj.target].s_out.connect(conn.s_in_bap)
                if rule.third_factor:
                    if proj.name not in teacher:
                        raise NeurocompError(f"projection {proj.name!r}: third-factor rule needs a teacher signal")
                    tsrc = L["Source"](data=np.asarray(teacher[proj.name]).T.astype(np.int32))
                    tsrc.s_out.connect(conn.s_in_y2)
                    self.teachers[proj.name] = tsrc
                self.plastic[proj.name] = conn
            else:
                conn = L["Dense"](weights=syn.weight.astype(np.int32), **kwargs)
            src.s_out.connect(conn.s_in)
            conn.a_out.connect(self.lifs[proj.target].a_in)
        names = [p.name for p in net.populations] if record is None else list(record)
        self.sinks = {}
        for name in names:
            sink = L["Sink"](shape=(net.population(name).size,), buffer=self.steps)
            self.lifs[name].s_out.connect(sink.a_in)
            self.sinks[name] = sink

    def run(self, progress: Optional[Callable[[int, int], None]] = None, chunk: int = 2000) -> StreamResult:
        L = self._L
        t0 = time.perf_counter()
        cfg = L["Loihi2SimCfg"](select_tag="fixed_pt")
        try:
            run_in_chunks(self.source, self.steps, cfg, chunk, progress)
            spikes = {name: sink.data.get().T.astype(bool) for name, sink in self.sinks.items()}
            weights = {name: np.rint(conn.weights.get()).astype(np.int64) for name, conn in self.plastic.items()}
        finally:
            from neurocomp.process import stop_lava
            stop_lava(self.source)  # after Ctrl-C: end the workers, not Lava's stop protocol
        return StreamResult(target="loihi-sim", spikes=spikes, weights=weights,
                            seconds=time.perf_counter() - t0)


def run_stream_lava(net: Network, spikes_in: np.ndarray, teacher: Optional[Dict[str, np.ndarray]] = None,
                    learn: bool = True, record: Optional[list] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> StreamResult:
    """Lava's counterpart of :func:`neurocomp.backends.learning.run_stream` (same arguments, same result)."""
    return LavaStreamNetwork(net, spikes_in, teacher=teacher, learn=learn, record=record).run(progress=progress)
