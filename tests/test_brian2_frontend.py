"""Brian2 front end: real Brian2 objects -> float IR (numbers checked against hand derivations),
Brian2 float vs Lava fixed point on a fixed input, and one-line refusals of what does not map."""
from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from neurocomp.errors import FrontendError
from neurocomp.backends.brian2_reference import Brian2Session
from neurocomp.frontends.brian2 import Brian2Model, _synaptic_gain

REPO = Path(__file__).resolve().parents[1]

FEEDFORWARD = """
from brian2 import *
from brian2 import seed as seed_brian2
import numpy as np

tau_m = 20 * ms
tau_s = 5 * ms
tau_out = 10 * ms
v_rest = -65 * mV
v_reset = -65 * mV
v_th = -55 * mV

def build(steps=300, rate=0.05, seed=1, n_in=40, n_hid=30, n_out=10, method="exact", w_out=0.7):
    defaultclock.dt = 1 * ms
    seed_brian2(seed)                      # connect(p=...) draws from Brian2's generator
    rng = np.random.default_rng(seed)
    k, i = np.nonzero(rng.random((steps, n_in)) < rate)
    inp = SpikeGeneratorGroup(n_in, i, k * defaultclock.dt, name="inp")
    hid = NeuronGroup(n_hid, '''dv/dt = (v_rest - v + I)/tau_m : volt
                                dI/dt = -I/tau_s : volt''',
                      threshold="v > v_th", reset="v = v_reset", method=method, name="hid")
    out = NeuronGroup(n_out, "dv/dt = (v_rest - v)/tau_out : volt", threshold="v > v_th",
                      reset="v = v_reset", method=method, name="out")
    hid.v = v_reset
    out.v = v_reset
    s1 = Synapses(inp, hid, "w : volt", on_pre="I_post += w", name="in_hid")
    s1.connect(p=0.5)
    s1.w = rng.normal(6, 6, len(s1)) * mV
    s2 = Synapses(hid, out, "w : volt", on_pre="v_post += w", name="hid_out")
    s2.connect()
    s2.w = rng.normal(w_out, 1.0, len(s2)) * mV
    return [inp, hid, out, s1, s2]
"""


def _script(tmp_path: Path, body: str, name: str = "net.py") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def test_lif_mapping_numbers(tmp_path):
    m = Brian2Model(_script(tmp_path, FEEDFORWARD), "build", {})
    hid, out = m.network.population("hid").neuron, m.network.population("out").neuron
    dt, tau_m, tau_s, tau_out = 1e-3, 20e-3, 5e-3, 10e-3
    assert hid.dv == pytest.approx(1 - math.exp(-dt / tau_m))
    assert hid.du == pytest.approx(1 - math.exp(-dt / tau_s))
    assert out.du == 1.0 and out.dv == pytest.approx(1 - math.exp(-dt / tau_out))
    assert hid.vth == pytest.approx(10.0) and out.vth == pytest.approx(10.0)      # mV above reset
    assert np.allclose(hid.bias, 0) and np.allclose(out.bias, 0)                   # v_rest == v_reset
    # weights: a current jump is worth k*G (k = 1/tau_m), a voltage jump alpha_m, in mV
    syn = m.synapse_objects["in_hid"]
    w_ir = m.network.projections[0].synapse.weight
    G = _synaptic_gain(dt, tau_m, tau_s)
    assert G == pytest.approx((math.exp(-dt / tau_s) - math.exp(-dt / tau_m)) / (1 / tau_m - 1 / tau_s))
    assert w_ir[syn.j[0], syn.i[0]] == pytest.approx(float(syn.w[0]) * 1e3 * G / tau_m)
    syn2 = m.synapse_objects["hid_out"]
    w2 = m.network.projections[1].synapse.weight
    assert w2[syn2.j[5], syn2.i[5]] == pytest.approx(float(syn2.w[5]) * 1e3 * math.exp(-dt / tau_out))
    assert m.network.output == "out" and m.network.input.size == 40
    assert m.script_stream is not None and m.script_stream.shape[1] == 40


def test_euler_and_resting_potential_bias(tmp_path):
    body = """
    from brian2 import *
    def build():
        defaultclock.dt = 0.5 * ms
        inp = SpikeGeneratorGroup(2, [0], [1] * ms, name="inp")
        g = NeuronGroup(3, "dv/dt = (-70*mV - v + I_ext)/(10*ms) : volt\\nI_ext : volt", threshold="v > -50*mV",
                        reset="v = -75*mV", method="euler", name="g")
        g.I_ext = [0, 5, 10] * mV
        s = Synapses(inp, g, on_pre="v_post += 2*mV", name="s")
        s.connect()
        return [inp, g, s]
    """
    m = Brian2Model(_script(tmp_path, body), "build", {})
    n = m.network.population("g").neuron
    a = 0.5 / 10                                  # euler: dt/tau
    assert n.dv == pytest.approx(a) and n.vth == pytest.approx(25.0)
    # leak towards v_inf = -70 + I_ext, measured from the reset -75 mV: bias = a * (v_inf - v_reset)
    assert np.allclose(n.bias, a * (np.array([-70, -65, -60]) + 75))
    assert np.allclose(m.network.projections[0].synapse.weight, 2.0 * (1 - a))


