"""The compiled stream engine on ATRLIF populations and weight-dependent rules: identical to the numpy
stepper (the reference tested against Lava) in every spike, current/voltage, learned weight, final threshold,
update count and peak — recurrent lateral inhibition, learned thresholds (``theta_init``), soft-bound terms
``(w - 254)`` / ``w`` among the others; and one such network against Lava directly."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocomp.backends.stream_engine import run_stream
from neurocomp.ir import Input, LoihiATRLIF, LoihiDense, LoihiLearning, LoihiLIF, Network, Population, Projection


def _network(seed: int, n_in: int, n: int, soft: bool, init: bool, decays) -> Network:
    rng = np.random.default_rng(seed)
    w = ("w-254",) if soft else ()
    terms = [("y0", ("x1",) + w, -3, -2), ("y0", w, 1, -5), ("x0", ("y1", "w") if soft else ("y1",), -5, -3),
             ("x0", ("y0",), 3, -4)]
    rule = LoihiLearning(terms, x1_impulse=20, x1_tau=10, y1_impulse=30, y1_tau=8, rng_seed=int(rng.integers(100)))
    di, dv, dth, dr = decays
    a = LoihiATRLIF(n, di, dv, dth, dr, theta0=int(rng.integers(30, 400)), theta_step=int(rng.integers(0, 80)),
                    bias_mant=rng.integers(-100, 200, n), bias_exp=2,
                    theta_init=(rng.integers(50, 900, n) << 6) if init else None)
    pops = [Population("a", a), Population("inh", LoihiLIF(n, 4095, 500, 100))]
    projs = [Projection("p", "in", "a", LoihiDense(rng.integers(20, 250, (n, n_in)), 8, int(rng.integers(0, 3)), 2),
                        rule),
             Projection("ai", "a", "inh", LoihiDense(np.eye(n, dtype=int) * 200, 8, 0, 2)),
             Projection("ia", "inh", "a", LoihiDense(-(1 - np.eye(n, dtype=int)) * 100, 8, 2, 3))]
    return Network("jit_atr", Input("in", n_in), pops, projs, "a", 20)


def _same(a, b):
    assert all(np.array_equal(a.stream[k], b.stream[k]) for k in a.stream)
    assert all(np.array_equal(a.states[k][x], b.states[k][x]) for k in a.states for x in ("u", "v"))
    assert a.weights.keys() == b.weights.keys() and all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert np.array_equal(a.thresholds["a"], b.thresholds["a"])
    assert a.peaks == b.peaks and a.learning_updates == b.learning_updates


decay = st.one_of(st.sampled_from([0, 4095]), st.integers(0, 4095))


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(seed=st.integers(0, 10 ** 6), n_in=st.integers(1, 24), n=st.integers(1, 12), soft=st.booleans(),
       init=st.booleans(), learn=st.booleans(), decays=st.tuples(decay, decay, decay, decay),
       rate=st.floats(0.02, 0.5))
def test_compiled_engine_equals_stepper_on_atrlif_and_soft_rules(seed, n_in, n, soft, init, learn, decays, rate):
    net = _network(seed, n_in, n, soft, init, decays)
    stream = np.random.default_rng(seed + 1).random((300, n_in)) < rate
    kw = dict(learn=learn, probe=True, probe_peaks=True)
    _same(run_stream(net, stream, engine="numpy", **kw), run_stream(net, stream, engine="jit", **kw))


def test_compiled_engine_a_long_soft_stream_with_activity():
    net = _network(3, 30, 12, True, True, (1000, 200, 3, 300))
    stream = np.random.default_rng(4).random((3000, 30)) < 0.2
    a, b = run_stream(net, stream, engine="numpy"), run_stream(net, stream, engine="jit")
    assert 0.02 < a.stream["a"].mean() < 0.5
    assert np.abs(a.weights["p"] - net.projection("p").synapse.weight).sum() > 1000
    assert np.array_equal(a.stream["a"], b.stream["a"]) and np.array_equal(a.weights["p"], b.weights["p"])
    assert np.array_equal(a.thresholds["a"], b.thresholds["a"])


@pytest.mark.slow
def test_compiled_engine_equals_lava_on_atrlif_with_a_soft_rule():
    from neurocomp.backends.lava import run_lava
    from neurocomp.ir.schedule import STREAM, Schedule
    net = _network(5, 20, 8, True, True, (1000, 200, 3, 300))
    stream = np.random.default_rng(6).random((600, 20)) < 0.2
    cpu = run_stream(net, stream, engine="jit")
    lava = run_lava(net, stream[None], Schedule(STREAM, len(stream)), record=True, learn=True)
    assert cpu.stream["a"].sum() > 50
    for pop in ("a", "inh"):
        assert np.array_equal(cpu.stream[pop], lava.stream[pop]), pop
    assert np.array_equal(cpu.weights["p"], lava.weights["p"])
    assert np.array_equal(cpu.thresholds["a"], lava.thresholds["a"])
