"""``neurocomp run DIR --workers N``: the held-out samples split over Ray workers give exactly what one
process gives — predictions, accuracy, spike counts per layer and every recorded spike — on the cpu
target and on Lava (loihi-sim, whose LIFReset windows make samples independent)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REPO, write_tiny_model
from neurocomp.errors import NeurocompError
from neurocomp.ir.schedule import STREAM, Schedule
from neurocomp.pipeline.cluster import machine_cpus
from neurocomp.pipeline.shard import run_build_sharded, shard_bounds, sharded_runner

ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_shards_are_contiguous_and_cover_every_sample():
    for n, k in ((10, 3), (7, 7), (3, 8), (1000, 2), (1, 1)):
        bounds = shard_bounds(n, k)
        assert bounds[0][0] == 0 and bounds[-1][1] == n and len(bounds) == min(n, k)
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1


def test_a_stream_build_is_refused_before_ray_starts():
    build = SimpleNamespace(schedule=Schedule(STREAM, 10, 5), path="build/dc")
    with pytest.raises(NeurocompError, match="stream build runs as one continuous stream"):
        sharded_runner(workers=2)(build, "cpu", None, None)


def _same_run(single, sharded, trains_a, trains_b):
    for key in ("predictions", "labels", "accuracy", "samples", "spikes_per_layer", "target", "timesteps"):
        assert single[key] == sharded[key], key
    assert set(trains_a) == set(trains_b)
    for name in trains_a:
        assert np.array_equal(trains_a[name], trains_b[name]), name


@pytest.mark.slow
def test_sharded_run_equals_single_process_run(tmp_path):
    from neurocomp.pipeline import compile_model, run_build
    spec = write_tiny_model(tmp_path / "m", hidden=24, gain=3.0, holdout=150) / "model.yaml"
    build = tmp_path / "build"
    compile_model(spec, target="cpu", out=build)

    # cpu, every held-out sample, through the command line
    single, trains = run_build(build, "cpu", record=True)
    assert single["samples"] == 150 and sum(v["total"] for v in single["spikes_per_layer"].values()) > 0
    res = subprocess.run([sys.executable, "-m", "neurocomp", "run", str(build), "--target", "cpu", "--workers", "2",
                          "--record", "--out", str(tmp_path / "sharded")], capture_output=True, text=True, env=ENV,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    sharded = json.loads((tmp_path / "sharded" / "run.json").read_text())
    assert sharded["sharded"]["shards"] == [[0, 75], [75, 150]]
    with np.load(tmp_path / "sharded" / "spikes.npz") as z:
        _same_run(single, sharded, trains, {k: z[k] for k in z.files})

    # Lava's own processes in the Ray workers, a few samples in three shards
    lava_single, lava_trains = run_build(build, "loihi-sim", samples=6, record=True)
    lava_sharded, lava_sharded_trains = run_build_sharded(build, "loihi-sim", workers=3, samples=6, record=True)
    assert len(lava_sharded["sharded"]["shards"]) == min(3, machine_cpus())     # local Ray: this machine's CPUs
    _same_run(lava_single, lava_sharded, lava_trains, lava_sharded_trains)
    assert lava_single["predictions"] == single["predictions"][:6]   # and Lava equals cpu
