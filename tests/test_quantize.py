"""Quantiser: random layers round-trip within the format's resolution; Lava leaves our integers untouched."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurocomp.backends import fixed_point as fxp
from neurocomp.ir.encodings import encode
from neurocomp.errors import QuantizationError
from neurocomp.ir import LIF, Dense, Input, Network, Population, Projection, RateEncoding, load_network, save_network
from neurocomp.passes import quantize
from neurocomp.passes.quantize import dense_float_equivalent, quantize_dense
from neurocomp.targets import FixedPointFormat, load_descriptor

FMT = FixedPointFormat.from_descriptor(load_descriptor("loihi2"))


@st.composite
def weight_matrices(draw):
    rows = draw(st.integers(1, 12))
    cols = draw(st.integers(1, 12))
    magnitude = draw(st.sampled_from([1e-3, 0.05, 1.0, 30.0]))
    sign = draw(st.sampled_from(["mixed", "positive", "negative"]))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    w = np.random.default_rng(seed).normal(0, magnitude, (rows, cols))
    if sign == "positive":
        w = np.abs(w)
    elif sign == "negative":
        w = -np.abs(w)
    return w


@settings(max_examples=150, deadline=None)
@given(w=weight_matrices(), bits=st.integers(2, 8), log_scale=st.floats(-2, 12))
def test_quantize_dense_round_trip(w, bits, log_scale):
    scale = 2.0 ** log_scale / np.abs(w).max()  # largest weight lands anywhere on the integer scale
    try:
        d = quantize_dense(w, scale, FMT, bits)
    except QuantizationError:
        # only refused when the exponent would exceed the format
        assert np.abs(w).max() * scale > (2 ** bits) * 2 ** FMT.weight_exp_max
        return
    assert FMT.weight_exp_min <= d.weight_exp <= FMT.weight_exp_max
    # Lava's clip + truncate must be the identity on what we hand it
    assert np.array_equal(fxp.effective_weights(d), d.weight)
    back = dense_float_equivalent(d, scale)
    mixed = int(d.sign_mode == fxp.MIXED)
    unit = 2.0 ** (d.weight_exp + 8 - bits + mixed) / scale
    if d.weight_exp > FMT.weight_exp_min:
        # one rounding step at most, except the top mantissa may clip by one more unit
        assert np.max(np.abs(back - w)) <= unit * 1.0 + 1e-12
    assert np.all(np.sign(back) * np.sign(w) >= 0), "quantisation flipped a sign"


def _net(rng, bias=0.0):
    return Network("q", Input("input", 30, RateEncoding(0.6)),
                   [Population("h", LIF(20, 0.15, 0.08, 1.0, bias=bias)), Population("o", LIF(4, 0.3, 0.02, 0.7))],
                   [Projection("p1", "input", "h", Dense(rng.normal(0, 0.4, (20, 30)))),
                    Projection("p2", "h", "o", Dense(rng.normal(0.05, 0.5, (4, 20))))], "o", 12)


def test_quantize_network_maps_parameters_and_reports():
    rng = np.random.default_rng(3)
    net = _net(rng, bias=0.01)
    cal = encode(rng.random((16, 30)), net.input.encoding, 12)
    q = quantize(net, FMT, cal)
    fixed, rows = q.fixed, q.layers
    assert fixed.is_fixed_point and [r.name for r in rows] == ["h", "o"]
    h = fixed.population("h").neuron
    assert h.dv == round(0.08 * 4096) and h.du == round(0.15 * 4096) - 1  # Lava adds 1 to du
    for r in rows:
        assert 0 < r.vth < 2 ** 17 and abs(r.vth / r.scale - r.float_vth) / r.float_vth < 1e-2
        assert r.weight_rel_error < 0.02
        assert r.uv_headroom_bits >= 1.0  # headroom=2 keeps calibrated peaks one bit below 2**23
    # bias becomes bias_mant << bias_exp == b * scale * 64
    eff = fxp.effective_bias(h)
    assert np.allclose(eff, 0.01 * rows[0].scale * 64, rtol=0.01, atol=1)


def test_refuses_bad_parameters():
    rng = np.random.default_rng(0)
    net = _net(rng)
    bad = net.replace(populations=[Population("h", LIF(20, 1.5, 0.1, 1.0)), net.populations[1]])
    with pytest.raises(QuantizationError, match="'h': du=1.5 outside"):
        quantize(bad, FMT, encode(rng.random((4, 30)), net.input.encoding, 12))
    tiny_vth = net.replace(populations=[net.populations[0], Population("o", LIF(4, 0.3, 0.02, 1e-9))])
    with pytest.raises(QuantizationError, match="'o'"):
        quantize(tiny_vth, FMT, encode(rng.random((4, 30)), net.input.encoding, 12))


def test_ir_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    net = _net(rng, bias=rng.normal(0, 0.01, 20))
    fixed = quantize(net, FMT, encode(rng.random((8, 30)), net.input.encoding, 12)).fixed
    for n in (net, fixed):
        save_network(n, tmp_path / "n.npz")
        back = load_network(tmp_path / "n.npz")
        assert back.name == n.name and back.timesteps == n.timesteps and back.input == n.input
        for a, b in zip(n.populations + n.projections, back.populations + back.projections):
            assert type(a) is type(b) and a.name == b.name
            x, y = (a.neuron, b.neuron) if hasattr(a, "neuron") else (a.synapse, b.synapse)
            assert type(x) is type(y)
            for f in x.__dataclass_fields__:
                assert np.array_equal(getattr(x, f), getattr(y, f)), f
    assert not list(tmp_path.glob(".*tmp*")), "atomic write left a temp file"


def test_integer_weights_stay_exact():
    """lava-dl/netx weights are integers already: a power-of-two scale must not round them."""
    rng = np.random.default_rng(5)
    w1 = rng.integers(-120, 121, (20, 30)).astype(float)
    net = _net(rng).replace(projections=[Projection("p1", "input", "h", Dense(w1)),
                                         Projection("p2", "h", "o", Dense(rng.integers(-50, 60, (4, 20)).astype(float)))])
    net = net.replace(populations=[Population("h", LIF(20, 0.15, 0.08, 900.0)), Population("o", LIF(4, 0.3, 0.02, 300.0))])
    q = quantize(net, FMT, encode(rng.random((8, 30)), net.input.encoding, 12))
    fixed, rows = q.fixed, q.layers
    for proj, row in zip(fixed.projections, rows):
        assert row.weight_rel_error == 0.0
        assert math.log2(row.scale).is_integer()
