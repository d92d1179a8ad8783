"""Plasticity in the IR: the rule dataclasses, their validation and the .npz round trip."""
from __future__ import annotations

import numpy as np
import pytest

from neurocomp.ir import (LIF, STDP, Dense, Input, LoihiDense, LoihiLearning, LoihiLIF, Network, Population,
                          Projection, SupervisedDepression, load_network, save_network)


def _float_net(rule):
    return Network("n", Input("in", 3), [Population("p", LIF(2, 0.1, 0.2, 1.0))],
                   [Projection("a", "in", "p", Dense(np.full((2, 3), 0.5)), rule)], "p", 5)


def test_float_rules_round_trip(tmp_path):
    for rule in (STDP(20, 15, 0.01, -0.012, 1.0, xtar=0.002), SupervisedDepression(10, 0.05, 1.0), None):
        save_network(_float_net(rule), tmp_path / "n.npz")
        assert load_network(tmp_path / "n.npz").projections[0].plasticity == rule


def test_loihi_rule_round_trip_and_lava_string(tmp_path):
    rule = LoihiLearning([("y0", ["x1"], 3, -4), ("x0", ("y1",), -2, -5), ("y0", (), -1, -3)],
                         x1_impulse=20, x1_tau=20, y1_impulse=10, y1_tau=15, rng_seed=3)
    assert rule.dw_string() == "(3) * 2 ^ -4 * y0 * x1 + (-2) * 2 ^ -5 * x0 * y1 + (-1) * 2 ^ -3 * y0"
    net = Network("n", Input("in", 3), [Population("p", LoihiLIF(2, 10, 20, 100))],
                  [Projection("a", "in", "p", LoihiDense(np.ones((2, 3)), 8, 0, 2), rule)], "p", 5)
    save_network(net, tmp_path / "n.npz")
    back = load_network(tmp_path / "n.npz").projections[0].plasticity
    assert back == rule and back.terms[0] == ("y0", ("x1",), 3, -4)
    # the string parses in Lava into the same products
    from lava.magma.core.learning.learning_rule import Loihi2FLearningRule
    lava_rule = Loihi2FLearningRule(dw=rule.dw_string(), x1_impulse=20, x1_tau=20, y1_impulse=10, y1_tau=15)
    products = [(p.dependency, [f.state_var for f in p.factors], p.s_mantissa, p.s_exp - 7)
                for p in lava_rule.dw.products]
    assert products == [("y0", ["x1"], 3, -4), ("x0", ["y1"], -2, -5), ("y0", [], -1, -3)]


@pytest.mark.parametrize("bad", [
    dict(terms=[("u0", ("x1",), 1, 0)]),          # dependency Lava has but we do not run
    dict(terms=[("y0", ("x2",), 1, 0)]),          # unsupported trace
    dict(terms=[("y0", ("x1",), 8, 0)]),          # mantissa outside -8..7
    dict(terms=[("y0", ("x1",), 1, 9)]),          # exponent outside -7..8
    dict(terms=[], x1_impulse=128),                # 7-bit trace
])
def test_loihi_rule_validation(bad):
    with pytest.raises(ValueError):
        LoihiLearning(**bad)


def test_rule_must_match_synapse_kind():
    rule = LoihiLearning([("y0", ("x1",), 1, 0)], x1_impulse=1, x1_tau=5)
    with pytest.raises(ValueError, match="cannot act on a Dense"):
        _float_net(rule)
