"""One pipeline, two schedules: the schedule follows the network's properties (never its source), and
a network that can run either way gives the same spikes both ways — on cpu and on Lava."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from neurocomp.backends import get_backend
from neurocomp.ir import LIF, Dense, Input, Network, Population, Projection, STDP
from neurocomp.ir.schedule import BATCHED, STREAM, Schedule, choose_schedule, fold_stream, to_stream, unfold_windows

FF_BRIAN2 = '''
from brian2 import NeuronGroup, PoissonGroup, Synapses, defaultclock, ms, mV, Hz
import numpy as np

def build(seed=3):
    """64 Poisson inputs -> 24 LIF -> 10 LIF, no plasticity, no recurrence: layered feed-forward.
    Leak to the reset value (no bias), so a neuron left alone decays to exactly 0 on Loihi."""
    defaultclock.dt = 1 * ms
    rng = np.random.default_rng(seed)
    inp = PoissonGroup(64, rates=0 * Hz, name="inp")
    hid = NeuronGroup(24, "dv/dt = -v/(10*ms) : volt", threshold="v > 8*mV", reset="v = 0*mV",
                      method="exact", name="hid")
    out = NeuronGroup(10, "dv/dt = -v/(10*ms) : volt", threshold="v > 6*mV", reset="v = 0*mV",
                      method="exact", name="out")
    s1 = Synapses(inp, hid, "w : volt", on_pre="v_post += w", name="in_hid")
    s1.connect()
    s1.w = rng.uniform(-1, 3, len(s1)) * mV
    s2 = Synapses(hid, out, "w : volt", on_pre="v_post += w", name="hid_out")
    s2.connect()
    s2.w = rng.uniform(-2, 5, len(s2)) * mV
    return [inp, hid, out, s1, s2]
'''


def _net(recurrent=False, plastic=False):
    pops = [Population("a", LIF(3, 0.2, 0.1, 1.0)), Population("b", LIF(2, 0.2, 0.1, 1.0))]
    rule = STDP(taupre=5, taupost=5, Apre=0.01, Apost=-0.01, wmax=1.0) if plastic else None
    projs = [Projection("in_a", "in", "a", Dense(np.full((3, 4), 0.5)), rule),
             Projection("a_b", "a", "b", Dense(np.full((2, 3), 0.5)))]
    if recurrent:
        projs.append(Projection("b_b", "b", "b", Dense(-np.eye(2))))
    return Network("n", Input("in", 4), pops, projs, "b", 5)


def test_schedule_follows_the_network():
    assert choose_schedule(_net(), 5).kind == BATCHED
    assert choose_schedule(_net(recurrent=True), 5, rest=7) == Schedule(STREAM, 5, 7)
    assert choose_schedule(_net(plastic=True), 5, rest=3).kind == STREAM
    with pytest.raises(ValueError, match="no rest steps"):
        Schedule(BATCHED, 5, rest=2)


def test_stream_windows_round_trip():
    rng = np.random.default_rng(0)
    samples = rng.random((4, 6, 3)) < 0.4
    stream = to_stream(samples, rest=2)
    assert stream.shape == (32, 3) and not stream.reshape(4, 8, 3)[:, 6:].any()
    windows = fold_stream(stream, 4, 8, delay=2)
    for k in range(4):          # sample k owns stream steps k*8 + 2 .. k*8 + 9 (past the end: zeros)
        for t in range(8):
            step = k * 8 + 2 + t
            want = stream[step] if step < len(stream) else np.zeros(3, bool)
            assert np.array_equal(windows[k, t], want)
    assert np.array_equal(unfold_windows(windows, 2, len(stream))[2:], stream[2:])


@pytest.mark.slow
def test_feedforward_brian2_runs_batched_and_equals_its_stream_run(tmp_path):
    """A layered, non-plastic Brian2 network compiles on the batched schedule (loihi-sim equal to
    cpu on the samples it runs); played as one stream with rests long enough for every u and v to
    decay to exactly 0, every sample's spikes equal the batched run's — on cpu and on Lava."""
    from neurocomp.pipeline import compile_model, load_build

    (tmp_path / "ff.py").write_text(FF_BRIAN2)
    (tmp_path / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: ff_brian2
        source: {kind: brian2, script: ff.py}
        input: {encoding: rate, max_rate: 0.5, timesteps: 20}
        dataset: {name: digits, holdout: 60}
        verify: {samples: 4}
    """))
    report = compile_model(tmp_path / "model.yaml", target="loihi-sim", out=tmp_path / "build")
    assert report["schedule"]["kind"] == BATCHED and report["mode"] == "batched"
    assert report["agreement"]["target_vs_cpu"]["identical_spike_trains"] == 1.0
    build = load_build(tmp_path / "build")
    spikes = build.plan(5).test.spikes
    T = build.schedule.timesteps
    stream = Schedule(STREAM, T, rest=240)
    for target in ("cpu", "loihi-sim"):
        b = get_backend(target)
        batched = b.run(build.frozen, spikes, build.schedule, record=True)
        streamed = b.run(build.frozen, spikes, stream, record=True, probe=(target == "cpu"))
        if target == "cpu":   # the premise: every window ends at rest (nothing carries into the next sample)
            for name, st in streamed.states.items():
                assert not st["u"][:, -1].any() and not st["v"][:, -1].any(), name
        for p in build.frozen.populations:
            assert streamed.spikes[p.name][:, :T].any(), p.name
            assert np.array_equal(streamed.spikes[p.name][:, :T], batched.spikes[p.name]), (target, p.name)
            assert not streamed.spikes[p.name][:, T:].any(), (target, p.name)
