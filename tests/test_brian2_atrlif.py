"""Brian2 adaptive thresholds (Diehl & Cook's ``v > v_th + theta``, ``theta += theta_plus``) and refractory
periods map to ATRLIF: the parameters, Brian2 itself against the float IR on the same input spikes, and the
reference's learned-threshold plumbing (read back, written in, held during evaluation)."""
from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest

from neurocomp.backends.brian2_reference import Brian2Session
from neurocomp.backends.stream_engine import run_stream
from neurocomp.frontends.brian2 import Brian2Model, _refractory_decay
from neurocomp.ir import ATRLIF, LIF

SCRIPT = '''
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV
import numpy as np
tau_e = 20 * ms
tau_syn = 2 * ms
v_rest = -65 * mV
v_reset = -65 * mV
v_thresh = -52 * mV
theta_plus = 0.5 * mV
tau_theta = 200 * ms

def build(n_input=40, n=20, seed=0, refractory=5, decay=True, adaptive=True):
    defaultclock.dt = 1 * ms
    rng = np.random.default_rng(seed)
    inp = SpikeGeneratorGroup(n_input, [], [] * ms, name="inp")
    eqs = """dv/dt = (v_rest - v + I)/tau_e : volt (unless refractory)
             dI/dt = -I/tau_syn : volt
             """ + (("dtheta/dt = -theta/tau_theta : volt" if decay else "theta : volt") if adaptive else "")
    exc = NeuronGroup(n, eqs, threshold="v > v_thresh + theta" if adaptive else "v > v_thresh",
                      reset="v = v_reset; theta += theta_plus" if adaptive else "v = v_reset",
                      refractory=refractory * ms, method="exact", name="exc")
    exc.v = v_reset
    s = Synapses(inp, exc, "w : volt", on_pre="I_post += w", name="syn")
    s.connect()
    s.w = rng.uniform(0, 6, len(s)) * mV
    return [inp, exc, s]
'''


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    p = tmp_path_factory.mktemp("b2atr") / "net.py"
    p.write_text(textwrap.dedent(SCRIPT))
    return p


def _stream(seed=0, n_in=40, samples=20, steps=100):
    rng = np.random.default_rng(seed)
    p = np.repeat(rng.random((samples, n_in)) * 0.15, steps, axis=0)
    return rng.random(p.shape) < p


def test_diehl_cook_threshold_and_refractory_map_to_atrlif(script):
    m = Brian2Model(script, kwargs={"refractory": 5, "decay": True})
    n = m.network.population("exc").neuron
    assert isinstance(n, ATRLIF)
    alpha = math.exp(-1 / 20)
    assert n.theta0 == pytest.approx(13.0 / 2)                  # half the reset-threshold gap, mV
    assert n.theta_step == pytest.approx(0.5)                   # theta_plus, mV
    assert n.dtheta == pytest.approx(1 - math.exp(-1 / 200))
    assert n.dv == pytest.approx(1 - alpha) and n.di == pytest.approx(1 - math.exp(-1 / 2))
    # leak to rest -> bias, measured from the midpoint between reset and threshold
    assert np.allclose(n.bias, (1 - alpha) * (-65.0 - (-65.0 + 6.5)))
    assert n.dr == pytest.approx(_refractory_decay(alpha, 5)[0]) and n.dr < n.dv   # refractory: r decays slower
    info = m.neurons["exc"].report(1e-3)["atrlif"]
    assert info["refractory_steps"] == 5 and info["variable"] == "theta"
    # no refractory period: r decays exactly as v (w = v - r is the LIF, reset by subtraction)
    m1 = Brian2Model(script, kwargs={"refractory": 1, "decay": False})
    n1 = m1.network.population("exc").neuron
    assert n1.dr == n1.dv and n1.dtheta == 0.0
    # neither: a plain LIF as before
    assert isinstance(Brian2Model(script, kwargs={"refractory": 0, "adaptive": False}).network
                      .population("exc").neuron, LIF)


@pytest.mark.parametrize("kw", [{"refractory": 1, "decay": True}, {"refractory": 5, "decay": True},
                                {"refractory": 5, "decay": False}, {"refractory": 4, "adaptive": False}])
def test_brian2_and_the_float_atrlif_fire_alike(script, kw):
    m = Brian2Model(script, kwargs=kw)
    stream = _stream()
    b2 = Brian2Session(m).run_stream(stream)["exc"].sum(axis=0)
    ours = run_stream(m.network, stream).stream["exc"].sum(axis=0)
    assert b2.sum() > 300
    assert np.corrcoef(b2, ours)[0, 1] > 0.97
    assert abs(ours.sum() - b2.sum()) < 0.15 * b2.sum()


def test_reference_thresholds_read_written_and_held(script):
    m = Brian2Model(script, kwargs={"refractory": 5, "decay": True})
    session = Brian2Session(m)
    session.run_stream(_stream(samples=5))
    learned = session.thresholds()["exc"]
    assert learned.min() > m.network.population("exc").neuron.theta0      # the run raised them
    fresh = Brian2Session(Brian2Model(script, kwargs={"refractory": 5, "decay": True}))
    fresh.set_thresholds({"exc": learned})
    assert np.allclose(fresh.thresholds()["exc"], learned)
    fresh.run_stream(_stream(seed=1, samples=5), frozen_thresholds=["exc"])
    assert np.allclose(fresh.thresholds()["exc"], learned)                   # held: no increment, no decay
    fresh.run_stream(_stream(seed=2, samples=2))
    assert not np.allclose(fresh.thresholds()["exc"], learned)               # and released after
