"""The cpu learning engine against Lava's own LearningDense (PyLearningDenseModelBitApproximate),
run by Lava's runtime: after the same stream, every weight and every spike must be identical.

One network exercises everything at once: a plastic input projection with pair STDP, Diehl &
Cook's constant post-spike depression and terms with a spike as a factor (``x0 * y0``), a recurrent excitatory <-> inhibitory loop (lateral
inhibition through Lava's one-step Dense delay), and a third-factor (Loihi3F) supervised-depression
projection whose teacher signal reaches Lava through ``s_in_y2``. Lava's stochastic rounding is
seeded (``rng_seed``; its ConnVarRandom is fixed at seed 2), so equality is exact, not statistical.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocomp.backends.learning_engine import LoihiLearningEngine
from neurocomp.backends.stream_engine import run_stream
from neurocomp.ir import Input, LoihiDense, LoihiLearning, LoihiLIF, Network, Population, Projection
from neurocomp.ir.plasticity import THIRD_FACTOR_LEVEL


def _network(seed=0, n_in=24, n_exc=12, n_out=3):
    rng = np.random.default_rng(seed)
    # pair STDP, D&C's constant post term, and spike-as-factor terms (the coincidence correction)
    stdp = LoihiLearning([("y0", ("x1",), 3, -4), ("x0", ("y1",), -5, -5), ("y0", (), -3, -2),
                          ("x0", ("y0",), 5, -3), ("y0", ("x0", "x1"), -2, -6)],
                         x1_impulse=24, x1_tau=12, y1_impulse=40, y1_tau=9, rng_seed=11)
    supervised = LoihiLearning([("y0", ("x1", "y2"), -3, -3)], x1_impulse=30, x1_tau=10, third_factor=True,
                               rng_seed=5)
    pops = [Population("exc", LoihiLIF(n_exc, 4095, 300, 900)), Population("inh", LoihiLIF(n_exc, 4095, 600, 50)),
            Population("out", LoihiLIF(n_out, 3000, 200, 700))]
    projs = [
        Projection("in_exc", "in", "exc", LoihiDense(rng.integers(40, 200, (n_exc, n_in)), 8, 0, 2), stdp),
        Projection("exc_inh", "exc", "inh", LoihiDense(np.eye(n_exc, dtype=int) * 120, 8, 0, 2)),
        Projection("inh_exc", "inh", "exc", LoihiDense(-(1 - np.eye(n_exc, dtype=int)) * 90, 8, 1, 3)),
        Projection("in_out", "in", "out", LoihiDense(rng.integers(60, 250, (n_out, n_in)), 8, -1, 2), supervised),
    ]
    return Network("lava_equal", Input("in", n_in), pops, projs, "exc", 30)


def _stream(steps=360, n_in=24, seed=1):
    rng = np.random.default_rng(seed)
    p = np.repeat(rng.random((steps // 40, n_in)) * 0.35, 40, axis=0)   # a new "digit" every 40 steps
    return rng.random((steps, n_in)) < p


def _teacher(steps=360, n_out=3):
    label = (np.arange(steps) // 40) % n_out
    return (np.arange(n_out)[None, :] != label[:, None]).astype(np.int64) * THIRD_FACTOR_LEVEL


@pytest.mark.slow
def test_cpu_learning_equals_lava_weights_and_spikes():
    from neurocomp.backends.lava import run_stream_lava

    net, stream = _network(), _stream()
    teacher = {"in_out": _teacher()}
    cpu = run_stream(net, stream, teacher=teacher)
    lava = run_stream_lava(net, stream, teacher=teacher)
    for pop in ("exc", "inh", "out"):
        assert cpu.stream[pop].sum() > 20, pop            # the run does something
        assert np.array_equal(cpu.stream[pop], lava.stream[pop]), pop
    w0 = {p.name: p.synapse.weight for p in net.projections}
    for name in ("in_exc", "in_out"):
        assert np.abs(cpu.weights[name] - w0[name]).sum() > 50, name   # learning really changed weights
        assert np.array_equal(cpu.weights[name], lava.weights[name]), name
    # supervised depression only ever lowers weights, and only of wrongly firing output neurons
    assert (cpu.weights["in_out"] <= w0["in_out"]).all()


def test_engine_sign_and_stochastic_rounding_by_hand():
    """Hand-computed epochs of the engine (no Lava): pre-before-post potentiates by impulse*decay*scale,
    post-before-pre depresses, with Lava's floor/stochastic rounding."""
    rule = LoihiLearning([("y0", ("x1",), 1, 0), ("x0", ("y1",), -1, 0)], x1_impulse=40, x1_tau=10,
                         y1_impulse=40, y1_tau=10, rng_seed=3)
    eng = LoihiLearningEngine(rule, n_post=1, n_pre=2, sign_mode=2)
    w = np.array([[100, 100]])
    no = np.array([False])
    # t=1: pre 0 spikes -> x1[0] = 40; x0 term uses y1 = 0: no change
    w = eng.step(1, w, np.array([True, False]), no)
    assert w.tolist() == [[100, 100]] and eng.x1.tolist() == [40, 0]
    # t=2: post spikes -> x1[0] decays to 40*exp(-1/10) = 36.19 (36 or 37 by the stochastic rounding),
    # w0 += x1[0]; y1 = 40
    w = eng.step(2, w, np.array([False, False]), np.array([True]))
    assert w[0, 0] in (136, 137) and w[0, 0] == 100 + eng.x1[0] and w[0, 1] == 100
    # t=3: pre 1 spikes after the post spike -> w1 -= y1 (decayed once: 36 or 37)
    w = eng.step(3, w, np.array([False, True]), no)
    assert w[0, 1] in (63, 64) and w[0, 1] == 100 - eng.y[0]
