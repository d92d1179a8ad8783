"""`neurocomp compile` end to end, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from neurocomp.cli.main import cli
from neurocomp.pipeline import load_build

from conftest import REPO

REPORT_LAYER_KEYS = {"name", "neurons", "synapses", "num_weight_bits", "weight_exp", "vth", "du", "dv",
                     "weight_rel_error"}


@pytest.mark.slow
def test_compile_tiny_model_on_lava(tiny_model_dir, tmp_path):
    out = tmp_path / "build"
    res = CliRunner().invoke(cli, ["compile", str(tiny_model_dir / "model.yaml"), "--target", "loihi-sim",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "tiny" and report["target"] == "loihi-sim"
    assert [layer["name"] for layer in report["layers"]] == ["lif1", "lif3"]
    for layer in report["layers"]:
        assert REPORT_LAYER_KEYS <= set(layer)
    acc = report["accuracy"]
    assert acc["samples"] == 3 and acc["held_out"] == 100
    assert {"float", "target", "samples"} <= set(acc)
    # Lava and our bit-accurate simulator agree spike for spike on the samples Lava ran
    assert report["agreement"]["target_vs_cpu"]["identical_spike_trains"] == 1.0
    build = load_build(out)
    assert build.fixed.is_fixed_point and not build.float_net.is_fixed_point
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "build.json", "network.npz", "network_float.npz", "report.html", "report.json"]
    assert json.loads((out / "build.json").read_text())["neurocomp_build"]["files"]   # marked as ours
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"
    assert "accuracy" in res.output and "lif1" in res.output


def test_failed_compile_keeps_previous_build(tiny_model_dir, tmp_path):
    out = tmp_path / "build"
    ok = CliRunner().invoke(cli, ["compile", str(tiny_model_dir / "model.yaml"), "--target", "cpu",
                                  "--out", str(out), "-q"])
    assert ok.exit_code == 0, ok.output
    before = (out / "report.json").read_bytes()
    (tiny_model_dir / "weights.pt").write_bytes(b"not a state dict")
    bad = CliRunner().invoke(cli, ["compile", str(tiny_model_dir / "model.yaml"), "--target", "cpu",
                                   "--out", str(out), "-q"])
    assert bad.exit_code == 2 and "not a torch state_dict" in bad.output
    assert (out / "report.json").read_bytes() == before


@pytest.mark.slow
def test_mnist_example_accuracy_float_vs_fixed(tmp_path):
    """The shipped example: >= 92 % held-out float accuracy, bit-accurate within 1 pp of float,
    and Lava identical to the bit-accurate simulator on the samples it runs."""
    out = tmp_path / "mnist"
    proc = subprocess.run([sys.executable, "-m", "neurocomp", "compile",
                           str(REPO / "models/mnist_mlp/model.yaml"), "--target", "loihi-sim",
                           "--samples", "12", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    acc = report["accuracy"]
    assert acc["held_out"] == 1000
    assert acc["float"] >= 0.92, acc
    assert abs(acc["cpu"] - acc["float"]) <= 0.01, acc
    agreement = report["agreement"]["target_vs_cpu"]
    assert agreement["samples"] == 12
    assert agreement["identical_spike_trains"] == 1.0 and agreement["predictions_equal"] == 1.0
