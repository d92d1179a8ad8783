"""Bad input -> one line naming the file and key, exit code 2, nothing written."""
from __future__ import annotations

import re

import pytest
import torch
from click.testing import CliRunner

from neurocomp.cli.main import cli


def _compile(spec, out):
    return CliRunner().invoke(cli, ["compile", str(spec), "--target", "cpu", "--out", str(out), "-q"])


def _edit(spec, old, new):
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))


@pytest.mark.parametrize("old,new,key,pattern", [
    ("name: tiny", "name: tiny\nflavour: vanilla", "flavour", "unknown key"),
    ("timesteps: 8", "timesteps: eight", "input.timesteps", "integer"),
    ("timesteps: 8", "timesteps: 0", "input.timesteps", "greater than or equal to 1"),
    ("encoding: rate", "encoding: morse", "input.encoding", "allowed: 'rate', 'latency', 'current' or 'sinusoid'"),
    ("kind: torch", "kind: tensorflow", "source.kind", "got .tensorflow., allowed: .torch., .slayer., .brian2."),
    ("weights: weights.pt", "weights: missing.pt", "source.weights", "file not found"),
    ("factory: net.py:build", "factory: nope.py:build", "source.factory", "file not found"),
    ("factory: net.py:build", "factory: net.py", "source.factory", "path/to/file.py:function"),
    ("name: digits", "name: cifar", "dataset.name", "allowed"),
    ("neurocomp: 1", "neurocomp: 7", "neurocomp", "spec version must be 1"),
])
def test_spec_error_names_key_and_exits_2(tiny_model_dir, tmp_path, old, new, key, pattern):
    spec = tiny_model_dir / "model.yaml"
    _edit(spec, old, new)
    out = tmp_path / "build"
    res = _compile(spec, out)
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert len(line.splitlines()) == 1, line
    assert line.startswith(f"error: {spec}: {key}:"), line
    assert re.search(pattern, line), line
    assert not out.exists()


def test_malformed_yaml(tiny_model_dir, tmp_path):
    spec = tiny_model_dir / "model.yaml"
    spec.write_text("neurocomp: 1\nname: [unclosed\n")
    res = _compile(spec, tmp_path / "b")
    assert res.exit_code == 2
    assert "not valid YAML" in res.output and str(spec) in res.output


def test_missing_spec_file(tmp_path):
    res = _compile(tmp_path / "nope.yaml", tmp_path / "b")
    assert res.exit_code == 2 and "file not found" in res.output


def test_nan_weights_name_the_tensor(tiny_model_dir, tmp_path):
    state = torch.load(tiny_model_dir / "weights.pt")
    state["2.weight"][3, 4] = float("nan")
    torch.save(state, tiny_model_dir / "weights.pt")
    res = _compile(tiny_model_dir / "model.yaml", tmp_path / "b")
    assert res.exit_code == 2
    assert "2.weight: contains NaN" in res.output
    assert not (tmp_path / "b").exists()


def test_weights_that_do_not_fit_the_module(tiny_model_dir, tmp_path):
    _edit(tiny_model_dir / "net.py", "hidden=16", "hidden=12")
    res = _compile(tiny_model_dir / "model.yaml", tmp_path / "b")
    assert res.exit_code == 2
    assert "weights.pt: does not match the module" in res.output


def test_unknown_layer_names_module_path(tiny_model_dir, tmp_path):
    _edit(tiny_model_dir / "net.py", "return nn.Sequential(nn.Linear(64, hidden, bias=False),",
          "return nn.Sequential(nn.Linear(64, hidden, bias=False), nn.ReLU(),")
    # ReLU has no parameters: the state_dict keys shift, so give the module its own weights
    import importlib.util
    spec = importlib.util.spec_from_file_location("tiny_net", tiny_model_dir / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.build().state_dict(), tiny_model_dir / "weights.pt")
    res = _compile(tiny_model_dir / "model.yaml", tmp_path / "b")
    assert res.exit_code == 2
    assert "module '1': layer type ReLU cannot be mapped" in res.output


def test_unknown_target(tiny_model_dir, tmp_path):
    res = CliRunner().invoke(cli, ["compile", str(tiny_model_dir / "model.yaml"), "--target", "spinnaker",
                                   "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "spinnaker" in res.output and "loihi-sim" in res.output
