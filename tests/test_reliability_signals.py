"""Ctrl-C and SIGKILL with real signals (issue 10).

Each command runs as a real ``neurocomp`` process in its own session (``start_new_session=True``) —
its process group is what a terminal's Ctrl-C reaches. Once Lava's workers are up, SIGINT goes to the
whole group: the command must exit 130 within seconds with one line and no traceback, every process
of the session must be gone (Lava's workers and its shared-memory manager included), no ``*.tmp-*``
may be left and earlier outputs must be byte-for-byte unchanged. SIGKILL of the parent alone must take
the workers with it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, write_tiny_model

pytestmark = pytest.mark.slow

PY = sys.executable
LAVA_UP = 3        # children of the CLI once Lava runs: shared-memory manager + runtime service + models


def _session(sid: int) -> list:
    """(pid, ppid, state) of every process in session ``sid``, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[3]) == sid:
            out.append((int(d), int(fields[1]), fields[0]))
    return out


def _live(sid: int) -> list:
    return [p for p in _session(sid) if p[2] != "Z"]  # a zombie is dead; init reaps it


def _children(pid: int) -> list:
    return [p for p in _session(pid) if p[1] == pid and p[2] != "Z"]


def _start(args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([PY, "-m", "neurocomp", *map(str, args)], cwd=cwd, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lava(proc, timeout=180.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"finished before Lava ran (rc {proc.returncode}): {err[-2000:]}")
        if len(_children(proc.pid)) >= LAVA_UP:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError("Lava's workers never appeared")


def _stray(*roots) -> list:
    return sorted(str(p) for r in roots for pat in ("**/*.tmp-*", "**/.*.old-*") for p in Path(r).glob(pat))


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(Path(d).rglob("*")) if p.is_file()}


def _interrupt(proc, extra_signals: int = 0, gap: float = 0.05) -> tuple:
    """SIGINT to the process group (Ctrl-C at a terminal); returns (seconds to exit, stderr)."""
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    for _ in range(extra_signals):
        time.sleep(gap)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            break
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("the command did not exit within 60 s of Ctrl-C")
    return time.monotonic() - t0, err


def _assert_clean_exit(proc, seconds, err, roots, code=130):
    assert proc.returncode == code, (proc.returncode, err[-3000:])
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("interrupted"), err
    assert seconds < 10, seconds
    deadline = time.monotonic() + 5
    while _live(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _live(proc.pid) == [], f"orphans left: {_live(proc.pid)}"
    assert _stray(*roots) == []
    print(f"exit {proc.returncode} {seconds:.2f} s after Ctrl-C")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """A build of the tiny digits model with 1500 held-out samples (12000 Lava steps: long enough)."""
    root = tmp_path_factory.mktemp("sig")
    spec = write_tiny_model(root / "model", holdout=1500) / "model.yaml"
    p = _start(["compile", spec, "--target", "cpu", "--out", root / "build", "-q"], root)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    p = _start(["run", root / "build", "--target", "cpu", "-q"], root)   # an earlier output: DIR/run/run.json
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    return root / "build"


def test_ctrl_c_during_compile_on_loihi_sim_keeps_the_previous_build(build, tmp_path):
    spec = build.parent / "model" / "model.yaml"
    out = tmp_path / "out"
    shutil.copytree(build, out)                 # the previous build that --out replaces on success
    (out / "run").exists() and shutil.rmtree(out / "run")
    before = _snapshot(out)
    proc = _start(["compile", spec, "--target", "loihi-sim", "--samples", "1500", "--out", out], tmp_path)
    _wait_for_lava(proc)
    seconds, err = _interrupt(proc)
    _assert_clean_exit(proc, seconds, err, [tmp_path])
    assert _snapshot(out) == before


def test_ctrl_c_during_run_on_loihi_sim(build, tmp_path):
    before = _snapshot(build)
    proc = _start(["run", build, "--target", "loihi-sim"], tmp_path)
    _wait_for_lava(proc)
    seconds, err = _interrupt(proc)
    _assert_clean_exit(proc, seconds, err, [tmp_path, build])
    assert _snapshot(build) == before            # DIR/run/run.json of the earlier cpu run untouched


def test_ctrl_c_during_verify(build, tmp_path):
    out = tmp_path / "v"
    out.mkdir()
    (out / "verify.json").write_text('{"earlier": true}')
    proc = _start(["verify", build, "--samples", "1500", "--out", out], tmp_path)
    _wait_for_lava(proc)
    seconds, err = _interrupt(proc)
    _assert_clean_exit(proc, seconds, err, [tmp_path, build])
    assert json.loads((out / "verify.json").read_text()) == {"earlier": True}


def test_ctrl_c_during_hil_writes_what_is_done(build, tmp_path):
    proc = _start(["hil", build, "--samples", "1500", "--out", tmp_path / "h"], tmp_path)
    _wait_for_lava(proc)
    time.sleep(1.0)
    seconds, err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "h" / "hil.json").read_text())
    assert report["complete"] is False and 0 < report["samples"] < 1500
    deadline = time.monotonic() + 5
    while _live(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _live(proc.pid) == [] and _stray(tmp_path, build) == []


def test_ctrl_c_during_energy(build, tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "energy.json").write_text('{"earlier": true}')
    proc = _start(["energy", build, "--out", out], tmp_path)
    line = proc.stderr.readline()               # "· counting activity ...": the count is running
    assert line.startswith("·"), line
    seconds, err = _interrupt(proc)
    _assert_clean_exit(proc, seconds, err, [tmp_path, build])
    assert json.loads((out / "energy.json").read_text()) == {"earlier": True}


def test_second_ctrl_c_stops_at_once(build, tmp_path):
    proc = _start(["run", build, "--target", "loihi-sim", "--out", tmp_path / "r"], tmp_path)
    _wait_for_lava(proc)
    seconds, err = _interrupt(proc, extra_signals=2, gap=0.02)
    _assert_clean_exit(proc, seconds, err, [tmp_path, build])
    assert not (tmp_path / "r").exists()


def test_sigkill_of_the_parent_takes_lavas_workers_with_it(build, tmp_path):
    proc = _start(["run", build, "--target", "loihi-sim", "--out", tmp_path / "r"], tmp_path)
    _wait_for_lava(proc)
    workers = _children(proc.pid)
    assert len(workers) >= LAVA_UP
    proc.send_signal(signal.SIGKILL)            # the parent only, not the group
    proc.communicate()
    t0 = time.monotonic()
    while _live(proc.pid) and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert _live(proc.pid) == [], f"orphaned workers: {_live(proc.pid)}"
    print(f"{len(workers)} workers gone {time.monotonic() - t0:.2f} s after SIGKILL of the parent")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_kill_of_the_parent_alone(build, tmp_path, sig, code):
    """``kill -INT PID`` / ``kill PID`` (not the group: the workers get nothing) used to hang for minutes."""
    proc = _start(["run", build, "--target", "loihi-sim", "--out", tmp_path / "r"], tmp_path)
    _wait_for_lava(proc)
    proc.send_signal(sig)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    _assert_clean_exit(proc, time.monotonic() - t0, err, [tmp_path, build], code=code)
    assert not (tmp_path / "r").exists()
