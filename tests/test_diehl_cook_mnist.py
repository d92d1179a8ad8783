"""models/diehl_cook_mnist: Diehl & Cook on 28x28 MNIST maps as written — 784 inputs, 400 excitatory
neurons with D&C's adaptive threshold and refractory period as Lava's ATRLIF, pair STDP with the target
pre-trace on the input synapses — and a shrunk copy (30 neurons, 300 digits) learns on the cpu target
above chance beside Brian2 learning the same network."""
from __future__ import annotations

from pathlib import Path

import pytest

from neurocomp.frontends.brian2 import load_brian2
from neurocomp.ir import ATRLIF
from neurocomp.spec import load_spec

SPEC = Path(__file__).resolve().parents[1] / "models/diehl_cook_mnist/model.yaml"


def test_shipped_network_maps_to_atrlif_and_stdp():
    net = load_brian2(load_spec(SPEC)).network
    assert net.input.size == 784
    exc = net.population("exc")
    assert isinstance(exc.neuron, ATRLIF) and exc.size == 400
    assert net.projection("input_exc").plasticity is not None
    assert net.is_plastic and not net.is_feedforward


@pytest.mark.slow
def test_shrunk_copy_learns_on_cpu_beside_brian2(tmp_path):
    from neurocomp.pipeline import compile_model
    report = compile_model(SPEC, target="cpu", out=tmp_path / "b", overrides={
        "source.kwargs.n_exc": 30, "learning.samples": 300, "learning.label_samples": 100,
        "learning.test_samples": 100})
    ln = report["learning"]
    assert ln["weight_change"] > 0 and ln["thresholds_mean"]["exc"] > 6.5      # STDP and theta acted
    assert ln["accuracy"] > 0.25, ln["accuracy"]                                # chance: 10 %
    assert ln["reference_accuracy"] is not None and ln["reference_accuracy"] > 0.25
