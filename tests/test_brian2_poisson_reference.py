"""A Brian2 reference for scripts whose input is a PoissonGroup: Brian2 runs the user's own PoissonGroup
at the target encoder's per-step rates (its own random draws), so the reference agrees with the target
in distribution, not spike for spike. Checked: a small Diehl & Cook-style script compiles with a
numeric reference accuracy; Brian2's Poisson counts per channel match the encoder's rates within
binomial tolerances (and so do the encoder's own spikes, tying the two to one probability); rates that
cannot be set per sample give a one-line reason."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from neurocomp.ir.encodings import encode
from neurocomp.errors import FrontendError
from neurocomp.backends.brian2_reference import Brian2Session, SampleRates
from neurocomp.frontends.brian2 import Brian2Model
from neurocomp.ir import LatencyEncoding, RateEncoding

# models/diehl_cook/net.py itself, its input swapped for a PoissonGroup with constant (settable) rates
REPO = Path(__file__).resolve().parents[1]
_DC = (REPO / "models/diehl_cook/net.py").read_text()
DC_POISSON = _DC.replace('inp = SpikeGeneratorGroup(n_input, [], [] * ms, name="inp")',
                         'inp = PoissonGroup(n_input, rates=0 * Hz, name="inp")').replace(
    "from brian2 import NeuronGroup, SpikeGeneratorGroup,", "from brian2 import Hz, NeuronGroup, PoissonGroup,")
assert "PoissonGroup(n_input" in DC_POISSON and "import Hz," in DC_POISSON

# a PoissonGroup and a SpikeMonitor on it (the script's own monitor records Brian2's draws)
POISSON_PROBE = """
from brian2 import Hz, NeuronGroup, PoissonGroup, SpikeMonitor, Synapses, TimedArray, defaultclock, ms, mV
import numpy as np

