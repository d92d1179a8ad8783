"""Convolutional networks through the one pipeline: a torch conv SNN is imported, quantised (conv
weights on the grid Lava's Conv uses as given — lava issue 803), run on the batched engine (compiled
and numpy reference alike) and on Lava's Conv + LIF processes, spike for spike."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from neurocomp.backends import get_backend

NET_PY = '''
import torch
from torch import nn
from neurocomp import nn as ncnn


def build():
    """1x8x8 digits -> 6x6x6 conv LIF -> sum-pooled 6x3x3 -> 10 LIF."""
    return nn.Sequential(nn.Conv2d(1, 6, 3, bias=False), ncnn.LIF(6 * 6 * 6, du=0.3, dv=0.1),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 3 * 3, 10, bias=False),
                         ncnn.LIF(10, du=0.3, dv=0.1))
'''


@pytest.fixture(scope="module")
def conv_build(tmp_path_factory):
    from neurocomp.pipeline import compile_model

    d = tmp_path_factory.mktemp("conv")
    (d / "net.py").write_text(NET_PY)
    import importlib.util
    spec = importlib.util.spec_from_file_location("conv_net", d / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.build()
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[4].weight.mul_(4.0)
    torch.save(model.state_dict(), d / "weights.pt")
    (d / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: tinyconv
        source: {kind: torch, factory: net.py:build, weights: weights.pt}
        input: {encoding: rate, max_rate: 0.8, timesteps: 12}
        dataset: {name: digits, holdout: 40}
        verify: {samples: 6}
    """))
    report = compile_model(d / "model.yaml", target="loihi-sim", out=d / "build")
    return d / "build", report


@pytest.mark.slow
def test_conv_network_compiles_batched_with_lava_equal_to_cpu(conv_build):
    build_dir, report = conv_build
    assert report["schedule"]["kind"] == "batched"
    assert [row["weight_exp"] for row in report["layers"]] == [0, report["layers"][1]["weight_exp"]]
    ag = report["agreement"]["target_vs_cpu"]
    assert ag["samples"] == 6 and ag["identical_spike_trains"] == 1.0
    assert report["spikes"]["layers"][0]["cpu"] and sum(report["spikes"]["layers"][0]["cpu"]) > 0


@pytest.mark.slow
def test_conv_engines_agree_and_float_tracks_fixed(conv_build):
    from neurocomp.backends.batch_engine import simulate
    from neurocomp.pipeline import load_build

    build_dir, _ = conv_build
    b = load_build(build_dir)
    spikes = b.plan(20).test.spikes
    jit = simulate(b.fixed, spikes, record=True, probe=True, engine="jit")
    ref = simulate(b.fixed, spikes, record=True, probe=True, engine="numpy")
    for p in b.fixed.populations:
        assert np.array_equal(jit.spikes[p.name], ref.spikes[p.name]), p.name
        for var in ("u", "v"):
            assert np.array_equal(jit.states[p.name][var], ref.states[p.name][var]), (p.name, var)
    assert jit.counts["lif1"].sum() > 0 and jit.counts["lif5"].sum() > 0
    flt = get_backend("float").run(b.float_net, spikes, b.schedule)
    corr = np.corrcoef(flt.counts["lif1"].ravel(), jit.counts["lif1"].ravel())[0, 1]
    assert corr > 0.95, corr
