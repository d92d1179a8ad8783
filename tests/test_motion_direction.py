"""models/motion_direction: two LIF neurons learn from labels which way a dot crosses two latency-coded
pixels (Brian2 supervised depression, learning on the cpu target): the compile reaches 100 % on the
held-out samples, with Brian2's own run of the same spikes reported beside it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from neurocomp.ir.encodings import LatencyEncoding, encode

MODEL = Path(__file__).resolve().parents[1] / "models/motion_direction"


def _make_data():
    spec = importlib.util.spec_from_file_location("motion_make_data", MODEL / "make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dataset_is_make_data_output_and_codes_the_direction_in_spike_order():
    mod = _make_data()
    x, y = mod.make()
    saved = np.load(MODEL / "motion.npz")
    assert np.array_equal(saved["x"], x) and np.array_equal(saved["y"], y)
    spikes = encode(x, LatencyEncoding(), mod.TIMESTEPS)
    assert (spikes.sum(axis=1) == 1).all()                       # each pixel spikes once per sample
    t = spikes.argmax(axis=1)                                    # [samples, 2] spike steps
    lag = t[:, 1] - t[:, 0]
    assert (lag[y == 0] > 0).all() and (lag[y == 1] < 0).all()   # 0: pixel 0 first (left -> right)
    assert set(np.abs(lag)) == set(mod.LAGS) and set(t.min(axis=1)) == set(range(mod.MAX_ONSET + 1))
    assert (y == 0).sum() == (y == 1).sum()


def test_cpu_compile_learns_both_directions(tmp_path):
    from neurocomp.pipeline import compile_model
    report = compile_model(MODEL / "model.yaml", target="cpu", out=tmp_path / "build")
    ln = report["learning"]
    assert ln["samples"] == 200 and ln["test_samples"] == 200 and ln["supervised"]["classes"] == [0, 1]
    assert ln["reference_input"].startswith("replayed")
    assert ln["accuracy"] == 1.0                                 # every held-out sample, both directions
    assert ln["reference_accuracy"] == 1.0                       # Brian2 itself, same spikes and teacher
    from neurocomp.ir import load_network
    w = load_network(tmp_path / "build" / "network.npz").projections[0].synapse.weight   # [out, in]
    assert w[0, 1] > w[0, 0] and w[1, 0] > w[1, 1]               # each neuron favours its last pixel
