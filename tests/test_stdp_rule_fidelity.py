"""The quantised learning rule against Brian2's own rule, open loop: Brian2's spike trains (input and
the post neurons it fired) are fed to the Loihi learning engine, so any difference in the learned
weights is the rule mapping's, not chaos in the network. This is what catches ordering effects: a
Loihi epoch updates the traces before it applies the rule, so a pre spike in the step its post neuron
fires sees that spike in ``y1``; Brian2 (on_pre before on_post) does not, and the quantiser adds a
coincidence term ``x0 * y0`` to take it back."""
from __future__ import annotations

import textwrap
from dataclasses import replace

import numpy as np
import pytest

from neurocomp.backends.learning_engine import LoihiLearningEngine
from neurocomp.backends.brian2_reference import Brian2Session
from neurocomp.frontends.brian2 import Brian2Model
from conftest import quantize_stream as quantize_stream_network
from neurocomp.targets import FixedPointFormat, load_descriptor

SCRIPT = textwrap.dedent("""
    from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV
    import numpy as np

    def build(seed=0):
        defaultclock.dt = 1 * ms
        inp = SpikeGeneratorGroup(16, [], [] * ms, name="inp")
        post = NeuronGroup(4, "dv/dt = -v/(10*ms) : volt", threshold="v > 6*mV", reset="v = 0*mV",
                           method="exact", name="post")
        s = Synapses(inp, post, '''w : volt
                                   dapre/dt = -apre/(16*ms) : volt (event-driven)
                                   dapost/dt = -apost/(16*ms) : volt (event-driven)''',
                     on_pre='''v_post += w
                               apre += 0.05*mV
                               w = clip(w + apost, 0*mV, 4*mV)''',
                     on_post='''apost += -0.03*mV
                                w = clip(w + apre - 0.02*mV, 0*mV, 4*mV)''', name="stdp")
        s.connect()
        s.w = np.random.default_rng(seed).uniform(1, 3, len(s)) * mV
        return [inp, post, s]
""")


@pytest.mark.slow
def test_quantised_rule_learns_what_brian2_learns_on_the_same_spikes(tmp_path):
    (tmp_path / "net.py").write_text(SCRIPT)
    model = Brian2Model(tmp_path / "net.py")
    stream = np.random.default_rng(1).random((3000, 16)) < np.linspace(0.05, 0.4, 16)
    q = quantize_stream_network(model.network, FixedPointFormat.from_descriptor(load_descriptor("loihi2")),
                                stream[:500])
    row = q.rules[0]
    assert row["coincidence_term"] != "0"
    session = Brian2Session(model)
    w0 = session.weights()["stdp"]
    trains = session.run_stream(stream, learn=True)
    w_b2 = session.weights()["stdp"]
    post = trains["post"]
    assert post.sum() > 200 and (stream & post.any(axis=1, keepdims=True)).sum() > 500   # many coincidences
    proj = q.fixed.projections[0]
    lsb = 2.0 ** proj.synapse.weight_exp / q.scales["post"]

    def learn(rule):
        eng = LoihiLearningEngine(rule, *proj.synapse.shape, proj.synapse.sign_mode)
        w = proj.synapse.weight.astype(np.int64).copy()
        for t in range(len(stream)):
            w = eng.step(t + 1, w, stream[t], post[t])
        return w * lsb

    w_loihi = learn(proj.plasticity)
    plain = replace(proj.plasticity, terms=tuple(t for t in proj.plasticity.terms if t[1] != ("y0",)))
    w_plain = learn(plain)
    dw_b2 = w_b2 - w0
    err = abs((w_loihi - w0).mean() - dw_b2.mean())
    err_plain = abs((w_plain - w0).mean() - dw_b2.mean())
    # the mean weight change agrees to 4 % of its size (what is left: the learning rates' fit to
    # Lava's mantissa grid, reported per term, and a 5-level post trace at this high post rate) ...
    assert err < 0.04 * np.abs(dw_b2).mean()
    assert np.abs(w_loihi - w_b2).mean() < 8 * lsb
    # ... and without the coincidence term the same spikes learn measurably further from Brian2
    assert err_plain > 1.5 * err
