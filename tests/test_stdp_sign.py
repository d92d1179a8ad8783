"""The sign of learning (lava #484 flipped A+/A- once): pre-before-post must potentiate and
post-before-pre depress — in Brian2, on the cpu target and on Lava — for models/stdp_pair, a real
Brian2 script mapped through the front end and quantised to Lava's LearningDense rule."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurocomp.backends.stream_engine import run_stream
from neurocomp.backends.brian2_reference import Brian2Session
from neurocomp.frontends.brian2 import Brian2Model
from conftest import quantize_stream as quantize_stream_network
from neurocomp.targets import FixedPointFormat, load_descriptor

PAIR = Path(__file__).resolve().parents[1] / "models" / "stdp_pair" / "net.py"


def _pair(**kwargs):
    """Brian2's own weight change on the script's spikes, and the quantised network to replay them."""
    m = Brian2Model(PAIR, "build", kwargs)
    stream = np.concatenate([m.script_stream, np.zeros((15, 3), dtype=bool)])
    q = quantize_stream_network(m.network, FixedPointFormat.from_descriptor(load_descriptor("loihi2")), stream)
    s = Brian2Session(m)
    w0 = s.weights()["stdp"]
    s.run_stream(stream, learn=True)
    return stream, q, s.weights()["stdp"] - w0


def _dw(q, result):
    """Learned integer weights -> float change (one integer step = q.rules[0]['weight_lsb'])."""
    return (result.weights["stdp"] - q.fixed.projections[0].synapse.weight) * q.rules[0]["weight_lsb"]


@pytest.mark.slow  # runs Brian2 (or a subprocess)
@pytest.mark.parametrize("lag", [1, 3, 10])
def test_pair_sign_on_cpu_matches_brian2(lag):
    stream, q, dw_brian2 = _pair(lag=lag)
    dw_cpu = _dw(q, run_stream(q.fixed, stream))
    assert dw_brian2[0, 0] > 0 and dw_brian2[0, 1] < 0        # Brian2 itself
    assert dw_cpu[0, 0] > 0 and dw_cpu[0, 1] < 0               # pre->post up, post->pre down
    # magnitudes within 10 % of Brian2's float STDP (8-bit weights, stochastically rounded 7-bit traces)
    assert dw_cpu[0, :2] == pytest.approx(dw_brian2[0, :2], rel=0.10)


@pytest.mark.slow  # runs Brian2 (or a subprocess)
def test_longer_lag_changes_less():
    changes = [np.abs(_dw(q, run_stream(q.fixed, s))[0, :2]) for s, q, _ in (_pair(lag=2), _pair(lag=12))]
    assert (changes[0] > changes[1]).all()


@pytest.mark.slow
def test_pair_sign_on_lava_equals_cpu():
    from neurocomp.backends.lava import run_stream_lava

    stream, q, dw_brian2 = _pair()
    lava = run_stream_lava(q.fixed, stream)
    cpu = run_stream(q.fixed, stream)
    dw_lava = _dw(q, lava)
    assert dw_lava[0, 0] > 0 and dw_lava[0, 1] < 0 and dw_lava[0, 2] > 0
    assert np.array_equal(lava.weights["stdp"], cpu.weights["stdp"])
    assert np.array_equal(lava.stream["post"], cpu.stream["post"])
    assert dw_lava[0, :2] == pytest.approx(dw_brian2[0, :2], rel=0.10)
