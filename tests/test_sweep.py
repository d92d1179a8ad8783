"""``neurocomp sweep`` and :func:`neurocomp.pipeline.sweep.sweep`: grids of model.yaml keys, every
point validated before anything runs, compiled on cpu as Ray tasks on a local Ray instance,
resumable, failed points recorded; ``sweep.json`` and ``sweep.html`` (rendered in headless Chromium).

The Ray tests are marked slow (each starts a local Ray instance: ~10-15 s here).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, write_tiny_model
from neurocomp.errors import NeurocompError, SpecError
from neurocomp.pipeline.sweep import grid_points, parse_grid, pareto_front, point_id
from neurocomp.spec import load_spec

ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _cli(*args, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "neurocomp", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout, **kw)


# ------------------------------------------------------------------------- grid and overrides
def test_grid_values_are_typed_like_yaml_and_points_are_every_combination():
    grid = parse_grid(["quantize.weight_bits=4,6", "quantize.headroom=1.5,2", "input.encoding=rate,latency"])
    assert grid == {"quantize.weight_bits": [4, 6], "quantize.headroom": [1.5, 2], "input.encoding": ["rate", "latency"]}
    assert isinstance(grid["quantize.headroom"][1], int)            # '2' is an int; the spec takes it as a number
    points = grid_points(grid)
    assert len(points) == 8 and points[0] == {"quantize.weight_bits": 4, "quantize.headroom": 1.5,
                                              "input.encoding": "rate"}
    assert points[1]["input.encoding"] == "latency"                 # the last key varies fastest
    assert len({point_id(p) for p in points}) == 8
    assert point_id({"a.b": 1, "c.d": 2}) == point_id({"c.d": 2, "a.b": 1})


@pytest.mark.parametrize("items, needle", [
    (["quantize.weight_bits"], "KEY=V1,V2"),
    (["=4,6"], "KEY=V1,V2"),
    (["quantize.weight_bits=4,,6"], "empty value"),
    (["quantize.weight_bits=4,4"], "appears twice"),
    (["quantize.weight_bits=4", "quantize.weight_bits=6"], "given twice"),
    ([], "at least one"),
])
def test_malformed_grids_name_the_item(items, needle):
    with pytest.raises(NeurocompError, match=needle):
        parse_grid(items)


def test_spec_overrides_are_validated_like_the_file_and_errors_name_the_key(tmp_path):
    spec = write_tiny_model(tmp_path) / "model.yaml"
    s = load_spec(spec, overrides={"quantize.weight_bits": 4, "input.timesteps": 12, "input.max_rate": 0.5})
    assert (s.quantize.weight_bits, s.input.timesteps, s.input.max_rate) == (4, 12, 0.5)
    assert s.quantize.calibration_samples == 20                     # the rest of the section kept
    assert load_spec(spec).quantize.weight_bits == 8                # the file itself unchanged
    for overrides, key, needle in [
        ({"quantize.weight_bits": 9}, "quantize.weight_bits", "less than or equal to 8"),
        ({"quantize.weight_bitz": 4}, "quantize.weight_bitz", "unknown key"),
        ({"input.timesteps": "12"}, "input.timesteps", "integer"),
        ({"name.x": 1}, "name.x", "not a mapping"),
        ({"foo.bar": 1}, "foo", "unknown key"),
        ({"quantize..x": 1}, "'quantize..x'", "dotted names"),
    ]:
        with pytest.raises(SpecError) as e:
            load_spec(spec, overrides=overrides)
        assert e.value.key == key and needle in e.value.message
        if "dotted" not in needle and "mapping" not in needle:
            assert f"override {next(iter(overrides))}=" in e.value.message


def test_a_section_missing_from_the_file_is_created(tmp_path):
    spec = write_tiny_model(tmp_path) / "model.yaml"
    text = spec.read_text().replace("quantize: {calibration_samples: 20}\n", "")
    spec.write_text(text)
    assert load_spec(spec, overrides={"quantize.headroom": 4}).quantize.headroom == 4


def test_compile_with_overrides_records_them(tmp_path):
    from neurocomp.pipeline import compile_model
    spec = write_tiny_model(tmp_path / "m") / "model.yaml"
    report = compile_model(spec, target="cpu", out=tmp_path / "b", overrides={"input.timesteps": 5,
                                                                              "quantize.weight_bits": 5})
    assert report["timesteps"] == 5 and all(row["num_weight_bits"] == 5 for row in report["layers"])
    info = json.loads((tmp_path / "b" / "build.json").read_text())
    assert info["overrides"] == {"input.timesteps": 5, "quantize.weight_bits": 5}


@pytest.mark.parametrize("grid, needle", [
    ("quantize.weight_bitz=4,6", "quantize.weight_bitz: unknown key"),
    ("quantize.weight_bits=4,9", "quantize.weight_bits: must be less than or equal to 8 (got 9)"),
    ("input.encoding=rate,poisson", "input.encoding: got 'poisson'"),
])
def test_a_bad_key_or_value_stops_the_sweep_before_anything_runs(tmp_path, grid, needle):
    spec = write_tiny_model(tmp_path / "m") / "model.yaml"
    t0 = time.perf_counter()
    res = _cli("sweep", spec, "--grid", "quantize.headroom=2,4", "--grid", grid, "--out", tmp_path / "out")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()                          # nothing written, no Ray started
    assert time.perf_counter() - t0 < 60


def test_out_must_be_a_sweep_directory(tmp_path):
    spec = write_tiny_model(tmp_path / "m") / "model.yaml"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    res = _cli("sweep", spec, "--grid", "quantize.headroom=2,4", "--out", tmp_path / "other")
    assert res.returncode == 2 and "not a neurocomp sweep" in res.stderr
    res = _cli("sweep", spec, "--grid", "quantize.headroom=2,4", "--out", tmp_path / "m")
    assert res.returncode == 2 and "model's own file" in res.stderr
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------ Pareto front
def _rec(pid, acc, joules, status="ok"):
    return {"id": pid, "status": status, "overrides": {"k": pid}, "label": f"k={pid}",
            "metrics": {"accuracy": {"cpu": acc, "float": acc}, "latency_steps": 10,
                        "energy": {"devices": {"loihi": {"joules_per_inference": joules}}, "baseline": {}}}}


def test_pareto_front_keeps_the_points_nothing_beats():
    recs = [_rec("a", 0.90, 1.0), _rec("b", 0.92, 2.0), _rec("c", 0.91, 3.0), _rec("d", 0.95, 5.0),
            _rec("e", 0.95, 6.0), _rec("f", 0.80, 0.5), _rec("g", 0.99, 0.1, status="failed")]
    assert pareto_front(recs, "loihi") == ["f", "a", "b", "d"]     # c: b is better and cheaper; e: d cheaper
    assert pareto_front(recs, "loihi2") == []


# ------------------------------------------------------------------------------- on Ray
def _records(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in (out / "points").glob("*.json")}


@pytest.mark.slow
def test_small_sweep_on_local_ray_with_two_workers_resumes_and_renders(tmp_path):
    import ray

    from neurocomp.pipeline import compile_model, load_build, run_build
    from neurocomp.pipeline.sweep import sweep
    spec = write_tiny_model(tmp_path / "m", hidden=24, gain=3.0) / "model.yaml"
    out = tmp_path / "sweep"
    grid = {"quantize.weight_bits": [3, 8], "dataset.holdout": [100, 5000]}   # 5000 > the 1797 digits: fails
    seen = []
    doc = sweep(spec, grid, out, workers=2, progress=lambda d, t, r: seen.append((d, t)))
    assert not ray.is_initialized()                                  # the local instance was shut down
    assert (doc["points"], doc["ok"], doc["failed"], doc["ran"], doc["skipped"]) == (4, 2, 2, 4, 0)
    assert seen[-1] == (4, 4)
    recs = _records(out)
    assert len({r["pid"] for r in recs.values()}) == 2               # two Ray workers did the work
    for r in recs.values():
        if r["status"] == "failed":
            assert "dataset.holdout: 5000 must be smaller than the 1797 samples" in r["error"]
            assert "\n" not in r["error"]
    # a point's record is what the same compile gives here, and its build is a working build
    for bits in (3, 8):
        pid = point_id({"quantize.weight_bits": bits, "dataset.holdout": 100})
        m = recs[pid]["metrics"]
        direct = compile_model(spec, target="cpu", out=tmp_path / f"direct{bits}", energy=True,
                               overrides={"quantize.weight_bits": bits, "dataset.holdout": 100})
        assert m["accuracy"]["cpu"] == direct["accuracy"]["cpu"] and m["accuracy"]["float"] == direct["accuracy"]["float"]
        for dev, d in direct["energy"]["devices"].items():
            assert m["energy"]["devices"][dev]["joules_per_inference"] == pytest.approx(d["joules_per_inference"])
        assert m["latency_steps"] == 8 + 2                            # 8 steps + the output population's depth
        build = load_build(out / "points" / pid)
        assert all(p.neuron is not None for p in build.fixed.populations)
        summary, _ = run_build(out / "points" / pid, "cpu")
        assert summary["accuracy"] == m["accuracy"]["cpu"]
    assert doc["pareto"]["loihi"] and set(doc["pareto"]["loihi"]) <= {r["id"] for r in recs.values()
                                                                      if r["status"] == "ok"}
    first = {k: r["finished"] for k, r in recs.items()}

    # the resumed sweeps use a Ray session already open (as in a notebook) and leave it open
    from neurocomp.pipeline.cluster import ray_session
    with ray_session(workers=2):
        # resume with a bigger grid: only the new points run (their failure is recorded again)
        grid["quantize.weight_bits"].append(5)
        doc = sweep(spec, grid, out, workers=2)
        assert (doc["points"], doc["ran"], doc["skipped"], doc["ok"], doc["failed"]) == (6, 2, 4, 3, 3)
        recs = _records(out)
        assert all(recs[k]["finished"] == first[k] for k in first)        # untouched
        # a record lost (as after Ctrl-C mid-write): just that point again; retry_failed: the failed ones too
        lost = point_id({"quantize.weight_bits": 8, "dataset.holdout": 100})
        (out / "points" / f"{lost}.json").unlink()
        doc = sweep(spec, grid, out, workers=2, retry_failed=True)
        assert (doc["ran"], doc["skipped"], doc["ok"], doc["failed"]) == (4, 2, 3, 3)
        assert ray.is_initialized()
    assert not ray.is_initialized()
    on_disk = json.loads((out / "sweep.json").read_text())
    assert [r["id"] for r in on_disk["records"]] == [point_id(p) for p in grid_points(grid)]
    _check_page_in_chromium(out / "sweep.html", on_disk, tmp_path)


def _check_page_in_chromium(page: Path, doc: dict, tmp_path: Path):
    from PIL import Image

    from neurocomp.report.sweep_page import COLOURS
    from test_energy import _chromium, _chromium_args
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 1 + len(doc["grid"])   # the fronts, one per key
    assert "src=\"http" not in text and "href=\"http" not in text and "<script" not in text
    exe = _chromium()
    shot = tmp_path / "sweep.png"
    subprocess.run(_chromium_args(exe, tmp_path / "p1") + [f"--screenshot={shot}", "--window-size=1200,1800",
                                                           page.as_uri()], check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (1800, 1200) and img.std() > 20

    def pixels_of(hex_colour: str, tol: int = 10) -> int:
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(img - rgb).max(axis=2) <= tol).sum())
    assert pixels_of(COLOURS["front"]) > 200, "no Pareto front drawn"
    assert pixels_of(COLOURS["point"]) > 100, "no grid points drawn"
    dom = subprocess.run(_chromium_args(exe, tmp_path / "p2") + ["--dump-dom", page.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<img") == 1 + len(doc["grid"])
    for r in doc["records"]:
        assert f"data-id=\"{r['id']}\" data-status=\"{r['status']}\"" in dom
        if r["status"] == "ok":
            assert f'data-value="{float(r["metrics"]["accuracy"]["cpu"])!r}"' in dom
    for dev, front in doc["pareto"].items():
        assert dom.count(f'<table class="front" data-device="{dev}">') == 1 and all(pid in dom for pid in front)


@pytest.mark.slow
def test_ctrl_c_exits_130_leaves_no_ray_process_and_the_sweep_resumes_past_a_lost_worker(tmp_path):
    spec = write_tiny_model(tmp_path / "m", hidden=24, gain=3.0) / "model.yaml"
    out = tmp_path / "sweep"
    args = [sys.executable, "-m", "neurocomp", "sweep", str(spec), "--grid", "quantize.weight_bits=3,5,8",
            "--grid", "input.timesteps=6,8", "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((out / "points").glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    session = _session_processes(proc.pid)
    assert any("raylet" in cmd for cmd in session.values()), session     # Ray really runs in this session
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)                                    # Ctrl-C at a terminal: the group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 20
    assert err.strip().splitlines()[-1].startswith("interrupted: stopped by Ctrl-C") and "Traceback" not in err
    time.sleep(1.0)
    assert _session_processes(proc.pid) == {}, "processes left behind"
    before = _records(out)
    done = set(before)
    assert 2 <= len(done) < 6
    # resume; and a worker killed mid-point (a lost worker): Ray runs its point again elsewhere
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    deadline, killed = time.monotonic() + 300, None
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        busy = [pid for pid, cmd in _session_processes(proc.pid).items() if cmd.startswith("ray::evaluate_point")]
        if busy:       # a fresh worker's first point: it is still importing neurocomp, seconds to go
            time.sleep(0.3)
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.1)
    _, err = proc.communicate(timeout=600)
    assert killed is not None and proc.returncode == 0, err
    doc = json.loads((out / "sweep.json").read_text())
    assert (doc["ran"], doc["skipped"], doc["ok"]) == (6 - len(done), len(done), 6)
    assert all(r["pid"] != killed for r in doc["records"])
    after = _records(out)
    assert all(after[k] == before[k] for k in done)                       # the finished points did not run again


def _session_processes(sid: int) -> dict:
    """pid -> command line of the live processes in session ``sid``."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    out[int(d)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    return out
