"""``learning.retry_silent`` (Diehl & Cook's re-presentation of silent samples at a higher rate): evaluation
samples under ``below_spikes`` output spikes are shown again on every target and in the Brian2 reference,
learning is untouched, ``neurocomp run`` scores the build as the compile did, and Lava's counts after the
retries equal cpu's."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import write_small_diehl_cook
from neurocomp.errors import NeurocompError
from neurocomp.ir import RateEncoding
from neurocomp.pipeline import compile_model
from neurocomp.pipeline.build import load_build
from neurocomp.pipeline.retry import SilentRetry
from neurocomp.pipeline.run import run_build

RETRY = {"below_spikes": 3, "rate_step": 0.5, "retries": 3}


def _compile(tmp_path, name, retry=None, target="cpu"):
    spec = write_small_diehl_cook(tmp_path / name, test_samples=30)
    overrides = {"input.max_rate": 0.15}
    if retry is not None:
        overrides["learning.retry_silent"] = retry
    out = tmp_path / f"{name}_build"
    return compile_model(spec, target=target, out=out, overrides=overrides), out


def test_retry_rates_grow_by_rate_step_and_stop_at_one_spike_per_step():
    r = SilentRetry(rate_step=0.5)
    assert [r.encoding(RateEncoding(0.3), k).max_rate for k in (1, 2, 3, 5)] == pytest.approx([0.45, 0.6, 0.75, 1.0])


def test_silent_samples_are_shown_again_on_the_target_and_in_brian2(tmp_path):
    (off, off_dir), (on, on_dir) = _compile(tmp_path, "off"), _compile(tmp_path, "on", RETRY)
    off, on = off["learning"], on["learning"]
    assert "retried" not in off and on["retry_silent"] == RETRY
    # learning is untouched: the same learned network
    a, b = load_build(off_dir), load_build(on_dir)
    for p in a.fixed.projections:
        assert np.array_equal(p.synapse.weight, b.fixed.projection(p.name).synapse.weight), p.name
    # the first retry round takes exactly the evaluation samples under 3 spikes (counted here, on cpu)
    from neurocomp.backends import get_backend
    plan = a.plan()
    counts = get_backend("cpu").run(a.frozen, plan.evaluation.spikes, a.schedule).counts[a.fixed.output]
    under = int((counts.sum(axis=1) < RETRY["below_spikes"]).sum())
    assert under > 0 and on["retried"]["target"][0] == under
    assert len(on["retried"]["target"]) <= RETRY["retries"]
    assert on["silent_test_samples"] < off["silent_test_samples"]
    assert on["retried"]["brian2"] and on["reference_accuracy"] is not None
    # neurocomp run scores the build as the compile did (same retries)
    summary, _ = run_build(on_dir, "cpu")
    assert summary["accuracy"] == on["accuracy"] and summary["retried"] == on["retried"]["target"]


def test_retry_needs_a_rate_code(tmp_path):
    spec = write_small_diehl_cook(tmp_path / "lat")
    with pytest.raises(NeurocompError, match="retry_silent .* input.encoding: rate"):
        compile_model(spec, target="cpu", out=tmp_path / "b",
                      overrides={"input.encoding": "latency", "learning.retry_silent": RETRY})
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_lava_counts_after_retries_equal_cpu(tmp_path):
    report, _ = _compile(tmp_path, "lava", RETRY, target="loihi-sim")
    on = report["learning"]
    assert on["retried"]["target"] and on["retried"]["cpu"] == on["retried"]["target"]
    assert report["agreement"]["target_vs_cpu"]["eval_counts_equal_after_retries"] is True
    assert report["accuracy"]["cpu"] == report["accuracy"]["target"]
