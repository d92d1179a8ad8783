"""Every bad input is one line naming the file and the key/array, exit 2, no traceback (issue 10).

Real model folders (the tiny digits model of conftest, a 784-input MNIST model), real YAML, real
``.npz`` files and real user code, through the CLI (click's runner; a subprocess where the output of
libraries outside Python's reach matters).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import REPO, write_tiny_model
from neurocomp.cli.main import cli
from neurocomp.errors import MAX_MESSAGE

PY = sys.executable


def _compile(spec, out, *args):
    return CliRunner().invoke(cli, ["compile", str(spec), "--target", "cpu", "--out", str(out), "-q", *map(str, args)])


def _one_line(res, *needles, code=2):
    text = res.output.strip()
    assert res.exit_code == code, res.output[-2000:]
    assert "Traceback" not in text and res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert len(text.splitlines()) == 1 and text.startswith("error: "), text[:2000]
    assert len(text) <= MAX_MESSAGE + len("error: "), len(text)
    for n in needles:
        assert str(n) in text, text
    return text


def _stray(root: Path) -> list:
    return sorted(str(p) for pat in ("**/.*.tmp-*", "**/.*.old-*") for p in root.glob(pat))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


@pytest.fixture
def model(tmp_path):
    return write_tiny_model(tmp_path / "model") / "model.yaml"


# ------------------------------------------------------------------------------------ YAML bounds
def _alias_bomb(levels: int, tail: str = "") -> str:
    lines = ["neurocomp: 1", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for c in "bcdefghijk"[: levels - 1]:
        lines.append(f"{c}: &{c} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = c
    return "\n".join(lines) + "\n" + tail.replace("LAST", prev)


def test_nested_alias_bomb_is_refused_at_once(model, tmp_path):
    bomb = _alias_bomb(9)
    assert len(bomb.encode()) < 500          # the 497-byte document: 9**9 strings expanded
    model.write_text(bomb)
    t0 = time.perf_counter()
    res = _compile(model, tmp_path / "b")
    assert time.perf_counter() - t0 < 5
    _one_line(res, str(model), "expands to more than", "aliases")
    assert not (tmp_path / "b").exists()


def _anchors(levels: int) -> str:
    """Flow-style anchors a, b, c, ... (each 9 references to the one before) for source.kwargs."""
    items = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for c in "bcdefghijk"[: levels - 1]:
        items.append(f"{c}: &{c} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = c
    return "{" + ", ".join(items) + "}", prev


def test_alias_expansion_in_an_error_value_keeps_the_line_short(model, tmp_path):
    spec = model.read_text()
    for levels, needles in ((6, ("expands to more than",)),                       # 531441 strings: refused
                            (3, ("input.timesteps: must be a valid integer (got [[",))):  # 729: validated
        anchors, last = _anchors(levels)
        model.write_text(spec.replace("weights: weights.pt}", f"weights: weights.pt, kwargs: {anchors}}}")
                         .replace("timesteps: 8", f"timesteps: *{last}"))
        _one_line(_compile(model, tmp_path / "b"), str(model), *needles)


@pytest.mark.parametrize("old,new,key,pattern", [
    ("timesteps: 8", "timesteps: true", "input.timesteps", "must be a valid integer (got True)"),
    ("timesteps: 8", 'timesteps: "8"', "input.timesteps", "must be a valid integer (got '8')"),
    ("samples: 3", "samples: -5", "verify.samples", "greater than or equal to 1 or 'auto' (got -5)"),
    ("samples: 3", "samples: 0", "verify.samples", "greater than or equal to 1 or 'auto' (got 0)"),
    ("samples: 3", "samples: .nan", "verify.samples", "got nan"),
    ("max_rate: 1.0", "max_rate: .inf", "input.max_rate", "finite number"),
    ("name: tiny", "name: tiny\ntarget: bogus", "target", "allowed: 'loihi-sim', 'cpu', 'loihi2' (got 'bogus')"),
    ("name: tiny", "name: tiny\n1: one", "1", "key 1 is int, keys must be strings"),
    ("quantize: {calibration_samples: 20}", "quantize: {calibration_samples: 20, true: x}", "quantize.True",
     "key True is bool"),
    ("name: tiny", "name: tiny\nname: again", "name", "appears twice"),
    ("holdout: 100", "holdout: 5000", "dataset.holdout", "must be smaller than the 1797 samples of digits"),
    ("neurocomp: 1", "neurocomp: true", "neurocomp", "spec version must be 1"),
])
def test_wrong_types_and_ranges_name_file_and_key(model, tmp_path, old, new, key, pattern):
    if "max_rate" in old:
        _edit(model, "encoding: rate,", "encoding: rate, max_rate: 1.0,")
    _edit(model, old, new)
    _one_line(_compile(model, tmp_path / "b"), f"error: {model}: {key}: ", pattern)
    assert not (tmp_path / "b").exists()
    assert _stray(tmp_path) == []


def test_reports_never_hold_nan(model, tmp_path):
    from neurocomp.io import to_json
    doc = json.loads(to_json({"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": np.array([np.nan, 2.0])}))
    assert doc == {"a": None, "b": [None, 1.5], "c": [None, 2.0]}
    assert _compile(model, tmp_path / "b").exit_code == 0

    def no_constants(name):
        raise AssertionError(f"{name} in report.json")
    json.loads((tmp_path / "b" / "report.json").read_text(), parse_constant=no_constants)


# ------------------------------------------------------------------------------------ memory
def _mnist_model(d: Path, timesteps: int, holdout: int) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "net.py").write_text(textwrap.dedent("""
        from torch import nn
        from neurocomp.nn import LIF

        def build():
            return nn.Sequential(nn.Linear(784, 16, bias=False), LIF(16), nn.Linear(16, 10, bias=False), LIF(10))
    """))
    from torch import nn
    from neurocomp.nn import LIF
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Linear(784, 16, bias=False), LIF(16), nn.Linear(16, 10, bias=False),
                             LIF(10)).state_dict(), d / "weights.pt")
    (d / "model.yaml").write_text(textwrap.dedent(f"""
        neurocomp: 1
        name: mnist_tiny
        source: {{kind: torch, factory: net.py:build, weights: weights.pt}}
        input: {{encoding: rate, timesteps: {timesteps}}}
        dataset: {{name: mnist5k, holdout: {holdout}}}
        quantize: {{calibration_samples: 10}}
        verify: {{samples: 2}}
    """))
    return d / "model.yaml"


def test_timesteps_that_do_not_fit_in_memory_are_refused_before_encoding(tmp_path):
    from neurocomp.process import available_memory
    avail = available_memory()
    if avail is None or avail > 300e9:
        pytest.skip("needs a machine with less than 300 GB available to exceed it")
    spec = _mnist_model(tmp_path / "m", timesteps=100_000, holdout=4000)   # ~310 GB of input spikes
    t0 = time.perf_counter()
    res = _compile(spec, tmp_path / "b")
    _one_line(res, f"{spec}: input.timesteps 100000 x", "of memory", "available", "lower input.timesteps")
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "b").exists() and _stray(tmp_path) == []


def test_run_with_more_samples_than_memory_is_refused_naming_samples(tmp_path):
    """A build whose steps x held-out samples exceed the memory (timesteps rewritten in the build's
    network files): run refuses before encoding, naming --samples, and runs a few samples fine."""
    import dataclasses
    from neurocomp.ir import load_network, save_network
    from neurocomp.process import available_memory
    avail = available_memory()
    if avail is None or avail > 300e9:
        pytest.skip("needs a machine with less than 300 GB available to exceed it")
    spec = _mnist_model(tmp_path / "m", timesteps=8, holdout=4000)
    build = tmp_path / "b"
    assert _compile(spec, build).exit_code == 0
    for f in ("network.npz", "network_float.npz"):
        save_network(dataclasses.replace(load_network(build / f), timesteps=100_000), build / f)
    res = CliRunner().invoke(cli, ["run", str(build), "-q"])
    _one_line(res, f"{build}: input.timesteps 100000 x 4000 samples", "lower --samples")
    assert not (build / "run").exists()


# ------------------------------------------------------------------------------------ .npz datasets
def _digits_npz(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


@pytest.mark.parametrize("case,array,pattern", [
    ("y_float", "y", "must hold integer class labels; y[0] = 0.5"),
    ("y_onehot", "y", "has shape (300, 10), expected one label per sample"),
    ("len", "y", "has 299 labels, array 'x' has 300 samples"),
    ("empty", "x", "holds no samples"),
    ("no_y", "y", "no array 'y'"),
    ("nan_x", "x", "must hold finite values"),
    ("x_range", "x", "values in [0, 1]"),
    ("garbage", None, "not a readable .npz dataset"),
    ("zero_bytes", None, "empty (0 bytes)"),
    ("labels_out_of_range", None, "labels 10, 11 outside the network's 10 output classes"),
])
def test_npz_datasets_are_validated_naming_file_and_array(model, tmp_path, case, array, pattern):
    rng = np.random.default_rng(0)
    x = rng.random((300, 64)).astype(np.float32)
    y = np.arange(300) % 10
    path = model.parent / "data.npz"
    if case == "y_float":
        _digits_npz(path, x=x, y=y + 0.5)
    elif case == "y_onehot":
        _digits_npz(path, x=x, y=np.eye(10)[y])
    elif case == "len":
        _digits_npz(path, x=x, y=y[:-1])
    elif case == "empty":
        _digits_npz(path, x=x[:0], y=y[:0])
    elif case == "no_y":
        _digits_npz(path, x=x, labels=y)
    elif case == "nan_x":
        x[7, 3] = np.nan
        _digits_npz(path, x=x, y=y)
    elif case == "x_range":
        _digits_npz(path, x=x * 255, y=y)
    elif case == "garbage":
        path.write_bytes(os.urandom(2000))
    elif case == "zero_bytes":
        path.write_bytes(b"")
    elif case == "labels_out_of_range":
        _digits_npz(path, x=x, y=np.arange(300) % 12)
    _edit(model, "name: digits, holdout: 100", "name: data.npz, holdout: 100")
    text = _one_line(_compile(model, tmp_path / "b"), str(path), pattern)
    if array:
        assert f"'{array}'" in text
    assert not (tmp_path / "b").exists()


def test_check_labels_function_for_the_lead():
    from neurocomp.data import check_labels
    from neurocomp.errors import DataError
    check_labels(np.array([0, 1, 9]), 10, "x.npz")
    with pytest.raises(DataError, match=r"x.npz: labels -1, 10 outside the network's 10 output classes"):
        check_labels(np.array([0, -1, 10]), 10, "x.npz")


# ------------------------------------------------------------------------------------ user code
@pytest.mark.parametrize("net_py,spec_edit,pattern", [
    ("def build(hidden=16):\n    raise ValueError('no GPU today')\n", None,
     "source.factory: net.py:build: ValueError: no GPU today"),
    ("import sys\ndef build(hidden=16):\n    sys.exit(3)\n", None, "source.factory: net.py:build: called sys.exit(3)"),
    ("import sys\nsys.exit('bye')\n", None, "net.py: error while importing: called sys.exit('bye')"),
    ("raise RuntimeError\n", None, "net.py: error while importing: RuntimeError"),
    (None, ("factory: net.py:build", "factory: net.py:build, kwargs: {hidden: 16, colour: red}"),
     "source.factory: net.py:build: cannot be called with source.kwargs (hidden, colour)"),
    (None, ("factory: net.py:build", "factory: 'os.path:join'"), "source.factory: os.path:join"),
    (None, ("factory: net.py:build", "factory: 'json:dumps'"), "json:dumps"),
    (None, ("factory: net.py:build", "factory: 'collections:OrderedDict'"), "no callable 'OrderedDict'"),
])
def test_user_code_failures_are_one_line(model, tmp_path, net_py, spec_edit, pattern):
    if net_py is not None:
        (model.parent / "net.py").write_text(net_py)
    if spec_edit is not None:
        _edit(model, *spec_edit)
    _one_line(_compile(model, tmp_path / "b"), pattern)
    assert not (tmp_path / "b").exists()


def test_weights_zero_bytes_and_out_of_range_decays_name_the_field(model, tmp_path):
    weights = model.parent / "weights.pt"
    good = weights.read_bytes()
    weights.write_bytes(b"")
    _one_line(_compile(model, tmp_path / "b"), f"{weights}: empty file (0 bytes)")
    for key, value, what in (("1.du", 1.5, "current decay must be in [0, 1]"),
                             ("3.dv", -0.25, "voltage decay must be in [0, 1]"),
                             ("1.vth", 0.0, "threshold must be > 0")):
        weights.write_bytes(good)
        state = torch.load(weights)
        state[key] = torch.tensor(value)
        torch.save(state, weights)
        _one_line(_compile(model, tmp_path / "b"), f"{weights}: {key} = {value:g}, the LIF {what}")
    assert not (tmp_path / "b").exists()


# ------------------------------------------------------------------------------------ UX
def test_samples_auto_run_default_out_and_time_includes_saving(model, tmp_path, monkeypatch):
    import neurocomp.pipeline.build as pipeline
    real_save = pipeline.save_network

    def slow_save(net, path):  # saving that takes a noticeable time, as big builds do
        time.sleep(0.6)
        real_save(net, path)

    monkeypatch.setattr(pipeline, "save_network", slow_save)
    build = tmp_path / "b"
    res = _compile(model, build, "--samples", "auto")
    assert res.exit_code == 0, res.output
    timing = json.loads((build / "report.json").read_text())["timing_s"]
    assert timing["total"] >= timing["import_quantize"] + timing["target_run"] + 1.2   # two saves
    res = CliRunner().invoke(cli, ["compile", str(model), "--target", "cpu", "--out", str(build), "-n", "auto"])
    assert res.exit_code == 0, res.output
    shown = float(res.output.split("time      ")[1].split(" s total")[0])
    assert shown >= 1.2
    res = CliRunner().invoke(cli, ["run", str(build), "-q"])
    assert res.exit_code == 0 and res.output == "", res.output
    assert json.loads((build / "run" / "run.json").read_text())["samples"] == 100


def test_quiet_silences_library_chatter(tmp_path):
    """-q on a lava-dl slayer model: lava-dl's import banner, torch's weight_norm deprecation and the
    CUDA notice all used to reach the terminal. Now nothing does."""
    d = tmp_path / "slayer"
    d.mkdir()
    for f in ("net.py", "weights.pt"):
        (d / f).write_bytes((REPO / "models/slayer_digits" / f).read_bytes())
    spec = (REPO / "models/slayer_digits/model.yaml").read_text().replace("holdout: 360", "holdout: 40")
    (d / "model.yaml").write_text(spec + "quantize: {calibration_samples: 10}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([PY, "-m", "neurocomp", "compile", str(d / "model.yaml"), "--target", "cpu",
                           "--out", str(tmp_path / "b"), "-q"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == "", (proc.stdout, proc.stderr)
    assert (tmp_path / "b" / "network.npz").is_file()
