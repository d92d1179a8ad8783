"""`neurocomp run` and `neurocomp verify` on the MNIST example, and the divergence report itself."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from neurocomp.backends.base import Result
from neurocomp.ir.schedule import BATCHED, Schedule
from neurocomp.pipeline.verify import first_divergence, spike_match_report
from neurocomp.report.text import format_verify

from conftest import REPO

RUN_KEYS = {"target", "samples", "accuracy", "predictions", "spikes_per_layer", "timesteps"}


def _cli():
    from neurocomp.cli.main import cli  # importing it registers every cmd_* module's command
    return cli


@pytest.fixture(scope="module")
def mnist_build(tmp_path_factory):
    """The MNIST example (trained weights from models/mnist_mlp) compiled for the cpu target."""
    out = tmp_path_factory.mktemp("mnist") / "build"
    res = CliRunner().invoke(_cli(), ["compile", str(REPO / "models/mnist_mlp/model.yaml"), "--target", "cpu",
                                      "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.slow
def test_run_cpu_and_loihi_sim_give_identical_predictions_and_spikes(mnist_build, tmp_path):
    outs = {}
    for target in ("cpu", "loihi-sim"):
        outs[target] = tmp_path / target
        res = CliRunner().invoke(_cli(), ["run", str(mnist_build), "--target", target, "--samples", "10",
                                          "--out", str(outs[target]), "--record"])
        assert res.exit_code == 0, res.output
        assert f"{target}: accuracy" in res.output
    docs = {t: json.loads((o / "run.json").read_text()) for t, o in outs.items()}
    for t, doc in docs.items():
        assert RUN_KEYS <= set(doc) and doc["target"] == t
        assert doc["samples"] == 10 and doc["timesteps"] == 25 and len(doc["predictions"]) == 10
        assert doc["accuracy"] == np.mean(np.array(doc["predictions"]) == np.array(doc["labels"]))
        assert set(doc["spikes_per_layer"]) == {"lif1", "lif2"}
    assert docs["cpu"]["predictions"] == docs["loihi-sim"]["predictions"]
    assert docs["cpu"]["spikes_per_layer"] == docs["loihi-sim"]["spikes_per_layer"]
    assert docs["cpu"]["accuracy"] >= 0.5, "the trained example should classify most digits"
    trains = {t: np.load(o / "spikes.npz") for t, o in outs.items()}
    for layer, shape in (("lif1", (10, 25, 128)), ("lif2", (10, 25, 10)), ("input", (10, 25, 784))):
        assert trains["cpu"][layer].shape == shape
        assert np.array_equal(trains["cpu"][layer], trains["loihi-sim"][layer]), f"{layer} trains differ"
    assert trains["cpu"]["lif1"].any() and not trains["cpu"]["lif1"].all()


@pytest.mark.slow
def test_verify_shows_float_vs_fixed_divergence_and_cpu_identical_to_lava(mnist_build, tmp_path):
    res = CliRunner().invoke(_cli(), ["verify", str(mnist_build), "--samples", "5", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "verify.json").read_text())
    assert report["targets"] == ["float", "cpu", "loihi-sim"] and report["samples"] == 5
    assert report["cpu_matches_loihi_sim"] is True
    assert report["pairs"]["cpu vs loihi-sim"]["identical"] is True
    assert [row["name"] for row in report["layers"]] == ["lif1", "lif2"]
    for row in report["layers"]:
        assert row["spikes_per_sample"]["cpu"] == row["spikes_per_sample"]["loihi-sim"]
        assert row["compare"]["cpu vs loihi-sim"]["differing_spikes"] == 0
    # quantisation moves some spikes: the report says where it starts
    float_vs_cpu = report["pairs"]["float vs cpu"]
    assert not float_vs_cpu["identical"] and float_vs_cpu["first_layer"]["layer"] == "lif1"
    assert 0.0 <= report["accuracy_held_out"]["cpu"] <= 1.0 and report["accuracy_held_out"]["samples"] == 1000
    for text in ("lif1", "lif2", "float vs cpu: first differ in layer 'lif1'", "cpu vs loihi-sim: identical"):
        assert text in res.output


def _result(target, trains, output="o"):
    return Result(target=target, output=output, schedule=Schedule(BATCHED, next(iter(trains.values())).shape[1]),
                  counts={k: v.sum(axis=1) for k, v in trains.items()}, spikes=trains)


def test_spike_match_report_pinpoints_first_divergence():
    rng = np.random.default_rng(0)
    h = rng.random((4, 12, 7)) < 0.3
    o = rng.random((4, 12, 3)) < 0.3
    h2, o2 = h.copy(), o.copy()
    h2[2, 5, 4] = ~h2[2, 5, 4]          # first difference in h: step 5, sample 2, neuron 4
    h2[1, 9, 0] = ~h2[1, 9, 0]
    o2[3, 6, 1] = ~o2[3, 6, 1]          # its consequence downstream, one step later
    a, b, c = _result("float", {"h": h, "o": o}), _result("cpu", {"h": h2, "o": o2}), \
        _result("loihi-sim", {"h": h2.copy(), "o": o2.copy()})
    report = spike_match_report({"float": a, "cpu": b, "loihi-sim": c}, ["h", "o"], labels=np.zeros(4, int))
    fc = report["pairs"]["float vs cpu"]
    assert not fc["identical"] and fc["first_layer"] == {"layer": "h", "step": 5, "sample": 2, "neuron": 4}
    h_row, o_row = report["layers"]
    assert h_row["compare"]["float vs cpu"]["differing_spikes"] == 2
    assert h_row["compare"]["float vs cpu"]["samples_identical"] == 0.5
    assert o_row["compare"]["float vs cpu"]["first_divergence"] == {"step": 6, "sample": 3, "neuron": 1}
    assert report["pairs"]["cpu vs loihi-sim"]["identical"]
    assert h_row["spikes_per_sample"]["float"] == h.sum() / 4
    assert set(report["accuracy"]) == {"float", "cpu", "loihi-sim"}
    text = format_verify(report)
    assert "step 5, neuron 4 (sample 2); 2/4 samples differ" in text
    assert first_divergence(h, h) is None


def test_run_and_verify_reject_bad_input_with_one_line_and_exit_2(tmp_path):
    cli = _cli()
    out = tmp_path / "out"
    cases = [
        (["run", str(tmp_path / "missing"), "--out", str(out)], "not a neurocomp build directory"),
        (["run", str(tmp_path), "--target", "gpu", "--out", str(out)], "--target 'gpu': allowed: float, cpu"),
        (["verify", str(tmp_path), "--targets", "cpu"], "--targets 'cpu': give two or more distinct targets"),
        (["verify", str(tmp_path), "--targets", "cpu,gpu"], "from float, cpu, loihi-sim"),
        (["verify", str(tmp_path), "--out", str(out)], "not a neurocomp build directory"),
    ]
    for args, message in cases:
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output and len(res.output.strip().splitlines()) == 1, (args, res.output)
        assert not out.exists(), "nothing may be written on bad input"
