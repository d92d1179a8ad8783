"""A build out to netx and back in through the one pipeline: ``quantize.netx`` keeps the layers in the
form a netx file holds, ``neurocomp export --format netx`` writes it, and a model.yaml with
``source: {kind: netx}`` compiles it — its integers deployed unchanged (no re-quantisation), the same
spikes as the original build on cpu, and loihi-sim equal to cpu."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import REPO


@pytest.mark.slow
def test_build_to_netx_and_back_compiles_to_the_same_network(tmp_path):
    from neurocomp.backends import get_backend
    from neurocomp.cli.main import cli
    from neurocomp.pipeline import load_build

    for f in ("net.py", "weights.pt"):
        shutil.copy(REPO / "models/slayer_digits" / f, tmp_path / f)
    spec = (REPO / "models/slayer_digits/model.yaml").read_text().replace("holdout: 360", "holdout: 120")
    (tmp_path / "slayer.yaml").write_text(spec + "quantize: {netx: true, calibration_samples: 50}\n")
    run = lambda *args: CliRunner().invoke(cli, [str(a) for a in args])  # noqa: E731
    res = run("compile", tmp_path / "slayer.yaml", "--target", "cpu", "--out", tmp_path / "a", "-q")
    assert res.exit_code == 0, res.output
    assert all(row["weight_exp"] == 0 for row in json.loads((tmp_path / "a/report.json").read_text())["layers"])
    res = run("export", tmp_path / "a", "--format", "netx", "--out", tmp_path / "model.net")
    assert res.exit_code == 0, res.output
    (tmp_path / "netx.yaml").write_text("neurocomp: 1\nname: back\nsource: {kind: netx, file: model.net}\n"
                                        "input: {encoding: rate, max_rate: 1.0, timesteps: 32}\n"
                                        "dataset: {name: digits, holdout: 120}\nverify: {samples: 6}\n")
    res = run("compile", tmp_path / "netx.yaml", "--target", "loihi-sim", "--out", tmp_path / "b", "-q")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "b/report.json").read_text())
    assert report["agreement"]["target_vs_cpu"]["identical_spike_trains"] == 1.0
    a, b = load_build(tmp_path / "a"), load_build(tmp_path / "b")
    spikes = a.plan().test.spikes
    ra = get_backend("cpu").run(a.fixed, spikes, a.schedule, record=True)
    rb = get_backend("cpu").run(b.fixed, spikes, b.schedule, record=True)
    for pa, pb in zip(a.fixed.execution_order(), b.fixed.execution_order()):
        assert np.array_equal(ra.spikes[pa.name], rb.spikes[pb.name]), (pa.name, pb.name)
    assert report["accuracy"]["cpu"] == json.loads((tmp_path / "a/report.json").read_text())["accuracy"]["cpu"]
