"""ATRLIF without Lava: the IR nodes (validation, a network file round trip), the one quantiser's mapping
(12-bit threshold and increment, decays, learned thresholds in Lava's ``<< 6`` units) and the float and
fixed-point networks agreeing on the stream engine."""
from __future__ import annotations

import numpy as np
import pytest

from neurocomp.backends.stream_engine import run_stream
from neurocomp.ir import ATRLIF, Dense, Input, LoihiATRLIF, LoihiDense, Network, Population, Projection, load_network, save_network
from neurocomp.passes.quantize import quantize_network
from neurocomp.targets import FixedPointFormat, load_descriptor

FMT = FixedPointFormat.from_descriptor(load_descriptor("loihi-sim"))


def _net(theta_init=None, theta0=10.0, theta_step=0.5, seed=0):
    rng = np.random.default_rng(seed)
    neuron = ATRLIF(8, di=0.3, dv=0.05, dtheta=0.01, dr=0.05, theta0=theta0, theta_step=theta_step, bias=0.1,
                    theta_init=theta_init)
    return Network("t", Input("in", 30), [Population("a", neuron)],
                   [Projection("p", "in", "a", Dense(rng.uniform(0, 1, (8, 30))))], "a", 50)


def test_nodes_validate_and_round_trip(tmp_path):
    with pytest.raises(ValueError, match="12 bits"):
        LoihiATRLIF(3, 0, 0, 0, 0, theta0=4096, theta_step=0)
    with pytest.raises(ValueError, match="12-bit decay"):
        LoihiATRLIF(3, 0, 4096, 0, 0, theta0=1, theta_step=0)
    with pytest.raises(ValueError, match="one value per neuron"):
        ATRLIF(3, 0.1, 0.1, 0, 0, 1.0, 0.1, theta_init=[1.0, 2.0])
    fixed = LoihiATRLIF(3, 10, 20, 30, 40, 100, 5, bias_mant=[1, -2, 3], bias_exp=2, theta_init=[6400, 7000, 8000])
    net = Network("r", Input("in", 2), [Population("a", fixed)],
                  [Projection("p", "in", "a", LoihiDense(np.ones((3, 2), dtype=int), 8, 0, 2))], "a", 5)
    save_network(net, tmp_path / "n.npz")
    back = load_network(tmp_path / "n.npz").population("a").neuron
    assert isinstance(back, LoihiATRLIF)
    for name in ("di", "dv", "dtheta", "dr", "theta0", "theta_step", "bias_exp"):
        assert getattr(back, name) == getattr(fixed, name), name
    assert np.array_equal(back.bias_mant, fixed.bias_mant) and np.array_equal(back.theta_init, fixed.theta_init)
    save_network(_net(), tmp_path / "f.npz")
    assert load_network(tmp_path / "f.npz").population("a").neuron.theta_init is None


def test_quantiser_maps_atrlif_within_lavas_formats():
    q = quantize_network(_net(), FMT, {"a": (10.0, 40.0)})
    n = q.fixed.population("a").neuron
    S = q.scales["a"]
    assert isinstance(n, LoihiATRLIF)
    assert n.theta0 == round(10.0 * S) <= 4095 and n.theta_step == round(0.5 * S)
    assert (n.di, n.dv, n.dtheta, n.dr) == (round(0.3 * 4096) - 1, round(0.05 * 4096), round(0.01 * 4096),
                                            round(0.05 * 4096))
    row = q.layers[0].adaptive
    assert row["theta_step"] == n.theta_step and row["theta_step_rel_error"] < 0.01
    # the 12-bit threshold caps the scale: a threshold 100x larger gets a 100x smaller scale
    big = quantize_network(_net(theta0=1000.0, theta_step=50.0), FMT, {"a": (10.0, 40.0)})
    assert big.fixed.population("a").neuron.theta0 <= 4095
    assert big.scales["a"] <= 4095 / 1000.0


def test_learned_thresholds_quantised_in_lavas_units():
    theta = np.linspace(10.0, 20.0, 8)
    q = quantize_network(_net(theta_init=theta), FMT, {"a": (10.0, 40.0)})
    n, S = q.fixed.population("a").neuron, q.scales["a"]
    assert np.array_equal(n.theta_init, np.rint(theta * S * 64).astype(np.int64))
    assert q.layers[0].adaptive["learned_thresholds"]


def test_float_and_fixed_atrlif_fire_alike():
    net = _net()
    stream = np.random.default_rng(1).random((3000, 30)) < 0.1
    fl = run_stream(net, stream).stream["a"].sum(axis=0)
    fx = run_stream(quantize_network(net, FMT, {"a": (10.0, 40.0)}).fixed, stream).stream["a"].sum(axis=0)
    assert fl.min() > 100                                   # adaptive neurons that do fire
    assert np.abs(fx - fl).max() <= 0.02 * fl.max()
