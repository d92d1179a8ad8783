"""models/mnist_3class (seed 000's 3-class MNIST with depression of the non-target neurons and
N(8/n, 1/n) initial weights, silent test digits shown again): a real cpu compile learns on the target
to over 80 % (chance: 33 %), and Brian2 learning the same network on the same spikes and flags lands
within 5 pp."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from neurocomp.cli.main import cli

REPO = Path(__file__).resolve().parents[1]


def test_three_class_example_learns_on_cpu_like_brian2(tmp_path):
    out = tmp_path / "m3"
    result = CliRunner().invoke(cli, ["compile", str(REPO / "models/mnist_3class/model.yaml"), "--target", "cpu",
                                      "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    learning = json.loads((out / "report.json").read_text())["learning"]
    assert learning["accuracy"] >= 0.80, learning["accuracy"]                  # 84.7 % measured (seed: 85 %)
    assert learning["retried"]["target"] and learning["silent_test_samples"] == 0
    assert abs(learning["accuracy"] - learning["reference_accuracy"]) <= 0.05, learning
