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

def build(n_input=40, n=20, seed=0, refractory=5, decay=True, adaptive=True, follow=False, tp=0.5):
    defaultclock.dt = 1 * ms
    rng = np.random.default_rng(seed)
    inp = SpikeGeneratorGroup(n_input, [], [] * ms, name="inp")
    eqs = """dv/dt = (v_rest - v + I)/tau_e : volt (unless refractory)
             dI/dt = -I/tau_syn : volt
             """ + (("dtheta/dt = -theta/tau_theta : volt" if decay else "theta : volt") if adaptive else "")
    exc = NeuronGroup(n, eqs, threshold="v > v_thresh + theta" if adaptive else "v > v_thresh",
                      reset=(f"v = v_reset{' - theta' if follow else ''}; theta += {tp}*mV" if adaptive
                             else "v = v_reset"),
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


def _stream(seed=0, n_in=40, samples=20, steps=100, rate=0.15):
    rng = np.random.default_rng(seed)
    p = np.repeat(rng.random((samples, n_in)) * rate, steps, axis=0)
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


def _spike_error(script, kw, stream):
    """Relative difference of total spikes, float ATRLIF vs Brian2 itself."""
    m = Brian2Model(script, kwargs=kw)
    b2 = Brian2Session(m).run_stream(stream)["exc"].sum()
    ours = run_stream(m.network, stream).stream["exc"].sum()
    return abs(int(ours) - int(b2)) / b2


def test_a_reset_that_follows_the_threshold_is_atrlifs_own(script):
    """``v = v_reset - theta``: the same ATRLIF, without the approximation of a reset to v_reset (an adapted
    ATRLIF resets a below it); with large adapted thresholds Brian2 and the float ATRLIF then agree closely,
    where the plain reset drifts."""
    follow, plain = ({"refractory": 1, "decay": False, "follow": f} for f in (True, False))
    mf, mp = Brian2Model(script, kwargs=follow), Brian2Model(script, kwargs=plain)
    nf, np_ = mf.network.population("exc").neuron, mp.network.population("exc").neuron
    for f in ("di", "dv", "dtheta", "dr", "theta0", "theta_step", "bias"):
        assert np.array_equal(getattr(nf, f), getattr(np_, f)), f            # the same ATRLIF
    info = mf.neurons["exc"].report(1e-3)["atrlif"]
    assert info["reset_follows_threshold"] and "note" not in info
    assert "v = v_reset - theta" in mp.neurons["exc"].report(1e-3)["atrlif"]["note"]
    stream = _stream(steps=150, rate=0.4)         # thresholds adapt to ~7x theta0
    err_follow, err_plain = _spike_error(script, follow, stream), _spike_error(script, plain, stream)
    assert err_follow < 0.01 and err_plain > 3 * err_follow, (err_follow, err_plain)   # measured: 0.3 %, 4.2 %


def test_held_thresholds_keep_the_following_reset(script):
    """Frozen thresholds (evaluation) keep ``v = v_reset - theta``: Brian2 with theta held equals Brian2
    with theta_plus 0 and the same thresholds, spike for spike."""
    kw = {"refractory": 5, "decay": False, "follow": True}
    learner = Brian2Session(Brian2Model(script, kwargs=kw))
    learner.run_stream(_stream(samples=5))
    learned = learner.thresholds()["exc"]
    held = Brian2Session(Brian2Model(script, kwargs=kw))
    held.set_thresholds({"exc": learned})
    a = held.run_stream(_stream(seed=1, samples=5), frozen_thresholds=["exc"])["exc"]
    still = Brian2Session(Brian2Model(script, kwargs={**kw, "tp": 0}))
    still.set_thresholds({"exc": learned})
    b = still.run_stream(_stream(seed=1, samples=5))["exc"]
    assert a.sum() > 50 and np.array_equal(a, b)


@pytest.mark.parametrize("reset", ["v = v_reset - 2*theta; theta += theta_plus",
                                   "theta += theta_plus; v = v_reset - theta"])
def test_other_resets_on_theta_are_refused(tmp_path, reset):
    from neurocomp.errors import FrontendError
    p = tmp_path / "net.py"
    old = "reset=(f\"v = v_reset{' - theta' if follow else ''}; theta += {tp}*mV\" if adaptive"
    src = textwrap.dedent(SCRIPT)
    assert old in src
    p.write_text(src.replace(old, f"reset=({reset!r} if adaptive"))
    with pytest.raises(FrontendError, match="only as 'v = v_reset - theta', before 'theta"):
        Brian2Model(p, kwargs={"refractory": 1})
