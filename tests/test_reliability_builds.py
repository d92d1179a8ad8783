"""Corrupted builds: run / verify / energy / hil / ``targets --map`` say in one line which file is
wrong and how, exit 2, no traceback (issue 10). One real build (cpu target) is compiled, then each
case damages a copy of it the way disks, editors and killed processes do."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_tiny_model
from neurocomp.cli.main import cli
from neurocomp.errors import MAX_MESSAGE

COMMANDS = {
    "run": lambda d: ["run", str(d), "--target", "cpu", "-q"],
    "verify": lambda d: ["verify", str(d), "--targets", "float,cpu", "-q"],
    "energy": lambda d: ["energy", str(d), "-q"],
    "hil": lambda d: ["hil", str(d), "-q"],
    "targets --map": lambda d: ["targets", "loihi2", "--map", str(d)],
}


@pytest.fixture(scope="module")
def good_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("builds")
    spec = write_tiny_model(root / "model") / "model.yaml"
    res = CliRunner().invoke(cli, ["compile", str(spec), "--target", "cpu", "--out", str(root / "good"), "-q"])
    assert res.exit_code == 0, res.output
    return root / "good"


def _rewrite_npz(path: Path, change) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez_compressed(path, **arrays)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _drop_first_weight(arrays):
    del arrays[next(k for k in arrays if k.endswith("/weight"))]


def _reshape_first_weight(arrays):
    k = next(k for k in arrays if k.endswith("/weight"))
    arrays[k] = arrays[k][:, :-3]


def _drop_dataset(info):
    del info["dataset"]


def _holdout_as_text(info):
    info["dataset"]["holdout"] = "many"


CASES = {
    "truncated network.npz": ("network.npz", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                              "unreadable, truncated or corrupted"),
    "bit-flipped network.npz": ("network.npz", _flip, "network.npz: unreadable, truncated or corrupted"),
    "empty network.npz": ("network.npz", lambda p: p.write_bytes(b""), "network.npz: empty file (0 bytes)"),
    "missing array": ("network.npz", lambda p: _rewrite_npz(p, _drop_first_weight), "is missing from the file"),
    "wrong-shape array": ("network.npz", lambda p: _rewrite_npz(p, _reshape_first_weight),
                          "weight shape (16, 61), expected (16, 64)"),
    "not a network file": ("network.npz", lambda p: np.savez(p, x=np.zeros(3)), "no '__network__' entry"),
    "corrupted float network": ("network_float.npz", lambda p: p.write_bytes(b"PK\x03\x04 garbage"),
                                "network_float.npz: unreadable"),
    "build.json not JSON": ("build.json", lambda p: p.write_text('{"model": "tiny",'), "build.json: not valid JSON"),
    "build.json a list": ("build.json", lambda p: p.write_text("[1, 2, 3]"),
                          "build.json: the build description (build.json) must be an object, got a list"),
    "build.json empty": ("build.json", lambda p: p.write_text(""), "build.json: empty file"),
    "build.json missing key": ("build.json", lambda p: p.write_text(json.dumps(
        {k: v for k, v in json.loads(p.read_text()).items() if k != "dataset"})), "build.json: missing key 'dataset'"),
    "build.json wrong type": ("build.json", lambda p: p.write_text(json.dumps(
        {**json.loads(p.read_text()), "input_seed": True})), "build.json: input_seed must be a number, got a boolean"),
    "build.json nested wrong type": ("build.json", lambda p: (lambda d: (d["dataset"].__setitem__("holdout", "many"),
                                                                         p.write_text(json.dumps(d))))(
        json.loads(p.read_text())), "build.json: dataset.holdout must be a number, got a string"),
    "network.npz missing": ("network.npz", lambda p: p.unlink(), "not a neurocomp build directory (no network.npz"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_corrupted_build_is_one_line_naming_the_file(good_build, tmp_path, case, command):
    name, damage, pattern = CASES[case]
    if command == "targets --map" and name == "network_float.npz":
        pytest.skip("the core map reads only the fixed-point network")
    build = tmp_path / "build"
    shutil.copytree(good_build, build)
    damage(build / name)
    before = {p.name: p.read_bytes() for p in build.iterdir() if p.is_file()}
    res = CliRunner().invoke(cli, COMMANDS[command](build))
    text = res.output.strip()
    assert res.exit_code == 2, (command, case, res.output[-3000:])
    assert "Traceback" not in text and len(text.splitlines()) == 1, text[-3000:]
    assert text.startswith("error: ") and len(text) <= MAX_MESSAGE + 7, text
    assert str(build) in text and pattern in text, text
    assert {p.name: p.read_bytes() for p in build.iterdir() if p.is_file()} == before   # nothing written
    assert not any(build.glob(".*.tmp-*")) and sorted(p.name for p in build.iterdir() if p.is_dir()) == []


def test_a_build_with_a_broken_schedule_or_report_is_one_line(good_build, tmp_path):
    """build.json's schedule and sample counts (which regenerate the compile's samples) and report.json
    are read through the same checks."""
    build = tmp_path / "build"
    shutil.copytree(good_build, build)
    info = json.loads((build / "build.json").read_text())
    report = json.loads((build / "report.json").read_text())
    cases = [
        ({k: v for k, v in info.items() if k != "spec"}, report, "build.json: missing key 'spec'"),
        (info, "{ truncated", "report.json: not valid JSON"),
        ({k: v for k, v in info.items() if k != "schedule"}, report, "build.json: missing key 'schedule'"),
        ({**info, "samples": {**info["samples"], "test": "3"}}, report, "build.json: samples.test must be"),
        ({**info, "schedule": []}, report, "build.json: schedule must be"),
    ]
    for command in (["verify", str(build), "--targets", "cpu,loihi-sim", "-q"], ["energy", str(build), "-q"],
                    ["run", str(build), "-q"]):
        for new_info, new_report, message in cases:
            (build / "build.json").write_text(json.dumps(new_info))
            (build / "report.json").write_text(new_report if isinstance(new_report, str) else json.dumps(new_report))
            res = CliRunner().invoke(cli, command)
            assert res.exit_code == 2 and message in res.output, (command, message, res.output)
            assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