@pytest.mark.slow
def test_brian2_float_vs_lava_fixed_point_spike_counts(tmp_path):
    """Done-criterion: a fixed-input non-plastic Brian2 network and its compiled (Lava fixed-point)
    version agree neuron by neuron: spike-count correlation >= 0.95; cpu equals Lava exactly."""
    from neurocomp.backends.lava import run_stream_lava
    from neurocomp.backends.stream_engine import run_stream
    from conftest import quantize_stream as quantize_stream_network
    from neurocomp.targets import FixedPointFormat, load_descriptor

    m = Brian2Model(_script(tmp_path, FEEDFORWARD), "build", {})
    stream = np.concatenate([m.script_stream, np.zeros((320 - len(m.script_stream), 40), bool)])
    ref = Brian2Session(m).run_stream(stream, learn=False)
    q = quantize_stream_network(m.network, FixedPointFormat.from_descriptor(load_descriptor("loihi2")), stream)
    lava = run_stream_lava(q.fixed, stream)
    cpu = run_stream(q.fixed, stream)
    # current-based 'hid' matches in totals too; voltage-only 'out' fires more on Loihi: Brian2 applies
    # a spike's jump after the threshold and resets after it, so a jump arriving in a step where the
    # neuron fires is lost; Lava delivers it one step later, after the reset (module docstring)
    for pop, ratio in (("hid", (0.9, 1.1)), ("out", (0.9, 1.5))):
        a, b = ref[pop].sum(axis=0), lava.stream[pop].sum(axis=0)
        assert a.sum() > 50 and np.corrcoef(a, b)[0, 1] >= 0.95, (pop, a, b)
        assert ratio[0] <= b.sum() / a.sum() <= ratio[1], (pop, a.sum(), b.sum())
        assert np.array_equal(cpu.stream[pop], lava.stream[pop])


# ------------------------------------------------------------------------------ refusals
HEADER = """
from brian2 import *
def build():
    defaultclock.dt = 1 * ms
    inp = SpikeGeneratorGroup(2, [0], [1] * ms, name="inp")
"""

