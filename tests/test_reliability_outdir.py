"""``compile --out DIR`` never deletes what the user put there (issue 10, data loss).

Real compiles (cpu target, the tiny digits model) through the CLI; every refusal is exit 2 with one
line naming the directory, the user's files are still there afterwards and no ``.NAME.tmp-*`` /
``.NAME.old-*`` is left behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO, write_tiny_model
from neurocomp.cli.main import cli
from neurocomp.io import BUILD_MARKER

PY = sys.executable


def _compile(spec, *args):
    return CliRunner().invoke(cli, ["compile", str(spec), "--target", "cpu", "-q", *map(str, args)])


def _one_error_line(res, *needles):
    text = res.output.strip()
    assert res.exit_code == 2, res.output
    assert len(text.splitlines()) == 1 and text.startswith("error: "), text
    assert "Traceback" not in text
    for n in needles:
        assert str(n) in text, text
    return text


def _stray(root: Path) -> list:
    return sorted(str(p) for pat in ("**/.*.tmp-*", "**/.*.old-*") for p in root.glob(pat))


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture
def model(tmp_path):
    return write_tiny_model(tmp_path / "model") / "model.yaml"


def test_non_empty_foreign_directory_is_refused_and_kept(model, tmp_path):
    user = tmp_path / "results"
    (user / "sub").mkdir(parents=True)
    (user / "thesis.tex").write_text("two years of work")
    (user / "sub" / "data.csv").write_text("1,2,3")
    before = _snapshot(user)
    _one_error_line(_compile(model, "--out", user), user, "not a neurocomp build", "--force")
    assert _snapshot(user) == before
    assert _stray(tmp_path) == []
    # --force is the user saying so: replaced by a complete build, atomically
    res = _compile(model, "--out", user, "--force")
    assert res.exit_code == 0, res.output
    assert not (user / "thesis.tex").exists()
    assert sorted(os.listdir(user)) == ["build.json", "network.npz", "network_float.npz", "report.html", "report.json"]
    assert _stray(tmp_path) == []


def test_the_models_own_folder_is_refused_even_with_force(model, tmp_path):
    folder = model.parent
    before = _snapshot(folder)
    for extra in ([], ["--force"]):
        _one_error_line(_compile(model, "--out", folder, *extra), folder, "model's own folder")
        assert _snapshot(folder) == before
    # a parent of the model's folder holds its files too
    _one_error_line(_compile(model, "--out", tmp_path, "--force"), "model's own file")
    assert _snapshot(folder) == before
    assert _stray(tmp_path) == []


def test_out_dot_and_a_model_named_dotdot_are_refused_cleanly(model, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    for out in (".", "..", str(work)):
        _one_error_line(_compile(model, "--out", out, "--force"), "current directory")
    assert (work / "keep.txt").read_text() == "mine"
    spec = model.read_text().replace("name: tiny", "name: ..")
    model.write_text(spec)
    _one_error_line(_compile(model), f"{model}: name:", "must not be '.' or '..'")
    assert sorted(os.listdir(work)) == ["keep.txt"]
    assert _stray(tmp_path) == []


def test_empty_dir_and_previous_build_are_reused_atomically(model, tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    assert _compile(model, "--out", out).exit_code == 0
    marker = json.loads((out / "build.json").read_text())[BUILD_MARKER]
    assert marker["format"] == "neurocomp-build"
    assert marker["files"] == ["build.json", "network.npz", "network_float.npz", "report.html", "report.json"]
    first = (out / "network.npz").stat().st_ino
    assert CliRunner().invoke(cli, ["run", str(out), "-q"]).exit_code == 0   # DIR/run is ours too
    assert _compile(model, "--out", out).exit_code == 0
    assert (out / "network.npz").stat().st_ino != first                    # a new build in place
    assert not (out / "run").exists()
    assert _stray(tmp_path) == []
    # a build the user has put their own file into is theirs again
    (out / "notes.md").write_text("my notes")
    _one_error_line(_compile(model, "--out", out), "notes.md", "did not write")
    assert (out / "notes.md").read_text() == "my notes"
    # and a plain file is not a directory to build into
    f = tmp_path / "file.txt"
    f.write_text("x")
    _one_error_line(_compile(model, "--out", f), "--out", "is a file")
    assert f.read_text() == "x"


@pytest.mark.parametrize("umask,dmode,fmode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600), (0o002, 0o775, 0o664)])
def test_build_permissions_follow_the_umask(model, tmp_path, umask, dmode, fmode):
    old = os.umask(umask)
    try:
        res = _compile(model, "--out", tmp_path / "b")
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "b").stat().st_mode & 0o777 == dmode
    for f in ("network.npz", "build.json", "report.json", "network_float.npz"):
        assert (tmp_path / "b" / f).stat().st_mode & 0o777 == fmode, f


def test_stale_temporaries_of_a_killed_compile_are_cleaned(model, tmp_path):
    """SIGKILL a process while it holds a half-written build: the next compile removes that
    temporary (its process is gone) and nothing else."""
    out = tmp_path / "b"
    holder = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from neurocomp.io import atomic_directory
        with atomic_directory(Path({str(out)!r})) as tmp:
            (tmp / "network.npz").write_bytes(b"half a build")
            print(tmp, flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    stale = Path(holder.stdout.readline().strip())
    assert stale.is_dir() and stale.name.startswith(".b.tmp-")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert stale.is_dir()                       # what SIGKILL leaves behind
    live = tmp_path / f".b.tmp-{os.getpid()}-0a0a0a0a"   # owned by a live process (this one)
    live.mkdir()
    other = tmp_path / ".b.tmp-notours"             # not a name we write
    other.mkdir()
    neighbour = tmp_path / f".c.tmp-{holder.pid}-0b0b0b0b"  # another build's temporary
    neighbour.mkdir()
    res = _compile(model, "--out", out)
    assert res.exit_code == 0, res.output
    assert not stale.exists()
    assert live.is_dir() and other.is_dir() and neighbour.is_dir()
    assert (out / "network.npz").read_bytes() != b"half a build"


def test_two_concurrent_compiles_to_one_out_both_finish(model, tmp_path):
    out = tmp_path / "shared"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [PY, "-m", "neurocomp", "compile", str(model), "--target", "cpu", "--out", str(out), "-q"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (so, se) in zip(procs, results):
        assert p.returncode == 0, se
        assert "Traceback" not in se
    info = json.loads((out / "build.json").read_text())
    assert info["model"] == "tiny"
    assert CliRunner().invoke(cli, ["run", str(out), "-q", "--out", str(tmp_path / "r")]).exit_code == 0
    assert _stray(tmp_path) == []


def test_racing_swaps_into_one_directory_never_fail(tmp_path):
    """Four processes replace the same build 25 times each, as fast as they can: every swap
    succeeds (the parent-directory lock orders them), the survivor is one whole build."""
    out = tmp_path / "race"
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from neurocomp.io import atomic_directory, atomic_write_json
        for i in range(25):
            with atomic_directory(Path({str(out)!r})) as tmp:
                atomic_write_json(tmp / "build.json", {{"model": "m", "target": "cpu", "dataset": {{}},
                                                        "writer": os.getpid(), "i": i}})
                (tmp / "network.npz").write_bytes(str(os.getpid()).encode() * 1000)
    """)
    procs = [subprocess.Popen([PY, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errs
    info = json.loads((out / "build.json").read_text())
    assert (out / "network.npz").read_bytes() == str(info["writer"]).encode() * 1000
    assert _stray(tmp_path) == []
