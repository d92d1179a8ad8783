"""ATRLIF on cpu against Lava's own ``ATRLIF`` process (``PyATRLIFModelFixed``, ``Loihi2SimCfg(select_tag=
"fixed_pt")``) run by Lava's runtime: every spike and every state variable (i, v, theta, r) after every step.

* random populations (hypothesis): all four decays over 0..4095 (the extremes included), 12-bit thresholds
  and increments, signed 13-bit biases with exponents, every sign mode and weight exponents up to +6
  (activations that wrap the 24-bit current and saturate v), a recurrent projection on half the draws;
  Lava runs :class:`~neurocomp.backends.lava.LavaProcesses` (our builder) with Monitors on every Var, and
  our side is both :func:`neurocomp.backends.atrlif.run_population` (all four variables) and the stream
  engine (spikes, i and v of a whole network);
* the edges by construction: a spike exactly at ``v - r == theta`` (Lava's ``>=``), one LSB short of it,
  the refractory jump ``r += 2 theta`` holding the neuron silent until ``r`` has decayed, the threshold
  relaxing to ``theta0`` between spikes;
* a learned threshold (``theta_init``) going into Lava's process after the first step (``run_lava``).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends.atrlif import THETA_SHIFT, run_population
from neurocomp.backends.stream_engine import run_stream
from neurocomp.ir import Input, LoihiATRLIF, LoihiDense, LoihiLIF, Network, Population, Projection
from neurocomp.ir.schedule import STREAM, Schedule, unfold_windows

pytestmark = pytest.mark.slow
VARS = ("i", "v", "theta", "r")


def _run_lava_states(net: Network, stream: np.ndarray):
    """Every Var of every ATRLIF population after every step, from Lava's runtime ``{pop: {var: [steps, n]}}``."""
    from lava.proc.monitor.process import Monitor

    from neurocomp.backends.lava import LavaProcesses, lava_modules
    L = lava_modules()
    steps = len(stream)
    source = L["Source"](data=stream.T.astype(np.int32))
    sinks = {}

    def sink(name, size):
        sinks[name] = L["Sink"](shape=(size,), buffer=steps)
        return sinks[name].a_in

    procs = LavaProcesses(net, Schedule(STREAM, steps), source.s_out, sink, record=[p.name for p in net.populations])
    monitors = {}
    for p in net.populations:
        if isinstance(p.neuron, LoihiATRLIF):
            for var in VARS + ("s",):
                m = Monitor()
                m.probe(getattr(procs.lifs[p.name], var), steps)
                monitors[(p.name, var)] = m
    try:
        source.run(condition=L["RunSteps"](num_steps=steps), run_cfg=L["Loihi2SimCfg"](select_tag="fixed_pt"))
        out = {}
        for (name, var), m in monitors.items():
            out.setdefault(name, {})[var] = np.rint(np.asarray(m.get_data()[procs.lifs[name].name][var])).astype(np.int64)
        trains = {name: s.data.get().T.astype(bool) for name, s in sinks.items()}
    finally:
        source.stop()
    return out, trains


def _activations(dense: LoihiDense, spikes: np.ndarray) -> np.ndarray:
    """What the population's InPort receives each step from one Dense fed ``spikes`` (one-step delay)."""
    acc = spikes.astype(np.int64) @ fxp.effective_weights(dense).T
    a = fxp.wrap_int32(fxp.shift_activation(acc, dense.weight_exp))
    return np.vstack([np.zeros((1, a.shape[1]), dtype=np.int64), a[:-1]])


decay = st.one_of(st.sampled_from([0, 1, 4094, 4095]), st.integers(0, 4095))


@st.composite
def atrlif_networks(draw):
    n_in, n = draw(st.integers(1, 10)), draw(st.integers(1, 6))
    steps = draw(st.integers(20, 60))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    sign = draw(st.sampled_from([fxp.MIXED, fxp.EXCITATORY, fxp.INHIBITORY]))
    lo, hi = {fxp.MIXED: (-256, 255), fxp.EXCITATORY: (0, 255), fxp.INHIBITORY: (-255, 0)}[sign]
    dense = LoihiDense(rng.integers(lo, hi + 1, (n, n_in)), draw(st.sampled_from([8, 6, 4])),
                       draw(st.integers(-3, 6)), sign)
    neuron = LoihiATRLIF(n, draw(decay), draw(decay), draw(decay), draw(decay),
                         theta0=draw(st.integers(0, 4095)), theta_step=draw(st.integers(0, 4095)),
                         bias_mant=rng.integers(-4096, 4096, n) if draw(st.booleans()) else 0,
                         bias_exp=draw(st.integers(0, 7)))
    pops = [Population("a", neuron)]
    projs = [Projection("in_a", "in", "a", dense)]
    if draw(st.booleans()):   # a recurrent projection: the stream engine's one-step loop inside the population
        projs.append(Projection("a_a", "a", "a", LoihiDense(rng.integers(-256, 256, (n, n)), 8, 0, fxp.MIXED)))
    stream = rng.random((steps, n_in)) < draw(st.floats(0.05, 0.9))
    return Network("atr", Input("in", n_in), pops, projs, "a", steps), stream


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          phases=(Phase.explicit, Phase.generate))   # each example is a Lava run: no slow shrinking
@given(atrlif_networks())
def test_random_atrlif_equals_lava_every_state(case):
    net, stream = case
    lava, lava_trains = _run_lava_states(net, stream)
    cpu = run_stream(net, stream, probe=True, engine="numpy")
    assert np.array_equal(cpu.stream["a"], lava_trains["a"])
    for var, lava_var in (("u", "i"), ("v", "v")):     # the engine's windows start at the depth (1 step)
        assert np.array_equal(unfold_windows(cpu.states["a"][var], 1, len(stream))[1:], lava["a"][lava_var][1:])
    if len(net.projections) == 1:   # feed-forward: the population alone, all four variables
        a_in = _activations(net.projection("in_a").synapse, stream)
        ours = run_population(net.population("a").neuron, a_in)
        for var in VARS + ("s",):
            assert np.array_equal(ours[var], lava["a"][var].astype(ours[var].dtype)), var