def build(n_in=24, timed=False):
    defaultclock.dt = 1 * ms
    if timed:
        ta = TimedArray(np.full((10, n_in), 20.0) * Hz, dt=defaultclock.dt)
        inp = PoissonGroup(n_in, rates="ta(t, i)", name="inp")
    else:
        inp = PoissonGroup(n_in, rates=7 * Hz, name="inp")
    out = NeuronGroup(2, "dv/dt = -v/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV",
                      method="exact", name="out")
    syn = Synapses(inp, out, on_pre="v_post += 1*mV", name="inp_out")
    syn.connect()
    return [inp, out, syn, SpikeMonitor(inp, name="inp_spikes")]
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.slow
def test_dc_style_poisson_script_compiles_with_a_reference_accuracy(tmp_path):
    from neurocomp.pipeline import compile_model

    _write(tmp_path / "net.py", DC_POISSON)
    (tmp_path / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: dc_poisson
        source: {kind: brian2, script: net.py, kwargs: {n_exc: 10}}
        input: {encoding: rate, max_rate: 0.5, timesteps: 15}
        dataset: {name: digits, holdout: 100}
        learning: {samples: 16, label_samples: 12, test_samples: 24, rest_steps: 5}
    """))
    report = compile_model(tmp_path / "model.yaml", target="cpu", out=tmp_path / "build")
    ln = report["learning"]
    assert report["brian2"]["input"]["kind"] == "PoissonGroup"
    assert "reference_error" not in ln, ln.get("reference_error")
    assert isinstance(ln["reference_accuracy"], float) and 0.0 <= ln["reference_accuracy"] <= 1.0
    assert ln["reference_input"].startswith("poisson:")
    # Brian2 learned on its own draws: its STDP moved the weights (no input spikes, no change)
    assert ln["reference_weight_change"] > 0 and ln["weight_change"] > 0
    assert report["timing_s"]["brian2"] > 0


def test_poisson_counts_match_the_encoders_rates(tmp_path):
    """Per sample and channel, Brian2's PoissonGroup count over ``T`` steps is Binomial(T, p) with p
    the encoder's probability; rests and p = 0 channels stay silent; the script's rates come back."""
    n_in, T, R, n = 24, 200, 20, 6
    m = Brian2Model(_write(tmp_path / "probe.py", POISSON_PROBE), "build", {"n_in": n_in})
    s = Brian2Session(m)
    assert s.reference_input.startswith("poisson:")
    rng = np.random.default_rng(3)
    x = rng.random((n, n_in))
    x[:, :3] = 0.0                       # silent channels
    x[:, 3] = 1.0                        # white pixels: p = max_rate
    x[0, 4] = 1.7                        # out of range: the encoder clips to 1
    enc = RateEncoding(max_rate=0.5)
    rates = SampleRates(x, enc, T, R, seed=11)
    p = rates.probabilities()            # [n, n_in]
    stream = np.zeros((rates.steps, n_in), dtype=bool)   # only its length matters for a PoissonGroup
    s.run_stream(stream, learn=False, rates=rates)
    mon = next(o for o in m.objects if o.name == "inp_spikes")
    steps = np.rint(np.asarray(mon.t[:]) / m.dt).astype(np.int64)
    counts = np.zeros((n, T + R, n_in), dtype=np.int64)
    np.add.at(counts, (steps // (T + R), steps % (T + R), np.asarray(mon.i[:])), 1)
    assert counts[:, T:].sum() == 0                      # rest steps: rate 0
    assert counts[:, :, :3].sum() == 0                   # p = 0
    shown = counts[:, :T].sum(axis=1)                    # [n, n_in] spikes per sample and channel
    std = np.sqrt(T * p * (1 - p))
    assert np.all(np.abs(shown - T * p) <= 5 * std + 1e-9), np.abs(shown - T * p).max()
    # over the whole stream, per channel: the sum of independent binomials
    per_channel, mean, sd = shown.sum(axis=0), T * p.sum(axis=0), np.sqrt((T * p * (1 - p)).sum(axis=0))
    assert np.all(np.abs(per_channel - mean) <= 4 * sd + 1e-9)
    # the encoder's own spikes follow the very same probabilities (one rate code, two samplers)
    own = encode(x, enc, T, seed=0).sum(axis=1)
    assert np.all(np.abs(own - T * p) <= 5 * std + 1e-9)
    # a rate mistake of 2x anywhere would be far outside: the check can fail
    assert np.abs(per_channel[3:] - 2 * mean[3:]).min() > 4 * sd[3:].max()
    assert np.allclose(np.asarray(m.input_group.rates_[:]), 7.0)   # the script's rates restored


def test_poisson_rates_that_cannot_be_set_give_one_line_reasons(tmp_path):
    timed = Brian2Model(_write(tmp_path / "probe.py", POISSON_PROBE), "build", {"n_in": 8, "timed": True})
    rates = SampleRates(np.full((2, 8), 0.5), RateEncoding(max_rate=1.0), 5, 1)
    with pytest.raises(FrontendError) as e:
        Brian2Session(timed).run_stream(np.zeros((12, 8), dtype=bool), learn=False, rates=rates)
    msg = str(e.value)
    assert "\n" not in msg and "'inp'" in msg and "ta(t, i)" in msg and "constant rates" in msg
    const = Brian2Session(Brian2Model(tmp_path / "probe.py", "build", {"n_in": 8}))
    with pytest.raises(FrontendError, match="LatencyEncoding: Poisson draws reproduce a rate code only"):
        const.run_stream(np.zeros((12, 8), dtype=bool), learn=False,
                         rates=SampleRates(np.full((2, 8), 0.5), LatencyEncoding(), 5, 1))
    with pytest.raises(FrontendError, match="cover 12 steps, the stream has 13"):
        const.run_stream(np.zeros((13, 8), dtype=bool), learn=False, rates=rates)
    with pytest.raises(FrontendError, match="cannot replay the exact spike stream"):
        const.run_stream(np.zeros((12, 8), dtype=bool), learn=False)      # no rates given


@pytest.mark.slow
def test_compile_with_timed_array_rates_reports_the_reason(tmp_path):
    script = _write(tmp_path / "net.py", DC_POISSON.replace(
        'inp = PoissonGroup(n_input, rates=0 * Hz, name="inp")',
        'ta = TimedArray(np.full((5, n_input), 30.0) * Hz, dt=defaultclock.dt)\n'
        '    inp = PoissonGroup(n_input, rates="ta(t, i)", name="inp")').replace(
        "import Hz,", "import Hz, TimedArray,"))
    (tmp_path / "model.yaml").write_text(textwrap.dedent(f"""
        neurocomp: 1
        name: dc_timed
        source: {{kind: brian2, script: {script.name}, kwargs: {{n_exc: 4}}}}
        input: {{encoding: rate, max_rate: 0.5, timesteps: 10}}
        dataset: {{name: digits, holdout: 100}}
        learning: {{samples: 4, label_samples: 10, test_samples: 10, rest_steps: 2}}
    """))
    from neurocomp.pipeline import compile_model

    ln = compile_model(tmp_path / "model.yaml", target="cpu", out=tmp_path / "build")["learning"]
    assert ln["reference_accuracy"] is None and "reference_input" not in ln
    assert "\n" not in ln["reference_error"] and "constant rates" in ln["reference_error"]
    assert isinstance(ln["accuracy"], float)               # the target's own result is unaffected
