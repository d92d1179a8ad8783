"""``input.encoding: sinusoid``: a pixel ``p`` oscillates at ``p * max_freq`` Hz (dt = 1 ms per step) and
spikes on the step holding each peak of ``sin(2 pi f t dt)``; the spec refuses bad ``max_freq`` in one
line (exit 2); the encoding goes through a batched compile, a stream compile with Brian2 replaying the
same spikes, and a network file."""
from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_tiny_model

from neurocomp.cli.main import cli
from neurocomp.errors import NeurocompError
from neurocomp.ir import Input, Network, load_network, save_network
from neurocomp.ir.encodings import SinusoidEncoding, encode
from neurocomp.spec import input_encoding, load_spec

REPO = Path(__file__).resolve().parents[1]


def _steps(x, timesteps, max_freq=64.0):
    """The spike steps of each pixel of one sample."""
    s = encode(np.asarray([x], dtype=float), SinusoidEncoding(max_freq=max_freq), timesteps)
    assert s.dtype == bool and s.shape == (1, timesteps, len(x))
    return [np.nonzero(s[0, :, n])[0].tolist() for n in range(len(x))]


def test_spike_steps_are_the_steps_holding_the_peaks():
    # p = 1 at 64 Hz: period 1000 / 64 = 15.625 steps; sin(2 pi f t dt) = +1 at t = (k + 1/4) * 15.625 =
    # 3.906, 19.531, 35.156, 50.781, (66.406 past the window): step floor(t) holds the peak
    # p = 0.5: 32 Hz, period 31.25: peaks 7.8125, 39.0625; p = 0.25: 16 Hz, period 62.5: peak 15.625
    # p = 0.1: 6.4 Hz, period 156.25: first peak at 39.06 -> step 39; p = 0: never
    assert _steps([1.0, 0.5, 0.25, 0.1, 0.0], 64) == [[3, 19, 35, 50], [7, 39], [15], [39], []]
    # 250 Hz: period 4 steps, the peaks fall exactly on steps 1, 5, 9, ... (a peak at t belongs to step t)
    assert _steps([1.0], 12, max_freq=250.0) == [[1, 5, 9]]
    # other values: the spike steps are exactly floor of the peak times, peak k once per period
    for p in (1.0, 0.73, 0.31):
        f = p * 64.0
        peaks = [(k + 0.25) * 1000 / f for k in range(20) if (k + 0.25) * 1000 / f < 200]
        assert all(abs(math.sin(2 * math.pi * f * tau / 1000) - 1.0) < 1e-12 for tau in peaks)
        assert _steps([p], 200)[0] == [math.floor(tau) for tau in peaks]


def test_zero_pixels_are_silent_and_values_are_clipped():
    s = encode(np.zeros((3, 2, 2)), SinusoidEncoding(), 500)
    assert s.shape == (3, 500, 4) and not s.any()
    assert _steps([-0.5, 1.7], 64) == [[], [3, 19, 35, 50]]       # clipped to [0, 1] as every encoding