REFUSALS = {
    "izhikevich": ("""
    g = NeuronGroup(2, '''dv/dt = (0.04*v**2/mV + 5*v + 140*mV - u)/ms : volt
                          du/dt = 0.02*(0.2*v - u)/ms : volt''', threshold="v > 30*mV", reset="v = -65*mV", name="izh")
    s = Synapses(inp, g, on_pre="v_post += 1*mV")
    s.connect()
    return [inp, g, s]
    """, ["NeuronGroup 'izh'", "dv/dt", "nonlinear"]),
    "hodgkin_huxley": ("""
    g = NeuronGroup(1, '''dv/dt = (-(0.3*msiemens)*(v - 10*mV) - 120*msiemens*m**3*h*(v - 115*mV) - 36*msiemens*n**4*(v + 12*mV))/(1*ufarad) : volt
                          dm/dt = 0.1/mV*(25*mV - v)/(exp((25*mV - v)/(10*mV)) - 1)/ms*(1 - m) - 4*exp(-v/(18*mV))/ms*m : 1
                          dh/dt = 0.07*exp(-v/(20*mV))/ms*(1 - h) - 1/(exp((30*mV - v)/(10*mV)) + 1)/ms*h : 1
                          dn/dt = 0.01/mV*(10*mV - v)/(exp((10*mV - v)/(10*mV)) - 1)/ms*(1 - n) - 0.125*exp(-v/(80*mV))/ms*n : 1''',
                    threshold="v > 40*mV", reset="v = 0*mV", name="hh")
    s = Synapses(inp, g, on_pre="v_post += 1*mV")
    s.connect()
    return [inp, g, s]
    """, ["NeuronGroup 'hh'", "equation", "not leaky integrate-and-fire"]),
    "conductance": ("""
    g = NeuronGroup(2, '''dv/dt = (-v + ge*(60*mV - v))/(10*ms) : volt
                          dge/dt = -ge/(5*ms) : 1''', threshold="v > 10*mV", reset="v = 0*mV", name="cond")
    s = Synapses(inp, g, on_pre="ge_post += 0.1")
    s.connect()
    return [inp, g, s]
    """, ["NeuronGroup 'cond'", "dv/dt", "nonlinear"]),
    "adaptive_threshold_scaled": ("""
    g = NeuronGroup(2, '''dv/dt = -v/(10*ms) : volt
                          dtheta/dt = -theta/(100*ms) : volt''', threshold="v > 10*mV + 2*theta",
                    reset="v = 0*mV; theta += 1*mV", name="adapt")
    s = Synapses(inp, g, on_pre="v_post += 1*mV")
    s.connect()
    return [inp, g, s]
    """, ["NeuronGroup 'adapt'", "adaptive threshold", "v_th + theta"]),
    "adaptive_threshold_not_reset": ("""
    g = NeuronGroup(2, '''dv/dt = -v/(10*ms) : volt
                          dtheta/dt = -theta/(100*ms) : volt''', threshold="v > 10*mV + theta",
                    reset="v = 0*mV", name="adapt")
    s = Synapses(inp, g, on_pre="v_post += 1*mV")
    s.connect()
    return [inp, g, s]
    """, ["NeuronGroup 'adapt'", "adaptive threshold", "does not increment"]),
    "refractory_condition": ("""
    g = NeuronGroup(2, "dv/dt = -v/(10*ms) : volt (unless refractory)", threshold="v > 10*mV",
                    reset="v = 0*mV", refractory="v > 5*mV", name="refr")
    s = Synapses(inp, g, on_pre="v_post += 1*mV")
    s.connect()
    return [inp, g, s]
    """, ["NeuronGroup 'refr'", "a condition"]),
    "delay": ("""
    g = NeuronGroup(2, "dv/dt = -v/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV", name="g")
    s = Synapses(inp, g, on_pre="v_post += 1*mV", delay=3*ms, name="late")
    s.connect()
    return [inp, g, s]
    """, ["Synapses 'late'", "delays"]),
    "summed": ("""
    g = NeuronGroup(2, "dv/dt = (-v + I)/(10*ms) : volt\\nI : volt", threshold="v > 10*mV", reset="v = 0*mV", name="g")
    s = Synapses(inp, g, "w : volt\\nI_post = w : volt (summed)", name="gap")
    s.connect()
    return [inp, g, s]
    """, ["Synapses 'gap'", "(summed)"]),
    "timed_array_current": ("""
    stim = TimedArray([0, 1, 0] * mV, dt=1*ms)
    g = NeuronGroup(2, "dv/dt = (stim(t) - v)/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV", name="ta")
    s = Synapses(inp, g, on_pre="v_post += 1*mV")
    s.connect()
    return [inp, g, s]
    """, ["NeuronGroup 'ta'", "time"]),
    "subgroup": ("""
    g = NeuronGroup(4, "dv/dt = -v/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV", name="g")
    s = Synapses(inp, g[:2], on_pre="v_post += 1*mV", name="part")
    s.connect()
    return [inp, g, s]
    """, ["Synapses 'part'", "subgroup"]),
    "poisson_input": ("""
    g = NeuronGroup(2, "dv/dt = -v/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV", name="g")
    p = PoissonInput(g, "v", 10, 5*Hz, weight=1*mV)
    s = Synapses(inp, g, on_pre="v_post += 1*mV")
    s.connect()
    return [inp, g, s, p]
    """, ["PoissonInput", "not supported"]),
    "unbounded_stdp": ("""
    g = NeuronGroup(2, "dv/dt = -v/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV", name="g")
    s = Synapses(inp, g, '''w : volt
                            dapre/dt = -apre/(20*ms) : volt (event-driven)''',
                 on_pre="v_post += w\\napre += 0.1*mV", on_post="w += apre", name="free")
    s.connect()
    return [inp, g, s]
    """, ["Synapses 'free'", "clip"]),
    "post_before_pre_order": ("""
    g = NeuronGroup(2, "dv/dt = -v/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV", name="g")
    s = Synapses(inp, g, '''w : volt
                            dapre/dt = -apre/(20*ms) : volt (event-driven)
                            dapost/dt = -apost/(20*ms) : volt (event-driven)''',
                 on_pre="v_post += w\\napre += 0.1*mV\\nw = clip(w + apost, 0*mV, 4*mV)",
                 on_post="apost += -0.1*mV\\nw = clip(w + apre, 0*mV, 4*mV)", name="swapped")
    s.connect()
    s.pre.order, s.post.order = 1, -1
    return [inp, g, s]
    """, ["Synapses 'swapped'", "on_pre first"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unsupported_constructs_fail_with_one_line_naming_object(tmp_path, case):
    body, needles = REFUSALS[case]
    script = _script(tmp_path, HEADER + textwrap.indent(textwrap.dedent(body), "    "))
    with pytest.raises(FrontendError) as err:
        Brian2Model(script, "build", {})
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


@pytest.mark.slow  # runs Brian2 (or a subprocess)
def test_cli_exit_code_2_and_no_build_dir(tmp_path):
    body, _ = REFUSALS["izhikevich"]
    _script(tmp_path, HEADER + textwrap.indent(textwrap.dedent(body), "    "))
    (tmp_path / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: izh
        source: {kind: brian2, script: net.py}
        dataset: {name: digits, holdout: 100}
    """))
    out = tmp_path / "build"
    proc = subprocess.run([sys.executable, "-m", "neurocomp", "compile", str(tmp_path / "model.yaml"),
                           "--target", "cpu", "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "NeuronGroup 'izh'" in lines[0] and "nonlinear" in lines[0]
    assert not out.exists()
