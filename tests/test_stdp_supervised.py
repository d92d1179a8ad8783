"""Supervised depression (third factor): output neurons that fire when their teacher says they should
be silent lose the synapses that made them fire. Written in Brian2, mapped to Lava's Loihi3F rule
(teacher into ``y2``), compared with Brian2's own run of the same script."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from neurocomp.backends.stream_engine import run_stream
from neurocomp.backends.brian2_reference import Brian2Session
from neurocomp.frontends.brian2 import Brian2Model
from neurocomp.ir import LoihiLearning, SupervisedDepression
from conftest import quantize_stream as quantize_stream_network
from neurocomp.ir.plasticity import THIRD_FACTOR_LEVEL
from neurocomp.targets import FixedPointFormat, load_descriptor

SCRIPT = """
from brian2 import *
import numpy as np

wmax = 4 * mV
Apre = 0.3 * mV

def build(steps=300, seed=0):
    defaultclock.dt = 1 * ms
    rng = np.random.default_rng(seed)
    k, i = np.nonzero(rng.random((steps, 16)) < 0.15)
    inp = SpikeGeneratorGroup(16, i, k * defaultclock.dt, name="inp")
    out = NeuronGroup(2, '''dv/dt = -v/(10*ms) : volt
                            wrong : 1''', threshold="v > 10*mV", reset="v = 0*mV", method="exact", name="out")
    out.wrong = [1, 0]          # neuron 0 should stay silent (wrong class), neuron 1 may fire
    s = Synapses(inp, out, '''w : volt
                              dapre/dt = -apre/(10*ms) : volt (event-driven)''',
                 on_pre='''v_post += w
                           apre += Apre''',
                 on_post="w = clip(w - apre * wrong_post, 0*mV, wmax)", name="readout")
    s.connect()
    s.w = 2.5 * mV
    return [inp, out, s]
"""


@pytest.mark.slow  # runs Brian2 (or a subprocess)
def test_supervised_depression_brian2_vs_cpu(tmp_path):
    (tmp_path / "sup.py").write_text(textwrap.dedent(SCRIPT))
    m = Brian2Model(tmp_path / "sup.py", "build", {})
    rule = m.network.projections[0].plasticity
    assert isinstance(rule, SupervisedDepression)
    stream = np.concatenate([m.script_stream, np.zeros((10, 16), dtype=bool)])
    q = quantize_stream_network(m.network, FixedPointFormat.from_descriptor(load_descriptor("loihi2")), stream)
    fixed_rule = q.fixed.projections[0].plasticity
    assert isinstance(fixed_rule, LoihiLearning) and fixed_rule.third_factor
    assert [t[:2] for t in fixed_rule.terms] == [("y0", ("x1", "y2"))]
    s = Brian2Session(m)
    w0 = s.weights()["readout"]
    ref = s.run_stream(stream, learn=True)
    dw_b2 = s.weights()["readout"] - w0
    teacher = {"readout": np.tile(np.array([THIRD_FACTOR_LEVEL, 0]), (len(stream), 1))}
    cpu = run_stream(q.fixed, stream, teacher=teacher)
    lsb = q.rules[0]["weight_lsb"]
    dw_cpu = (cpu.weights["readout"] - q.fixed.projections[0].synapse.weight) * lsb
    assert ref["out"][:, 1].sum() > 5                      # the allowed neuron fires and keeps its weights
    assert np.all(dw_b2[1] == 0) and np.all(dw_cpu[1] == 0)
    assert dw_b2[0].sum() < 0 and dw_cpu[0].sum() < 0      # the wrong neuron is depressed in both
    assert dw_cpu[0].sum() == pytest.approx(dw_b2[0].sum(), rel=0.2)
    assert cpu.stream["out"][:, 0].sum() <= ref["out"][:, 0].sum() + 3


@pytest.mark.slow
def test_supervised_depression_lava_equals_cpu(tmp_path):
    from neurocomp.backends.lava import run_stream_lava

    (tmp_path / "sup.py").write_text(textwrap.dedent(SCRIPT))
    m = Brian2Model(tmp_path / "sup.py", "build", {"steps": 150})
    stream = np.concatenate([m.script_stream, np.zeros((10, 16), dtype=bool)])
    q = quantize_stream_network(m.network, FixedPointFormat.from_descriptor(load_descriptor("loihi2")), stream)
    teacher = {"readout": np.tile(np.array([THIRD_FACTOR_LEVEL, 0]), (len(stream), 1))}
    lava = run_stream_lava(q.fixed, stream, teacher=teacher)
    cpu = run_stream(q.fixed, stream, teacher=teacher)
    assert np.array_equal(lava.weights["readout"], cpu.weights["readout"])
    assert (cpu.weights["readout"][0] < q.fixed.projections[0].synapse.weight[0]).any()