def test_spike_count_is_frequency_times_duration():
    T = 10_000                                                     # 10 s of 1 ms steps
    p = np.array([0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    for max_freq in (64.0, 20.0, 500.0):
        counts = encode(p[None], SinusoidEncoding(max_freq=max_freq), T)[0].sum(axis=0)
        expected = p * max_freq * T / 1000                          # f * T * dt
        assert np.all(np.abs(counts - expected) <= 1), (max_freq, counts, expected)
    counts = encode(p[None], SinusoidEncoding(), T)[0].sum(axis=0)
    assert np.all(np.diff(counts) > 0)                              # monotone in the pixel value


def test_deterministic_whatever_the_seed_or_position():
    x = np.random.default_rng(1).random((5, 7))
    a = encode(x, SinusoidEncoding(), 40, seed=0)
    b = encode(x[2:4], SinusoidEncoding(), 40, seed=99, indices=np.array([2, 3]))
    assert np.array_equal(a[2:4], b) and np.array_equal(a, encode(x, SinusoidEncoding(), 40, seed=5))


def test_ir_node_validates_and_round_trips_through_a_network_file(tmp_path):
    for bad in (0.0, -3.0, 501.0, float("nan"), float("inf"), True, "64"):
        with pytest.raises(ValueError, match="SinusoidEncoding.max_freq"):
            SinusoidEncoding(max_freq=bad)
    from neurocomp.ir import LIF, Dense, Population, Projection
    net = Network("s", Input("in", 3, SinusoidEncoding(max_freq=40)),
                  [Population("out", LIF(2, du=1.0, dv=0.1, vth=1.0))],
                  [Projection("p", "in", "out", Dense(np.ones((2, 3))))], "out", 10)
    save_network(net, tmp_path / "n.npz")
    assert load_network(tmp_path / "n.npz").input.encoding == SinusoidEncoding(max_freq=40.0)


def _spec(tmp_path, input_line: str) -> Path:
    d = write_tiny_model(tmp_path / "m")
    spec = d / "model.yaml"
    spec.write_text(spec.read_text().replace("input: {encoding: rate, timesteps: 8}", input_line))
    return spec


def test_spec_default_and_field(tmp_path):
    spec = load_spec(_spec(tmp_path, "input: {encoding: sinusoid, timesteps: 20}"))
    assert input_encoding(spec) == SinusoidEncoding(max_freq=64.0, dt=1e-3)
    spec = load_spec(_spec(tmp_path, "input: {encoding: sinusoid, max_freq: 100, timesteps: 20}"))
    assert input_encoding(spec) == SinusoidEncoding(max_freq=100.0)


@pytest.mark.parametrize("value,pattern", [
    ("0", "greater than 0"), ("-8", "greater than 0"), ("600", "less than or equal to 500"),
    ("fast", "number"), ("true", "number"), (".nan", "finite number"), ("[64]", "number"),
])
def test_bad_max_freq_is_one_line_naming_the_field(tmp_path, value, pattern):
    spec = _spec(tmp_path, f"input: {{encoding: sinusoid, max_freq: {value}, timesteps: 20}}")
    with pytest.raises(NeurocompError, match=re.escape("input.max_freq: ") + ".*" + pattern):
        load_spec(spec)
    out = tmp_path / "build"
    res = CliRunner().invoke(cli, ["compile", str(spec), "--target", "cpu", "--out", str(out), "-q"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith(f"error: {spec}: input.max_freq:"), line
    assert re.search(pattern, line), line
    assert not out.exists()


def test_unknown_encoding_lists_sinusoid(tmp_path):
    spec = _spec(tmp_path, "input: {encoding: sine, timesteps: 20}")
    with pytest.raises(NeurocompError, match="input.encoding: got 'sine', allowed: .*'sinusoid'"):
        load_spec(spec)


def test_batched_compile_on_cpu(tmp_path):
    """A feed-forward torch network (batched schedule) fed sinusoid spikes: float, cpu and its report."""
    from neurocomp.pipeline import compile_model
    spec = _spec(tmp_path, "input: {encoding: sinusoid, max_freq: 200, timesteps: 20}")
    report = compile_model(spec, target="cpu", out=tmp_path / "build")
    assert report["encoding"] == "sinusoid" and report["schedule"]["kind"] == "batched"
    assert load_network(tmp_path / "build" / "network.npz").input.encoding == SinusoidEncoding(max_freq=200.0)


def test_stream_compile_brian2_replays_the_same_spikes(tmp_path):
    """The motion-direction Brian2 net on sinusoid input (one stream, learning): Brian2's
    SpikeGeneratorGroup replays the target's spikes, so both learn the same weight change."""
    from neurocomp.pipeline import compile_model
    d = REPO / "models/motion_direction"
    (tmp_path / "model.yaml").write_text(textwrap.dedent(f"""
        neurocomp: 1
        name: md_sinusoid
        source: {{kind: brian2, script: {d / 'net.py'}}}
        input: {{encoding: sinusoid, max_freq: 250, timesteps: 16}}
        dataset: {{name: {d / 'motion.npz'}, holdout: 40}}
        learning: {{samples: 30, test_samples: 20, rest_steps: 30}}
    """))
    report = compile_model(tmp_path / "model.yaml", target="cpu", out=tmp_path / "build")
    ln = report["learning"]
    assert report["encoding"] == "sinusoid" and report["schedule"]["kind"] == "stream"
    assert ln["reference_input"].startswith("replayed")
    assert ln["weight_change"] > 0 and ln["reference_weight_change"] == pytest.approx(ln["weight_change"], rel=0.05)
    saved = json.loads((tmp_path / "build" / "report.json").read_text())
    assert saved["learning"]["accuracy"] == ln["accuracy"]