def _bias_only(theta0, bias, **kw):
    """A population driven by its bias alone (no decay of v unless asked): v climbs by ``bias`` per step."""
    neuron = LoihiATRLIF(len(bias), di=kw.get("di", 0), dv=kw.get("dv", 0), dtheta=kw.get("dtheta", 0),
                         dr=kw.get("dr", 0), theta0=theta0, theta_step=kw.get("theta_step", 0),
                         bias_mant=np.asarray(bias), bias_exp=0)
    net = Network("edge", Input("in", 1), [Population("a", neuron)],
                  [Projection("in_a", "in", "a", LoihiDense(np.zeros((len(bias), 1), dtype=int), 8, 0, 2))], "a", 40)
    return net, np.zeros((kw.get("steps", 40), 1), dtype=bool)


def test_threshold_and_refractory_edges_equal_lava():
    # neuron 0 reaches v == theta exactly at step 10 (spikes: >=); neuron 1 is one LSB short at every step
    theta0 = 10
    exact = (theta0 << THETA_SHIFT) // 10
    net, stream = _bias_only(theta0, [exact, exact - 1], dr=512, dtheta=256, theta_step=3, steps=60)
    lava, trains = _run_lava_states(net, stream)
    ours = run_population(net.population("a").neuron, np.zeros((60, 2), dtype=np.int64))
    for var in VARS + ("s",):
        assert np.array_equal(ours[var], lava["a"][var].astype(ours[var].dtype)), var
    s = ours["s"]
    assert s[9, 0] and not s[:9, 0].any()                 # the first spike exactly at equality
    assert ours["v"][9, 0] - ours["r"][8, 0] == theta0 << THETA_SHIFT == ours["theta"][8, 0]
    assert not s[:10, 1].any() and s[10, 1]               # one LSB less: a step later
    first, second = np.flatnonzero(s[:, 0])[:2]
    assert ours["r"][first, 0] == 2 * (theta0 << THETA_SHIFT)       # r += 2 theta at the spike
    assert ours["theta"][first, 0] == (theta0 + 3) << THETA_SHIFT   # theta += theta_step
    assert second - first > 1                             # refractory: silent while r decays
    # between spikes the threshold relaxes back towards theta0 << 6
    gap = ours["theta"][first + 1:second, 0]
    assert (np.diff(gap) <= 0).all() and gap[-1] < ours["theta"][first, 0]
    assert np.array_equal(trains["a"], s)


def test_learned_threshold_goes_into_lava_after_the_first_step():
    from neurocomp.backends.lava import run_lava
    rng = np.random.default_rng(3)
    n_in, n, steps = 12, 5, 80
    theta_init = (rng.integers(200, 3000, n) << THETA_SHIFT).astype(np.int64)
    neuron = LoihiATRLIF(n, 2000, 300, 0, 400, theta0=20, theta_step=0, theta_init=theta_init)
    lif = LoihiLIF(n, 4095, 500, 30)
    net = Network("learned", Input("in", n_in), [Population("a", neuron), Population("b", lif)],
                  [Projection("in_a", "in", "a", LoihiDense(rng.integers(0, 100, (n, n_in)), 8, -2, 2)),
                   Projection("a_b", "a", "b", LoihiDense(np.eye(n, dtype=int) * 200, 8, 0, 2))], "b", steps)
    stream = rng.random((steps, n_in)) < 0.4
    cpu = run_stream(net, stream, probe=True, engine="numpy")
    lava = run_lava(net, stream[None], Schedule(STREAM, steps), record=True, probe=True)
    for pop in ("a", "b"):
        assert np.array_equal(cpu.stream[pop], lava.stream[pop]), pop
        for var in ("u", "v"):
            assert np.array_equal(cpu.states[pop][var], lava.states[pop][var]), (pop, var)
    assert np.array_equal(cpu.thresholds["a"], lava.thresholds["a"])
    # the learned thresholds matter: from theta0 the same stream fires differently
    plain = run_stream(net.replace(populations=[Population("a", LoihiATRLIF(n, 2000, 300, 0, 400, 20, 0)),
                                                net.population("b")]), stream, engine="numpy")
    assert 0 < cpu.stream["a"].mean() < 0.9 and not np.array_equal(plain.stream["a"], cpu.stream["a"])


def test_atrlif_refused_on_the_batched_schedule():
    from neurocomp.backends.batch_engine import simulate
    from neurocomp.errors import NeurocompError
    from neurocomp.ir.schedule import choose_schedule
    net, _ = _bias_only(10, [5])
    assert choose_schedule(net, 10, 5).kind == STREAM
    with pytest.raises(NeurocompError, match="ATRLIF runs on the stream schedule"):
        simulate(net, np.zeros((2, 10, 1), dtype=bool))
