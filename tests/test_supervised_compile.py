"""``neurocomp compile`` of a supervised-depression readout (models/mnist_2class, shrunk): the teacher
comes from the training labels, Brian2 gets the same flags on the same steps, learning on Lava
ends with exactly the cpu learner's weights, and a readout that cannot answer the classes exits 2."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neurocomp.cli.main import cli
from neurocomp.passes.learn import supervision_flags

REPO = Path(__file__).resolve().parents[1]
NET = REPO / "models/mnist_2class/net.py"


def _write_model(d: Path, samples: int, test_samples: int, timesteps: int = 40, rest: int = 10,
                 kwargs: str = "{}", classes: str = "[0, 1]") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.yaml").write_text(textwrap.dedent(f"""
        neurocomp: 1
        name: m2c_small
        source: {{kind: brian2, script: {NET}, kwargs: {kwargs}}}
        input: {{encoding: rate, max_rate: 0.2, timesteps: {timesteps}}}
        dataset: {{name: mnist5k, classes: {classes}, holdout: 200}}
        learning: {{samples: {samples}, test_samples: {test_samples}, rest_steps: {rest}}}
    """))
    return d / "model.yaml"


def test_supervision_flags_follow_labels_shifted_by_the_delay():
    flags = supervision_flags(np.array([0, 1, 1]), n_out=2, window=4, delay=1, steps=12)
    assert flags.shape == (12, 2)
    assert flags[0].tolist() == [0, 0]                       # nothing of sample 0 has reached the output yet
    assert (flags[1:5] == [0, 1]).all()                      # sample 0 (class 0): neuron 1 is wrong
    assert (flags[5:12] == [1, 0]).all()                     # samples 1, 2 (class 1): neuron 0 is wrong


@pytest.mark.slow  # runs Brian2 and learns (about 10 s)
def test_cpu_compile_learns_the_two_classes_like_brian2(tmp_path):
    from neurocomp.pipeline import compile_model

    spec = _write_model(tmp_path, samples=120, test_samples=120)
    report = compile_model(spec, target="cpu", out=tmp_path / "build")
    ln = report["learning"]
    assert ln["samples"] == 120 and ln["label_samples"] == 0 and ln["test_samples"] == 120
    assert ln["supervised"]["projections"] == ["readout"] and ln["supervised"]["classes"] == [0, 1]
    assert ln["weight_change"] > 0 and ln["reference_weight_change"] > 0
    assert report["rules"][0]["rule"] == "SupervisedDepression"
    assert ln["accuracy"] > 0.8 and ln["reference_accuracy"] > 0.8     # chance is ~0.5 (0s vs 1s)
    assert abs(ln["accuracy"] - ln["reference_accuracy"]) <= 0.05
    saved = json.loads((tmp_path / "build" / "report.json").read_text())
    assert saved["learning"]["accuracy"] == ln["accuracy"]


@pytest.mark.slow  # runs Lava's LearningDense with a Loihi3F rule
def test_loihi_sim_compile_learns_the_cpu_weights(tmp_path):
    from neurocomp.ir import load_network
    from neurocomp.pipeline import compile_model

    spec = _write_model(tmp_path, samples=24, test_samples=16, timesteps=30, rest=5)
    report = compile_model(spec, target="loihi-sim", out=tmp_path / "build")
    ln = report["learning"]
    agree = report["agreement"]["target_vs_cpu"]
    assert agree["weights_equal"] and agree["learn_identical_spike_trains"] and agree["eval_identical_spike_trains"]
    assert ln["weight_change_lsb"] > 0 and ln["reference_accuracy"] is not None
    learned = load_network(tmp_path / "build" / "network.npz").projections[0].synapse.weight
    initial = load_network(tmp_path / "build" / "network_initial.npz").projections[0].synapse.weight
    assert (learned <= initial).all() and (learned < initial).any()   # depression only, and some happened


@pytest.mark.parametrize("kwargs,classes,pattern", [
    ("{n_classes: 3}", "[0, 1]", r"supervised readout 'out' has 3 neurons but dataset.classes \[0, 1\] has 2 classes"),
    ("{}", "[0, 1, 2]", r"supervised readout 'out' has 2 neurons but dataset.classes \[0, 1, 2\] has 3 classes"),
    ("{}", "[1, 1]", r"dataset.classes: must list at least two distinct labels"),
    ("{}", "[0, 42]", r"dataset.classes: \[42\] not among the labels of mnist5k"),
])
def test_bad_supervised_config_exits_2_with_one_line(tmp_path, kwargs, classes, pattern):
    import re

    spec = _write_model(tmp_path, samples=10, test_samples=10, kwargs=kwargs, classes=classes)
    out = tmp_path / "build"
    res = CliRunner().invoke(cli, ["compile", str(spec), "--target", "cpu", "--out", str(out), "-q"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: "), line
    assert re.search(pattern, line), line
    assert not out.exists()
